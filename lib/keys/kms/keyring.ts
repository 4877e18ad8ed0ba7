/**
 * The KMS keyring: the wrapped (KMS-encrypted) data keys of every root-key version, as a JSON
 * document, and where it is kept. Holds no plaintext key: a stolen keyring is useless without KMS.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { SifreDBError } from '../../errors.js';
import { withFileLock } from '../lock-file.js';

/** The `type` of a KMS keyring document. */
export const KMS_KEYRING_TYPE = 'sifredb-kms-keyring';

/** One root-key version: a 32-byte data key from KMS `GenerateDataKey`, kept only wrapped. */
export interface KmsWrappedKeyVersion {
  /** 1, 2, 3 … as written in ciphertext headers. */
  version: number;
  /** ISO 8601 creation time. */
  createdAt: string;
  /**
   * `active`: decrypts, and deterministic / blind-index queries include it (the current version is
   * always active). `retired`: still decrypts, left out of query terms. See KeyVersionInfo.
   */
  status: 'active' | 'retired';
  /** ARN of the KMS key that wraps this version (as KMS reported it). */
  kmsKeyArn: string;
  /** Base64 of the KMS `CiphertextBlob`; its encryption context is {@link kmsEncryptionContext}. */
  wrappedKey: string;
}

/** The JSON document a {@link KeyringStore} keeps. */
export interface KmsKeyringDocument {
  type: typeof KMS_KEYRING_TYPE;
  formatVersion: 1;
  /** Bound into every wrapped key's KMS encryption context (`sifredb:keyring`). */
  keyringId: string;
  /** Incremented by every write; lets stores detect concurrent writers (compare-and-swap). */
  revision: number;
  /** The version new ciphertexts are written under. */
  current: number;
  /** Ascending by version. */
  versions: KmsWrappedKeyVersion[];
}

/**
 * Where a KMS keyring document lives: the JSON file store by default, or your own (a database row,
 * a secrets manager…). Only wrapped keys pass through it.
 */
export interface KeyringStore {
  /** Secret-free description for errors, e.g. `file:/etc/app/keyring.json`. */
  readonly description?: string;
  /** The stored document, or `undefined` when none exists yet. Throw when it exists but cannot be read. */
  read(): Promise<KmsKeyringDocument | undefined>;
  /**
   * Replaces the stored document atomically (readers see the old or the new one, never a mix).
   * `previous` is the document this one was derived from (`undefined` when creating): a store
   * should refuse the write (throw) when what it holds is no longer `previous` — i.e. a concurrent
   * writer got there first — so that no version is lost. Comparing `revision` is enough.
   */
  write(doc: KmsKeyringDocument, previous: KmsKeyringDocument | undefined): Promise<void>;
  /**
   * Optional: runs `operation` (which reads, calls KMS and writes through this store) while holding
   * an exclusive cross-process lock on the document, so that concurrent rotations are serialized
   * rather than racing (and wasting a `GenerateDataKey` on the loser). Writes made by `operation`
   * must not try to take the lock again. {@link FileKeyringStore} implements it with a lock file.
   */
  exclusive?<T>(operation: () => Promise<T>): Promise<T>;
}

/** The KMS encryption context that binds a wrapped key to its keyring and version. */
export function kmsEncryptionContext(keyringId: string, version: number): Record<string, string> {
  return { 'sifredb:keyring': keyringId, 'sifredb:version': String(version) };
}

const KEYRING_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_VERSION = 0xffff_ffff;

/** Checks a keyring id (1..128 characters: letters, digits and `._:@/+=-`, not starting with a symbol). */
export function checkKeyringId(keyringId: unknown, where: string): string {
  if (typeof keyringId !== 'string' || !KEYRING_ID.test(keyringId)) {
    throw new SifreDBError(
      'ERR_SIFREDB_INPUT',
      `${where}: keyringId must be 1..128 characters of letters, digits and ._:@/+=- starting with a letter or digit`,
    );
  }
  return keyringId;
}

