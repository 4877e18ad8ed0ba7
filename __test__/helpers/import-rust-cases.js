// importRustColumn cases that must hold on every database (PostgreSQL and PGlite), on values written
// by the published SifreDB Rust crates (__test__/rust-writer): BYTEA and TEXT (hex and base64),
// tenants, randomized and deterministic output, lookup columns, the legacy Rust blind-index column,
// failed rows reported and left as they were, and a second run that changes nothing.
import { randomBytes } from 'node:crypto';
import {
  BlindIndex,
  DeterministicVault,
  EncryptionContext,
  Keyring,
  RustDeterministicVault,
  RustKeyDirectory,
  StaticKeyProvider,
  Vault,
  importRustColumn,
} from '../../dist/index.js';
import { tableName } from './reencrypt-cases.js';
import { runRustWriter } from './rust-writer.js';

let written;
/** The crates' output, written once per test file. */
export function rustData() {
  written ??= runRustWriter();
  return written;
}

/** The writer's values of one Rust context column (`table`, `column`, `version`). */
export function rustValues(table, column, version) {
  return rustData().values.filter((v) => v.table === table && v.column === column && v.version === version);
}

export async function openVaults() {
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
  return {
    keyring,
    vault: await Vault.open(keyring),
    dvault: await DeterministicVault.open(keyring),
    index: await BlindIndex.open(keyring, { name: 'email', bits: 16, transforms: ['trim', 'lowercase'] }),
    rustVault: await RustDeterministicVault.fromKeyFile(rustData().deterministicKey),
  };
}

/** The v1 context of a Rust value imported under `contextTable`/`contextColumn`. */
export function v1Context(table, column, tenant) {
  const ctx = EncryptionContext.of(table, column);
  return tenant === null ? ctx : ctx.withTenant(tenant);
}

const isUtf8 = (b) => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
};

/** Rows as the database returns them, for before/after comparisons. */
async function snapshot(db, table) {
  const { rows } = await db.query(`SELECT * FROM ${table} ORDER BY id`);
  return rows.map((r) => JSON.stringify(r, (_, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v)));
}

