#!/usr/bin/env node
// Generated test-vectors/blind-index-unicode.json once (frozen: never regenerate existing entries). The
// expected text of every case comes from the runtime's own toLowerCase / toUpperCase / normalize('NFC')
// / trim, not from lib/blind-index/unicode.ts, so it must run on a Node whose ICU has the pinned
// Unicode version (process.versions.unicode 17.0). NFC results are checked against Python's
// unicodedata2==17.0.1 (UCD_PYTHON), and each case records whether Python 3's built-in Unicode
// (`python3`, another version) gives the same text, which marks the characters that drift. Terms are
// the blind-index HMAC of that text computed with no transform (the path format-v1.json freezes).
//   UCD_PYTHON=/tmp/ucd-venv/bin/python node scripts/blind-index-unicode-vectors.js
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BlindIndex, EncryptionContext, Keyring, StaticKeyProvider } from '../dist/index.js';

const root = resolve(import.meta.dirname, '..');
if (process.versions.unicode !== '17.0') throw new Error(`needs a runtime on Unicode 17.0, this one has ${process.versions.unicode}`);

const cps = (s) => Array.from(s, (c) => c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')).join(' ');
const fromCps = (text) => (text === '' ? '' : String.fromCodePoint(...text.split(' ').map((x) => parseInt(x, 16))));
const runtime = {
  lowercase: (s) => s.toLowerCase(),
  uppercase: (s) => s.toUpperCase(),
  nfc: (s) => s.normalize('NFC'),
  trim: (s) => s.trim(),
  digits: (s) => s.replace(/[^0-9]/g, ''),
};
const python = {
  lowercase: 's.lower()', uppercase: 's.upper()', nfc: "u.normalize('NFC', s)", digits: "''.join(c for c in s if '0' <= c <= '9')",
  trim: "s.strip('\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000\\u2001\\u2002\\u2003\\u2004\\u2005\\u2006\\u2007\\u2008\\u2009\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff')",
};

// [note, transforms, input code points]
const cases = [
  ['U+A7CB (Unicode 16) lowercases to U+0264', ['lowercase'], 'A7CB'],
  ['U+0264 uppercases to U+A7CB from Unicode 16 on (to itself before)', ['uppercase'], '0264'],
  ['U+1C89 / U+1C8A, Cyrillic TJE (Unicode 16)', ['lowercase'], '1C89'],
  ['U+1C8A uppercases to U+1C89 (Unicode 16)', ['uppercase'], '1C8A'],
  ['U+A7CE (Unicode 17) lowercases to U+A7CF', ['lowercase'], 'A7CE'],
  ['U+A7D3 uppercases to U+A7D2 (Unicode 17)', ['uppercase'], 'A7D3'],
  ['Kirat Rai U+16D63 U+16D67 composes to U+16D69 (Unicode 16)', ['nfc'], '16D63 16D67'],
  ['Kirat Rai U+16D67 U+16D67 composes to U+16D68 (Unicode 16)', ['nfc'], '16D67 16D67'],
  ['Kirat Rai U+16D69 is already NFC', ['nfc'], '16D69'],
  ['final sigma at the end of a word', ['lowercase'], '039F 0394 039F 03A3'],
  ['sigma alone is not final', ['lowercase'], '03A3'],
  ['sigma followed by a letter is not final', ['lowercase'], '03A3 0391'],
  ['final sigma before a full stop (case-ignorable) and a space', ['lowercase'], '0391 03A3 002E 0020 0392'],
  ['sigma between letters across a case-ignorable full stop is not final', ['lowercase'], '0391 03A3 002E 0392'],
  ['sigma after a combining mark after a letter is final', ['lowercase'], '0391 0301 03A3'],
  ['U+02B0 is cased and case-ignorable: skipped as case-ignorable', ['lowercase'], '02B0 03A3'],
  ['final sigma in a supplementary-plane context', ['lowercase'], '1D400 03A3'],
  ['U+0130 lowercases to U+0069 U+0307 (no Turkish tailoring)', ['lowercase'], '0130'],
  ['U+0069 uppercases to U+0049 (no Turkish tailoring)', ['uppercase'], '0069'],
  ['U+00DF uppercases to SS', ['uppercase'], '00DF'],
  ['U+1E9E lowercases to U+00DF', ['lowercase'], '1E9E'],
  ['U+1E9E is its own uppercase', ['uppercase'], '1E9E'],
  ['ligatures U+FB00 U+FB03 U+FB06 uppercase to FF FFI ST', ['uppercase'], 'FB00 FB03 FB06'],
  ['U+0149 uppercases to U+02BC U+004E', ['uppercase'], '0149'],
  ['U+0390 uppercases to three code points', ['uppercase'], '0390'],
  ['Hangul L V T composes to U+AC01', ['nfc'], '1100 1161 11A8'],
  ['Hangul LV T composes to U+AC01', ['nfc'], 'AC00 11A8'],
  ['Hangul LVT stays; a following T does not compose', ['nfc'], 'AC01 11A8'],
  ['e + U+0301 composes to U+00E9', ['nfc'], '0065 0301'],
  ['canonical ordering then composition: U+00E9 U+0323 becomes U+1EB9 U+0301', ['nfc'], '00E9 0323'],
  ['singleton U+212B becomes U+00C5', ['nfc'], '212B'],
  ['composition exclusion U+0958 stays decomposed', ['nfc'], '0958'],
  ['non-starter decomposition U+0344', ['nfc'], '0344'],
  ['blocked composition: a starter between', ['nfc'], '0061 0062 0301'],
  ['trim strips U+FEFF, U+3000 and line separators, keeps U+0085 and U+180E', ['trim'], 'FEFF 3000 2028 0020 0078 0085 180E 0020 000A'],
  ['trim strips every stated code point', ['trim'], '0009 000A 000B 000C 000D 0020 00A0 1680 2000 200A 2028 2029 202F 205F 3000 FEFF 0079 FEFF 3000 000D'],
  ['digits keeps ASCII digits only', ['digits'], '0661 0662 0020 0034 0035 FF16 0037'],
  ['U+0378 (unassigned in 17.0) passes through every transform', ['trim', 'lowercase', 'uppercase', 'nfc'], '0378'],
  ['U+40000 (unassigned in 17.0) passes through, U+00C0 maps', ['lowercase', 'nfc'], '00C0 40000 0301'],
  ['trim, lowercase, nfc together', ['trim', 'lowercase', 'nfc'], '0020 0041 0301 0130 039F 03A3 0020 3000'],
  ['uppercase then nfc on decomposed Greek', ['uppercase', 'nfc'], '03B1 0313 0301 0345'],
];

const root32 = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const keyring = await Keyring.open(new StaticKeyProvider(root32));
const context = { table: 'users', column: 'name' };
const ctx = EncryptionContext.of(context.table, context.column);
const settings = { name: 'name_bidx', bits: 64 };
const plain = await BlindIndex.open(keyring, settings);

const apply = (fns, transforms, s) => transforms.reduce((text, t) => fns[t](text), s);
function pythonResults(exe, list, module) {
  const script = `import json, sys\n${module}\nfor t, s in json.load(sys.stdin):\n  for f in t: s = {${Object.entries(python).map(([k, v]) => `'${k}': lambda s: ${v}`).join(', ')}}[f](s)\n  print(json.dumps(s))`;
  const r = spawnSync(exe, ['-c', script], { input: JSON.stringify(list), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${exe}: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line));
}
const inputs = cases.map(([, transforms, input]) => [transforms, fromCps(input)]);
const ucdPython = process.env.UCD_PYTHON;
if (!ucdPython) throw new Error('set UCD_PYTHON to a python with unicodedata2==17.0.1 (see scripts/unicode-tables.js)');
const nfcOnly = inputs.map(([t, s]) => [t.filter((x) => x === 'nfc'), apply(runtime, t.filter((x) => x !== 'nfc'), s)]);
const nfc17 = pythonResults(ucdPython, nfcOnly, 'import unicodedata2 as u');
const py3 = pythonResults('python3', inputs, 'import unicodedata as u');
const py3Version = spawnSync('python3', ['-c', 'import unicodedata; print(unicodedata.unidata_version)'], { encoding: 'utf8' }).stdout.trim();

const out = cases.map(([note, transforms, input], i) => {
  const output = apply(runtime, transforms, inputs[i][1]);
  if (transforms.at(-1) === 'nfc' && nfc17[i] !== output) throw new Error(`${note}: unicodedata2 17.0 NFC disagrees with the runtime`);
  return {
    note,
    transforms,
    input,
    output: cps(output),
    termHex: plain.compute(output, ctx).hex,
    [`sameInUnicode${py3Version.split('.')[0]}`]: py3[i] === output,
  };
});

// Every single code point's result under each transform, as a digest of the code points that change:
// lines `XXXX:YYYY ZZZZ\n` (hex, uppercase), in code point order, surrogates skipped.
function singleCodePointDigest(fn) {
  const hash = createHash('sha256');
  for (let cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const s = String.fromCodePoint(cp);
    const r = fn(s);
    if (r !== s) hash.update(`${cps(s)}:${cps(r)}\n`);
  }
  return hash.digest('hex');
}

const vectors = {
  description:
    'Frozen blind-index terms of the text transforms on Unicode 17.0.0 (docs/BLIND-INDEX.md, "Transforms"): each case applies ' +
    '`transforms` in order to the code points `input` (hex) and gives `output`; `termHex` is the term of `output` under the ' +
    'index `index` in context `context` with key version 1 = rootKeyHex. `singleCodePointSha256` is SHA-256 over the lines ' +
    '"XXXX:YYYY ZZZZ\\n" (uppercase hex code points, at least 4 digits) of every code point U+0000..U+10FFFF, surrogates ' +
    'skipped, that the transform changes, in code point order. Produced with the runtime\'s own functions on Unicode 17.0 ' +
    `(NFC cross-checked with Python unicodedata2 17.0.0); sameInUnicode${py3Version.split('.')[0]} says whether Python on Unicode ${py3Version} gives the same output.`,
  unicodeVersion: '17.0.0',
  rootKeyHex: root32.toString('hex'),
  context,
  index: settings,
  singleCodePointSha256: {
    lowercase: singleCodePointDigest(runtime.lowercase),
    uppercase: singleCodePointDigest(runtime.uppercase),
    nfc: singleCodePointDigest(runtime.nfc),
  },
  cases: out,
};
writeFileSync(join(root, 'test-vectors', 'blind-index-unicode.json'), `${JSON.stringify(vectors, null, 2)}\n`);
console.log(`wrote test-vectors/blind-index-unicode.json: ${out.length} cases`);
