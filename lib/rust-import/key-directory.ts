/**
 * A key directory of SifreDB for Rust (crate `sifredb-key-file` 0.1.1, `FileKeyProvider`), read
 * and never written:
 *
 * ```text
 * keys/
 * ├── kek_v1.key   32 raw bytes, mode 0600
 * ├── kek_v2.key
 * ├── current -> kek_v2.key   symlink to the active KEK
 * └── pepper.key   32 raw bytes: the blind-index pepper
 * ```
 *
 * KEKs wrap data keys as `nonce(12) ‖ ChaCha20-Poly1305(kek, nonce, dek)` with no associated data
 * ({@link RustKeyDirectory.unwrapDek}). The legacy blind-index term is the first 16 bytes of
 * `HMAC-SHA256(pepper, value ‖ "tenant|table|column")` ({@link RustKeyDirectory.blindIndex}; the
 * crate's package has it in `src/blind_index.rs`, which 0.1.1 does not compile: applications that
 * used it compiled that file themselves, as __test__/rust-writer does).
 */
import { promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import { getBackend } from '../backend/default.js';
import type { Backend } from '../backend/types.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { allocSecret, utf8Bytes, wipe } from '../format/bytes.js';
import { assertWellFormed } from '../format/utf8.js';
import { rustIndexContextString, type RustIndexContext } from './context.js';
import { keyError, readKeyFile, type RustKeyFileOptions } from './key-file.js';

/** Length of a KEK and of the pepper. */
const KEY_LENGTH = 32;
/** Length of a legacy blind-index term. */
export const RUST_BLIND_INDEX_LENGTH = 16;
const NONCE_LENGTH = 12;
const KEK_FILE = /^kek_v(\d+)\.key$/;

/** Options of {@link RustKeyDirectory.open}. */
export interface RustKeyDirectoryOptions extends RustKeyFileOptions {
  /** The backend computing blind indexes and unwrapping keys; the default backend otherwise. */
  readonly backend?: Backend;
}

/** One KEK of the directory. */
export interface RustKek {
  /** The crate's KEK id: the file name without `.key`, e.g. `kek_v2`. */
  readonly id: string;
  readonly version: number;
}

/** The legacy blind-index term of `value` (a string is its UTF-8): `HMAC-SHA256(pepper, value ‖ context)[..16]`. */
export function rustBlindIndexTerm(backend: Backend, pepper: Uint8Array, value: Uint8Array | string, context: RustIndexContext): Buffer {
  const suffix = utf8Bytes(rustIndexContextString(context));
  let bytes: Uint8Array;
  if (typeof value === 'string') {
    assertWellFormed(value, 'value');
    bytes = utf8Bytes(value);
  } else if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    throw new SifreDBError(ERROR_CODES.input, 'value must be a Uint8Array or a string');
  }
  const message = allocSecret(bytes.length + suffix.length);
  message.set(bytes);
  message.set(suffix, bytes.length);
  try {
    return backend.primitives.hmacSha256(pepper, message).subarray(0, RUST_BLIND_INDEX_LENGTH);
  } finally {
    wipe(message);
  }
}

/** The key material of a Rust key directory, read once at {@link RustKeyDirectory.open}. Node-only. */
export class RustKeyDirectory {
  /** The directory as given. */
  readonly path: string;
  /** Every `kek_v<N>.key`, by version. */
  readonly keks: readonly RustKek[];
  /** The KEK the `current` symlink names. */
  readonly currentKekId: string;
  readonly #backend: Backend;
  #keks: Map<string, Buffer> | undefined;
  #pepper: Buffer | undefined;
  readonly #hasPepper: boolean;

  private constructor(path: string, keks: Map<string, Buffer>, current: string, pepper: Buffer | undefined, backend: Backend) {
    this.path = path;
    this.#keks = keks;
    this.keks = [...keks.keys()]
      .map((id) => ({ id, version: Number(KEK_FILE.exec(`${id}.key`)![1]) }))
      .sort((a, b) => a.version - b.version);
    this.currentKekId = current;
    this.#pepper = pepper;
    this.#hasPepper = pepper !== undefined;
    this.#backend = backend;
  }

