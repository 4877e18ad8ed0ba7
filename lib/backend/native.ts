import { Buffer } from 'node:buffer';
import { availableParallelism } from 'node:os';
import { ERROR_CODES, SifreDBError, asSifreDBError } from '../errors.js';
import { ownedBytes } from '../format/bytes.js';
import { isWellFormed } from '../format/utf8.js';
import { assertArray, errorIndex, indexedError, requestedThreads } from './batch.js';
import { ALGORITHM, envelopeLayout } from '../format/envelope.js';
import type {
  Backend,
  BatchOptions,
  BlindIndexHandle,
  CipherHandle,
  DecryptedBatch,
  PlainInput,
  Primitives,
  RandomizedAlgorithmId,
  RootKeyHandle,
  TaggedValue,
} from './types.js';
import { type AddonModule, loadAddon } from './addon-loader.js';
import type * as Addon from '../../index.js';

/** Rust reports its own typed errors; napi-rs conversion failures get `ERR_SIFREDB_INPUT`. */
function call<T>(operation: () => T): T {
  try {
    return operation();
  } catch (error) {
    throw asSifreDBError(error);
  }
}

function requireBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new SifreDBError(ERROR_CODES.input, `${name} must be a Uint8Array`);
  }
}

/** {@link requireBytes}, then the bytes as {@link ownedBytes}: a shared or resizable view is copied once. */
function owned(value: unknown, name: string): Uint8Array {
  requireBytes(value, name);
  return ownedBytes(value);
}

function nativePrimitives(addon: AddonModule): Primitives {
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

/** The fast-path functions of the addon (`fastPath()` in `src/lib.rs`, documented in `src/fast/calls.rs`). */
type FastPath = ReturnType<AddonModule['fastPath']>;

/** A constructor of `Buffer` views on an ArrayBuffer. */
type ViewMaker = (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer;

/**
 * Makes `Buffer` views as cheaply as Node does internally: `Buffer[Symbol.species]` is Node's own
 * `FastBuffer` class, whose instances are ordinary Buffers (prototype `Buffer.prototype`), and
 * `new FastBuffer(ab, offset, length)` costs about a third of `Buffer.from(ab, offset, length)`,
 * which matters when a batch returns 100,000 of them. Checked once; falls back to `Buffer.from`.
 */
function viewMaker(): ViewMaker {
  try {
    const Species = (Buffer as unknown as { [Symbol.species]?: new (b: ArrayBufferLike, o: number, l: number) => Buffer })[
      Symbol.species
    ];
    if (typeof Species === 'function') {
      const probe = new Species(new ArrayBuffer(4), 1, 2);
      if (Object.getPrototypeOf(probe) === Buffer.prototype && probe.byteOffset === 1 && probe.length === 2) {
        return (buffer, byteOffset, length) => new Species(buffer, byteOffset, length);
      }
    }
  } catch {
    // fall through
  }
  return (buffer, byteOffset, length) => Buffer.from(buffer, byteOffset, length);
}

const view = viewMaker();

/**
 * Outputs up to this size are decrypted into {@link SCRATCH} and copied out: V8 keeps typed arrays
 * this small on its heap (`--typed-array-max-size-in-heap`, 64 bytes), and handing one to Rust
 * would first move it off the heap — an allocation costing more than the decryption.
 */
const SMALL_OUTPUT = 64;

/**
 * Off-heap scratch for small plaintexts, wiped after every use: `SCRATCH[n]` views its first `n`
 * bytes (a whole plaintext), `SCRATCH_VALUE[n]` the `n` bytes after the type tag.
 */
const { SCRATCH, SCRATCH_VALUE } = (() => {
  const scratch = Buffer.allocUnsafeSlow(4 * SMALL_OUTPUT).fill(0);
  const views = (from: number): Buffer[] =>
    Array.from({ length: SMALL_OUTPUT + 2 }, (_, n) => scratch.subarray(from, from + n));
  return { SCRATCH: views(0), SCRATCH_VALUE: views(1) };
})();

/** Below this many bytes a batch is not worth splitting across threads. */
const MIN_PART_BYTES = 16 * 1024;

// Read on first use, not at import: Deno asks for --allow-sys to read it.
let threadCount: number | undefined;
const defaultThreads = (): number => (threadCount ??= Math.max(1, availableParallelism()));

function inputError(message: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.input, message);
}

/** A native batch failure (`index` relative to the run given) as the error of item `base + index`. */
function batchFailure(error: unknown, name: string, base = 0): SifreDBError {
  const index = errorIndex(error);
  return index === undefined ? asSifreDBError(error) : indexedError(error, name, base + index);
}

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

function checkBits(bits: number): void {
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 8 || bits > 256) {
    throw inputError('bits must be an integer in 8..256');
  }
}

