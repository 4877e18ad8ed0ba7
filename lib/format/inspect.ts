/** Key-free inspection of stored values: {@link inspect} and {@link isEncrypted}. */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { type AlgorithmName, FORMAT_VERSION, parseHeader, TAG_LENGTH } from './envelope.js';
import { ownedBytes } from './bytes.js';
import { fromText } from './text.js';

/** What {@link inspect} reports about a ciphertext. Nothing here needs (or reveals) a key. */
export interface CiphertextInfo {
  /** Binary format version (always 1 for what this version reads). */
  readonly format: 1;
  /** Cipher named by the header. */
  readonly algorithm: AlgorithmName;
  /** Root-key version the value was encrypted under. */
  readonly keyVersion: number;
  /** 12 (ChaCha20-Poly1305), 24 (XChaCha20-Poly1305) or 0 (AES-SIV). */
  readonly nonceLength: number;
  /** Bytes after the header and nonce (ciphertext and 16-byte tag or synthetic IV). */
  readonly bodyLength: number;
  /** Length of the stored value's bytes (for a string: its UTF-8 length), without the 1-byte type tag. */
  readonly plaintextLength: number;
  /** `text` for an `sdb1:` string, `binary` for bytes. */
  readonly form: 'binary' | 'text';
}

/**
 * Turns a stored value (binary envelope or `sdb1:` text) into envelope bytes. Internal: the vaults use
 * it so that both forms are accepted everywhere; `ERR_SIFREDB_FORMAT` for a string that is not the
 * text form, `ERR_SIFREDB_INPUT` for anything that is neither bytes nor a string.
 */
export function envelopeBytes(ciphertext: unknown): Uint8Array {
  // Bytes another thread can rewrite are copied once: the header, authentication and decryption
  // then all read the same bytes.
  if (ciphertext instanceof Uint8Array) return ownedBytes(ciphertext);
  if (typeof ciphertext === 'string') return fromText(ciphertext);
  throw new SifreDBError(ERROR_CODES.input, 'ciphertext must be a Uint8Array or an "sdb1:" string');
}

/**
 * Parses a ciphertext's header without any key.
 *
 * @param ciphertext - a binary envelope or its `sdb1:` text form.
 * @throws `ERR_SIFREDB_FORMAT` when it is not a well-formed v1 envelope (bad magic, "unsupported
 *   format version N", unknown algorithm, truncated).
 */
export function inspect(ciphertext: Uint8Array | string): CiphertextInfo {
  const header = parseHeader(envelopeBytes(ciphertext));
  return Object.freeze({
    format: FORMAT_VERSION,
    algorithm: header.algorithm,
    keyVersion: header.keyVersion,
    nonceLength: header.nonceLength,
    bodyLength: header.bodyLength,
    plaintextLength: header.bodyLength - TAG_LENGTH - 1,
    form: typeof ciphertext === 'string' ? 'text' : 'binary',
  });
}

/**
 * True when `value` parses as a well-formed SifreDB envelope (binary, or `sdb1:` text). For
 * migrations that encrypt a column in place: it tells already-encrypted rows from plaintext ones.
 * It checks structure only — a match is not proof of authenticity; decrypting is. Never throws.
 *
 * Decryption itself never falls back to returning input that is not a ciphertext; this helper is the
 * only, explicit, way to ask.
 */
export function isEncrypted(value: unknown): boolean {
  if (!(value instanceof Uint8Array) && typeof value !== 'string') return false;
  try {
    parseHeader(envelopeBytes(value));
    return true;
  } catch {
    return false;
  }
}
