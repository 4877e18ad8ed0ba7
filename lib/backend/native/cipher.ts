/** A native cipher as a {@link CipherHandle}: every operation one call of a fast-path function. */
import { Buffer } from 'node:buffer';
import { ERROR_CODES, SifreDBError, asSifreDBError } from '../../errors.js';
import { ownedBytes } from '../../format/bytes.js';
import { envelopeLayout } from '../../format/envelope.js';
import { isWellFormed } from '../../format/utf8.js';
import { assertArray, requestedThreads } from '../batch.js';
import type { BatchOptions, CipherHandle, DecryptedBatch, PlainInput, TaggedValue } from '../types.js';
import type * as Addon from '../../../index.js';
import { batchFailure, call, type FastPath, inputError } from './addon.js';
import { defaultThreads, inParts } from './parts.js';
import {
  type Packed,
  releaseStaging,
  SCRATCH,
  SCRATCH_VALUE,
  SMALL_OUTPUT,
  type Staged,
  stageBytes,
  takeStaging,
  valueLength,
  writeTagged,
} from './staging.js';
import { plaintextViews, typeTagsOf, view } from './views.js';

function checkTypeTag(typeTag: number): void {
  if ((typeTag & 0xff) !== typeTag) throw inputError('typeTag must be an integer in 0..255');
}

/** A string, or bytes as {@link ownedBytes}. */
function ownedValue(value: PlainInput): PlainInput {
  return typeof value === 'string' ? value : ownedBytes(value);
}

/** Argument checks of the row-bound calls (napi-rs would replace a lone surrogate silently). */
function checkBoundInput(value: PlainInput, typeTag: number, rowAd: Uint8Array): void {
  checkTypeTag(typeTag);
  if (typeof value === 'string') {
    if (!isWellFormed(value)) throw inputError('value contains a lone surrogate');
  } else if (!(value instanceof Uint8Array)) {
    throw inputError('value must be a Uint8Array or a string');
  }
  if (!(rowAd instanceof Uint8Array)) throw inputError('rowAd must be a Uint8Array');
}

export function checkBits(bits: number): void {
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 8 || bits > 256) {
    throw inputError('bits must be an integer in 8..256');
  }
}

/**
 * A native cipher as a {@link CipherHandle}. Every operation is one call of a fast-path function
 * on the cipher's external handle: JavaScript allocates the output (pooled `Buffer.allocUnsafe`)
 * and writes the plaintext into it, Rust seals it in place. A batch is one buffer and one call.
 */
export class NativeCipherHandle implements CipherHandle {
  readonly keyVersion: number;
  readonly algorithm: number;
  readonly #cipher: Addon.NativeCipher;
  readonly #fast: FastPath;
  readonly #handle: object;
  readonly #offset: number;
  readonly #overhead: number;

  /** `keyVersion` and `algorithm` come from the caller, who knows them: each napi-rs getter costs ~0.3 µs. */
  constructor(cipher: Addon.NativeCipher, fast: FastPath, keyVersion: number, algorithm: number) {
    this.keyVersion = keyVersion;
    this.algorithm = algorithm;
    this.#cipher = cipher;
    this.#fast = fast;
    this.#handle = cipher.handle();
    const layout = envelopeLayout(this.algorithm);
    if (layout === undefined) throw new SifreDBError(ERROR_CODES.backend, `unknown algorithm id ${this.algorithm}`);
    this.#offset = layout.plaintextOffset;
    this.#overhead = layout.overhead;
  }

