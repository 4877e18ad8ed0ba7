// The CLI with a table schema, on PGlite: the 5,000-row scenario of a reencrypt job run with the
// wrong blind-index settings (it must stop before writing, exit 4, and say what differs), --schema
// on the jobs and its contradicting flags, and `schema sql` / `schema check` exit codes.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EncryptedTable, FileKeyProvider, Keyring, inspect, loadSchema, openDatabase } from '../dist/index.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-schema-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const run = (args) => runCli(args);

const ROWS = 5000;
const emailOf = (i) => (i % 2 === 0 ? ` User${i}@Example.com` : `user${i}@example.com`);

/** A table `name` written by the application through the schema (18-bit, trim+lowercase email index). */
async function setup(name, { record }) {
  const keys = join(dir, `${name}-keys.json`);
  const dbDir = join(dir, `${name}-db`);
  const schemaFile = join(dir, `${name}-schema.json`);
  writeFileSync(
    schemaFile,
    JSON.stringify({
      version: 1,
      tables: [{ table: name, columns: { email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }] } } }],
    }),
  );
  await FileKeyProvider.create(keys);
  const db = await openDatabase(dbDir);
  await db.query(`CREATE TABLE ${name} (id int PRIMARY KEY, email text, email_idx integer)`);
  await db.close();
  if (record) t_ok(await run(['schema', 'sql', '--schema', schemaFile, '--db', dbDir, '--apply']));
  const schema = (await loadSchema(schemaFile)).table(name);
  const users = await EncryptedTable.open(await FileKeyProvider.open(keys), schema);
  const ids = Array.from({ length: ROWS }, (_, i) => i + 1);
  const stored = users.encryptRows(ids.map((id) => ({ id, email: emailOf(id) })));
  const db2 = await openDatabase(dbDir);
  await db2.query(`INSERT INTO ${name} (id, email, email_idx) SELECT * FROM unnest($1::int[], $2::text[], $3::int[])`, [
    ids,
    stored.map((r) => r.email),
    stored.map((r) => r.email_idx),
  ]);
  await db2.close();
  t_ok(await run(['keys', 'rotate', '--keys', keys]));
  return { keys, dbDir, schemaFile, schema };
}

function t_ok(result) {
  if (result.code !== 0) throw new Error(`CLI failed (${result.code}): ${result.stderr}`);
  return result;
}

async function snapshot(dbDir, name) {
  const db = await openDatabase(dbDir);
  try {
    return (await db.query(`SELECT id, email, email_idx FROM ${name} ORDER BY id`)).rows;
  } finally {
    await db.close();
  }
}

/** How many of 8 sample emails the application finds by its blind index (as it queries). */
async function lookups(keys, schema, dbDir, name) {
  const keyring = await Keyring.open(await FileKeyProvider.open(keys));
  const users = await EncryptedTable.open(keyring, schema);
  const db = await openDatabase(dbDir);
  try {
    let found = 0;
    for (const id of [1, 2, 3, 4, 1000, 2001, 3333, 4998]) {
      const q = users.where('email', emailOf(id).trim().toLowerCase());
      const { rows } = await db.query(`SELECT id, email FROM ${name} WHERE ${q.sql('$1')}`, [q.terms]);
      if (users.decryptRows(rows).filter(q.matches).some((r) => r.id === id)) found += 1;
    }
    return found;
  } finally {
    await db.close();
  }
}

