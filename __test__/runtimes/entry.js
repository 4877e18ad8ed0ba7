// Run by Deno and Bun (copied into a throwaway project by harness.js): imports `sifredb` as an
// application would, checks the frozen vectors and prints one `SIFREDB_RESULT <json>` line. An import
// that fails is reported in that line too, so the spec can say why.
import { checkVectors } from './vector-check.js';
import format from './format-v1.json' with { type: 'json' };
import rowBinding from './format-v1-row-binding.json' with { type: 'json' };

const runtime = globalThis.Deno ? `deno ${globalThis.Deno.version.deno}` : globalThis.Bun ? `bun ${globalThis.Bun.version}` : 'unknown';
const errorText = (e) => `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? e}`;
let result;
const started = performance.now();
let sifredb;
try {
  sifredb = await import('sifredb');
} catch (error) {
  result = { runtime, importError: errorText(error) };
}
const importMs = Math.round(performance.now() - started);
if (sifredb) {
  try {
    result = { runtime, importMs, ...(await checkVectors(sifredb, { format, rowBinding })) };
  } catch (error) {
    result = { runtime, importMs, backend: sifredb.backend, error: errorText(error) };
  }
}
console.log(`SIFREDB_RESULT ${JSON.stringify(result)}`);
