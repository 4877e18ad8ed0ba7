// Secrets stay out of Node's shared Buffer pool: `Buffer.from(small)` / `Buffer.allocUnsafe(small)`
// return slices of one 8 KiB ArrayBuffer, so any unrelated pooled Buffer's `.buffer` exposes
// whatever else lives there. Root keys, decrypted plaintexts and value encodings must not.
// Runs on the backend chosen by SIFREDB_BACKEND.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DeterministicVault,
  EncryptionContext,
  FileKeyProvider,
  StaticKeyProvider,
  Vault,
  getBackend,
  primitives,
} from '../dist/index.js';

const backend = getBackend();

const ctx = EncryptionContext.of('users', 'email');

/** The pool ArrayBuffers seen so far (the pool is replaced when full, so capture before and after). */
function poolWatcher() {
  const pools = new Set();
  const capture = () => pools.add(Buffer.from('x').buffer);
  capture();
  return {
    capture,
    isPool: (arrayBuffer) => pools.has(arrayBuffer),
    /** Whether `needle` (a Uint8Array, itself not pooled) appears in any captured pool. */
    contains(needle) {
      capture();
      for (const pool of pools) if (Buffer.from(pool).indexOf(needle) !== -1) return true;
      return false;
    },
  };
}

const utf8 = (s) => new TextEncoder().encode(s); // a plain Uint8Array: not pooled
const float64 = (n) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, n);
  return out;
};

test(`root keys given as base64 or bytes are not kept in the Buffer pool (${backend.name})`, async (t) => {
  const pool = poolWatcher();
  const a = randomBytes(32);
  const b = randomBytes(32);
  const c = randomBytes(32);
  const providers = [
    new StaticKeyProvider(a.toString('base64')),
    new StaticKeyProvider(b.toString('base64url')),
    new StaticKeyProvider(new Uint8Array(c)),
  ];
  await Promise.all(providers.map((p) => Vault.open(p)));
  for (const key of [a, b, c]) t.false(pool.contains(new Uint8Array(key)), 'a root key is readable from the pool');

  // FileKeyProvider.loadKey hands out an unpooled buffer too.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sifredb-pool-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = await FileKeyProvider.create(path.join(dir, 'keys.json'));
  const loaded = await file.loadKey(1);
  pool.capture();
  t.false(pool.isPool(loaded.buffer));
  t.is(loaded.buffer.byteLength, 32);
});

test(`decrypted plaintexts are not left in the Buffer pool (${backend.name})`, async (t) => {
  const vault = await Vault.open(StaticKeyProvider.generate());
  const det = await DeterministicVault.open(StaticKeyProvider.generate());
  const pool = poolWatcher();

  const secret = `pool-secret-${randomBytes(12).toString('hex')}`;
  for (const v of [vault, det]) {
    const ct = v.encrypt(secret, ctx);
    t.is(v.decryptToString(ct, ctx), secret);
    t.is(v.decrypt(ct, ctx), secret);
  }
  t.false(pool.contains(utf8(secret)), 'a decrypted string is readable from the pool');

  const number = Math.PI * (1 + Math.random());
  for (const v of [vault, det]) {
    const ct = v.encrypt(number, ctx);
    t.is(v.decrypt(ct, ctx), number);
  }
  t.false(pool.contains(float64(number)), 'an encrypted/decrypted number is readable from the pool');

  const big = BigInt(`0x${randomBytes(16).toString('hex')}`) * 7n;
  t.is(vault.decrypt(vault.encrypt(big, ctx), ctx), big);
  t.false(pool.contains(utf8(big.toString(10))), 'a bigint is readable from the pool');

  // decryptBytes, and decrypt of bytes, hand their buffer to the caller: it must not be a pool slice.
  const bytes = new Uint8Array(randomBytes(24));
  for (const v of [vault, det]) {
    const out = v.decryptBytes(v.encrypt(bytes, ctx), ctx);
    t.deepEqual(new Uint8Array(out), bytes);
    pool.capture();
    t.false(pool.isPool(out.buffer), 'decryptBytes() returned a slice of the pool');
    const value = v.decrypt(v.encrypt(bytes, ctx), ctx);
    pool.capture();
    t.false(pool.isPool(value.buffer), 'decrypt() returned a slice of the pool');
  }
});

test(`primitives: AEAD plaintexts and random bytes are not pool slices (${backend.name})`, (t) => {
  const pool = poolWatcher();
  const key = new Uint8Array(randomBytes(32));
  const nonce = new Uint8Array(12);
  const plaintext = utf8(`pool-primitive-${randomBytes(8).toString('hex')}`);
  const sealed = primitives.chacha20Poly1305Encrypt(key, nonce, plaintext, new Uint8Array(0));
  const opened = primitives.chacha20Poly1305Decrypt(key, nonce, sealed, new Uint8Array(0));
  t.deepEqual(new Uint8Array(opened), plaintext);
  const random = primitives.randomBytes(32);
  pool.capture();
  t.false(pool.isPool(opened.buffer));
  t.false(pool.isPool(random.buffer));
});
