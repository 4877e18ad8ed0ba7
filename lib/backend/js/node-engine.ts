/**
 * The node:crypto engine (OpenSSL). XChaCha20-Poly1305 is HChaCha20 from @noble feeding OpenSSL's
 * ChaCha20-Poly1305, since OpenSSL has no XChaCha; AES-SIV is composed in {@link ./node-aes-siv.ts}.
 */
import type { KeyObject } from 'node:crypto';
import { hchacha } from '@noble/ciphers/chacha.js';
import type { AeadKey, Engine, MacKey } from './engine.js';
import { nodeAesSiv } from './node-aes-siv.js';

type NodeCrypto = typeof import('node:crypto');

const TAG = 16;
// node's hkdfSync rejects longer info; longer inputs take the HMAC composition below.
const HKDF_SYNC_MAX_INFO = 1024;
const SIGMA = words(new TextEncoder().encode('expand 32-byte k'));

function chachaKey(crypto: NodeCrypto, key: KeyObject | Uint8Array): AeadKey {
  return {
    seal(nonce, plaintext, aad, out) {
      const cipher = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
      cipher.setAAD(aad, { plaintextLength: plaintext.length });
      out.set(cipher.update(plaintext));
      cipher.final();
      out.set(cipher.getAuthTag(), plaintext.length);
    },
    open(nonce, ciphertextAndTag, aad, out) {
      const split = ciphertextAndTag.length - TAG;
      const decipher = crypto.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
      decipher.setAuthTag(ciphertextAndTag.subarray(split));
      decipher.setAAD(aad, { plaintextLength: split });
      // OpenSSL releases the plaintext before checking the tag; neither copy may outlive a failure.
      const plaintext = decipher.update(ciphertextAndTag.subarray(0, split));
      out.set(plaintext);
      plaintext.fill(0);
      try {
        decipher.final();
        return true;
      } catch {
        out.fill(0);
        return false;
      }
    },
  };
}

/** Native-endian 32-bit view of a copy of `bytes`: the word layout @noble's hchacha reads and writes. */
function words(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(Uint8Array.from(bytes).buffer);
}

function xchachaKey(crypto: NodeCrypto, key: Uint8Array): AeadKey {
  const keyWords = words(key);
  // XChaCha20 (draft-irtf-cfrg-xchacha §2.3): subkey = HChaCha20(key, nonce[0..16]), then
  // ChaCha20-Poly1305 under the subkey with nonce 0x00000000 ‖ nonce[16..24].
  const withSubkey = <T>(nonce: Uint8Array, run: (inner: AeadKey, innerNonce: Uint8Array) => T): T => {
    const subWords = new Uint32Array(8);
    hchacha(SIGMA, keyWords, words(nonce.subarray(0, 16)), subWords);
    const subkey = new Uint8Array(subWords.buffer);
    const innerNonce = new Uint8Array(12);
    innerNonce.set(nonce.subarray(16, 24), 4);
    try {
      return run(chachaKey(crypto, subkey), innerNonce);
    } finally {
      subkey.fill(0);
    }
  };
  return {
    seal: (nonce, plaintext, aad, out) => withSubkey(nonce, (inner, n) => inner.seal(n, plaintext, aad, out)),
    open: (nonce, ciphertextAndTag, aad, out) =>
      withSubkey(nonce, (inner, n) => inner.open(n, ciphertextAndTag, aad, out)),
  };
}

function macKey(crypto: NodeCrypto, key: Uint8Array): MacKey {
  const k = crypto.createSecretKey(key);
  return { mac: (message) => crypto.createHmac('sha256', k).update(message).digest() };
}

/** RFC 5869 extract-then-expand on createHmac, for inputs hkdfSync refuses. */
function hkdfByHmac(crypto: NodeCrypto, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = crypto.createHmac('sha256', salt).update(ikm).digest();
  const okm = new Uint8Array(length);
  let previous: Uint8Array = new Uint8Array(0);
  for (let offset = 0, counter = 1; offset < length; offset += 32, counter++) {
    previous = crypto.createHmac('sha256', prk).update(previous).update(info).update(Uint8Array.of(counter)).digest();
    okm.set(previous.subarray(0, Math.min(32, length - offset)), offset);
  }
  prk.fill(0);
  previous.fill(0);
  return okm;
}

/** Creates the node:crypto engine from the loaded module. */
export function createNodeEngine(crypto: NodeCrypto): Engine {
  return {
    name: 'node',
    // A KeyObject keeps the key out of the JS heap and saves a copy per call.
    chacha20Poly1305: (key) => chachaKey(crypto, crypto.createSecretKey(key)),
    xchacha20Poly1305: (key) => xchachaKey(crypto, key),
    aesSiv: (key) => nodeAesSiv(crypto, key),
    hmacSha256: (key) => macKey(crypto, key),
    hkdfSha256(ikm, salt, info, length) {
      // hkdfSync also refuses an empty ikm (a zero-length KeyObject).
      if (info.length > HKDF_SYNC_MAX_INFO || ikm.length === 0) return hkdfByHmac(crypto, ikm, salt, info, length);
      return new Uint8Array(crypto.hkdfSync('sha256', ikm, salt, info, length));
    },
    randomFill(out) {
      crypto.randomFillSync(out);
    },
  };
}
