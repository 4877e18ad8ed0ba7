/**
 * {@link FileKeyProvider}: versioned root keys in a local JSON keystore, written atomically and kept
 * private (mode 0600).
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ERROR_CODES, SifreDBError } from '../errors.js';
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

const FILE_MODE = 0o600;
/** Filesystems without hard links report these from `link()`; the no-clobber write then falls back. */
const NO_HARDLINK = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);
const SHOWS_PERMISSIONS = process.platform !== 'win32';

function keyError(message: string, cause?: unknown): SifreDBError {
  return new SifreDBError(ERROR_CODES.key, message, cause === undefined ? undefined : { cause });
}

function ioError(path: string, action: string, error: unknown): SifreDBError {
  const code = (error as { code?: unknown })?.code;
  return keyError(`cannot ${action} keystore ${path}${typeof code === 'string' ? ` (${code})` : ''}`, error);
}

/**
 * Validates a parsed keystore strictly. Every problem is `ERR_SIFREDB_KEY` naming the field; key
 * values are never quoted.
 */
function validateKeystore(data: unknown, path: string): KeystoreFile {
  const bad = (why: string) => keyError(`keystore ${path} is invalid: ${why}`);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not a JSON object');
  const file = data as Record<string, unknown>;
  if (file.format !== KEYSTORE_FORMAT) throw bad(`"format" must be "${KEYSTORE_FORMAT}"`);
  if (file.version !== KEYSTORE_VERSION) {
    throw keyError(`keystore ${path} has unsupported keystore version ${JSON.stringify(file.version)} (this reader knows 1)`);
  }
  if (!Array.isArray(file.keys) || file.keys.length === 0) throw bad('"keys" must be a non-empty array');
  const seen = new Set<number>();
  for (const [i, raw] of (file.keys as unknown[]).entries()) {
    if (typeof raw !== 'object' || raw === null) throw bad(`keys[${i}] is not an object`);
    const entry = raw as Record<string, unknown>;
    if (!isKeyVersion(entry.version)) throw bad(`keys[${i}].version must be an integer in 1..${MAX_KEY_VERSION}`);
    if (seen.has(entry.version)) throw bad(`key version ${entry.version} appears twice`);
    seen.add(entry.version);
    if (typeof entry.createdAt !== 'string' || Number.isNaN(Date.parse(entry.createdAt))) {
      throw bad(`keys[${i}].createdAt must be an ISO 8601 date`);
    }
    if (!isKeyStatus(entry.status)) throw bad(`keys[${i}].status must be "active" or "retired"`);
    if (typeof entry.key !== 'string') throw bad(`keys[${i}].key must be a base64 string`);
    try {
      decodeKeyMaterial(entry.key, `keys[${i}].key`).fill(0);
    } catch (error) {
      throw bad((error as Error).message);
    }
  }
  const current = (file.keys as KeystoreKeyEntry[]).find((k) => k.version === file.current);
  if (current === undefined) throw bad('"current" must name one of the key versions');
  if (current.status !== 'active') throw bad('the current key version must be active');
  return file as unknown as KeystoreFile;
}

/** fsync of a directory makes a rename durable; platforms that cannot open directories skip it. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw error;
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `text` to `path` so that a reader (or a crash) sees either the old file or the whole new one:
 * a temp file with mode 0600 in the same directory, fsync, then rename (or, when `overwrite` is
 * false, a hard link that fails if the path exists), then fsync of the directory. The temp file is
 * removed when any step fails.
 */
export async function writeAtomically(path: string, text: string, overwrite: boolean): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const data = Buffer.from(text, 'utf8');
  let linked = false;
  try {
    const handle = await fsp.open(temp, 'wx', FILE_MODE);
    try {
      // The umask may have narrowed the creation mode; 0600 exactly is what `open` checks for.
      await handle.chmod(FILE_MODE);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (overwrite) {
      await fsp.rename(temp, path);
    } else {
      try {
        await fsp.link(temp, path);
        linked = true;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 'EEXIST') throw keyError(`refusing to overwrite existing file ${path}; pass { overwrite: true } to replace it`);
        if (typeof code !== 'string' || !NO_HARDLINK.has(code)) throw error;
        // No hard links here: check, then rename. Not race-free, but still never a partial file.
        if (await fsp.lstat(path).then(() => true, () => false)) {
          throw keyError(`refusing to overwrite existing file ${path}; pass { overwrite: true } to replace it`);
        }
        await fsp.rename(temp, path);
      }
    }
    await syncDirectory(dir);
  } catch (error) {
    throw error instanceof SifreDBError ? error : ioError(path, 'write', error);
  } finally {
    data.fill(0);
    // After a rename the temp name is gone; after a link or a failure it must be removed.
    await fsp.unlink(temp).catch(() => undefined);
    if (linked) await syncDirectory(dir).catch(() => undefined);
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
    await writeAtomically(absolute, serialize(file), options.overwrite === true);
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

  /** Reads, permission-checks and validates the file. The stat is of the opened descriptor, so no swap in between. */
  async #read(): Promise<KeystoreFile> {
    let handle: FileHandle;
    try {
      handle = await fsp.open(this.path, 'r');
    } catch (error) {
      throw ioError(this.path, 'open', error);
    }
    let text: string;
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw keyError(`keystore ${this.path} is not a regular file`);
      if (SHOWS_PERMISSIONS && (stat.mode & 0o077) !== 0 && !this.#allowInsecure) {
        const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
        throw keyError(
          `keystore ${this.path} has mode ${mode}: group or others can access it. ` +
            `Run \`chmod 600 ${this.path}\`, or pass { allowInsecurePermissions: true } to open it anyway`,
        );
      }
      text = await handle.readFile('utf8');
    } catch (error) {
      throw error instanceof SifreDBError ? error : ioError(this.path, 'read', error);
    } finally {
      await handle.close();
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      // The parser's message can quote file content (key material), so it is not kept as a cause.
      throw keyError(`keystore ${this.path} is corrupted or truncated (not valid JSON)`);
    }
    return validateKeystore(data, this.path);
  }

  /**
   * Runs `change` on a freshly read file and writes the result; never writes when the read fails.
   * The whole read-modify-write holds `<path>.lock` (see lock-file.ts), so updates from other
   * instances and processes are serialized instead of overwriting each other; `verify` then runs
   * on a re-read of the file, still under the lock.
   */
  #update<T>(change: (file: KeystoreFile) => T, verify?: (file: KeystoreFile, result: T) => void): Promise<T> {
    const run = this.#updates.then(() =>
      withFileLock(this.path, { what: `keystore ${this.path}` }, async () => {
        const file = await this.#read();
        const result = change(file);
        await writeAtomically(this.path, serialize(file), true);
        verify?.(await this.#read(), result);
        return result;
      }),
    );
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
