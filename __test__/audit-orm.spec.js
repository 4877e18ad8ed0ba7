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
