/**
 * What {@link Vault} and {@link DeterministicVault} share: value encoding, both ciphertext forms,
 * header-driven key-version selection, and re-encryption.
 */
import type { Buffer } from 'node:buffer';
import {
  assertArray,
  eachItem,
  type HandleRun,
  indexedError,
  runByHandle,
  runByHandleAsync,
  settleLater,
  splitByHandle,
  wipeAll,
} from '../backend/batch.js';
import type { BatchOptions, CipherHandle, DecryptedBatch, TaggedValue } from '../backend/types.js';
import { assertContext, type EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { type EnvelopeHeader, parseHeader } from '../format/envelope.js';
import { envelopeBytes } from '../format/inspect.js';
import {
  type BatchRowBindingOptions,
  encodeRowAd,
  hasRowAds,
  type RowAd,
  rowAdOf,
  rowAdsOf,
  type RowBindingOptions,
} from '../format/row-ad.js';
import { toText } from '../format/text.js';
import { decodeUtf8 } from '../format/utf8.js';
import {
  type DecryptedValue,
  describeType,
  type EncryptableValue,
  encodeValue,
  expectedType,
  VALUE_TAG,
  type ValueOf,
  type ValueType,
} from '../format/value-codec.js';
import type { Keyring } from '../keys/keyring.js';
import { checkOrWipe, decodeChecked, decodeMany, encodeValues, sameForm, sameHeader, tagsInOrder, wipeEncodings } from './batch-values.js';

/** Options of {@link BaseVault.decrypt}. */
export interface DecryptOptions<T extends ValueType = ValueType> extends RowBindingOptions {
  /**
   * The type the stored value must have; `decrypt` is then typed {@link ValueOf}`<T>` (e.g. `Date`
   * for `'date'`) and throws `ERR_SIFREDB_INPUT` for a value of another type.
   */
  expect?: T;
}

/** Options of {@link BaseVault.decryptMany} (and, with `threads`, of {@link BaseVault.decryptManyAsync}). */
export interface DecryptManyOptions<T extends ValueType = ValueType> extends BatchRowBindingOptions {
  /** The type every stored value must have (see {@link DecryptOptions.expect}). */
  expect?: T;
}

/** Options of {@link BaseVault.reencrypt}. */
export interface ReencryptOptions extends RowBindingOptions {
  /**
   * What the stored ciphertext is bound to, when that differs from `aad`: another row AD, or `null`
   * for an unbound ciphertext (to bind existing values to their rows). Default: `aad` (or unbound
   * when `aad` is not given).
   */
  previousAad?: RowAd | null;
}

/**
 * The shared surface of the two vaults. After `open` every method but {@link refresh} is
 * synchronous; a call validates its input, looks up the cached cipher handle for (context, key
 * version) and makes one backend call.
 */
export abstract class BaseVault {
  /** The loaded keys; share it with other vaults and blind indexes to load keys once. */
  readonly keyring: Keyring;

  protected constructor(keyring: Keyring) {
    this.keyring = keyring;
  }

  /** The cipher new ciphertexts of `ctx` are written with. */
  protected abstract encryptionCipher(ctx: EncryptionContext): CipherHandle;

  /** The cipher that opens an envelope with `header` (whose algorithm {@link checkAlgorithm} accepted). */
  protected abstract decryptionCipher(header: EnvelopeHeader, ctx: EncryptionContext): CipherHandle;

  /** Algorithm id this vault writes. */
  protected abstract readonly algorithmId: number;

  /**
   * Key version new ciphertexts are written under (of the single provider, or of a router's default
   * provider; use {@link currentVersionFor} with a tenant router).
   */
  get currentVersion(): number {
    return this.keyring.currentVersion;
  }

  /** Key version new ciphertexts of `ctx` are written under. */
  currentVersionFor(ctx: EncryptionContext): number {
    return this.keyring.currentVersionFor(ctx);
  }

  /**
   * Encrypts `value` for `ctx` under the current key version; returns the binary envelope.
   * Strings, bytes, numbers, bigints, booleans and Dates keep their type (see {@link decrypt});
   * `null`, arrays and plain objects are stored as JSON.
   *
   * `options.aad` binds the ciphertext to a row (docs/FORMAT.md, "Row binding"; SECURITY.md): pass
   * the row's primary key, and the same `aad` to every read. A string is bound as UTF-8, a number
   * (safe integer) or bigint as its decimal digits, bytes as they are — so `42`, `42n` and `'42'` are
   * the same binding.
   * @throws `ERR_SIFREDB_INPUT` for a bad context, a string with a lone surrogate or an unsupported
   *   value or `aad`.
   */
  encrypt(value: EncryptableValue, ctx: EncryptionContext, options?: RowBindingOptions): Buffer {
    assertContext(ctx);
    const rowAd = rowAdOf(options);
    const { tag, data } = encodeValue(value);
    try {
      return this.encryptionCipher(ctx).encrypt(data, tag, rowAd);
    } finally {
      // A number's, bigint's, boolean's or Date's encoding is our scratch copy; bytes are the caller's.
      if (tag !== VALUE_TAG.bytes && typeof data !== 'string') data.fill(0);
    }
  }

  /** Like {@link encrypt}, in the `sdb1:` text form for TEXT/VARCHAR columns. */
  encryptToString(value: EncryptableValue, ctx: EncryptionContext, options?: RowBindingOptions): string {
    return toText(this.encrypt(value, ctx, options));
  }

  /**
   * Decrypts a ciphertext (binary or `sdb1:` text) of `ctx` with the key version named in its header;
   * returns the value in the JS type it was encrypted from: a string, a number, a bigint, a boolean,
   * a `Date`, a JSON value (`null`, an array or a plain object) or, for bytes, a `Buffer`. Use
   * {@link decryptBytes} for the raw value bytes.
   *
   * `options.expect` names the type the value must have, and types the result:
   * `decrypt(ct, ctx, { expect: 'date' })` is a `Date`.
   *
   * Fails closed: input that is not a SifreDB ciphertext — such as a plaintext still in the column —
   * throws `ERR_SIFREDB_FORMAT`; nothing is ever passed through.
   * @throws `ERR_SIFREDB_FORMAT` (not a ciphertext, truncated, unsupported format or algorithm),
   *   `ERR_SIFREDB_KEY` (unknown key version), `ERR_SIFREDB_AUTH` (wrong context or key, tampered,
   *   or a row-bound ciphertext read without its `options.aad` or with another one),
   *   `ERR_SIFREDB_INPUT` (a bad `options.expect`, or a stored value of another type:
   *   `the stored value is a number, not a date`).
   */
  decrypt<T extends ValueType>(ciphertext: Uint8Array | string, ctx: EncryptionContext, options: DecryptOptions<T> & { expect: T }): ValueOf<T>;
  decrypt(ciphertext: Uint8Array | string, ctx: EncryptionContext, options?: DecryptOptions): DecryptedValue;
  decrypt(ciphertext: Uint8Array | string, ctx: EncryptionContext, options?: DecryptOptions): DecryptedValue {
    const expected = expectedType(options?.expect);
    return decodeChecked(this.#openTagged(ciphertext, ctx, rowAdOf(options)), expected);
  }

  /**
   * Like {@link decrypt}, returning the value's raw bytes whatever its type (a string's UTF-8, a
   * number's or a Date's float64, a bigint's decimal digits, JSON text …); the type tag is not
   * returned. Errors as for {@link decrypt}.
   */
  decryptBytes(ciphertext: Uint8Array | string, ctx: EncryptionContext, options?: RowBindingOptions): Buffer {
    const { typeTag, value } = this.#openTagged(ciphertext, ctx, rowAdOf(options));
    checkOrWipe(typeTag, value);
    return value;
  }

  /**
   * Decrypts a ciphertext that holds a string (see {@link decrypt} for errors); the same as
   * `decrypt(ciphertext, ctx, { expect: 'string' })`.
   * @throws `ERR_SIFREDB_INPUT` when the stored value is not a string.
   */
  decryptToString(ciphertext: Uint8Array | string, ctx: EncryptionContext, options?: RowBindingOptions): string {
    const { typeTag, value } = this.#openTagged(ciphertext, ctx, rowAdOf(options));
    if (typeTag !== VALUE_TAG.string) {
      value.fill(0);
      throw new SifreDBError(ERROR_CODES.input, `the stored value is ${describeType(typeTag)}, not a string; use decrypt()`);
    }
    try {
      return decodeUtf8(value, 'decrypted string');
    } finally {
      // The decrypted bytes are scratch here: only the JS string is handed out.
      value.fill(0);
    }
  }

  /**
   * True when `ciphertext` is not under the current key version (or, for a {@link Vault}, not under
   * its configured algorithm), i.e. {@link reencrypt} would change it. Reads the header only; pass
   * `ctx` when the vault routes keys by tenant.
   * @throws `ERR_SIFREDB_FORMAT` when it is not a ciphertext this vault reads.
   */
  needsReencryption(ciphertext: Uint8Array | string, ctx?: EncryptionContext): boolean {
    const header = parseHeader(envelopeBytes(ciphertext));
    this.checkAlgorithm(header);
    const current = ctx === undefined ? this.keyring.currentVersion : this.keyring.currentVersionFor(ctx);
    return header.keyVersion !== current || header.algorithmId !== this.algorithmId;
  }

  /**
   * Decrypts `ciphertext` with its own key version and encrypts the same value (same type) under the
   * current one. Returns the form it was given: text in, text out. The intermediate plaintext is
   * zeroed. Errors as for {@link decrypt}.
   *
   * With `options.aad` the value is read and written bound to that row AD; `options.previousAad`
   * reads it bound to another one, or unbound (`null`) — e.g. to bind existing values to their rows.
   */
  reencrypt(ciphertext: string, ctx: EncryptionContext, options?: ReencryptOptions): string;
  reencrypt(ciphertext: Uint8Array, ctx: EncryptionContext, options?: ReencryptOptions): Buffer;
  reencrypt(ciphertext: Uint8Array | string, ctx: EncryptionContext, options?: ReencryptOptions): Buffer | string;
  reencrypt(ciphertext: Uint8Array | string, ctx: EncryptionContext, options?: ReencryptOptions): Buffer | string {
    const rowAd = rowAdOf(options);
    let readAd = rowAd;
    if (options !== undefined && 'previousAad' in options) {
      readAd = options.previousAad === null ? undefined : encodeRowAd(options.previousAad as RowAd);
    }
    // Tag and value apart: a `subarray(1)` of a small decrypted Buffer would move it off V8's heap.
    const { typeTag, value } = this.#openTagged(ciphertext, ctx, readAd);
    checkOrWipe(typeTag, value);
    try {
      const envelope = this.encryptionCipher(ctx).encrypt(value, typeTag, rowAd);
      return typeof ciphertext === 'string' ? toText(envelope) : envelope;
    } finally {
      value.fill(0);
    }
  }

  /**
   * Batch form of {@link encrypt}: encrypts every value for `ctx` under the current key version with
   * one backend call, in order (the native backend returns views into one buffer).
   * @throws as {@link encrypt}, naming the first bad value: `values[i]: …`, with `error.index === i`.
   *   Nothing is returned.
   *
   * With `options.aad` (one row AD per value, see {@link encrypt}) each value is bound to its row and
   * sealed by its own backend call: the one-crossing batch speed applies to unbound batches only.
   * A bad `aad` entry is named `aad[i]`.
   */
  encryptMany(values: readonly EncryptableValue[], ctx: EncryptionContext, options?: BatchRowBindingOptions): Buffer[] {
    if (hasRowAds(options)) return this.#encryptManyBound(values, ctx, options);
    assertContext(ctx);
    const { data, tags } = encodeValues(values);
    try {
      return this.encryptionCipher(ctx).encryptMany(data, tags);
    } finally {
      wipeEncodings(data, tags);
    }
  }

  /**
   * Async form of {@link encryptMany}: the values are encoded and copied during the call, then sealed
   * on the libuv thread pool in `options.threads` parts (default: the available cores) while the event
   * loop stays free. See docs/PERFORMANCE.md (`UV_THREADPOOL_SIZE`).
   */
  async encryptManyAsync(
    values: readonly EncryptableValue[],
    ctx: EncryptionContext,
    options?: BatchOptions & BatchRowBindingOptions,
  ): Promise<Buffer[]> {
    if (hasRowAds(options)) return settleLater(() => this.#encryptManyBound(values, ctx, options));
    assertContext(ctx);
    const { data, tags } = encodeValues(values);
    let sealed: Promise<Buffer[]>;
    try {
      sealed = this.encryptionCipher(ctx).encryptManyAsync(data, tags, options);
    } finally {
      // The backend has copied the values before returning its promise.
      wipeEncodings(data, tags);
    }
    return sealed;
  }

  /**
   * Batch form of {@link decrypt}: every ciphertext (binary or `sdb1:` text) decrypted to the JS type
   * it was encrypted from, in order; each is read with the key version its header names. With
   * `options.expect` every value must be of that type.
   * @throws as {@link decrypt}, naming the first ciphertext that fails: `ciphertexts[i]: …`, with
   *   `error.index === i`. Nothing is returned and plaintexts already decrypted are wiped.
   */
  decryptMany<T extends ValueType>(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options: DecryptManyOptions<T> & { expect: T },
  ): ValueOf<T>[];
  decryptMany(ciphertexts: readonly (Uint8Array | string)[], ctx: EncryptionContext, options?: DecryptManyOptions): DecryptedValue[];
  decryptMany(ciphertexts: readonly (Uint8Array | string)[], ctx: EncryptionContext, options?: DecryptManyOptions): DecryptedValue[] {
    const expected = expectedType(options?.expect);
    if (hasRowAds(options)) return decodeMany(this.#decryptManyBound(ciphertexts, ctx, options), expected);
    const { envelopes, runs } = this.#batchRuns(ciphertexts, ctx);
    const runTags: Uint8Array[] = [];
    const values = runByHandle(runs, envelopes, 'ciphertexts', true, (handle, part) => {
      const batch = handle.decryptManyValues(part);
      runTags.push(batch.typeTags);
      return batch.values;
    });
    return decodeMany({ values, typeTags: tagsInOrder(runs, runTags, values.length) }, expected);
  }

  /** Async form of {@link decryptMany} (thread pool, `options.threads` parts; see {@link encryptManyAsync}). */
  async decryptManyAsync<T extends ValueType>(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options: BatchOptions & DecryptManyOptions<T> & { expect: T },
  ): Promise<ValueOf<T>[]>;
  async decryptManyAsync(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options?: BatchOptions & DecryptManyOptions,
  ): Promise<DecryptedValue[]>;
  async decryptManyAsync(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options?: BatchOptions & DecryptManyOptions,
  ): Promise<DecryptedValue[]> {
    const expected = expectedType(options?.expect);
    if (hasRowAds(options)) return settleLater(() => decodeMany(this.#decryptManyBound(ciphertexts, ctx, options), expected));
    const { envelopes, runs } = this.#batchRuns(ciphertexts, ctx);
    const runTags: Uint8Array[] = [];
    const values = await runByHandleAsync(runs, envelopes, 'ciphertexts', true, async (handle, part) => {
      const batch = await handle.decryptManyValuesAsync(part, options);
      runTags.push(batch.typeTags);
      return batch.values;
    });
    return decodeMany({ values, typeTags: tagsInOrder(runs, runTags, values.length) }, expected);
  }

  /**
   * Batch form of {@link decryptBytes}: the raw value bytes of every ciphertext, in order, with one
   * backend call per key version (the native backend returns views into one buffer). Errors as for
   * {@link decryptMany}.
   */
  decryptManyBytes(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options?: BatchRowBindingOptions,
  ): Buffer[] {
    if (hasRowAds(options)) return this.#decryptManyBound(ciphertexts, ctx, options).values;
    const { envelopes, runs } = this.#batchRuns(ciphertexts, ctx);
    return runByHandle(runs, envelopes, 'ciphertexts', true, (handle, part) => handle.decryptManyValues(part).values);
  }

  /** Async form of {@link decryptManyBytes} (thread pool, `options.threads` parts; see {@link encryptManyAsync}). */
  async decryptManyBytesAsync(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options?: BatchOptions & BatchRowBindingOptions,
  ): Promise<Buffer[]> {
    if (hasRowAds(options)) return settleLater(() => this.#decryptManyBound(ciphertexts, ctx, options).values);
    const { envelopes, runs } = this.#batchRuns(ciphertexts, ctx);
    return runByHandleAsync(runs, envelopes, 'ciphertexts', true, async (handle, part) => {
      return (await handle.decryptManyValuesAsync(part, options)).values;
    });
  }

  /**
   * Batch form of {@link reencrypt}: every ciphertext re-encrypted under the current key version, each
   * in the form it was given (text in, text out). The plaintexts never reach JavaScript with the
   * native backend. Errors as for {@link decryptMany}.
   */
  reencryptMany(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options?: BatchRowBindingOptions,
  ): (Buffer | string)[] {
    if (hasRowAds(options)) return this.#reencryptManyBound(ciphertexts, ctx, options);
    const { envelopes, runs } = this.#batchRuns(ciphertexts, ctx);
    const target = this.encryptionCipher(ctx);
    const out = runByHandle(runs, envelopes, 'ciphertexts', false, (handle, part) => handle.reencryptMany(part, target));
    return sameForm(ciphertexts, out);
  }

  /** Async form of {@link reencryptMany} (thread pool, `options.threads` parts; see {@link encryptManyAsync}). */
  async reencryptManyAsync(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options?: BatchOptions & BatchRowBindingOptions,
  ): Promise<(Buffer | string)[]> {
    if (hasRowAds(options)) return settleLater(() => this.#reencryptManyBound(ciphertexts, ctx, options));
    const { envelopes, runs } = this.#batchRuns(ciphertexts, ctx);
    const target = this.encryptionCipher(ctx);
    const out = await runByHandleAsync(runs, envelopes, 'ciphertexts', false, (handle, part) =>
      handle.reencryptManyAsync(part, target, options),
    );
    return sameForm(ciphertexts, out);
  }

  /**
   * The envelopes of a batch and the cipher handle of each (by header: a batch read after a rotation
   * may mix key versions). Header bytes equal to the previous envelope's reuse its handle.
   */
  #batchRuns(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
  ): { envelopes: Uint8Array[]; runs: HandleRun<CipherHandle>[] } {
    assertContext(ctx);
    assertArray(ciphertexts, 'ciphertexts');
    const n = ciphertexts.length;
    const envelopes = new Array<Uint8Array>(n);
    const handles = new Array<CipherHandle>(n);
    let last: Uint8Array | undefined;
    let handle: CipherHandle | undefined;
    for (let i = 0; i < n; i++) {
      try {
        const envelope = envelopeBytes(ciphertexts[i]);
        if (last === undefined || !sameHeader(envelope, last)) {
          const header = parseHeader(envelope);
          this.checkAlgorithm(header);
          handle = this.decryptionCipher(header, ctx);
          last = envelope;
        }
        envelopes[i] = envelope;
        handles[i] = handle!;
      } catch (error) {
        throw indexedError(error, 'ciphertexts', i);
      }
    }
    return { envelopes, runs: splitByHandle(n, (i) => handles[i]!) };
  }

  /** Reloads the keys (after a rotation); see {@link Keyring.refresh}. */
  refresh(): Promise<void> {
    return this.keyring.refresh();
  }

  /** Throws `ERR_SIFREDB_FORMAT` unless this vault reads envelopes of `header.algorithmId`. */
  protected abstract checkAlgorithm(header: EnvelopeHeader): void;

  /**
   * Parses, picks the key version from the header, and decrypts; the type tag comes apart from the
   * value (no `subarray` of the plaintext).
   */
  #openTagged(ciphertext: Uint8Array | string, ctx: EncryptionContext, rowAd: Uint8Array | undefined): TaggedValue {
    assertContext(ctx);
    const envelope = envelopeBytes(ciphertext);
    const header = parseHeader(envelope);
    this.checkAlgorithm(header);
    const cipher = this.decryptionCipher(header, ctx);
    return cipher.decryptTagged(envelope, rowAd);
  }

  /** {@link encryptMany} with row binding: one bound call per value. */
  #encryptManyBound(values: readonly EncryptableValue[], ctx: EncryptionContext, options: BatchRowBindingOptions): Buffer[] {
    assertContext(ctx);
    assertArray(values, 'values');
    const rowAds = rowAdsOf(options, values.length)!;
    return eachItem(values.length, 'values', (i) => this.encrypt(values[i]!, ctx, { aad: rowAds[i]! }));
  }

  /** {@link decryptManyBytes} with row binding, tags kept: one bound call per ciphertext; wipes on failure. */
  #decryptManyBound(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options: BatchRowBindingOptions,
  ): DecryptedBatch {
    assertContext(ctx);
    assertArray(ciphertexts, 'ciphertexts');
    const rowAds = rowAdsOf(options, ciphertexts.length)!;
    const typeTags = new Uint8Array(ciphertexts.length);
    const values = eachItem(
      ciphertexts.length,
      'ciphertexts',
      (i) => {
        const opened = this.#openTagged(ciphertexts[i]!, ctx, rowAds[i]!);
        typeTags[i] = opened.typeTag;
        return opened.value;
      },
      wipeAll,
    );
    return { values, typeTags };
  }

  /** {@link reencryptMany} with row binding: read and written bound to `aad[i]`, one call each. */
  #reencryptManyBound(
    ciphertexts: readonly (Uint8Array | string)[],
    ctx: EncryptionContext,
    options: BatchRowBindingOptions,
  ): (Buffer | string)[] {
    assertContext(ctx);
    assertArray(ciphertexts, 'ciphertexts');
    const rowAds = rowAdsOf(options, ciphertexts.length)!;
    return eachItem(ciphertexts.length, 'ciphertexts', (i) => this.reencrypt(ciphertexts[i]!, ctx, { aad: rowAds[i]! }));
  }
}