/** The byte length of batch value `i`: a Uint8Array, or a well-formed string as UTF-8. */
function valueLength(value: PlainInput | undefined, i: number): number {
  if (typeof value === 'string') {
    if (!isWellFormed(value)) throw indexedError(inputError('value contains a lone surrogate'), 'values', i);
    return Buffer.byteLength(value, 'utf8');
  }
  if (value instanceof Uint8Array) return value.length;
  throw indexedError(inputError('value must be a Uint8Array or a string'), 'values', i);
}

/** Writes `typeTag ‖ value` at `at` (the value checked by {@link valueLength}). */
function writeTagged(buf: Buffer, at: number, typeTag: number, value: PlainInput): void {
  buf[at] = typeTag;
  if (typeof value === 'string') buf.write(value, at + 1);
  else buf.set(value, at + 1);
}

/** Values laid out as records of a batch: one buffer, and each record's plaintext or envelope length. */
interface Packed {
  readonly buf: Buffer;
  readonly lens: Uint32Array;
}

/**
 * Copies `items` (envelopes or blind-index messages) back to back into one new buffer. An async
 * batch gets a buffer of its own (`allocUnsafeSlow`), never reachable from user code, which the
 * thread pool may then read and write while JavaScript runs.
 */
function packBytes(items: readonly Uint8Array[], name: string, what: string, own: boolean): Packed {
  const { lens, total } = measureBytes(items, name, what);
  const buf = own ? Buffer.allocUnsafeSlow(total) : Buffer.allocUnsafe(total);
  copyBytes(items, lens, buf);
  return { buf, lens };
}

/** Checks that every item is bytes; their lengths and sum. */
function measureBytes(items: readonly Uint8Array[], name: string, what: string): { lens: Uint32Array; total: number } {
  const n = items.length;
  const lens = new Uint32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const item = items[i];
    if (!(item instanceof Uint8Array)) throw indexedError(inputError(`${what} must be a Uint8Array`), name, i);
    lens[i] = item.length;
    total += item.length;
  }
  return { lens, total };
}

/** Writes `items` back to back at the start of `into`. */
function copyBytes(items: readonly Uint8Array[], lens: Uint32Array, into: Buffer): void {
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    into.set(items[i]!, at);
    at += lens[i]!;
  }
}

/** Largest staging buffer kept for reuse, and how many are kept. */
const STAGING_KEEP_BYTES = 16 * 1024 * 1024;
const STAGING_KEEP_COUNT = 4;
const stagingFree: Buffer[] = [];

/**
 * A batch's input staged in a reused buffer (its own ArrayBuffer, never reachable from user code):
 * copying values into warm memory costs less than into a fresh allocation, whose first touch (page
 * faults) then happens in Rust — on the thread pool for async batches. `stage` is the used part of
 * `full`; give `full` back with {@link releaseStaging} once no call uses it any more.
 */
interface Staged {
  readonly full: Buffer;
  readonly stage: Buffer;
  readonly lens: Uint32Array;
}

function takeStaging(size: number): Buffer {
  for (let i = stagingFree.length - 1; i >= 0; i--) {
    if (stagingFree[i]!.length >= size) return stagingFree.splice(i, 1)[0]!;
  }
  return Buffer.allocUnsafeSlow(Math.max(size, 64 * 1024));
}

/** Returns a staging buffer to the free list. Plaintexts staged in it were wiped by Rust. */
function releaseStaging(full: Buffer): void {
  if (full.length <= STAGING_KEEP_BYTES && stagingFree.length < STAGING_KEEP_COUNT) stagingFree.push(full);
}

/** {@link packBytes} into a staging buffer. */
function stageBytes(items: readonly Uint8Array[], name: string, what: string): Staged {
  const { lens, total } = measureBytes(items, name, what);
  const full = takeStaging(total);
  copyBytes(items, lens, full);
  return { full, stage: full.subarray(0, total), lens };
}

/** A buffer of records in a batch: record `i` is `lens[i] + add` bytes. */
interface Records {
  readonly buf: Buffer;
  readonly lens: Uint32Array;
  readonly add: number;
}

/**
 * A batch split into parts, one per thread-pool task, of about equal bytes of the first buffer:
 * part `p` covers the same records of every buffer. `run` starts one part; every part is awaited
 * before failing, so that no task still writes into a buffer being wiped.
 */