test('reencrypt with a forgotten :18:trim,lowercase stops before writing (exit 4) and names email_idx and what differs', async (t) => {
  const name = 'users_norecord';
  const { keys, dbDir, schemaFile, schema } = await setup(name, { record: false });
  const before = await snapshot(dbDir, name);
  t.is(await lookups(keys, schema, dbDir, name), 8);

  const wrong = await run(['reencrypt', '--db', dbDir, '--table', name, '--column', 'email', '--blind-index', 'email:email_idx', '--keys', keys]);
  t.is(wrong.code, 4, wrong.stderr);
  const lines = wrong.stderr.trim().split('\n');
  t.is(lines.length, 1, 'one line, not one per row');
  t.regex(lines[0], /ERR_SIFREDB_SCHEMA|email_idx/);
  t.regex(lines[0], /email_idx: .* blind index email \(16 bits, no transforms\): the stored terms were computed with 18 bits, transforms trim,lowercase/);
  t.false(lines[0].includes('@example'), 'no plaintext in the message');
  t.deepEqual(await snapshot(dbDir, name), before, 'every stored value and term is unchanged');

  // Flags that contradict the schema are usage errors.
  const contradicting = await run(['reencrypt', '--schema', schemaFile, '--db', dbDir, '--column', 'email', '--blind-index', 'email:email_idx:18:trim,lowercase', '--keys', keys]);
  t.is(contradicting.code, 2, contradicting.stderr);
  t.regex(contradicting.stderr, /lookup columns come from the schema/);
  const tenant = await run(['reencrypt', '--schema', schemaFile, '--db', dbDir, '--column', 'email', '--tenant-column', 'tenant', '--keys', keys]);
  t.is(tenant.code, 2);
  t.regex(tenant.stderr, /--tenant-column tenant contradicts the schema/);

  // With the schema the job is right, and the application's lookups keep working.
  const right = await run(['reencrypt', '--schema', schemaFile, '--db', dbDir, '--column', 'email', '--keys', keys, '--json']);
  t.is(right.code, 0, right.stderr);
  t.is(JSON.parse(right.stdout).updated, ROWS);
  const after = await snapshot(dbDir, name);
  t.true(after.every((r) => inspect(r.email).keyVersion === 2));
  t.is(await lookups(keys, schema, dbDir, name), 8);
});

test('with recorded settings, a contradicting job is refused before the first batch; schema check reports and exits 4', async (t) => {
  const name = 'users_recorded';
  const { keys, dbDir, schemaFile } = await setup(name, { record: true });
  const before = await snapshot(dbDir, name);
  const wrong = await run(['reencrypt', '--db', dbDir, '--table', name, '--column', 'email', '--blind-index', 'email:email_idx:18', '--keys', keys]);
  t.is(wrong.code, 4, wrong.stderr);
  t.regex(wrong.stderr, /email_idx: transforms trim,lowercase recorded, none configured/);
  t.deepEqual(await snapshot(dbDir, name), before);
  const missing = await run(['reencrypt', '--db', dbDir, '--table', name, '--column', 'email', '--keys', keys]);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /email_idx: recorded as a blind index \(email\) of email, but not configured: its terms would go stale/);

  const clean = await run(['schema', 'check', '--schema', schemaFile, '--db', dbDir, '--keys', keys]);
  t.is(clean.code, 0, clean.stdout + clean.stderr);
  t.regex(clean.stdout, /match the schema/);
  const db = await openDatabase(dbDir);
  await db.query(`ALTER TABLE ${name} DROP CONSTRAINT ${name}_email_sifredb_check`);
  await db.close();
  const found = await run(['schema', 'check', '--schema', schemaFile, '--db', dbDir, '--keys', keys]);
  t.is(found.code, 4);
  t.regex(found.stdout, new RegExp(`^${name}: missing-constraint: column email has no CHECK constraint`, 'm'));
  const sql = await run(['schema', 'sql', '--schema', schemaFile]);
  t.is(sql.code, 0);
  t.regex(sql.stdout, /CREATE TABLE IF NOT EXISTS public\.sifredb_schema/);
  t.regex(sql.stdout, /ADD CONSTRAINT "users_recorded_email_sifredb_check"/);
  const usage = await run(['schema', 'check', '--schema', schemaFile]);
  t.is(usage.code, 2);
});

