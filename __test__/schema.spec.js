// The table schema (lib/schema): declaration and validation, rows through EncryptedTable in both
// directions, and equality queries that expand to every active key version.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BlindIndex,
  DeterministicVault,
  EncryptedTable,
  EncryptionContext,
  Keyring,
  StaticKeyProvider,
  Vault,
  defineTable,
  loadSchema,
  parseSchema,
  applySchema,
  checkSchema,
  diffSettings,
  Schema,
  schemaRecords,
  settingsFingerprint,
} from '../dist/index.js';

const usersInit = {
  table: 'app.users',
  tenant: 'tenant_id',
  columns: {
    email: {
      type: 'string',
      blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }],
      deterministicLookups: [{ column: 'email_det' }],
    },
    born: { type: 'date', storage: 'bytea' },
    ssn: { type: 'string', mode: 'deterministic' },
    score: { type: 'number', rowBinding: true },
    profile: { type: 'json' },
    avatar: { type: 'bytes', storage: 'bytea' },
    visits: { type: 'bigint', algorithm: 'xchacha20-poly1305' },
    vip: { type: 'boolean' },
  },
};

const twoVersions = () => {
  const v1 = randomBytes(32);
  const v2 = randomBytes(32);
  return {
    v1: new StaticKeyProvider(v1),
    both: new StaticKeyProvider({ keys: [{ version: 1, key: v1 }, { version: 2, key: v2 }] }),
  };
};

const plain = (id, tenant, email) => ({
  id,
  tenant_id: tenant,
  name: `user ${id}`,
  email,
  born: new Date(Date.UTC(1990, 0, id)),
  ssn: `123-45-${String(id).padStart(4, '0')}`,
  score: id / 3,
  profile: { tags: ['a', id], nested: { ok: true } },
  avatar: Buffer.from([id, 1, 2, 3]),
  visits: 2n ** 70n + BigInt(id),
  vip: id % 2 === 0,
});

test('defineTable fills the defaults and records what the data depends on', (t) => {
  const users = defineTable(usersInit);
  const email = users.column('email');
  t.is(users.id, 'id');
  t.is(email.mode, 'randomized');
  t.is(email.algorithm, 'chacha20-poly1305');
  t.is(email.storage, 'text');
  t.deepEqual(email.context, { table: 'users', column: 'email', version: 1 });
  t.is(email.blindIndexes[0].storage, 'integer');
  t.is(email.deterministicLookups[0].contextColumn, 'email');
  t.is(users.column('ssn').algorithm, 'aes-256-siv');
  const records = Object.fromEntries(schemaRecords(users).map((r) => [r.column, r.settings]));
  t.deepEqual(Object.keys(records), ['email', 'email_idx', 'email_det', 'born', 'ssn', 'score', 'profile', 'avatar', 'visits', 'vip']);
  t.deepEqual(records.email_idx, { kind: 'blind-index', of: 'email', name: 'email', bits: 18, transforms: ['trim', 'lowercase'], fields: [], storage: 'integer' });
  t.is(records.email.tenantColumn, 'tenant_id');
  t.false('algorithm' in records.visits, 'the algorithm is in every header, and re-encryption may change it');
  const other = defineTable({ ...usersInit, columns: { ...usersInit.columns, email: { ...usersInit.columns.email, blindIndexes: [{ name: 'email', column: 'email_idx', bits: 16 }] } } });
  const otherIdx = schemaRecords(other).find((r) => r.column === 'email_idx').settings;
  t.not(settingsFingerprint(records.email_idx), settingsFingerprint(otherIdx));
  t.deepEqual(diffSettings(records.email_idx, otherIdx), ['bits 18 recorded, 16 configured', 'transforms trim,lowercase recorded, none configured']);
  t.is(settingsFingerprint(records.email_idx), settingsFingerprint(schemaRecords(defineTable(structuredClone(usersInit)))[1].settings));
});

