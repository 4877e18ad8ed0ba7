/**
 * `sifredb bench`: the benchmark suite (benchmark/run.js, shipped with the repository), or with
 * `--reencrypt` the re-encryption throughput of a database: rows/s and where the time goes.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EncryptionContext } from '../context.js';
import { reencryptColumn } from '../db/column-job.js';
import { type Database, openDatabase } from '../db/database.js';
import { quoteIdent } from '../db/schema.js';
import { Keyring } from '../keys/keyring.js';
import { StaticKeyProvider } from '../keys/static.js';
import { Vault } from '../vault/vault.js';
import { CliError, type Command, count, EXIT, int, Output, str, type Values } from './common.js';
import { ProgressReporter } from './progress.js';

const SUITE = fileURLToPath(new URL('../../benchmark/run.js', import.meta.url));

export const bench: Command = {
  name: 'bench',
  summary: 'run the benchmark suite, or measure re-encryption throughput (--reencrypt)',
  usage: `Usage: sifredb bench [-- <benchmark options>]
       sifredb bench --reencrypt [--db <url|path>] [--rows <n>] [--batch-size <n>] [--pipeline <n>]

Without --reencrypt: runs the benchmark suite (benchmark/run.js, as \`npm run bench\`); arguments
after -- are passed to it. It ships with the repository, not with the npm package.

With --reencrypt: fills a scratch table with <n> 32-byte values under key version 1 (an in-memory
key, nothing persisted), rotates, re-encrypts the table and prints rows/s and where the time went
(batch SELECTs, encryption, UPDATE + COMMIT). The table is dropped afterwards. Default database: a
temporary PGlite directory.

Options:
  --reencrypt           measure re-encryption instead of running the suite
  --db <url|path>       database for --reencrypt
  --rows <n>            rows (default 200000)
  --batch-size <n>      rows per batch (default 2000)
  --pipeline <n>        batches in flight on PostgreSQL (default 2)
  --json                print the result as JSON`,
  options: {
    reencrypt: { type: 'boolean' },
    db: { type: 'string' },
    rows: { type: 'string' },
    'batch-size': { type: 'string' },
    pipeline: { type: 'string' },
  },
  positionals: Number.MAX_SAFE_INTEGER,
  async run({ values, positionals }) {
    if (values.reencrypt === true) return benchReencrypt(values);
    if (!existsSync(SUITE)) {
      throw new CliError('the benchmark suite (benchmark/run.js) is not here; it ships with the repository, not the npm package', EXIT.usage, 'ERR_SIFREDB_USAGE');
    }
    const child = spawn(process.execPath, [SUITE, ...positionals], { stdio: 'inherit' });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal ? EXIT.interrupted : EXIT.internal)));
    });
  },
};

async function benchReencrypt(values: Values): Promise<number> {
  const out = new Output(values);
  const rows = int(values, 'rows', 1, 100_000_000) ?? 200_000;
  const batchSize = int(values, 'batch-size', 1, 1_000_000) ?? 2_000;
  const pipeline = int(values, 'pipeline', 1, 64) ?? 2;
  const given = str(values, 'db');
  const scratch = given === undefined ? await mkdtemp(join(tmpdir(), 'sifredb-bench-')) : undefined;
  const db: Database = await openDatabase(given ?? join(scratch!, 'db'), { poolSize: pipeline + 1 });
  const table = `sifredb_bench_${process.pid}`;
  try {
    const provider = StaticKeyProvider.generate();
    const keyring = await Keyring.open(provider);
    const vault = await Vault.open(keyring);
    const ctx = EncryptionContext.of(table, 'value');
    await db.query(`CREATE TABLE ${quoteIdent(table)} (id bigint PRIMARY KEY, value text NOT NULL)`);
    out.note(`filling ${count(rows)} rows of 32-byte values on ${db.description} …`);
    const chunk = 20_000;
    for (let start = 1; start <= rows; start += chunk) {
      const n = Math.min(chunk, rows - start + 1);
      const ids = Array.from({ length: n }, (_, i) => start + i);
      const cts = ids.map((id) => vault.encryptToString(`value-${String(id).padStart(26, '0')}`, ctx));
      await db.query(`INSERT INTO ${quoteIdent(table)} SELECT * FROM unnest($1::bigint[], $2::text[])`, [ids, cts]);
    }
    await db.query(`VACUUM ANALYZE ${quoteIdent(table)}`);
    await provider.rotate();
    await keyring.refresh();
    const progress = new ProgressReporter(`reencrypt ${table}.value`, !out.quiet && !out.json);
    const r = await reencryptColumn({ db, table, column: 'value', vault, batchSize, pipeline, onProgress: progress.update });
    progress.done();
    const perRow = (ms: number) => `${((ms * 1000) / Math.max(1, r.scanned)).toFixed(2)} µs/row`;
    out.result({ database: db.kind, rows, batchSize, pipeline: db.kind === 'pglite' ? 1 : pipeline, ...r, failures: undefined });
    out.line(`re-encrypted ${count(r.updated)} rows on ${db.kind} in ${(r.elapsedMs / 1000).toFixed(2)} s: ${count(r.rowsPerSecond)} rows/s`);
    out.line(`  batch SELECT (read, lock)  ${(r.timings.readMs / 1000).toFixed(2)} s  ${perRow(r.timings.readMs)}`);
    out.line(`  decrypt + encrypt          ${(r.timings.transformMs / 1000).toFixed(2)} s  ${perRow(r.timings.transformMs)}`);
    out.line(`  UPDATE + COMMIT            ${(r.timings.writeMs / 1000).toFixed(2)} s  ${perRow(r.timings.writeMs)}`);
    out.line(`  (batch ${count(batchSize)}, ${db.kind === 'pglite' ? 1 : pipeline} in flight; overlapping phases can add up to more than the wall time)`);
    return r.failed === 0 && r.updated === rows ? EXIT.ok : EXIT.rowsFailed;
  } finally {
    await db.query(`DROP TABLE IF EXISTS ${quoteIdent(table)}`).catch(() => undefined);
    await db.close().catch(() => undefined);
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}
