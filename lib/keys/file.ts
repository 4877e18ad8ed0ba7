/**
 * {@link FileKeyProvider}: versioned root keys in a local JSON keystore, written atomically and kept
 * private (mode 0600).
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { FileExistsError, realFilePath, writeFileAtomically, type WriteMode } from './atomic-file.js';
import { describeMemberNames, jsonKind, readPrivateJson } from './json-file.js';
import { withFileLock } from './lock-file.js';
import { decodeKeyMaterial, isKeyStatus, isKeyVersion, MAX_KEY_VERSION, ROOT_KEY_LENGTH } from './material.js';
import type { KeyProvider, KeyStatus, KeyVersionInfo } from './provider.js';

/** `format` field of every keystore file. */
export const KEYSTORE_FORMAT = 'sifredb-keystore';
/** `version` field of the keystore layout this code reads and writes. */
export const KEYSTORE_VERSION = 1;

/** One key entry as stored in the file. */
export interface KeystoreKeyEntry {
  version: number;
  /** ISO 8601 timestamp. */
  createdAt: string;
  status: KeyStatus;
  /** Standard base64 of the 32 key bytes. */
  key: string;
}

/** The keystore file (JSON). */
export interface KeystoreFile {
  format: typeof KEYSTORE_FORMAT;
  version: typeof KEYSTORE_VERSION;
  /** Version new ciphertexts are written under. */
  current: number;
  keys: KeystoreKeyEntry[];
}

/** Options of {@link FileKeyProvider.create}. */
export interface FileKeyProviderCreateOptions {
  /** Replace an existing file at the path (atomically). Default `false`: refuse with `ERR_SIFREDB_KEY`. */
  overwrite?: boolean;
}

/** Options of {@link FileKeyProvider.open}. */
export interface FileKeyProviderOpenOptions {
  /**
   * Load the file even when group or others may read or write it. Default `false`: such a file is
   * refused with `ERR_SIFREDB_KEY`, because anyone who can read it can decrypt everything.
   */
  allowInsecurePermissions?: boolean;
}


function keyError(message: string, cause?: unknown): SifreDBError {
  return new SifreDBError(ERROR_CODES.key, message, cause === undefined ? undefined : { cause });
}

function ioError(path: string, action: string, error: unknown): SifreDBError {
  const code = (error as { code?: unknown })?.code;
  return keyError(`cannot ${action} keystore ${path}${typeof code === 'string' ? ` (${code})` : ''}`, error);
}

const KEYSTORE_MEMBERS = ['format', 'version', 'current', 'keys'];
const ENTRY_MEMBERS = ['version', 'createdAt', 'status', 'key'];
/** `Date#toISOString()` of a date in years 0000–9999, the only form the writer produces. */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** Padded standard base64 of 32 bytes, canonical: the last data character has its two low bits zero. */
const KEYSTORE_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
/**
 * Validates a parsed keystore exactly as KEYS.md ("The keystore file, byte for byte") specifies.
 * Every problem is `ERR_SIFREDB_KEY` naming the field; no value from the file is quoted but
 * integers and short member names.
 */
