/**
 * AWS KMS key provider: envelope encryption of the root keys.
 *
 * Each root-key version is a 32-byte data key made by KMS `GenerateDataKey` (AES_256) and kept only
 * in wrapped form (`CiphertextBlob`) in a keyring — a JSON file by default, or any
 * {@link KeyringStore}. The KMS encryption context `{ "sifredb:keyring": keyringId,
 * "sifredb:version": "n" }` binds each wrapped key to its keyring and version, and lets IAM policies
 * restrict who may unwrap which keyring. A provider instance calls `Decrypt` once per version (in
 * parallel at open) and caches the result, so KMS is called per process start and per rotation,
 * never per value. See docs/KMS.md.
 *
 * `@aws-sdk/client-kms` is an optional peer dependency, imported on first use only.
 */
import { randomUUID } from 'node:crypto';
import { SifreDBError } from '../errors.js';
import type { KeyProvider, KeyVersionInfo } from './provider.js';
import { kmsError, SifreDBKmsError, type KmsCallDescription } from './kms/errors.js';
import {
  checkKeyringId,
  FileKeyringStore,
  KMS_KEYRING_TYPE,
  kmsEncryptionContext,
  validateKeyringDocument,
  type KeyringStore,
  type KmsKeyringDocument,
  type KmsWrappedKeyVersion,
} from './kms/keyring.js';

export { SifreDBKmsError } from './kms/errors.js';
export { autoRefresh, type AutoRefresh, type AutoRefreshOptions, type Refreshable } from './kms/auto-refresh.js';
export {
  FileKeyringStore,
  KMS_KEYRING_TYPE,
  kmsEncryptionContext,
  validateKeyringDocument,
  type FileKeyringStoreOptions,
  type KeyringStore,
  type KmsKeyringDocument,
  type KmsWrappedKeyVersion,
} from './kms/keyring.js';

/**
 * The part of a `KMSClient` (from `@aws-sdk/client-kms`) the provider uses. Typed structurally so
 * that SifreDB's type declarations do not require the AWS SDK to be installed.
 */
export interface KmsClientLike {
  send(command: unknown, options?: unknown): Promise<unknown>;
  destroy?(): void;
  readonly config?: unknown;
}

/** Cache limits for unwrapped data keys. */
export interface AwsKmsCacheOptions {
  /**
   * After this many milliseconds, the next {@link AwsKmsProvider.loadKey} of a version calls KMS
   * `Decrypt` again (e.g. at a Vault refresh), so that a disabled or deleted KMS key, or a revoked
   * permission, takes effect within this time. When KMS cannot be reached or throttles, the cached
   * key keeps being used (an outage does not stop the application); when KMS refuses (disabled,
   * pending deletion, access denied), the cached key is dropped and the error is thrown.
   * Default: no limit (unwrap once per process).
   */
  maxKeyAgeMs?: number;
  /**
   * Keep the unwrapped data keys in this provider's memory (default `true`). With `false`, every
   * {@link AwsKmsProvider.loadKey} calls KMS `Decrypt` and the plaintext is zeroed as soon as the
   * caller (the Vault's keyring, which keeps its own imported copy) has it; a new version's data key
   * from a rotation is dropped too. Trade-off: fewer plaintext copies of the data keys in the JS
   * heap, but every key load (Vault open, refresh after a rotation, a new tenant) needs KMS, and a
   * KMS outage then fails refreshes instead of being served from the cache (see `maxKeyAgeMs`).
   */
  keepPlaintextKeys?: boolean;
}

