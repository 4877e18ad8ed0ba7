/** A native cipher on the shared handle: every operation one call of a fast-path function. */
import { Buffer } from 'node:buffer';
import { asSifreDBError } from '../../errors.js';
import { ownedBytes } from '../../format/bytes.js';
import { assertArray, checkPlaintext, plaintextLengths, requestedThreads } from '../batch.js';
import { BaseCipherHandle, rowAdArg } from '../cipher-handle.js';
import type { BatchOptions, CipherHandle, DecryptedBatch, PlainInput, TaggedValue } from '../types.js';
import type * as Addon from '../../../index.js';
import { batchFailure, call, type FastPath, inputError } from './addon.js';
import { defaultThreads, inParts } from './parts.js';
import {
  openOutput,
  packPlaintexts,
  releaseStaging,
  resealOutput,
  SCRATCH,
  SCRATCH_VALUE,
  SMALL_OUTPUT,
  stageBytes,
  stagePlaintexts,
} from './staging.js';
import { envelopeViews, plaintextViews, typeTagsOf, view } from './views.js';

/** A string, or bytes as {@link ownedBytes} (for napi-rs, which reads them after the call starts). */
function ownedValue(value: PlainInput): PlainInput {
  return typeof value === 'string' ? value : ownedBytes(value);
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
export class NativeCipherHandle extends BaseCipherHandle {
  protected readonly backend = 'native';
  readonly #cipher: Addon.NativeCipher;
  readonly #fast: FastPath;
  readonly #handle: object;

  /** `keyVersion` and `algorithm` come from the caller, who knows them: each napi-rs getter costs ~0.3 µs. */
  constructor(cipher: Addon.NativeCipher, fast: FastPath, keyVersion: number, algorithm: number) {
    super(algorithm, keyVersion);
    this.#cipher = cipher;
    this.#fast = fast;
    this.#handle = cipher.handle();
  }

  protected seal(value: PlainInput, typeTag: number, rowAd: Uint8Array | undefined): Buffer {
    // Row binding: one napi-rs call on the NativeCipher object (not the fast path).
    if (rowAd !== undefined) return call(() => this.#cipher.encryptBound(ownedValue(value), typeTag, rowAd));
    const { plaintextOffset: offset, overhead } = this.layout;
    let out: Buffer;
    if (typeof value === 'string') {
      out = Buffer.allocUnsafe(Buffer.byteLength(value, 'utf8') + 1 + overhead);
      out.write(value, offset + 1);
    } else {
      out = Buffer.allocUnsafe(value.length + 1 + overhead);
      out.set(value, offset + 1);
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

  /** `envelope` is owned: its length and bytes cannot change under Rust. */
  protected open(envelope: Uint8Array, rowAd: Uint8Array | undefined): Buffer {
    // napi_create_buffer: an ArrayBuffer of its own, never Node's shared pool.
    if (rowAd !== undefined) return call(() => this.#cipher.decryptBound(envelope, rowAd));
    const length = envelope.length - this.layout.overhead;
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

  protected override openTagged(envelope: Uint8Array, rowAd: Uint8Array | undefined): TaggedValue {
    if (rowAd !== undefined) return super.openTagged(envelope, rowAd);
    const length = envelope.length - this.layout.overhead;
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

  /** Test-vector hook: a caller-chosen nonce (Rust refuses it for AES-SIV). */
  encryptWithNonce(value: PlainInput, typeTag: number, nonce: Uint8Array, rowAd?: Uint8Array): Buffer {
    checkPlaintext(value, typeTag);
    const [bytes, ad] = [ownedValue(value), rowAdArg(rowAd)];
    if (ad === undefined) return call(() => this.#cipher.encryptWithNonce(bytes, typeTag, nonce));
    return call(() => this.#cipher.encryptBoundWithNonce(bytes, typeTag, ad, nonce));
  }

  protected override sealMany(values: PlainInput[], typeTags: Uint8Array, lens: Uint32Array): Buffer[] {
    const { plaintextOffset, overhead } = this.layout;
    const buf = packPlaintexts(values, typeTags, lens, plaintextOffset, overhead);
    try {
      this.#fast.sealMany(this.#handle, buf, lens);
    } catch (error) {
      buf.fill(0);
      throw batchFailure(error, 'values');
    }
    return envelopeViews(buf, lens, overhead);
  }

  override async encryptManyAsync(values: PlainInput[], typeTags: Uint8Array, options?: BatchOptions): Promise<Buffer[]> {
    const threads = requestedThreads(options) ?? defaultThreads();
    const lens = plaintextLengths(values, typeTags);
    const n = lens.length;
    if (n === 0) return [];
    const { full, stage } = stagePlaintexts(values, typeTags, lens);
    const overhead = this.layout.overhead;
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
        () => envelopeViews(output, lens, overhead),
      );
    } finally {
      releaseStaging(full);
    }
  }

  override decryptMany(envelopes: Uint8Array[]): Buffer[] {
    const { output, plaintextLens } = this.#openMany(envelopes);
    return plaintextViews(output, plaintextLens, 0);
  }

  override decryptManyValues(envelopes: Uint8Array[]): DecryptedBatch {
    const { output, plaintextLens } = this.#openMany(envelopes);
    return { values: plaintextViews(output, plaintextLens, 1), typeTags: typeTagsOf(output, plaintextLens) };
  }

  override async decryptManyValuesAsync(envelopes: Uint8Array[], options?: BatchOptions): Promise<DecryptedBatch> {
    const threads = requestedThreads(options) ?? defaultThreads();
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return { values: [], typeTags: new Uint8Array(0) };
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const { output, plaintextLens } = openOutput(lens, this.layout.overhead);
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

  override reencryptMany(envelopes: Uint8Array[], target: CipherHandle): Buffer[] {
    const to = this.target(target) as NativeCipherHandle;
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return [];
    // The staged input is decrypted in place and wiped by Rust.
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const { output, plaintextLens } = resealOutput(lens, this.layout.overhead, to.layout.overhead, false);
    try {
      this.#fast.resealMany(this.#handle, to.#handle, stage, lens, output);
    } catch (error) {
      throw batchFailure(error, 'envelopes');
    } finally {
      releaseStaging(full);
    }
    return envelopeViews(output, plaintextLens, to.layout.overhead);
  }

  override async reencryptManyAsync(envelopes: Uint8Array[], target: CipherHandle, options?: BatchOptions): Promise<Buffer[]> {
    const threads = requestedThreads(options) ?? defaultThreads();
    const to = this.target(target) as NativeCipherHandle;
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return [];
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const toOverhead = to.layout.overhead;
    const { output, plaintextLens } = resealOutput(lens, this.layout.overhead, toOverhead, true);
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
        () => envelopeViews(output, plaintextLens, toOverhead),
      );
    } finally {
      releaseStaging(full);
    }
  }

  /** Decrypts a batch from a staged copy of the envelopes into one buffer of plaintexts. */
  #openMany(envelopes: Uint8Array[]): { output: Buffer; plaintextLens: Uint32Array } {
    assertArray(envelopes, 'envelopes');
    if (envelopes.length === 0) return { output: Buffer.alloc(0), plaintextLens: new Uint32Array(0) };
    const { full, stage, lens } = stageBytes(envelopes, 'envelopes', 'envelope');
    const opened = openOutput(lens, this.layout.overhead);
    try {
      this.#fast.openInto(this.#handle, stage, lens, opened.output);
    } catch (error) {
      throw batchFailure(error, 'envelopes');
    } finally {
      releaseStaging(full);
    }
    return opened;
  }
}