/**
 * Validates a parsed keyring document; throws `ERR_SIFREDB_KEY` naming the first problem.
 * `where` names the store in the message.
 */
export function validateKeyringDocument(value: unknown, where: string): KmsKeyringDocument {
  const bad = (why: string): never => {
    throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${where} is corrupted or not a SifreDB KMS keyring: ${why}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not a JSON object');
  const doc = value as Record<string, unknown>;
  if (doc.type !== KMS_KEYRING_TYPE) bad(`"type" is not "${KMS_KEYRING_TYPE}"`);
  if (doc.formatVersion !== 1) bad(`unsupported "formatVersion" (this version of SifreDB reads 1)`);
  if (typeof doc.keyringId !== 'string' || !KEYRING_ID.test(doc.keyringId)) bad('invalid "keyringId"');
  if (!Number.isSafeInteger(doc.revision) || (doc.revision as number) < 1) bad('invalid "revision"');
  if (!Array.isArray(doc.versions) || doc.versions.length === 0) bad('"versions" must be a non-empty array');
  const versions: KmsWrappedKeyVersion[] = [];
  let previous = 0;
  for (const [i, entry] of (doc.versions as unknown[]).entries()) {
    if (typeof entry !== 'object' || entry === null) bad(`versions[${i}] is not an object`);
    const v = entry as Record<string, unknown>;
    if (!Number.isInteger(v.version) || (v.version as number) < 1 || (v.version as number) > MAX_VERSION) {
      bad(`versions[${i}].version must be an integer in 1..2^32-1`);
    }
    if ((v.version as number) <= previous) bad('versions must be unique and ascending');
    previous = v.version as number;
    if (typeof v.createdAt !== 'string' || Number.isNaN(Date.parse(v.createdAt))) bad(`versions[${i}].createdAt is not a date`);
    if (v.status !== 'active' && v.status !== 'retired') bad(`versions[${i}].status must be "active" or "retired"`);
    if (typeof v.kmsKeyArn !== 'string' || v.kmsKeyArn.length === 0 || v.kmsKeyArn.length > 2048) {
      bad(`versions[${i}].kmsKeyArn is missing`);
    }
    if (
      typeof v.wrappedKey !== 'string' ||
      v.wrappedKey.length === 0 ||
      v.wrappedKey.length > 8192 ||
      !BASE64.test(v.wrappedKey)
    ) {
      bad(`versions[${i}].wrappedKey is not base64`);
    }
    versions.push({
      version: v.version as number,
      createdAt: v.createdAt as string,
      status: v.status as 'active' | 'retired',
      kmsKeyArn: v.kmsKeyArn as string,
      wrappedKey: v.wrappedKey as string,
    });
  }
  const current = versions.find((v) => v.version === doc.current);
  if (current === undefined) bad('"current" is not one of the versions');
  if (current!.status !== 'active') bad('the current version must be active');
  return {
    type: KMS_KEYRING_TYPE,
    formatVersion: 1,
    keyringId: doc.keyringId as string,
    revision: doc.revision as number,
    current: doc.current as number,
    versions,
  };
}

/** Options of {@link FileKeyringStore}. */
export interface FileKeyringStoreOptions {
  /**
   * Read the file even when group or others have any permission on it (default `false`: such a file
   * is refused, as it suggests the keyring was copied around carelessly). Ignored on Windows.
   */
  allowInsecurePermissions?: boolean;
}

const MAX_FILE_BYTES = 1 << 20;

/** Thrown by a store when a concurrent writer changed the document since it was read. */
export function keyringConflict(where: string): SifreDBError {
  return new SifreDBError(
    'ERR_SIFREDB_KEY',
    `KMS keyring ${where} was changed by another writer meanwhile; nothing was written, retry the operation`,
  );
}

/**
 * The default {@link KeyringStore}: one JSON file, mode 0600, replaced atomically (temporary file in
 * the same directory, fsync, rename, directory fsync). A file that exists but does not parse is
 * reported as `ERR_SIFREDB_KEY` and never overwritten.
 */
export class FileKeyringStore implements KeyringStore {
  readonly path: string;
  readonly description: string;
  readonly #allowInsecurePermissions: boolean;
  /** Set inside {@link exclusive}: the lock is already held by this async call chain. */
  readonly #holding = new AsyncLocalStorage<boolean>();

  constructor(path: string, options: FileKeyringStoreOptions = {}) {
    if (typeof path !== 'string' || path.length === 0) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', 'FileKeyringStore: path must be a non-empty string');
    }
    this.path = resolve(path);
    this.description = `file:${this.path}`;
    this.#allowInsecurePermissions = options.allowInsecurePermissions === true;
  }

  async read(): Promise<KmsKeyringDocument | undefined> {
    let text: string;
    try {
      const handle = await open(this.path, fsConstants.O_RDONLY);
      try {
        const stat = await handle.stat();
        if (!stat.isFile()) {
          throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${this.description} is not a regular file`);
        }
        if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0 && !this.#allowInsecurePermissions) {
          throw new SifreDBError(
            'ERR_SIFREDB_KEY',
            `KMS keyring ${this.description} is accessible to group or others (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}); ` +
              'run chmod 600 on it, or pass allowInsecurePermissions: true',
          );
        }
        if (stat.size > MAX_FILE_BYTES) {
          throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${this.description} is larger than 1 MiB`);
        }
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (error instanceof SifreDBError) throw error;
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.description} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.description} is corrupted or not a SifreDB KMS keyring: not valid JSON`,
      );
    }
    return validateKeyringDocument(parsed, this.description);
  }

  /**
   * Runs `operation` holding `<path>.lock` (see {@link KeyringStore.exclusive}); a lock left by a
   * crashed process is broken, a live one waited for, then `ERR_SIFREDB_KEY` "locked by another process".
   */
  async exclusive<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#holding.getStore() === true) return operation();
    await this.#makeDirectory();
    return withFileLock(this.path, { what: `KMS keyring ${this.description}` }, () => this.#holding.run(true, operation));
  }

  async #makeDirectory(): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.description} cannot be written (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`,
      );
    }
  }

  /**
   * Writes `doc` if the stored document is still `previous` (compare-and-swap on `revision`). The
   * compare and the rename happen under the store's lock file, so two writers cannot both pass the
   * compare and the later rename silently drop the earlier version.
   */
  write(doc: KmsKeyringDocument, previous: KmsKeyringDocument | undefined): Promise<void> {
    return this.exclusive(() => this.#write(doc, previous));
  }

  async #write(doc: KmsKeyringDocument, previous: KmsKeyringDocument | undefined): Promise<void> {
    const dir = dirname(this.path);
    const temp = join(dir, `.${basename(this.path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    let placed = false;
    let created = false;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const handle = await open(temp, 'wx', 0o600);
      created = true;
      try {
        await handle.chmod(0o600);
        await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (previous === undefined) {
        // Create only if absent: link() fails with EEXIST when another process created it first.
        try {
          await link(temp, this.path);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'EEXIST') throw keyringConflict(this.description);
          if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'ENOSYS') throw error;
          // No hard links on this file system: check, then rename (a narrow race remains).
          if ((await this.read()) !== undefined) throw keyringConflict(this.description);
          await rename(temp, this.path);
          placed = true;
        }
      } else {
        const stored = await this.read();
        if (stored === undefined || stored.keyringId !== previous.keyringId || stored.revision !== previous.revision) {
          throw keyringConflict(this.description);
        }
        await rename(temp, this.path);
        placed = true;
      }
      await syncDirectory(dir);
    } catch (error) {
      if (error instanceof SifreDBError) throw error;
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.description} cannot be written (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`,
      );
    } finally {
      if (created && !placed) await unlink(temp).catch(() => undefined);
    }
  }
}

async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let handle;
  try {
    handle = await open(dir, fsConstants.O_RDONLY);
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the rename itself is still atomic.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'ENOTSUP') throw error;
  } finally {
    await handle?.close();
  }
}
