// Audit signatures on the embedded PGlite database (the shared cases of helpers/audit-cases.js),
// and the `sifredb audit` commands on a PGlite directory.
import test from 'ava';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, openDatabase } from '../dist/index.js';
import { auditKeys, auditedTable, registerAuditCases } from './helpers/audit-cases.js';
import { runCli } from './helpers/cli.js';
import { tempPGlite } from './helpers/pglite.js';

const setup = tempPGlite(test);

registerAuditCases(test, `pglite [${backend}]`, setup);

test(`pglite [${backend}]: sifredb audit public-key, checkpoint and verify (exit 0 clean, 1 with one line per finding, --json)`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-audit-cli-'));
  const path = join(dir, 'db');
  const keys = await auditKeys();
  let db = await openDatabase(path);
  const { name } = await auditedTable(db, 'audit_cli', 4, keys);
  await db.close();
  const env = { SIFREDB_BACKEND: backend };
  const publicKey = join(dir, 'audit.pub.json');
  let run = await runCli(['audit', 'public-key', '--audit-keys', keys.file.path, '--out', publicKey], { env });
  t.is(run.code, 0, run.stderr);
  t.false(readFileSync(publicKey, 'utf8').includes('secretKey'));
  const checkpoint = join(dir, 'checkpoint.json');
  run = await runCli(['audit', 'checkpoint', '--db', path, '--table', name, '--audit-keys', keys.file.path, '--out', checkpoint], { env });
  t.is(run.code, 0, run.stderr);
  t.is(JSON.parse(readFileSync(checkpoint, 'utf8')).count, '4');
  const verify = (...extra) => runCli(['audit', 'verify', '--db', path, '--table', name, '--public-key', publicKey, '--checkpoint', checkpoint, ...extra], { env });
  run = await verify();
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout, '');
  db = await openDatabase(path);
  await db.query(`UPDATE ${name} SET ssn = (SELECT ssn FROM ${name} WHERE id = 1) WHERE id = 2`);
  await db.query(`DELETE FROM ${name} WHERE id = 3`);
  await db.close();
  run = await verify();
  t.is(run.code, 1);
  t.deepEqual(run.stdout.trim().split('\n').map((l) => l.replace(/: .*$/, '')).sort(), ['row 2', 'row 3']);
  t.regex(run.stdout, /^row 2: copied: ssn holds the value of row 1/m);
  t.regex(run.stdout, /^row 3: deleted: /m);
  run = await verify('--json');
  t.is(run.code, 1);
  const report = JSON.parse(run.stdout);
  t.deepEqual(report.findings.map((f) => f.kind).sort(), ['copied', 'deleted']);
  // A tampered checkpoint file is refused (its signature), not trusted.
  const file = JSON.parse(readFileSync(checkpoint, 'utf8'));
  const bytes = Buffer.from(file.checkpoint, 'base64');
  bytes[30] ^= 1;
  file.checkpoint = bytes.toString('base64');
  writeFileSync(checkpoint, JSON.stringify(file));
  run = await verify('--json');
  t.true(JSON.parse(run.stdout).findings.some((f) => f.kind === 'bad signature' && /checkpoint/.test(f.message)));
});

test(`sifredb audit keygen, rotate, public-key; schema sql --audit; usage errors [${backend}]`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-audit-keys-cli-'));
  const keys = join(dir, 'audit-keys.json');
  const env = { SIFREDB_BACKEND: backend };
  let run = await runCli(['audit', 'keygen', '--audit-keys', keys], { env });
  t.is(run.code, 0, run.stderr);
  t.is(statSync(keys).mode & 0o777, 0o600);
  run = await runCli(['audit', 'keygen', '--audit-keys', keys], { env });
  t.is(run.code, 3, 'an existing key file is not replaced');
  run = await runCli(['audit', 'rotate', '--audit-keys', keys, '--json'], { env });
  t.is(run.code, 0, run.stderr);
  const rotated = JSON.parse(run.stdout).keyId;
  run = await runCli(['audit', 'public-key', '--audit-keys', keys], { env });
  t.is(run.code, 0, run.stderr);
  const exported = JSON.parse(run.stdout);
  t.is(exported.format, 'sifredb-audit-public-keys');
  t.is(exported.keys.length, 2);
  t.is(exported.keys[1].keyId, rotated);
  t.false(run.stdout.includes('secret'));
  const schemaFile = join(dir, 'schema.json');
  writeFileSync(schemaFile, JSON.stringify({ version: 1, tables: [{ table: 'users', columns: { email: { type: 'string' } } }] }));
  run = await runCli(['schema', 'sql', '--schema', schemaFile, '--audit'], { env });
  t.is(run.code, 0, run.stderr);
  for (const table of ['public.sifredb_audit ', 'public.sifredb_audit_head', 'public.sifredb_audit_keys']) t.true(run.stdout.includes(`CREATE TABLE IF NOT EXISTS ${table}`), table);
  run = await runCli(['schema', 'sql', '--schema', schemaFile], { env });
  t.false(run.stdout.includes('sifredb_audit'), 'only with --audit');
  t.is((await runCli(['audit', 'verify', '--table', 'users'], { env })).code, 2, 'no --db');
  t.is((await runCli(['audit', 'sign'], { env })).code, 2, 'unknown action');
  t.is((await runCli(['audit', 'checkpoint', '--db', join(dir, 'db'), '--table', 'users'], { env })).code, 2, 'no --audit-keys');
  // Beside the keystore by default: its own 0600 file, the keystore untouched.
  const keystore = join(dir, 'keys.json');
  t.is((await runCli(['keygen', '--keys', keystore], { env })).code, 0);
  const keystoreText = readFileSync(keystore, 'utf8');
  run = await runCli(['audit', 'keygen', '--keys', keystore], { env });
  t.is(run.code, 0, run.stderr);
  t.is(statSync(`${keystore}.audit.json`).mode & 0o777, 0o600);
  t.is(readFileSync(keystore, 'utf8'), keystoreText);
  t.is((await runCli(['audit', 'public-key'], { env: { ...env, SIFREDB_KEYS: keystore } })).code, 0);
});
