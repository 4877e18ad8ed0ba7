// The ORM integrations' cost (`npm run bench` runs it last; alone: `node benchmark/integrations.js`):
// insert N rows and select them all back decrypted through Kysely (the SifreDB plugin) and through
// Drizzle (sifredb/drizzle), against the same queries on a plaintext table, on PGlite, in one run.
// Exports the measurement for benchmark/run.js; run directly it prints the table.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { drizzle } from 'drizzle-orm/pglite';
import { bigint, integer, pgTable, text } from 'drizzle-orm/pg-core';
import { Keyring, StaticKeyProvider, applySchema, defineTable, fromPGlite } from '../dist/index.js';
import { SifreDBPlugin } from '../dist/integrations/kysely/index.js';
import { PGliteDialect } from '../examples/kysely-pglite-dialect.js';

const CHUNK = 1_000;

/** The encrypted table: a randomized email with an 18-bit blind index, and a deterministic ssn. */
const schemaOf = (table) =>
  defineTable({
    table,
    tenant: 'tenant_id',
    columns: {
      email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18, transforms: ['trim', 'lowercase'] }] },
      ssn: { type: 'string', mode: 'deterministic' },
    },
  });

const rowsOf = (n) => Array.from({ length: n }, (_, i) => ({ id: i + 1, tenant_id: `t${i % 4}`, name: `name ${i}`, email: `user${i}@example.com`, ssn: `123-45-${String(i).padStart(4, '0')}` }));

/**
 * The table, as each side would have it: the plaintext one indexed on the columns it is searched by
 * (email, ssn), the encrypted one with the schema's DDL (lookup column, indexes, CHECK constraints).
 */
async function createTable(sdb, name, schema) {
  await sdb.query(`DROP TABLE IF EXISTS ${name}`);
  await sdb.query(`CREATE TABLE ${name} (id bigint PRIMARY KEY, tenant_id text NOT NULL, name text, email text, ssn text)`);
  if (schema !== undefined) {
    await applySchema(sdb, schema);
  } else {
    await sdb.query(`CREATE INDEX ON ${name} (email)`);
    await sdb.query(`CREATE INDEX ON ${name} (ssn)`);
  }
}

async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Kysely: plaintext vs plugin, `runs` alternating rounds; ms per round (insert + select). */
async function kyselyRounds(pglite, keyring, rows, runs) {
  const plain = new Kysely({ dialect: new PGliteDialect(pglite) });
  const schema = schemaOf('k_enc');
  const enc = new Kysely({ dialect: new PGliteDialect(pglite), plugins: [await SifreDBPlugin.create(keyring, [schema])] });
  const sdb = fromPGlite(pglite);
  const out = { plain: [], encrypted: [] };
  for (let r = 0; r < runs; r++) {
    for (const kind of r % 2 === 0 ? ['plain', 'encrypted'] : ['encrypted', 'plain']) {
      const table = kind === 'plain' ? 'k_plain' : 'k_enc';
      await createTable(sdb, table, kind === 'encrypted' ? schema : undefined);
      const db = kind === 'plain' ? plain : enc;
      out[kind].push(
        await timed(async () => {
          for (let i = 0; i < rows.length; i += CHUNK) await db.insertInto(table).values(rows.slice(i, i + CHUNK)).execute();
          const back = await db.selectFrom(table).selectAll().execute();
          if (back.length !== rows.length || back[7].email !== rows[7].email) throw new Error(`kysely ${kind}: read back wrong rows`);
        }),
      );
    }
  }
  return out;
}