  encrypt(value: PlainInput, typeTag: number): Buffer {
    checkTypeTag(typeTag);
    const offset = this.#offset;
    let out: Buffer;
    if (typeof value === 'string') {
      if (!isWellFormed(value)) throw inputError('value contains a lone surrogate');
      out = Buffer.allocUnsafe(Buffer.byteLength(value, 'utf8') + 1 + this.#overhead);
      out.write(value, offset + 1);
    } else if (value instanceof Uint8Array) {
      out = Buffer.allocUnsafe(value.length + 1 + this.#overhead);
      out.set(value, offset + 1);
    } else {
      throw inputError('value must be a Uint8Array or a string');
    }
    out[offset] = typeTag;
    try {
      this.#fast.seal(this.#handle, out);
    } catch (error) {
      out.fill(0);
      throw asSifreDBError(error);
    }
    return out;
  }

  decrypt(input: Uint8Array): Buffer {
    if (!(input instanceof Uint8Array)) throw inputError('envelope must be a Uint8Array');
    // A shared or resizable view is copied once, so its length and bytes cannot change under Rust.
    const envelope = ownedBytes(input);
    const length = envelope.length - this.#overhead;
    if (length > 0 && length <= SMALL_OUTPUT) {
      // A fresh small Buffer lives on the V8 heap; handing it to Rust would first move it off the
      // heap (an allocation costing more than the decryption). Rust decrypts into the off-heap
      // scratch instead, and the plaintext is copied out and the scratch wiped.
      const scratch = SCRATCH[length]!;
      try {
        this.#fast.open(this.#handle, envelope, scratch);
      } catch (error) {
        throw asSifreDBError(error);
      }
      const out = Buffer.allocUnsafeSlow(length);
      out.set(scratch);
      scratch.fill(0);
      return out;
    }
    // Plaintexts never go to Node's shared Buffer pool (see __test__/buffer-pool.spec.js). Too
    // short an envelope: Rust reports the header problem or the truncation, in that order.
    const out = Buffer.allocUnsafeSlow(length > 0 ? length : 0);
    try {
      this.#fast.open(this.#handle, envelope, out);
    } catch (error) {
      throw asSifreDBError(error);
    }
    return out;
  }

  decryptTagged(input: Uint8Array): TaggedValue {
    if (!(input instanceof Uint8Array)) throw inputError('envelope must be a Uint8Array');
    const envelope = ownedBytes(input);
    const length = envelope.length - this.#overhead;
    if (length > 0 && length <= SMALL_OUTPUT + 1) {
      const scratch = SCRATCH[length]!;
      try {
        this.#fast.open(this.#handle, envelope, scratch);
      } catch (error) {
        throw asSifreDBError(error);
      }
      const typeTag = scratch[0]!;
      const value = Buffer.allocUnsafeSlow(length - 1);
      value.set(SCRATCH_VALUE[length - 1]!);
      scratch.fill(0);
      return { typeTag, value };
    }
    const out = Buffer.allocUnsafeSlow(length > 0 ? length : 0);
    try {
      this.#fast.open(this.#handle, envelope, out);
    } catch (error) {
      throw asSifreDBError(error);
    }
    return { typeTag: out[0]!, value: view(out.buffer, out.byteOffset + 1, length - 1) };
  }

  encryptWithNonce(value: PlainInput, typeTag: number, nonce: Uint8Array): Buffer {
    return call(() => this.#cipher.encryptWithNonce(value, typeTag, nonce));
  }

  // Row binding: one napi-rs call per value on the NativeCipher object (not the fast path).
  encryptBound(value: PlainInput, typeTag: number, rowAd: Uint8Array): Buffer {
    checkBoundInput(value, typeTag, rowAd);
    const [bytes, ad] = [ownedValue(value), ownedBytes(rowAd)];
    return call(() => this.#cipher.encryptBound(bytes, typeTag, ad));
  }

  decryptBound(envelope: Uint8Array, rowAd: Uint8Array): Buffer {
    if (!(envelope instanceof Uint8Array)) throw inputError('envelope must be a Uint8Array');
    if (!(rowAd instanceof Uint8Array)) throw inputError('rowAd must be a Uint8Array');
    const [bytes, ad] = [ownedBytes(envelope), ownedBytes(rowAd)];
    // napi_create_buffer: an ArrayBuffer of its own, never Node's shared pool.
    return call(() => this.#cipher.decryptBound(bytes, ad));
  }

  decryptTaggedBound(envelope: Uint8Array, rowAd: Uint8Array): TaggedValue {
    const plaintext = this.decryptBound(envelope, rowAd);
    return { typeTag: plaintext[0]!, value: plaintext.subarray(1) };
  }

  encryptBoundWithNonce(value: PlainInput, typeTag: number, rowAd: Uint8Array, nonce: Uint8Array): Buffer {
    checkBoundInput(value, typeTag, rowAd);
    const [bytes, ad] = [ownedValue(value), ownedBytes(rowAd)];
    return call(() => this.#cipher.encryptBoundWithNonce(bytes, typeTag, ad, nonce));
  }

  encryptMany(values: PlainInput[], typeTags: Uint8Array): Buffer[] {
    const n = this.#checkValues(values, typeTags);
    if (n === 0) return [];
    const { buf, lens } = this.#packPlaintexts(values, typeTags, false);
    try {
      this.#fast.sealMany(this.#handle, buf, lens);
    } catch (error) {
      buf.fill(0);
      throw batchFailure(error, 'values');
    }
    return this.#envelopes(buf, lens);
  }

  async encryptManyAsync(values: PlainInput[], typeTags: Uint8Array, options?: BatchOptions): Promise<Buffer[]> {
    const threads = requestedThreads(options) ?? defaultThreads();
    const n = this.#checkValues(values, typeTags);
    if (n === 0) return [];
    const { full, stage, lens } = this.#stagePlaintexts(values, typeTags);
    const overhead = this.#overhead;
    let total = 0;
    for (let i = 0; i < n; i++) total += lens[i]! + overhead;
    // Its first write happens on the thread pool (Rust copies each plaintext into its record).
    const output = Buffer.allocUnsafeSlow(total);
    try {
      return await inParts(
        threads,
        [
          { buf: output, lens, add: overhead },
          { buf: stage, lens, add: 0 },
        ],
        ([outPart, inPart], first, end) =>
          this.#fast.sealFromAsync(this.#handle, inPart!, lens.subarray(first, end), outPart!),
        'values',
        () => this.#envelopes(output, lens),
      );
    } finally {
      releaseStaging(full);
    }
  }

  decryptMany(envelopes: Uint8Array[]): Buffer[] {
    const { output, plaintextLens } = this.#openMany(envelopes);
    return plaintextViews(output, plaintextLens, 0);
  }

  decryptManyValues(envelopes: Uint8Array[]): DecryptedBatch {
    const { output, plaintextLens } = this.#openMany(envelopes);
    return { values: plaintextViews(output, plaintextLens, 1), typeTags: typeTagsOf(output, plaintextLens) };
  }

  async decryptManyValuesAsync(envelopes: Uint8Array[], options?: BatchOptions): Promise<DecryptedBatch> {
    const threads = requestedThreads(options) ?? defaultThreads();
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return { values: [], typeTags: new Uint8Array(0) };
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const { output, plaintextLens } = this.#openOutput(lens);
    try {
      const values = await inParts(
        threads,
        [
          { buf: stage, lens, add: 0 },
          { buf: output, lens: plaintextLens, add: 0 },
        ],
        ([inPart, outPart], first, end) =>
          this.#fast.openIntoAsync(this.#handle, inPart!, lens.subarray(first, end), outPart!),
        'envelopes',
        () => plaintextViews(output, plaintextLens, 1),
      );
      return { values, typeTags: typeTagsOf(output, plaintextLens) };
    } finally {
      releaseStaging(full);
    }
  }

  reencryptMany(envelopes: Uint8Array[], target: CipherHandle): Buffer[] {
    const to = this.#target(target);
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return [];
    // The staged input is decrypted in place and wiped by Rust.
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const { output, plaintextLens } = this.#resealOutput(lens, to, false);
    try {
      this.#fast.resealMany(this.#handle, to.#handle, stage, lens, output);
    } catch (error) {
      throw batchFailure(error, 'envelopes');
    } finally {
      releaseStaging(full);
    }
    return to.#envelopes(output, plaintextLens);
  }

  async reencryptManyAsync(envelopes: Uint8Array[], target: CipherHandle, options?: BatchOptions): Promise<Buffer[]> {
    const threads = requestedThreads(options) ?? defaultThreads();
    const to = this.#target(target);
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return [];
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const { output, plaintextLens } = this.#resealOutput(lens, to, true);
    const toOverhead = to.#overhead;
    try {
      return await inParts(
        threads,
        [
          { buf: stage, lens, add: 0 },
          { buf: output, lens: plaintextLens, add: toOverhead },
        ],
        ([inPart, outPart], first, end) =>
          this.#fast.resealManyAsync(this.#handle, to.#handle, inPart!, lens.subarray(first, end), outPart!),
        'envelopes',
        () => to.#envelopes(output, plaintextLens),
      );
    } finally {
      releaseStaging(full);
    }
  }

  #target(target: CipherHandle): NativeCipherHandle {
    if (!(target instanceof NativeCipherHandle)) {
      throw inputError('target must be a cipher handle of the same (native) backend');
    }
    return target;
  }

  /**
   * The output of a re-encryption: each plaintext keeps its length (too-short envelopes count as
   * one byte; Rust rejects them before anything is sealed).
   */
  #resealOutput(lens: Uint32Array, to: NativeCipherHandle, own: boolean): { output: Buffer; plaintextLens: Uint32Array } {
    const n = lens.length;
    const plaintextLens = new Uint32Array(n);
    const fromOverhead = this.#overhead;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const length = lens[i]! - fromOverhead;
      plaintextLens[i] = length > 0 ? length : 1;
      total += plaintextLens[i]! + to.#overhead;
    }
    return { output: own ? Buffer.allocUnsafeSlow(total) : Buffer.allocUnsafe(total), plaintextLens };
  }

  #checkValues(values: PlainInput[], typeTags: Uint8Array): number {
    assertArray(values, 'values');
    if (!(typeTags instanceof Uint8Array)) throw inputError('typeTags must be a Uint8Array');
    if (typeTags.length !== values.length) {
      throw inputError(`typeTags has ${typeTags.length} entries for ${values.length} values`);
    }
    return values.length;
  }

  /** Lays `typeTags[i] ‖ values[i]` at the plaintext offset of record `i` of one new buffer. */
  #packPlaintexts(values: PlainInput[], typeTags: Uint8Array, own: boolean): Packed {
    const n = values.length;
    const overhead = this.#overhead;
    const lens = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const length = valueLength(values[i], i);
      lens[i] = length + 1;
      total += length + 1 + overhead;
    }
    const buf = own ? Buffer.allocUnsafeSlow(total) : Buffer.allocUnsafe(total);
    let at = this.#offset;
    for (let i = 0; i < n; i++) {
      writeTagged(buf, at, typeTags[i]!, values[i]!);
      at += lens[i]! + overhead;
    }
    return { buf, lens };
  }

