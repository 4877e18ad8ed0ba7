// The quick start of the README (docs/QUICKSTART.md), runnable: `node examples/quickstart.js`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlindIndex, DeterministicVault, EncryptionContext, FileKeyProvider, Keyring, Vault, planBlindIndex } from 'sifredb';

// 1. A keystore with one random 32-byte root key (mode 0600). Keep it out of the repo and back it up.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-quickstart-'));
const provider = await FileKeyProvider.create(path.join(dir, 'keys.json'));

// 2. Load the keys once. Everything after this is synchronous.
const keyring = await Keyring.open(provider);
const vault = await Vault.open(keyring); // randomized (ChaCha20-Poly1305)
const dvault = await DeterministicVault.open(keyring); // deterministic (AES-256-SIV), reveals equality
const { bits } = planBlindIndex({ rows: 1_000_000 }); // 18 bits for a 1M-row email column
const emailIndex = await BlindIndex.open(keyring, { name: 'email', bits, transforms: ['trim', 'lowercase'] });

// 3. Encrypt fields. A context names where a value lives; a value copied elsewhere will not decrypt.
const email = new EncryptionContext({ table: 'users', column: 'email' });
const ssn = new EncryptionContext({ table: 'users', column: 'ssn' });
const insert = (id, address, number) => ({
  id,
  email: vault.encryptToString(address, email), // TEXT column: "sdb1:…"
  email_idx: emailIndex.compute(address, email).int, // INTEGER column
  ssn: dvault.encryptToString(number, ssn), // TEXT column, searchable by equality
});
const users = [insert(1, 'alice@example.com', '123-45-6789')]; // stands in for a database table
console.log('stored row:', users[0]);
console.log('decrypted:', vault.decrypt(users[0].email, email)); // in the type it was encrypted from: a string

// 4. Look rows up without decrypting the column.
// SELECT * FROM users WHERE ssn = ANY($1)
const findBySsn = (value) => {
  const terms = dvault.queryTermsAsText(value, ssn);
  return users.filter((u) => terms.includes(u.ssn));
};
// SELECT * FROM users WHERE email_idx = ANY($1), then drop the blind index's false positives.
const findByEmail = (value) => {
  const terms = emailIndex.queryTerms(value, email).map((t) => t.int);
  return users.filter((u) => terms.includes(u.email_idx) && vault.decryptToString(u.email, email) === value.trim().toLowerCase());
};
console.log('by ssn:', findBySsn('123-45-6789').map((u) => u.id));
console.log('by email:', findByEmail('  Alice@Example.com').map((u) => u.id));

// 5. Rotate. New values use version 2; old rows stay readable and findable (queries send one term
// per active version) until they are re-encrypted.
await provider.rotate();
await keyring.refresh();
users.push(insert(2, 'bob@example.com', '987-65-4321'));
console.log('versions:', keyring.versions, 'current:', keyring.currentVersion);
console.log('after rotation, by ssn:', findBySsn('123-45-6789').map((u) => u.id), findBySsn('987-65-4321').map((u) => u.id));
console.log('after rotation, by email:', findByEmail('alice@example.com').map((u) => u.id), findByEmail('bob@example.com').map((u) => u.id));
for (const u of users) {
  if (vault.needsReencryption(u.email)) {
    const address = vault.decryptToString(u.email, email);
    u.email = vault.reencrypt(u.email, email);
    u.email_idx = emailIndex.compute(address, email).int;
    u.ssn = dvault.reencrypt(u.ssn, ssn);
  }
}
console.log('re-encrypted:', users.every((u) => !vault.needsReencryption(u.email) && !dvault.needsReencryption(u.ssn)));

// This example's keystore is throwaway; a real one must be kept (KEYS.md).
fs.rmSync(dir, { recursive: true });
