/**
 * The KMS keyring: the wrapped (KMS-encrypted) data keys of every root-key version, as a JSON
 * document, and where it is kept. Holds no plaintext key: a stolen keyring is useless without KMS.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SifreDBError } from '../../errors.js';
import { FileExistsError, realFilePath, writeFileAtomically } from '../atomic-file.js';
import { describeMemberNames, jsonKind, readPrivateJson } from '../json-file.js';
import { withFileLock } from '../lock-file.js';
import { bindingContext, type WrappedKey } from './adapter.js';

/** The `type` of a KMS keyring document. */
export const KMS_KEYRING_TYPE = 'sifredb-kms-keyring';

/**
 * One root-key version in a format-1 keyring: a 32-byte data key from AWS KMS `GenerateDataKey`,
 * kept only wrapped. Format 1 is written for keyrings whose every version has exactly one AWS KMS
 * wrap (so keyrings made before format 2 existed stay byte-compatible); everything else is format 2.
 */
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

/** Format 1: every version wrapped once, by AWS KMS. */
export interface KmsKeyringDocumentV1 {
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

/** One root-key version in a format-2 keyring: its data key wrapped under one or more keys. */
export interface KmsKeyringVersion {
  version: number;
  /** ISO 8601 creation time. */
  createdAt: string;
  status: 'active' | 'retired';
  /** One per wrapping key (several for a multi-service keyring), each bound to keyringId + version. */
  wraps: WrappedKey[];
}

/** Format 2: any provider, and any number of wrapping keys per version. */
export interface KmsKeyringDocumentV2 {
  type: typeof KMS_KEYRING_TYPE;
  formatVersion: 2;
  keyringId: string;
  revision: number;
  current: number;
  /** Ascending by version. */
  versions: KmsKeyringVersion[];
}

/** The JSON document a {@link KeyringStore} keeps: format 1 or 2. */
export type KmsKeyringDocument = KmsKeyringDocumentV1 | KmsKeyringDocumentV2;

/** The provider name format-1 wraps have. */
export const AWS_KMS_PROVIDER = 'aws-kms';

/** Any document in format 2 (the form the envelope core works on). Format 1 converts losslessly. */
export function toFormat2(doc: KmsKeyringDocument): KmsKeyringDocumentV2 {
  if (doc.formatVersion === 2) return doc;
  return {
    type: KMS_KEYRING_TYPE,
    formatVersion: 2,
    keyringId: doc.keyringId,
    revision: doc.revision,
    current: doc.current,
    versions: doc.versions.map((v) => ({
      version: v.version,
      createdAt: v.createdAt,
      status: v.status,
      wraps: [{ provider: AWS_KMS_PROVIDER, keyId: v.kmsKeyArn, wrappedKey: v.wrappedKey }],
    })),
  };
}

/**
 * The form to store: format 1 when every version has exactly one AWS KMS wrap (what SifreDB wrote
 * before format 2, and still reads), else format 2.
 */
export function toStoredForm(doc: KmsKeyringDocumentV2): KmsKeyringDocument {
  const format1 = doc.versions.every((v) => v.wraps.length === 1 && v.wraps[0]!.provider === AWS_KMS_PROVIDER && BASE64.test(v.wraps[0]!.wrappedKey));
  if (!format1) return doc;
  return {
    type: KMS_KEYRING_TYPE,
    formatVersion: 1,
    keyringId: doc.keyringId,
    revision: doc.revision,
    current: doc.current,
    versions: doc.versions.map((v) => ({
      version: v.version,
      createdAt: v.createdAt,
      status: v.status,
      kmsKeyArn: v.wraps[0]!.keyId,
      wrappedKey: v.wraps[0]!.wrappedKey,
    })),
  };
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

/** The KMS encryption context that binds a wrapped key to its keyring and version (see `bindingContext`). */
export function kmsEncryptionContext(keyringId: string, version: number): Record<string, string> {
  return bindingContext({ keyringId, version });
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

const PROVIDER = /^[a-z][a-z0-9-]{0,31}$/;
const PRINTABLE = /^[\x21-\x7e]+$/;
const MAX_WRAPS = 16;

/** `Date#toISOString()` of a date in years 0000–9999, the only form the writers produce. */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TOP_MEMBERS = ['type', 'formatVersion', 'keyringId', 'revision', 'current', 'versions'];
const VERSION_MEMBERS: Record<1 | 2, readonly string[]> = {
  1: ['version', 'createdAt', 'status', 'kmsKeyArn', 'wrappedKey'],
  2: ['version', 'createdAt', 'status', 'wraps'],
};
const WRAP_MEMBERS = ['provider', 'keyId', 'wrappedKey'];
const MAX_WRAPPED_KEY = 16384;
const MAX_KEY_ID = 2048;

/** Padded standard base64 that decodes to at least one byte and re-encodes to itself (no stray bits). */
function isCanonicalBase64(text: string): boolean {
  return text.length > 0 && BASE64.test(text) && Buffer.from(text, 'base64').toString('base64') === text;
}

/**
 * Validates a parsed keyring document (format 1 or 2) exactly as docs/KMS.md ("The keyring file,
 * byte for byte") specifies; throws `ERR_SIFREDB_KEY` naming the first problem. `where` names the
 * store in the message. No value from the document is quoted but safe integers and short member
 * names: a field may hold anything, key material included. Returns a clean copy.
 */
export function validateKeyringDocument(value: unknown, where: string): KmsKeyringDocument {
  const bad = (why: string): never => {
    throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${where} is corrupted or not a SifreDB KMS keyring: ${why}`);
  };
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const exactMembers = (object: Record<string, unknown>, names: readonly string[], at: string): void => {
    for (const name of names) if (!Object.hasOwn(object, name)) bad(`${at} lacks the member "${name}"`);
    const extra = Object.keys(object).filter((name) => !names.includes(name));
    if (extra.length > 0) bad(`${at} has members this reader does not know: ${describeMemberNames(extra)}`);
  };
  if (!isObject(value)) bad(`not a JSON object (${jsonKind(value)})`);
  const doc = value as Record<string, unknown>;
  if (doc.type !== KMS_KEYRING_TYPE) bad(`"type" is not "${KMS_KEYRING_TYPE}" (${jsonKind(doc.type)})`);
  const format = doc.formatVersion;
  if (format !== 1 && format !== 2) bad(`unsupported "formatVersion" ${jsonKind(format)} (this version of SifreDB reads 1 and 2)`);
  exactMembers(doc, TOP_MEMBERS, 'the top level');
  if (typeof doc.keyringId !== 'string' || !KEYRING_ID.test(doc.keyringId)) {
    bad(`invalid "keyringId" (${jsonKind(doc.keyringId)}; 1..128 characters of letters, digits and ._:@/+=- starting with a letter or digit)`);
  }
  if (!Number.isSafeInteger(doc.revision) || (doc.revision as number) < 1) bad(`invalid "revision" (${jsonKind(doc.revision)}; an integer in 1..2^53-1)`);
  if (!Number.isInteger(doc.current)) bad(`"current" must be an integer (${jsonKind(doc.current)})`);
  if (!Array.isArray(doc.versions) || doc.versions.length === 0) bad(`"versions" must be a non-empty array (${jsonKind(doc.versions)})`);
  const checkWrappedKey = (text: unknown, at: string, base64: boolean): string => {
    if (typeof text !== 'string' || text.length > MAX_WRAPPED_KEY || !(base64 ? isCanonicalBase64(text) : text.length > 0 && PRINTABLE.test(text))) {
      bad(`${at} is not ${base64 ? 'base64 (canonical, padded standard base64)' : 'printable ASCII'} of 1..${MAX_WRAPPED_KEY} characters (${jsonKind(text)})`);
    }
    return text as string;
  };
  const checkKeyId = (text: unknown, at: string): string => {
    if (typeof text !== 'string' || text.length === 0 || text.length > MAX_KEY_ID || !PRINTABLE.test(text)) {
      bad(`${at} is missing or not 1..${MAX_KEY_ID} printable ASCII characters (${jsonKind(text)})`);
    }
    return text as string;
  };
  const entries: Array<{ version: number; createdAt: string; status: 'active' | 'retired'; raw: Record<string, unknown>; at: string }> = [];
  let previous = 0;
  for (const [i, entry] of (doc.versions as unknown[]).entries()) {
    const at = `versions[${i}]`;
    if (!isObject(entry)) bad(`${at} is not an object (${jsonKind(entry)})`);
    const v = entry as Record<string, unknown>;
    exactMembers(v, VERSION_MEMBERS[format as 1 | 2], at);
    if (!Number.isInteger(v.version) || (v.version as number) < 1 || (v.version as number) > MAX_VERSION) {
      bad(`${at}.version must be an integer in 1..2^32-1 (${jsonKind(v.version)})`);
    }
    if ((v.version as number) <= previous) bad('versions must be unique and ascending');
    previous = v.version as number;
    const createdAt = v.createdAt;
    if (typeof createdAt !== 'string' || !ISO_TIMESTAMP.test(createdAt) || Number.isNaN(Date.parse(createdAt)) || new Date(createdAt).toISOString() !== createdAt) {
      bad(`${at}.createdAt is not a date as Date#toISOString() writes it (YYYY-MM-DDTHH:mm:ss.sssZ) (${jsonKind(createdAt)})`);
    }
    if (v.status !== 'active' && v.status !== 'retired') bad(`${at}.status must be "active" or "retired" (${jsonKind(v.status)})`);
    entries.push({ version: v.version as number, createdAt: createdAt as string, status: v.status as 'active' | 'retired', raw: v, at });
  }
  const current = entries.find((v) => v.version === doc.current);
  if (current === undefined) bad('"current" is not one of the versions');
  if (current!.status !== 'active') bad('the current version must be active');
  // Key order as written: type, formatVersion, keyringId, revision, current, versions.
  const head = (formatVersion: 1 | 2) => ({
    type: KMS_KEYRING_TYPE as typeof KMS_KEYRING_TYPE,
    formatVersion,
    keyringId: doc.keyringId as string,
    revision: doc.revision as number,
    current: doc.current as number,
  });
  if (format === 1) {
    return {
      ...(head(1) as { type: typeof KMS_KEYRING_TYPE; formatVersion: 1; keyringId: string; revision: number; current: number }),
      versions: entries.map(({ version, createdAt, status, raw, at }) => ({
        version,
        createdAt,
        status,
        kmsKeyArn: checkKeyId(raw.kmsKeyArn, `${at}.kmsKeyArn`),
        wrappedKey: checkWrappedKey(raw.wrappedKey, `${at}.wrappedKey`, true),
      })),
    };
  }
  return {
    ...(head(2) as { type: typeof KMS_KEYRING_TYPE; formatVersion: 2; keyringId: string; revision: number; current: number }),
    versions: entries.map(({ version, createdAt, status, raw, at }) => {
      if (!Array.isArray(raw.wraps) || raw.wraps.length === 0 || raw.wraps.length > MAX_WRAPS) {
        bad(`${at}.wraps must be an array of 1..${MAX_WRAPS} wrapped keys (${Array.isArray(raw.wraps) ? `${raw.wraps.length} given` : jsonKind(raw.wraps)})`);
      }
      const seen = new Set<string>();
      const wraps = (raw.wraps as unknown[]).map((w, j): WrappedKey => {
        const wat = `${at}.wraps[${j}]`;
        if (!isObject(w)) bad(`${wat} is not an object (${jsonKind(w)})`);
        const wrap = w as Record<string, unknown>;
        exactMembers(wrap, WRAP_MEMBERS, wat);
        if (typeof wrap.provider !== 'string' || !PROVIDER.test(wrap.provider)) {
          bad(`${wat}.provider is invalid (${jsonKind(wrap.provider)}; 1..32 characters of a-z, 0-9 and -, starting with a letter)`);
        }
        const keyId = checkKeyId(wrap.keyId, `${wat}.keyId`);
        const identity = `${wrap.provider as string} ${keyId}`;
        if (seen.has(identity)) bad(`${at} is wrapped twice under the same key`);
        seen.add(identity);
        // AWS KMS ciphertext blobs are binary: stored as base64, canonical like format 1's (an AWS-only
        // format-2 document is written back as format 1). Other providers' adapters check their own form.
        const wrappedKey = checkWrappedKey(wrap.wrappedKey, `${wat}.wrappedKey`, wrap.provider === AWS_KMS_PROVIDER);
        return { provider: wrap.provider as string, keyId, wrappedKey };
      });
      return { version, createdAt, status, wraps };
    }),
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
 * The default {@link KeyringStore}: one JSON file, mode 0600, replaced atomically through symlinks
 * to the real file (temporary file beside it, fsync, rename, directory fsync; the links stay). A file
 * that exists but does not parse is reported as `ERR_SIFREDB_KEY` and never overwritten.
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
    const parsed = await readPrivateJson(this.path, {
      what: `KMS keyring ${this.description}`,
      allowInsecurePermissions: this.#allowInsecurePermissions,
      maxBytes: MAX_FILE_BYTES,
    });
    return parsed === undefined ? undefined : validateKeyringDocument(parsed, this.description);
  }

  /**
   * Runs `operation` holding `<real path>.lock` (see {@link KeyringStore.exclusive}); the lock is the
   * real file's (the end of the path's symlink chain), so writers reaching it through different links
   * share it. A lock left by a crashed process is broken, a live one waited for, then
   * `ERR_SIFREDB_KEY` "locked by another process".
   */
  async exclusive<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#holding.getStore() === true) return operation();
    let real: string;
    try {
      real = await realFilePath(this.path);
      await mkdir(dirname(real), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.description} cannot be written (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`,
      );
    }
    return withFileLock(real, { what: `KMS keyring ${this.description}` }, () => this.#holding.run(true, operation));
  }

  /**
   * Writes `doc` if the stored document is still `previous` (compare-and-swap on `revision`), through
   * symlinks to the real file, atomically, mode 0600 (atomic-file.ts). The compare and the rename
   * happen under the store's lock file, so two writers cannot both pass the compare and the later
   * rename silently drop the earlier version.
   */
  write(doc: KmsKeyringDocument, previous: KmsKeyringDocument | undefined): Promise<void> {
    return this.exclusive(() => this.#write(doc, previous));
  }

  async #write(doc: KmsKeyringDocument, previous: KmsKeyringDocument | undefined): Promise<void> {
    const bytes = Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
    try {
      if (previous === undefined) {
        // Create only if absent: another process that created it first wins.
        await writeFileAtomically(this.path, bytes, 'create');
      } else {
        const stored = await this.read();
        if (stored === undefined || stored.keyringId !== previous.keyringId || stored.revision !== previous.revision) {
          throw keyringConflict(this.description);
        }
        await writeFileAtomically(this.path, bytes, 'replace');
      }
    } catch (error) {
      if (error instanceof SifreDBError) throw error;
      if (error instanceof FileExistsError) throw keyringConflict(this.description);
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.description} cannot be written (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`,
      );
    }
  }
}
