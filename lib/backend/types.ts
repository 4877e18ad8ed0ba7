/**
 * The contract every backend implements. The native addon (Rust, napi-rs) and the pure-JS backend
 * (@noble + node:crypto) produce identical bytes for every call here; docs/FORMAT.md is the spec.
 */

/** Name of a backend: the napi-rs addon or the pure-JS fallback. */
export type BackendName = 'native' | 'js';

import type { RandomizedAlgorithmId } from '../format/envelope.js';
import type { SivAssociatedData } from './siv-ad.js';

export { ALGORITHM, type RandomizedAlgorithmId } from '../format/envelope.js';

/** A value the hot path accepts: raw bytes, or a JS string encoded as UTF-8 by the backend. */
export type PlainInput = Uint8Array | string;

/** Options of the async batch methods. */
export interface BatchOptions {
  /**
   * How many parts the native backend splits the batch into, each sealed or opened on a thread of
   * the libuv pool (default: `os.availableParallelism()`). Parts beyond the pool size
   * (`UV_THREADPOOL_SIZE`, default 4) wait for a free thread; see docs/PERFORMANCE.md. The pure-JS
   * backend ignores it.
   */
  threads?: number;
}

/** What {@link CipherHandle.decryptTagged} returns. */
export interface TaggedValue {
  /** The value's type tag (byte 0 of the plaintext). */
  readonly typeTag: number;
  /** The value's bytes (the plaintext without its type tag), a Buffer of its own. */
  readonly value: Buffer;
}

/** What {@link CipherHandle.decryptManyValues} returns. */
export interface DecryptedBatch {
  /** The bytes of each value, type tag removed. */
  readonly values: Buffer[];
  /** The type tag of each value. */
  readonly typeTags: Uint8Array;
}

