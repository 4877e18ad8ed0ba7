// import-rust on the embedded PGlite database: the shared cases (library API), and the CLI on a
// BYTEA column through a table schema.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EncryptedTable, FileKeyProvider, loadSchema, openDatabase } from '../dist/index.js';
import { runCli } from './helpers/cli.js';
import { registerImportCases, rustData, rustValues } from './helpers/import-rust-cases.js';
import { tempPGlite } from './helpers/pglite.js';

registerImportCases(test, 'pglite', tempPGlite(test));

const dir = mkdtempSync(join(tmpdir(), 'sifredb-import-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('pglite: sifredb import-rust --schema converts a BYTEA column; a rerun changes nothing', async (t) => {
  const keys = join(dir, 'keys.json');
  const dbDir = join(dir, 'db');
  const schemaFile = join(dir, 'schema.json');
  await FileKeyProvider.create(keys);
  writeFileSync(
    schemaFile,
    JSON.stringify({
      version: 1,
      tables: [
        {
          table: 'users',
          tenant: 'tenant',
          columns: { email: { type: 'string', storage: 'bytea', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 16, transforms: ['lowercase'] }] } },
        },
      ],
    }),
  );
  const values = rustValues('users', 'email', 1).filter((v) => v.tenant !== '' && Buffer.from(v.plaintext.toString()).equals(v.plaintext));
  const db = await openDatabase(dbDir);
  await db.query('CREATE TABLE users (id int PRIMARY KEY, tenant text, email bytea, email_idx integer)');
  await db.query('INSERT INTO users (id, tenant, email) SELECT * FROM unnest($1::int[], $2::text[], $3::bytea[])', [
    values.map((_, i) => i + 1),
    values.map((v) => v.tenant),
    values.map((v) => v.ciphertext),
  ]);
  await db.close();

  const args = ['import-rust', '--db', dbDir, '--schema', schemaFile, '--column', 'email', '--keys', keys, '--rust-deterministic-key', rustData().deterministicKey, '--rust-key-dir', rustData().keyDir, '--json', '--quiet'];
  const first = await runCli(args);
  t.is(first.code, 0, first.stderr);
  t.like(JSON.parse(first.stdout), { updated: values.length, failed: 0, skipped: 0 });
  const second = await runCli(args);
  t.is(second.code, 0, second.stderr);
  t.like(JSON.parse(second.stdout), { updated: 0, skipped: values.length, failed: 0 });

  const schema = (await loadSchema(schemaFile)).table('users');
  const table = await EncryptedTable.open(await FileKeyProvider.open(keys), schema);
  const db2 = await openDatabase(dbDir);
  try {
    const { rows } = await db2.query('SELECT id, tenant, email, email_idx FROM users ORDER BY id');
    for (const row of rows) {
      t.is(table.decryptRow(row).email, values[row.id - 1].plaintext.toString(), `row ${row.id}`);
    }
    // The schema's blind index finds the rows.
    const acme = values.findIndex((v) => v.tenant === 'acme' && v.plaintext.toString() === 'alice@example.com');
    const q = table.where('email', 'ALICE@example.com', { tenant: 'acme' });
    const { rows: found } = await db2.query(`SELECT id, tenant, email, email_idx FROM users WHERE tenant = 'acme' AND ${q.sql('$1')}`, [q.terms]);
    t.deepEqual(table.decryptRows(found).filter(q.matches).map((r) => r.id), [acme + 1]);
  } finally {
    await db2.close();
  }
  // Usage errors: a Rust key is required; a blind-index column needs the key directory.
  const noKey = await runCli(['import-rust', '--db', dbDir, '--table', 'users', '--column', 'email', '--keys', keys]);
  t.is(noKey.code, 2);
  t.regex(noKey.stderr, /rust-deterministic-key/);
  const noDir = await runCli(['import-rust', '--db', dbDir, '--table', 'users', '--column', 'email', '--keys', keys, '--rust-deterministic-key', rustData().deterministicKey, '--rust-blind-index-column', 'x']);
  t.is(noDir.code, 2);
});
