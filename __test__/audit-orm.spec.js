// Audit signatures through the ORM integrations (sifredb/drizzle, sifredb/kysely) on PGlite and on a
// real PostgreSQL server (started here, stopped after): their writes verify clean, a plain-SQL tamper
// after them is found, they share one chain with AuditedTable writers, and the write paths that
// cannot sign are refused with ERR_SIFREDB_AUDIT_UNSIGNED (nothing written).
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { eq as drizzleEq } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { bigint, customType, integer, pgTable, text, varchar } from 'drizzle-orm/pg-core';
import { AuditedTable, EncryptedTable, Keyring, StaticKeyProvider, applySchema, backend, defineTable, fromPGlite, fromPgPool, verifyAudit } from '../dist/index.js';
import { encryptedTable } from '../dist/integrations/drizzle/index.js';
import { Kysely, PostgresDialect } from 'kysely';
import { SifreDBPlugin } from '../dist/integrations/kysely/index.js';
import { PGliteDialect } from '../examples/kysely-pglite-dialect.js';
import { kyselySchema } from './helpers/kysely-cases.js';
import { auditKeys } from './helpers/audit-cases.js';
import { startPostgres } from './helpers/postgres.js';
import { tableName } from './helpers/reencrypt-cases.js';

const bytea = customType({ dataType: () => 'bytea' });

function usersSchema(name) {
  return defineTable({
    table: name,
    tenant: 'tenant_id',
    columns: {
      email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 8, transforms: ['trim', 'lowercase'] }], deterministicLookups: [{ column: 'email_det' }] },
      born: { type: 'date', storage: 'bytea' },
      ssn: { type: 'string', mode: 'deterministic' },
      note: { type: 'string', rowBinding: true },
    },
  });
}

function usersTable(name) {
  return pgTable(name, {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    tenantId: text('tenant_id'),
    name: text('name'),
    email: text('email'),
    emailIdx: integer('email_idx'),
    emailDet: text('email_det'),
    born: bytea('born'),
    ssn: varchar('ssn'),
    note: text('note'),
  });
}

const person = (id, tenantId = id % 2 === 0 ? 't2' : 't1', extra = {}) => ({
  id,
  tenantId,
  name: `n${id}`,
  email: `User${id}@Example.com`,
  born: new Date(Date.UTC(1980, 0, id)),
  ssn: `ssn-${id}`,
  note: `note ${id}`,
  ...extra,
});
/** The same person in database column names, for AuditedTable. */
const dbPerson = (id) => {
  const { tenantId, ...rest } = person(id);
  return { ...rest, tenant_id: tenantId };
};

const kinds = (report) => report.findings.map((f) => `${f.rowId ?? '-'}:${f.kind}`).sort();

const server = await startPostgres();
test.after.always(async () => {
  await server.stop();
});

const contexts = [
  [
    'pglite',
    () => {
      const client = new PGlite();
      return { db: drizzlePglite(client), sdb: fromPGlite(client) };
    },
  ],
  ['postgres', () => ({ db: drizzlePg(server.pool), sdb: fromPgPool(server.pool) })],
];

