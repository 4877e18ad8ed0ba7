// The table schema against a database (PostgreSQL and PGlite): `schema sql` applied, rows written and
// read through EncryptedTable and searched with `= ANY($1)`, and `schema check` finding each kind of
// mismatch. Each case uses its own table, so they run concurrently on one database.
import { randomBytes } from 'node:crypto';
import { BlindIndex, EncryptedTable, EncryptionContext, Keyring, constraintFor, StaticKeyProvider, Vault, applySchema, checkSchema, defineTable, encryptColumn, reencryptColumn, schemaSql } from '../../dist/index.js';
import { tableName } from './reencrypt-cases.js';

/** The users schema of the tests, on table `name`, with `edit` applied to the email column. */
export function usersSchema(name, edit = (email) => email, extra = {}) {
  return defineTable({
    table: name,
    tenant: 'tenant_id',
    columns: {
      email: edit({
        type: 'string',
        blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }],
        deterministicLookups: [{ column: 'email_det' }],
      }),
      born: { type: 'date', storage: 'bytea' },
      ssn: { type: 'string', mode: 'deterministic' },
    },
    ...extra,
  });
}

const email = (i) => (i % 3 === 0 ? ` User${i}@Example.COM` : `user${i}@example.com`);

/** Creates `name` with its plaintext columns, applies the schema's DDL and fills `n` rows through EncryptedTable. */
export async function filledTable(db, name, keyring, n = 120) {
  await db.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text, name text)`);
  const schema = usersSchema(name);
  await applySchema(db, schema);
  const users = await EncryptedTable.open(keyring, schema);
  const rows = users.encryptRows(
    Array.from({ length: n }, (_, k) => {
      const i = k + 1;
      return { id: i, tenant_id: i % 2 === 0 ? 't2' : 't1', name: `n${i}`, email: email(i), born: new Date(Date.UTC(1980, 0, i)), ssn: `ssn-${i}` };
    }),
  );
  const columns = Object.keys(rows[0]);
  for (const row of rows) {
    await db.query(`INSERT INTO ${name} (${columns.join(', ')}) VALUES (${columns.map((_, j) => `$${j + 1}`).join(', ')})`, columns.map((c) => row[c]));
  }
  return { schema, users };
}

export function registerSchemaCases(test, label, setup) {
  test(`${label}: schema sql creates every column, index, constraint and record, idempotently; a clean table has no findings`, async (t) => {
    const { db } = await setup();
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const name = tableName('schema_ok');
    const { schema } = await filledTable(db, name, keyring);
    const statements = await applySchema(db, schema); // a rerun changes nothing and does not fail
    t.deepEqual(statements, schemaSql(schema));
    const { rows: types } = await db.query(
      `SELECT attname AS name, format_type(atttypid, NULL) AS type FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 ORDER BY attnum`,
      [name],
    );
    t.deepEqual(
      Object.fromEntries(types.map((r) => [r.name, r.type])),
      { id: 'bigint', tenant_id: 'text', name: 'text', email: 'text', email_idx: 'integer', email_det: 'text', born: 'bytea', ssn: 'text' },
    );
    const { rows: records } = await db.query(`SELECT schema_name, column_name FROM public.sifredb_schema WHERE table_name = $1 ORDER BY column_name`, [name]);
    t.true(records.every((r) => r.schema_name === 'public'));
    t.deepEqual(records.map((r) => r.column_name), ['born', 'email', 'email_det', 'email_idx', 'ssn']);
    await t.throwsAsync(db.query(`INSERT INTO ${name} (id, email) VALUES (100000, 'plain@example.com')`), undefined, 'the constraint refuses plaintext');
    t.deepEqual(await checkSchema(db, schema, { keyring }), []);
  });

  test(`${label}: rows through EncryptedTable are found with = ANY($1) across a rotation, false positives filtered`, async (t) => {
    const { db } = await setup();
    const provider = new StaticKeyProvider(randomBytes(32));
    const keyring = await Keyring.open(provider);
    const name = tableName('schema_rows');
    const { schema, users } = await filledTable(db, name, keyring, 40);
    await provider.rotate();
    await keyring.refresh();
    const after = await EncryptedTable.open(keyring, schema);
    const fresh = after.encryptRow({ id: 1000, tenant_id: 't1', name: 'new', email: 'user3@example.com', born: new Date(0), ssn: 'ssn-3' });
    const columns = Object.keys(fresh);
    await db.query(`INSERT INTO ${name} (${columns.join(', ')}) VALUES (${columns.map((_, j) => `$${j + 1}`).join(', ')})`, columns.map((c) => fresh[c]));
    for (const index of ['email', 'email_det']) {
      const q = after.where('email', 'USER3@example.com ', { tenant: 't1', index });
      const { rows } = await db.query(`SELECT * FROM ${name} WHERE ${q.sql('$1')} ORDER BY id`, [q.terms]);
      const found = after.decryptRows(rows).filter(q.matches);
      t.deepEqual(found.map((r) => Number(r.id)), index === 'email' ? [3, 1000] : [], `by ${index}`);
    }
    const exact = after.where('email', ' User3@Example.COM', { tenant: 't1', index: 'email_det' });
    const { rows: exactRows } = await db.query(`SELECT * FROM ${name} WHERE ${exact.sql('$1')}`, [exact.terms]);
    t.deepEqual(exactRows.map((r) => Number(r.id)), [3], 'the deterministic lookup is exact: only the row stored with this spelling');
    const q = after.where('ssn', 'ssn-4', { tenant: 't2' });
    const { rows } = await db.query(`SELECT * FROM ${name} WHERE ${q.sql('$1')}`, [q.terms]);
    const [row] = await after.decryptRowsAsync(rows);
    t.is(Number(row.id), 4);
    t.true(row.born instanceof Date);
    t.is(row.born.getTime(), Date.UTC(1980, 0, 4));
    t.false('email_idx' in row);
    t.truthy(users);
  });

  test(`${label}: schema check finds each kind of mismatch`, async (t) => {
    const { db } = await setup();
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const name = tableName('schema_bad');
    await filledTable(db, name, keyring, 60);
    const check = async (schema) => checkSchema(db, schema, { keyring });
    const kinds = (findings) => findings.map((f) => `${f.kind}:${f.column}`).sort();

    await (await EncryptedTable.open(keyring, usersSchema(name))).verifySettings(db);
    const app = await EncryptedTable.open(keyring, usersSchema(name, (e) => ({ ...e, blindIndexes: [{ ...e.blindIndexes[0], bits: 16 }] })));
    await t.throwsAsync(app.verifySettings(db), { code: 'ERR_SIFREDB_SCHEMA', message: /email_idx: bits 18 recorded, 16 configured/ });

    const bits = await check(usersSchema(name, (e) => ({ ...e, blindIndexes: [{ ...e.blindIndexes[0], bits: 16 }] })));
    t.deepEqual(kinds(bits), ['lookup-mismatch:email_idx', 'settings:email_idx']);
    t.regex(bits.find((f) => f.kind === 'settings').message, /email_idx: bits 18 recorded, 16 configured/);
    t.regex(bits.find((f) => f.kind === 'lookup-mismatch').message, /60 of 60 sampled terms differ from blind index email \(16 bits, transforms trim,lowercase\): the stored terms were computed with 18 bits, transforms trim,lowercase/);

    const transforms = await check(usersSchema(name, (e) => ({ ...e, blindIndexes: [{ ...e.blindIndexes[0], transforms: [] }] })));
    t.deepEqual(kinds(transforms), ['lookup-mismatch:email_idx', 'settings:email_idx']);
    t.regex(transforms.find((f) => f.kind === 'settings').message, /transforms trim,lowercase recorded, none configured/);
    t.regex(transforms.find((f) => f.kind === 'lookup-mismatch').message, /computed with 18 bits, transforms trim,lowercase/);

    const context = await check(usersSchema(name, (e) => ({ ...e, context: { column: 'mail' } })));
    t.deepEqual(kinds(context), ['settings:email', 'settings:email_det', 'undecryptable:email'], 'values that do not decrypt give no terms to compare');
    t.regex(context.find((f) => f.kind === 'settings' && f.column === 'email').message, /context column email recorded, mail configured/);
    t.regex(context.find((f) => f.kind === 'undecryptable').message, /60 of 60 sampled values do not read under the schema .*ERR_SIFREDB_AUTH.*context/);

    const noTenant = await check(defineTable({ ...usersSchema(name).init, tenant: undefined }));
    t.true(noTenant.some((f) => f.kind === 'settings' && /tenant column tenant_id recorded, none configured/.test(f.message)));
    t.true(noTenant.some((f) => f.kind === 'undecryptable'));

    const storage = await check(usersSchema(name, (e) => ({ ...e, storage: 'bytea' })));
    t.true(storage.some((f) => f.kind === 'column-type' && f.column === 'email' && /is text; the schema stores the binary envelope/.test(f.message)));

    await db.query(`ALTER TABLE ${name} DROP CONSTRAINT ${name}_ssn_sifredb_check`);
    await db.query(`ALTER TABLE ${name} DROP COLUMN email_idx`);
    const dropped = await check(usersSchema(name));
    t.deepEqual(kinds(dropped), ['missing-column:email_idx', 'missing-constraint:ssn']);
    t.regex(dropped.find((f) => f.kind === 'missing-column').message, /blind-index \(email\) column email_idx does not exist/);

    const wrongType = tableName('schema_type');
    await db.query(`CREATE TABLE ${wrongType} (id bigint PRIMARY KEY, tenant_id text, email text, email_idx smallint, email_det text, born bytea, ssn text)`);
    const typed = await checkSchema(db, usersSchema(wrongType));
    t.true(typed.some((f) => f.kind === 'column-type' && f.column === 'email_idx' && /smallint; integer terms of 18 bits need INTEGER or BIGINT/.test(f.message)));
    t.true(typed.some((f) => f.kind === 'unrecorded'));
    t.deepEqual(kinds(await checkSchema(db, usersSchema(tableName('absent')))), ['missing-table:null']);
  });

  test(`${label}: applying a schema that contradicts the recorded settings changes nothing`, async (t) => {
    const { db } = await setup();
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const name = tableName('schema_apply');
    await filledTable(db, name, keyring, 5);
    const changed = usersSchema(name, (e) => ({ ...e, blindIndexes: [{ ...e.blindIndexes[0], bits: 20 }, { name: 'domain', column: 'email_domain_idx', bits: 8 }] }));
    await t.throwsAsync(applySchema(db, changed), { code: 'ERR_SIFREDB_SCHEMA', message: /email_idx: bits 18 recorded, 20 configured/ });
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'email_domain_idx'`, [name]);
    t.is(rows[0].n, 0, 'no column was added');
    // A new lookup column is not a contradiction: it is added and recorded.
    const added = usersSchema(name, (e) => ({ ...e, blindIndexes: [...e.blindIndexes, { name: 'domain', column: 'email_domain_idx', bits: 8 }] }));
    await applySchema(db, added);
    const { rows: records } = await db.query(`SELECT settings FROM public.sifredb_schema WHERE table_name = $1 AND column_name = 'email_domain_idx'`, [name]);
    t.is(records[0].settings.bits, 8);
    // Dropping it again: once the column is gone its record describes no data; jobs ignore it and apply removes it.
    await db.query(`ALTER TABLE ${name} DROP COLUMN email_domain_idx`);
    t.deepEqual(await checkSchema(db, usersSchema(name), { keyring }), []);
    await applySchema(db, usersSchema(name));
    const { rows: left } = await db.query(`SELECT count(*)::int AS n FROM public.sifredb_schema WHERE table_name = $1 AND column_name = 'email_domain_idx'`, [name]);
    t.is(left[0].n, 0);
  });

  test(`${label}: jobs configured by the schema encrypt into a new column, refuse contradictions, and backfill a new lookup column`, async (t) => {
    const { db } = await setup();
    const provider = new StaticKeyProvider(randomBytes(32));
    const keyring = await Keyring.open(provider);
    const vault = await Vault.open(keyring);
    const name = tableName('schema_jobs');
    const n = 300;
    await db.query(`CREATE TABLE ${name} (id int PRIMARY KEY, email text, born text)`);
    await db.query(`INSERT INTO ${name} SELECT g, 'User' || g || '@Example.com', '1990-01-01' FROM generate_series(1, $1::int) g`, [n]);
    const v1 = defineTable({
      table: name,
      columns: { email_enc: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 16 }] } },
    });
    await applySchema(db, v1, { notValid: true });
    const enc = await encryptColumn({ db, schema: v1, column: 'email', targetColumn: 'email_enc', vault });
    t.is(enc.updated, n);
    let users = await EncryptedTable.open(keyring, v1);
    const q = users.where('email_enc', 'User7@Example.com');
    const { rows } = await db.query(`SELECT id, email_enc FROM ${name} WHERE ${q.sql('$1')}`, [q.terms]);
    t.deepEqual(users.decryptRows(rows).filter(q.matches).map((r) => Number(r.id)), [7]);

    // Contradictions are refused before anything is read.
    await t.throwsAsync(reencryptColumn({ db, schema: v1, column: 'email_enc', vault, tenantColumn: 'born' }), { code: 'ERR_SIFREDB_INPUT', message: /tenantColumn "born" contradicts the schema/ });
    await t.throwsAsync(reencryptColumn({ db, schema: v1, column: 'email_enc', vault: await Vault.open(keyring, { algorithm: 'xchacha20-poly1305' }) }), {
      code: 'ERR_SIFREDB_INPUT',
      message: /algorithm "xchacha20-poly1305" contradicts the schema/,
    });
    const dates = defineTable({ table: name, columns: { born_enc: { type: 'date' } } });
    await db.query(`ALTER TABLE ${name} ADD COLUMN born_enc text`);
    await t.throwsAsync(encryptColumn({ db, schema: dates, column: 'born', targetColumn: 'born_enc', vault }), {
      code: 'ERR_SIFREDB_SCHEMA',
      message: /declares born_enc as date/,
    });

    // A second blind index added to the schema is a new, empty column: reencrypt fills it on rows
    // already current, keeping their ciphertexts.
    const v2 = defineTable({
      table: name,
      columns: {
        email_enc: {
          type: 'string',
          blindIndexes: [
            { name: 'email', column: 'email_idx', bits: 16 },
            { name: 'email_v2', column: 'email_idx2', bits: 18, transforms: ['trim', 'lowercase'] },
          ],
        },
      },
    });
    await applySchema(db, v2, { notValid: true });
    const before = (await db.query(`SELECT email_enc FROM ${name} ORDER BY id`)).rows.map((r) => r.email_enc);
    const filled = await reencryptColumn({ db, schema: v2, column: 'email_enc', vault });
    t.is(filled.updated, n);
    t.is(filled.lookupsFilled, n);
    t.is(filled.failed, 0);
    t.deepEqual((await db.query(`SELECT email_enc FROM ${name} ORDER BY id`)).rows.map((r) => r.email_enc), before, 'ciphertexts kept');
    users = await EncryptedTable.open(keyring, v2);
    const q2 = users.where('email_enc', ' user9@example.COM', { index: 'email_v2' });
    const { rows: found } = await db.query(`SELECT id, email_enc FROM ${name} WHERE ${q2.sql('$1')}`, [q2.terms]);
    t.deepEqual(users.decryptRows(found).filter(q2.matches).map((r) => Number(r.id)), [9]);
    const again = await reencryptColumn({ db, schema: v2, column: 'email_enc', vault });
    t.is(again.updated, 0, 'a rerun finds nothing to fill');
  });

  test(`${label}: reencrypt refreshes a compound blind index from the row's other columns, decrypting encrypted ones`, async (t) => {
    const { db } = await setup();
    const provider = new StaticKeyProvider(randomBytes(32));
    const keyring = await Keyring.open(provider);
    const name = tableName('schema_compound');
    const n = 120;
    await db.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text, birth_year int)`);
    const schema = defineTable({
      table: name,
      tenant: 'tenant_id',
      columns: {
        ssn: {
          type: 'string',
          blindIndexes: [{ name: 'ssn_year', column: 'ssn_year_idx', bits: 20, fields: [{ column: 'ssn', transforms: ['digits', 'last4'] }, { column: 'zip' }, { column: 'birth_year' }] }],
        },
        zip: { type: 'string', rowBinding: true },
      },
    });
    await applySchema(db, schema);
    const people = await EncryptedTable.open(keyring, schema);
    const plain = Array.from({ length: n }, (_, k) => ({ id: k + 1, tenant_id: `t${k % 3}`, ssn: `123-45-${String(1000 + k)}`, zip: `0${k % 7}123`, birth_year: 1950 + (k % 50) }));
    for (const row of people.encryptRows(plain)) {
      const columns = Object.keys(row);
      await db.query(`INSERT INTO ${name} (${columns.join(', ')}) VALUES (${columns.map((_, j) => `$${j + 1}`).join(', ')})`, columns.map((c) => row[c]));
    }
    await provider.rotate();
    await keyring.refresh();
    const vault = await Vault.open(keyring);
    // Without the schema the job cannot read the encrypted field `zip`: refused, nothing written.
    const index = await BlindIndex.open(keyring, { name: 'ssn_year', bits: 20, fields: [{ name: 'ssn', transforms: ['digits', { lastN: 4 }] }, { name: 'zip' }, { name: 'birth_year' }] });
    const before = (await db.query(`SELECT ssn FROM ${name} ORDER BY id`)).rows;
    await t.throwsAsync(reencryptColumn({ db, table: name, column: 'ssn', tenantColumn: 'tenant_id', vault, blindIndexes: [{ index, column: 'ssn_year_idx' }] }), {
      code: 'ERR_SIFREDB_INPUT',
      message: /blind-index field "zip" holds ciphertexts; give the job the table schema/,
    });
    t.deepEqual((await db.query(`SELECT ssn FROM ${name} ORDER BY id`)).rows, before);
    const result = await reencryptColumn({ db, schema, column: 'ssn', vault });
    t.is(result.updated, n);
    t.is(result.failed, 0);
    const { rows } = await db.query(`SELECT * FROM ${name} ORDER BY id`);
    const fresh = await EncryptedTable.open(keyring, schema);
    const back = fresh.decryptRows(rows);
    rows.forEach((row, i) => {
      const expected = index.compute({ ssn: back[i].ssn, zip: back[i].zip, birth_year: back[i].birth_year }, EncryptionContext.of(name, 'ssn').withTenant(row.tenant_id));
      t.is(Number(row.ssn_year_idx), expected.int, `row ${row.id}`);
      t.is(expected.version, 2);
    });
  });

  test(`${label}: long names get distinct constraints and indexes; a constraint on another column does not count; apply never re-checks or downgrades`, async (t) => {
    const { db } = await setup();
    const name = `t${'x'.repeat(40)}_${tableName('n').replace(/^n_/, '')}`;
    const a = 'secret_column_one_aaaaaaaaaaaa_1';
    const b = 'secret_column_one_aaaaaaaaaaaa_2';
    t.not(constraintFor(name, a, 'text').name, constraintFor(name, b, 'text').name);
    t.true(Buffer.byteLength(constraintFor(name, a, 'text').name) <= 63);
    await db.query(`CREATE TABLE ${name} (id int PRIMARY KEY)`);
    const schema = defineTable({ table: name, columns: { [a]: { type: 'string', mode: 'deterministic' }, [b]: { type: 'string', mode: 'deterministic' } } });
    await applySchema(db, schema);
    for (const column of [a, b]) {
      await t.throwsAsync(db.query(`INSERT INTO ${name} (id, ${column}) VALUES (1, 'plaintext 123-45-6789')`), undefined, `${column} refuses plaintext`);
    }
    t.deepEqual(await checkSchema(db, schema), []);
    const { rows: indexes } = await db.query(`SELECT count(*)::int AS n FROM pg_index WHERE indrelid = to_regclass($1) AND NOT indisprimary`, [name]);
    t.is(indexes[0].n, 2, 'one index per deterministic column');

    // A constraint named like the expected one but on another column is not a constraint of this one.
    const other = constraintFor(name, a, 'text').name;
    await db.query(`ALTER TABLE ${name} DROP CONSTRAINT "${other}"`);
    await db.query(`ALTER TABLE ${name} ADD CONSTRAINT "${other}" CHECK (${b} IS NULL OR ${b} <> '')`);
    const findings = await checkSchema(db, schema);
    t.true(findings.some((f) => f.kind === 'missing-constraint' && f.column === a), JSON.stringify(findings));

    // A validated constraint stays validated across applies, and an apply with notValid does not downgrade it.
    await db.query(`ALTER TABLE ${name} DROP CONSTRAINT "${other}"`);
    await applySchema(db, schema, { notValid: true });
    await db.query(`ALTER TABLE ${name} VALIDATE CONSTRAINT "${other}"`);
    await applySchema(db, schema, { notValid: true });
    const { rows } = await db.query(`SELECT convalidated FROM pg_constraint WHERE conname = $1`, [other]);
    t.true(rows[0].convalidated);
    await db.query(`DROP INDEX "${(await db.query(`SELECT indexrelid::regclass::text AS i FROM pg_index WHERE indrelid = to_regclass($1) AND NOT indisprimary LIMIT 1`, [name])).rows[0].i.replace(/"/g, '')}"`);
    t.true((await checkSchema(db, schema)).some((f) => f.kind === 'missing-index'));
  });

  test(`${label}: a row-binding migration checks stored terms first, and records the new binding when it completes`, async (t) => {
    const { db } = await setup();
    const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
    const name = tableName('schema_bindmig');
    await db.query(`CREATE TABLE ${name} (id int PRIMARY KEY)`);
    const unbound = defineTable({ table: name, columns: { email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }] } } });
    await applySchema(db, unbound);
    const users = await EncryptedTable.open(keyring, unbound);
    for (const row of users.encryptRows(Array.from({ length: 30 }, (_, i) => ({ id: i + 1, email: ` User${i + 1}@x.io` })))) {
      await db.query(`INSERT INTO ${name} (id, email, email_idx) VALUES ($1, $2, $3)`, [row.id, row.email, row.email_idx]);
    }
    const vault = await Vault.open(keyring);
    // Wrong index settings (no schema, no record for the flags to contradict): the stored terms say so.
    await db.query(`DELETE FROM public.sifredb_schema WHERE table_name = $1`, [name]);
    const wrong = await BlindIndex.open(keyring, { name: 'email', bits: 16 });
    const before = (await db.query(`SELECT * FROM ${name} ORDER BY id`)).rows;
    await t.throwsAsync(
      reencryptColumn({ db, table: name, column: 'email', vault, rowBinding: 'id', previousRowBinding: 'none', blindIndexes: [{ index: wrong, column: 'email_idx' }] }),
      { code: 'ERR_SIFREDB_SCHEMA', message: /computed with 18 bits, transforms trim,lowercase/ },
    );
    t.deepEqual((await db.query(`SELECT * FROM ${name} ORDER BY id`)).rows, before, 'nothing written');

    await applySchema(db, unbound);
    const bound = defineTable({ table: name, columns: { email: { ...unbound.init.columns.email, rowBinding: true } } });
    await t.throwsAsync(reencryptColumn({ db, schema: bound, column: 'email', vault }), { code: 'ERR_SIFREDB_SCHEMA', message: /row binding false recorded, true configured/ });
    const migrated = await reencryptColumn({ db, schema: bound, column: 'email', vault, previousRowBinding: 'none' });
    t.is(migrated.updated, 30);
    t.true(migrated.settingsRecorded);
    t.deepEqual(await checkSchema(db, bound, { keyring }), [], 'the record now says bound');
    const again = await reencryptColumn({ db, schema: bound, column: 'email', vault });
    t.is(again.failed, 0);
  });
}