async function inParts<T>(
  threads: number,
  buffers: readonly Records[],
  run: (bufs: Buffer[], first: number, end: number) => Promise<void>,
  name: string,
  meanwhile: () => T,
): Promise<T> {
  const primary = buffers[0]!;
  const count = primary.lens.length;
  const parts = Math.max(1, Math.min(threads, count, Math.floor(primary.buf.length / MIN_PART_BYTES)));
  // Record bounds of the parts: cut when the first buffer's bytes pass each part's share.
  const bounds = [0];
  const { lens, add } = primary;
  const share = primary.buf.length / parts;
  let bytes = 0;
  for (let i = 0; i < count && bounds.length < parts; i++) {
    bytes += lens[i]! + add;
    if (bytes >= share * bounds.length && i + 1 < count) bounds.push(i + 1);
  }
  bounds.push(count);
  const tasks: Promise<void>[] = [];
  const starts = buffers.map(() => 0);
  for (let p = 0; p + 1 < bounds.length; p++) {
    const first = bounds[p]!;
    const end = bounds[p + 1]!;
    const views = buffers.map((records, b) => {
      let size = 0;
      const { lens: l, add: a } = records;
      for (let i = first; i < end; i++) size += l[i]! + a;
      const start = starts[b]!;
      starts[b] = start + size;
      return records.buf.subarray(start, start + size);
    });
    tasks.push(run(views, first, end).catch((error: unknown) => Promise.reject(batchFailure(error, name, first))));
  }
  // JavaScript work that does not read the results (e.g. creating the result views) overlaps the
  // thread pool's; nothing made here reaches the caller before every part has succeeded.
  const made = meanwhile();
  const settled = await Promise.allSettled(tasks);
  let failure: SifreDBError | undefined;
  for (const result of settled) {
    if (result.status === 'rejected') {
      const error = result.reason as SifreDBError;
      if (failure === undefined || (errorIndex(error) ?? Infinity) < (errorIndex(failure) ?? Infinity)) failure = error;
    }
  }
  if (failure !== undefined) {
    for (const { buf } of buffers) buf.fill(0);
    throw failure;
  }
  return made;
}

/**
 * A native cipher as a {@link CipherHandle}. Every operation is one call of a fast-path function
 * on the cipher's external handle: JavaScript allocates the output (pooled `Buffer.allocUnsafe`)
 * and writes the plaintext into it, Rust seals it in place. A batch is one buffer and one call.
 */
class NativeCipherHandle implements CipherHandle {
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

/** Views of plaintexts laid back to back (`skip` = 1 leaves each type tag out). */
function plaintextViews(buf: Buffer, plaintextLens: Uint32Array, skip: number): Buffer[] {
  const n = plaintextLens.length;
  const out = new Array<Buffer>(n);
  const ab = buf.buffer;
  let at = buf.byteOffset;
  for (let i = 0; i < n; i++) {
    const size = plaintextLens[i]!;
    out[i] = view(ab, at + skip, size - skip);
    at += size;
  }
  return out;
}

/** The type tag (first byte) of each plaintext laid back to back. */
function typeTagsOf(buf: Buffer, plaintextLens: Uint32Array): Uint8Array {
  const n = plaintextLens.length;
  const tags = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    tags[i] = buf[at]!;
    at += plaintextLens[i]!;
  }
  return tags;
}

/** A native blind-index key as a {@link BlindIndexHandle}, on the fast path like the ciphers. */
class NativeBlindIndexHandle implements BlindIndexHandle {
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
    checkBits(bits);
    const out = Buffer.allocUnsafe((bits + 7) >>> 3);
    try {
      this.#fast.mac(this.#handle, message, bits, out);
    } catch (error) {
      throw asSifreDBError(error);
    }
    return out;
  }

  computeField(field: string | Uint8Array, bits: number): Buffer {
    if (typeof field === 'string') {
      if (!isWellFormed(field)) throw inputError('field contains a lone surrogate');
    } else if (!(field instanceof Uint8Array)) {
      throw inputError('field must be a string or a Uint8Array');
    }
    checkBits(bits);
    const out = Buffer.allocUnsafe((bits + 7) >>> 3);
    try {
      this.#fast.macField(this.#handle, field, bits, out);
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

function wrapRootKey(root: Addon.NativeRootKey, fast: FastPath): RootKeyHandle {
  const version = root.version;
  return {
    version,
    // Rust rejects any algorithm but 1 and 2 before a handle exists.
    randomizedCipher: (algorithm: RandomizedAlgorithmId, context: Uint8Array) =>
      new NativeCipherHandle(call(() => root.randomizedCipher(algorithm, context)), fast, version, algorithm),
    deterministicCipher: (context: Uint8Array) =>
      new NativeCipherHandle(call(() => root.deterministicCipher(context)), fast, version, ALGORITHM.aesSiv),
    blindIndex: (context: Uint8Array, indexName: Uint8Array) =>
      new NativeBlindIndexHandle(call(() => root.blindIndex(context, indexName)), fast, version),
  };
}

/** Loads the native addon, or reports why it cannot be loaded on this platform. */
export function loadNativeBackend(): { backend: Backend; error?: undefined } | { backend?: undefined; error: Error } {
  let addon: AddonModule;
  try {
    addon = loadAddon();
  } catch (error) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
  let fast: FastPath;
  try {
    fast = addon.fastPath();
  } catch (error) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
  const backend: Backend = {
    name: 'native',
    primitives: nativePrimitives(addon),
    importRootKey(version, material) {
      requireBytes(material, 'material');
      return wrapRootKey(call(() => new addon.NativeRootKey(version, material)), fast);
    },
  };
  return { backend };
}
