// sifredb/drizzle on PGlite and on a real PostgreSQL server (started here, stopped after): every write
// path stores ciphertexts only, lookups survive a rotation, tenants and row binding hold, refused
// operators throw, a large select decrypts in a bounded number of backend calls, and the example runs.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { and, eq, like, not, or, sql } from 'drizzle-orm';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { alias, bigint, customType, integer, pgTable, text, varchar } from 'drizzle-orm/pg-core';
import {
  DeterministicVault,
  Keyring,
  StaticKeyProvider,
  Vault,
  applySchema,
  defineTable,
  fromPGlite,
  fromPgPool,
  getBackend,
  isEncrypted,
  reencryptColumn,
} from '../dist/index.js';
import { encryptedTable, encryptedTables } from '../dist/integrations/drizzle/index.js';
import { startPostgres } from './helpers/postgres.js';
import { tableName } from './helpers/reencrypt-cases.js';
import { runNode } from './helpers/cli.js';

const bytea = customType({ dataType: () => 'bytea' });

/** The schema of the tests (database column names), on table `name`. */
function usersSchema(name) {
  return defineTable({
    table: name,
    tenant: 'tenant_id',
    columns: {
      email: {
        type: 'string',
        blindIndexes: [{ name: 'email', column: 'email_idx', bits: 8, transforms: ['trim', 'lowercase'] }],
        deterministicLookups: [{ column: 'email_det' }],
      },
      born: { type: 'date', storage: 'bytea' },
      ssn: { type: 'string', mode: 'deterministic' },
      note: { type: 'string', rowBinding: true },
    },
  });
}

/** The Drizzle table holding it: other property names than the database's, to exercise the mapping. */
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

const ENCRYPTED = ['email', 'email_det', 'born', 'ssn', 'note'];

const contexts = [];

const server = await startPostgres();
test.after.always(async () => {
  await server.stop();
});

function pglite() {
  const client = new PGlite();
  return { db: drizzlePglite(client), sdb: fromPGlite(client) };
}
function postgres() {
  return { db: drizzlePg(server.pool), sdb: fromPgPool(server.pool) };
}
contexts.push(['pglite', pglite], ['postgres', postgres]);

