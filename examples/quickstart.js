// The quick start of the README (docs/QUICKSTART.md), runnable: `node examples/quickstart.js`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EncryptedTable, FileKeyProvider, Keyring, defineTable, inspect, planBlindIndex } from 'sifredb';

// 1. A keystore with one random 32-byte root key (mode 0600). Keep it out of the repo and back it up.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-quickstart-'));
const provider = await FileKeyProvider.create(path.join(dir, 'keys.json'));

// 2. Describe the table's encrypted columns once (or in a JSON file: loadSchema('schema.json')).
// The CLI (`--schema`), `sifredb schema sql` (the DDL) and `schema check` read the same description.
const { bits } = planBlindIndex({ rows: 1_000_000 }); // 18 bits for a 1M-row email column
const usersSchema = defineTable({
  table: 'users',
  columns: {
    // randomized (ChaCha20-Poly1305), found through an 18-bit blind index in INTEGER column email_idx
    email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits, transforms: ['trim', 'lowercase'] }] },
    ssn: { type: 'string', mode: 'deterministic' }, // AES-256-SIV: searchable by equality, reveals equality
    born: { type: 'date' },
  },
});

// 3. Load the keys once. After this, rows are encrypted and decrypted synchronously.
const keyring = await Keyring.open(provider);
const users = await EncryptedTable.open(keyring, usersSchema);

// 4. Rows go in plain and come out plain, in their types; lookup columns are computed for you.
const table = []; // stands in for the database table
const insert = (row) => table.push(...users.encryptRows([row]));
insert({ id: 1, email: 'alice@example.com', ssn: '123-45-6789', born: new Date('1990-04-01') });
console.log('stored row:', table[0]);
const [alice] = users.decryptRows(table);
console.log('decrypted:', alice.email, alice.born instanceof Date); // a string and a Date, typed as such

// 5. Look rows up without decrypting the column: every term the value may have, bound as one array.
const find = (column, value) => {
  const q = users.where(column, value); // SELECT * FROM users WHERE ${q.sql('$1')} with [q.terms]
  const candidates = table.filter((row) => q.terms.includes(row[q.column]));
  return users.decryptRows(candidates).filter(q.matches); // drops a blind index's false positives
};
console.log('by ssn:', find('ssn', '123-45-6789').map((u) => u.id));
console.log('by email:', find('email', '  Alice@Example.com').map((u) => u.id));
// A ciphertext cannot answer a range: users.query('born', '<', someDate) throws ERR_SIFREDB_INPUT.

// 6. Rotate. New rows use version 2; old rows stay readable and findable (queries send one term
// per active version) until they are re-encrypted (`sifredb reencrypt --schema …` on a database).
await provider.rotate();
await keyring.refresh(); // every vault, index and table on this keyring now writes under version 2
insert({ id: 2, email: 'bob@example.com', ssn: '987-65-4321', born: new Date('1985-11-30') });
console.log('versions:', keyring.versions, 'current:', keyring.currentVersion);
console.log('after rotation, by ssn:', find('ssn', '123-45-6789').map((u) => u.id), find('ssn', '987-65-4321').map((u) => u.id));
console.log('after rotation, by email:', find('email', 'alice@example.com').map((u) => u.id), find('email', 'bob@example.com').map((u) => u.id));
const plain = users.decryptRows(table).map(({ id, email, ssn, born }) => ({ id, email, ssn, born }));
table.splice(0, table.length, ...users.encryptRows(plain));
console.log('re-encrypted:', table.every((row) => ['email', 'ssn', 'born'].every((c) => inspect(row[c]).keyVersion === keyring.currentVersion)));

// This example's keystore is throwaway; a real one must be kept (KEYS.md).
fs.rmSync(dir, { recursive: true });
