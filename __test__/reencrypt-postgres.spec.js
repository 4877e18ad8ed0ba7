// The batch jobs against a real PostgreSQL server (started here, stopped after): the shared cases,
// plus what only a server can show — rows locked by the application during the scan (the sweep),
// a reencrypt process killed with SIGKILL mid-run and rerun, and two reencrypt processes sharing a
// table while the application keeps writing.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlindIndex, EncryptionContext, FileKeyProvider, Keyring, StaticKeyProvider, Vault, encryptColumn, inspect, openDatabase, reencryptColumn } from '../dist/index.js';
import { startPostgres } from './helpers/postgres.js';
import { keys, registerCases, tableName } from './helpers/reencrypt-cases.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sifredb-pgtest-'));
const server = await startPostgres();
const db = await openDatabase(server.url, { poolSize: 6 });

test.after.always(async () => {
  await db.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('postgres: the adapter pools sessions', (t) => {
  t.is(db.kind, 'postgres');
  t.true(db.maxSessions > 1);
  t.false(db.description.includes('password'));
});

registerCases(test, 'postgres', async () => ({ db }));

test('postgres: a row-binding migration (previousRowBinding none → id) runs in one pass; its rerun counts each row once', async (t) => {
  const { randomBytes } = await import('node:crypto');
  const vault = await Vault.open(new StaticKeyProvider(randomBytes(32)));
  const table = tableName('bindmig');
  const ctx = EncryptionContext.of(table, 'v');
  await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, v text)`);
  await db.query(`INSERT INTO ${table} SELECT g, 'v' || g FROM generate_series(1, 300) g`);
  t.is((await encryptColumn({ db, table, column: 'v', vault })).updated, 300);
  const job = { db, table, column: 'v', vault, rowBinding: 'id', previousRowBinding: 'none', batchSize: 40 };
  t.like(await reencryptColumn(job), { scanned: 300, updated: 300, skipped: 0, failed: 0 });
  t.like(await reencryptColumn(job), { scanned: 300, updated: 0, skipped: 300, failed: 0 });
  for (const row of (await db.query(`SELECT id, v FROM ${table}`)).rows) t.is(vault.decryptToString(row.v, ctx, { aad: row.id }), `v${row.id}`);
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the CLI; resolves to { code, signal, stdout, stderr }. `onSpawn(child)` sees the process. */
function cli(args, onSpawn) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.(child);
  });
}

/** A file keystore, a table of `n` rows under version 1 (value `v<id>` with its blind index), then a rotation. */
async function rotatedTable(prefix, n) {
  const keysFile = join(dir, `${prefix}-${process.hrtime.bigint()}.json`);
  const provider = await FileKeyProvider.create(keysFile);
  const keyring = await Keyring.open(provider);
  const vault = await Vault.open(keyring);
  const index = await BlindIndex.open(keyring, { name: 'v', bits: 16 });
  const table = tableName(prefix);
  const ctx = EncryptionContext.of(table, 'v');
  await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, v text, v_idx integer, note text)`);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  await db.query(`INSERT INTO ${table} (id, v, v_idx) SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[])`, [
    ids,
    ids.map((id) => vault.encryptToString(`v${id}`, ctx)),
    ids.map((id) => index.compute(`v${id}`, ctx).int),
  ]);
  await provider.rotate();
  await keyring.refresh();
  const cliArgs = ['reencrypt', '--db', server.url, '--table', table, '--column', 'v', '--blind-index', 'v:v_idx:16', '--keys', keysFile];
  return { table, ctx, vault, index, keyring, cliArgs };
}

/** Every row: on key version 2, its value as expected, its blind index fresh. */
async function assertAllCurrent(t, { table, ctx, vault, index }, expected) {
  const { rows } = await db.query(`SELECT id, v, v_idx FROM ${table} ORDER BY id`);
  t.is(rows.length, expected.size);
  let wrong = 0;
  for (const r of rows) {
    const want = expected.get(Number(r.id));
    if (inspect(r.v).keyVersion !== 2 || vault.decryptToString(r.v, ctx) !== want || r.v_idx !== index.compute(want, ctx).int) wrong += 1;
  }
  t.is(wrong, 0, `${wrong} rows not current, changed, or with a stale index`);
}

async function versionCounts(table) {
  const { rows } = await db.query(`SELECT v FROM ${table}`);
  const counts = { 1: 0, 2: 0 };
  for (const r of rows) counts[inspect(r.v).keyVersion] += 1;
  return counts;
}

test('postgres: rows locked by the application during the scan are done by the sweep', async (t) => {
  const k = await keys();
  const table = tableName('locked');
  const ctx = EncryptionContext.of(table, 'v');
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text, other text)`);
  const ids = Array.from({ length: 400 }, (_, i) => i + 1);
  await db.query(`INSERT INTO ${table} (id, v) SELECT * FROM unnest($1::int[], $2::text[])`, [ids, ids.map((id) => k.vault.encryptToString(`x${id}`, ctx))]);
  await k.rotate();
  // The application holds rows 10 and 300 (updating another column) while the job scans.
  const app = await server.pool.connect();
  await app.query('BEGIN');
  await app.query(`UPDATE ${table} SET other = 'busy' WHERE id IN (10, 300)`);
  const job = reencryptColumn({ db, table, column: 'v', vault: k.vault, batchSize: 50 });
  await sleep(300);
  await app.query('COMMIT');
  app.release();
  const result = await job;
  t.is(result.updated, 400);
  const { rows } = await db.query(`SELECT id, v, other FROM ${table} WHERE id IN (10, 300) ORDER BY id`);
  for (const r of rows) {
    t.is(inspect(r.v).keyVersion, 2);
    t.is(k.vault.decryptToString(r.v, ctx), `x${r.id}`);
    t.is(r.other, 'busy', "the application's update is kept");
  }
});

test('postgres: a reencrypt killed with SIGKILL mid-run is simply run again', async (t) => {
  const n = 4000;
  const setup = await rotatedTable('crash', n);
  const expected = new Map(Array.from({ length: n }, (_, i) => [i + 1, `v${i + 1}`]));
  let killedAt;
  const killed = await cli([...setup.cliArgs, '--batch-size', '40', '--pause', '15', '--quiet'], async (child) => {
    // Kill it once some batches have committed, well before the end.
    for (;;) {
      const counts = await versionCounts(setup.table);
      if (counts[2] >= 400) {
        child.kill('SIGKILL');
        killedAt = counts[2];
        return;
      }
      if (child.exitCode !== null) return;
      await sleep(20);
    }
  });
  t.is(killed.signal, 'SIGKILL', `the job ended before it was killed: ${killed.stdout}${killed.stderr}`);
  const after = await versionCounts(setup.table);
  t.true(after[2] >= killedAt && after[2] < n, `partly done: ${JSON.stringify(after)}`);

  // Nothing was lost or changed by the kill: every row still decrypts to its value.
  const { rows } = await db.query(`SELECT id, v FROM ${setup.table}`);
  t.is(rows.filter((r) => setup.vault.decryptToString(r.v, setup.ctx) !== `v${r.id}`).length, 0);

  const rerun = await cli([...setup.cliArgs, '--json', '--quiet']);
  t.is(rerun.code, 0, rerun.stderr);
  const summary = JSON.parse(rerun.stdout);
  t.is(summary.updated, n - after[2]);
  t.is(summary.skipped, after[2]);
  t.is(summary.failed, 0);
  await assertAllCurrent(t, setup, expected);
});

test('postgres: two reencrypt processes share a table while the application writes', async (t) => {
  const n = 3000;
  const setup = await rotatedTable('shared', n);
  const expected = new Map(Array.from({ length: n }, (_, i) => [i + 1, `v${i + 1}`]));
  // Long enough (150 batches, 50 ms apart) that both workers overlap even when a loaded machine starts one late.
  const args = [...setup.cliArgs, '--batch-size', '20', '--pause', '50', '--json', '--quiet'];
  const workers = [cli(args), cli(args)];
  let running = true;
  void Promise.all(workers).then(() => (running = false));

  // The application: new values under the current key, row locks held on another column, new rows.
  let writes = 0;
  let nextId = n + 1;
  while (running) {
    const id = 1 + Math.floor(Math.random() * n);
    const value = `app-${writes}-${id}`;
    const ciphertext = setup.vault.encryptToString(value, setup.ctx);
    await db.query(`UPDATE ${setup.table} SET v = $1, v_idx = $2 WHERE id = $3`, [ciphertext, setup.index.compute(value, setup.ctx).int, id]);
    expected.set(id, value);
    const client = await server.pool.connect();
    await client.query('BEGIN');
    await client.query(`UPDATE ${setup.table} SET note = 'touched' WHERE id = $1`, [1 + Math.floor(Math.random() * n)]);
    await sleep(5);
    await client.query('COMMIT');
    client.release();
    if (writes % 10 === 0) {
      const fresh = `new-${nextId}`;
      await db.query(`INSERT INTO ${setup.table} (id, v, v_idx) VALUES ($1, $2, $3)`, [nextId, setup.vault.encryptToString(fresh, setup.ctx), setup.index.compute(fresh, setup.ctx).int]);
      expected.set(nextId, fresh);
      nextId += 1;
    }
    writes += 1;
  }
  const results = await Promise.all(workers);
  for (const r of results) t.is(r.code, 0, r.stderr);
  const summaries = results.map((r) => JSON.parse(r.stdout));
  // On a loaded 2-core machine one write round (two transactions and a sleep) can take 300 ms.
  t.true(writes >= 10, `the application wrote during the job (${writes} writes)`);
  t.true(summaries.every((s) => s.updated > 0), `both processes did work: ${JSON.stringify(summaries)}`);
  t.true(summaries[0].updated + summaries[1].updated <= n, 'no row re-encrypted twice');
  await assertAllCurrent(t, setup, expected);
});
