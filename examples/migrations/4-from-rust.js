// docs/MIGRATION.md, procedure 4: from SifreDB for Rust.
//   node examples/migrations/4-from-rust.js --db <postgres://url | PGlite directory> [--rows n]
// Creates its own table `mig4_users`, written as a service on the SifreDB Rust crates (0.1.1) writes
// it: `email` holds `DeterministicVault` ciphertexts (BYTEA) and `email_bidx` the crates' legacy
// blind-index terms, with a `sifredb-key-file` key directory and a 64-byte deterministic key. Then:
// Node services read both formats and keep writing the Rust one while Rust services remain → the
// Rust services are gone: Node writes format v1 → `sifredb import-rust --schema …` converts the rest
// in place (keeping the legacy terms filled) → a rerun finds nothing → `sifredb schema sql --apply`
// (CHECK constraint, recorded settings) → drop the legacy term column → `sifredb schema check`.
// Every step checks that each row reads as its address and that lookups find exactly its row.
//
// The Rust service is played here by the library's own RustDeterministicVault and RustKeyDirectory,
// which __test__/rust-import.spec.js checks byte for byte against what the published crates write.
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EncryptedTable, FileKeyProvider, Keyring, RustDeterministicVault, RustKeyDirectory, isEncrypted, loadSchema } from 'sifredb';
import { ROOT, check, emailOf, main, note, random, step } from './common.js';

const TABLE = 'mig4_users';
const SCHEMA = 'examples/migrations/schemas/mig4_users.json';
const TENANTS = ['acme', 'globex', null];

