// Audit signatures against a database (PostgreSQL and PGlite, on the backend in use): writes signed
// through AuditedTable, then each kind of tampering made with plain SQL, and what verifyAudit finds.
// Each case uses its own table; the audit tables are shared, keyed by table name.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuditKeyFile,
  AuditedTable,
  EncryptedTable,
  Keyring,
  StaticKeyProvider,
  applySchema,
  createCheckpoint,
  parsePublicKeys,
  verifyAudit,
} from '../../dist/index.js';
import { tableName } from './reencrypt-cases.js';
import { usersSchema } from './schema-cases.js';

const keysDir = mkdtempSync(join(tmpdir(), 'sifredb-audit-cases-'));
let keyFiles = 0;

/** A fresh audit key file and its signer. */
export async function auditKeys() {
  const file = await AuditKeyFile.create(join(keysDir, `audit-${(keyFiles += 1)}.json`));
  return { file, signer: await file.signer(), publicKeys: parsePublicKeys(await file.exportPublicKeys()) };
}

const row = (i) => ({ id: i, tenant_id: i % 2 === 0 ? 't2' : 't1', name: `n${i}`, email: `user${i}@example.com`, born: new Date(Date.UTC(1980, 0, i)), ssn: `ssn-${i}` });

/** Creates an audited table `prefix_…` with `n` rows inserted through AuditedTable (one transaction per row). */
export async function auditedTable(db, prefix, n = 6, keys) {
  const name = tableName(prefix);
  await db.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text, name text)`);
  const schema = usersSchema(name);
  await applySchema(db, schema, { audit: true });
  const keyring = await Keyring.open(new StaticKeyProvider(randomBytes(32)));
  const users = await EncryptedTable.open(keyring, schema);
  const { signer, publicKeys } = keys ?? (await auditKeys());
  const audited = await AuditedTable.open(users, db, signer);
  for (let i = 1; i <= n; i++) await audited.insert([row(i)], { actor: 'test' });
  return { name, users, audited, signer, publicKeys };
}

const kinds = (report) => report.findings.map((f) => `${f.rowId ?? '-'}:${f.kind}`).sort();

export function registerAuditCases(test, label, setup) {
  test(`${label}: a clean table verifies (inserts, updates, deletes, a batch insert)`, async (t) => {
    const { db } = await setup();
    const { name, audited, publicKeys } = await auditedTable(db, 'audit_clean');
    await audited.update(2, { tenant_id: 't2', email: 'new2@example.com' }, { actor: 'alice' });
    await audited.update(3, { tenant_id: 't1', ssn: 'ssn-x' }, { actor: 'bob' });
    t.true(await audited.delete(4, { actor: 'carol' }));
    t.false(await audited.delete(4, { actor: 'carol' }));
    t.is(await audited.update(99, { tenant_id: 't1', email: 'x' }, { actor: 'x' }), undefined);
    await audited.insert([row(10), row(11), row(12)], { actor: 'batch' });
    const report = await verifyAudit(db, name, { publicKeys });
    t.deepEqual(report.findings, []);
    t.is(report.records, 6 + 2 + 1 + 3);
    t.is(report.rows, 8);
    t.is(report.keys, 'file');
    t.deepEqual((await verifyAudit(db, name)).findings, [], 'with the keys published in the database');
    await t.throwsAsync(audited.insert([row(20)], {}), { code: 'ERR_SIFREDB_INPUT' });
  });

  test(`${label}: an UPDATE back to an older ciphertext of the row is "rolled back"`, async (t) => {
    const { db } = await setup();
    const { name, audited, publicKeys } = await auditedTable(db, 'audit_rollback');
    const { rows: [before] } = await db.query(`SELECT email FROM ${name} WHERE id = 2`);
    await audited.update(2, { tenant_id: 't2', email: 'changed@example.com' }, { actor: 'alice' });
    await db.query(`UPDATE ${name} SET email = $1 WHERE id = 2`, [before.email]);
    const report = await verifyAudit(db, name, { publicKeys });
    t.deepEqual(kinds(report), ['2:rolled back']);
    t.is(report.findings[0].column, 'email');
  });

  test(`${label}: a ciphertext copied from another row is "copied"; a new one is "modified"`, async (t) => {
    const { db } = await setup();
    const { name, users, publicKeys } = await auditedTable(db, 'audit_copy');
    await db.query(`UPDATE ${name} SET ssn = (SELECT ssn FROM ${name} WHERE id = 5) WHERE id = 3`);
    const fresh = users.encryptRow({ id: 1, tenant_id: 't1', email: 'attacker@example.com' });
    await db.query(`UPDATE ${name} SET email = $1 WHERE id = 1`, [fresh.email]);
    t.deepEqual(kinds(await verifyAudit(db, name, { publicKeys })), ['1:modified', '3:copied']);
  });

  test(`${label}: a DELETE is "deleted"; a row inserted with SQL is "unsigned"`, async (t) => {
    const { db } = await setup();
    const { name, users, publicKeys } = await auditedTable(db, 'audit_delete');
    await db.query(`DELETE FROM ${name} WHERE id = 4`);
    const stored = users.encryptRow(row(40));
    const columns = Object.keys(stored);
    await db.query(`INSERT INTO ${name} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, columns.map((c) => stored[c]));
    t.deepEqual(kinds(await verifyAudit(db, name, { publicKeys })), ['40:unsigned', '4:deleted']);
  });

  test(`${label}: an audit record deleted or edited breaks the chain or its signature`, async (t) => {
    const { db } = await setup();
    const { name, publicKeys } = await auditedTable(db, 'audit_records', 6);
    // Edited: one byte of record 2's actor.
    await db.query(`UPDATE sifredb_audit SET record = set_byte(record, length(record) - 40, get_byte(record, length(record) - 40) # 1) WHERE table_name = $1 AND seq = 2`, [name]);
    let report = await verifyAudit(db, name, { publicKeys });
    t.true(report.findings.some((f) => f.kind === 'bad signature' && f.sequence === '2'), JSON.stringify(report.findings));
    // Deleted from the middle of the chain, and its row with it (so the row check alone cannot see it).
    await db.query(`DELETE FROM sifredb_audit WHERE table_name = $1 AND seq = 4`, [name]);
    await db.query(`DELETE FROM ${name} WHERE id = 4`);
    report = await verifyAudit(db, name, { publicKeys });
    t.true(report.findings.some((f) => f.kind === 'chain broken' && /records 4\.\.4 are missing/.test(f.message)), JSON.stringify(report.findings));
    // The tail deleted and the head moved back: the head row itself is unsigned, so only a
    // checkpoint can catch that (next case); deleting the tail alone is caught by the head.
    await db.query(`DELETE FROM sifredb_audit WHERE table_name = $1 AND seq = 6`, [name]);
    report = await verifyAudit(db, name, { publicKeys });
    t.true(report.findings.some((f) => f.kind === 'chain broken' && /last records were deleted/.test(f.message)));
    t.true(report.findings.some((f) => f.kind === 'unsigned' && f.rowId === '6'));
  });

  test(`${label}: the whole chain and its head deleted leaves every row unsigned`, async (t) => {
    const { db } = await setup();
    const { name, publicKeys } = await auditedTable(db, 'audit_emptied', 3);
    await db.query(`DELETE FROM sifredb_audit WHERE table_name = $1`, [name]);
    await db.query(`DELETE FROM sifredb_audit_head WHERE table_name = $1`, [name]);
    const report = await verifyAudit(db, name, { publicKeys });
    t.deepEqual(kinds(report), ['-:unsigned']);
    t.regex(report.findings[0].message, /has 3 rows but no valid audit record/);
  });

  test(`${label}: a record signed by another key is a "bad signature"`, async (t) => {
    const { db } = await setup();
    const { name, users, publicKeys } = await auditedTable(db, 'audit_foreign', 3);
    const other = await auditKeys();
    const intruder = await AuditedTable.open(users, db, other.signer);
    await intruder.update(1, { tenant_id: 't1', email: 'intruder@example.com' }, { actor: 'mallory' });
    const report = await verifyAudit(db, name, { publicKeys });
    t.true(report.findings.some((f) => f.kind === 'bad signature' && f.rowId === '1' && /not a trusted audit key/.test(f.message)));
  });

  test(`${label}: the whole chain rewritten to an older state verifies alone but not against an exported checkpoint`, async (t) => {
    const { db } = await setup();
    const { name, audited, signer, publicKeys } = await auditedTable(db, 'audit_rewrite', 4);
    const snapshot = `${name}_snapshot`;
    await db.query(`CREATE TABLE ${snapshot} AS SELECT * FROM ${name}`);
    await db.query(`CREATE TABLE ${snapshot}_audit AS SELECT * FROM sifredb_audit WHERE table_name = $1`, [name]);
    await db.query(`CREATE TABLE ${snapshot}_head AS SELECT * FROM sifredb_audit_head WHERE table_name = $1`, [name]);
    await audited.update(1, { tenant_id: 't1', email: 'later@example.com' }, { actor: 'alice' });
    await audited.delete(2, { actor: 'alice' });
    const checkpoint = await createCheckpoint(db, name, signer);
    t.deepEqual((await verifyAudit(db, name, { publicKeys, checkpoint })).findings, []);
    // Restore the data, the chain and its head as they were before (a backup put back).
    await db.query(`DELETE FROM ${name}`);
    await db.query(`INSERT INTO ${name} SELECT * FROM ${snapshot}`);
    await db.query(`DELETE FROM sifredb_audit WHERE table_name = $1`, [name]);
    await db.query(`INSERT INTO sifredb_audit SELECT * FROM ${snapshot}_audit`);
    await db.query(`UPDATE sifredb_audit_head h SET seq = s.seq, head_hash = s.head_hash FROM ${snapshot}_head s WHERE h.table_name = s.table_name`);
    t.deepEqual((await verifyAudit(db, name, { publicKeys })).findings, [], 'every record of the older chain is validly signed');
    const report = await verifyAudit(db, name, { publicKeys, checkpoint });
    t.deepEqual(kinds(report), ['-:chain broken']);
    t.regex(report.findings[0].message, /checkpoint .* counted 6 records; the chain no longer has record 6/);
  });
}
