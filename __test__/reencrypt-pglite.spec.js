// The batch jobs (reencryptColumn, encryptColumn, constraints) on the embedded PGlite database.
import test from 'ava';
import { registerCases } from './helpers/reencrypt-cases.js';
import { tempPGlite } from './helpers/pglite.js';

const setup = tempPGlite(test);

test('pglite: the adapter is single-session', async (t) => {
  const { db } = await setup();
  t.is(db.kind, 'pglite');
  t.is(db.maxSessions, 1);
});

registerCases(test, 'pglite', setup);
