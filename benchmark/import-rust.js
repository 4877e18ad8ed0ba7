#!/usr/bin/env node
// `node benchmark/import-rust.js`: the migration rate of
// `import-rust` on PostgreSQL — rows per second converted from SifreDB for Rust ciphertexts to format
// v1 in place — with and without a blind-index column, BYTEA and TEXT (hex), and, for scale, a
// re-encryption of the same table after a key rotation.
//
//   node benchmark/import-rust.js [--rows=N] [--db=postgres://…]
// Default database: a PostgreSQL server started for the run (durable: fsync on), like the tests'.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  BlindIndex,
  Keyring,
  RustDeterministicVault,
  StaticKeyProvider,
  Vault,
  backend,
  importRustColumn,
  openDatabase,
  reencryptColumn,
} from '../dist/index.js';
import { startPostgres } from '../__test__/helpers/postgres.js';

const flags = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const ROWS = Number(flags.rows ?? 100_000);
const log = (...a) => console.error(...a);

const server = flags.db ? undefined : await startPostgres({ durable: true });
const db = await openDatabase(flags.db ?? server.url, { poolSize: 4 });
const provider = new StaticKeyProvider(randomBytes(32));
const keyring = await Keyring.open(provider);
const rustVault = new RustDeterministicVault(randomBytes(64));
const tenantOf = (id) => (id % 4 === 0 ? null : `tenant-${id % 7}`);

async function fill(table, kind) {
  await db.query(`DROP TABLE IF EXISTS ${table}`);
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, tenant text, email ${kind}, email_idx integer)`);
  const ids = Array.from({ length: ROWS }, (_, i) => i + 1);
  for (let start = 0; start < ROWS; start += 20_000) {
    const chunk = ids.slice(start, start + 20_000);
    const sealed = chunk.map((id) => rustVault.encrypt(`user${id}@example.com`, { tenant: tenantOf(id), table: 'users', column: 'email' }));
    await db.query(`INSERT INTO ${table} (id, tenant, email) SELECT * FROM unnest($1::int[], $2::text[], $3::${kind}[])`, [
      chunk,
      chunk.map(tenantOf),
      kind === 'text' ? sealed.map((b) => b.toString('hex')) : sealed,
    ]);
  }
  await db.query(`VACUUM ANALYZE ${table}`);
}

log(`import-rust — ${os.cpus()[0]?.model}, ${os.cpus().length} cores, Node ${process.versions.node}, backend ${backend}, PostgreSQL, ${ROWS} rows`);
const rate = (r) => `${Math.round(r.rowsPerSecond).toLocaleString('en-US')} rows/s (${(r.elapsedMs / 1000).toFixed(1)} s; read ${(r.timings.readMs / 1000).toFixed(1)} s, crypto ${(r.timings.transformMs / 1000).toFixed(1)} s, write ${(r.timings.writeMs / 1000).toFixed(1)} s)`;
try {
  for (const kind of ['bytea', 'text']) {
    for (const withIndex of [false, true]) {
      const table = `bench_import_${kind}`;
      await fill(table, kind);
      const vault = await Vault.open(keyring);
      const blindIndexes = withIndex ? [{ index: await BlindIndex.open(keyring, { name: 'email', bits: 16 }), column: 'email_idx' }] : [];
      const job = { db, table, column: 'email', tenantColumn: 'tenant', contextTable: 'users', contextColumn: 'email', vault, rustVault, blindIndexes, countRows: false };
      const result = await importRustColumn(job);
      if (result.updated !== ROWS || result.failed !== 0) throw new Error(`imported ${result.updated} of ${ROWS}, ${result.failed} failed`);
      console.log(`import-rust ${kind.padEnd(5)} ${withIndex ? 'with a blind index   ' : 'no lookup column     '}: ${rate(result)}`);
      if (kind === 'bytea' && !withIndex) {
        const again = await importRustColumn(job);
        console.log(`  second run (nothing to do, every row checked): ${Math.round((again.scanned * 1000) / again.elapsedMs).toLocaleString('en-US')} rows/s read`);
        await provider.rotate();
        await keyring.refresh();
        const re = await reencryptColumn({ db, table, column: 'email', tenantColumn: 'tenant', contextTable: 'users', contextColumn: 'email', vault: await Vault.open(keyring), countRows: false });
        console.log(`  for scale, reencrypt of the same table after a rotation: ${rate(re)}`);
      }
    }
  }
} finally {
  await db.close();
  await server?.stop();
}