export function registerImportCases(test, label, setup) {
  test(`${label}: BYTEA, randomized: every Rust row opens under format v1; failures reported and untouched; a rerun changes nothing`, async (t) => {
    const { db } = await setup();
    const k = await openVaults();
    const table = tableName('rust_bytea');
    await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, tenant text, email bytea, email_idx integer, legacy_idx bytea)`);
    const values = rustValues('users', 'email', 1);
    const good = values.filter((v) => v.tenant !== '' && isUtf8(v.plaintext));
    const rows = good.map((v, i) => ({ id: i + 1, tenant: v.tenant, email: v.ciphertext, legacy: i % 2 === 0 ? v.blindIndex : null, v }));
    // Reported and left alone: a tampered value, a value under an empty tenant (format v1 has no
    // empty tenant), a value that is not UTF-8 (imported as a string), one under another context.
    const tampered = Buffer.from(good[3].ciphertext);
    tampered[20] ^= 0x40;
    const emptyTenant = values.find((v) => v.tenant === '');
    const binary = values.find((v) => !isUtf8(v.plaintext) && v.tenant === 'acme');
    const otherColumn = rustValues('users', 'name', 1).find((v) => v.tenant === 'acme' && v.plaintext.length > 0);
    const bad = [
      { id: 1001, tenant: good[3].tenant, email: tampered, code: 'ERR_SIFREDB_AUTH' },
      { id: 1002, tenant: '', email: emptyTenant.ciphertext, code: 'ERR_SIFREDB_INPUT' },
      { id: 1003, tenant: 'acme', email: binary.ciphertext, code: 'ERR_SIFREDB_FORMAT' },
      { id: 1004, tenant: 'acme', email: otherColumn.ciphertext, code: 'ERR_SIFREDB_AUTH' },
    ];
    const all = [...rows, ...bad];
    await db.query(`INSERT INTO ${table} (id, tenant, email, legacy_idx) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[])`, [
      all.map((r) => r.id),
      all.map((r) => r.tenant),
      all.map((r) => r.email),
      all.map((r) => r.legacy ?? null),
    ]);
    const badBefore = await db.query(`SELECT id, email FROM ${table} WHERE id > 1000 ORDER BY id`);
    const rustKeys = await RustKeyDirectory.open(rustData().keyDir);
    const job = {
      db,
      table,
      column: 'email',
      tenantColumn: 'tenant',
      contextTable: 'users',
      contextColumn: 'email',
      vault: k.vault,
      rustVault: k.rustVault,
      blindIndexes: [{ index: k.index, column: 'email_idx' }],
      rustBlindIndex: { column: 'legacy_idx', keyDirectory: rustKeys },
      batchSize: 16,
    };
    const first = await importRustColumn(job);
    // (PostgreSQL's sweep reads the failed rows a second time: counted once as failed, twice as scanned.)
    t.like(first, { updated: rows.length, skipped: 0, failed: bad.length, conflicts: 0 });
    t.true(first.scanned >= all.length);
    t.deepEqual(
      first.failures.map((f) => [f.id, f.code]),
      bad.map((b) => [String(b.id), b.code]),
    );
    for (const f of first.failures) t.false(/[0-9a-f]{32}/.test(f.message), 'no value in a failure message');

    const { rows: after } = await db.query(`SELECT id, tenant, email, email_idx, legacy_idx FROM ${table} ORDER BY id`);
    for (const r of after.filter((x) => Number(x.id) <= 1000)) {
      const source = rows[Number(r.id) - 1];
      const ctx = v1Context('users', 'email', source.tenant);
      t.is(k.vault.decryptToString(r.email, ctx), source.v.plaintext.toString(), `row ${r.id}`);
      t.is(r.email_idx, k.index.compute(source.v.plaintext.toString(), ctx).int);
      t.true(Buffer.from(r.legacy_idx).equals(source.v.blindIndex), `legacy term of row ${r.id}`);
    }
    const badAfter = await db.query(`SELECT id, email FROM ${table} WHERE id > 1000 ORDER BY id`);
    t.deepEqual(badAfter.rows, badBefore.rows, 'failed rows are left as they were');

    const before = await snapshot(db, table);
    const second = await importRustColumn(job);
    t.like(second, { updated: 0, skipped: rows.length, failed: bad.length });
    t.deepEqual(await snapshot(db, table), before, 'a second run changes nothing');
  });

  test(`${label}: TEXT hex and base64, deterministic bytes: every value opens; --rust-text-encoding narrows the decodings`, async (t) => {
    const { db } = await setup();
    const k = await openVaults();
    const table = tableName('rust_text');
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, tenant text, note text)`);
    const values = rustValues('orders', 'note', 2).filter((v) => v.tenant !== '');
    const spelled = values.map((v, i) => (i % 3 === 0 ? v.ciphertext.toString('hex') : i % 3 === 1 ? v.ciphertext.toString('base64') : v.ciphertext.toString('base64url')));
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::int[], $2::text[], $3::text[])`, [values.map((_, i) => i + 1), values.map((v) => v.tenant), spelled]);
    const job = {
      db,
      table,
      column: 'note',
      tenantColumn: 'tenant',
      contextTable: 'orders',
      contextColumn: 'note',
      rustContextVersion: 2,
      vault: k.dvault,
      rustVault: k.rustVault,
      valueType: 'bytes',
      batchSize: 10,
    };
    // Hex only: the base64 spellings do not decode (a dry run writes nothing).
    const hexOnly = await importRustColumn({ ...job, rustTextEncoding: 'hex', dryRun: true });
    const base64Count = spelled.filter((s) => !/^(?:[0-9a-fA-F]{2})+$/.test(s)).length;
    t.like(hexOnly, { updated: values.length - base64Count, failed: base64Count, dryRun: true });
    t.true(hexOnly.failures.every((f) => f.code === 'ERR_SIFREDB_FORMAT'));
    // The wrong Rust context version fails every row of the first batch: the job stops, naming the Rust key.
    const wrongVersion = await t.throwsAsync(() => importRustColumn({ ...job, rustContextVersion: 1 }));
    t.is(wrongVersion.code, 'ERR_SIFREDB_AUTH');
    t.regex(wrongVersion.message, /Rust key/);

    t.like(await importRustColumn(job), { updated: values.length, failed: 0 });
    const { rows } = await db.query(`SELECT id, tenant, note FROM ${table} ORDER BY id`);
    for (const r of rows) {
      const v = values[r.id - 1];
      t.true(r.note.startsWith('sdb1:'));
      t.true(k.dvault.decrypt(r.note, v1Context('orders', 'note', v.tenant)).equals(v.plaintext), `row ${r.id}`);
      // Deterministic: the same value under the same context gives the same ciphertext.
      t.is(r.note, k.dvault.encryptToString(v.plaintext, v1Context('orders', 'note', v.tenant)));
    }
    const before = await snapshot(db, table);
    t.like(await importRustColumn(job), { updated: 0, skipped: values.length, failed: 0 });
    t.deepEqual(await snapshot(db, table), before);
  });
}
