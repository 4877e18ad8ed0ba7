// The Kysely plugin (sifredb/kysely) on PGlite and on a real PostgreSQL server (started here, stopped
// after), and examples/kysely.js run end to end.
import test from 'ava';
import { PGlite } from '@electric-sql/pglite';
import { PostgresDialect } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPGlite, openDatabase } from '../dist/index.js';
import { registerKyselyCases } from './helpers/kysely-cases.js';
import { PGliteDialect } from '../examples/kysely-pglite-dialect.js';
import { startPostgres } from './helpers/postgres.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-kysely-'));
const pglite = new PGlite(join(dir, 'db'));
await pglite.waitReady;
const server = await startPostgres();
const pgdb = await openDatabase(server.url, { poolSize: 4 });

test.after.always(async () => {
  await pglite.close();
  rmSync(dir, { recursive: true, force: true });
  await pgdb.close();
  await server.stop();
});

// Serial on PGlite: its one connection is shared by two queues (the sifredb Database's sessions and the
// Kysely dialect's), so a query failing on purpose in one case could land inside another case's
// transaction (reencryptColumn's batches) and abort it.
registerKyselyCases(test.serial, 'pglite', async () => ({ sdb: fromPGlite(pglite), dialect: () => new PGliteDialect(pglite) }));
registerKyselyCases(test, 'postgres', async () => ({ sdb: pgdb, dialect: () => new PostgresDialect({ pool: server.pool }) }));

test('examples/kysely.js runs end to end and checks what it prints', (t) => {
  const example = new URL('../examples/kysely.js', import.meta.url).pathname;
  const result = spawnSync(process.execPath, [example], { encoding: 'utf8', env: process.env });
  t.is(result.status, 0, result.stderr + result.stdout);
  t.regex(result.stdout, /stored: email is a ciphertext/);
  t.regex(result.stdout, /found by email: \[ 1 \]/);
  t.regex(result.stdout, /refused: ERR_SIFREDB_INPUT/);
});
