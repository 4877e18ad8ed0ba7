// Key rotation in the middle of a table: every row stays decryptable and findable by deterministic
// value and by blind index, through re-encryption, and after old versions are retired.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlindIndex, DeterministicVault, EncryptionContext, FileKeyProvider, Keyring, StaticKeyProvider, Vault, inspect } from '../dist/index.js';

const email = EncryptionContext.of('users', 'email');
const ssn = EncryptionContext.of('users', 'ssn');
const ROWS = 120;
const emailOf = (i) => `user${i}@example.com`;
const ssnOf = (i) => `${String(100 + (i % 900)).padStart(3, '0')}-45-${String(1000 + i).slice(-4)}`;

/** A toy table with a randomized column plus blind index, and a deterministic column. */
class Table {
  rows = [];
  constructor({ vault, dvault, index }) {
    Object.assign(this, { vault, dvault, index });
  }
  insert(i) {
    this.rows.push({
      id: i,
      email: this.vault.encryptToString(emailOf(i), email),
      email_idx: this.index.compute(emailOf(i), email).int,
      ssn: this.dvault.encrypt(ssnOf(i), ssn),
    });
  }
  /** `WHERE ssn IN (…)` */
  findBySsn(value) {
    const terms = this.dvault.queryTerms(value, ssn);
    return this.rows.filter((row) => terms.some((term) => term.equals(row.ssn)));
  }
  /** `WHERE email_idx IN (…)`, then decrypt to drop false positives. */
  findByEmail(value) {
    const terms = new Set(this.index.queryTerms(value, email).map((term) => term.int));
    return this.rows.filter((row) => terms.has(row.email_idx) && this.vault.decryptToString(row.email, email) === value);
  }
}

async function openAll(source) {
  const keyring = await Keyring.open(source);
  return {
    keyring,
    vault: await Vault.open(keyring),
    dvault: await DeterministicVault.open(keyring),
    index: await BlindIndex.open(keyring, { name: 'email', bits: 16, transforms: ['trim', 'lowercase'] }),
  };
}

function assertAllFindable(t, table, label) {
  for (const row of table.rows) {
    const i = row.id;
    t.is(table.vault.decryptToString(row.email, email), emailOf(i), `${label}: row ${i} decrypts`);
    t.is(table.dvault.decryptToString(row.ssn, ssn), ssnOf(i));
    t.true(table.findBySsn(ssnOf(i)).some((r) => r.id === i), `${label}: row ${i} found by deterministic ssn`);
    t.deepEqual(table.findByEmail(emailOf(i)).map((r) => r.id), [i], `${label}: row ${i} found by blind index`);
  }
}

for (const kind of ['static', 'file']) {
  test(`${kind} provider: rotate mid-table, re-encrypt, retire — every row stays findable`, async (t) => {
    let provider;
    if (kind === 'file') {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-rotation-'));
      provider = await FileKeyProvider.create(path.join(dir, 'keys.json'));
    } else {
      provider = StaticKeyProvider.generate();
    }
    const api = await openAll(provider);
    const table = new Table(api);
    for (let i = 0; i < ROWS / 2; i++) table.insert(i);

    t.is(await provider.rotate(), 2);
    t.is(api.vault.currentVersion, 1, 'nothing changes until refresh');
    await api.keyring.refresh();
    t.is(api.vault.currentVersion, 2);
    for (let i = ROWS / 2; i < ROWS; i++) table.insert(i);

    t.is(inspect(table.rows[0].email).keyVersion, 1);
    t.is(inspect(table.rows.at(-1).email).keyVersion, 2);
    t.is(api.dvault.queryTerms('x', ssn).length, 2);
    t.deepEqual(api.index.queryTerms('x', email).map((term) => term.version), [2, 1], 'current version first');
    t.deepEqual(api.keyring.queryVersionsFor(email), [2, 1]);
    assertAllFindable(t, table, 'mixed versions');

    // Re-encrypt half of the old rows: the table now mixes every state.
    for (const row of table.rows.slice(0, ROWS / 4)) {
      t.true(api.vault.needsReencryption(row.email));
      t.true(api.dvault.needsReencryption(row.ssn));
      row.email = api.vault.reencrypt(row.email, email);
      row.ssn = api.dvault.reencrypt(row.ssn, ssn);
      row.email_idx = api.index.compute(emailOf(row.id), email).int;
      t.false(api.vault.needsReencryption(row.email));
      t.is(typeof row.email, 'string', 'text in, text out');
    }
    assertAllFindable(t, table, 'partly re-encrypted');

    // Finish the job, then retire version 1: lookups shrink to one term, stragglers still decrypt.
    const straggler = api.vault.encryptToString('old value', email);
    for (const row of table.rows) {
      if (api.vault.needsReencryption(row.email)) row.email = api.vault.reencrypt(row.email, email);
      if (api.dvault.needsReencryption(row.ssn)) row.ssn = api.dvault.reencrypt(row.ssn, ssn);
      row.email_idx = api.index.compute(emailOf(row.id), email).int;
    }
    const oldCiphertext = table.rows[0].ssn;
    await provider.retire(1);
    await api.keyring.refresh();
    t.is(api.dvault.queryTerms('x', ssn).length, 1);
    t.is(api.index.queryTerms('x', email).length, 1);
    assertAllFindable(t, table, 'after retiring v1');
    t.is(api.vault.decryptToString(straggler, email), 'old value');
    t.is(api.dvault.decryptToString(oldCiphertext, ssn), ssnOf(0));
  });
}

test('refresh picks up a rotation made by another process (another provider instance)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-rotation-'));
  const file = path.join(dir, 'keys.json');
  await FileKeyProvider.create(file);
  const app = await Vault.open(await FileKeyProvider.open(file));
  const before = app.encrypt('v1 value', email);
  const cli = await FileKeyProvider.open(file);
  await cli.rotate();
  t.is(app.currentVersion, 1);
  await app.refresh();
  t.is(app.currentVersion, 2);
  t.is(inspect(app.encrypt('x', email)).keyVersion, 2);
  t.is(app.decryptToString(before, email), 'v1 value');
  t.true(app.needsReencryption(before));
});

test('a ciphertext from a version the keyring does not have fails with KEY', async (t) => {
  const provider = StaticKeyProvider.generate();
  await provider.rotate();
  await provider.rotate();
  const newer = await Vault.open(provider);
  const v3 = newer.encrypt('from the future', email);
  const older = await Vault.open(new StaticKeyProvider({ keys: [{ version: 1, key: await provider.loadKey(1) }] }));
  const error = t.throws(() => older.decrypt(v3, email), { code: 'ERR_SIFREDB_KEY' });
  t.regex(error.message, /unknown key version 3/);
  t.throws(() => older.reencrypt(v3, email), { code: 'ERR_SIFREDB_KEY' });
});
