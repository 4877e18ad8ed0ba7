// Property tests: for random keys, nonces, inputs and associated data, the native and pure-JS
// backends produce identical bytes, each decrypts the other's output, and any single flipped bit in
// ciphertext, tag, nonce or associated data fails with ERR_SIFREDB_AUTH.
import test from 'ava';
import fc from 'fast-check';
import { jsBackend, nativeBackend } from './helpers/backends.js';

const N = nativeBackend.primitives;
const J = jsBackend.primitives;
const runs = { numRuns: 150 };

const bytes = (min, max) => fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u));
const fixed = (n) => bytes(n, n);

function authFails(t, fn) {
  const error = t.throws(fn);
  t.is(error?.code, 'ERR_SIFREDB_AUTH');
}

/** Flips bit `bit` of a copy of `buffer`; `bit` is taken modulo the buffer's bit length. */
function flip(buffer, bit) {
  const copy = Buffer.from(buffer);
  const index = bit % (copy.length * 8);
  copy[index >> 3] ^= 1 << (index & 7);
  return copy;
}

const aeads = [
  { name: 'ChaCha20-Poly1305', nonce: 12, enc: 'chacha20Poly1305Encrypt', dec: 'chacha20Poly1305Decrypt' },
  { name: 'XChaCha20-Poly1305', nonce: 24, enc: 'xchacha20Poly1305Encrypt', dec: 'xchacha20Poly1305Decrypt' },
];

for (const aead of aeads) {
  test(`${aead.name}: native and js agree, decrypt each other, and reject every flipped bit`, (t) => {
    fc.assert(
      fc.property(fixed(32), fixed(aead.nonce), bytes(0, 300), bytes(0, 64), fc.nat(), fc.nat(3), (key, nonce, msg, aad, bit, where) => {
        const fromNative = N[aead.enc](key, nonce, msg, aad);
        const fromJs = J[aead.enc](key, nonce, msg, aad);
        t.deepEqual(fromNative, fromJs);
        t.deepEqual(J[aead.dec](key, nonce, fromNative, aad), msg);
        t.deepEqual(N[aead.dec](key, nonce, fromJs, aad), msg);
        for (const P of [N, J]) {
          if (where === 0) authFails(t, () => P[aead.dec](key, nonce, flip(fromNative, bit), aad));
          if (where === 1) authFails(t, () => P[aead.dec](key, flip(nonce, bit), fromNative, aad));
          if (where === 2 && aad.length > 0) authFails(t, () => P[aead.dec](key, nonce, fromNative, flip(aad, bit)));
          if (where === 3) authFails(t, () => P[aead.dec](flip(key, bit), nonce, fromNative, aad));
        }
      }),
      runs,
    );
  });
}

test('AES-256-SIV: native and js agree, decrypt each other, and reject every flipped bit', (t) => {
  fc.assert(
    fc.property(fixed(64), bytes(0, 300), bytes(0, 64), fc.nat(), fc.boolean(), (key, msg, ad, bit, flipAd) => {
      const fromNative = N.aesSivEncrypt(key, msg, ad);
      t.deepEqual(fromNative, J.aesSivEncrypt(key, msg, ad));
      t.deepEqual(J.aesSivDecrypt(key, fromNative, ad), msg);
      t.deepEqual(N.aesSivDecrypt(key, fromNative, ad), msg);
      for (const P of [N, J]) {
        if (flipAd && ad.length > 0) authFails(t, () => P.aesSivDecrypt(key, fromNative, flip(ad, bit)));
        else authFails(t, () => P.aesSivDecrypt(key, flip(fromNative, bit), ad));
      }
    }),
    runs,
  );
});

test('HKDF-SHA256 and HMAC-SHA256: native and js agree', (t) => {
  fc.assert(
    fc.property(bytes(0, 100), bytes(0, 64), bytes(0, 64), fc.integer({ min: 1, max: 600 }), (ikm, salt, info, length) => {
      t.deepEqual(N.hkdfSha256(ikm, salt, info, length), J.hkdfSha256(ikm, salt, info, length));
      t.deepEqual(N.hmacSha256(ikm, info), J.hmacSha256(ikm, info));
    }),
    runs,
  );
});
