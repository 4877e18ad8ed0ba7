// The batch-job cases that must hold on every database (PostgreSQL and PGlite): reencryptColumn and
// encryptColumn with lookup columns, tenants, bytea, failures, dry runs, reruns, and the CHECK
// constraints. Each case uses its own table, so they run concurrently on one database.
import { randomBytes } from 'node:crypto';
import {
  BlindIndex,
  DeterministicVault,
  EncryptionContext,
  Keyring,
  StaticKeyProvider,
  TenantKeyRouter,
  Vault,
  applyColumnConstraints,
  columnConstraints,
  encryptColumn,
  inspect,
  reencryptColumn,
} from '../../dist/index.js';

/** A keyring with version 1 current, and a `rotate()` that makes a new version current everywhere. */
export async function keys() {
  const provider = new StaticKeyProvider(randomBytes(32));
  const keyring = await Keyring.open(provider);
  const vault = await Vault.open(keyring);
  const dvault = await DeterministicVault.open(keyring);
  const index = await BlindIndex.open(keyring, { name: 'email', bits: 16, transforms: ['trim', 'lowercase'] });
  return {
    keyring,
    vault,
    dvault,
    index,
    async rotate() {
      const version = await provider.rotate();
      await keyring.refresh();
      return version;
    },
  };
}

let tables = 0;
/** A table name unique within this process (cases run concurrently). */
export function tableName(prefix) {
  tables += 1;
  return `${prefix}_${process.pid}_${tables}`;
}

const plaintext = (id) => `User${id}@Example.com`;

/**
 * Registers the cases. `setup()` resolves to `{ db }` (a Database from openDatabase); `label`
 * prefixes the test titles.
 */
