// lib/format/bytes.ts has two branches: Node's Buffer (Node, Bun, Deno) and plain Uint8Array code for
// browsers and edge runtimes. A child process with the Buffer global removed runs the portable branch
// on the same inputs; both must give identical results, including every refusal.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';

const BYTES = new URL('../dist/format/bytes.js', import.meta.url).href;
const MATERIAL = new URL('../dist/keys/material.js', import.meta.url).href;
const CONTEXT = new URL('../dist/context.js', import.meta.url).href;
const CODEC = new URL('../dist/format/value-codec.js', import.meta.url).href;

// Runs in both processes: a JSON report of every helper on the given inputs.
const probe = `
const bytes = await import(${JSON.stringify(BYTES)});
const { decodeKeyMaterial } = await import(${JSON.stringify(MATERIAL)});
const { EncryptionContext } = await import(${JSON.stringify(CONTEXT)});
const { encodeValue, decodeValue } = await import(${JSON.stringify(CODEC)});
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const fromHex = (h) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
const attempt = (f) => { try { return f(); } catch (e) { return 'error ' + e.code; } };
export function report(input) {
  return {
    hasBuffer: typeof globalThis.Buffer === 'function',
    b64: input.bytes.map((h) => bytes.toBase64Url(fromHex(h))),
    fromB64: input.texts.map((t) => { const b = bytes.fromBase64Url(t); return b === undefined ? null : hex(b); }),
    fromB64Lenient: input.texts.map((t) => { const b = bytes.fromBase64Url(t, false); return b === undefined ? null : hex(b); }),
    utf8: input.bytes.map((h) => bytes.utf8Text(fromHex(h)) ?? null),
    utf8Bytes: input.strings.map((s) => hex(bytes.utf8Bytes(s))),
    utf8Length: input.strings.map((s) => bytes.utf8Length(s)),
    hexOut: input.bytes.map((h) => bytes.toHex(fromHex(h))),
    equal: input.bytes.map((h, i) => bytes.equalBytes(fromHex(h), fromHex(input.bytes[(i + 1) % input.bytes.length]))),
    keys: input.keys.map((k) => attempt(() => hex(decodeKeyMaterial(k, 'key')))),
    contexts: input.strings.map((s) => attempt(() => { const c = new EncryptionContext({ table: s || 't', column: 'c', tenant: s || undefined, version: 7 }); return c.key + '/' + hex(c.bytes); })),
    values: input.values.map((v) => attempt(() => {
      const value = v.kind === 'date' ? new Date(v.value) : v.kind === 'bigint' ? BigInt(v.value) : v.kind === 'number' ? Number(v.value) : v.value;
      const enc = encodeValue(value);
      const data = typeof enc.data === 'string' ? bytes.utf8Bytes(enc.data) : enc.data;
      const back = decodeValue(enc.tag, bytes.copyBytes(data));
      return enc.tag + ':' + hex(data) + ':' + (back instanceof Date ? back.getTime() : String(back));
    })),
  };
}
`;

function runPortable(input) {
  const script = `delete globalThis.Buffer;\n${probe}\nconsole.log(JSON.stringify(report(${JSON.stringify(input)})));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(child.stderr);
  return JSON.parse(child.stdout);
}

async function runNode(input) {
  const url = `data:text/javascript,${encodeURIComponent(probe)}`;
  const { report } = await import(url);
  return report(input);
}

const corpus = {
  bytes: ['', '00', 'ff', 'efbbbf41', 'c328', 'f09f9880', 'eda080', 'e282', '6869', 'f4908080', 'c0af'],
  texts: ['', 'A', 'AA', 'AB', 'AAA', 'AAB', 'AAAA', 'AQ', 'AR', '-_', 'a+b', 'ab=', 'ab c', 'aGk', 'aGl', '8J-YgA', '8J-YgQ'],
  strings: ['', 'a', 'é', '€', '😀', '\uFEFFbom', 'user|table', 'ﬀ', 'a'.repeat(300)],
  keys: [
    'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
    'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8',
    ' AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= ',
    '_-_-AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8',
    '+/+/AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
    'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9',
    'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8AAA',
    'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A',
    'not base64!',
    '',
  ],
  values: [
    // Numbers as text: JSON would turn -0 into 0 on the way to the child.
    { kind: 'number', value: '1.5' },
    { kind: 'number', value: '-0' },
    { kind: 'number', value: '1e300' },
    { kind: 'number', value: 'NaN' },
    { kind: 'bigint', value: '-123456789012345678901234567890' },
    { kind: 'date', value: 1700000000123 },
    { kind: 'string', value: 'ünïcode' },
    { kind: 'json', value: { a: [1, 'x', null] } },
  ],
};

test('the portable branch gives what Buffer gives on a fixed corpus (refusals included)', async (t) => {
  const [portable, node] = [runPortable(corpus), await runNode(corpus)];
  t.false(portable.hasBuffer);
  t.true(node.hasBuffer);
  t.deepEqual({ ...portable, hasBuffer: null }, { ...node, hasBuffer: null });
  // Canonical base64url: a dangling character and stray bits are refused.
  t.deepEqual(node.fromB64.slice(0, 9), ['', null, '00', null, '0000', null, '000000', '01', null]);
});

test('the portable branch gives what Buffer gives on random inputs', async (t) => {
  const input = fc.sample(
    fc.record({
      bytes: fc.array(fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('hex')), { minLength: 1, maxLength: 60 }),
      texts: fc.array(fc.string({ unit: fc.constantFrom(...'AQgw-_09azAZ+/= '.split('')), maxLength: 12 }), { maxLength: 60 }),
      strings: fc.array(fc.string({ unit: 'grapheme', maxLength: 20 }), { maxLength: 40 }),
      keys: fc.array(fc.uint8Array({ minLength: 30, maxLength: 34 }).map((b) => Buffer.from(b).toString(b[0] % 2 ? 'base64' : 'base64url')), { maxLength: 20 }),
      values: fc.constant(corpus.values),
    }),
    { numRuns: 1, seed: 20261130 },
  )[0];
  const [portable, node] = [runPortable(input), await runNode(input)];
  t.deepEqual({ ...portable, hasBuffer: null }, { ...node, hasBuffer: null });
});