/** Options of {@link AwsKmsProvider.open} and {@link AwsKmsProvider.create}. */
export interface AwsKmsProviderOptions {
  /** The KMS key that wraps the data keys: key id, key ARN, alias name (`alias/x`) or alias ARN. */
  keyId: string;
  /** The keyring: a JSON file path (mode 0600, atomic writes) or your own {@link KeyringStore}. */
  keyring: string | KeyringStore;
  /**
   * Bound into the encryption context of every wrapped key (`sifredb:keyring`). When a keyring is
   * created: default a random UUID; set it to write IAM conditions ahead of time. When one is
   * opened: if given, it must match the stored one.
   */
  keyringId?: string;
  /** AWS region, when the provider creates its client (default: the SDK's region chain, e.g. AWS_REGION). */
  region?: string;
  /** A ready `KMSClient` (custom endpoint, credentials, retries, timeouts). Not destroyed by {@link AwsKmsProvider.close}. */
  client?: KmsClientLike;
  /**
   * Extra `KMSClient` constructor options when the provider creates its client (`endpoint`,
   * `maxAttempts`, `credentials`…). Default `requestHandler`: 5 s to connect, 15 s per request.
   */
  clientConfig?: Record<string, unknown>;
  /** {@link AwsKmsProvider.open} only: create the keyring (version 1) when it does not exist. Default `true`. */
  createIfMissing?: boolean;
  /**
   * Unwrap every version (in parallel) before returning, so that KMS problems show here. Default
   * `false`: `Vault.open` / `Keyring.open` unwrap them anyway (in parallel), and a router keeps
   * serving the other tenants when one tenant's provider cannot load.
   */
  preload?: boolean;
  /** For a file keyring: read it even if group or others have permissions on it. Default `false`. */
  allowInsecurePermissions?: boolean;
  /** Cache limits for the unwrapped keys. */
  cache?: AwsKmsCacheOptions;
}

/** Result of {@link AwsKmsProvider.rewrap}. */
export interface AwsKmsRewrapResult {
  /** Versions re-encrypted. */
  readonly versions: number;
  /** ARN of the KMS key that now wraps every version. */
  readonly kmsKeyArn: string;
}

type KmsSdk = typeof import('@aws-sdk/client-kms');

let sdkPromise: Promise<KmsSdk> | undefined;

/** Imports `@aws-sdk/client-kms` once, on first use; a clear error when it is not installed. */
function loadSdk(): Promise<KmsSdk> {
  sdkPromise ??= import('@aws-sdk/client-kms').catch((error: unknown) => {
    sdkPromise = undefined;
    const code = (error as { code?: unknown })?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new SifreDBError(
        'ERR_SIFREDB_INPUT',
        'AwsKmsProvider needs the optional peer dependency @aws-sdk/client-kms: npm install @aws-sdk/client-kms',
      );
    }
    throw new SifreDBError(
      'ERR_SIFREDB_INPUT',
      `AwsKmsProvider could not load @aws-sdk/client-kms (${typeof code === 'string' ? code : 'import failed'})`,
    );
  });
  return sdkPromise;
}

interface CachedKey {
  /** Own copy of the 32 key bytes (not from Buffer's shared pool); zeroed when dropped. */
  readonly bytes: Buffer;
  readonly loadedAt: number;
}

const KEY_BYTES = 32;
/** Timeouts of a client the provider makes (override with `clientConfig.requestHandler`). */
const DEFAULT_REQUEST_HANDLER = { connectionTimeout: 5_000, requestTimeout: 15_000, throwOnRequestTimeout: true };
const PARALLEL_KMS_CALLS = 8;

function invalidInput(message: string): never {
  throw new SifreDBError('ERR_SIFREDB_INPUT', message);
}

/**
 * A {@link KeyProvider} whose root keys are KMS data keys (envelope encryption). Create it with
 * {@link AwsKmsProvider.open} (creates the keyring on first use) or {@link AwsKmsProvider.create}.
 */