export function registerCases(test, label, setup) {
  test(`${label}: reencrypt moves every row to the current version and refreshes lookup columns`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('users');
    const ctx = EncryptionContext.of(table, 'email');
    await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, email text, email_det text, email_idx integer)`);
    const n = 1200;
    const rows = Array.from({ length: n }, (_, i) => i + 1);
    await db.query(
      `INSERT INTO ${table} SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[])`,
      [
        rows,
        rows.map((id) => k.vault.encryptToString(plaintext(id), ctx)),
        rows.map((id) => k.dvault.encryptToString(plaintext(id), ctx)),
        rows.map((id) => k.index.compute(plaintext(id), ctx).int),
      ],
    );
    await db.query(`INSERT INTO ${table} (id, email) VALUES (${n + 1}, NULL)`); // NULLs are left alone
    await k.rotate();
    const progress = [];
    const job = {
      db,
      table,
      column: 'email',
      vault: k.vault,
      blindIndexes: [{ index: k.index, column: 'email_idx' }],
      deterministicColumns: [{ vault: k.dvault, column: 'email_det' }],
      batchSize: 100,
    };
    const result = await reencryptColumn({ ...job, onProgress: (p) => progress.push(p) });
    t.is(result.updated, n);
    t.is(result.failed, 0);
    t.is(result.skipped, 0);
    t.is(result.total, n);
    t.false(result.aborted);
    t.true(progress.length >= n / 100, 'progress after every batch');
    t.is(progress.at(-1).scanned, n);

    const { rows: stored } = await db.query(`SELECT id, email, email_det, email_idx FROM ${table} WHERE email IS NOT NULL ORDER BY id`);
    t.is(stored.length, n);
    for (const r of stored) {
      const expected = plaintext(Number(r.id));
      if (inspect(r.email).keyVersion !== 2 || k.vault.decryptToString(r.email, ctx) !== expected) t.fail(`row ${r.id}`);
      if (r.email_det !== k.dvault.encryptToString(expected, ctx)) t.fail(`email_det of row ${r.id}`);
      if (r.email_idx !== k.index.compute(expected, ctx).int) t.fail(`email_idx of row ${r.id}`);
    }
    // Lookups by the current version's single term find the row again.
    const found = await db.query(`SELECT id FROM ${table} WHERE email_det = $1`, [k.dvault.encryptToString(plaintext(77), ctx)]);
    t.deepEqual(found.rows.map((r) => Number(r.id)), [77]);

    const again = await reencryptColumn(job);
    t.is(again.updated, 0, 'a rerun changes nothing');
    t.is(again.skipped, n);
  });

  test(`${label}: a row that fails is reported by id, left untouched, and the job goes on`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const other = await keys(); // a key the job does not have
    const table = tableName('bad');
    const ctx = EncryptionContext.of(table, 'secret');
    await db.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, secret text)`);
    const values = Array.from({ length: 300 }, (_, i) => k.vault.encryptToString(`s${i + 1}`, ctx));
    values[9] = 'plaintext left behind'; // id 10
    values[19] = other.vault.encryptToString('s20', ctx); // id 20: wrong key (same version number)
    values[29] = k.vault.encryptToString('s30', EncryptionContext.of(table, 'elsewhere')); // id 30: wrong context
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::int[], $2::text[])`, [values.map((_, i) => i + 1), values]);
    await k.rotate();
    const result = await reencryptColumn({ db, table, column: 'secret', vault: k.vault, batchSize: 64 });
    t.is(result.failed, 3);
    t.is(result.updated, 297);
    t.deepEqual(result.failures.map((f) => f.id).sort(), ['10', '20', '30']);
    const byId = Object.fromEntries(result.failures.map((f) => [f.id, f.code]));
    t.is(byId['10'], 'ERR_SIFREDB_FORMAT');
    t.is(byId['20'], 'ERR_SIFREDB_AUTH');
    t.is(byId['30'], 'ERR_SIFREDB_AUTH');
    for (const f of result.failures) t.false(f.message.includes('plaintext left behind'), 'no value in messages');
    const { rows } = await db.query(`SELECT id, secret FROM ${table} WHERE id IN (10, 20, 30) ORDER BY id`);
    t.deepEqual(rows.map((r) => r.secret), [values[9], values[19], values[29]], 'failed rows untouched');
  });

  test(`${label}: dry run reads and checks everything and writes nothing`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('dry');
    const ctx = EncryptionContext.of(table, 'v');
    await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, v text)`);
    const values = Array.from({ length: 50 }, (_, i) => k.vault.encryptToString(`v${i}`, ctx));
    values[4] = 'not a ciphertext';
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::bigint[], $2::text[])`, [values.map((_, i) => i + 1), values]);
    await k.rotate();
    const result = await reencryptColumn({ db, table, column: 'v', vault: k.vault, dryRun: true, batchSize: 16 });
    t.true(result.dryRun);
    t.is(result.updated, 49);
    t.is(result.failed, 1);
    const { rows } = await db.query(`SELECT v FROM ${table} ORDER BY id`);
    t.deepEqual(rows.map((r) => r.v), values);
  });

  test(`${label}: tenant column, bytea column, deterministic column and uuid-free custom id`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('docs');
    const base = EncryptionContext.of(table, 'body');
    await db.query(`CREATE TABLE ${table} (doc_key text PRIMARY KEY, tenant text, body bytea)`);
    const keysList = Array.from({ length: 240 }, (_, i) => `doc-${String(i).padStart(4, '0')}`);
    const tenants = keysList.map((_, i) => (i % 3 === 0 ? null : `tenant-${i % 3}`));
    const bodies = keysList.map((key) => Buffer.from(`body of ${key}`));
    const enc = keysList.map((_, i) => k.vault.encrypt(bodies[i], tenants[i] === null ? base : base.withTenant(tenants[i])));
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])`, [keysList, tenants, enc]);
    await k.rotate();
    const result = await reencryptColumn({ db, table, column: 'body', idColumn: 'doc_key', tenantColumn: 'tenant', vault: k.vault, batchSize: 50 });
    t.is(result.updated, 240);
    t.is(result.failed, 0);
    const { rows } = await db.query(`SELECT doc_key, tenant, body FROM ${table}`);
    for (const r of rows) {
      const ctx = r.tenant === null ? base : base.withTenant(r.tenant);
      const body = Buffer.from(r.body);
      if (inspect(body).keyVersion !== 2 || !k.vault.decryptBytes(body, ctx).equals(Buffer.from(`body of ${r.doc_key}`))) t.fail(r.doc_key);
    }

    // A deterministic column re-encrypts with the DeterministicVault.
    const dtable = tableName('det');
    const dctx = EncryptionContext.of(dtable, 'ssn');
    await db.query(`CREATE TABLE ${dtable} (id int PRIMARY KEY, ssn text)`);
    await db.query(`INSERT INTO ${dtable} SELECT * FROM unnest($1::int[], $2::text[])`, [[1, 2, 3], ['111', '222', '333'].map((s) => k.dvault.encryptToString(s, dctx))]);
    await k.rotate();
    const det = await reencryptColumn({ db, table: dtable, column: 'ssn', vault: k.dvault });
    t.is(det.updated, 3);
    const { rows: drows } = await db.query(`SELECT ssn FROM ${dtable} ORDER BY id`);
    t.deepEqual(drows.map((r) => r.ssn), ['111', '222', '333'].map((s) => k.dvault.encryptToString(s, dctx)));
  });

  test(`${label}: with a tenant column, every row is read and counted once`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('tenants');
    const base = EncryptionContext.of(table, 'v');
    const n = 10_000;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const tenantOf = (id) => (id % 5 === 0 ? null : `tenant-${id % 3}`);
    const ctxOf = (id) => (tenantOf(id) === null ? base : base.withTenant(tenantOf(id)));
    // Every fourth row is already on the new version when the job starts (written after the rotation).
    const current = (id) => id % 4 === 0;
    const old = new Map(ids.filter((id) => !current(id)).map((id) => [id, k.vault.encryptToString(`v${id}`, ctxOf(id))]));
    await k.rotate();
    const values = ids.map((id) => old.get(id) ?? k.vault.encryptToString(`v${id}`, ctxOf(id)));
    await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, tenant text, v text)`);
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])`, [ids, ids.map(tenantOf), values]);
    const job = { db, table, column: 'v', tenantColumn: 'tenant', vault: k.vault, batchSize: 1000 };
    const result = await reencryptColumn(job);
    t.like(result, { scanned: n, updated: n - n / 4, skipped: n / 4, conflicts: 0, failed: 0, total: n });
    const { rows } = await db.query(`SELECT id, v FROM ${table}`);
    t.is(rows.length, n);
    const wrong = rows.filter((r) => inspect(r.v).keyVersion !== 2 || k.vault.decryptToString(r.v, ctxOf(Number(r.id))) !== `v${r.id}`);
    t.is(wrong.length, 0, `${wrong.length} rows not on version 2 or changed`);
    t.like(await reencryptColumn(job), { scanned: n, updated: 0, skipped: n, failed: 0 });
  });

  test(`${label}: with a TenantKeyRouter, each tenant moves to its own current version, each row counted once`, async (t) => {
    const { db } = await setup();
    const providers = { a: new StaticKeyProvider(randomBytes(32)), b: new StaticKeyProvider(randomBytes(32)) };
    const fallback = new StaticKeyProvider(randomBytes(32));
    const keyring = await Keyring.open(new TenantKeyRouter({ tenants: providers, default: fallback }));
    const vault = await Vault.open(keyring);
    const table = tableName('routed');
    const base = EncryptionContext.of(table, 'v');
    const n = 3000;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const tenantOf = (id) => [null, 'a', 'b'][id % 3];
    const ctxOf = (id) => (tenantOf(id) === null ? base : base.withTenant(tenantOf(id)));
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, tenant text, v bytea)`);
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::int[], $2::text[], $3::bytea[])`, [
      ids,
      ids.map(tenantOf),
      ids.map((id) => vault.encrypt(`v${id}`, ctxOf(id))),
    ]);
    // Tenant a and the default rotate; tenant b stays on version 1, which is still its current one.
    await providers.a.rotate();
    await fallback.rotate();
    await keyring.refresh();
    const result = await reencryptColumn({ db, table, column: 'v', tenantColumn: 'tenant', vault, batchSize: 250 });
    t.like(result, { scanned: n, updated: (2 * n) / 3, skipped: n / 3, conflicts: 0, failed: 0 });
    const { rows } = await db.query(`SELECT id, v FROM ${table}`);
    const wrong = rows.filter((r) => {
      const id = Number(r.id);
      const want = tenantOf(id) === 'b' ? 1 : 2;
      return inspect(Buffer.from(r.v)).keyVersion !== want || vault.decryptToString(Buffer.from(r.v), ctxOf(id)) !== `v${id}`;
    });
    t.is(wrong.length, 0, `${wrong.length} rows on the wrong version or changed`);
  });

  test(`${label}: a first batch that fails entirely with ERR_SIFREDB_AUTH stops the job with a diagnosis and writes nothing`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('forgot');
    const base = EncryptionContext.of(table, 'v');
    const ids = Array.from({ length: 300 }, (_, i) => i + 1);
    const tenantOf = (id) => `tenant-${id % 2}`;
    const values = ids.map((id) => k.vault.encryptToString(`secret-${id}`, base.withTenant(tenantOf(id))));
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, tenant text, v text)`);
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::int[], $2::text[], $3::text[])`, [ids, ids.map(tenantOf), values]);
    const small = tableName('forgot_small');
    const few = ids.slice(0, 9);
    const smallBase = EncryptionContext.of(small, 'v');
    await db.query(`CREATE TABLE ${small} (id int PRIMARY KEY, tenant text, v text)`);
    await db.query(`INSERT INTO ${small} SELECT * FROM unnest($1::int[], $2::text[], $3::text[])`, [
      few,
      few.map(tenantOf),
      few.map((id) => k.vault.encryptToString(`secret-${id}`, smallBase.withTenant(tenantOf(id)))),
    ]);
    await k.rotate();
    const job = { db, table, column: 'v', vault: k.vault, batchSize: 100 };
    const error = await t.throwsAsync(reencryptColumn(job), { code: 'ERR_SIFREDB_AUTH' });
    t.true(error.message.includes(`context in use is ${table}|v|v1`), error.message);
    t.regex(error.message, /written with a tenant: pass --tenant-column/);
    t.regex(error.message, /no --bind-row/);
    t.regex(error.message, /key store may not be the one/);
    t.false(error.message.includes('secret-') || error.message.includes('sdb1:'), 'no values in the message');
    const dry = await t.throwsAsync(reencryptColumn({ ...job, dryRun: true }), { code: 'ERR_SIFREDB_AUTH' });
    t.regex(dry.message, /all 100 values of the first batch/);
    const { rows } = await db.query(`SELECT v FROM ${table} ORDER BY id`);
    t.deepEqual(rows.map((r) => r.v), values, 'nothing written');

    // With the tenant column the same table re-encrypts.
    t.like(await reencryptColumn({ ...job, tenantColumn: 'tenant' }), { updated: 300, failed: 0 });

    // Fewer than 10 values in the first batch are reported row by row, not diagnosed.
    t.like(await reencryptColumn({ db, table: small, column: 'v', vault: k.vault }), { failed: 9, updated: 0 });
  });

  test(`${label}: a first batch of the other vault kind stops the job with one clear error`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('kinds');
    const ctx = EncryptionContext.of(table, 'ssn');
    const rctx = EncryptionContext.of(table, 'email');
    const ids = Array.from({ length: 40 }, (_, i) => i + 1);
    const ssn = ids.map((id) => k.dvault.encryptToString(`ssn-${id}`, ctx));
    const email = ids.map((id) => k.vault.encryptToString(`e${id}`, rctx));
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, ssn text, email text)`);
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::int[], $2::text[], $3::text[])`, [ids, ssn, email]);
    await k.rotate();
    await t.throwsAsync(reencryptColumn({ db, table, column: 'ssn', vault: k.vault }), {
      code: 'ERR_SIFREDB_FORMAT',
      message: new RegExp(`^column ${table}\\.ssn holds deterministic \\(AES-SIV\\) ciphertexts but the job was given a Vault; pass a DeterministicVault \\(CLI: --deterministic\\)`),
    });
    await t.throwsAsync(reencryptColumn({ db, table, column: 'email', vault: k.dvault }), {
      code: 'ERR_SIFREDB_FORMAT',
      message: /holds randomized \(chacha20-poly1305\) ciphertexts but the job was given a DeterministicVault; pass a Vault/,
    });
    const { rows } = await db.query(`SELECT ssn, email FROM ${table} ORDER BY id`);
    t.deepEqual(rows.map((r) => r.ssn), ssn, 'nothing written');
    t.deepEqual(rows.map((r) => r.email), email, 'nothing written');
    t.like(await reencryptColumn({ db, table, column: 'ssn', vault: k.dvault }), { updated: 40, failed: 0 });
  });

  test(`${label}: encrypt-column in place skips existing ciphertexts and fills index columns`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('plain');
    const ctx = EncryptionContext.of(table, 'email');
    await db.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, email varchar(200), email_idx bigint, email_det text)`);
    const n = 500;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const already = k.vault.encryptToString(plaintext(7), ctx);
    // Row 8 holds a well-formed ciphertext of another context: it must be reported, not skipped as done.
    const foreign = k.vault.encryptToString(plaintext(8), EncryptionContext.of('other_table', 'email'));
    const initial = (id) => (id === 7 ? already : id === 8 ? foreign : plaintext(id));
    await db.query(`INSERT INTO ${table} (id, email) SELECT * FROM unnest($1::bigint[], $2::text[])`, [ids, ids.map(initial)]);
    const job = {
      db,
      table,
      column: 'email',
      vault: k.vault,
      blindIndexes: [{ index: k.index, column: 'email_idx' }],
      deterministicColumns: [{ vault: k.dvault, column: 'email_det' }],
      batchSize: 128,
    };
    const result = await encryptColumn(job);
    t.is(result.updated, n - 2);
    t.is(result.skipped, 1, 'the existing ciphertext is skipped');
    t.deepEqual(result.failures.map((f) => [String(f.id), f.code]), [['8', 'ERR_SIFREDB_AUTH']]);
    const { rows } = await db.query(`SELECT id, email, email_idx, email_det FROM ${table} ORDER BY id`);
    t.is(rows.find((r) => Number(r.id) === 8).email, foreign, 'the foreign ciphertext is left untouched');
    for (const r of rows) {
      if (Number(r.id) === 8) continue;
      const expected = plaintext(Number(r.id));
      if (k.vault.decryptToString(r.email, ctx) !== expected) t.fail(`row ${r.id}`);
      if (Number(r.id) !== 7 && (String(r.email_idx) !== String(k.index.compute(expected, ctx).int) || r.email_det !== k.dvault.encryptToString(expected, ctx))) {
        t.fail(`lookup columns of row ${r.id}`);
      }
    }
    t.is(rows.find((r) => Number(r.id) === 7).email, already, 'never double-encrypted');
    const again = await encryptColumn(job);
    t.is(again.updated, 0);
    t.is(again.skipped, n - 1);
    t.is(again.failures.length, 1);
  });

  test(`${label}: encrypt-column into a new column resumes where the target is still NULL`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('copy');
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, phone text, phone_enc bytea)`);
    const ids = Array.from({ length: 300 }, (_, i) => i + 1);
    await db.query(`INSERT INTO ${table} (id, phone) SELECT * FROM unnest($1::int[], $2::text[])`, [ids, ids.map((id) => `+90 555 ${id}`)]);
    // As if an earlier run was killed after 100 rows.
    const first = await encryptColumn({ db, table, column: 'phone', targetColumn: 'phone_enc', vault: k.vault, batchSize: 100, signal: AbortSignal.abort() });
    t.true(first.aborted);
    t.is(first.updated, 0);
    const part = await db.query(`SELECT id, phone FROM ${table} WHERE id <= 100`);
    for (const r of part.rows) {
      await db.query(`UPDATE ${table} SET phone_enc = $1 WHERE id = $2`, [k.vault.encrypt(r.phone, EncryptionContext.of(table, 'phone_enc')), r.id]);
    }
    const result = await encryptColumn({ db, table, column: 'phone', targetColumn: 'phone_enc', vault: k.vault, batchSize: 64 });
    t.is(result.updated, 200);
    t.is(result.total, 200, 'only rows without a target are counted');
    const ctx = EncryptionContext.of(table, 'phone_enc');
    const { rows } = await db.query(`SELECT id, phone, phone_enc FROM ${table} ORDER BY id`);
    for (const r of rows) if (k.vault.decryptToString(Buffer.from(r.phone_enc), ctx) !== r.phone) t.fail(`row ${r.id}`);
  });

  test(`${label}: CHECK constraints reject plaintext and accept ciphertexts`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('chk');
    const ctx = EncryptionContext.of(table, 'a');
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, a text, b bytea)`);
    await db.query(`INSERT INTO ${table} VALUES (1, 'plain', NULL)`);
    await t.throwsAsync(applyColumnConstraints(db, { table, columns: ['a', 'b'] }), { code: 'ERR_SIFREDB_DATABASE', message: /encrypt-column first/ });
    const notValid = await applyColumnConstraints(db, { table, columns: ['a', 'b'], notValid: true });
    t.is(notValid.length, 2);
    await db.query(`DELETE FROM ${table}`);
    const applied = await applyColumnConstraints(db, { table, columns: ['a', 'b'] }); // idempotent: replaces them
    t.deepEqual(applied.map((c) => c.form), ['text', 'bytea']);
    const insert = (a, b) => db.query(`INSERT INTO ${table} VALUES ((SELECT coalesce(max(id), 0) + 1 FROM ${table}), $1, $2)`, [a, b]);
    await insert(k.vault.encryptToString('x', ctx), k.vault.encrypt('y', ctx));
    await insert(k.dvault.encryptToString('', ctx), k.dvault.encrypt('', ctx));
    await insert(k.vault.encryptToString('', ctx), null);
    await insert(null, null);
    for (const [a, b] of [
      ['plain', null],
      ['sdb1:', null],
      ['sdb1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', null],
      [null, Buffer.from('plain bytes')],
      [null, Buffer.from([0x53, 1, 1, 0, 0, 0, 0, ...new Array(40).fill(1)])], // key version 0
      [null, Buffer.from([0x53, 1, 9, 0, 0, 0, 1, ...new Array(40).fill(1)])], // unknown algorithm
      [null, k.vault.encrypt('y', ctx).subarray(0, 30)], // truncated
    ]) {
      await t.throwsAsync(insert(a, b), undefined, `accepted ${a ?? b.toString('hex')}`);
    }
    const printed = await columnConstraints(db, { table, columns: ['a'] });
    t.regex(printed[0].sql, /^ALTER TABLE .* ADD CONSTRAINT .* CHECK/);
  });

  test(`${label}: bad options fail clearly before any row is touched`, async (t) => {
    const { db } = await setup();
    const k = await keys();
    const table = tableName('opts');
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text, n int, small smallint, nouniq int)`);
    const run = (o) => reencryptColumn({ db, table, column: 'v', vault: k.vault, ...o });
    await t.throwsAsync(run({ table: 'no_such_table' }), { code: 'ERR_SIFREDB_INPUT', message: /does not exist/ });
    await t.throwsAsync(run({ column: 'nope' }), { code: 'ERR_SIFREDB_INPUT', message: /does not exist/ });
    await t.throwsAsync(run({ column: 'n' }), { code: 'ERR_SIFREDB_INPUT', message: /TEXT\/VARCHAR or BYTEA/ });
    await t.throwsAsync(run({ idColumn: 'nouniq' }), { code: 'ERR_SIFREDB_INPUT', message: /unique/ });
    await t.throwsAsync(run({ batchSize: 0 }), { code: 'ERR_SIFREDB_INPUT' });
    await t.throwsAsync(run({ blindIndexes: [{ index: k.index, column: 'v' }] }), { code: 'ERR_SIFREDB_INPUT', message: /different/ });
    const wide = await BlindIndex.open(k.keyring, { name: 'w', bits: 32 });
    await t.throwsAsync(run({ blindIndexes: [{ index: wide, column: 'small' }] }), { code: 'ERR_SIFREDB_INPUT', message: /at most 15/ });
  });
}