/** Drizzle: plaintext vs sifredb/drizzle, alternating rounds; ms per round (insert + select). */
async function drizzleRounds(pglite, keyring, rows, runs) {
  const { encryptedTable } = await import('../dist/integrations/drizzle/index.js');
  const db = drizzle(pglite);
  const columns = {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    tenantId: text('tenant_id').notNull(),
    name: text('name'),
    email: text('email'),
    ssn: text('ssn'),
  };
  const plainTable = pgTable('d_plain', columns);
  const encTable = pgTable('d_enc', { ...columns, emailIdx: integer('email_idx') });
  const schema = schemaOf('d_enc');
  const users = await encryptedTable(keyring, encTable, schema);
  const sdb = fromPGlite(pglite);
  const input = rows.map(({ tenant_id, ...r }) => ({ ...r, tenantId: tenant_id }));
  const out = { plain: [], encrypted: [] };
  for (let r = 0; r < runs; r++) {
    for (const kind of r % 2 === 0 ? ['plain', 'encrypted'] : ['encrypted', 'plain']) {
      const name = kind === 'plain' ? 'd_plain' : 'd_enc';
      await createTable(sdb, name, kind === 'encrypted' ? schema : undefined);
      out[kind].push(
        await timed(async () => {
          for (let i = 0; i < input.length; i += CHUNK) {
            const chunk = input.slice(i, i + CHUNK);
            if (kind === 'plain') await db.insert(plainTable).values(chunk);
            else await db.insert(encTable).values(users.encrypt(chunk));
          }
          const back = kind === 'plain' ? await db.select().from(plainTable) : await users.decryptAsync(await db.select().from(encTable));
          if (back.length !== rows.length || back.find((b) => b.id === 8).email !== rows[7].email) throw new Error(`drizzle ${kind}: read back wrong rows`);
        }),
      );
    }
  }
  return out;
}

/** Runs both scenarios; returns `{ rows, kysely: {plainMs, encryptedMs, overhead}, drizzle: … }`. */
export async function runIntegrationScenario({ rows: n = 10_000, runs = 5, log = () => {} } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-bench-orm-'));
  const pglite = new PGlite(path.join(dir, 'db'));
  try {
    const keyring = await Keyring.open(new StaticKeyProvider(crypto.getRandomValues(new Uint8Array(32))));
    const rows = rowsOf(n);
    const summarize = (m) => {
      const plainMs = median(m.plain);
      const encryptedMs = median(m.encrypted);
      return { plainMs, encryptedMs, overhead: encryptedMs / plainMs - 1 };
    };
    log(`  kysely: ${runs} alternating rounds of insert ${n} + select ${n}`);
    const kysely = summarize(await kyselyRounds(pglite, keyring, rows, runs));
    log(`  drizzle: ${runs} alternating rounds of insert ${n} + select ${n}`);
    const drizzleResult = summarize(await drizzleRounds(pglite, keyring, rows, runs));
    return { rows: n, runs, kysely, drizzle: drizzleResult };
  } finally {
    await pglite.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The Markdown section BENCHMARKS.md gets. */
export function renderIntegrations(r) {
  const line = (name, m) =>
    `| ${name} | ${m.plainMs.toFixed(0)} ms | ${m.encryptedMs.toFixed(0)} ms | ${(m.overhead * 100).toFixed(1)} % | ${m.overhead <= 0.25 ? 'met' : 'missed'} |`;
  return [
    '## ORM integrations (PGlite)',
    '',
    `Insert ${r.rows.toLocaleString('en')} rows (1,000 per INSERT) and select them all back, decrypted, through each integration, against the same queries on a plaintext table indexed on email and ssn (median of ${r.runs} alternating rounds, same run). The encrypted table has a randomized email with an 18-bit blind index and a deterministic ssn, with 4 tenants, and the schema's DDL (lookup column, indexes, CHECK constraints). Target: at most 25 % more wall time.`,
    '',
    '| integration | plaintext | encrypted | overhead | target ≤ 25 % |',
    '| --- | --- | --- | --- | --- |',
    line('Kysely + SifreDBPlugin', r.kysely),
    line('Drizzle + sifredb/drizzle', r.drizzle),
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const flags = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
  const result = await runIntegrationScenario({ rows: Number(flags.rows ?? 10_000), runs: Number(flags.runs ?? 5), log: console.error });
  const section = renderIntegrations(result);
  console.log(section);
  if ('write' in flags) {
    // Replaces this section of BENCHMARKS.md (written by `npm run bench`), keeping the rest.
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'BENCHMARKS.md');
    const text = fs.readFileSync(file, 'utf8');
    const start = text.indexOf('## ORM integrations (PGlite)');
    const end = start < 0 ? -1 : text.indexOf('\n## ', start + 1);
    const next = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, start)}${section}${end < 0 ? '' : text.slice(end)}`;
    fs.writeFileSync(file, next);
    console.error('wrote the ORM section of BENCHMARKS.md');
  }
}