test('invalid schemas are refused with the field at fault named', (t) => {
  const bad = (columns, rest = {}) => t.throws(() => defineTable({ table: 'users', columns, ...rest }), { code: 'ERR_SIFREDB_INPUT' }).message;
  t.regex(bad({ email: { type: 'text' } }), /users\.columns\.email\.type must be one of/);
  t.regex(bad({ email: { type: 'string', blindIndex: [] } }), /users\.columns\.email\.blindIndex is not a known field/);
  t.regex(bad({ email: { type: 'string', blindIndexes: [{ name: 'e', column: 'e_idx', bits: 4 }] } }), /blindIndexes\[0\]\.bits must be an integer in 8\.\.256/);
  t.regex(bad({ email: { type: 'string', blindIndexes: [{ name: 'e', column: 'e_idx', transforms: ['lower'] }] } }), /blindIndexes\[0\]\.transforms\[0\] unknown transform "lower"/);
  t.regex(bad({ email: { type: 'string', mode: 'deterministic', algorithm: 'chacha20-poly1305' } }), /email\.algorithm does not apply/);
  t.regex(bad({ born: { type: 'date', blindIndexes: [{ name: 'b', column: 'b_idx' }] } }), /indexes a date column/);
  t.regex(bad({ email: { type: 'string', blindIndexes: [{ name: 'e', column: 'id' }] } }), /names column "id", which is already the id column/);
  t.regex(bad({ a: { type: 'string', blindIndexes: [{ name: 'e', column: 'x' }] }, b: { type: 'string', deterministicLookups: [{ column: 'x' }] } }), /already a lookup column of a/);
  t.regex(bad({ email: { type: 'string', context: { version: 0 } } }), /email\.context is not a valid encryption context/);
  t.regex(bad({}), /users\.columns must be an object with at least one encrypted column/);
  t.throws(() => parseSchema({ version: 2, tables: [] }), { code: 'ERR_SIFREDB_INPUT', message: /schema\.version must be 1/ });
});

test('loadSchema reads a JSON file; the schema finds tables by qualified or bare name', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-schema-'));
  const file = join(dir, 'schema.json');
  writeFileSync(file, JSON.stringify({ version: 1, tables: [usersInit, { table: 'orders', columns: { card: { type: 'string' } } }] }));
  const schema = await loadSchema(file);
  t.is(schema.table('users').table, 'app.users');
  t.is(schema.table('app.users').table, 'app.users');
  t.is(schema.table('orders').id, 'id');
  t.throws(() => schema.table(), { code: 'ERR_SIFREDB_INPUT', message: /declares 2 tables/ });
  t.throws(() => schema.table('nope'), { code: 'ERR_SIFREDB_INPUT', message: /no table "nope"/ });
  writeFileSync(file, '{"version": 1, "tables": [');
  await t.throwsAsync(loadSchema(file), { code: 'ERR_SIFREDB_INPUT', message: /is not valid JSON/ });
  await t.throwsAsync(loadSchema(join(dir, 'missing.json')), { code: 'ERR_SIFREDB_INPUT', message: /ENOENT/ });
  writeFileSync(file, JSON.stringify({ version: 1, tables: [{ table: 'users', columns: { email: { type: 'string', storage: 'blob' } } }] }));
  await t.throwsAsync(loadSchema(file), { code: 'ERR_SIFREDB_INPUT', message: /tables\[0\]\.columns\.email\.storage must be "text" or "bytea"/ });
});

test('rows round-trip through the schema with their declared types, lookups computed with the row context', async (t) => {
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
  const users = await EncryptedTable.open(keyring, defineTable(usersInit));
  const rows = [plain(1, 't1', 'Alice@Example.com '), plain(2, 't2', 'bob@example.com'), plain(3, null, 'carol@example.com')];
  const stored = users.encryptRows(rows);
  t.is(stored[0].name, 'user 1', 'other columns are copied');
  t.regex(stored[0].email, /^sdb1:/);
  t.true(Buffer.isBuffer(stored[0].born));
  t.is(typeof stored[0].email_idx, 'number');
  t.regex(stored[0].email_det, /^sdb1:/);
  // The stored values are exactly what the vaults give for the row's context.
  const vault = await Vault.open(keyring);
  const bi = await BlindIndex.open(keyring, { name: 'email', bits: 18, transforms: ['trim', 'lowercase'] });
  const ctx = new EncryptionContext({ table: 'users', column: 'email', tenant: 't1' });
  t.is(vault.decryptToString(stored[0].email, ctx), 'Alice@Example.com ');
  t.is(stored[0].email_idx, bi.compute('alice@example.com', ctx).int);
  t.is(stored[2].email_idx, bi.compute('carol@example.com', EncryptionContext.of('users', 'email')).int, 'a null tenant is no tenant');
  t.throws(() => vault.decrypt(stored[0].score, EncryptionContext.of('users', 'score').withTenant('t1')), { code: 'ERR_SIFREDB_AUTH' }, 'score is row-bound');

  const back = users.decryptRows(stored);
  t.deepEqual(back, rows.map((r) => ({ ...r, avatar: Buffer.from(r.avatar) })));
  t.true(back[0].born instanceof Date);
  t.false('email_idx' in back[0], 'lookup columns are dropped on read');
  t.deepEqual(await users.decryptRowsAsync(stored), back);
  t.deepEqual(users.decryptRow(stored[1]), back[1]);
});

