// Bundled by esbuild for the browser (conditions: browser) in __test__/runtime-chromium.spec.js and
// loaded by headless Chromium from a page on 127.0.0.1: imports `sifredb` (the web entry), checks
// every frozen vector and POSTs the result to /result on the page's own server.
import * as sifredb from 'sifredb';
import { checkVectors } from './vector-check.js';
import format from './format-v1.json';
import rowBinding from './format-v1-row-binding.json';

const errorText = (e) => `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? e}`;
const report = (body) => fetch('/result', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

try {
  const started = performance.now();
  const result = await checkVectors(sifredb, { format, rowBinding });
  await report({ runtime: navigator.userAgent, ms: Math.round(performance.now() - started), secureContext: isSecureContext, ...result });
} catch (error) {
  await report({ runtime: navigator.userAgent, backend: sifredb.backend, error: errorText(error) });
}