await main('4-from-rust.js', async (env) => {
  const rand = random(4);
  const expected = new Map();
  let nextId = 1;

  // What the Rust side left: `FileKeyProvider::init` (kek_v1.key, current, pepper.key; mode 0600)
  // and the application's own 64-byte DeterministicVault key.
  const work = dirname(env.keysFile);
  const rustKeyDir = join(work, 'rust-keys');
  const rustKeyFile = join(work, 'rust-deterministic.key');
  mkdirSync(rustKeyDir);
  writeFileSync(join(rustKeyDir, 'kek_v1.key'), randomBytes(32), { mode: 0o600 });
  symlinkSync('kek_v1.key', join(rustKeyDir, 'current'));
  writeFileSync(join(rustKeyDir, 'pepper.key'), randomBytes(32), { mode: 0o600 });
  writeFileSync(rustKeyFile, randomBytes(64), { mode: 0o600 });
  const shownAs = { [rustKeyFile]: '"$RUST_KEY"', [rustKeyDir]: '"$RUST_KEYS"' };

  const rustVault = await RustDeterministicVault.fromKeyFile(rustKeyFile);
  const rustKeys = await RustKeyDirectory.open(rustKeyDir);
  const rustContext = (tenant) => ({ tenant, table: TABLE, column: 'email' });
  const schema = (await loadSchema(join(ROOT, SCHEMA))).table(TABLE);
  const tenantOf = (id) => TENANTS[id % TENANTS.length];

  /** A Node service: reads both formats; writes the Rust one until told otherwise. */
  async function nodeService() {
    const users = await EncryptedTable.open(await Keyring.open(await FileKeyProvider.open(env.keysFile)), schema);
    const app = {
      writesV1: false,
      /** Whether the legacy Rust term column exists (and is kept filled). */
      legacyTerms: true,
      /** A row's address, whichever format holds it. */
      read(row) {
        if (isEncrypted(row.email)) return users.decryptRow(row).email;
        return rustVault.decrypt(row.email, rustContext(row.tenant)).toString();
      },
      async write(id, address) {
        const tenant = tenantOf(id);
        // The legacy term stays filled while anything looks rows up by it.
        const legacy = app.legacyTerms ? rustKeys.blindIndex(address, rustContext(tenant)) : undefined;
        if (app.writesV1 && !app.legacyTerms) {
          const row = users.encryptRow({ id, tenant, email: address });
          await env.query(
            `INSERT INTO ${TABLE} (id, tenant, email, email_idx) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET email = $3, email_idx = $4`,
            [id, tenant, row.email, row.email_idx],
          );
        } else if (app.writesV1) {
          const row = users.encryptRow({ id, tenant, email: address });
          await env.query(
            `INSERT INTO ${TABLE} (id, tenant, email, email_idx, email_bidx) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET email = $3, email_idx = $4, email_bidx = $5`,
            [id, tenant, row.email, row.email_idx, legacy],
          );
        } else {
          await env.query(
            `INSERT INTO ${TABLE} (id, tenant, email, email_bidx) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET email = $3, email_bidx = $4`,
            [id, tenant, rustVault.encrypt(address, rustContext(tenant)), legacy],
          );
        }
        expected.set(id, address);
      },
      async writeOne() {
        const update = rand() < 0.5 && nextId > 1;
        const id = update ? 1 + Math.floor(rand() * (nextId - 1)) : nextId++;
        await app.write(id, emailOf(id, update ? 1 + Math.floor(rand() * 1e6) : 0));
      },
      /** Lookup by address: the legacy term, or (once it exists) the v1 blind index; then check the value. */
      async find(address, tenant, { legacy = true } = {}) {
        const terms = [];
        let sql = `SELECT id, tenant, email FROM ${TABLE} WHERE tenant IS NOT DISTINCT FROM $1 AND (false`;
        if (legacy) {
          terms.push(rustKeys.blindIndex(address, rustContext(tenant)));
          sql += ` OR email_bidx = $${terms.length + 1}`;
        }
        if (app.writesV1) {
          const q = users.where('email', address, { tenant });
          terms.push(q.terms);
          sql += ` OR ${q.sql(`$${terms.length + 1}`)}`;
        }
        const { rows } = await env.query(`${sql})`, [tenant, ...terms]);
        return rows.filter((r) => app.read(r) === address).map((r) => Number(r.id));
      },
    };
    return app;
  }

  async function checkRows(app, label) {
    const { rows } = await env.query(`SELECT id, tenant, email FROM ${TABLE}`);
    check(rows.length === expected.size, `${label}: the table has ${rows.length} rows, the application wrote ${expected.size}`);
    let v1 = 0;
    for (const r of rows) {
      check(app.read(r) === expected.get(Number(r.id)), `${label}: row ${r.id} does not read as its address`);
      if (isEncrypted(r.email)) v1 += 1;
    }
    note(`${label}: all ${rows.length} rows read as their address (${v1} in format v1, ${rows.length - v1} in the Rust format)`);
    return { v1, rust: rows.length - v1 };
  }

  async function checkLookups(app, label, options) {
    const sample = [...expected.keys()].filter(() => rand() < 0.1).slice(0, 60);
    for (const id of sample) {
      const found = await app.find(expected.get(id), tenantOf(id), options);
      check(found.length === 1 && found[0] === id, `${label}: looking up row ${id} by email found [${found}]`);
    }
    check((await app.find('nobody@example.invalid', 'acme', options)).length === 0, `${label}: an unknown address found rows`);
    note(`${label}: ${sample.length} lookups by email found exactly their row`);
  }

  step('0. the starting point: a table written by SifreDB for Rust');
  await env.sifredb(['keygen']);
  await env.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await env.query(`CREATE TABLE ${TABLE} (id integer PRIMARY KEY, tenant text, email bytea NOT NULL, email_bidx bytea)`);
  const a = await nodeService();
  for (let i = 0; i < env.rows; i++) await a.writeOne();
  await checkRows(a, 'before');
  await checkLookups(a, 'before');

  step('1. Node services read both formats and write the Rust one, while Rust services remain');
  const b = await nodeService();
  for (let i = 0; i < 30; i++) await (i % 2 ? a : b).writeOne();
  await checkLookups(b, 'Rust and Node side by side');

  step('2. the last Rust service is gone: Node writes format v1');
  await env.query(`ALTER TABLE ${TABLE} ADD COLUMN email_idx integer`);
  a.writesV1 = true;
  b.writesV1 = true;
  for (let i = 0; i < 30; i++) await (i % 2 ? a : b).writeOne();
  const mixed = await checkRows(a, 'both formats');
  check(mixed.v1 > 0 && mixed.rust > 0, 'both formats should be in the table now');
  await checkLookups(b, 'both formats');

  step('3. import-rust: convert the remaining Rust values in place');
  const importArgs = ['import-rust', '--schema', SCHEMA, '--column', 'email', '--rust-deterministic-key', rustKeyFile, '--rust-key-dir', rustKeyDir, '--rust-blind-index-column', 'email_bidx'];
  const job = await env.sifredb(importArgs, { db: true, shownAs, whileRunning: () => (rand() < 0.5 ? a : b).writeOne() });
  check(/failed\s+0\b/.test(job.stdout), 'import-rust reported failed rows');
  const rerun = await env.sifredb([...importArgs, '--dry-run'], { db: true, shownAs });
  check(/would be imported\s+0\b/.test(rerun.stdout), 'Rust values remain after import-rust');
  const after = await checkRows(a, 'after import-rust');
  check(after.rust === 0, `${after.rust} rows are still in the Rust format`);
  await checkLookups(a, 'after import-rust');

  step('4. retire the Rust format: constraints and recorded settings, then drop the legacy terms');
  await env.sifredb(['schema', 'sql', '--schema', SCHEMA, '--apply'], { db: true, keys: false });
  const refused = await env.sqlState(`UPDATE ${TABLE} SET email = $1 WHERE id = 1`, [rustVault.encrypt('x@example.com', rustContext(tenantOf(1)))]);
  check(refused === '23514', `the database accepted a Rust value in email (${refused})`);
  note('the database refuses a Rust value in email (23514)');
  await env.query(`ALTER TABLE ${TABLE} DROP COLUMN email_bidx`);
  a.legacyTerms = false;
  b.legacyTerms = false;
  for (let i = 0; i < 10; i++) await a.writeOne();
  await checkRows(b, 'format v1 only');
  await checkLookups(b, 'format v1 only', { legacy: false });

  step('5. schema check');
  await env.sifredb(['schema', 'check', '--schema', SCHEMA], { db: true });
  rustVault.destroy();
  rustKeys.destroy();
});
