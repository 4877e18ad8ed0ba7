#!/usr/bin/env node
// `npm run bench:schema`: what the table schema costs.
//   1. A re-encryption job with a blind-index column, with and without the check of every row's
//      stored term (verifyLookups), on the same table, alternating runs: time per 2,000-row batch.
//   2. Rows through EncryptedTable against the same work done with Vault + BlindIndex by hand.
//
//   node benchmark/schema-checks.js [--rows=N] [--runs=N] [--db=postgres://…]
// Default database: a temporary PGlite directory. Results go to stdout; compare ratios, not times.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlindIndex, EncryptedTable, EncryptionContext, Keyring, StaticKeyProvider, Vault, backend, defineTable, openDatabase, reencryptColumn } from '../dist/index.js';

const flags = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const ROWS = Number(flags.rows ?? 20_000);
const RUNS = Number(flags.runs ?? 3);
const BATCH = 2_000;
const log = (...a) => console.error(...a);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-bench-schema-'));
const db = await openDatabase(flags.db ?? path.join(tmp, 'db'));
const provider = new StaticKeyProvider(randomBytes(32));
const keyring = await Keyring.open(provider);
const schema = defineTable({
  table: 'bench_schema',
  columns: { email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }] } },
});

async function fill() {
  await db.query('DROP TABLE IF EXISTS bench_schema');
  await db.query('CREATE TABLE bench_schema (id int PRIMARY KEY, email text, email_idx integer)');
  const users = await EncryptedTable.open(keyring, schema);
  const ids = Array.from({ length: ROWS }, (_, i) => i + 1);
  const stored = users.encryptRows(ids.map((id) => ({ id, email: `User${id}@Example.com` })));
  await db.query('INSERT INTO bench_schema SELECT * FROM unnest($1::int[], $2::text[], $3::int[])', [ids, stored.map((r) => r.email), stored.map((r) => r.email_idx)]);
}

log(`schema checks — ${os.cpus()[0]?.model}, ${os.cpus().length} cores, Node ${process.versions.node}, backend ${backend}, ${db.kind}, ${ROWS} rows`);
const jobMs = { on: [], off: [] };
for (let run = 0; run < RUNS; run++) {
  for (const verify of run % 2 === 0 ? [true, false] : [false, true]) {
    await fill();
    await provider.rotate();
    await keyring.refresh();
    const vault = await Vault.open(keyring);
    const index = await BlindIndex.open(keyring, { name: 'email', bits: 18, transforms: ['trim', 'lowercase'] });
    const result = await reencryptColumn({ db, table: 'bench_schema', column: 'email', vault, blindIndexes: [{ index, column: 'email_idx' }], verifyLookups: verify, countRows: false });
    if (result.updated !== ROWS) throw new Error(`re-encrypted ${result.updated} of ${ROWS}`);
    (verify ? jobMs.on : jobMs.off).push({ total: result.elapsedMs, transform: result.timings.transformMs });
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const batches = ROWS / BATCH;
const perBatch = (runs, key) => median(runs.map((r) => r[key])) / batches;
console.log(`reencrypt with a blind-index column, ${BATCH}-row batches (median of ${RUNS}):`);
console.log(`  checks on : ${perBatch(jobMs.on, 'total').toFixed(1)} ms/batch (decrypt+encrypt+terms ${perBatch(jobMs.on, 'transform').toFixed(1)} ms)`);
console.log(`  checks off: ${perBatch(jobMs.off, 'total').toFixed(1)} ms/batch (decrypt+encrypt+terms ${perBatch(jobMs.off, 'transform').toFixed(1)} ms)`);
console.log(`  the check costs ${(perBatch(jobMs.on, 'transform') - perBatch(jobMs.off, 'transform')).toFixed(2)} ms per batch of crypto (${((perBatch(jobMs.on, 'total') / perBatch(jobMs.off, 'total') - 1) * 100).toFixed(1)} % of the job's time)`);

// Rows through the schema vs by hand, in memory.
const users = await EncryptedTable.open(keyring, schema);
const vault = await Vault.open(keyring);
const index = await BlindIndex.open(keyring, { name: 'email', bits: 18, transforms: ['trim', 'lowercase'] });
const ctx = EncryptionContext.of('bench_schema', 'email');
const plain = Array.from({ length: BATCH }, (_, i) => ({ id: i, email: `User${i}@Example.com` }));
const time = (fn) => {
  const samples = [];
  for (let r = 0; r < 15; r++) {
    const t = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return median(samples);
};
const schemaWrite = time(() => users.encryptRows(plain));
const handWrite = time(() => {
  const sealed = vault.encryptMany(plain.map((r) => r.email), ctx);
  const terms = index.computeMany(plain.map((r) => r.email), ctx);
  // The same stored form as the schema writes: the `sdb1:` text form for a TEXT column.
  return plain.map((r, i) => ({ id: r.id, email: `sdb1:${sealed[i].toString('base64url')}`, email_idx: terms[i].int }));
});
const stored = users.encryptRows(plain);
const schemaRead = time(() => users.decryptRows(stored));
const handRead = time(() => stored.map((r) => vault.decryptToString(r.email, ctx)));
console.log(`rows of ${BATCH} (one string column with an 18-bit index):`);
console.log(`  write: EncryptedTable.encryptRows ${schemaWrite.toFixed(2)} ms, by hand (encryptMany + text form + computeMany) ${handWrite.toFixed(2)} ms, ratio ${(schemaWrite / handWrite).toFixed(2)}`);
console.log(`  read : EncryptedTable.decryptRows ${schemaRead.toFixed(2)} ms, by hand (decryptToString per row) ${handRead.toFixed(2)} ms, ratio ${(schemaRead / handRead).toFixed(2)}`);
await db.close();
fs.rmSync(tmp, { recursive: true, force: true });