function validateKeystore(data: unknown, path: string): KeystoreFile {
  const bad = (why: string) => keyError(`keystore ${path} is invalid: ${why}`);
  const exactMembers = (object: Record<string, unknown>, names: readonly string[], where: string) => {
    for (const name of names) if (!Object.hasOwn(object, name)) throw bad(`${where} lacks the member "${name}"`);
    const extra = Object.keys(object).filter((name) => !names.includes(name));
    if (extra.length > 0) {
      throw bad(`${where} has members this reader does not know: ${describeMemberNames(extra)}`);
    }
  };
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not a JSON object');
  const file = data as Record<string, unknown>;
  if (file.format !== KEYSTORE_FORMAT) throw bad(`"format" must be "${KEYSTORE_FORMAT}"`);
  if (file.version !== KEYSTORE_VERSION) {
    throw keyError(`keystore ${path} has unsupported keystore version ${jsonKind(file.version)} (this reader knows 1)`);
  }
  exactMembers(file, KEYSTORE_MEMBERS, 'the top level');
  if (!Array.isArray(file.keys) || file.keys.length === 0) throw bad('"keys" must be a non-empty array');
  const seen = new Set<number>();
  for (const [i, raw] of (file.keys as unknown[]).entries()) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(`keys[${i}] is not an object`);
    const entry = raw as Record<string, unknown>;
    exactMembers(entry, ENTRY_MEMBERS, `keys[${i}]`);
    if (!isKeyVersion(entry.version)) throw bad(`keys[${i}].version must be an integer in 1..${MAX_KEY_VERSION}`);
    if (seen.has(entry.version)) throw bad(`key version ${entry.version} appears twice`);
    seen.add(entry.version);
    const createdAt = entry.createdAt;
    if (typeof createdAt !== 'string' || !ISO_TIMESTAMP.test(createdAt) || Number.isNaN(Date.parse(createdAt)) || new Date(createdAt).toISOString() !== createdAt) {
      throw bad(`keys[${i}].createdAt must be a UTC timestamp as Date#toISOString() writes it (YYYY-MM-DDTHH:mm:ss.sssZ)`);
    }
    if (!isKeyStatus(entry.status)) throw bad(`keys[${i}].status must be "active" or "retired"`);
    if (typeof entry.key !== 'string' || !KEYSTORE_KEY.test(entry.key)) {
      throw bad(`keys[${i}].key must be the 44-character padded standard base64 of ${ROOT_KEY_LENGTH} bytes`);
    }
  }
  const current = (file.keys as KeystoreKeyEntry[]).find((k) => k.version === file.current);
  if (current === undefined) throw bad('"current" must name one of the key versions');
  if (current.status !== 'active') throw bad('the current key version must be active');
  return file as unknown as KeystoreFile;
}

/** Writes the keystore through {@link writeFileAtomically}, mapping its failures to `ERR_SIFREDB_KEY`. */
async function writeKeystore(path: string, text: string, mode: WriteMode): Promise<void> {
  const data = Buffer.from(text, 'utf8');
  try {
    await writeFileAtomically(path, data, mode);
  } catch (error) {
    if (error instanceof FileExistsError) {
      throw keyError(`refusing to overwrite existing file ${path}; pass { overwrite: true } to replace it`);
    }
    throw ioError(path, 'write', error);
  } finally {
    data.fill(0);
  }
}