/** A table created with its plaintext columns and the schema's DDL (columns, indexes, CHECK constraints). */
async function setupTable(open, prefix, source) {
  const { db, sdb } = open();
  const name = tableName(prefix);
  await sdb.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text, name text)`);
  const schema = usersSchema(name);
  await applySchema(sdb, schema);
  const table = usersTable(name);
  const enc = await encryptedTable(source, table, schema);
  return { db, sdb, name, schema, table, enc };
}

const person = (id, tenantId = 't1', extra = {}) => ({
  id,
  tenantId,
  name: `n${id}`,
  email: `User${id}@Example.com`,
  born: new Date(Date.UTC(1980, 0, id)),
  ssn: `ssn-${id}`,
  note: `note ${id}`,
  ...extra,
});

for (const [label, open] of contexts) {
  test(`${label}: every write path stores ciphertexts; reads decrypt to the declared types; the CHECK constraints refuse plaintext`, async (t) => {
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const { db, sdb, name, table, enc, schema } = await setupTable(open, 'dz_writes', keyring);

    const [one] = await db.insert(table).values(enc.encrypt(person(1))).returning();
    t.true(isEncrypted(one.email), 'returning() gives the stored row');
    const [back] = enc.decrypt([one]);
    t.is(back.email, 'User1@Example.com');
    t.true(back.born instanceof Date);
    t.is(back.born.getTime(), Date.UTC(1980, 0, 1));
    t.false('emailIdx' in back, 'lookup columns are dropped');
    t.is(back.tenantId, 't1', 'other columns keep their property names');

    await db.insert(table).values(enc.encrypt([person(2), person(3, 't2'), person(4, 't2')]));

    const updated = await enc.update(db, { id: 2, tenantId: 't1', email: 'changed@example.com', note: 'new note' }).returning();
    t.is(enc.decrypt(updated)[0].note, 'new note');

    // Upsert: an existing id takes the new encrypted values; a new id is inserted.
    const upserted = person(3, 't2', { email: 'upserted@example.com', ssn: 'ssn-33' });
    await db
      .insert(table)
      .values(enc.encrypt([upserted, person(5, 't2')]))
      .onConflictDoUpdate({ target: table.id, set: { email: sql`excluded.email`, emailIdx: sql`excluded.email_idx`, emailDet: sql`excluded.email_det`, ssn: sql`excluded.ssn` } });
    const u4 = enc.encryptUpdate({ id: 4, tenantId: 't2', email: 'set@example.com' });
    await db.insert(table).values(enc.encrypt(person(4, 't2'))).onConflictDoUpdate({ target: table.id, set: u4.set, setWhere: u4.where });

    // Update by an encrypted column: the WHERE built with enc.eq, exact (the deterministic lookup).
    const byEmail = await db.update(table).set({ name: 'renamed' }).where(enc.eq(table.email, 'upserted@example.com', { tenant: 't2' })).returning();
    t.deepEqual(enc.decrypt(byEmail).map((r) => r.id), [3]);
    const bySsn = await db.update(table).set({ name: 'by ssn' }).where(enc.inArray(table.ssn, ['ssn-5', 'nobody'], { tenant: 't2' })).returning();
    t.deepEqual(enc.decrypt(bySsn).map((r) => [r.id, r.name]), [[5, 'by ssn']]);
    // A blind-index condition would also change its false positives' rows: it refuses to render outside select().
    const approximate = enc.eq(table.email, 'UPSERTED@example.com ', { tenant: 't2', index: 'email' });
    const overMatch = { code: 'ERR_SIFREDB_INPUT', message: /\.email uses a blind index, which also matches rows that do not hold the value/ };
    await t.throwsAsync(db.update(table).set({ name: 'x' }).where(approximate), overMatch);
    await t.throwsAsync(db.delete(table).where(approximate), overMatch);
    await t.throwsAsync(db.select().from(table).where(approximate), overMatch);
    t.deepEqual((await enc.select(db, approximate)).map((r) => r.name), ['renamed'], 'select() renders it and drops false positives');

    // encryptedTables opens several tables on one keyring; any instance reads what another wrote.
    const { users } = await encryptedTables(keyring, { users: [table, schema] });
    const rows = await users.select(db, sql`true`);
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    t.deepEqual(Object.keys(byId).map(Number).sort(), [1, 2, 3, 4, 5]);
    t.is(byId[2].email, 'changed@example.com');
    t.is(byId[3].email, 'upserted@example.com');
    t.is(byId[3].ssn, 'ssn-33');
    t.is(byId[3].name, 'renamed');
    t.is(byId[4].email, 'set@example.com');
    t.is(byId[4].note, 'note 4', 'columns the upsert did not set still open');

    const { rows: raw } = await sdb.query(`SELECT * FROM ${name}`);
    t.is(raw.length, 5);
    for (const row of raw) {
      for (const column of ENCRYPTED) t.true(isEncrypted(row[column]), `${column} of row ${row.id} is a ciphertext`);
      t.is(typeof row.email_idx, 'number');
      // The plaintexts hold '@' (emails) or ' ' (notes), which neither sdb1: text (base64url) nor a term can.
      const stored = ENCRYPTED.map((c) => (typeof row[c] === 'string' ? row[c] : Buffer.from(row[c]).toString('hex'))).join('|');
      t.false(/[@ ]/.test(stored), `no plaintext in row ${row.id}`);
      t.false(stored.includes(`ssn-${row.id}`), `no ssn plaintext in row ${row.id}`);
    }
    const { rows: checks } = await sdb.query(`SELECT conname FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'c' AND convalidated`, [name]);
    t.true(checks.length >= ENCRYPTED.length, 'a validated CHECK constraint per stored column');
    await t.throwsAsync(db.insert(table).values({ id: 99, tenantId: 't1', email: 'plain@example.com' }), undefined, 'a plaintext insert around the integration is refused');
    await t.throwsAsync(sdb.query(`UPDATE ${name} SET ssn = 'plain' WHERE id = 1`), undefined, 'a plaintext update too');
    // Writing a lookup column yourself is refused: it is computed from its column.
    t.throws(() => enc.encrypt({ ...person(6), emailIdx: 1 }), { code: 'ERR_SIFREDB_INPUT', message: /email_idx is a lookup column of email/ });
    t.throws(() => enc.encrypt({ ...person(6), born: '1980-01-01' }), { code: 'ERR_SIFREDB_INPUT', message: /born is declared date/ });
  });

  test(`${label}: lookups by every searchable column find old and new rows across a rotation; after reencrypt and retire, one term`, async (t) => {
    const provider = new StaticKeyProvider(randomBytes(32));
    const keyring = await Keyring.open(provider);
    const { db, sdb, table, enc, schema } = await setupTable(open, 'dz_rotation', keyring);
    await db.insert(table).values(enc.encrypt([person(1), person(2, 't2', { email: 'user1@example.com', ssn: 'ssn-1' })]));
    await provider.rotate();
    await keyring.refresh();
    const after = await encryptedTable(keyring, table, schema);
    await db.insert(table).values(after.encrypt([person(3, 't1', { email: ' USER1@example.com', ssn: 'ssn-1' }), person(4)]));

    const find = async (e, where) => (await e.select(db, where)).map((r) => r.id).sort();
    t.deepEqual(await find(after, after.eq(table.email, 'user1@example.com', { tenant: 't1', index: 'email' })), [1, 3], 'blind index: both versions, this tenant');
    t.deepEqual(await find(after, after.eq(table.email, 'User1@Example.com', { tenant: 't1', index: 'email_det' })), [1], 'deterministic lookup: exact spelling');
    t.deepEqual(await find(after, after.eq(table.email, 'User1@Example.com', { tenant: 't1' })), [1], 'without index: the deterministic lookup, preferred to the blind index');
    t.deepEqual(await find(after, after.eq(table.ssn, 'ssn-1', { tenant: 't1' })), [1, 3], 'deterministic column: both versions');
    t.deepEqual(await find(after, after.inArray(table.ssn, ['ssn-1', 'ssn-4'], { tenant: 't1' })), [1, 3, 4]);
    t.deepEqual(await find(after, after.inArray(table.email, ['user4@example.com', 'user1@example.com'], { tenant: 't1', index: 'email' })), [1, 3, 4]);
    t.deepEqual(await find(after, after.eq(table.ssn, 'ssn-1', { tenant: 't2' })), [2]);
    t.is(after.encrypted.where('ssn', 'ssn-1', { tenant: 't1' }).terms.length, 2);
    t.is(after.encrypted.where('email', 'x', { tenant: 't1', index: 'email' }).terms.length, 2);
    t.is(after.encrypted.where('email', 'x', { tenant: 't1', index: 'email_det' }).terms.length, 2);

    const vault = await Vault.open(keyring);
    const det = await DeterministicVault.open(keyring);
    for (const column of ['email', 'born', 'note']) {
      t.like(await reencryptColumn({ db: sdb, schema, column, vault }), { failed: 0 }, column);
    }
    t.like(await reencryptColumn({ db: sdb, schema, column: 'ssn', vault: det }), { failed: 0 });
    await provider.retire(1);
    await keyring.refresh();
    const retired = await encryptedTable(keyring, table, schema);
    for (const [column, index] of [['email', 'email'], ['email', 'email_det'], ['ssn', undefined]]) {
      t.is(retired.encrypted.where(column, 'ssn-1', { tenant: 't1', index }).terms.length, 1, `${column} ${index ?? ''}: one term`);
    }
    t.deepEqual(await find(retired, retired.eq(table.email, 'user1@example.com', { tenant: 't1', index: 'email' })), [1, 3]);
    t.deepEqual(await find(retired, retired.eq(table.ssn, 'ssn-1', { tenant: 't1' })), [1, 3]);
    t.deepEqual(await find(retired, retired.eq(table.email, 'User1@Example.com', { tenant: 't1', index: 'email_det' })), [1]);
    const all = await retired.select(db, undefined);
    t.is(all.length, 4, 'every row opens on the current version only');
  });

  test(`${label}: tenants and row binding through the integration`, async (t) => {
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const { db, sdb, name, table, enc } = await setupTable(open, 'dz_tenants', keyring);
    // An email whose 8-bit term is the same in t1 and t2 (about 1 in 256): held by a row of each tenant,
    // the t2 row comes back from the lookup column alone and holds the value, so only the tenant
    // condition of enc.eq keeps it out.
    const term = (email, tenant) => enc.encrypted.where('email', email, { tenant, index: 'email' }).terms[0];
    const shared = Array.from({ length: 5000 }, (_, k) => `shared${k}@example.com`).find((e) => term(e, 't1') === term(e, 't2'));
    t.truthy(shared);
    const others = Array.from({ length: 20 }, (_, k) => person(200 + k, 't2'));
    await db.insert(table).values(enc.encrypt([person(1, 't1', { email: shared }), person(100, 't2', { email: shared }), ...others]));
    const q = enc.encrypted.where('email', shared, { tenant: 't1', index: 'email' });
    const { rows: byTermOnly } = await sdb.query(`SELECT * FROM ${name} WHERE ${q.sql('$1')} ORDER BY id`, [q.terms]);
    const byTerm = byTermOnly.map((r) => Number(r.id));
    t.true(byTerm.includes(1) && byTerm.includes(100), 'the lookup column alone finds the other tenant\'s row (and maybe other false positives)');
    const found = await enc.select(db, enc.eq(table.email, shared, { tenant: 't1', index: 'email' }));
    t.deepEqual(found.map((r) => r.id), [1], 'only the tenant\'s row');
    t.deepEqual((await enc.select(db, enc.eq(table.email, shared.toUpperCase(), { tenant: 't2', index: 'email' }))).map((r) => r.id), [100]);
    t.throws(() => enc.eq(table.email, 'x'), { code: 'ERR_SIFREDB_INPUT', message: /tenant/ });
    t.throws(() => enc.encrypt({ id: 7, email: 'x@example.com' }), { code: 'ERR_SIFREDB_INPUT', message: /tenant_id/ });
    t.throws(() => enc.encryptUpdate({ tenantId: 't1', note: 'bound' }), { code: 'ERR_SIFREDB_INPUT', message: /row id/ });

    // A bound value copied to another row of the same tenant does not open there.
    await sdb.query(`UPDATE ${name} SET note = (SELECT note FROM ${name} WHERE id = 200) WHERE id = 201`);
    const rows = await db.select().from(table).where(sql`${table.id} = 201`);
    t.throws(() => enc.decrypt(rows), { code: 'ERR_SIFREDB_AUTH', message: /note/ });
    // A value moved to another tenant does not open either.
    await sdb.query(`UPDATE ${name} SET tenant_id = 't1' WHERE id = 202`);
    await t.throwsAsync(enc.select(db, sql`${table.id} = 202`), { code: 'ERR_SIFREDB_AUTH' });
    const error = t.throws(() => enc.decrypt(rows));
    t.false(/note 20/.test(error.message), 'errors never hold plaintext');
  });

  test(`${label}: operators an encrypted column cannot answer throw, naming column and operator`, async (t) => {
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const { db, name, table, enc, schema } = await setupTable(open, 'dz_ops', keyring);
    await db.insert(table).values(enc.encrypt([person(1), person(2)]));
    const refused = [
      [() => enc.like(table.email, '%x%'), /\.email is encrypted and cannot answer "like"/],
      [() => enc.ilike(table.email, '%x%'), /\.email is encrypted and cannot answer "ilike"/],
      [() => enc.gt(table.born, new Date()), /\.born is encrypted and cannot answer ">"/],
      [() => enc.lte(table.ssn, 'a'), /\.ssn is encrypted and cannot answer "<="/],
      [() => enc.between(table.born, 1, 2), /\.born is encrypted and cannot answer "between"/],
      [() => enc.ne(table.ssn, 'a'), /\.ssn is encrypted and cannot answer "<>"/],
      [() => enc.notInArray(table.ssn, ['a']), /\.ssn is encrypted and cannot answer "not in"/],
      [() => enc.asc(table.email), /\.email is encrypted and cannot answer "order by"/],
      [() => enc.desc(table.note), /\.note is encrypted and cannot answer "order by"/],
      [() => enc.assertQueryable(table.email, 'similar to'), /\.email is encrypted and cannot answer "similar to"/],
      [() => enc.gt(table.emailIdx, 3), /email_idx is a lookup column of email and cannot be queried with ">"/],
      [() => enc.eq(table.emailIdx, 3), /email_idx is a lookup column of email/],
      [() => enc.eq(table.note, 'x', { tenant: 't1' }), /\.note cannot answer "=": it is randomized/],
      [() => enc.eq(table.born, new Date(), { tenant: 't1' }), /\.born cannot answer "="/],
    ];
    for (const [call, message] of refused) t.throws(call, { code: 'ERR_SIFREDB_INPUT', message });
    t.true(name.length > 0);
    // Other columns go to Drizzle's operators.
    const ordered = await db.select().from(table).where(enc.gt(table.id, 0)).orderBy(enc.desc(table.name));
    t.deepEqual(enc.decrypt(ordered).map((r) => r.id), [2, 1]);
    t.deepEqual((await enc.select(db, enc.like(table.name, 'n1'))).map((r) => r.id), [1]);
    t.deepEqual((await enc.select(db, and(enc.eq(table.name, 'n2'), enc.eq(table.email, 'user2@example.com', { tenant: 't1', index: 'email' })))).map((r) => r.id), [2]);
    // A blind-index condition under OR could not be filtered row by row: refused before the query.
    await t.throwsAsync(enc.select(db, or(enc.eq(table.name, 'n2'), enc.eq(table.email, 'user1@example.com', { tenant: 't1', index: 'email' }))), {
      code: 'ERR_SIFREDB_INPUT',
      message: /under OR\/NOT/,
    });
    // Exact conditions (deterministic) need no filter and may sit under OR.
    const either = await enc.select(db, or(enc.eq(table.name, 'n2'), enc.eq(table.ssn, 'ssn-1', { tenant: 't1' })));
    t.deepEqual(either.map((r) => r.id).sort(), [1, 2]);

    // The Drizzle table is checked against the schema when it is opened.
    const missing = pgTable(name, { id: bigint('id', { mode: 'number' }), tenantId: text('tenant_id'), email: text('email'), emailIdx: integer('email_idx') });
    await t.throwsAsync(encryptedTable(keyring, missing, schema), { code: 'ERR_SIFREDB_SCHEMA', message: /has no column email_det/ });
    const wrongType = pgTable(name, {
      id: bigint('id', { mode: 'number' }),
      tenantId: text('tenant_id'),
      email: text('email'),
      emailIdx: integer('email_idx'),
      emailDet: text('email_det'),
      born: text('born'),
      ssn: text('ssn'),
      note: text('note'),
    });
    await t.throwsAsync(encryptedTable(keyring, wrongType, schema), { code: 'ERR_SIFREDB_SCHEMA', message: /born \(encrypted date\) is text in the Drizzle table but holds BYTEA ciphertexts/ });
    await t.throwsAsync(encryptedTable(keyring, usersTable('other'), schema), { code: 'ERR_SIFREDB_SCHEMA', message: /is not the schema's table/ });
  });

  test(`${label}: updates and upserts stay on the tenant (and id) their values are encrypted for`, async (t) => {
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const { db, sdb, name, table, enc } = await setupTable(open, 'dz_upd', keyring);
    await db.insert(table).values(enc.encrypt([person(8, 'globex'), person(9, 'acme'), person(401, 't2'), person(402, 't2')]));
    const rawRow = async (id) => (await sdb.query(`SELECT id, tenant_id FROM ${name} WHERE id = ${id}`)).rows.map((r) => [Number(r.id), r.tenant_id]);

    // The tenant and the id are context: out of `set`, into `where`.
    const u = enc.encryptUpdate({ id: 9, tenantId: 'acme', email: 'moved@x.io', name: 'nine' });
    t.deepEqual(Object.keys(u.set).sort(), ['email', 'emailDet', 'emailIdx', 'name']);
    t.false('tenantId' in u.set || 'id' in u.set);
    t.truthy(u.where);

    // An UPDATE aimed (by mistake or by a caller) at another tenant's row changes nothing.
    const acme = enc.encryptUpdate({ tenantId: 'acme', email: 'stolen@x.io' });
    t.deepEqual(await db.update(table).set(acme.set).where(and(acme.where, eq(table.id, 8))).returning(), []);
    t.deepEqual(await enc.update(db, { tenantId: 'acme', email: 'stolen@x.io' }, eq(table.id, 8)).returning(), []);
    t.deepEqual(await rawRow(8), [[8, 'globex']]);
    // A row-bound value given with id 401 cannot renumber row 402.
    t.deepEqual(await enc.update(db, { id: 401, tenantId: 't2', note: 'bound to 401' }, eq(table.id, 402)).returning(), []);
    t.deepEqual(await rawRow(402), [[402, 't2']]);
    t.deepEqual(await rawRow(401), [[401, 't2']]);
    // The tenant's own row is updated, and its other encrypted columns still open.
    const [nine] = enc.decrypt(await enc.update(db, { id: 9, tenantId: 'acme', email: 'nine@x.io' }).returning());
    t.like(nine, { id: 9, tenantId: 'acme', email: 'nine@x.io', ssn: 'ssn-9', note: 'note 9' });
    t.throws(() => enc.encryptUpdate({ email: 'x@x.io' }), { code: 'ERR_SIFREDB_INPUT', message: /needs tenantId/ });
    t.throws(() => enc.encryptUpdate({ id: 9, tenantId: 'acme' }), { code: 'ERR_SIFREDB_INPUT', message: /nothing to set/ });
    // The documented raw upsert: set and setWhere from encryptUpdate; another tenant's row is left alone.
    const raw = enc.encryptUpdate({ id: 8, tenantId: 'acme', email: 'raw@x.io' });
    await db.insert(table).values(enc.encrypt(person(8, 'acme', { email: 'raw@x.io' }))).onConflictDoUpdate({ target: table.id, set: raw.set, setWhere: raw.where });
    t.deepEqual(await rawRow(8), [[8, 'globex']]);

    // upsert(): another tenant's id is refused (and left alone); the tenant's own row and a new row are written.
    await t.throwsAsync(enc.upsert(db, [person(8, 'acme', { email: 'mine@x.io' })]), { code: 'ERR_SIFREDB_INPUT', message: /rows\[0\]: its id is held by a row of another tenant/ });
    t.deepEqual(await rawRow(8), [[8, 'globex']]);
    const written = await enc.upsert(db, [person(9, 'acme', { email: 'upsert9@x.io', ssn: 'ssn-99' }), person(10, 'acme')]);
    t.deepEqual(written.map((r) => [r.id, r.email, r.ssn]).sort(), [[10, 'User10@Example.com', 'ssn-10'], [9, 'upsert9@x.io', 'ssn-99']]);
    t.deepEqual((await enc.select(db, enc.eq(table.email, 'UPSERT9@x.io', { tenant: 'acme', index: 'email' }))).map((r) => r.id), [9], 'the upsert set the lookups too');
    await t.throwsAsync(enc.upsert(db, [person(11), { id: 12, tenantId: 't1', email: 'a@x.io' }]), { code: 'ERR_SIFREDB_INPUT', message: /rows\[1\] gives other columns/ });
    await t.throwsAsync(enc.upsert(db, [{ id: 13, name: 'no tenant' }]), { code: 'ERR_SIFREDB_INPUT', message: /rows\[0\] has no tenantId/ });
    // Every row still opens: nothing was moved to another tenant.
    const all = await enc.select(db);
    t.is(all.length, 5);
    t.deepEqual(Object.fromEntries(all.map((r) => [r.id, r.tenantId])), { 8: 'globex', 9: 'acme', 10: 'acme', 401: 't2', 402: 't2' });
  });

  test(`${label}: select() refuses a blind-index condition inside any SQL but and(...), and plain operators on encrypted columns`, async (t) => {
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const { db, table, enc } = await setupTable(open, 'dz_or', keyring);
    await db.insert(table).values(enc.encrypt([person(5), person(100, 't1', { email: 'u100@x.io' })]));
    const blind = () => enc.eq(table.email, 'u100@x.io', { tenant: 't1', index: 'email' });
    const orShapes = [
      sql.join([blind(), eq(table.id, 5)], sql` or `),
      sql`(${sql.join([blind(), eq(table.id, 5)], sql.raw(' OR '))})`,
      sql`${blind()} ${sql.raw('or')} ${eq(table.id, 5)}`,
      sql`${blind()} ${sql`${sql.raw('or')}`} ${eq(table.id, 5)}`,
      sql`${blind()} and ${sql.raw('true or')} ${eq(table.id, 5)}`,
      not(blind()),
      sql`${blind()} = ${sql.param(false)}`,
    ];
    for (const [i, where] of orShapes.entries()) {
      await t.throwsAsync(enc.select(db, where), { code: 'ERR_SIFREDB_INPUT', message: /under OR\/NOT or other SQL than and/ }, `shape ${i}`);
    }
    // AND in any spelling is still accepted, and filtered.
    const ids = async (where) => (await enc.select(db, where)).map((r) => r.id).sort((a, b) => a - b);
    t.deepEqual(await ids(sql`(${blind()} ${sql.raw('AND')} (${eq(table.id, 100)}))`), [100]);
    t.deepEqual(await ids(sql.join([blind(), eq(table.tenantId, 't1')], sql` and `)), [100]);
    t.deepEqual(await ids(and(and(blind(), eq(table.id, 100)), eq(table.name, 'n100'))), [100]);

    // Drizzle's own operators (or raw SQL) on an encrypted or lookup column would compare a plaintext with ciphertexts.
    const raw = [
      eq(table.ssn, 'ssn-5'),
      like(table.email, '%x%'),
      sql`${table.email} = ${'u100@x.io'}`,
      and(eq(table.name, 'n5'), or(eq(table.id, 1), eq(table.emailIdx, 3))),
      eq(alias(table, 'u2').ssn, 'ssn-5'),
    ];
    for (const [i, where] of raw.entries()) {
      await t.throwsAsync(enc.select(db, where), { code: 'ERR_SIFREDB_INPUT', message: /is (encrypted|a lookup column of email) and is used in the condition other than through eq\/inArray/ }, `raw ${i}`);
    }
    t.throws(() => enc.update(db, { tenantId: 't1', name: 'x' }, eq(table.ssn, 'ssn-5')), { code: 'ERR_SIFREDB_INPUT' });
    const error = await t.throwsAsync(enc.select(db, eq(table.ssn, 'ssn-5')));
    t.false(error.message.includes('ssn-5'), 'no plaintext in the error');
    // The helpers' conditions, and plain ones on other columns, are fine together.
    t.deepEqual(await ids(or(eq(table.name, 'n100'), enc.eq(table.ssn, 'ssn-5', { tenant: 't1' }))), [5, 100]);
  });

  test(`${label}: columns of alias(table) are guarded as the table's`, async (t) => {
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const { db, table, enc, schema } = await setupTable(open, 'dz_alias', keyring);
    await db.insert(table).values(enc.encrypt([person(1, 't1', { email: 'a@x.io' }), person(2, 't1', { email: 'b@x.io' })]));
    const u2 = alias(table, 'u2');
    t.throws(() => enc.like(u2.email, '%x%'), { code: 'ERR_SIFREDB_INPUT', message: /\.email is encrypted and cannot answer "like"/ });
    t.throws(() => enc.asc(u2.born), { code: 'ERR_SIFREDB_INPUT', message: /\.born is encrypted/ });
    t.throws(() => enc.eq(u2.emailIdx, 3), { code: 'ERR_SIFREDB_INPUT', message: /email_idx is a lookup column of email/ });
    // eq / inArray on the alias compare its lookup column with the terms, under the alias's name.
    const bySsn = await db.select().from(u2).where(enc.eq(u2.ssn, 'ssn-2', { tenant: 't1' }));
    t.deepEqual(enc.decrypt(bySsn).map((r) => r.id), [2]);
    const byEmail = await db.select().from(u2).where(enc.inArray(u2.email, ['a@x.io', 'b@x.io'], { tenant: 't1', index: 'email_det' }));
    t.deepEqual(enc.decrypt(byEmail).map((r) => r.id).sort(), [1, 2]);
    // A blind-index condition on the alias cannot be read by select() (FROM the table), nor rendered elsewhere.
    const blindOnAlias = enc.eq(u2.email, 'a@x.io', { tenant: 't1', index: 'email' });
    await t.throwsAsync(enc.select(db, blindOnAlias), { code: 'ERR_SIFREDB_INPUT', message: /built on an alias/ });
    await t.throwsAsync(db.select().from(u2).where(blindOnAlias), { code: 'ERR_SIFREDB_INPUT', message: /uses a blind index/ });
    // A second Drizzle declaration of the same database table is the same table.
    const again = usersTable(schema.table);
    t.throws(() => enc.like(again.email, '%x%'), { code: 'ERR_SIFREDB_INPUT' });
    // A column of another table with the same name is not refused.
    t.truthy(enc.like(usersTable('other_table').email, '%x%'));
  });

  test(`${label}: selecting 10,000 rows decrypts each column in a bounded number of backend calls`, async (t) => {
    const calls = { decrypt: 0 };
    // Plain-object wrappers (the backends' objects may be frozen, which a Proxy cannot override):
    // every method bound to the real object, some of them wrapped.
    const wrap = (target, around) => {
      const out = {};
      for (let o = target; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
        for (const key of Object.getOwnPropertyNames(o)) {
          if (key === 'constructor' || key in out) continue;
          const value = target[key];
          out[key] = typeof value === 'function' ? around(key, value.bind(target)) : value;
        }
      }
      return out;
    };
    const countCipher = (handle) =>
      wrap(handle, (key, fn) => (key.startsWith('decrypt') ? (...args) => ((calls.decrypt += 1), fn(...args)) : fn));
    const countRoot = (root) =>
      wrap(root, (key, fn) => (key === 'randomizedCipher' || key === 'deterministicCipher' ? (...args) => countCipher(fn(...args)) : fn));
    const backend = wrap(getBackend(), (key, fn) => (key === 'importRootKey' ? (...args) => countRoot(fn(...args)) : fn));
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)), { backend });
    const { db, table, enc } = await setupTable(open, 'dz_many', keyring);
    const n = 10_000;
    // Row-bound columns decrypt one value per call (no batch fast path in the backend): left null here.
    const rows = enc.encrypt(Array.from({ length: n }, (_, k) => person(k + 1, k % 2 === 0 ? 't1' : 't2', { note: null })));
    for (let i = 0; i < n; i += 1000) await db.insert(table).values(rows.slice(i, i + 1000));
    calls.decrypt = 0;
    const plain = await enc.select(db, undefined);
    t.is(plain.length, n);
    t.true(plain.every((r) => typeof r.email === 'string' && r.born instanceof Date && r.ssn.startsWith('ssn-')));
    // 3 columns with values (email, born, ssn) × 2 tenants, a small constant each: not per row.
    t.true(calls.decrypt > 0, 'the counting backend saw the decryption');
    t.true(calls.decrypt <= 3 * 2 * 2, `${calls.decrypt} decrypt calls for ${n} rows`);
    calls.decrypt = 0;
    t.is(enc.decrypt(await db.select().from(table)).length, n);
    t.true(calls.decrypt <= 3 * 2 * 2, `${calls.decrypt} decrypt calls (sync) for ${n} rows`);
  });
}

test('examples/drizzle.js runs end to end', async (t) => {
  const { code, stdout, stderr } = await runNode(fileURLToPath(new URL('../examples/drizzle.js', import.meta.url)), []);
  t.is(code, 0, stderr);
  t.regex(stdout, /all checks passed/);
});
