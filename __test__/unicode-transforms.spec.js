// The blind-index transforms on pinned Unicode 17.0.0 data (lib/blind-index/unicode.ts): the same
// results and terms under every runtime, whatever its ICU. Where the runtime is on the pinned version,
// every result is also compared with the runtime's own toLowerCase / toUpperCase / normalize / trim.
// Runs under every Node of scripts/node-matrix.js.
import test from 'ava';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlindIndex, EncryptionContext, Keyring, StaticKeyProvider, backend } from '../dist/index.js';
import { TRIMMED, UNICODE_VERSION, digits, toLowerCase, toNFC, toUpperCase, trim } from '../dist/blind-index/unicode.js';

const vectors = JSON.parse(readFileSync(new URL('../test-vectors/blind-index-unicode.json', import.meta.url), 'utf8'));
const runtimeUnicode = process.versions.unicode;
const sameUnicode = `${runtimeUnicode}.0` === UNICODE_VERSION;
const cps = (s) => Array.from(s, (c) => c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')).join(' ');
const fromCps = (text) => (text === '' ? '' : String.fromCodePoint(...text.split(' ').map((x) => parseInt(x, 16))));
const keyring = await Keyring.open(new StaticKeyProvider(Buffer.from(vectors.rootKeyHex, 'hex')));
const ctx = EncryptionContext.of(vectors.context.table, vectors.context.column);

test(`pinned to Unicode ${UNICODE_VERSION}; runtime (${backend} backend) is on Unicode ${runtimeUnicode}`, (t) => {
  t.is(UNICODE_VERSION, vectors.unicodeVersion);
});

test('every code point: lowercase, uppercase and nfc give the frozen results (and the runtime\'s, on the same Unicode version)', (t) => {
  const pinned = { lowercase: toLowerCase, uppercase: toUpperCase, nfc: toNFC };
  const builtIn = { lowercase: (s) => s.toLowerCase(), uppercase: (s) => s.toUpperCase(), nfc: (s) => s.normalize('NFC') };
  for (const [name, fn] of Object.entries(pinned)) {
    const hash = createHash('sha256');
    const differFromRuntime = [];
    for (let cp = 0; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const s = String.fromCodePoint(cp);
      const r = fn(s);
      if (r !== s) hash.update(`${cps(s)}:${cps(r)}\n`);
      if (r !== builtIn[name](s)) differFromRuntime.push(cps(s));
    }
    t.is(hash.digest('hex'), vectors.singleCodePointSha256[name], name);
    if (sameUnicode) t.deepEqual(differFromRuntime, [], `${name}: the runtime is on the pinned version and must agree`);
    else t.log(`${name}: the runtime's Unicode ${runtimeUnicode} differs on ${differFromRuntime.length} code points, e.g. ${differFromRuntime.slice(0, 4).join(', ')}`);
  }
});

test('frozen cases: the transformed text and the term of every case, through BlindIndex', async (t) => {
  const plain = await BlindIndex.open(keyring, vectors.index);
  for (const c of vectors.cases) {
    const index = await BlindIndex.open(keyring, { ...vectors.index, transforms: c.transforms });
    const input = fromCps(c.input);
    t.is(cps(index.normalize(input)[0]), c.output, c.note);
    t.is(index.compute(input, ctx).hex, c.termHex, c.note);
    t.is(plain.compute(fromCps(c.output), ctx).hex, c.termHex, `${c.note} (no transforms)`);
  }
  t.true(vectors.cases.some((c) => c.sameInUnicode14 === false), 'the vectors include characters that map differently in Unicode 14');
});

// A deterministic pseudo-random generator, so that a failure reproduces.
function random(seed) {
  return (n) => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return seed % n;
  };
}