test('partial rows, nulls and type errors', async (t) => {
  const users = await EncryptedTable.open(new StaticKeyProvider(randomBytes(32)), defineTable(usersInit));
  const update = users.encryptRow({ tenant_id: 't1', email: null });
  t.deepEqual(update, { tenant_id: 't1', email: null, email_idx: null, email_det: null });
  t.deepEqual(users.encryptRow({ tenant_id: 't1', vip: true }).vip.slice(0, 5), 'sdb1:');
  t.throws(() => users.encryptRow({ tenant_id: 't1', born: '1990-01-01' }), { code: 'ERR_SIFREDB_INPUT', message: /rows\[0\]\.born is declared date but got a string/ });
  t.throws(() => users.encryptRows([{ tenant_id: 't', email: 'a' }, { tenant_id: 't', email: 'b', email_idx: 5 }]), { code: 'ERR_SIFREDB_INPUT', message: /rows\[1\]\.email_idx is a lookup column of email/ });
  t.throws(() => users.encryptRow({ email: 'a' }), { code: 'ERR_SIFREDB_INPUT', message: /has no tenant_id/ });
  t.throws(() => users.encryptRow({ tenant_id: 't', score: 1 }), { code: 'ERR_SIFREDB_INPUT', message: /rows\[0\]\.id \(the row id\)/ });
  t.throws(() => users.encryptRow({ tenant_id: 't', profile: 'text' }), { code: 'ERR_SIFREDB_INPUT', message: /declared json/ });
});

test('a value of another type than declared is ERR_SIFREDB_SCHEMA on read, naming row and column', async (t) => {
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
  const table = await EncryptedTable.open(keyring, defineTable({ table: 'p', columns: { born: { type: 'date' } } }));
  const vault = await Vault.open(keyring);
  const good = table.encryptRow({ born: new Date(0) });
  const wrong = vault.encryptToString('1990-01-01', EncryptionContext.of('p', 'born'));
  const error = t.throws(() => table.decryptRows([good, { born: wrong }]), { code: 'ERR_SIFREDB_SCHEMA' });
  t.regex(error.message, /rows\[1\]\.born: the stored value is a string, not a date \(the schema declares date\)/);
  t.false(error.message.includes('1990'));
  // Change a character inside the base64url text, not the last one: the last carries unused bits, and
  // a non-zero one there is ERR_SIFREDB_FORMAT (non-canonical base64url), not an authentication failure.
  const at = good.born.length - 4;
  const tampered = { born: good.born.slice(0, at) + (good.born[at] === 'A' ? 'B' : 'A') + good.born.slice(at + 1) };
  t.throws(() => table.decryptRows([good, good, tampered]), { code: 'ERR_SIFREDB_AUTH', message: /rows\[2\]\.born/ });
});

