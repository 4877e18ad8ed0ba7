/**
 * The one {@link CipherHandle} implementation both backends extend. It checks every argument once,
 * at the public entry, and owns the per-item batch loop and the async forms of a backend without a
 * thread pool. A backend supplies `seal` and `open` on checked arguments (an optional row AD
 * included), and may replace a batch form with its own (the native one crosses into Rust once per
 * batch).
 */
import type { Buffer } from 'node:buffer';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { ownedBytes } from '../format/bytes.js';
import { type EnvelopeLayout, envelopeLayout } from '../format/envelope.js';
import { checkValue } from '../format/value-codec.js';
import { assertArray, checkPlaintext, eachItem, plaintextLengths, requestedThreads, settleLater, wipeAll } from './batch.js';
import type { BackendName, BatchOptions, CipherHandle, DecryptedBatch, PlainInput, TaggedValue } from './types.js';

function inputError(message: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.input, message);
}

/** An envelope argument as {@link ownedBytes}: a shared or resizable view is copied once. */
export function envelopeArg(envelope: unknown): Uint8Array {
  if (!(envelope instanceof Uint8Array)) throw inputError('envelope must be a Uint8Array');
  return ownedBytes(envelope);
}

/** An optional row AD argument, as {@link ownedBytes}. */
export function rowAdArg(rowAd: unknown): Uint8Array | undefined {
  if (rowAd === undefined) return undefined;
  if (!(rowAd instanceof Uint8Array)) throw inputError('rowAd must be a Uint8Array');
  return ownedBytes(rowAd);
}

export abstract class BaseCipherHandle implements CipherHandle {
  readonly keyVersion: number;
  readonly algorithm: number;
  /** Where the plaintext sits in this handle's envelopes, and what they add to it. */
  protected readonly layout: EnvelopeLayout;
  /** Handles of one backend only re-encrypt into each other. */
  protected abstract readonly backend: BackendName;

  constructor(algorithm: number, keyVersion: number) {
    const layout = envelopeLayout(algorithm);
    if (layout === undefined) throw new SifreDBError(ERROR_CODES.backend, `unknown algorithm id ${algorithm}`);
    this.algorithm = algorithm;
    this.keyVersion = keyVersion;
    this.layout = layout;
  }

  /** Seals checked `typeTag ‖ value`, bound to `rowAd` when given. */
  protected abstract seal(value: PlainInput, typeTag: number, rowAd: Uint8Array | undefined): Buffer;

  /** Opens an owned envelope (sealed with `rowAd`, if any); returns `typeTag ‖ value`. */
  protected abstract open(envelope: Uint8Array, rowAd: Uint8Array | undefined): Buffer;

  /** {@link open} with the type tag apart. */
  protected openTagged(envelope: Uint8Array, rowAd: Uint8Array | undefined): TaggedValue {
    const plaintext = this.open(envelope, rowAd);
    return { typeTag: plaintext[0]!, value: plaintext.subarray(1) };
  }

  /** Seals checked values (`lens[i]`: plaintext length, type tag included); one item at a time here. */
  protected sealMany(values: PlainInput[], typeTags: Uint8Array, _lens: Uint32Array): Buffer[] {
    return eachItem(values.length, 'values', (i) => this.seal(values[i]!, typeTags[i]!, undefined));
  }

  encrypt(value: PlainInput, typeTag: number, rowAd?: Uint8Array): Buffer {
    checkPlaintext(value, typeTag);
    return this.seal(value, typeTag, rowAdArg(rowAd));
  }

  decrypt(envelope: Uint8Array, rowAd?: Uint8Array): Buffer {
    return this.open(envelopeArg(envelope), rowAdArg(rowAd));
  }

  decryptTagged(envelope: Uint8Array, rowAd?: Uint8Array): TaggedValue {
    return this.openTagged(envelopeArg(envelope), rowAdArg(rowAd));
  }

  encryptMany(values: PlainInput[], typeTags: Uint8Array): Buffer[] {
    const lens = plaintextLengths(values, typeTags);
    return lens.length === 0 ? [] : this.sealMany(values, typeTags, lens);
  }

  decryptMany(envelopes: Uint8Array[]): Buffer[] {
    assertArray(envelopes, 'envelopes');
    // Plaintexts already decrypted are in the caller's hands only on success.
    return eachItem(envelopes.length, 'envelopes', (i) => this.open(envelopeArg(envelopes[i]), undefined), wipeAll);
  }

  decryptManyValues(envelopes: Uint8Array[]): DecryptedBatch {
    const plaintexts = this.decryptMany(envelopes);
    const typeTags = new Uint8Array(plaintexts.length);
    const values = plaintexts.map((plaintext, i) => {
      typeTags[i] = plaintext[0]!;
      return plaintext.subarray(1);
    });
    return { values, typeTags };
  }

  reencryptMany(envelopes: Uint8Array[], target: CipherHandle): Buffer[] {
    const to = this.target(target);
    const plaintexts = this.decryptMany(envelopes);
    try {
      return eachItem(plaintexts.length, 'envelopes', (i) => {
        const plaintext = plaintexts[i]!;
        // A value no reader accepts is refused, not sealed anew under the target key.
        checkValue(plaintext[0]!, plaintext.subarray(1));
        return to.seal(plaintext.subarray(1), plaintext[0]!, undefined);
      });
    } finally {
      wipeAll(plaintexts);
    }
  }

  encryptManyAsync(values: PlainInput[], typeTags: Uint8Array, options?: BatchOptions): Promise<Buffer[]> {
    return settleLater(() => {
      requestedThreads(options);
      return this.encryptMany(values, typeTags);
    });
  }

  decryptManyValuesAsync(envelopes: Uint8Array[], options?: BatchOptions): Promise<DecryptedBatch> {
    return settleLater(() => {
      requestedThreads(options);
      return this.decryptManyValues(envelopes);
    });
  }

  reencryptManyAsync(envelopes: Uint8Array[], target: CipherHandle, options?: BatchOptions): Promise<Buffer[]> {
    return settleLater(() => {
      requestedThreads(options);
      return this.reencryptMany(envelopes, target);
    });
  }

  /** `target` as a handle of this backend (re-encryption hands plaintexts from one to the other). */
  protected target(target: CipherHandle): BaseCipherHandle {
    if (!(target instanceof BaseCipherHandle) || target.backend !== this.backend) {
      throw inputError(`target must be a cipher handle of the same (${this.backend}) backend`);
    }
    return target;
  }
}
