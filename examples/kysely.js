// SifreDB with Kysely, end to end on a temporary PGlite database: `node examples/kysely.js`.
// Prints each step; exits non-zero when a check fails. docs/integrations/kysely.md explains each part.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { Keyring, StaticKeyProvider, applySchema, fromPGlite, isEncrypted, loadSchema } from 'sifredb';
import { SifreDBPlugin } from 'sifredb/kysely';
// A minimal Kysely dialect for PGlite (the test suite's); with PostgreSQL use Kysely's PostgresDialect.
import { PGliteDialect } from './kysely-pglite-dialect.js';

const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok' : 'FAILED'}: ${what}`);
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-kysely-example-'));
const pglite = new PGlite(path.join(dir, 'db'));
try {
  // 1. The table's encrypted columns, described once.
  const users = (await loadSchema(fileURLToPath(new URL('./schemas/users.json', import.meta.url)))).table('users');

  // 2. The table, then the schema's columns, indexes and CHECK constraints (`sifredb schema sql` does the same).
  const sdb = fromPGlite(pglite);
  await sdb.query('CREATE TABLE users (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text)');
  await applySchema(sdb, users);

  // 3. Keys (a FileKeyProvider or KMS in production) and the plugin.
  const provider = new StaticKeyProvider(crypto.getRandomValues(new Uint8Array(32)));
  const keyring = await Keyring.open(provider);
  const db = new Kysely({ dialect: new PGliteDialect(pglite), plugins: [await SifreDBPlugin.create(keyring, [users])] });

  // 4. Writes are encrypted, with their lookup columns.
  await db
    .insertInto('users')
    .values([
      { id: 1, tenant_id: 't1', name: 'Ann', email: 'Ann@Example.com', ssn: '123-45-6789', born: new Date('1990-04-01') },
      { id: 2, tenant_id: 't1', name: 'Bob', email: 'bob@example.com', ssn: '987-65-4321', born: new Date('1985-12-24') },
    ])
    .execute();
  const { rows: raw } = await sdb.query('SELECT email, email_idx, ssn FROM users WHERE id = 1');
  console.log('stored row:', raw[0]);
  check(isEncrypted(raw[0].email) && isEncrypted(raw[0].ssn), 'stored: email is a ciphertext, ssn too');

  // 5. Equality on an encrypted column is a lookup; the rows come back decrypted, typed.
  const byEmail = await db.selectFrom('users').selectAll().where('tenant_id', '=', 't1').where('email', '=', ' ann@example.com').execute();
  console.log('found by email:', byEmail.map((r) => Number(r.id)));
  check(byEmail.length === 1 && byEmail[0].born instanceof Date && byEmail[0].email === 'Ann@Example.com', 'the row is decrypted, born is a Date');

  // 6. An update by the deterministic column, after a key rotation: old rows are still found.
  await provider.rotate();
  await keyring.refresh();
  await db.updateTable('users').set({ email: 'robert@example.com' }).where('tenant_id', '=', 't1').where('ssn', '=', '987-65-4321').execute();
  const afterRotation = await db.selectFrom('users').select(['id', 'email']).where('tenant_id', '=', 't1').where('ssn', 'in', ['123-45-6789', '987-65-4321']).orderBy('id').execute();
  console.log('after rotation, by ssn:', afterRotation);
  check(afterRotation.map((r) => r.email).join() === 'Ann@Example.com,robert@example.com', 'rows of both key versions are found');

  // 7. What a ciphertext cannot answer is refused, not answered with nothing.
  try {
    await db.selectFrom('users').selectAll().where('tenant_id', '=', 't1').where('email', 'like', '%@example.com').execute();
    check(false, 'LIKE on an encrypted column is refused');
  } catch (error) {
    console.log(`refused: ${error.code} ${error.message}`);
    check(error.code === 'ERR_SIFREDB_INPUT', 'LIKE on an encrypted column is refused');
  }
  await db.destroy();
} finally {
  await pglite.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(`${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exit(1);
}
