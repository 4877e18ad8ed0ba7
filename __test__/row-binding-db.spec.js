// Row binding in the column jobs and the CLI, on PGlite: encrypt-column binds each row's ciphertext
// to its id; ciphertexts swapped between rows in SQL then fail to decrypt, and reencrypt reports
// exactly those rows as failed while the others are fine.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BlindIndex,
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
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-rowbind-'));
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

test('reencryptColumn previousRowBinding none → id binds an unbound column in place; lookups stay valid; a rerun skips bound rows', async (t) => {
  const db = await database();
  const keyring = await Keyring.open(new StaticKeyProvider({ keys: [{ version: 1, key: randomBytes(32) }] }));
  const vault = await Vault.open(keyring);
  const bi = await BlindIndex.open(keyring, { name: 'email', bits: 16 });
  const table = 'users_migrate';
  const ctx = EncryptionContext.of(table, 'email');
  await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, email text, email_idx bigint)`);
  const ids = Array.from({ length: 200 }, (_, i) => i + 1);
  await db.query(`INSERT INTO ${table} (id, email) SELECT * FROM unnest($1::bigint[], $2::text[])`, [ids, ids.map(email)]);
  const blindIndexes = [{ index: bi, column: 'email_idx' }];
  t.is((await encryptColumn({ db, table, column: 'email', vault, blindIndexes })).updated, 200);
  // A plaintext and a value under a foreign key: reported, left untouched.
  const foreign = (await Vault.open(new StaticKeyProvider(randomBytes(32)))).encryptToString('x@y', ctx);
  await db.query(`INSERT INTO ${table} (id, email) VALUES (201, 'plain@example.com'), (202, $1)`, [foreign]);
  const unboundBefore = (await db.query(`SELECT email FROM ${table} WHERE id = 7`)).rows[0].email;
  t.is(vault.decryptToString(unboundBefore, ctx), email(7));

  const job = { db, table, column: 'email', vault, blindIndexes, rowBinding: 'id', previousRowBinding: 'none', batchSize: 37 };
  const r = await reencryptColumn(job);
  t.is(r.updated, 200);
  t.is(r.skipped, 0);
  t.is(r.failed, 2);
  t.deepEqual(r.failures.map((f) => f.id).sort(), ['201', '202']);
  const { rows } = await db.query(`SELECT id, email, email_idx FROM ${table} ORDER BY id`);
  for (const row of rows.slice(0, 200)) {
    const n = Number(row.id);
    t.is(vault.decryptToString(row.email, ctx, { aad: row.id }), email(n));
    t.throws(() => vault.decrypt(row.email, ctx), AUTH, 'no longer opens unbound');
    t.throws(() => vault.decrypt(row.email, ctx, { aad: n + 1 }), AUTH);
  }
  t.is(rows[200].email, 'plain@example.com');
  t.is(rows[201].email, foreign);
  for (const n of [1, 42, 200]) {
    const found = await db.query(`SELECT id, email FROM ${table} WHERE email_idx = $1`, [String(bi.compute(email(n), ctx).int)]);
    const hit = found.rows.find((row) => Number(row.id) === n);
    t.truthy(hit, 'the blind index still finds the row');
    t.is(vault.decryptToString(hit.email, ctx, { aad: hit.id }), email(n));
  }

  // Rerun after completion: nothing to do, no new failures.
  const rerun = await reencryptColumn(job);
  t.is(rerun.updated, 0);
  t.is(rerun.skipped, 200);
  t.is(rerun.failed, 2);
  // A plain bound reencrypt agrees that every row is bound.
  t.is((await reencryptColumn({ db, table, column: 'email', vault, rowBinding: 'id' })).failed, 2);

  await swap(db, table, 5, 6);
  for (const row of (await db.query(`SELECT id, email FROM ${table} WHERE id IN (5, 6)`)).rows) {
    t.throws(() => vault.decrypt(row.email, ctx, { aad: row.id }), AUTH);
  }
  const afterSwap = await reencryptColumn(job);
  t.is(afterSwap.failed, 4);
  t.deepEqual(afterSwap.failures.map((f) => f.id).sort(), ['201', '202', '5', '6']);
  t.is(afterSwap.updated, 0);

  await t.throwsAsync(reencryptColumn({ ...job, previousRowBinding: 'row' }), { code: 'ERR_SIFREDB_INPUT' });
  await t.throwsAsync(encryptColumn({ ...job, previousRowBinding: 'none' }), { code: 'ERR_SIFREDB_INPUT' });
});

test('binding migration resumes after a crash (half bound by hand, one on an old key), and unbinding falls out', async (t) => {
  const db = await database();
  const key1 = randomBytes(32);
  const vault1 = await Vault.open(await Keyring.open(new StaticKeyProvider({ keys: [{ version: 1, key: key1 }] })));
  const provider2 = new StaticKeyProvider({ keys: [{ version: 1, key: key1 }, { version: 2, key: randomBytes(32) }], current: 2 });
  const vault2 = await Vault.open(await Keyring.open(provider2));
  const table = 'users_resume';
  const ctx = EncryptionContext.of(table, 'email');
  await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, email bytea)`);
  const ids = Array.from({ length: 200 }, (_, i) => i + 1);
  await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::bigint[], $2::bytea[])`, [
    ids,
    ids.map((n) => vault1.encrypt(email(n), ctx)),
  ]);
  // The "crashed" job had bound rows 1..99 under the new key, and row 100 under the old one.
  const { rows: first } = await db.query(`SELECT id, email FROM ${table} WHERE id <= 100 ORDER BY id`);
  for (const row of first) {
    const v = Number(row.id) === 100 ? vault1 : vault2;
    const bound = v.reencrypt(row.email, ctx, { aad: row.id, previousAad: null });
    await db.query(`UPDATE ${table} SET email = $2 WHERE id = $1`, [row.id, bound]);
  }
  const dry = await reencryptColumn({ db, table, column: 'email', vault: vault2, rowBinding: 'id', previousRowBinding: 'none', dryRun: true });
  t.is(dry.updated, 101);
  t.is(dry.failed, 0);
  const r = await reencryptColumn({ db, table, column: 'email', vault: vault2, rowBinding: 'id', previousRowBinding: 'none', batchSize: 16 });
  t.is(r.failed, 0);
  t.is(r.skipped, 99);
  t.is(r.updated, 101, 'rows 100..200: the old-key bound row is rotated, the unbound ones bound');
  const check = async (bound) => {
    for (const row of (await db.query(`SELECT id, email FROM ${table} ORDER BY id`)).rows) {
      t.is(inspect(row.email).keyVersion, 2);
      if (bound) {
        t.is(vault2.decryptToString(row.email, ctx, { aad: row.id }), email(Number(row.id)));
        t.throws(() => vault2.decrypt(row.email, ctx), AUTH);
      } else {
        t.is(vault2.decryptToString(row.email, ctx), email(Number(row.id)));
        t.throws(() => vault2.decrypt(row.email, ctx, { aad: row.id }), AUTH);
      }
    }
  };
  await check(true);
  // The reverse: unbinding, and its rerun.
  const unbind = await reencryptColumn({ db, table, column: 'email', vault: vault2, rowBinding: 'none', previousRowBinding: 'id' });
  t.is(unbind.updated, 200);
  t.is(unbind.failed, 0);
  await check(false);
  const again = await reencryptColumn({ db, table, column: 'email', vault: vault2, rowBinding: 'none', previousRowBinding: 'id' });
  t.is(again.updated, 0);
  t.is(again.skipped, 200);
  t.is(again.failed, 0);
});

const run = (args, input = '') => runCli(args, { input });

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

test('CLI: reencrypt --bind-row --from-unbound binds an unbound column; a rerun skips; the flag needs --bind-row', async (t) => {
  const keys = join(dir, 'keys-mig.json');
  t.is((await run(['keygen', '--keys', keys])).code, 0);
  const dbDir = join(dir, 'clidb-mig');
  {
    const db = await openDatabase(dbDir);
    await usersTable(db, 'people', 20);
    await db.close();
  }
  const common = ['--db', dbDir, '--table', 'people', '--column', 'email', '--keys', keys, '--quiet'];
  t.is((await run(['encrypt-column', ...common])).code, 0);
  const plain = await run(['reencrypt', ...common, '--bind-row', '--json']);
  // Every row fails bound, so the job stops at its first batch and points at --from-unbound.
  t.is(plain.code, 4, 'without --from-unbound unbound rows fail');
  t.is(plain.stdout, '');
  const { error } = JSON.parse(plain.stderr);
  t.is(error.code, 'ERR_SIFREDB_AUTH');
  t.regex(error.message, /--bind-row --from-unbound/);
  t.is((await run(['reencrypt', ...common, '--from-unbound'])).code, 2);

  const mig = await run(['reencrypt', ...common, '--bind-row', '--from-unbound', '--json']);
  t.is(mig.code, 0, mig.stderr);
  t.like(JSON.parse(mig.stdout), { updated: 20, skipped: 0, failed: 0 });
  const again = await run(['reencrypt', ...common, '--bind-row', '--from-unbound']);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /skipped\s+20 \(already bound\)/);
  t.is((await run(['reencrypt', ...common, '--bind-row'])).code, 0);

  const vault = await Vault.open(await FileKeyProvider.open(keys));
  const ctx = EncryptionContext.of('people', 'email');
  const db = await openDatabase(dbDir);
  for (const row of (await db.query('SELECT id, email FROM people')).rows) {
    t.is(vault.decryptToString(row.email, ctx, { aad: row.id }), email(Number(row.id)));
    t.throws(() => vault.decrypt(row.email, ctx), AUTH);
  }
  await db.close();
});
