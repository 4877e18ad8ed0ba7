// The column jobs on audited tables (PostgreSQL and PGlite, on the backend in use): a job given the
// audit keys signs one update record per row it writes, in the batch's transaction, so the chain
// verifies after it, after an interrupted and resumed run, and with AuditedTable writers working
// during the job; a job without the keys on an audited table is refused before it writes anything.
import { randomBytes } from 'node:crypto';
import {
  AuditedTable,
  EncryptedTable,
  Keyring,
  StaticKeyProvider,
  Vault,
  applySchema,
  encryptColumn,
  inspect,
  reencryptColumn,
  verifyAudit,
} from '../../dist/index.js';
import { auditKeys } from './audit-cases.js';
import { tableName } from './reencrypt-cases.js';
import { usersSchema } from './schema-cases.js';

export const jobRow = (i) => ({ id: i, tenant_id: i % 2 === 0 ? 't2' : 't1', name: `n${i}`, email: `user${i}@example.com`, born: new Date(Date.UTC(1980, 0, 1 + (i % 28))), ssn: `ssn-${i}` });

/**
 * An audited table of `n` rows written through AuditedTable under key version 1, then a rotation:
 * every email is due for re-encryption. `provider` defaults to a StaticKeyProvider.
 */
export async function rotatedAuditedTable(db, prefix, n, provider = new StaticKeyProvider(randomBytes(32))) {
  const name = tableName(prefix);
  await db.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text, name text)`);
  const schema = usersSchema(name);
  await applySchema(db, schema, { audit: true });
  const keyring = await Keyring.open(provider);
  const users = await EncryptedTable.open(keyring, schema);
  const keys = await auditKeys();
  const audited = await AuditedTable.open(users, db, keys.signer);
  const rows = Array.from({ length: n }, (_, k) => jobRow(k + 1));
  for (let at = 0; at < rows.length; at += 200) await audited.insert(rows.slice(at, at + 200), { actor: 'app' });
  await provider.rotate();
  await keyring.refresh();
  const vault = await Vault.open(keyring);
  return { name, schema, keyring, users, audited, keys, vault };
}

const recordCount = async (db, name) => Number((await db.query(`SELECT count(*) AS n FROM sifredb_audit WHERE table_name = $1`, [name])).rows[0].n);
const emailVersions = async (db, name) => {
  const counts = { 1: 0, 2: 0 };
  for (const r of (await db.query(`SELECT email FROM ${name}`)).rows) counts[inspect(r.email).keyVersion] += 1;
  return counts;
};

export function registerAuditJobCases(test, label, setup) {
  test(`${label}: a signed reencrypt of an audited table verifies clean; one update record per row written, a rerun adds none`, async (t) => {
    const { db } = await setup();
    const n = 90;
    const { name, schema, keys, vault, users } = await rotatedAuditedTable(db, 'ajob_clean', n);
    const job = { db, schema, column: 'email', vault, batchSize: 25, audit: { signer: keys.signer, actor: 'rotation-job' } };
    const result = await reencryptColumn(job);
    t.like(result, { updated: n, failed: 0, conflicts: 0 });
    t.deepEqual(await emailVersions(db, name), { 1: 0, 2: n });
    const report = await verifyAudit(db, name, { publicKeys: keys.publicKeys });
    t.deepEqual(report.findings, []);
    t.is(report.records, 2 * n);
    const { rows } = await db.query(`SELECT operation, count(*) AS n FROM sifredb_audit WHERE table_name = $1 GROUP BY operation ORDER BY operation`, [name]);
    t.deepEqual(rows.map((r) => [r.operation, Number(r.n)]), [['insert', n], ['update', n]]);
    // The rows still read back as written (the job changed ciphertexts, not values).
    const { rows: stored } = await db.query(`SELECT * FROM ${name} WHERE id = 7`);
    t.is(users.decryptRow(stored[0]).email, 'user7@example.com');
    t.like(await reencryptColumn(job), { updated: 0, skipped: n });
    t.is(await recordCount(db, name), 2 * n, 'nothing written, nothing signed');
    // A write made outside signed writes (as an unsigned job would make it) is still found.
    await db.query(`UPDATE ${name} SET email = $1 WHERE id = 3`, [users.encryptRow({ id: 3, tenant_id: 't1', email: 'other@example.com' }).email]);
    t.deepEqual((await verifyAudit(db, name, { publicKeys: keys.publicKeys })).findings.map((f) => `${f.rowId}:${f.kind}`), ['3:modified']);
  });

  test(`${label}: a job without audit keys on an audited table is refused before it writes anything (reencrypt, encrypt-column; with or without schema)`, async (t) => {
    const { db } = await setup();
    const n = 30;
    const { name, schema, keys, vault } = await rotatedAuditedTable(db, 'ajob_refuse', n);
    const before = (await db.query(`SELECT id, email FROM ${name} ORDER BY id`)).rows;
    const refused = { code: 'ERR_SIFREDB_AUDIT_UNSIGNED', message: /is audited .* no audit keys .*Nothing was written/ };
    await t.throwsAsync(reencryptColumn({ db, schema, column: 'email', vault }), refused);
    await t.throwsAsync(reencryptColumn({ db, table: name, column: 'email', vault, tenantColumn: 'tenant_id' }), refused);
    await t.throwsAsync(reencryptColumn({ db, table: `public.${name}`, column: 'email', vault, tenantColumn: 'tenant_id' }), refused);
    await t.throwsAsync(encryptColumn({ db, table: name, column: 'name', vault }), refused);
    // Signing needs the schema: a record lists every encrypted column of the row.
    await t.throwsAsync(reencryptColumn({ db, table: name, column: 'email', vault, tenantColumn: 'tenant_id', audit: { signer: keys.signer, actor: 'x' } }), { code: 'ERR_SIFREDB_INPUT', message: /schema/ });
    await t.throwsAsync(reencryptColumn({ db, schema, column: 'email', vault, audit: { signer: keys.signer, actor: '' } }), { code: 'ERR_SIFREDB_INPUT' });
    t.deepEqual((await db.query(`SELECT id, email FROM ${name} ORDER BY id`)).rows, before, 'no row changed');
    t.is(await recordCount(db, name), n);
    // A dry run writes nothing, so it needs no key.
    t.like(await reencryptColumn({ db, schema, column: 'email', vault, dryRun: true }), { updated: n, dryRun: true });
    t.deepEqual((await verifyAudit(db, name, { publicKeys: keys.publicKeys })).findings, []);
  });

  test(`${label}: a signed job meeting a row whose other encrypted column is not a ciphertext stops; that batch is rolled back with its records`, async (t) => {
    const { db } = await setup();
    const n = 20;
    const { name, schema, keys, vault } = await rotatedAuditedTable(db, 'ajob_plain', n);
    // The schema's CHECK constraint keeps plaintexts out; an operator who drops it does not.
    await db.query(`ALTER TABLE ${name} DROP CONSTRAINT ${name}_ssn_sifredb_check`);
    await db.query(`UPDATE ${name} SET ssn = 'plain-ssn' WHERE id = 5`);
    const before = (await db.query(`SELECT id, email FROM ${name} ORDER BY id`)).rows;
    await t.throwsAsync(reencryptColumn({ db, schema, column: 'email', vault, batchSize: 50, audit: { signer: keys.signer, actor: 'job' } }), {
      code: 'ERR_SIFREDB_FORMAT',
    });
    t.deepEqual((await db.query(`SELECT id, email FROM ${name} ORDER BY id`)).rows, before);
    t.is(await recordCount(db, name), n);
  });

  test(`${label}: a signed job stopped mid-way leaves a chain that verifies, and its rerun finishes it`, async (t) => {
    const { db } = await setup();
    const n = 120;
    const { name, schema, keys, vault } = await rotatedAuditedTable(db, 'ajob_resume', n);
    const controller = new AbortController();
    let batches = 0;
    const job = { db, schema, column: 'email', vault, batchSize: 20, pipeline: 1, audit: { signer: keys.signer, actor: 'rotation-job' } };
    const first = await reencryptColumn({ ...job, signal: controller.signal, onProgress: () => (batches += 1) === 2 && controller.abort() });
    t.true(first.aborted);
    const partly = await emailVersions(db, name);
    t.true(partly[2] > 0 && partly[1] > 0, `partly done: ${JSON.stringify(partly)}`);
    let report = await verifyAudit(db, name, { publicKeys: keys.publicKeys });
    t.deepEqual(report.findings, []);
    t.is(report.records, n + partly[2]);
    const rest = await reencryptColumn(job);
    t.like(rest, { updated: partly[1], failed: 0 });
    report = await verifyAudit(db, name, { publicKeys: keys.publicKeys });
    t.deepEqual(report.findings, []);
    t.is(report.records, 2 * n);
  });

  test(`${label}: AuditedTable writers during a signed job share the chain; it verifies`, async (t) => {
    const { db } = await setup();
    const n = 150;
    const { name, schema, keys, vault, audited } = await rotatedAuditedTable(db, 'ajob_concurrent', n);
    let done = false;
    const job = reencryptColumn({ db, schema, column: 'email', vault, batchSize: 15, pipeline: 2, pauseMs: 5, audit: { signer: keys.signer, actor: 'rotation-job' } }).finally(() => (done = true));
    let writes = 0;
    const writer = (async () => {
      let nextId = n + 1;
      while (!done) {
        const id = 1 + ((writes * 37) % n);
        // An application update of a row the job is re-encrypting (its value wins: compare-and-set),
        // of another encrypted column, an insert, and a delete.
        await audited.update(id, { tenant_id: id % 2 === 0 ? 't2' : 't1', email: `app${writes}@example.com` }, { actor: 'app' });
        await audited.update(1 + ((writes * 53) % n), { tenant_id: (1 + ((writes * 53) % n)) % 2 === 0 ? 't2' : 't1', ssn: `ssn-app-${writes}` }, { actor: 'app' });
        await audited.insert([jobRow(nextId++)], { actor: 'app' });
        if (writes % 4 === 3) await audited.delete(nextId - 2, { actor: 'app' });
        writes += 1;
        // PGlite answers in-process: a loop of writes alone would never let the job's timers run.
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const [result] = await Promise.all([job, writer]);
    t.true(writes >= 1, 'the application wrote during the job');
    t.is(result.failed, 0);
    t.true(result.updated > 0);
    const report = await verifyAudit(db, name, { publicKeys: keys.publicKeys });
    t.deepEqual(report.findings, []);
    const { rows } = await db.query(`SELECT actor_count FROM (SELECT count(*) AS actor_count FROM sifredb_audit WHERE table_name = $1 AND operation = 'update') s`, [name]);
    t.true(Number(rows[0].actor_count) >= result.updated);
  });
}