test('reencrypt --schema on a row-bound column needs no --bind-row (and --bind-row agrees with it)', async (t) => {
  const keys = join(dir, 'bound-keys.json');
  const dbDir = join(dir, 'bound-db');
  const schemaFile = join(dir, 'bound-schema.json');
  writeFileSync(schemaFile, JSON.stringify({ version: 1, tables: [{ table: 'bound', columns: { ssn: { type: 'string', rowBinding: true } } }] }));
  await FileKeyProvider.create(keys);
  const schema = (await loadSchema(schemaFile)).table('bound');
  const table = await EncryptedTable.open(await FileKeyProvider.open(keys), schema);
  const db = await openDatabase(dbDir);
  await db.query('CREATE TABLE bound (id int PRIMARY KEY, ssn text)');
  for (const row of table.encryptRows(Array.from({ length: 20 }, (_, i) => ({ id: i + 1, ssn: `ssn-${i + 1}` })))) {
    await db.query('INSERT INTO bound (id, ssn) VALUES ($1, $2)', [row.id, row.ssn]);
  }
  await db.close();
  t_ok(await run(['keys', 'rotate', '--keys', keys]));
  const result = await run(['reencrypt', '--schema', schemaFile, '--db', dbDir, '--column', 'ssn', '--keys', keys, '--json']);
  t.is(result.code, 0, result.stderr);
  t.is(JSON.parse(result.stdout).updated, 20);
  t.regex(result.stderr, /no settings recorded for bound\.ssn/);
  const withFlag = await run(['reencrypt', '--schema', schemaFile, '--db', dbDir, '--column', 'ssn', '--keys', keys, '--bind-row', '--json']);
  t.is(withFlag.code, 0, withFlag.stderr);
  t.is(JSON.parse(withFlag.stdout).skipped, 20);
  const db2 = await openDatabase(dbDir);
  const { rows } = await db2.query('SELECT id, ssn FROM bound ORDER BY id');
  await db2.close();
  const rotated = await EncryptedTable.open(await FileKeyProvider.open(keys), schema);
  t.deepEqual(rotated.decryptRows(rows).map((r) => r.ssn), [].concat(Array.from({ length: 20 }, (_, i) => `ssn-${i + 1}`)));
});

test('schema files: unreadable exits 6, invalid JSON or an invalid schema exits 2 naming the field, on every command', async (t) => {
  const bad = join(dir, 'bad-schema.json');
  writeFileSync(bad, JSON.stringify({ version: 1, tables: [{ table: 'u', columns: { email: { type: 'string', blindIndexes: [{ name: 'e', column: 'e_idx', bits: 4 }] } } }] }));
  const notJson = join(dir, 'not-json.json');
  writeFileSync(notJson, '{ "version": 1, ');
  const missing = join(dir, 'missing.json');
  const commands = [
    (f) => ['schema', 'sql', '--schema', f],
    (f) => ['schema', 'check', '--schema', f, '--db', join(dir, 'unused-db')],
    (f) => ['reencrypt', '--schema', f, '--db', join(dir, 'unused-db'), '--column', 'email'],
    (f) => ['encrypt-column', '--schema', f, '--db', join(dir, 'unused-db'), '--column', 'email'],
    (f) => ['constraints', '--schema', f],
  ];
  for (const command of commands) {
    const gone = await run(command(missing));
    t.is(gone.code, 6, `${command(missing).slice(0, 2).join(' ')}: ${gone.stderr}`);
    t.regex(gone.stderr, /cannot read schema file .*missing\.json \(ENOENT\)/);
    const invalid = await run(command(bad));
    t.is(invalid.code, 2, invalid.stderr);
    t.regex(invalid.stderr, /tables\[0\]\.columns\.email\.blindIndexes\[0\]\.bits must be an integer in 8\.\.256/);
    const garbled = await run(command(notJson));
    t.is(garbled.code, 2, garbled.stderr);
    t.regex(garbled.stderr, /not valid JSON/);
  }
});
