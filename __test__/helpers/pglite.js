// A throwaway PGlite database for one test file: opened on first use (opening takes seconds),
// closed and deleted after the file's tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../dist/index.js';

/** Registers the clean-up on `test` and returns `setup()`, which resolves to `{ db }`. */
export function tempPGlite(test) {
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-pglite-'));
  let opened;
  test.after.always(async () => {
    if (opened) await (await opened).db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => (opened ??= openDatabase(join(dir, 'db')).then((db) => ({ db })));
}