  /**
   * The output of a batch decryption: the plaintexts back to back (never in Node's shared pool),
   * sized from the envelopes (a too-short one takes no room; Rust reports it in order).
   */
  #openOutput(lens: Uint32Array): { output: Buffer; plaintextLens: Uint32Array } {
    const n = lens.length;
    const plaintextLens = new Uint32Array(n);
    const overhead = this.#overhead;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const length = lens[i]! - overhead;
      if (length > 0) {
        plaintextLens[i] = length;
        total += length;
      }
    }
    return { output: Buffer.allocUnsafeSlow(total), plaintextLens };
  }

  /** Decrypts a batch from a staged copy of the envelopes into one buffer of plaintexts. */
  #openMany(envelopes: Uint8Array[]): { output: Buffer; plaintextLens: Uint32Array } {
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return { output: Buffer.alloc(0), plaintextLens: new Uint32Array(0) };
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const opened = this.#openOutput(lens);
    try {
      this.#fast.openInto(this.#handle, stage, lens, opened.output);
    } catch (error) {
      throw batchFailure(error, 'envelopes');
    } finally {
      releaseStaging(full);
    }
    return opened;
  }

  /** Views of the sealed records (`plaintextLens[i] + overhead` bytes each). */
  #envelopes(buf: Buffer, plaintextLens: Uint32Array): Buffer[] {
    const n = plaintextLens.length;
    const out = new Array<Buffer>(n);
    const overhead = this.#overhead;
    const ab = buf.buffer;
    let at = buf.byteOffset;
    for (let i = 0; i < n; i++) {
      const size = plaintextLens[i]! + overhead;
      out[i] = view(ab, at, size);
      at += size;
    }
    return out;
  }

  /**
   * Lays `typeTags[i] ‖ values[i]` back to back in a staging buffer (for
   * `sifredb_core::seal_records_from`, which wipes it).
   */
  #stagePlaintexts(values: PlainInput[], typeTags: Uint8Array): Staged {
    const n = values.length;
    const lens = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const length = valueLength(values[i], i);
      lens[i] = length + 1;
      total += length + 1;
    }
    const full = takeStaging(total);
    let at = 0;
    for (let i = 0; i < n; i++) {
      writeTagged(full, at, typeTags[i]!, values[i]!);
      at += lens[i]!;
    }
    return { full, stage: full.subarray(0, total), lens };
  }
}

