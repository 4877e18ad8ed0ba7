// The table schema against a real PostgreSQL server (started here, stopped after).
import test from 'ava';
import { openDatabase } from '../dist/index.js';
import { startPostgres } from './helpers/postgres.js';
import { registerSchemaCases } from './helpers/schema-cases.js';

const server = await startPostgres();
const db = await openDatabase(server.url, { poolSize: 4 });

test.after.always(async () => {
  await db.close();
  await server.stop();
});

registerSchemaCases(test, 'postgres', async () => ({ db }));