  /**
   * Reads the directory: every KEK, the `current` link and the pepper when present. Errors are
   * `ERR_SIFREDB_KEY` naming the file (never its content): no `current` link, a link to a missing
   * or misnamed file, a key file not of 32 bytes, or readable by group or others (unless
   * `allowInsecurePermissions`).
   */
  static async open(path: string, options: RustKeyDirectoryOptions = {}): Promise<RustKeyDirectory> {
    let names: string[];
    try {
      names = await fsp.readdir(path);
    } catch (error) {
      const code = (error as { code?: unknown })?.code;
      throw keyError(`cannot read the Rust key directory ${path}${typeof code === 'string' ? ` (${code})` : ''}`);
    }
    let current: string;
    try {
      current = basename(await fsp.readlink(join(path, 'current')));
    } catch {
      throw keyError(`the Rust key directory ${path} has no \`current\` symlink (no active KEK)`);
    }
    const currentMatch = KEK_FILE.exec(current);
    if (!currentMatch) throw keyError(`${join(path, 'current')} does not point to a kek_v<N>.key file`);
    const keks = new Map<string, Buffer>();
    const pepperPath = join(path, 'pepper.key');
    let pepper: Buffer | undefined;
    try {
      for (const name of names.sort()) {
        if (!KEK_FILE.test(name)) continue;
        keks.set(name.slice(0, -'.key'.length), await readKeyFile(join(path, name), KEY_LENGTH, options));
      }
      if (!keks.has(current.slice(0, -'.key'.length))) {
        throw keyError(`${join(path, 'current')} points to ${current}, which is not in the directory`);
      }
      if (names.includes('pepper.key')) pepper = await readKeyFile(pepperPath, KEY_LENGTH, options);
    } catch (error) {
      for (const key of keks.values()) wipe(key);
      throw error;
    }
    return new RustKeyDirectory(path, keks, current.slice(0, -'.key'.length), pepper, options.backend ?? getBackend());
  }

  /** Whether the directory has `pepper.key` (needed by {@link blindIndex}). */
  get hasPepper(): boolean {
    return this.#hasPepper;
  }

  /** The 16-byte legacy blind-index term of `value` under `context` (see {@link rustBlindIndexTerm}). */
  blindIndex(value: Uint8Array | string, context: RustIndexContext): Buffer {
    this.#live();
    if (this.#pepper === undefined) throw keyError(`the Rust key directory ${this.path} has no pepper.key`);
    return rustBlindIndexTerm(this.#backend, this.#pepper, value, context);
  }

  /** A data key wrapped by `FileKeyProvider::wrap_dek` under `kekId` (`nonce ‖ ciphertext ‖ tag`). */
  unwrapDek(kekId: string, wrapped: Uint8Array): Buffer {
    const keks = this.#live();
    const kek = keks.get(kekId);
    if (kek === undefined) throw keyError(`no KEK ${JSON.stringify(String(kekId))} in ${this.path}`);
    if (!(wrapped instanceof Uint8Array)) throw new SifreDBError(ERROR_CODES.input, 'wrapped must be a Uint8Array');
    if (wrapped.length < NONCE_LENGTH + 16) throw new SifreDBError(ERROR_CODES.format, 'a wrapped Rust DEK is at least 28 bytes');
    const empty = new Uint8Array(0);
    return this.#backend.primitives.chacha20Poly1305Decrypt(kek, wrapped.subarray(0, NONCE_LENGTH), wrapped.subarray(NONCE_LENGTH), empty);
  }

  /** Wipes the key material read; the object is unusable afterwards. Nothing on disk changes. */
  destroy(): void {
    for (const key of this.#keks?.values() ?? []) wipe(key);
    if (this.#pepper) wipe(this.#pepper);
    this.#keks = undefined;
    this.#pepper = undefined;
  }

  #live(): Map<string, Buffer> {
    if (this.#keks === undefined) throw keyError('this RustKeyDirectory was destroyed');
    return this.#keks;
  }
}