test('equality queries expand to every active key version and drop blind-index false positives', async (t) => {
  const { v1, both } = twoVersions();
  const schema = defineTable(usersInit);
  const before = await EncryptedTable.open(v1, schema);
  const after = await EncryptedTable.open(both, schema);
  const oldRow = before.encryptRow(plain(1, 't1', 'alice@example.com'));
  const newRow = after.encryptRow(plain(2, 't1', 'alice@example.com'));

  const byIndex = after.where('email', ' ALICE@example.com', { tenant: 't1', index: 'email' });
  t.is(byIndex.column, 'email_idx');
  t.true(byIndex.approximate);
  t.is(byIndex.terms.length, 2);
  t.true(byIndex.terms.includes(oldRow.email_idx) && byIndex.terms.includes(newRow.email_idx));
  t.is(byIndex.sql('$1'), '"email_idx" = ANY($1)');
  t.true(byIndex.matches({ tenant_id: 't1', email: 'alice@example.com' }));
  t.false(byIndex.matches({ tenant_id: 't1', email: 'mallory@example.com' }), 'a false positive is filtered');
  t.false(byIndex.matches({ tenant_id: 't2', email: 'alice@example.com' }), "another tenant's row is not a match");
  t.throws(() => byIndex.matches({ email: 'alice@example.com' }), { code: 'ERR_SIFREDB_INPUT', message: /tenant column tenant_id/ });

  const byDet = after.where('email', 'alice@example.com', { tenant: 't1' });
  t.is(byDet.column, 'email_det', 'the exact lookup is preferred');
  t.false(byDet.approximate);
  t.true(byDet.terms.includes(oldRow.email_det) && byDet.terms.includes(newRow.email_det));

  const bySsn = after.where('ssn', oldRow.ssn ? '123-45-0001' : '', { tenant: 't1' });
  t.true(bySsn.terms.includes(oldRow.ssn));
  const inQuery = after.query('ssn', 'IN', ['123-45-0001', '123-45-0002'], { tenant: 't1' });
  t.true(inQuery.terms.includes(newRow.ssn) && inQuery.terms.includes(oldRow.ssn));
  t.is(inQuery.terms.length, 4);

  for (const op of ['<', '>=', 'LIKE', 'between', 'order by']) {
    const error = t.throws(() => after.query('email', op, 'a', { tenant: 't1' }), { code: 'ERR_SIFREDB_INPUT' });
    t.true(error.message.includes('app.users.email') && error.message.includes(JSON.stringify(op)), error.message);
  }
  t.throws(() => after.where('born', new Date(0), { tenant: 't1' }), { code: 'ERR_SIFREDB_INPUT', message: /app\.users\.born cannot answer "="/ });
  t.throws(() => after.where('email', 'a'), { code: 'ERR_SIFREDB_INPUT', message: /pass \{ tenant \}/ });
  t.throws(() => after.where('nope', 'a', { tenant: 't1' }), { code: 'ERR_SIFREDB_INPUT', message: /not an encrypted column/ });
  const bound = await EncryptedTable.open(both, defineTable({ table: 'x', columns: { k: { type: 'string', mode: 'deterministic', rowBinding: true } } }));
  t.throws(() => bound.where('k', 'a'), { code: 'ERR_SIFREDB_INPUT', message: /row-bound/ });
  // The deterministic terms are those of DeterministicVault.queryTerms.
  const dvault = await DeterministicVault.open(both);
  t.deepEqual([...bySsn.terms], dvault.queryTermsAsText('123-45-0001', EncryptionContext.of('users', 'ssn').withTenant('t1')));
});

test('compound blind indexes take their fields from the row and refuse partial updates', async (t) => {
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
  const schema = defineTable({
    table: 'people',
    columns: {
      ssn: { type: 'string', blindIndexes: [{ name: 'ssn_year', column: 'ssn_year_idx', bits: 20, fields: [{ column: 'ssn', transforms: ['digits', { lastN: 4 }] }, { column: 'birth_year' }] }] },
    },
  });
  const people = await EncryptedTable.open(keyring, schema);
  const row = people.encryptRow({ id: 1, ssn: '123-45-6789', birth_year: 1990 });
  const bi = await BlindIndex.open(keyring, { name: 'ssn_year', bits: 20, fields: [{ name: 'ssn', transforms: ['digits', { lastN: 4 }] }, { name: 'birth_year' }] });
  t.is(row.ssn_year_idx, bi.compute({ ssn: '6789', birth_year: 1990 }, EncryptionContext.of('people', 'ssn')).int);
  t.throws(() => people.encryptRow({ id: 1, ssn: '123-45-6789' }), { code: 'ERR_SIFREDB_INPUT', message: /also needs birth_year/ });
});

test('SifreDB database functions refuse an ORM db object with a clear error, not a TypeError', async (t) => {
  const table = defineTable({ table: 'users', columns: { email: { type: 'string' } } });
  const ormLike = { query: {}, select() {} };
  await t.throwsAsync(applySchema(ormLike, table), { code: 'ERR_SIFREDB_INPUT', message: /applySchema needs a SifreDB Database: fromPgPool/ });
  await t.throwsAsync(checkSchema(ormLike, table), { code: 'ERR_SIFREDB_INPUT', message: /checkSchema needs a SifreDB Database/ });
  const users = await EncryptedTable.open(new StaticKeyProvider(randomBytes(32)), table);
  await t.throwsAsync(users.verifySettings(ormLike), { code: 'ERR_SIFREDB_INPUT', message: /verifySettings needs a SifreDB Database/ });
  // A TypeScript schema writes the JSON file the CLI reads.
  t.deepEqual(parseSchema(JSON.parse(JSON.stringify(new Schema([table])))).table('users').init, table.init);
});
