// The batch jobs (reencryptColumn, encryptColumn, constraints) on the embedded PGlite database.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../dist/index.js';
import { registerCases } from './helpers/reencrypt-cases.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-pglite-'));
let opened;
const setup = () => (opened ??= openDatabase(join(dir, 'db')).then((db) => ({ db })));

test.after.always(async () => {
  if (opened) await (await opened).db.close();
  rmSync(dir, { recursive: true, force: true });
});

test('pglite: the adapter is single-session', async (t) => {
  const { db } = await setup();
  t.is(db.kind, 'pglite');
  t.is(db.maxSessions, 1);
});

registerCases(test, 'pglite', setup);
