/**
 * The raw primitives of the addon, on the fast path (`src/fast/primitives.rs`): one call each,
 * with the output allocated here and filled by Rust. The callbacks check every argument (a
 * non-`Uint8Array` throws `ERR_SIFREDB_INPUT` naming it) and copy shared memory before reading it.
 * Ciphertext comes from Buffer's shared pool; plaintexts, MACs and derived keys never do.
 */
import { Buffer } from 'node:buffer';
import { ERROR_CODES, SifreDBError } from '../../errors.js';
import type { AddonModule } from '../addon-loader.js';
import { sivAdComponents } from '../siv-ad.js';
import type { Primitives } from '../types.js';
import { call, type FastPath } from './addon.js';

const TAG = 16;
const HKDF_MAX = 255 * 32;

/** `value.length` when it is a Uint8Array, else 0 (the callback then names the bad argument). */
const lengthOf = (value: unknown): number => (value instanceof Uint8Array ? value.length : 0);

/** Output for a ciphertext (not secret): pooled. */
const sealedOut = (n: number): Buffer => Buffer.allocUnsafe(n);
/** Output for a plaintext, MAC or key: its own memory, never Buffer's pool. */
const secretOut = (n: number): Buffer => Buffer.allocUnsafeSlow(n);

/** SIV components back to back in one buffer of this module's own, with their lengths. */
function joinComponents(components: readonly Uint8Array[]): [Uint8Array, Uint32Array] {
  const lens = new Uint32Array(components.length);
  let total = 0;
  components.forEach((c, i) => {
    lens[i] = c.length;
    total += c.length;
  });
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const c of components) {
    joined.set(c, offset);
    offset += c.length;
  }
  return [joined, lens];
}

export function nativePrimitives(addon: AddonModule, fast: FastPath = addon.fastPath()): Primitives {
  type Aead = (k: Uint8Array, n: Uint8Array, m: Uint8Array, a: Uint8Array, out: Uint8Array) => void;
  const seal =
    (fn: Aead) =>
    (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer => {
      const out = sealedOut(lengthOf(plaintext) + TAG);
      call(() => fn(key, nonce, plaintext, aad, out));
      return out;
    };
  const open =
    (fn: Aead) =>
    (key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer => {
      const out = secretOut(Math.max(0, lengthOf(sealed) - TAG));
      call(() => fn(key, nonce, sealed, aad, out));
      return out;
    };
  return {
    aesSivEncrypt(key, plaintext, ad) {
      const components = sivAdComponents(ad);
      const out = sealedOut(lengthOf(plaintext) + TAG);
      if (!Array.isArray(components)) {
        call(() => fast.aesSivEncrypt(key, plaintext, components, out));
      } else {
        const [joined, lens] = joinComponents(components);
        call(() => fast.aesSivEncryptComponents(key, plaintext, joined, lens, out));
      }
      return out;
    },
    aesSivDecrypt(key, ciphertext, ad) {
      const components = sivAdComponents(ad);
      const out = secretOut(Math.max(0, lengthOf(ciphertext) - TAG));
      if (!Array.isArray(components)) {
        call(() => fast.aesSivDecrypt(key, ciphertext, components, out));
      } else {
        const [joined, lens] = joinComponents(components);
        call(() => fast.aesSivDecryptComponents(key, ciphertext, joined, lens, out));
      }
      return out;
    },
    chacha20Poly1305Encrypt: seal(fast.chacha20Poly1305Encrypt),
    chacha20Poly1305Decrypt: open(fast.chacha20Poly1305Decrypt),
    xchacha20Poly1305Encrypt: seal(fast.xchacha20Poly1305Encrypt),
    xchacha20Poly1305Decrypt: open(fast.xchacha20Poly1305Decrypt),
    hkdfSha256(ikm, salt, info, length) {
      if (!Number.isInteger(length)) throw new SifreDBError(ERROR_CODES.input, 'length must be an integer');
      // Out of range: an empty output, and the core's error names the length.
      const out = secretOut(length >= 1 && length <= HKDF_MAX ? length : 0);
      call(() => fast.hkdfSha256(ikm, salt, info, length, out));
      return out;
    },
    hmacSha256(key, message) {
      const out = secretOut(32);
      call(() => fast.hmacSha256(key, message, out));
      return out;
    },
    randomBytes(n) {
      if (!Number.isInteger(n)) throw new SifreDBError(ERROR_CODES.input, 'n must be an integer');
      return call(() => addon.randomBytes(n));
    },
  };
}
