// The runtime-neutral vector checker (__test__/runtimes/vector-check.js) that the Deno, Bun, Chromium
// and workerd specs run, checked here under Node: it passes on the package, it catches a wrong vector
// of every kind (so a green run elsewhere means something), its result never carries key material,
// and it uses nothing a browser or a worker lacks.
import test from 'ava';
import { readFileSync } from 'node:fs';
import * as sifredb from '../dist/index.js';
import { loadVectors, assertVectorResult } from './runtimes/harness.js';
import { checkVectors } from './runtimes/vector-check.js';

const requested = process.env.SIFREDB_BACKEND || 'native';

test(`every vector passes through the public API on the ${requested} backend`, async (t) => {
  const result = await checkVectors(sifredb, loadVectors());
  t.is(result.backend, requested);
  assertVectorResult(t, result, 'node');
  t.deepEqual(JSON.parse(JSON.stringify(result)), result, 'JSON-serializable');
});

test('a wrong vector of each kind is reported, by name, without key material', async (t) => {
  const vectors = loadVectors();
  const flip = (hex, at = 0) => hex.slice(0, at) + ((parseInt(hex[at], 16) ^ 1).toString(16)) + hex.slice(at + 1);
  vectors.format.contexts[0].canonicalHex = flip(vectors.format.contexts[0].canonicalHex, 41 - 2);
  vectors.format.derivedKeys[0].keyHex = flip(vectors.format.derivedKeys[0].keyHex);
  vectors.format.envelopes[0].envelopeHex = flip(vectors.format.envelopes[0].envelopeHex, 60);
  const siv = vectors.format.envelopes.findIndex((v) => v.algorithm === 3);
  vectors.format.envelopes[siv].envelopeHex = flip(vectors.format.envelopes[siv].envelopeHex, 20);
  vectors.format.blindIndex[3].termHex = flip(vectors.format.blindIndex[3].termHex);
  vectors.rowBinding.envelopes[5].rowAdHex += '00';
  const result = await checkVectors(sifredb, vectors);
  const kinds = new Set(result.failures.map((f) => f.kind));
  for (const kind of ['context', 'derivedKey', 'envelope.decrypt.bytes', 'envelope.randomized.reproduce', 'envelope.siv.reproduce', 'blindIndex', 'rowBinding.decrypt.bytes']) {
    t.true(kinds.has(kind), `a failure of kind ${kind}`);
  }
  t.true(result.failures.some((f) => f.kind === 'blindIndex' && f.id.startsWith('3 ')));
  const text = JSON.stringify(result);
  const secrets = [
    ...vectors.format.rootKeys.map((k) => k.hex),
    vectors.rowBinding.rootKey.hex,
    ...vectors.format.derivedKeys.map((d) => d.keyHex),
    ...loadVectors().format.derivedKeys.map((d) => d.keyHex),
  ];
  for (const secret of secrets) t.false(text.includes(secret), 'a key appears in the result');
});

test('the checker uses only what every runtime has: no node: modules, Buffer or process', (t) => {
  const source = readFileSync(new URL('./runtimes/vector-check.js', import.meta.url), 'utf8').replace(/^\s*\/\/.*$/gm, '');
  t.notRegex(source, /\bimport\b/);
  t.notRegex(source, /\bBuffer\b/);
  t.notRegex(source, /\bprocess\b/);
  t.notRegex(source, /\brequire\(/);
});
