// Audit signatures against a real PostgreSQL server (started here, stopped after): the shared cases
// of helpers/audit-cases.js, and concurrent writers on several connections sharing one chain.
import test from 'ava';
import { backend, openDatabase, verifyAudit } from '../dist/index.js';
import { auditedTable, registerAuditCases } from './helpers/audit-cases.js';
import { startPostgres } from './helpers/postgres.js';

const server = await startPostgres();
const db = await openDatabase(server.url, { poolSize: 8 });

test.after.always(async () => {
  await db.close();
  await server.stop();
});

registerAuditCases(test, `postgres [${backend}]`, async () => ({ db }));

test(`postgres [${backend}]: concurrent writers on 8 connections leave one chain that verifies`, async (t) => {
  const { name, audited, publicKeys } = await auditedTable(db, 'audit_concurrent', 0);
  const writers = 8;
  const perWriter = 15;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let k = 0; k < perWriter; k++) {
        const id = w * 1000 + k + 1;
        await audited.insert([{ id, tenant_id: 't1', email: `w${w}k${k}@example.com`, ssn: `s${id}` }], { actor: `writer-${w}` });
        if (k % 3 === 0) await audited.update(id, { tenant_id: 't1', email: `updated-${id}@example.com` }, { actor: `writer-${w}` });
        if (k % 5 === 4) await audited.delete(id, { actor: `writer-${w}` });
      }
    }),
  );
  const report = await verifyAudit(db, name, { publicKeys });
  t.deepEqual(report.findings, []);
  const inserts = writers * perWriter;
  const updates = writers * Math.ceil(perWriter / 3);
  const deletes = writers * Math.floor(perWriter / 5);
  t.is(report.records, inserts + updates + deletes);
  t.is(report.rows, inserts - deletes);
  const { rows } = await db.query(`SELECT count(DISTINCT actor_seq) AS n FROM (SELECT seq AS actor_seq FROM sifredb_audit WHERE table_name = $1) s`, [name]);
  t.is(Number(rows[0].n), report.records, 'one sequence number per record');
});
