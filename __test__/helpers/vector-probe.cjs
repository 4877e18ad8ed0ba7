// Loads one native binary directly (process.dlopen, not through the index.js loader) and checks it
// against the frozen vectors of test-vectors/format-v1.json through the addon's own classes:
// deterministic envelopes re-encrypted byte for byte, randomized ones re-created with their fixed
// nonces, every envelope decrypted, and every blind-index term recomputed.
// Usage: node vector-probe.cjs <file.node> [vectors.json]. Prints one JSON line:
// { arch, platform, envelopes, blindIndex, failures: [...] }; exits 1 when anything differs.
'use strict';
const { readFileSync } = require('node:fs');
const { resolve } = require('node:path');

const [file, vectorsPath = resolve(__dirname, '../../test-vectors/format-v1.json')] = process.argv.slice(2);
const addon = { exports: {} };
process.dlopen(addon, resolve(file));
const { NativeRootKey } = addon.exports;

const v = JSON.parse(readFileSync(vectorsPath, 'utf8'));
const hex = (s) => Buffer.from(s, 'hex');
const contexts = new Map(v.contexts.map((c) => [c.name, hex(c.canonicalHex)]));
const roots = new Map(v.rootKeys.map((k) => [k.version, new NativeRootKey(k.version, hex(k.hex))]));
const failures = [];
const expect = (what, actual, expected) => {
  if (actual !== expected) failures.push(`${what}: got ${actual}, want ${expected}`);
};

let envelopes = 0;
for (const e of v.envelopes) {
  const root = roots.get(e.rootKey);
  const ctx = contexts.get(e.context);
  const value = hex(e.valueHex);
  const cipher = e.algorithm === 3 ? root.deterministicCipher(ctx) : root.randomizedCipher(e.algorithm, ctx);
  const made = e.algorithm === 3 ? cipher.encrypt(value, e.typeTag) : cipher.encryptWithNonce(value, e.typeTag, hex(e.nonceHex));
  expect(`envelope ${envelopes} (algorithm ${e.algorithm}) encrypt`, made.toString('hex'), e.envelopeHex);
  // The addon's decrypt returns the type tag byte followed by the value.
  expect(`envelope ${envelopes} (algorithm ${e.algorithm}) decrypt`, cipher.decrypt(hex(e.envelopeHex)).toString('hex'), Buffer.concat([Buffer.from([e.typeTag]), value]).toString('hex'));
  envelopes++;
}

let blindIndex = 0;
for (const b of v.blindIndex) {
  const index = roots.get(b.rootKey).blindIndex(contexts.get(b.context), Buffer.from(b.indexName, 'utf8'));
  expect(`blind index ${blindIndex} (${b.bits} bits)`, index.compute(hex(b.messageHex), b.bits).toString('hex'), b.termHex);
  blindIndex++;
}

console.log(JSON.stringify({ arch: process.arch, platform: process.platform, envelopes, blindIndex, failures }));
process.exit(failures.length === 0 && envelopes > 0 && blindIndex > 0 ? 0 : 1);
