/**
 * AES-256-SIV (RFC 5297) composed from OpenSSL's AES-CBC, AES-ECB and AES-CTR, because OpenSSL's own
 * SIV mode is not reachable through node:crypto's cipher API. Bytes are identical to @noble's aessiv.
 */
import type { KeyObject } from 'node:crypto';
import type { SivKey, SivWithAd } from './engine.js';

type NodeCrypto = typeof import('node:crypto');

const BLOCK = 16;
const ZERO_BLOCK = new Uint8Array(BLOCK);

/** In-place doubling in GF(2^128) (RFC 5297 §2.3, x^128 + x^7 + x^2 + x + 1). */
function dbl(block: Uint8Array): Uint8Array {
  // Branchless so the secret top bit does not steer control flow.
  const carry = block[0]! >>> 7;
  for (let i = 0; i < BLOCK - 1; i++) block[i] = ((block[i]! << 1) | (block[i + 1]! >>> 7)) & 0xff;
  block[BLOCK - 1] = ((block[BLOCK - 1]! << 1) & 0xff) ^ (0x87 & -carry);
  return block;
}

function xorInto(target: Uint8Array, targetOffset: number, source: Uint8Array): void {
  for (let i = 0; i < source.length; i++) target[targetOffset + i]! ^= source[i]!;
}

/** AES-CMAC (RFC 4493) with precomputed subkeys. */
class Cmac {
  readonly #crypto: NodeCrypto;
  readonly #key: KeyObject;
  readonly #k1: Uint8Array;
  readonly #k2: Uint8Array;

  constructor(crypto: NodeCrypto, key: KeyObject) {
    this.#crypto = crypto;
    this.#key = key;
    const ecb = crypto.createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const l = new Uint8Array(ecb.update(ZERO_BLOCK));
    ecb.final();
    this.#k1 = dbl(Uint8Array.from(l));
    this.#k2 = dbl(Uint8Array.from(this.#k1));
    l.fill(0);
  }

  /**
   * CMAC of `data` with `xorEnd` (16 bytes, when given) XORed onto its last 16 bytes — S2V's
   * `Sn xorend D` — without copying `data`: only its last one or two blocks are copied and edited.
   */
  mac(data: Uint8Array, xorEnd?: Uint8Array): Uint8Array {
    const n = data.length;
    const lastStart = n === 0 ? 0 : n % BLOCK === 0 ? n - BLOCK : n - (n % BLOCK);
    const tailStart = xorEnd === undefined ? lastStart : Math.floor((n - BLOCK) / BLOCK) * BLOCK;
    const tail = new Uint8Array(lastStart - tailStart + BLOCK);
    tail.set(data.subarray(tailStart));
    if (xorEnd !== undefined) xorInto(tail, n - BLOCK - tailStart, xorEnd);
    const lastOffset = lastStart - tailStart;
    if (n > 0 && n % BLOCK === 0) {
      xorInto(tail, lastOffset, this.#k1);
    } else {
      tail[n - tailStart] = 0x80;
      xorInto(tail, lastOffset, this.#k2);
    }
    const cbc = this.#crypto.createCipheriv('aes-256-cbc', this.#key, ZERO_BLOCK).setAutoPadding(false);
    if (tailStart > 0) cbc.update(data.subarray(0, tailStart));
    const out = cbc.update(tail);
    cbc.final();
    tail.fill(0);
    return new Uint8Array(out.subarray(out.length - BLOCK));
  }
}

/** Creates an AES-256-SIV key from 64 bytes (first half S2V, second half CTR). */
export function nodeAesSiv(crypto: NodeCrypto, key: Uint8Array): SivKey {
  const cmac = new Cmac(crypto, crypto.createSecretKey(key.subarray(0, 32)));
  const ctrKey = crypto.createSecretKey(key.subarray(32, 64));
  // S2V's D after the zero block; the same for every message under this key.
  const d0 = cmac.mac(ZERO_BLOCK);

  const ctr = (siv: Uint8Array, input: Uint8Array): Buffer => {
    const q = Uint8Array.from(siv);
    // RFC 5297 §2.6: clear bits 31 and 63 so counters carry the same on 32/64-bit implementations.
    q[8]! &= 0x7f;
    q[12]! &= 0x7f;
    const cipher = crypto.createCipheriv('aes-256-ctr', ctrKey, q);
    const out = cipher.update(input);
    cipher.final();
    return out;
  };

  /** SIV bound to `d1`, S2V's state after the associated data. */
  const bound = (d1: Uint8Array): SivWithAd => {
    const s2v = (plaintext: Uint8Array): Uint8Array => {
      if (plaintext.length >= BLOCK) return cmac.mac(plaintext, d1);
      const t = dbl(Uint8Array.from(d1));
      xorInto(t, 0, plaintext);
      t[plaintext.length]! ^= 0x80;
      return cmac.mac(t);
    };

    return {
      seal(plaintext) {
        const v = s2v(plaintext);
        const out = new Uint8Array(BLOCK + plaintext.length);
        out.set(v);
        out.set(ctr(v, plaintext), BLOCK);
        return out;
      },
      open(sivAndCiphertext) {
        const v = sivAndCiphertext.subarray(0, BLOCK);
        const plaintext = ctr(v, sivAndCiphertext.subarray(BLOCK));
        if (crypto.timingSafeEqual(s2v(plaintext), v)) return plaintext;
        plaintext.fill(0);
        return null;
      },
    };
  };

  return {
    withAd(ad: Uint8Array): SivWithAd {
      // D = dbl(D0) xor CMAC(ad): all of S2V that does not depend on the plaintext.
      const d1 = dbl(Uint8Array.from(d0));
      xorInto(d1, 0, cmac.mac(ad));
      return bound(d1);
    },
    withAdComponents(components: readonly Uint8Array[]): SivWithAd {
      // RFC 5297 §2.4: D = CMAC(0), then D = dbl(D) xor CMAC(Si) for each component in order.
      const d = Uint8Array.from(d0);
      for (const component of components) xorInto(dbl(d), 0, cmac.mac(component));
      return bound(d);
    },
  };
}
