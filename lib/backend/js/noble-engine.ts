/** The @noble engine: pure JS, runs wherever `crypto.getRandomValues` exists. */
import { aessiv } from '@noble/ciphers/aes.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { AeadKey, Engine, MacKey, SivKey, SivWithAd } from './engine.js';

type NobleAead = typeof chacha20poly1305;

function aeadKey(aead: NobleAead, key: Uint8Array): AeadKey {
  // Own copy: the caller may zero or reuse its buffer after handing it over.
  const k = Uint8Array.from(key);
  return {
    seal(nonce, plaintext, aad, out) {
      out.set(aead(k, nonce, aad).encrypt(plaintext));
    },
    open(nonce, ciphertextAndTag, aad, out) {
      try {
        const plaintext = aead(k, nonce, aad).decrypt(ciphertextAndTag);
        out.set(plaintext);
        plaintext.fill(0);
        return true;
      } catch {
        // noble verifies the tag before decrypting and throws only on a bad tag here (sizes are
        // validated by the caller), so nothing was written.
        return false;
      }
    },
  };
}

function sivKey(key: Uint8Array): SivKey {
  const k = Uint8Array.from(key);
  // noble's aessiv(key, ...ad) is RFC 5297 S2V over [...ad, plaintext], no nonce.
  const bound = (ad: Uint8Array[]): SivWithAd => ({
    seal: (plaintext) => aessiv(k, ...ad).encrypt(plaintext),
    open(sivAndCiphertext) {
      try {
        return aessiv(k, ...ad).decrypt(sivAndCiphertext);
      } catch {
        return null;
      }
    },
  });
  return {
    withAd: (ad) => bound([Uint8Array.from(ad)]),
    withAdComponents: (components) => bound(components.map((c) => Uint8Array.from(c))),
  };
}

function macKey(key: Uint8Array): MacKey {
  const k = Uint8Array.from(key);
  return { mac: (message) => hmac(sha256, k, message) };
}

/** The @noble engine. */
export const nobleEngine: Engine = {
  name: 'noble',
  chacha20Poly1305: (key) => aeadKey(chacha20poly1305, key),
  xchacha20Poly1305: (key) => aeadKey(xchacha20poly1305, key),
  aesSiv: sivKey,
  hmacSha256: macKey,
  hkdfSha256: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
  randomFill(out) {
    out.set(randomBytes(out.length));
  },
};
