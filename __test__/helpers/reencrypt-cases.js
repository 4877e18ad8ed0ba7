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
