/** A native blind-index key as a {@link BlindIndexHandle}. */
import { Buffer } from 'node:buffer';
import { asSifreDBError } from '../../errors.js';
import { isWellFormed } from '../../format/utf8.js';
import { assertArray } from '../batch.js';
import type { BlindIndexHandle } from '../types.js';
import type * as Addon from '../../../index.js';
import { batchFailure, type FastPath, inputError } from './addon.js';
import { checkBits } from './cipher.js';
import { packBytes } from './staging.js';
import { view } from './views.js';

/** A native blind-index key as a {@link BlindIndexHandle}, on the fast path like the ciphers. */
export class NativeBlindIndexHandle implements BlindIndexHandle {
  readonly keyVersion: number;
  readonly #fast: FastPath;
  readonly #handle: object;

  constructor(index: Addon.NativeBlindIndex, fast: FastPath, keyVersion: number) {
    this.keyVersion = keyVersion;
    this.#fast = fast;
    this.#handle = index.handle();
  }

  compute(message: Uint8Array, bits: number): Buffer {
    if (!(message instanceof Uint8Array)) throw inputError('message must be a Uint8Array');
    return this.#term(bits, (out) => this.#fast.mac(this.#handle, message, bits, out));
  }

  computeField(field: string | Uint8Array, bits: number): Buffer {
    if (typeof field === 'string') {
      if (!isWellFormed(field)) throw inputError('field contains a lone surrogate');
    } else if (!(field instanceof Uint8Array)) {
      throw inputError('field must be a string or a Uint8Array');
    }
    return this.#term(bits, (out) => this.#fast.macField(this.#handle, field, bits, out));
  }

  /** A term of `bits` written by `mac` into a new buffer. */
  #term(bits: number, mac: (out: Buffer) => void): Buffer {
    checkBits(bits);
    const out = Buffer.allocUnsafe((bits + 7) >>> 3);
    try {
      mac(out);
    } catch (error) {
      throw asSifreDBError(error);
    }
    return out;
  }

  computeMany(messages: Uint8Array[], bits: number): Buffer[] {
    assertArray(messages, 'messages');
    checkBits(bits);
    const n = messages.length;
    if (n === 0) return [];
    const { buf, lens } = packBytes(messages, 'messages', 'message', true);
    const length = (bits + 7) >>> 3;
    const out = Buffer.allocUnsafe(n * length);
    try {
      this.#fast.macMany(this.#handle, buf, lens, bits, out);
    } catch (error) {
      throw batchFailure(error, 'messages');
    } finally {
      // The messages are normalised plaintext.
      buf.fill(0);
    }
    const terms = new Array<Buffer>(n);
    const ab = out.buffer;
    for (let i = 0, at = out.byteOffset; i < n; i++, at += length) terms[i] = view(ab, at, length);
    return terms;
  }
}

