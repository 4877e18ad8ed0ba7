/** The raw RFC primitives of the pure-JS backend: argument checks around an {@link Engine}. */
import { SifreDBError } from '../../errors.js';
import type { Primitives } from '../types.js';
import { assertBytes, assertBytesOfLength, assertInteger } from './bytes.js';
import { allocOut, allocSecret, ownedBytes, toBuffer } from '../../format/bytes.js';
import type { AeadKey, Engine, SivWithAd } from './engine.js';
import { sivAdComponents } from '../siv-ad.js';

const TAG = 16;

/** The error every failed verification throws: nothing about the inputs, so nothing leaks. */
export function authError(): SifreDBError {
  return new SifreDBError('ERR_SIFREDB_AUTH', 'authentication failed');
}

function seal(aead: AeadKey, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const out = allocOut(plaintext.length + TAG);
  aead.seal(nonce, plaintext, aad, out);
  return out;
}

function open(aead: AeadKey, nonce: Uint8Array, input: Uint8Array, aad: Uint8Array): Buffer {
  // Authenticated and decrypted from one snapshot when another thread can rewrite it.
  const ciphertextAndTag = ownedBytes(input);
  if (ciphertextAndTag.length < TAG) throw authError();
  const out = allocSecret(ciphertextAndTag.length - TAG);
  if (!aead.open(nonce, ciphertextAndTag, aad, out)) throw authError();
  return out;
}

function checkAeadArgs(key: unknown, nonce: unknown, nonceLength: number, data: unknown, dataName: string, aad: unknown) {
  assertBytesOfLength(key, 'key', 32);
  assertBytesOfLength(nonce, 'nonce', nonceLength);
  assertBytes(data, dataName);
  assertBytes(aad, 'aad');
}

/** AES-SIV under `key` bound to one associated-data string or to a vector of components. */
function sivWithAd(engine: Engine, key: Uint8Array, ad: Uint8Array | Uint8Array[]): SivWithAd {
  const siv = engine.aesSiv(key);
  return Array.isArray(ad) ? siv.withAdComponents(ad) : siv.withAd(ad);
}

/** Builds the {@link Primitives} object over `engine`. */
export function createPrimitives(engine: Engine): Primitives {
  return {
    aesSivEncrypt(key, plaintext, ad) {
      assertBytesOfLength(key, 'key', 64);
      assertBytes(plaintext, 'plaintext');
      const siv = sivWithAd(engine, key, sivAdComponents(ad));
      return toBuffer(siv.seal(plaintext));
    },
    aesSivDecrypt(key, ciphertext, ad) {
      assertBytesOfLength(key, 'key', 64);
      assertBytes(ciphertext, 'ciphertext');
      const components = sivAdComponents(ad);
      if (ciphertext.length < TAG) throw authError();
      const plaintext = sivWithAd(engine, key, components).open(ownedBytes(ciphertext));
      if (plaintext === null) throw authError();
      return toBuffer(plaintext);
    },
    chacha20Poly1305Encrypt(key, nonce, plaintext, aad) {
      checkAeadArgs(key, nonce, 12, plaintext, 'plaintext', aad);
      return seal(engine.chacha20Poly1305(key), nonce, plaintext, aad);
    },
    chacha20Poly1305Decrypt(key, nonce, ciphertextAndTag, aad) {
      checkAeadArgs(key, nonce, 12, ciphertextAndTag, 'ciphertextAndTag', aad);
      return open(engine.chacha20Poly1305(key), nonce, ciphertextAndTag, aad);
    },
    xchacha20Poly1305Encrypt(key, nonce, plaintext, aad) {
      checkAeadArgs(key, nonce, 24, plaintext, 'plaintext', aad);
      return seal(engine.xchacha20Poly1305(key), nonce, plaintext, aad);
    },
    xchacha20Poly1305Decrypt(key, nonce, ciphertextAndTag, aad) {
      checkAeadArgs(key, nonce, 24, ciphertextAndTag, 'ciphertextAndTag', aad);
      return open(engine.xchacha20Poly1305(key), nonce, ciphertextAndTag, aad);
    },
    hkdfSha256(ikm, salt, info, length) {
      assertBytes(ikm, 'ikm');
      assertBytes(salt, 'salt');
      assertBytes(info, 'info');
      assertInteger(length, 'length', 1, 255 * 32);
      return toBuffer(engine.hkdfSha256(ikm, salt, info, length));
    },
    hmacSha256(key, message) {
      assertBytes(key, 'key');
      assertBytes(message, 'message');
      return toBuffer(engine.hmacSha256(key).mac(message));
    },
    randomBytes(n) {
      assertInteger(n, 'n', 0, 65536);
      // Random bytes are often keys: never in the shared pool.
      const out = allocSecret(n);
      engine.randomFill(out);
      return out;
    },
  };
}
