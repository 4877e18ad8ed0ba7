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

test('SifreDBPlugin.create takes a loadSchema() result in or out of an array, refuses anything else, and verifySettings checks the records', async (t) => {
  const { defineTable, Keyring, Schema, StaticKeyProvider, applySchema } = await import('../dist/index.js');
  const { SifreDBPlugin } = await import('../dist/integrations/kysely/index.js');
  const keyring = await Keyring.open(new StaticKeyProvider(crypto.getRandomValues(new Uint8Array(32))));
  const users = defineTable({ table: 'verify_users', columns: { email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 18 }] } } });
  const file = new Schema([users]);
  await SifreDBPlugin.create(keyring, file);
  await SifreDBPlugin.create(keyring, [file]);
  await t.throwsAsync(SifreDBPlugin.create(keyring, [{ table: 'x' }]), { code: 'ERR_SIFREDB_INPUT', message: /schemas\[0\] is not a table schema/ });
  await pgdb.query('CREATE TABLE verify_users (id int PRIMARY KEY)');
  await applySchema(pgdb, users);
  await (await SifreDBPlugin.create(keyring, [users])).verifySettings(pgdb);
  const other = defineTable({ table: 'verify_users', columns: { email: { type: 'string', blindIndexes: [{ name: 'email', column: 'email_idx', bits: 16 }] } } });
  await t.throwsAsync((await SifreDBPlugin.create(keyring, [other])).verifySettings(pgdb), { code: 'ERR_SIFREDB_SCHEMA', message: /bits 18 recorded, 16 configured/ });
});