function serialize(file: KeystoreFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

function newEntry(version: number): KeystoreKeyEntry {
  const key = randomBytes(ROOT_KEY_LENGTH);
  try {
    return { version, createdAt: new Date().toISOString(), status: 'active', key: key.toString('base64') };
  } finally {
    key.fill(0);
  }
}

/**
 * Root keys in a local JSON keystore:
 * `{ "format": "sifredb-keystore", "version": 1, "current": 2, "keys": [{ "version", "createdAt", "status", "key" }] }`.
 *
 * - {@link FileKeyProvider.create} writes a new keystore (version 1) with mode 0600, atomically, and
 *   refuses to replace an existing file unless `overwrite: true`.
 * - {@link FileKeyProvider.open} refuses a file that group or others can read or write (unless
 *   `allowInsecurePermissions: true`) and one that is corrupted, truncated or invalid
 *   (`ERR_SIFREDB_KEY`); such a file is never rewritten.
 * - The file is re-read on every call, so `vault.refresh()` sees a rotation made by another process
 *   (e.g. the CLI). Keys are not cached here; the keyring imports them into the backend once.
 * - {@link rotate} adds a version and makes it current; no version is ever removed by this class.
 *
 * Back the file up after every rotation: losing it loses every value encrypted under it (KEYS.md).
 * Updates (rotate, retire) hold an exclusive lock file, `<path>.lock`, for their whole
 * read-modify-write, so concurrent rotations from several instances or processes each get their own
 * version; a lock left by a crashed process is broken, a live one is waited for (then
 * `ERR_SIFREDB_KEY` "locked by another process").
 */
export class FileKeyProvider implements KeyProvider {
  /** Absolute path of the keystore. */
  readonly path: string;
  /** `file:<absolute path>`. */
  readonly description: string;
  readonly #allowInsecure: boolean;
  /** Serializes read-modify-write updates made through this instance. */
  #updates: Promise<unknown> = Promise.resolve();

  private constructor(path: string, allowInsecure: boolean) {
    this.path = path;
    this.description = `file:${path}`;
    this.#allowInsecure = allowInsecure;
    Object.freeze(this);
  }

  /**
   * Creates a keystore holding one fresh random key (version 1, current) and opens it.
   * @throws `ERR_SIFREDB_KEY` when a file exists at `path` and `overwrite` is not set, or on I/O errors.
   */
  static async create(path: string, options: FileKeyProviderCreateOptions = {}): Promise<FileKeyProvider> {
    const absolute = resolve(path);
    const file: KeystoreFile = { format: KEYSTORE_FORMAT, version: KEYSTORE_VERSION, current: 1, keys: [newEntry(1)] };
    await writeKeystore(absolute, serialize(file), options.overwrite === true ? 'replace' : 'create');
    return new FileKeyProvider(absolute, false);
  }

  /**
   * Opens an existing keystore and validates it (permissions, JSON, every key entry).
   * @throws `ERR_SIFREDB_KEY` when it is missing, unreadable, too permissive or invalid.
   */
  static async open(path: string, options: FileKeyProviderOpenOptions = {}): Promise<FileKeyProvider> {
    const provider = new FileKeyProvider(resolve(path), options.allowInsecurePermissions === true);
    await provider.#read();
    return provider;
  }

  /** Reads, permission-checks and validates the file ({@link readPrivateJson}, then KEYS.md's rules). */
  async #read(): Promise<KeystoreFile> {
    const data = await readPrivateJson(this.path, { what: `keystore ${this.path}`, allowInsecurePermissions: this.#allowInsecure });
    if (data === undefined) throw keyError(`cannot open keystore ${this.path} (ENOENT)`);
    return validateKeystore(data, this.path);
  }

  /**
   * Runs `change` on a freshly read file and writes the result; never writes when the read fails.
   * The whole read-modify-write holds `<real path>.lock` (see lock-file.ts), so updates from other
   * instances and processes are serialized instead of overwriting each other; `verify` then runs
   * on a re-read of the file, still under the lock.
   */
  #update<T>(change: (file: KeystoreFile) => T, verify?: (file: KeystoreFile, result: T) => void): Promise<T> {
    const run = this.#updates.then(async () => {
      // The lock is the real file's, so that writers reaching it through different links share it.
      const real = await realFilePath(this.path).catch((error: unknown) => {
        throw ioError(this.path, 'resolve the links of', error);
      });
      return withFileLock(real, { what: `keystore ${this.path}` }, async () => {
        const file = await this.#read();
        const result = change(file);
        await writeKeystore(this.path, serialize(file), 'replace');
        verify?.(await this.#read(), result);
        return result;
      });
    });
    this.#updates = run.catch(() => undefined);
    return run;
  }

  /** {@inheritDoc KeyProvider.listVersions} */
  async listVersions(): Promise<KeyVersionInfo[]> {
    const file = await this.#read();
    return file.keys
      .map((k) => Object.freeze({ version: k.version, createdAt: new Date(k.createdAt), status: k.status }))
      .sort((a, b) => a.version - b.version);
  }

  /** {@inheritDoc KeyProvider.currentVersion} */
  async currentVersion(): Promise<number> {
    return (await this.#read()).current;
  }

  /** The 32 bytes of `version`; `ERR_SIFREDB_KEY` when the keystore has no such version. */
  async loadKey(version: number): Promise<Uint8Array> {
    const entry = (await this.#read()).keys.find((k) => k.version === version);
    if (entry === undefined) throw keyError(`keystore ${this.path} has no key version ${version}`);
    return decodeKeyMaterial(entry.key, `key version ${version}`);
  }

  /** Adds a random version (highest + 1), makes it current and writes the file atomically. */
  rotate(): Promise<number> {
    let written: string | undefined;
    return this.#update(
      (file) => {
        const version = Math.max(...file.keys.map((k) => k.version)) + 1;
        if (!isKeyVersion(version)) throw keyError('no key version left to rotate to');
        const entry = newEntry(version);
        written = entry.key;
        file.keys.push(entry);
        file.current = version;
        return version;
      },
      (stored, version) => {
        // Only a version whose key is in the file as we wrote it may be reported (and used).
        if (stored.keys.find((k) => k.version === version)?.key !== written) {
          throw keyError(`keystore ${this.path} was changed by another writer during the rotation; version ${version} is not ours, retry`);
        }
      },
    );
  }

  /** Marks a non-current version `retired` (kept for decryption, dropped from query terms). */
  retire(version: number): Promise<void> {
    return this.#update((file) => {
      const entry = file.keys.find((k) => k.version === version);
      if (entry === undefined) throw keyError(`keystore ${this.path} has no key version ${version}`);
      if (version === file.current) throw keyError(`key version ${version} is current and cannot be retired; rotate first`);
      entry.status = 'retired';
    });
  }
}
