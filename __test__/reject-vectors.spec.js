// test-vectors/format-v1-reject.json through the public API of the backend under test: every reader
// (decrypt, decryptBytes, decryptToString, decryptMany, reencrypt, reencryptMany and their async
// forms) refuses what a correct writer cannot produce, with the committed error code, and accepts
// the committed edge values, which re-encode to exactly the bytes they were read from. The Rust
// core checks the same file (crates/sifredb-core/tests/reject_vectors.rs).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { DeterministicVault, EncryptionContext, Keyring, StaticKeyProvider, Vault, backend } from '../dist/index.js';

const vectors = JSON.parse(readFileSync(new URL('../test-vectors/format-v1-reject.json', import.meta.url), 'utf8'));
const hex = (s) => Buffer.from(s, 'hex');
const ctx = new EncryptionContext(vectors.context);
const keyring = await Keyring.open(new StaticKeyProvider({ keys: [{ version: 1, key: hex(vectors.rootKey.hex) }] }));
const vault = await Vault.open(keyring);
const dvault = await DeterministicVault.open(keyring);
const readerOf = (v) => (v.algorithm === 'aes-256-siv' ? dvault : vault);

test(`the file covers every layer and every type tag (${backend})`, (t) => {
  t.is(vectors.format, 1);
  const layers = new Set(vectors.rejects.map((v) => v.layer));
  t.deepEqual([...layers].sort(), ['envelope', 'text', 'value']);
  const tags = new Set(vectors.rejects.filter((v) => v.layer === 'value').map((v) => v.plaintextHex.slice(0, 2)));
  for (const tag of ['01', '02', '03', '04', '05', '06', '07']) t.true(tags.has(tag), tag);
});

test(`the issue's reproducer: a bigint written as "-0" is refused (${backend})`, (t) => {
  const zeroKeyring = Keyring.open(new StaticKeyProvider({ keys: [{ version: 1, key: Buffer.alloc(32) }] }));
  return zeroKeyring.then(async (kr) => {
    const v = await Vault.open(kr);
    const error = t.throws(() => v.decrypt('sdb1:UwEBAAAAAQAAAAAAAAAAAAAAAEsbt4gxUOlFbheVZLcyyZ2S-YE', EncryptionContext.of('users', 'n')));
    t.is(error.code, 'ERR_SIFREDB_FORMAT');
    t.regex(error.message, /bigint/);
  });
});

/** Every way a reader can be handed one ciphertext, each expected to throw `code`. */
function readers(reader, ct) {
  return {
    decrypt: () => reader.decrypt(ct, ctx),
    decryptBytes: () => reader.decryptBytes(ct, ctx),
    decryptMany: () => reader.decryptMany([ct], ctx),
    reencrypt: () => reader.reencrypt(ct, ctx),
    reencryptMany: () => reader.reencryptMany([ct], ctx),
  };
}

for (const layer of ['text', 'envelope', 'value']) {
  test(`${layer} rejects: every reader refuses them with the committed code (${backend})`, async (t) => {
    const cases = vectors.rejects.filter((v) => v.layer === layer);
    t.true(cases.length >= 18);
    for (const v of cases) {
      const reader = readerOf(v);
      const forms = layer === 'text' ? [v.text] : [v.text, hex(v.envelopeHex)];
      for (const ct of forms) {
        for (const [how, read] of Object.entries(readers(reader, ct))) {
          const error = t.throws(read, undefined, `${v.name} via ${how}`);
          t.is(error?.code, v.error, `${v.name} via ${how}: ${error?.message}`);
          // Value rejects authenticate: only the value rules may refuse them.
          if (layer === 'value') t.regex(error.message, /decrypted/, `${v.name} via ${how}`);
        }
        for (const read of [() => reader.decryptManyAsync([ct], ctx), () => reader.reencryptManyAsync([ct], ctx, { threads: 1 })]) {
          const error = await t.throwsAsync(read, undefined, v.name);
          t.is(error?.code, v.error, v.name);
        }
      }
    }
  });
}

