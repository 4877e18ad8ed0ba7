/**
 * What {@link Vault} and {@link DeterministicVault} share: value encoding, both ciphertext forms,
 * header-driven key-version selection, and re-encryption.
 */
import type { Buffer } from 'node:buffer';
import type { CipherHandle } from '../backend/types.js';
import { assertContext, type EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { type EnvelopeHeader, parseHeader } from '../format/envelope.js';
import { envelopeBytes } from '../format/inspect.js';
import { toText } from '../format/text.js';
import { decodeUtf8 } from '../format/utf8.js';
import { type DecryptedValue, decodeValue, type EncryptableValue, encodeValue, tagName, VALUE_TAG } from '../format/value-codec.js';
import type { Keyring } from '../keys/keyring.js';

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
   * Strings, bytes, numbers, bigints, booleans and Dates keep their type (see {@link decryptValue});
   * `null`, arrays and plain objects are stored as JSON.
   * @throws `ERR_SIFREDB_INPUT` for a bad context, a string with a lone surrogate or an unsupported value.
   */
  encrypt(value: EncryptableValue, ctx: EncryptionContext): Buffer {
    assertContext(ctx);
    const { tag, data } = encodeValue(value);
    try {
      return this.encryptionCipher(ctx).encrypt(data, tag);
    } finally {
      // A number's, bigint's, boolean's or Date's encoding is our scratch copy; bytes are the caller's.
      if (tag !== VALUE_TAG.bytes && typeof data !== 'string') data.fill(0);
    }
  }

  /** Like {@link encrypt}, in the `sdb1:` text form for TEXT/VARCHAR columns. */
  encryptToString(value: EncryptableValue, ctx: EncryptionContext): string {
    return toText(this.encrypt(value, ctx));
  }

  /**
   * Decrypts a ciphertext (binary or `sdb1:` text) of `ctx` with the key version named in its header;
   * returns the value's raw bytes (a string's UTF-8, a number's float64 …). Use {@link decryptValue}
   * for the original JS type and {@link decryptToString} for strings.
   *
   * Fails closed: input that is not a SifreDB ciphertext — such as a plaintext still in the column —
   * throws `ERR_SIFREDB_FORMAT`; nothing is ever passed through.
   * @throws `ERR_SIFREDB_FORMAT` (not a ciphertext, truncated, unsupported format or algorithm),
   *   `ERR_SIFREDB_KEY` (unknown key version), `ERR_SIFREDB_AUTH` (wrong context or key, tampered).
   */
  decrypt(ciphertext: Uint8Array | string, ctx: EncryptionContext): Buffer {
    return this.#open(ciphertext, ctx).subarray(1);
  }

  /**
   * Decrypts a ciphertext that holds a string (see {@link decrypt} for errors).
   * @throws `ERR_SIFREDB_INPUT` when the stored value is not a string (use {@link decryptValue}).
   */
  decryptToString(ciphertext: Uint8Array | string, ctx: EncryptionContext): string {
    const plaintext = this.#open(ciphertext, ctx);
    if (plaintext[0] !== VALUE_TAG.string) {
      const stored = tagName(plaintext[0]!);
      plaintext.fill(0);
      throw new SifreDBError(ERROR_CODES.input, `the stored value is ${stored}, not a string; use decryptValue()`);
    }
    try {
      return decodeUtf8(plaintext.subarray(1), 'decrypted string');
    } finally {
      // The decrypted bytes are scratch here: only the JS string is handed out.
      plaintext.fill(0);
    }
  }

  /** Decrypts and returns the value as the JS type it was encrypted from (bytes as a `Buffer`). */
  decryptValue(ciphertext: Uint8Array | string, ctx: EncryptionContext): DecryptedValue {
    const plaintext = this.#open(ciphertext, ctx);
    // Bytes come back as a view of the plaintext buffer: that buffer is then the caller's.
    if (plaintext[0] === VALUE_TAG.bytes) return decodeValue(plaintext);
    try {
      return decodeValue(plaintext);
    } finally {
      plaintext.fill(0);
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
   */
  reencrypt(ciphertext: string, ctx: EncryptionContext): string;
  reencrypt(ciphertext: Uint8Array, ctx: EncryptionContext): Buffer;
  reencrypt(ciphertext: Uint8Array | string, ctx: EncryptionContext): Buffer | string;
  reencrypt(ciphertext: Uint8Array | string, ctx: EncryptionContext): Buffer | string {
    const plaintext = this.#open(ciphertext, ctx);
    try {
      const envelope = this.encryptionCipher(ctx).encrypt(plaintext.subarray(1), plaintext[0]!);
      return typeof ciphertext === 'string' ? toText(envelope) : envelope;
    } finally {
      plaintext.fill(0);
    }
  }

  /** Reloads the keys (after a rotation); see {@link Keyring.refresh}. */
  refresh(): Promise<void> {
    return this.keyring.refresh();
  }

  /** Throws `ERR_SIFREDB_FORMAT` unless this vault reads envelopes of `header.algorithmId`. */
  protected abstract checkAlgorithm(header: EnvelopeHeader): void;

  /** Parses, picks the key version from the header, and decrypts to `type tag ‖ value`. */
  #open(ciphertext: Uint8Array | string, ctx: EncryptionContext): Buffer {
    assertContext(ctx);
    const envelope = envelopeBytes(ciphertext);
    const header = parseHeader(envelope);
    this.checkAlgorithm(header);
    return this.decryptionCipher(header, ctx).decrypt(envelope);
  }
}