async function setup(open, prefix) {
  const { db, sdb } = open();
  const name = tableName(prefix);
  await sdb.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text, name text)`);
  const schema = usersSchema(name);
  await applySchema(sdb, schema, { audit: true });
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
  const keys = await auditKeys();
  const table = usersTable(name);
  const enc = await encryptedTable(keyring, table, schema, { audit: { signer: keys.signer } });
  return { db, sdb, name, schema, keyring, keys, table, enc };
}

for (const [label, open] of contexts) {
  test(`${label} [${backend}]: Drizzle signed inserts, updates and deletes verify clean; a plain-SQL tamper after them is found`, async (t) => {
    const { db, sdb, name, keys, table, enc } = await setup(open, 'dz_audit');
    t.true(enc.audited);
    const inserted = await enc.signedInsert(db, [person(1), person(2), person(3), person(4)], { actor: 'alice' });
    t.deepEqual(inserted.map((r) => r.email), ['User1@Example.com', 'User2@Example.com', 'User3@Example.com', 'User4@Example.com']);
    const updated = await enc.signedUpdate(db, { id: 2, tenantId: 't2', email: 'changed@example.com', note: 'new note' }, { actor: 'bob' });
    t.deepEqual(updated.map((r) => [r.id, r.email, r.note]), [[2, 'changed@example.com', 'new note']]);
    // An update of several rows by a deterministic condition: one record per row.
    const byTenant = await enc.signedUpdate(db, { tenantId: 't1', ssn: 'ssn-t1' }, { actor: 'bob', where: enc.inArray(table.id, [1, 3]) });
    t.deepEqual(byTenant.map((r) => r.id).sort(), [1, 3]);
    t.deepEqual(await enc.signedUpdate(db, { id: 99, tenantId: 't1', email: 'x' }, { actor: 'bob' }), []);
    t.is(await enc.signedDelete(db, enc.eq(table.ssn, 'ssn-4', { tenant: 't2' }), { actor: 'carol' }), 1);
    t.is(await enc.signedDelete(db, drizzleEq(table.id, 4), { actor: 'carol' }), 0);
    let report = await verifyAudit(sdb, name, { publicKeys: keys.publicKeys });
    t.deepEqual(report.findings, []);
    const { rows: records } = await sdb.query(`SELECT operation, row_id FROM sifredb_audit WHERE table_name = $1 ORDER BY seq`, [name]);
    const ops = records.map((r) => `${r.operation}:${r.row_id}`);
    t.deepEqual(ops.slice(0, 5), ['insert:1', 'insert:2', 'insert:3', 'insert:4', 'update:2']);
    t.deepEqual(ops.slice(7), ['delete:4']);
    t.deepEqual(records.slice(5, 7).map((r) => r.row_id).sort(), ['1', '3']);

    // Tamper with plain SQL: a ciphertext copied from another row, a row deleted.
    await sdb.query(`UPDATE ${name} SET note = (SELECT note FROM ${name} WHERE id = 1) WHERE id = 3`);
    await sdb.query(`UPDATE ${name} SET email = (SELECT email FROM ${name} WHERE id = 1) WHERE id = 2`);
    report = await verifyAudit(sdb, name, { publicKeys: keys.publicKeys });
    t.deepEqual(kinds(report), ['2:copied', '3:copied']);
    await sdb.query(`DELETE FROM ${name} WHERE id = 1`);
    report = await verifyAudit(sdb, name, { publicKeys: keys.publicKeys });
    t.true(kinds(report).includes('1:deleted'), JSON.stringify(kinds(report)));
  });

  test(`${label} [${backend}]: Drizzle and AuditedTable writers of one table share one chain (concurrently on a server)`, async (t) => {
    const { db, sdb, name, schema, keyring, keys, enc } = await setup(open, 'dz_audit_mixed');
    const audited = await AuditedTable.open(await EncryptedTable.open(keyring, schema), sdb, keys.signer);
    const writes = [];
    for (let i = 1; i <= 6; i++) {
      writes.push(i % 2 === 0 ? enc.signedInsert(db, [person(i)], { actor: 'drizzle' }) : audited.insert([dbPerson(i)], { actor: 'table' }));
    }
    await Promise.all(writes);
    await Promise.all([
      enc.signedUpdate(db, { id: 1, tenantId: 't1', email: 'by drizzle' }, { actor: 'drizzle' }),
      audited.update(2, { tenant_id: 't2', email: 'by table' }, { actor: 'table' }),
      enc.signedDelete(db, drizzleEq(enc.table.id, 3), { actor: 'drizzle' }),
      audited.delete(4, { actor: 'table' }),
    ]);
    const report = await verifyAudit(sdb, name, { publicKeys: keys.publicKeys });
    t.deepEqual(report.findings, []);
    const { rows } = await sdb.query(`SELECT count(*)::int AS n, max(seq)::int AS top FROM sifredb_audit WHERE table_name = $1`, [name]);
    t.deepEqual(rows[0], { n: 10, top: 10 });
  });

  test(`${label} [${backend}]: an audited Drizzle table refuses its unsigned helpers; a failed signed write leaves neither rows nor records`, async (t) => {
    const { db, sdb, name, keys, table, enc } = await setup(open, 'dz_audit_refuse');
    const unsigned = { code: 'ERR_SIFREDB_AUDIT_UNSIGNED', message: /is audited: .* would write rows no audit record signs/ };
    t.throws(() => enc.encrypt(person(1)), unsigned);
    t.throws(() => enc.encrypt([person(1)]), unsigned);
    t.throws(() => enc.encryptUpdate({ id: 1, tenantId: 't1', email: 'x' }), unsigned);
    t.throws(() => enc.update(db, { id: 1, tenantId: 't1', email: 'x' }), unsigned);
    await t.throwsAsync(enc.upsert(db, [person(1)]), unsigned);
    await t.throwsAsync(enc.signedInsert(db, [person(1)], {}), { code: 'ERR_SIFREDB_INPUT', message: /actor/ });
    await t.throwsAsync(enc.signedDelete(db, undefined, { actor: 'x' }), { code: 'ERR_SIFREDB_INPUT', message: /where/ });
    await enc.signedInsert(db, [person(1)], { actor: 'a' });
    // A duplicate id fails inside the transaction: the other row of the statement and the records roll back.
    await t.throwsAsync(enc.signedInsert(db, [person(2), person(1)], { actor: 'a' }));
    // A blind-index condition would delete its false positives: refused, and nothing was deleted.
    await t.throwsAsync(enc.signedDelete(db, enc.eq(table.email, 'user1@example.com', { tenant: 't1', index: 'email' }), { actor: 'a' }), { code: 'ERR_SIFREDB_INPUT' });
    const { rows } = await sdb.query(`SELECT (SELECT count(*)::int FROM ${name}) AS data, (SELECT count(*)::int FROM sifredb_audit WHERE table_name = $1) AS records`, [name]);
    t.deepEqual(rows[0], { data: 1, records: 1 });
    t.deepEqual((await verifyAudit(sdb, name, { publicKeys: keys.publicKeys })).findings, []);
    // Not audited: the signed writes say so.
    const plain = await encryptedTable(await Keyring.open(new StaticKeyProvider(randomBytes(32))), usersTable(name), usersSchema(name));
    t.false(plain.audited);
    await t.throwsAsync(plain.signedInsert(db, [person(5)], { actor: 'a' }), { code: 'ERR_SIFREDB_INPUT', message: /is not audited/ });
  });
}

// ---- Kysely ----

const kperson = (i, tenant = i % 2 === 0 ? 't2' : 't1') => ({
  id: i,
  tenant_id: tenant,
  name: `n${i}`,
  email: `User${i}@Example.com`,
  phone: `+90-555-${String(i).padStart(4, '0')}`,
  ssn: `ssn-${i}`,
  born: new Date(Date.UTC(1980, 0, (i % 28) + 1)),
  note: { i },
});

const kyselyContexts = [
  [
    'pglite',
    () => {
      const client = new PGlite();
      return { sdb: fromPGlite(client), dialect: new PGliteDialect(client), concurrent: false };
    },
  ],
  ['postgres', () => ({ sdb: fromPgPool(server.pool), dialect: new PostgresDialect({ pool: server.pool }), concurrent: true })],
];

async function kyselySetup(open, prefix) {
  const { sdb, dialect, concurrent } = open();
  const name = tableName(prefix);
  await sdb.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text, name text, UNIQUE (tenant_id, id))`);
  const schema = kyselySchema(name);
  await applySchema(sdb, schema, { audit: true });
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
  const keys = await auditKeys();
  const plugin = await SifreDBPlugin.create(keyring, [schema], { audit: { signer: keys.signer } });
  const db = new Kysely({ dialect, plugins: [plugin] });
  return { sdb, db, name, schema, keyring, keys, plugin, concurrent };
}

