// Row binding in the column jobs and the CLI, on PGlite: encrypt-column binds each row's ciphertext
// to its id; ciphertexts swapped between rows in SQL then fail to decrypt, and reencrypt reports
// exactly those rows as failed while the others are fine.
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  EncryptionContext,
  FileKeyProvider,
  Keyring,
  StaticKeyProvider,
  Vault,
  encryptColumn,
  inspect,
  openDatabase,
  reencryptColumn,
} from '../dist/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-rowbind-'));
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
let opened;
const database = () => (opened ??= openDatabase(join(dir, 'db')));

test.after.always(async () => {
  if (opened) await (await opened).close();
  rmSync(dir, { recursive: true, force: true });
});

const AUTH = { code: 'ERR_SIFREDB_AUTH' };
const email = (id) => `user${id}@example.com`;

async function usersTable(db, name, n, idType = 'bigint') {
  await db.query(`CREATE TABLE ${name} (id ${idType} PRIMARY KEY, email text)`);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  await db.query(`INSERT INTO ${name} SELECT * FROM unnest($1::bigint[], $2::text[])`, [ids, ids.map(email)]);
}

async function swap(db, table, a, b) {
  await db.query(
    `UPDATE ${table} AS t SET email = s.email FROM (SELECT id, email FROM ${table} WHERE id IN (${a}, ${b})) AS s
      WHERE t.id IN (${a}, ${b}) AND s.id <> t.id`,
  );
}

test('encryptColumn with rowBinding: id, then a swap in SQL: both rows fail, reencrypt reports them, the rest is fine', async (t) => {
  const db = await database();
  const provider = new StaticKeyProvider({ keys: [{ version: 1, key: randomBytes(32) }] });
  const keyring = await Keyring.open(provider);
  const vault = await Vault.open(keyring);
  const table = 'users_bound';
  const ctx = EncryptionContext.of(table, 'email');
  await usersTable(db, table, 50);

  const encrypted = await encryptColumn({ db, table, column: 'email', vault, rowBinding: 'id', batchSize: 7 });
  t.is(encrypted.updated, 50);
  t.is(encrypted.failed, 0);
  const { rows } = await db.query(`SELECT id, email FROM ${table} ORDER BY id`);
  for (const row of rows) {
    t.is(vault.decryptToString(row.email, ctx, { aad: row.id }), email(Number(row.id)));
    t.is(vault.decryptToString(row.email, ctx, { aad: String(row.id) }), email(Number(row.id)));
    t.throws(() => vault.decrypt(row.email, ctx), AUTH, 'bound: an unbound read fails');
  }
  // A rerun skips bound rows that open under their id.
  const rerun = await encryptColumn({ db, table, column: 'email', vault, rowBinding: 'id' });
  t.is(rerun.updated, 0);
  t.is(rerun.failed, 0);

  await swap(db, table, 3, 17);
  const swapped = await db.query(`SELECT id, email FROM ${table} WHERE id IN (3, 17) ORDER BY id`);
  for (const row of swapped.rows) t.throws(() => vault.decrypt(row.email, ctx, { aad: row.id }), AUTH);

  // reencrypt (nothing to rotate) checks every bound row against its id.
  const check = await reencryptColumn({ db, table, column: 'email', vault, rowBinding: 'id' });
  t.is(check.failed, 2);
  t.deepEqual(check.failures.map((f) => f.id).sort(), ['17', '3']);
  t.true(check.failures.every((f) => f.code === 'ERR_SIFREDB_AUTH'));
  t.is(check.updated, 0);
  // encrypt-column reports them too rather than counting them as done.
  t.is((await encryptColumn({ db, table, column: 'email', vault, rowBinding: 'id' })).failed, 2);

  // After a rotation, reencrypt moves the good rows, keeps them bound, and leaves the swapped ones.
  const provider2 = new StaticKeyProvider({ keys: [{ version: 1, key: await provider.loadKey(1) }, { version: 2, key: randomBytes(32) }], current: 2 });
  const vault2 = await Vault.open(await Keyring.open(provider2));
  const rotated = await reencryptColumn({ db, table, column: 'email', vault: vault2, rowBinding: 'id', batchSize: 9 });
  t.is(rotated.updated, 48);
  t.is(rotated.failed, 2);
  const after = await db.query(`SELECT id, email FROM ${table} ORDER BY id`);
  for (const row of after.rows) {
    if (row.id == 3 || row.id == 17) {
      t.is(inspect(row.email).keyVersion, 1, 'left untouched');
      continue;
    }
    t.is(inspect(row.email).keyVersion, 2);
    t.is(vault2.decryptToString(row.email, ctx, { aad: row.id }), email(Number(row.id)));
    t.throws(() => vault2.decrypt(row.email, ctx, { aad: Number(row.id) + 1 }), AUTH);
  }
  // Without row binding, current rows are skipped unread and the old (swapped) ones fail unbound too.
  const unbound = await reencryptColumn({ db, table, column: 'email', vault: vault2 });
  t.is(unbound.failed, 2);
  t.is(unbound.skipped, 48);
  await t.throwsAsync(reencryptColumn({ db, table, column: 'email', vault: vault2, rowBinding: 'row' }), { code: 'ERR_SIFREDB_INPUT' });
});

