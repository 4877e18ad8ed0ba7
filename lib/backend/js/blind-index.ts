/** Blind-index handles: truncated HMAC-SHA256 under a per-(context, index) key (docs/FORMAT.md). */
import { SifreDBError } from '../../errors.js';
import type { BlindIndexHandle } from '../types.js';
import { assertBytes, assertInteger } from './bytes.js';
import { toBuffer, writeU32BE } from '../../format/bytes.js';
import { isWellFormed } from '../../format/well-formed.js';

const utf8 = new TextEncoder();
import type { MacKey } from './engine.js';

/** Keeps the first `ceil(bits/8)` bytes of `mac` and zeroes the unused low-order bits of the last one. */
export function truncateBits(mac: Uint8Array, bits: number): Uint8Array {
  const term = mac.subarray(0, Math.ceil(bits / 8));
  const spare = term.length * 8 - bits;
  if (spare > 0) term[term.length - 1]! &= (0xff << spare) & 0xff;
  return term;
}

/** One blind index's HMAC key. */
export class BlindIndex implements BlindIndexHandle {
  readonly keyVersion: number;
  readonly #mac: MacKey;

  constructor(keyVersion: number, mac: MacKey) {
    this.keyVersion = keyVersion;
    this.#mac = mac;
  }

  compute(message: Uint8Array, bits: number): Buffer {
    assertBytes(message, 'message');
    assertInteger(bits, 'bits', 8, 256);
    return toBuffer(truncateBits(this.#mac.mac(message), bits));
  }

  computeField(field: string | Uint8Array, bits: number): Buffer {
    let bytes: Uint8Array;
    if (typeof field === 'string') {
      if (!isWellFormed(field)) throw new SifreDBError('ERR_SIFREDB_INPUT', 'field contains a lone surrogate');
      bytes = utf8.encode(field);
    } else {
      assertBytes(field, 'field');
      bytes = field;
    }
    const message = new Uint8Array(4 + bytes.length);
    writeU32BE(message, 0, bytes.length);
    message.set(bytes, 4);
    if (bytes !== field) bytes.fill(0);
    try {
      return this.compute(message, bits);
    } finally {
      message.fill(0);
    }
  }

  computeMany(messages: Uint8Array[], bits: number): Buffer[] {
    if (!Array.isArray(messages)) throw new SifreDBError('ERR_SIFREDB_INPUT', 'messages must be an array');
    assertInteger(bits, 'bits', 8, 256);
    return messages.map((message, i) => {
      if (!(message instanceof Uint8Array)) {
        throw new SifreDBError('ERR_SIFREDB_INPUT', `messages[${i}]: message must be a Uint8Array`);
      }
      return toBuffer(truncateBits(this.#mac.mac(message), bits));
    });
  }
}
