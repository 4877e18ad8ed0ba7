// The column jobs on audited tables against a real PostgreSQL server (started here, stopped after):
// the shared cases of helpers/audit-job-cases.js, and the CLI — a signed `sifredb reencrypt` killed
// with SIGKILL mid-run and rerun leaves a chain that verifies; without audit keys it is refused.
import test from 'ava';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, FileKeyProvider, inspect, openDatabase, verifyAudit } from '../dist/index.js';
import { registerAuditJobCases, rotatedAuditedTable } from './helpers/audit-job-cases.js';
import { CLI } from './helpers/cli.js';
import { startPostgres } from './helpers/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-audit-jobs-'));
const server = await startPostgres();
const db = await openDatabase(server.url, { poolSize: 6 });

test.after.always(async () => {
  await db.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

registerAuditJobCases(test, `postgres [${backend}]`, async () => ({ db }));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the CLI; resolves to { code, signal, stdout, stderr }. `onSpawn(child)` sees the process. */
function cli(args, onSpawn) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SIFREDB_KEYS: '', SIFREDB_DB: '', SIFREDB_AUDIT_KEYS: '', SIFREDB_BACKEND: backend } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.(child);
  });
}

/** An audited table on a file keystore (for the CLI), its schema file, and the CLI's arguments. */
async function cliTable(prefix, n) {
  const keysFile = join(dir, `${prefix}-${process.hrtime.bigint()}.json`);
  const setup = await rotatedAuditedTable(db, prefix, n, await FileKeyProvider.create(keysFile));
  const schemaFile = join(dir, `${setup.name}.schema.json`);
  writeFileSync(
    schemaFile,
    JSON.stringify({
      version: 1,
      tables: [
        {
          table: setup.name,
          tenant: 'tenant_id',
          columns: {
            email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }], deterministicLookups: [{ column: 'email_det' }] },
            born: { type: 'date', storage: 'bytea' },
            ssn: { type: 'string', mode: 'deterministic' },
          },
        },
      ],
    }),
  );
  const args = ['reencrypt', '--db', server.url, '--schema', schemaFile, '--column', 'email', '--keys', keysFile];
  return { ...setup, keysFile, args };
}

async function emailVersions(name) {
  const counts = { 1: 0, 2: 0 };
  for (const r of (await db.query(`SELECT email FROM ${name}`)).rows) counts[inspect(r.email).keyVersion] += 1;
  return counts;
}

test(`postgres [${backend}]: sifredb reencrypt without audit keys on an audited table exits 4 and writes nothing; with them it signs as --actor`, async (t) => {
  const n = 40;
  const setup = await cliTable('ajob_cli', n);
  const refused = await cli([...setup.args, '--quiet']);
  t.is(refused.code, 4, refused.stderr);
  t.regex(refused.stderr, /is audited .*no audit keys/);
  t.deepEqual(await emailVersions(setup.name), { 1: n, 2: 0 });
  t.is((await cli([...setup.args, '--audit-keys', setup.keys.file.path, '--table', 'x', '--quiet'])).code, 2, 'a contradicted schema is a usage error');
  const signed = await cli([...setup.args, '--audit-keys', setup.keys.file.path, '--actor', 'ops:rotation', '--json', '--quiet']);
  t.is(signed.code, 0, signed.stderr);
  t.is(JSON.parse(signed.stdout).updated, n);
  t.deepEqual((await verifyAudit(db, setup.name, { publicKeys: setup.keys.publicKeys })).findings, []);
  const { rows } = await db.query(`SELECT count(*) AS n FROM sifredb_audit WHERE table_name = $1 AND operation = 'update' AND position('ops:rotation' in encode(record, 'escape')) > 0`, [setup.name]);
  t.is(Number(rows[0].n), n, 'each update record names the actor');
});

test(`postgres [${backend}]: a signed sifredb reencrypt killed with SIGKILL mid-run, then rerun, leaves a chain that verifies`, async (t) => {
  const n = 2000;
  const setup = await cliTable('ajob_crash', n);
  const args = [...setup.args, '--audit-keys', setup.keys.file.path, '--batch-size', '40', '--pause', '15', '--quiet'];
  let killedAt;
  const killed = await cli(args, async (child) => {
    for (;;) {
      const counts = await emailVersions(setup.name);
      if (counts[2] >= 200) {
        child.kill('SIGKILL');
        killedAt = counts[2];
        return;
      }
      if (child.exitCode !== null) return;
      await sleep(20);
    }
  });
  t.is(killed.signal, 'SIGKILL', `the job ended before it was killed: ${killed.stdout}${killed.stderr}`);
  const after = await emailVersions(setup.name);
  t.true(after[2] >= killedAt && after[2] < n, `partly done: ${JSON.stringify(after)}`);
  let report = await verifyAudit(db, setup.name, { publicKeys: setup.keys.publicKeys });
  t.deepEqual(report.findings, [], 'every committed batch committed its records with it');
  t.is(report.records, n + after[2]);
  // The rerun finds its audit keys beside the keystore (<keys>.audit.json), as the table is audited;
  // without --schema it cannot sign, and says so instead of writing.
  copyFileSync(setup.keys.file.path, `${setup.keysFile}.audit.json`);
  const noSchema = await cli(['reencrypt', '--db', server.url, '--table', setup.name, '--column', 'email', '--tenant-column', 'tenant_id', '--keys', setup.keysFile, '--quiet']);
  t.is(noSchema.code, 2, noSchema.stderr);
  t.regex(noSchema.stderr, /needs --schema/);
  const rerun = await cli([...setup.args, '--batch-size', '40', '--json']);
  t.regex(rerun.stderr, /signing the job's writes with .*\.audit\.json as sifredb-cli@/);
  t.is(rerun.code, 0, rerun.stderr);
  t.is(JSON.parse(rerun.stdout).updated, n - after[2]);
  report = await verifyAudit(db, setup.name, { publicKeys: setup.keys.publicKeys });
  t.deepEqual(report.findings, []);
  t.is(report.records, 2 * n);
  t.deepEqual(await emailVersions(setup.name), { 1: 0, 2: n });
});