test('text and uuid ids bind by their text form', async (t) => {
  const db = await database();
  const vault = await Vault.open(new StaticKeyProvider(randomBytes(32)));
  const table = 'uuid_bound';
  await db.query(`CREATE TABLE ${table} (id uuid PRIMARY KEY, email text)`);
  const ids = Array.from({ length: 5 }, () => crypto.randomUUID());
  await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::uuid[], $2::text[])`, [ids, ids.map((id) => `${id}@x`)]);
  const r = await encryptColumn({ db, table, column: 'email', vault, rowBinding: 'id' });
  t.is(r.updated, 5);
  const ctx = EncryptionContext.of(table, 'email');
  for (const row of (await db.query(`SELECT id, email FROM ${table}`)).rows) t.is(vault.decryptToString(row.email, ctx, { aad: row.id }), `${row.id}@x`);
});

function run(args, input = '') {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SIFREDB_KEYS: '', SIFREDB_DB: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

test('CLI: encrypt-column --bind-row, swap, reencrypt --bind-row reports the swapped rows; encrypt/decrypt --aad', async (t) => {
  const keys = join(dir, 'keys.json');
  t.is((await run(['keygen', '--keys', keys])).code, 0);
  const dbDir = join(dir, 'clidb');
  {
    const db = await openDatabase(dbDir);
    await usersTable(db, 'people', 20);
    await db.close();
  }
  const common = ['--db', dbDir, '--table', 'people', '--column', 'email', '--keys', keys, '--quiet'];
  const enc = await run(['encrypt-column', ...common, '--bind-row', '--json']);
  t.is(enc.code, 0, enc.stderr);
  t.is(JSON.parse(enc.stdout).updated, 20);

  const db = await openDatabase(dbDir);
  const { rows } = await db.query(`SELECT id, email FROM people WHERE id IN (4, 9) ORDER BY id`);
  await swap(db, 'people', 4, 9);
  await db.close();

  const ok = await run(['decrypt', rows[0].email, '--table', 'people', '--column', 'email', '--keys', keys, '--aad', '4']);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, `${email(4)}\n`);
  t.is((await run(['decrypt', rows[0].email, '--table', 'people', '--column', 'email', '--keys', keys, '--bind-row', '4'])).stdout, `${email(4)}\n`);
  const unbound = await run(['decrypt', rows[0].email, '--table', 'people', '--column', 'email', '--keys', keys]);
  t.not(unbound.code, 0);
  t.regex(unbound.stderr, /ERR_SIFREDB_AUTH|authentication/);
  t.not((await run(['decrypt', rows[0].email, '--table', 'people', '--column', 'email', '--keys', keys, '--aad', '9'])).code, 0);

  const re = await run(['reencrypt', ...common, '--bind-row', '--json']);
  t.is(re.code, 1, 'rows failed');
  const summary = JSON.parse(re.stdout);
  t.is(summary.failed, 2);
  t.deepEqual(summary.failures.map((f) => f.id).sort(), ['4', '9']);

  const ct = (await run(['encrypt', 'hello', '--table', 'people', '--column', 'email', '--keys', keys, '--aad', '77'])).stdout.trim();
  t.is((await run(['decrypt', ct, '--table', 'people', '--column', 'email', '--keys', keys, '--aad', '77'])).stdout, 'hello\n');
  t.not((await run(['decrypt', ct, '--table', 'people', '--column', 'email', '--keys', keys, '--aad', '78'])).code, 0);
  const vault = await Vault.open(await FileKeyProvider.open(keys));
  t.is(vault.decryptToString(ct, EncryptionContext.of('people', 'email'), { aad: 77 }), 'hello');
});
