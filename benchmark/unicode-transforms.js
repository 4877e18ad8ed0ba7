#!/usr/bin/env node
// The blind-index text transforms on pinned Unicode 17.0.0 tables (lib/blind-index/unicode.ts) against
// the runtime's built-ins they replace (toLowerCase, toUpperCase, normalize('NFC'), trim), in one run,
// and what they add to a blind-index term of a typical value. Needs `npm run build:ts` first.
//
//   node benchmark/unicode-transforms.js [--time=MS]
//
// Prints nanoseconds per call (tinybench median) and the ratio pinned / built-in per input.
import { Bench } from 'tinybench';
import { BlindIndex, EncryptionContext, Keyring, StaticKeyProvider } from '../dist/index.js';
import { toLowerCase, toNFC, toUpperCase, trim } from '../dist/blind-index/unicode.js';

const time = Number(process.argv.find((a) => a.startsWith('--time='))?.slice(7) ?? 200);
const inputs = {
  'ASCII email (24 B)': '  Alice.Smith@Example.COM',
  'Latin accents (16 ch)': 'José Müller-Øberg',
  'Greek word (12 ch)': 'ΟΔΥΣΣΕΥΣ ΚΑΙ',
  'decomposed Latin (20 ch)': 'Cafe\u0301 de\u0301ja\u0300 vu\u0308',
  'Hangul jamo (12 ch)': '\u1100\u1161\u11a8\u1102\u1165\u1112\u1161\u11ab\u1100\u1173\u11af',
  'mixed text (4 KiB)': 'Straße Ἀθῆναι İstanbul naïve 東京 한국어 '.repeat(100).slice(0, 4096),
};
const pairs = {
  lowercase: [toLowerCase, (s) => s.toLowerCase()],
  uppercase: [toUpperCase, (s) => s.toUpperCase()],
  nfc: [toNFC, (s) => s.normalize('NFC')],
  trim: [trim, (s) => s.trim()],
};

async function median(fn) {
  const bench = new Bench({ time, warmupTime: Math.min(100, time) });
  bench.add('x', fn);
  await bench.run();
  const r = bench.tasks[0].result;
  return (r.latency?.p50 ?? r.p50 ?? r.mean) * 1e6;
}

let sink = 0;
const rows = [];
for (const [name, [pinned, builtIn]] of Object.entries(pairs)) {
  for (const [label, input] of Object.entries(inputs)) {
    if (pinned(input) !== builtIn(input)) throw new Error(`${name} of ${label}: pinned and built-in differ on this runtime`);
    const a = await median(() => { sink += pinned(input).length; });
    const b = await median(() => { sink += builtIn(input).length; });
    rows.push({ transform: name, input: label, 'pinned ns': a.toFixed(0), 'built-in ns': b.toFixed(0), ratio: (a / b).toFixed(2) });
  }
}
console.table(rows);

const keyring = await Keyring.open(new StaticKeyProvider(Buffer.alloc(32, 7)));
const ctx = EncryptionContext.of('users', 'name');
const withTransforms = await BlindIndex.open(keyring, { name: 'name', transforms: ['trim', 'lowercase', 'nfc'] });
const without = await BlindIndex.open(keyring, { name: 'name' });
for (const label of ['ASCII email (24 B)', 'Latin accents (16 ch)']) {
  const input = inputs[label];
  const ready = input.normalize('NFC').toLowerCase().trim();
  const a = await median(() => { sink += withTransforms.compute(input, ctx).bytes.length; });
  const b = await median(() => { sink += without.compute(input.trim().toLowerCase().normalize('NFC'), ctx).bytes.length; });
  const c = await median(() => { sink += without.compute(ready, ctx).bytes.length; });
  console.log(`blind-index compute, ${label}: pinned trim+lowercase+nfc ${a.toFixed(0)} ns, built-in ones ${b.toFixed(0)} ns (ratio ${(a / b).toFixed(2)}), no transforms ${c.toFixed(0)} ns`);
}
if (sink === 0) console.log('');