for (const [label, open] of kyselyContexts) {
  test(`${label} [${backend}]: Kysely signed inserts, updates, upserts and deletes verify clean; a plain-SQL tamper after them is found`, async (t) => {
    const { sdb, db, name, keys, plugin } = await kyselySetup(open, 'ky_audit');
    const inserted = await plugin.signedTransaction(db, { actor: 'alice' }, async (trx) => {
      const rows = await trx.insertInto(name).values([kperson(1), kperson(2), kperson(3), kperson(4)]).returning(['id', 'email']).execute();
      await trx.updateTable(name).set({ email: 'changed@example.com', note: { i: 'new' } }).where('tenant_id', '=', 't2').where('id', '=', 2).returning('id').execute();
      return rows;
    });
    t.deepEqual(inserted.map((r) => r.email), ['User1@Example.com', 'User2@Example.com', 'User3@Example.com', 'User4@Example.com']);
    t.deepEqual(Object.keys(inserted[0]).sort(), ['email', 'id'], 'the audit columns are not in the result');
    await plugin.signedTransaction(db, { actor: 'bob' }, async (trx) => {
      // An upsert: row 3 exists (an update record), row 5 is new (an insert record).
      await trx
        .insertInto(name)
        .values([kperson(3, 't1'), kperson(5, 't1')].map((p) => ({ ...p, ssn: `upserted-${p.id}` })))
        .onConflict((oc) => oc.columns(['tenant_id', 'id']).doUpdateSet((eb) => ({ ssn: eb.ref('excluded.ssn') })))
        .returning('id')
        .execute();
      const deleted = await trx.deleteFrom(name).where('id', '=', 4).returning('id').execute();
      t.is(deleted.length, 1);
    });
    let report = await verifyAudit(sdb, name, { publicKeys: keys.publicKeys });
    t.deepEqual(report.findings, []);
    const { rows: records } = await sdb.query(`SELECT operation, row_id FROM sifredb_audit WHERE table_name = $1 ORDER BY seq`, [name]);
    t.deepEqual(records.map((r) => `${r.operation}:${r.row_id}`), ['insert:1', 'insert:2', 'insert:3', 'insert:4', 'update:2', 'update:3', 'insert:5', 'delete:4']);
    const back = await db.selectFrom(name).selectAll().where('tenant_id', '=', 't1').where('ssn', '=', 'upserted-5').execute();
    t.deepEqual(back.map((r) => r.id), sdb.kind === 'pglite' ? [5] : ['5']);

    await sdb.query(`UPDATE ${name} SET note = (SELECT note FROM ${name} WHERE id = 1) WHERE id = 3`);
    await sdb.query(`DELETE FROM ${name} WHERE id = 5`);
    report = await verifyAudit(sdb, name, { publicKeys: keys.publicKeys });
    t.deepEqual(kinds(report), ['3:copied', '5:deleted']);
  });

  test(`${label} [${backend}]: Kysely and AuditedTable writers of one table share one chain`, async (t) => {
    const { sdb, db, name, schema, keyring, keys, plugin, concurrent } = await kyselySetup(open, 'ky_audit_mixed');
    const audited = await AuditedTable.open(await EncryptedTable.open(keyring, schema), sdb, keys.signer);
    const writes = [];
    for (let i = 1; i <= 6; i++) {
      writes.push(() =>
        i % 2 === 0
          ? plugin.signedTransaction(db, { actor: 'kysely' }, (trx) => trx.insertInto(name).values(kperson(i)).returning('id').execute())
          : audited.insert([kperson(i)], { actor: 'table' }),
      );
    }
    const changes = [
      () => plugin.signedTransaction(db, { actor: 'kysely' }, (trx) => trx.deleteFrom(name).where('id', '=', 1).returning('id').execute()),
      () => audited.update(2, { tenant_id: 't2', email: 'by table' }, { actor: 'table' }),
    ];
    // Inserts first, then changes of the inserted rows; each phase concurrent on a server.
    for (const phase of [writes, changes]) {
      if (concurrent) await Promise.all(phase.map((w) => w()));
      else for (const w of phase) await w();
    }
    t.deepEqual((await verifyAudit(sdb, name, { publicKeys: keys.publicKeys })).findings, []);
    const { rows } = await sdb.query(`SELECT count(*)::int AS n, max(seq)::int AS top FROM sifredb_audit WHERE table_name = $1`, [name]);
    t.deepEqual(rows[0], { n: 8, top: 8 });
  });

  test(`${label} [${backend}]: Kysely writes to an audited table that cannot be signed are refused, nothing written`, async (t) => {
    const { sdb, db, name, keys, plugin, keyring, schema } = await kyselySetup(open, 'ky_audit_refuse');
    const unsigned = { code: 'ERR_SIFREDB_AUDIT_UNSIGNED', message: /is audited: this write would store rows no audit record signs/ };
    await t.throwsAsync(db.insertInto(name).values(kperson(1)).execute(), unsigned);
    await t.throwsAsync(db.updateTable(name).set({ name: 'x' }).where('id', '=', 1).execute(), unsigned);
    await t.throwsAsync(db.deleteFrom(name).where('id', '=', 1).execute(), unsigned);
    await t.throwsAsync(
      plugin.signedTransaction(db, { actor: 'a' }, (trx) => trx.insertInto(name).values(kperson(1)).execute()),
      { code: 'ERR_SIFREDB_INPUT', message: /add \.returning/ },
    );
    await t.throwsAsync(plugin.signedTransaction(db, {}, async () => undefined), { code: 'ERR_SIFREDB_INPUT', message: /actor/ });
    // The work fails after a signed insert: the transaction rolls back, rows and records alike.
    await t.throwsAsync(
      plugin.signedTransaction(db, { actor: 'a' }, async (trx) => {
        await trx.insertInto(name).values(kperson(1)).returning('id').execute();
        throw new Error('work failed');
      }),
      { message: 'work failed' },
    );
    if (label === 'postgres') {
      // A write made on db (another connection) inside the signed transaction fails at the database.
      await t.throwsAsync(
        plugin.signedTransaction(db, { actor: 'a' }, (trx) => db.insertInto(name).values(kperson(7)).returning('id').execute()),
        { message: /audited write outside its signed transaction/ },
      );
    }
    await plugin.signedTransaction(db, { actor: 'a' }, (trx) => trx.insertInto(name).values(kperson(2)).returning('id').execute());
    const { rows } = await sdb.query(`SELECT (SELECT count(*)::int FROM ${name}) AS data, (SELECT count(*)::int FROM sifredb_audit WHERE table_name = $1) AS records`, [name]);
    t.deepEqual(rows[0], { data: 1, records: 1 });
    t.deepEqual((await verifyAudit(sdb, name, { publicKeys: keys.publicKeys })).findings, []);
    // Reads are not signed and need no transaction.
    t.is((await db.selectFrom(name).selectAll().execute()).length, 1);
    // A plugin without audit has no signed transactions.
    const plain = await SifreDBPlugin.create(keyring, [schema]);
    await t.throwsAsync(plain.signedTransaction(db, { actor: 'a' }, async () => undefined), { code: 'ERR_SIFREDB_INPUT', message: /does not audit/ });
  });
}
