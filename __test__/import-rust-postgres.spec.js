// import-rust against a real PostgreSQL server (started here, stopped after): the shared cases, and
// the CLI on what only a server shows — a run killed with SIGKILL mid-way and rerun, TEXT values,
// and a tampered row reported (exit 1) and left as it was.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyProvider, Keyring, Vault, inspect, isEncrypted, openDatabase } from '../dist/index.js';
import { CLI } from './helpers/cli.js';
import { openVaults, registerImportCases, rustData, v1Context } from './helpers/import-rust-cases.js';
import { startPostgres } from './helpers/postgres.js';
import { tableName } from './helpers/reencrypt-cases.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-import-pg-'));
const server = await startPostgres();
const db = await openDatabase(server.url, { poolSize: 6 });

test.after.always(async () => {
  await db.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

registerImportCases(test, 'postgres', async () => ({ db }));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function cli(args, onSpawn) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SIFREDB_KEYS: '', SIFREDB_DB: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.(child);
  });
}

/**
 * A table of `n` Rust values (`value <id> ü`, tenants acme/globex/none) in a `kind` column, a file
 * keystore, and the CLI arguments that import it. Beyond the crates' own few hundred values, the
 * bulk is sealed by RustDeterministicVault.encrypt, which rust-import.spec.js checks byte for byte
 * against the crates' output.
 */
async function rustTable(prefix, n, kind, spell = (bytes) => bytes) {
  const k = await openVaults();
  const keysFile = join(dir, `${prefix}-${process.hrtime.bigint()}.json`);
  await FileKeyProvider.create(keysFile);
  const vault = await Vault.open(await Keyring.open(await FileKeyProvider.open(keysFile)));
  const table = tableName(prefix);
  await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, tenant text, v ${kind})`);
  const tenantOf = (id) => (id % 3 === 0 ? null : id % 3 === 1 ? 'acme' : 'globex');
  const valueOf = (id) => `value ${id} ü`;
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::bigint[], $2::text[], $3::${kind}[])`, [
    ids,
    ids.map(tenantOf),
    ids.map((id) => spell(k.rustVault.encrypt(valueOf(id), { tenant: tenantOf(id), table: 'accounts', column: 'secret' }))),
  ]);
  const cliArgs = [
    'import-rust',
    '--db',
    server.url,
    '--table',
    table,
    '--column',
    'v',
    '--tenant-column',
    'tenant',
    '--context-table',
    'accounts',
    '--context-column',
    'secret',
    '--keys',
    keysFile,
    '--rust-deterministic-key',
    rustData().deterministicKey,
  ];
  return { table, vault, tenantOf, valueOf, cliArgs, n };
}

async function convertedCount(table) {
  const { rows } = await db.query(`SELECT v FROM ${table}`);
  return rows.filter((r) => isEncrypted(r.v)).length;
}

async function assertAllConverted(t, { table, vault, tenantOf, valueOf, n }) {
  const { rows } = await db.query(`SELECT id, v FROM ${table} ORDER BY id`);
  t.is(rows.length, n);
  const wrong = rows.filter((r) => vault.decryptToString(r.v, v1Context('accounts', 'secret', tenantOf(Number(r.id)))) !== valueOf(Number(r.id)));
  t.is(wrong.length, 0, `rows not holding their value: ${wrong.slice(0, 5).map((r) => r.id)}`);
}

test('postgres: an import-rust killed with SIGKILL mid-run is simply run again', async (t) => {
  const setup = await rustTable('rkill', 4000, 'bytea');
  let killedAt;
  const killed = await cli([...setup.cliArgs, '--batch-size', '40', '--pause', '15', '--quiet'], async (child) => {
    for (;;) {
      const done = await convertedCount(setup.table);
      if (done >= 400) {
        child.kill('SIGKILL');
        killedAt = done;
        return;
      }
      if (child.exitCode !== null) return;
      await sleep(20);
    }
  });
  t.is(killed.signal, 'SIGKILL', `the job ended before it was killed: ${killed.stdout}${killed.stderr}`);
  const after = await convertedCount(setup.table);
  t.true(after >= killedAt && after < setup.n, `partly done: ${after}`);
  // Nothing was lost by the kill: every row holds either its Rust value or its v1 value.
  const k = await openVaults();
  const { rows } = await db.query(`SELECT id, v FROM ${setup.table}`);
  for (const r of rows) {
    const id = Number(r.id);
    const ctx = { tenant: setup.tenantOf(id), table: 'accounts', column: 'secret' };
    const value = isEncrypted(r.v) ? setup.vault.decryptToString(r.v, v1Context('accounts', 'secret', ctx.tenant)) : k.rustVault.decrypt(r.v, ctx).toString();
    if (value !== setup.valueOf(id)) t.fail(`row ${id}`);
  }
  const rerun = await cli([...setup.cliArgs, '--json', '--quiet']);
  t.is(rerun.code, 0, rerun.stderr);
  const summary = JSON.parse(rerun.stdout);
  t.like(summary, { updated: setup.n - after, skipped: after, failed: 0 });
  await assertAllConverted(t, setup);
});

test('postgres: import-rust of a TEXT (base64) column; a tampered row is reported (exit 1) and left as it was; a rerun changes nothing', async (t) => {
  const setup = await rustTable('rtext', 600, 'text', (bytes) => bytes.toString('base64'));
  const { rows: [victim] } = await db.query(`SELECT v FROM ${setup.table} WHERE id = 77`);
  const tampered = Buffer.from(victim.v, 'base64');
  tampered[tampered.length - 1] ^= 1;
  await db.query(`UPDATE ${setup.table} SET v = $1 WHERE id = 77`, [tampered.toString('base64')]);

  const first = await cli([...setup.cliArgs, '--algorithm', 'xchacha20-poly1305', '--json']);
  t.is(first.code, 1, first.stderr);
  t.like(JSON.parse(first.stdout), { updated: setup.n - 1, failed: 1 });
  t.regex(first.stderr, /row 77: ERR_SIFREDB_AUTH/);
  const { rows: [left] } = await db.query(`SELECT v FROM ${setup.table} WHERE id = 77`);
  t.is(left.v, tampered.toString('base64'));
  const { rows } = await db.query(`SELECT id, v FROM ${setup.table} WHERE id <> 77`);
  for (const r of rows) {
    t.is(inspect(r.v).algorithm, 'xchacha20-poly1305');
    if (setup.vault.decryptToString(r.v, v1Context('accounts', 'secret', setup.tenantOf(Number(r.id)))) !== setup.valueOf(Number(r.id))) t.fail(`row ${r.id}`);
  }
  const before = (await db.query(`SELECT id, v FROM ${setup.table} ORDER BY id`)).rows;
  const second = await cli([...setup.cliArgs, '--algorithm', 'xchacha20-poly1305', '--json', '--quiet']);
  t.is(second.code, 1);
  t.like(JSON.parse(second.stdout), { updated: 0, skipped: setup.n - 1, failed: 1 });
  t.deepEqual((await db.query(`SELECT id, v FROM ${setup.table} ORDER BY id`)).rows, before);
});