/** The raw primitives (RFC algorithms, no SifreDB format). Outputs are Buffers. */
export interface Primitives {
  /**
   * AES-256-SIV (RFC 5297); returns SIV tag ‖ ciphertext. `key` is 64 bytes. `ad` is the associated
   * data: one byte string (a string counts as its UTF-8), or an array of up to 126 of them, which
   * S2V takes as separate components in order (`[]` is none; `[ad]` is the same as `ad`). SifreDB
   * for Rust's `DeterministicVault` sealed with `[context, new Uint8Array(16)]`. More than 126
   * components throw `ERR_SIFREDB_INPUT`.
   */
  aesSivEncrypt(key: Uint8Array, plaintext: Uint8Array, ad: SivAssociatedData): Buffer;
  /** Inverse of {@link Primitives.aesSivEncrypt}; throws `ERR_SIFREDB_AUTH` when the tag does not verify. */
  aesSivDecrypt(key: Uint8Array, ciphertext: Uint8Array, ad: SivAssociatedData): Buffer;
  /** ChaCha20-Poly1305 (RFC 8439); returns ciphertext ‖ 16-byte tag. key 32, nonce 12 bytes. */
  chacha20Poly1305Encrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer;
  /** Inverse of {@link Primitives.chacha20Poly1305Encrypt}; throws `ERR_SIFREDB_AUTH`. */
  chacha20Poly1305Decrypt(key: Uint8Array, nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Buffer;
  /** XChaCha20-Poly1305; returns ciphertext ‖ 16-byte tag. key 32, nonce 24 bytes. */
  xchacha20Poly1305Encrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer;
  /** Inverse of {@link Primitives.xchacha20Poly1305Encrypt}; throws `ERR_SIFREDB_AUTH`. */
  xchacha20Poly1305Decrypt(key: Uint8Array, nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array): Buffer;
  /** HKDF-SHA256 (RFC 5869); `length` is 1..8160. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer;
  /** HMAC-SHA256; returns 32 bytes. */
  hmacSha256(key: Uint8Array, message: Uint8Array): Buffer;
  /** `n` bytes from the OS CSPRNG (0..65536). */
  randomBytes(n: number): Buffer;
}

/**
 * A cipher bound to one derived key: one (algorithm, canonical context, key version).
 * `encrypt` returns a whole v1 envelope (header ‖ nonce ‖ body); `decrypt` returns the plaintext
 * including its leading type-tag byte. Key bytes never leave the handle.
 *
 * Row binding (docs/FORMAT.md, "Row binding"): the single-value calls take an optional `rowAd`,
 * per-value associated data (e.g. the row's primary key) authenticated as well:
 * `AAD = header ‖ context ‖ u32be(rowAd.length) ‖ rowAd`. The envelope does not record it; only a
 * call with the same `rowAd` opens it (another one, or none, throws `ERR_SIFREDB_AUTH`). A bound
 * value is one backend call (no batch fast path).
 *
 * Both backends implement it on {@link ./cipher-handle.ts}, which checks every argument once.
 */
export interface CipherHandle {
  /** Key version written into (and required in) envelope headers. */
  readonly keyVersion: number;
  /** Algorithm id written into (and required in) envelope headers. */
  readonly algorithm: number;
  /** Encrypts `typeTag ‖ value` into a v1 envelope, bound to `rowAd` when given. */
  encrypt(value: PlainInput, typeTag: number, rowAd?: Uint8Array): Buffer;
  /** Verifies and decrypts a v1 envelope (sealed with the same `rowAd`, if any); returns `typeTag ‖ value`. */
  decrypt(envelope: Uint8Array, rowAd?: Uint8Array): Buffer;
  /**
   * Like {@link CipherHandle.decrypt}, with the type tag apart: `value` is a Buffer of its own, so
   * the caller needs no `subarray(1)` (which, on a small Buffer, makes V8 move it off its heap).
   */
  decryptTagged(envelope: Uint8Array, rowAd?: Uint8Array): TaggedValue;
  /**
   * Batch form of {@link CipherHandle.encrypt} (unbound); `typeTags[i]` goes with `values[i]`.
   *
   * Every batch method (here and below) follows the same rules. A failing item `i` throws — or, for
   * the async forms, rejects with — a `SifreDBError` whose message starts with `values[i]: ` or
   * `envelopes[i]: ` and whose `index` property is `i`; nothing of the batch is returned and
   * plaintexts it had decrypted are wiped. The native backend crosses into Rust once per batch (per
   * part for the async forms) and returns views into one buffer per batch.
   */
  encryptMany(values: PlainInput[], typeTags: Uint8Array): Buffer[];
  /** Batch form of {@link CipherHandle.decrypt}. */
  decryptMany(envelopes: Uint8Array[]): Buffer[];
  /** Like {@link CipherHandle.decryptMany}, with the type tags apart from the value bytes. */
  decryptManyValues(envelopes: Uint8Array[]): DecryptedBatch;
  /**
   * Decrypts each envelope with this handle and encrypts its plaintext, type tag kept, with
   * `target` (a handle of the same backend). The plaintexts never reach JavaScript.
   */
  reencryptMany(envelopes: Uint8Array[], target: CipherHandle): Buffer[];
  /**
   * Async form of {@link CipherHandle.encryptMany}: the native backend seals on the libuv thread
   * pool, split into `options.threads` parts. Inputs are read before it returns.
   */
  encryptManyAsync(values: PlainInput[], typeTags: Uint8Array, options?: BatchOptions): Promise<Buffer[]>;
  /** Async form of {@link CipherHandle.decryptManyValues}. */
  decryptManyValuesAsync(envelopes: Uint8Array[], options?: BatchOptions): Promise<DecryptedBatch>;
  /** Async form of {@link CipherHandle.reencryptMany}. */
  reencryptManyAsync(envelopes: Uint8Array[], target: CipherHandle, options?: BatchOptions): Promise<Buffer[]>;
  /**
   * Test-vector hook: encrypt with a caller-chosen nonce (randomized ciphers only), bound to `rowAd`
   * when given. Never used by the library itself; reusing a nonce under one key breaks
   * ChaCha20-Poly1305.
   */
  encryptWithNonce?(value: PlainInput, typeTag: number, nonce: Uint8Array, rowAd?: Uint8Array): Buffer;
}

/** HMAC-SHA256 keyed for one blind index (context, index name, key version). */
export interface BlindIndexHandle {
  readonly keyVersion: number;
  /** Truncated HMAC of `message` (already the length-prefixed field encoding), `bits` in 8..256. */
  compute(message: Uint8Array, bits: number): Buffer;
  /**
   * The term of a one-field index: {@link BlindIndexHandle.compute} of `u32be len ‖ field` (a
   * string is taken as UTF-8 and must be well-formed), without building the message in JavaScript.
   */
  computeField(field: string | Uint8Array, bits: number): Buffer;
  /** Batch form of {@link BlindIndexHandle.compute} (errors name `messages[i]`). */
  computeMany(messages: Uint8Array[], bits: number): Buffer[];
}

/** One root key version, imported into the backend. Derives per-context handles (HKDF, docs/FORMAT.md). */
export interface RootKeyHandle {
  readonly version: number;
  randomizedCipher(algorithm: RandomizedAlgorithmId, context: Uint8Array): CipherHandle;
  deterministicCipher(context: Uint8Array): CipherHandle;
  blindIndex(context: Uint8Array, indexName: Uint8Array): BlindIndexHandle;
}

/** One signature of an {@link Ed25519.verifyBatch} call. */
export interface Ed25519BatchItem {
  readonly publicKey: Uint8Array;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Ed25519 (RFC 8032) for audit signatures. Signatures are deterministic and byte-identical on both
 * backends; verification is strict and gives the same verdict on both: 64-byte signature, `S < L`,
 * canonical encodings of the public key and of `R`, neither of small order, and the cofactorless
 * equation (docs/AUDIT.md, "Signatures").
 */
export interface Ed25519 {
  /** The 32-byte public key of a 32-byte secret key (the RFC 8032 seed). */
  publicKey(secretKey: Uint8Array): Buffer;
  /** The 64-byte signature of `message`. */
  sign(secretKey: Uint8Array, message: Uint8Array): Buffer;
  /**
   * `true` when `signature` is a valid strict signature of `message` under `publicKey`; `false` for
   * any invalid signature (wrong length included). Throws `ERR_SIFREDB_INPUT` only for arguments of
   * the wrong type or a public key that is not 32 bytes.
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * One verdict per item, each that of {@link Ed25519.verify}. The native backend checks the batch
   * with one randomized equation (about twice as fast) and verifies item by item only when it fails.
   */
  verifyBatch(items: readonly Ed25519BatchItem[]): boolean[];
}

/** A loaded backend. */
export interface Backend {
  readonly name: BackendName;
  readonly primitives: Primitives;
  /** Ed25519 signatures (audit records). */
  readonly ed25519: Ed25519;
  /**
   * Imports a 32-byte root key. The backend keeps its own copy; the caller should zero its buffer.
   */
  importRootKey(version: number, material: Uint8Array): RootKeyHandle;
}
