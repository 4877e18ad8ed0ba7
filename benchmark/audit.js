// Audit signatures' cost (`npm run bench` runs it after the integrations; alone: `node benchmark/audit.js`):
// - Ed25519 on both backends: sign, verify, and batch verification of 1,000 signatures of ~250-byte
//   records, in records per second on one core;
// - the verify rate of `verifyAudit` over a whole audited table (records read, parsed, hashed, every
//   signature batch-verified, the chain and every row checked), on PGlite;
// - a signed write per row (AuditedTable.insert, its own transaction) against the peer: the same
//   row encrypted by EncryptedTable and inserted in its own transaction, unsigned; single rows and
//   100-row transactions.
// Both backends are measured in the same run: the database phases run in one child process per
// backend (`--child native|js`), as the backend is chosen once per process.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/**
 * CPU milliseconds of this process during `fn` (user + system, every thread): what one core
 * spends, whatever else runs on a shared machine. The wall time is reported beside it.
 */
async function cpuTimed(fn) {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** Ed25519 on both backends, in-process; records per second. */
async function primitives(quick) {
  const { jsBackend, nativeBackend } = await import('../__test__/helpers/backends.js');
  const secret = randomBytes(32);
  const n = quick ? 300 : 1000;
  const messages = Array.from({ length: n }, () => randomBytes(250));
  const out = {};
  for (const backend of [nativeBackend, jsBackend]) {
    const ed = backend.ed25519;
    const publicKey = ed.publicKey(secret);
    const signatures = messages.map((m) => ed.sign(secret, m));
    const items = messages.map((message, i) => ({ publicKey, message, signature: signatures[i] }));
    const runs = quick ? 2 : 5;
    const signMs = [];
    const verifyMs = [];
    const batchMs = [];
    for (let r = 0; r < runs; r++) {
      signMs.push(await cpuTimed(() => messages.forEach((m) => ed.sign(secret, m))));
      verifyMs.push(await cpuTimed(() => items.forEach((i) => ed.verify(i.publicKey, i.message, i.signature))));
      batchMs.push(await cpuTimed(() => ed.verifyBatch(items)));
    }
    out[backend.name] = {
      signPerSecond: Math.round((n * 1000) / median(signMs)),
      verifyPerSecond: Math.round((n * 1000) / median(verifyMs)),
      batchVerifyPerSecond: Math.round((n * 1000) / median(batchMs)),
    };
  }
  return out;
}

/** The database phases on the backend of this process (`--child`): prints one JSON line. */
async function child(quick) {
  const sdb = await import('../dist/index.js');
  const { AuditKeyFile, AuditedTable, EncryptedTable, Keyring, StaticKeyProvider, applySchema, defineTable, openDatabase, verifyAudit } = sdb;
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-bench-audit-'));
  try {
    const db = await openDatabase(join(dir, 'db'));
    const schemaOf = (table) =>
      defineTable({
        table,
        tenant: 'tenant_id',
        columns: {
          email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }] },
          ssn: { type: 'string', mode: 'deterministic' },
        },
      });
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const signer = await (await AuditKeyFile.create(join(dir, 'audit.json'))).signer();
    let next = 0;
    const row = () => {
      next += 1;
      return { id: next, tenant_id: `t${next % 4}`, name: `name ${next}`, email: `user${next}@example.com`, ssn: `123-45-${String(next).padStart(4, '0')}` };
    };
    const tables = {};
    for (const name of ['plain_w', 'signed_w']) {
      await db.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text)`);
      const schema = schemaOf(name);
      await applySchema(db, schema, { audit: true });
      const users = await EncryptedTable.open(keyring, schema);
      tables[name] = { users, audited: await AuditedTable.open(users, db, signer) };
    }
    const unsigned = (users, rows) =>
      db.withSession(async (s) => {
        await s.query('BEGIN');
        for (const stored of users.encryptRows(rows)) {
          const columns = Object.keys(stored);
          await s.query(`INSERT INTO ${users.schema.table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, columns.map((c) => stored[c]));
        }
        await s.query('COMMIT');
      });
    const rounds = quick ? 3 : 5;
    const single = quick ? 100 : 300;
    const batch = 100;
    const result = { backend: sdb.backend, singleRowMs: {}, batchRowMs: {} };
    const plain1 = [];
    const signed1 = [];
    const plainB = [];
    const signedB = [];
    for (let r = 0; r < rounds; r++) {
      plain1.push((await cpuTimed(async () => {
        for (let i = 0; i < single; i++) await unsigned(tables.plain_w.users, [row()]);
      })) / single);
      signed1.push((await cpuTimed(async () => {
        for (let i = 0; i < single; i++) await tables.signed_w.audited.insert([row()], { actor: 'bench' });
      })) / single);
      plainB.push((await cpuTimed(() => unsigned(tables.plain_w.users, Array.from({ length: batch }, row)))) / batch);
      signedB.push((await cpuTimed(() => tables.signed_w.audited.insert(Array.from({ length: batch }, row), { actor: 'bench' }))) / batch);
    }
    result.singleRowMs = { unsigned: median(plain1), signed: median(signed1) };
    result.batchRowMs = { unsigned: median(plainB), signed: median(signedB) };
    // The verify rate over the whole signed table.
    const verifyMs = [];
    const verifyWallMs = [];
    let report;
    for (let r = 0; r < (quick ? 2 : 3); r++) {
      const before = performance.now();
      verifyMs.push(await cpuTimed(async () => {
        report = await verifyAudit(db, 'signed_w');
      }));
      verifyWallMs.push(performance.now() - before);
    }
    if (report.findings.length > 0) throw new Error(`the benchmark's chain has findings: ${JSON.stringify(report.findings.slice(0, 3))}`);
    // The same verification with the database's answers replayed from memory: what the verifier
    // itself costs (parse, hash, batch-verify, chain and row checks), without PGlite's reads.
    const answers = new Map();
    const recording = { query: async (sql, params = []) => {
      const key = JSON.stringify([sql, params]);
      if (!answers.has(key)) answers.set(key, await db.query(sql, params));
      return answers.get(key);
    } };
    await verifyAudit(recording, 'signed_w');
    const cpuMs = [];
    for (let r = 0; r < (quick ? 2 : 5); r++) cpuMs.push(await cpuTimed(() => verifyAudit(recording, 'signed_w')));
    result.verify = {
      records: report.records,
      recordsPerSecond: Math.round((report.records * 1000) / median(verifyMs)),
      wallRecordsPerSecond: Math.round((report.records * 1000) / median(verifyWallMs)),
      cpuRecordsPerSecond: Math.round((report.records * 1000) / median(cpuMs)),
    };
    signer.close();
    await db.close();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs every phase; returns the results for benchmark/run.js. */