test('random strings of case-sensitive, combining, Hangul and sigma code points: NFC is stable, and the runtime agrees on the same Unicode version', (t) => {
  const pool = [0x3a3, 0x3a3, 0x2e, 0x20, 0x41, 0x130, 0xdf, 0x2b0, 0xd800, 0xdc00, 0x1100, 0x1161, 0x11a8, 0xac00, 0x16d63, 0x16d67];
  for (let cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const s = String.fromCodePoint(cp);
    if (toLowerCase(s) !== s || toUpperCase(s) !== s || toNFC(s) !== s || /\p{M}/u.test(s)) pool.push(cp);
  }
  const next = random(13);
  let compared = 0;
  for (let n = 0; n < 20000; n++) {
    const s = Array.from({ length: 1 + next(6) }, () => pool[next(pool.length)]).map((cp) => String.fromCodePoint(cp)).join('');
    const nfc = toNFC(s);
    if (toNFC(nfc) !== nfc) t.fail(`nfc is not idempotent on ${cps(s)}`);
    if (sameUnicode) {
      compared++;
      if (toLowerCase(s) !== s.toLowerCase()) t.fail(`lowercase of ${cps(s)}`);
      if (toUpperCase(s) !== s.toUpperCase()) t.fail(`uppercase of ${cps(s)}`);
      if (nfc !== s.normalize('NFC')) t.fail(`nfc of ${cps(s)}`);
    }
  }
  t.is(compared, sameUnicode ? 20000 : 0);
});

test('trim strips exactly the stated code points (ECMAScript WhiteSpace and LineTerminator on Unicode 17.0.0)', (t) => {
  const stated = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
    0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff];
  t.deepEqual([...TRIMMED].sort((a, b) => a - b), stated);
  for (let cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    const s = `${c}${c}x${c}`;
    const expected = TRIMMED.has(cp) ? 'x' : s;
    if (trim(s) !== expected) t.fail(`trim of U+${cps(c)}`);
    if (sameUnicode && s.trim() !== expected) t.fail(`the runtime's trim of U+${cps(c)}`);
  }
  t.is(trim('\ufeff\u3000 a b\u2029'), 'a b');
  t.is(trim('\u0085a\u180e'), '\u0085a\u180e');
  t.is(trim(''), '');
  t.is(trim(' \t '), '');
});

test('digits keeps the ASCII digits U+0030..U+0039 only', (t) => {
  for (let cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    if (digits(`a${c}b`) !== (cp >= 0x30 && cp <= 0x39 ? c : '')) t.fail(`digits of U+${cps(c)}`);
  }
  t.is(digits('+90 (٥٥٥) 010-99９9'), '90010999');
});

test('lone surrogates pass through the transforms; the index then refuses them', async (t) => {
  for (const fn of [toLowerCase, toUpperCase, toNFC, trim]) {
    t.is(fn('\ud800'), '\ud800');
    t.is(fn('\udc00\u0301'), '\udc00\u0301');
  }
  t.is(toNFC('\ud800e\u0301\udc00'), '\ud800\u00e9\udc00');
  t.is(toUpperCase('\ud800\u00df'), '\ud800SS');
  t.is(toLowerCase('A\u03a3\ud800'), 'a\u03c2\ud800', 'a lone surrogate is neither cased nor case-ignorable');
  for (const transforms of [['lowercase'], ['uppercase'], ['nfc'], ['trim']]) {
    const index = await BlindIndex.open(keyring, { ...vectors.index, transforms });
    const error = t.throws(() => index.compute('x\ud800', ctx));
    t.is(error?.code, 'ERR_SIFREDB_INPUT');
  }
});

test('long and mixed text: ASCII fast paths, long NFC output, supplementary code points', (t) => {
  const decomposed = 'e\u0301'.repeat(10000);
  t.is(toNFC(decomposed), '\u00e9'.repeat(10000));
  t.is(toNFC('plain ASCII'), 'plain ASCII');
  t.is(toNFC('caf\u00e9 \u00fc\u00df'), 'caf\u00e9 \u00fc\u00df', 'Latin-1 text is NFC as it is');
  t.is(toLowerCase('HeLLo WORLD'), 'hello world');
  t.is(toUpperCase('HeLLo world'), 'HELLO WORLD');
  t.is(toLowerCase('\u{10400}\u{1E900}X'), '\u{10428}\u{1E922}x');
  t.is(toUpperCase('\u{10428}stra\u00dfe'), '\u{10400}STRASSE');
});
