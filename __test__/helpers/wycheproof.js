// Locates Project Wycheproof's vector files. They live outside the repository (../shared beside the
// clone, or SIFREDB_WYCHEPROOF_DIR) and are never copied in. A public clone has no ../shared: the
// suite then says so loudly and records a skipped test; CI sets SIFREDB_REQUIRE_VECTORS=1, which turns
// that absence into a failure.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const wycheproofDir = process.env.SIFREDB_WYCHEPROOF_DIR
  ? resolve(process.env.SIFREDB_WYCHEPROOF_DIR)
  : join(repoRoot, '..', 'shared', 'vectors', 'wycheproof');

export const vectorsRequired = process.env.SIFREDB_REQUIRE_VECTORS === '1';

/** Parsed vector file, or undefined when the directory is absent. */
export function loadWycheproof(file) {
  const path = join(wycheproofDir, file);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8'));
}

export const hex = (s) => Buffer.from(s, 'hex');