export async function runAuditScenario({ quick = false } = {}) {
  const results = { primitives: await primitives(quick), database: {} };
  for (const backend of ['native', 'js']) {
    const run = spawnSync(process.execPath, [here, '--child', ...(quick ? ['--quick'] : [])], {
      env: { ...process.env, SIFREDB_BACKEND: backend },
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (run.status !== 0) throw new Error(`audit benchmark (${backend}) failed: ${run.stderr}`);
    results.database[backend] = JSON.parse(run.stdout.trim().split('\n').at(-1));
  }
  return results;
}

const rate = (n) => `${n.toLocaleString('en-US')}/s`;
const ms = (x) => `${(x * 1000).toFixed(0)} µs`;

/** The results as a Markdown section. */
export function renderAudit(results) {
  const p = results.primitives;
  const d = results.database;
  const lines = [
    '## Audit signatures',
    '',
    'Ed25519, per CPU-second of one core, 1,000 records of 250 bytes:',
    '',
    '| backend | sign | verify | batch verify |',
    '| --- | --- | --- | --- |',
    ...['native', 'js'].map((b) => `| ${b} | ${rate(p[b].signPerSecond)} | ${rate(p[b].verifyPerSecond)} | ${rate(p[b].batchVerifyPerSecond)} |`),
    '',
    `\`verifyAudit\` of a whole table (${d.native.verify.records.toLocaleString('en-US')} records: parsed, hashed, signatures batch-verified, chain and every row checked), records per CPU-second of the process (the machine is shared): with PGlite's reads, native ${rate(d.native.verify.recordsPerSecond)}, js ${rate(d.js.verify.recordsPerSecond)}; the verifier alone (the database's answers replayed from memory), native ${rate(d.native.verify.cpuRecordsPerSecond)}, js ${rate(d.js.verify.cpuRecordsPerSecond)} (target: 30,000/s native).`,
    '',
    'CPU time of a write per row on PGlite (in-process), encrypted by EncryptedTable (email with a blind index, deterministic ssn); the unsigned rows are the peer:',
    '',
    '| backend | unsigned, 1 row/transaction | signed | unsigned, 100 rows/transaction | signed |',
    '| --- | --- | --- | --- | --- |',
    ...['native', 'js'].map((b) => `| ${b} | ${ms(d[b].singleRowMs.unsigned)} | ${ms(d[b].singleRowMs.signed)} | ${ms(d[b].batchRowMs.unsigned)} | ${ms(d[b].batchRowMs.signed)} |`),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] === here) {
  const quick = process.argv.includes('--quick');
  if (process.argv.includes('--child')) {
    await child(quick);
  } else {
    const results = await runAuditScenario({ quick });
    console.log(JSON.stringify(results, null, 2));
    console.log(renderAudit(results));
  }
}
