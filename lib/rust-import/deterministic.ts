/**
 * SifreDB for Rust's deterministic ciphertexts (crate `sifredb` 0.1.1, `DeterministicVault`):
 * AES-256-SIV under a caller-supplied 64-byte key, through the `aes-siv` crate's AEAD interface
 * with its default (all-zero, 16-byte) nonce. S2V's associated data is therefore two components,
 * `[context string, 16 zero bytes]`, and the output is `SIV tag ‖ ciphertext` with no header and
 * no key version.
 */
import { getBackend } from '../backend/default.js';
import type { Backend } from '../backend/types.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { copyBytes, utf8Bytes, wipe } from '../format/bytes.js';
import { assertWellFormed } from '../format/utf8.js';
import { rustContextString, type RustContext } from './context.js';
import { readKeyFile, type RustKeyFileOptions } from './key-file.js';

/** Length of a `DeterministicVault` key. */
export const RUST_DETERMINISTIC_KEY_LENGTH = 64;

/** The `aes-siv` crate's default nonce, S2V's last associated-data component. */
const DEFAULT_NONCE = new Uint8Array(16);

/** Options of {@link RustDeterministicVault}. */
export interface RustDeterministicVaultOptions {
  /** The backend whose AES-SIV opens the values; the default backend otherwise. */
  readonly backend?: Backend;
}

/**
 * Opens (and, for services that share a table with Rust ones during a migration, writes) values
 * of SifreDB for Rust's `DeterministicVault`. Node-only.
 */
export class RustDeterministicVault {
  #key: Buffer | undefined;
  readonly #backend: Backend;

  /** `key` is the 64-byte `DeterministicVault` key; it is copied (call {@link destroy} to wipe the copy). */
  constructor(key: Uint8Array, options: RustDeterministicVaultOptions = {}) {
    if (!(key instanceof Uint8Array) || key.length !== RUST_DETERMINISTIC_KEY_LENGTH) {
      throw new SifreDBError(ERROR_CODES.key, 'a Rust DeterministicVault key must be 64 bytes');
    }
    this.#key = copyBytes(key);
    this.#backend = options.backend ?? getBackend();
  }

  /**
   * Reads the key from a file: 64 raw bytes, or 128 hex digits (a final newline allowed). The
   * file must not be readable by group or others unless `allowInsecurePermissions` is set.
   */
  static async fromKeyFile(path: string, options: RustDeterministicVaultOptions & RustKeyFileOptions = {}): Promise<RustDeterministicVault> {
    const key = await readKeyFile(path, RUST_DETERMINISTIC_KEY_LENGTH, { ...options, hexAllowed: true });
    try {
      return new RustDeterministicVault(key, options);
    } finally {
      wipe(key);
    }
  }

  /** The plaintext bytes of `ciphertext` (tag ‖ ciphertext) written under `context`; `ERR_SIFREDB_AUTH` if it does not open. */
  decrypt(ciphertext: Uint8Array, context: RustContext): Buffer {
    if (!(ciphertext instanceof Uint8Array)) throw new SifreDBError(ERROR_CODES.input, 'ciphertext must be a Uint8Array');
    const ad = rustContextString(context);
    if (ciphertext.length < 16) {
      throw new SifreDBError(ERROR_CODES.format, `not a Rust DeterministicVault ciphertext: ${ciphertext.length} bytes, at least 16 expected`);
    }
    return this.#backend.primitives.aesSivDecrypt(this.#liveKey(), ciphertext, [ad, DEFAULT_NONCE]);
  }

  /** The bytes `DeterministicVault::encrypt` writes for `plaintext` (a string is its UTF-8) under `context`. */
  encrypt(plaintext: Uint8Array | string, context: RustContext): Buffer {
    let bytes: Uint8Array;
    if (typeof plaintext === 'string') {
      assertWellFormed(plaintext, 'plaintext');
      bytes = utf8Bytes(plaintext);
    } else if (plaintext instanceof Uint8Array) {
      bytes = plaintext;
    } else {
      throw new SifreDBError(ERROR_CODES.input, 'plaintext must be a Uint8Array or a string');
    }
    const ad = rustContextString(context);
    return this.#backend.primitives.aesSivEncrypt(this.#liveKey(), bytes, [ad, DEFAULT_NONCE]);
  }

  /** Wipes the key; the vault is unusable afterwards. */
  destroy(): void {
    if (this.#key) wipe(this.#key);
    this.#key = undefined;
  }

  #liveKey(): Buffer {
    if (this.#key === undefined) throw new SifreDBError(ERROR_CODES.key, 'this RustDeterministicVault was destroyed');
    return this.#key;
  }
}
