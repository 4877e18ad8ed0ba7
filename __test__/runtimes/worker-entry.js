// Bundled by esbuild for workerd (conditions: workerd, worker, browser) in
// __test__/runtime-workerd.spec.js: a module worker whose every request imports nothing new but runs
// the vector check inside the request (workerd forbids random numbers at global scope, so this also
// proves the library draws none at load) and answers with the result as JSON.
import * as sifredb from 'sifredb';
import { checkVectors } from './vector-check.js';
import format from './format-v1.json';
import rowBinding from './format-v1-row-binding.json';

const errorText = (e) => `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? e}`;

export default {
  async fetch() {
    try {
      const started = performance.now();
      const result = await checkVectors(sifredb, { format, rowBinding });
      return Response.json({ runtime: navigator.userAgent, ms: Math.round(performance.now() - started), ...result });
    } catch (error) {
      return Response.json({ runtime: navigator.userAgent, backend: sifredb.backend, error: errorText(error) });
    }
  },
};
