/** The raw primitives of the addon, with arguments checked and shared memory copied first. */
import type { Buffer } from 'node:buffer';
import { ERROR_CODES, SifreDBError } from '../../errors.js';
import type { AddonModule } from '../addon-loader.js';
import type { Primitives } from '../types.js';
import { call, owned } from './addon.js';

export function nativePrimitives(addon: AddonModule): Primitives {
  const aead =
    (fn: (k: Uint8Array, n: Uint8Array, m: Uint8Array, a: Uint8Array) => Buffer, messageName: string) =>
    (key: Uint8Array, nonce: Uint8Array, message: Uint8Array, aad: Uint8Array): Buffer => {
      const args = [owned(key, 'key'), owned(nonce, 'nonce'), owned(message, messageName), owned(aad, 'aad')] as const;
      return call(() => fn(...args));
    };
  return {
    aesSivEncrypt(key, plaintext, ad) {
      const args = [owned(key, 'key'), owned(plaintext, 'plaintext'), owned(ad, 'ad')] as const;
      return call(() => addon.aesSivEncrypt(...args));
    },
    aesSivDecrypt(key, ciphertext, ad) {
      const args = [owned(key, 'key'), owned(ciphertext, 'ciphertext'), owned(ad, 'ad')] as const;
      return call(() => addon.aesSivDecrypt(...args));
    },
    chacha20Poly1305Encrypt: aead(addon.chacha20Poly1305Encrypt, 'plaintext'),
    chacha20Poly1305Decrypt: aead(addon.chacha20Poly1305Decrypt, 'ciphertextAndTag'),
    xchacha20Poly1305Encrypt: aead(addon.xchacha20Poly1305Encrypt, 'plaintext'),
    xchacha20Poly1305Decrypt: aead(addon.xchacha20Poly1305Decrypt, 'ciphertextAndTag'),
    hkdfSha256(ikm, salt, info, length) {
      const args = [owned(ikm, 'ikm'), owned(salt, 'salt'), owned(info, 'info')] as const;
      if (!Number.isInteger(length)) throw new SifreDBError(ERROR_CODES.input, 'length must be an integer');
      return call(() => addon.hkdfSha256(...args, length));
    },
    hmacSha256(key, message) {
      const args = [owned(key, 'key'), owned(message, 'message')] as const;
      return call(() => addon.hmacSha256(...args));
    },
    randomBytes(n) {
      if (!Number.isInteger(n)) throw new SifreDBError(ERROR_CODES.input, 'n must be an integer');
      return call(() => addon.randomBytes(n));
    },
  };
}