export class AwsKmsProvider implements KeyProvider {
  readonly description: string;
  readonly #sdk: KmsSdk;
  readonly #client: KmsClientLike;
  readonly #ownsClient: boolean;
  readonly #store: KeyringStore;
  readonly #storeDescription: string;
  readonly #maxKeyAgeMs: number;
  readonly #keepPlaintextKeys: boolean;
  #keyId: string;
  #doc: KmsKeyringDocument;
  #target: string | undefined;
  readonly #cache = new Map<number, CachedKey>();
  readonly #inflight = new Map<number, Promise<CachedKey>>();
  #mutation: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(init: {
    sdk: KmsSdk;
    client: KmsClientLike;
    ownsClient: boolean;
    store: KeyringStore;
    keyId: string;
    doc: KmsKeyringDocument;
    maxKeyAgeMs: number;
    keepPlaintextKeys: boolean;
  }) {
    this.#sdk = init.sdk;
    this.#client = init.client;
    this.#ownsClient = init.ownsClient;
    this.#store = init.store;
    this.#storeDescription = storeDescription(init.store);
    this.#keyId = init.keyId;
    this.#doc = init.doc;
    this.#maxKeyAgeMs = init.maxKeyAgeMs;
    this.#keepPlaintextKeys = init.keepPlaintextKeys;
    this.description = `aws-kms:${init.keyId} keyring ${this.#storeDescription}`;
  }

  /**
   * Opens the keyring, creating it with version 1 (one `GenerateDataKey`) when it does not exist
   * (unless `createIfMissing: false`). Opening an existing keyring calls no KMS API; the versions
   * are unwrapped (one `Decrypt` each) when the Vault loads them, or here with `preload: true`.
   */
  static async open(options: AwsKmsProviderOptions): Promise<AwsKmsProvider> {
    return AwsKmsProvider.#start(options, options.createIfMissing === false ? 'never' : 'if-missing');
  }

  /** Creates a new keyring with version 1; fails with `ERR_SIFREDB_KEY` if one already exists. */
  static async create(options: AwsKmsProviderOptions): Promise<AwsKmsProvider> {
    return AwsKmsProvider.#start(options, 'always');
  }

  static async #start(options: AwsKmsProviderOptions, mode: 'never' | 'if-missing' | 'always'): Promise<AwsKmsProvider> {
    if (typeof options !== 'object' || options === null) invalidInput('AwsKmsProvider: options must be an object');
    const { keyId, keyring, region, client, clientConfig, cache } = options;
    if (typeof keyId !== 'string' || keyId.trim() === '' || keyId.length > 2048) {
      invalidInput('AwsKmsProvider: keyId must be a KMS key id, key ARN, alias name or alias ARN');
    }
    if (options.keyringId !== undefined) checkKeyringId(options.keyringId, 'AwsKmsProvider');
    let store: KeyringStore;
    if (typeof keyring === 'string') {
      store = new FileKeyringStore(keyring, { allowInsecurePermissions: options.allowInsecurePermissions === true });
    } else if (typeof keyring === 'object' && keyring !== null && typeof keyring.read === 'function' && typeof keyring.write === 'function') {
      store = keyring;
    } else {
      invalidInput('AwsKmsProvider: keyring must be a file path or a KeyringStore ({ read(), write(doc, previous) })');
    }
    if (client !== undefined && (typeof client !== 'object' || client === null || typeof client.send !== 'function')) {
      invalidInput('AwsKmsProvider: client must be a KMSClient from @aws-sdk/client-kms');
    }
    if (region !== undefined && (typeof region !== 'string' || region === '')) invalidInput('AwsKmsProvider: region must be a string');
    if (client !== undefined && (region !== undefined || clientConfig !== undefined)) {
      invalidInput('AwsKmsProvider: region and clientConfig apply only when no client is given; configure your KMSClient instead');
    }
    if (clientConfig !== undefined && (typeof clientConfig !== 'object' || clientConfig === null)) {
      invalidInput('AwsKmsProvider: clientConfig must be an object of KMSClient options');
    }
    const maxKeyAgeMs = cache?.maxKeyAgeMs ?? Infinity;
    if (typeof maxKeyAgeMs !== 'number' || !(maxKeyAgeMs > 0)) {
      invalidInput('AwsKmsProvider: cache.maxKeyAgeMs must be a positive number of milliseconds');
    }
    const keepPlaintextKeys = cache?.keepPlaintextKeys ?? true;
    if (typeof keepPlaintextKeys !== 'boolean') invalidInput('AwsKmsProvider: cache.keepPlaintextKeys must be a boolean');

    const sdk = await loadSdk();
    const ownsClient = client === undefined;
    const kms: KmsClientLike =
      client ??
      new sdk.KMSClient({
        ...(region !== undefined ? { region } : {}),
        // A KMS endpoint that accepts connections but never answers must not hang Vault.open.
        requestHandler: DEFAULT_REQUEST_HANDLER,
        ...(clientConfig ?? {}),
      });
    try {
      let doc = await readDocument(store);
      let fresh: { version: number; bytes: Buffer } | undefined;
      if (doc === undefined && mode === 'never') {
        throw new SifreDBError(
          'ERR_SIFREDB_KEY',
          `KMS keyring ${storeDescription(store)} does not exist (createIfMissing is false)`,
        );
      }
      if (doc !== undefined && mode === 'always') {
        throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${storeDescription(store)} already exists`);
      }
      if (doc === undefined) {
        const keyringId = options.keyringId ?? randomUUID();
        const provisional = new AwsKmsProvider({
          sdk,
          client: kms,
          ownsClient: false,
          store,
          keyId,
          doc: { type: KMS_KEYRING_TYPE, formatVersion: 1, keyringId, revision: 0, current: 1, versions: [] },
          maxKeyAgeMs,
          keepPlaintextKeys,
        });
        const made = await provisional.#generate(keyringId, 1, 'creating');
        const created: KmsKeyringDocument = {
          type: KMS_KEYRING_TYPE,
          formatVersion: 1,
          keyringId,
          revision: 1,
          current: 1,
          versions: [made.record],
        };
        try {
          await store.write(created, undefined);
          doc = created;
          fresh = { version: 1, bytes: made.bytes };
        } catch (error) {
          made.bytes.fill(0);
          // Another process created it first: use theirs (unless an explicit create was asked for).
          const theirs = mode === 'if-missing' ? await readDocument(store) : undefined;
          if (theirs === undefined) throw error;
          doc = theirs;
        }
      }
      if (options.keyringId !== undefined && options.keyringId !== doc.keyringId) {
        throw new SifreDBError(
          'ERR_SIFREDB_KEY',
          `KMS keyring ${storeDescription(store)} has keyringId "${doc.keyringId}", not the configured "${options.keyringId}"`,
        );
      }
      const provider = new AwsKmsProvider({ sdk, client: kms, ownsClient, store, keyId, doc, maxKeyAgeMs, keepPlaintextKeys });
      if (fresh && keepPlaintextKeys) provider.#cache.set(fresh.version, { bytes: fresh.bytes, loadedAt: Date.now() });
      else fresh?.bytes.fill(0);
      if (options.preload === true) {
        try {
          await provider.preload();
        } catch (error) {
          provider.close();
          throw error;
        }
      }
      return provider;
    } catch (error) {
      if (ownsClient) kms.destroy?.();
      throw error;
    }
  }

  /** The configured KMS key (id, ARN or alias); after {@link AwsKmsProvider.rewrap}, the new one. */
  get keyId(): string {
    return this.#keyId;
  }

  /** The keyring id bound into the KMS encryption context. */
  get keyringId(): string {
    return this.#doc.keyringId;
  }

  /** The keyring document as last read or written (wrapped keys only; safe to back up or log). */
  get keyringDocument(): KmsKeyringDocument {
    return structuredClone(this.#doc);
  }

  /** Re-reads the keyring (other processes may have rotated) and lists its versions. No KMS call. */
  async listVersions(): Promise<KeyVersionInfo[]> {
    const doc = await this.#reload();
    return doc.versions.map((v) => ({
      version: v.version,
      createdAt: new Date(v.createdAt),
      status: v.status,
    }));
  }

  /** Re-reads the keyring and returns its current version. No KMS call. */
  async currentVersion(): Promise<number> {
    return (await this.#reload()).current;
  }

  /**
   * The 32 bytes of `version`: unwrapped with one KMS `Decrypt` the first time, from this provider's
   * cache afterwards (see {@link AwsKmsCacheOptions.maxKeyAgeMs}). Returns a fresh copy that the
   * caller zeroes once imported. The copy is its own allocation, never a slice of Buffer's shared pool.
   * With `cache.keepPlaintextKeys: false`, every call unwraps with KMS and nothing stays cached.
   */
  async loadKey(version: number): Promise<Uint8Array> {
    this.#checkOpen();
    if (!Number.isInteger(version) || version < 1 || version > 0xffff_ffff) {
      invalidInput('loadKey: version must be an integer in 1..2^32-1');
    }
    if (!this.#keepPlaintextKeys) {
      // Our own unwrap (not shared with concurrent callers), handed over as is: no other copy.
      return (await this.#unwrap(version, undefined)).bytes;
    }
    const cached = this.#cache.get(version);
    if (cached && Date.now() - cached.loadedAt < this.#maxKeyAgeMs) return ownCopy(cached.bytes);
    let pending = this.#inflight.get(version);
    if (!pending) {
      pending = this.#unwrap(version, cached).finally(() => this.#inflight.delete(version));
      this.#inflight.set(version, pending);
    }
    const entry = await pending;
    return ownCopy(entry.bytes);
  }

  /** Unwraps every version not cached yet, in parallel (at most 8 KMS calls at a time). */
  async preload(): Promise<void> {
    this.#checkOpen();
    const versions = this.#doc.versions.map((v) => v.version);
    await inBatches(versions, PARALLEL_KMS_CALLS, async (version) => {
      (await this.loadKey(version)).fill(0);
    });
  }

  /**
   * Makes a new version with one KMS `GenerateDataKey`, appends it to the keyring (atomic write)
   * and makes it current. Old versions stay readable. Returns the new version number.
   */
  rotate(): Promise<number> {
    return this.#exclusive(() => this.#underStoreLock(async () => {
      for (let attempt = 1; ; attempt++) {
        const doc = await this.#reload();
        const version = doc.versions[doc.versions.length - 1]!.version + 1;
        if (version > 0xffff_ffff) throw new SifreDBError('ERR_SIFREDB_KEY', 'key version space exhausted');
        const made = await this.#generate(doc.keyringId, version, 'rotating');
        const wrappingArns = new Set(doc.versions.map((v) => v.kmsKeyArn));
        if (!wrappingArns.has(made.record.kmsKeyArn) || wrappingArns.size !== 1) {
          made.bytes.fill(0);
          throw new SifreDBError(
            'ERR_SIFREDB_KEY',
            `KMS keyring ${this.#storeDescription} is wrapped under ${[...wrappingArns].join(', ')}, ` +
              `but keyId ${this.#keyId} is ${made.record.kmsKeyArn}; rewrap the keyring to that key first (nothing was written)`,
          );
        }
        const next: KmsKeyringDocument = {
          ...doc,
          revision: doc.revision + 1,
          current: version,
          versions: [...doc.versions, made.record],
        };
        try {
          await this.#store.write(next, doc);
        } catch (error) {
          made.bytes.fill(0);
          if (attempt < 3 && (await this.#changedSince(doc))) continue;
          throw error;
        }
        // A store that lost a race without noticing must not leave us encrypting under a key that
        // exists nowhere: the stored version has to carry our wrapped key before we use it.
        let stored: KmsKeyringDocument | undefined;
        try {
          stored = await readDocument(this.#store);
        } catch (error) {
          made.bytes.fill(0);
          throw error;
        }
        if (stored?.versions.find((v) => v.version === version)?.wrappedKey !== made.record.wrappedKey) {
          made.bytes.fill(0);
          throw new SifreDBError(
            'ERR_SIFREDB_KEY',
            `KMS keyring ${this.#storeDescription} does not hold the version ${version} this rotation wrote ` +
              '(another writer replaced it); the new key was discarded, retry the rotation',
          );
        }
        this.#doc = stored!.revision >= next.revision ? stored! : next;
        if (this.#keepPlaintextKeys) this.#cache.set(version, { bytes: made.bytes, loadedAt: Date.now() });
        else made.bytes.fill(0);
        return version;
      }
    }));
  }

  /**
   * Marks a version other than the current one `retired`: it still decrypts, but deterministic and
   * blind-index queries stop including it. Retire a version once no stored row uses it. No KMS call.
   */
  retire(version: number): Promise<void> {
    return this.#exclusive(() => this.#underStoreLock(async () => {
      const doc = await this.#reload();
      const record = doc.versions.find((v) => v.version === version);
      if (record === undefined) {
        throw new SifreDBError('ERR_SIFREDB_KEY', `key version ${version} is not in KMS keyring ${this.#storeDescription}`);
      }
      if (version === doc.current) {
        throw new SifreDBError('ERR_SIFREDB_KEY', `key version ${version} is current and cannot be retired; rotate first`);
      }
      if (record.status === 'retired') return;
      const next: KmsKeyringDocument = {
        ...doc,
        revision: doc.revision + 1,
        versions: doc.versions.map((v) => (v.version === version ? { ...v, status: 'retired' as const } : v)),
      };
      await this.#store.write(next, doc);
      this.#doc = next;
    }));
  }

  /**
   * Re-encrypts every wrapped key under another KMS key with KMS `ReEncrypt` (one call per version;
   * the data keys never leave KMS in plaintext) and writes the keyring atomically. Field data is
   * untouched: the root keys stay the same. Afterwards this provider uses `newKeyId`; configure it
   * for future opens. Needs kms:ReEncryptFrom on the old key and kms:ReEncryptTo on the new one.
   */
  rewrap(newKeyId: string): Promise<AwsKmsRewrapResult> {
    if (typeof newKeyId !== 'string' || newKeyId.trim() === '' || newKeyId.length > 2048) {
      invalidInput('rewrap: newKeyId must be a KMS key id, key ARN, alias name or alias ARN');
    }
    return this.#exclusive(() => this.#underStoreLock(async () => {
      const doc = await this.#reload();
      const versions = await inBatches(doc.versions, PARALLEL_KMS_CALLS, (record) =>
        this.#reEncrypt(doc.keyringId, record, newKeyId),
      );
      const arns = new Set(versions.map((v) => v.kmsKeyArn));
      const next: KmsKeyringDocument = { ...doc, revision: doc.revision + 1, versions };
      await this.#store.write(next, doc);
      this.#doc = next;
      this.#keyId = newKeyId;
      return { versions: versions.length, kmsKeyArn: [...arns].join(', ') };
    }));
  }

  /**
   * Zeroes and drops cached keys: one version, or all. The next {@link AwsKmsProvider.loadKey} calls
   * KMS again.
   */
  forget(version?: number): void {
    for (const [v, entry] of this.#cache) {
      if (version === undefined || v === version) {
        entry.bytes.fill(0);
        this.#cache.delete(v);
      }
    }
  }

  /** Zeroes the cached keys and, if the provider created its KMS client, destroys it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.forget();
    if (this.#ownsClient) this.#client.destroy?.();
  }

  // --- internals -----------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new SifreDBError('ERR_SIFREDB_KEY', `${this.description} is closed`);
  }

  async #reload(): Promise<KmsKeyringDocument> {
    this.#checkOpen();
    const doc = await readDocument(this.#store);
    if (doc === undefined) {
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.#storeDescription} has disappeared; restore it from a backup (without it, data encrypted under it cannot be read)`,
      );
    }
    if (doc.keyringId !== this.#doc.keyringId) {
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${this.#storeDescription} was replaced by another keyring (id "${doc.keyringId}", was "${this.#doc.keyringId}")`,
      );
    }
    // A store that went back in time would hide versions in use: keep the newer document.
    if (doc.revision >= this.#doc.revision) this.#doc = doc;
    return this.#doc;
  }

  async #changedSince(doc: KmsKeyringDocument): Promise<boolean> {
    try {
      const now = await readDocument(this.#store);
      return now !== undefined && now.revision !== doc.revision;
    } catch {
      return false;
    }
  }

  /** Runs a read-modify-write under the store's cross-process lock, when it has one. */
  #underStoreLock<T>(operation: () => Promise<T>): Promise<T> {
    const store = this.#store;
    return typeof store.exclusive === 'function' ? store.exclusive(operation) : operation();
  }

  #exclusive<T>(operation: () => Promise<T>): Promise<T> {
    this.#checkOpen();
    const run = this.#mutation.then(operation, operation);
    this.#mutation = run.catch(() => undefined);
    return run;
  }

  async #record(version: number): Promise<KmsWrappedKeyVersion> {
    let record = this.#doc.versions.find((v) => v.version === version);
    if (!record) {
      // Maybe another process rotated since this keyring was read.
      record = (await this.#reload()).versions.find((v) => v.version === version);
    }
    if (!record) {
      throw new SifreDBError('ERR_SIFREDB_KEY', `key version ${version} is not in KMS keyring ${this.#storeDescription}`);
    }
    return record;
  }

  async #unwrap(version: number, stale: CachedKey | undefined): Promise<CachedKey> {
    const record = await this.#record(version);
    let plaintext: Uint8Array | undefined;
    try {
      const response = (await this.#send(
        new this.#sdk.DecryptCommand({
          CiphertextBlob: Buffer.from(record.wrappedKey, 'base64'),
          KeyId: this.#keyId,
          EncryptionContext: kmsEncryptionContext(this.#doc.keyringId, version),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        }),
        'Decrypt',
        `unwrapping version ${version} of KMS keyring ${this.#storeDescription}`,
      )) as { Plaintext?: Uint8Array };
      plaintext = response.Plaintext;
    } catch (error) {
      if (stale && error instanceof SifreDBKmsError && error.transient) {
        // KMS outage or throttling after the key was loaded: keep serving the cached key.
        return stale;
      }
      if (stale) this.forget(version);
      throw error;
    }
    if (!(plaintext instanceof Uint8Array) || plaintext.length !== KEY_BYTES) {
      plaintext?.fill(0);
      if (stale) this.forget(version);
      throw new SifreDBError('ERR_SIFREDB_KEY', `KMS returned a data key of the wrong size for version ${version}`);
    }
    const entry = { bytes: ownCopy(plaintext), loadedAt: Date.now() };
    plaintext.fill(0);
    if (this.#closed) {
      entry.bytes.fill(0);
      this.#checkOpen();
    }
    if (!this.#keepPlaintextKeys) return entry;
    const previous = this.#cache.get(version);
    if (previous && previous !== entry) previous.bytes.fill(0);
    this.#cache.set(version, entry);
    return entry;
  }

  async #generate(
    keyringId: string,
    version: number,
    why: 'creating' | 'rotating',
  ): Promise<{ record: KmsWrappedKeyVersion; bytes: Buffer }> {
    const response = (await this.#send(
      new this.#sdk.GenerateDataKeyCommand({
        KeyId: this.#keyId,
        KeySpec: 'AES_256',
        EncryptionContext: kmsEncryptionContext(keyringId, version),
      }),
      'GenerateDataKey',
      `${why} version ${version} of KMS keyring ${storeDescription(this.#store)}`,
    )) as { Plaintext?: Uint8Array; CiphertextBlob?: Uint8Array; KeyId?: string };
    const { Plaintext: plaintext, CiphertextBlob: blob, KeyId: arn } = response;
    if (!(plaintext instanceof Uint8Array) || plaintext.length !== KEY_BYTES || !(blob instanceof Uint8Array) || blob.length === 0) {
      plaintext?.fill(0);
      throw new SifreDBError('ERR_SIFREDB_KMS', 'KMS GenerateDataKey returned an unexpected answer (no 32-byte data key)');
    }
    const bytes = ownCopy(plaintext);
    plaintext.fill(0);
    return {
      bytes,
      record: {
        version,
        createdAt: new Date().toISOString(),
        status: 'active',
        kmsKeyArn: typeof arn === 'string' && arn !== '' ? arn : this.#keyId,
        wrappedKey: Buffer.from(blob).toString('base64'),
      },
    };
  }

  async #reEncrypt(keyringId: string, record: KmsWrappedKeyVersion, newKeyId: string): Promise<KmsWrappedKeyVersion> {
    const context = kmsEncryptionContext(keyringId, record.version);
    const response = (await this.#send(
      new this.#sdk.ReEncryptCommand({
        CiphertextBlob: Buffer.from(record.wrappedKey, 'base64'),
        SourceKeyId: this.#keyId,
        SourceEncryptionContext: context,
        DestinationKeyId: newKeyId,
        DestinationEncryptionContext: context,
      }),
      'ReEncrypt',
      `re-wrapping version ${record.version} of KMS keyring ${this.#storeDescription} under ${newKeyId}`,
      `${this.#keyId} (source) or ${newKeyId} (destination)`,
    )) as { CiphertextBlob?: Uint8Array; KeyId?: string };
    if (!(response.CiphertextBlob instanceof Uint8Array) || response.CiphertextBlob.length === 0) {
      throw new SifreDBError('ERR_SIFREDB_KMS', 'KMS ReEncrypt returned no ciphertext');
    }
    return {
      ...record,
      kmsKeyArn: typeof response.KeyId === 'string' && response.KeyId !== '' ? response.KeyId : newKeyId,
      wrappedKey: Buffer.from(response.CiphertextBlob).toString('base64'),
    };
  }

  async #send(command: unknown, operation: string, action: string, keyId = this.#keyId): Promise<unknown> {
    try {
      return await this.#client.send(command);
    } catch (error) {
      const call: KmsCallDescription = { operation, action, keyId, target: await this.#describeTarget() };
      throw kmsError(error, call);
    }
  }

  /** `http://host:port` of a custom endpoint, else `region x`; never credentials or query strings. */
  async #describeTarget(): Promise<string> {
    if (this.#target !== undefined) return this.#target;
    let target = 'AWS KMS';
    try {
      const config = (this.#client.config ?? {}) as { endpoint?: unknown; region?: unknown };
      const endpoint = typeof config.endpoint === 'function' ? await (config.endpoint as () => Promise<unknown>)() : config.endpoint;
      const region = typeof config.region === 'function' ? await (config.region as () => Promise<unknown>)() : config.region;
      const e = endpoint as { protocol?: unknown; hostname?: unknown; port?: unknown } | undefined;
      if (e && typeof e.hostname === 'string') {
        const protocol = typeof e.protocol === 'string' ? e.protocol.replace(/:?$/, ':') : 'https:';
        target = `${protocol}//${e.hostname}${typeof e.port === 'number' || typeof e.port === 'string' ? `:${e.port}` : ''}`;
      } else if (typeof region === 'string' && region !== '') {
        target = `AWS KMS in region ${region}`;
      }
    } catch {
      // Describing the target must never hide the real error.
    }
    this.#target = target;
    return target;
  }
}

async function readDocument(store: KeyringStore): Promise<KmsKeyringDocument | undefined> {
  const where = storeDescription(store);
  let value: unknown;
  try {
    value = await store.read();
  } catch (error) {
    if (error instanceof SifreDBError) throw error;
    throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${where} cannot be read`);
  }
  return value === undefined ? undefined : validateKeyringDocument(value, where);
}

function storeDescription(store: KeyringStore): string {
  return typeof store.description === 'string' && store.description !== '' ? store.description : 'store';
}

/** A copy in its own allocation (not Buffer's shared pool), so zeroing it leaves no other copy around. */
function ownCopy(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  copy.set(bytes);
  return copy;
}

async function inBatches<T, R>(items: readonly T[], limit: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await run(items[index]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