test(`a value reject inside a batch names its index and returns nothing (${backend})`, (t) => {
  const bad = vectors.rejects.find((v) => v.layer === 'value' && v.algorithm === 'chacha20-poly1305' && v.name.endsWith('bigint: -0'));
  const good = vault.encrypt('fine', ctx);
  for (const read of [() => vault.decryptMany([good, bad.text, good], ctx), () => vault.reencryptMany([good, good, bad.text], ctx)]) {
    const error = t.throws(read);
    t.is(error.code, 'ERR_SIFREDB_FORMAT');
    t.true(error.index === 1 || error.index === 2);
  }
});

test(`accepted edge values decrypt, and re-encode to the very bytes they were read from (${backend})`, (t) => {
  t.true(vectors.accepts.length >= 30);
  for (const v of vectors.accepts) {
    const reader = readerOf(v);
    const plaintext = hex(v.plaintextHex);
    for (const ct of [v.text, hex(v.envelopeHex)]) {
      const value = reader.decrypt(ct, ctx);
      t.true(reader.decryptBytes(ct, ctx).equals(plaintext.subarray(1)), v.name);
      if (reader === dvault) {
        // Deterministic: the same value under the same key must give the same envelope.
        t.is(dvault.encrypt(value, ctx).toString('hex'), v.envelopeHex, v.name);
      } else {
        t.true(vault.decryptBytes(vault.encrypt(value, ctx), ctx).equals(plaintext.subarray(1)), v.name);
      }
      t.notThrows(() => reader.reencrypt(ct, ctx), v.name);
    }
    t.is(reader.reencryptMany([v.text], ctx).length, 1);
  }
});

test(`the JSON writer refuses nesting deeper than the readers accept (${backend})`, (t) => {
  let deep = [];
  for (let i = 1; i < 1000; i++) deep = [deep];
  t.notThrows(() => vault.encrypt(deep, ctx));
  const error = t.throws(() => vault.encrypt([deep], ctx));
  t.is(error.code, 'ERR_SIFREDB_INPUT');
  t.regex(error.message, /deeper than 1000/);
});

test(`random JSON values round-trip through every reader, native re-encryption included (${backend})`, (t) => {
  // The Rust core checks re-encrypted JSON itself (its own ECMAScript number printer and key-order
  // rules); any value the JS writer produces that it refused would fail here.
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const view = new DataView(new ArrayBuffer(8));
  const number = () => {
    const kind = rand();
    if (kind < 0.4) {
      view.setUint32(0, Math.floor(rand() * 2 ** 32));
      view.setUint32(4, Math.floor(rand() * 2 ** 32));
      const x = view.getFloat64(0);
      return Number.isFinite(x) ? x : 0.5;
    }
    if (kind < 0.7) return (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20);
    return Math.floor((rand() - 0.5) * 2 ** Math.floor(rand() * 60));
  };
  const key = () => (rand() < 0.3 ? String(Math.floor(rand() * 20)) : `k${Math.floor(rand() * 30)}\u{1F4A1}"\n`.slice(0, 1 + Math.floor(rand() * 6)));
  const values = [];
  for (let i = 0; i < 400; i++) {
    const obj = {};
    for (let j = 0; j < 6; j++) obj[key()] = rand() < 0.5 ? number() : [number(), String.fromCharCode(Math.floor(rand() * 0x60)), '\ud800', null];
    values.push(i % 2 ? obj : [obj, number()]);
  }
  const cts = vault.encryptMany(values, ctx);
  const again = vault.reencryptMany(cts, ctx);
  t.deepEqual(vault.decryptMany(again, ctx), values);
  t.deepEqual(dvault.decryptMany(dvault.reencryptMany(dvault.encryptMany(values, ctx), ctx), ctx), values);
});
