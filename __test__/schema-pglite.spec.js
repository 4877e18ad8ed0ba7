// The table schema against the embedded PGlite database (the shared cases of helpers/schema-cases.js).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../dist/index.js';
import { registerSchemaCases } from './helpers/schema-cases.js';

const dir = mkdtempSync(join(tmpdir(), 'sifredb-schema-pglite-'));
let opened;
const setup = () => (opened ??= openDatabase(join(dir, 'db')).then((db) => ({ db })));

test.after.always(async () => {
  if (opened) await (await opened).db.close();
  rmSync(dir, { recursive: true, force: true });
});

registerSchemaCases(test, 'pglite', setup);
