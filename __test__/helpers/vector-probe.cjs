// Loads one native binary directly (process.dlopen, not through SifreDB's loader) and checks it
// against the frozen vectors of test-vectors/format-v1.json through the addon's own exports (the
// root key's handles and the fast path):
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
const { NativeRootKey, fastPath } = addon.exports;
const fast = fastPath();
// docs/FORMAT.md: header (7) ‖ nonce ‖ ciphertext ‖ tag (16) for the AEADs, header ‖ SIV (16) ‖ ciphertext for AES-SIV.
const overheadOf = (algorithm) => 7 + ({ 1: 12, 2: 24, 3: 0 })[algorithm] + 16;
const plaintextOffsetOf = (algorithm) => (algorithm === 3 ? 7 + 16 : 7 + ({ 1: 12, 2: 24 })[algorithm]);

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
  let made;
  if (e.algorithm === 3) {
    // Sealed in place: type tag and value at the plaintext offset, header and SIV written by Rust.
    made = Buffer.alloc(1 + value.length + overheadOf(3));
    made[plaintextOffsetOf(3)] = e.typeTag;
    value.copy(made, plaintextOffsetOf(3) + 1);
    fast.seal(cipher.handle(), made);
  } else {
    made = cipher.encryptWithNonce(value, e.typeTag, hex(e.nonceHex));
  }
  expect(`envelope ${envelopes} (algorithm ${e.algorithm}) encrypt`, made.toString('hex'), e.envelopeHex);
  // Opening gives the type tag byte followed by the value.
  const envelope = hex(e.envelopeHex);
  const opened = Buffer.alloc(envelope.length - overheadOf(e.algorithm));
  fast.open(cipher.handle(), envelope, opened);
  expect(`envelope ${envelopes} (algorithm ${e.algorithm}) decrypt`, opened.toString('hex'), Buffer.concat([Buffer.from([e.typeTag]), value]).toString('hex'));
  envelopes++;
}

let blindIndex = 0;
for (const b of v.blindIndex) {
  const index = roots.get(b.rootKey).blindIndex(contexts.get(b.context), Buffer.from(b.indexName, 'utf8'));
  const term = Buffer.alloc(Math.ceil(b.bits / 8));
  fast.mac(index.handle(), hex(b.messageHex), b.bits, term);
  expect(`blind index ${blindIndex} (${b.bits} bits)`, term.toString('hex'), b.termHex);
  blindIndex++;
}

console.log(JSON.stringify({ arch: process.arch, platform: process.platform, envelopes, blindIndex, failures }));
process.exit(failures.length === 0 && envelopes > 0 && blindIndex > 0 ? 0 : 1);
