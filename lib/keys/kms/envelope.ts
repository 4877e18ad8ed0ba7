/**
 * The envelope keyring core shared by every KMS provider: root-key versions are 32-byte data keys
 * kept only wrapped — by one or several {@link KmsAdapter}s — in a keyring document
 * ({@link KeyringStore}, a JSON file by default). This class does everything that is not specific
 * to a service: creating and reading the keyring, cross-process locking, one unwrap per version per
 * provider instance (concurrent loads share it), cache limits, rotate / retire / rewrap, adding and
 * removing wrapping keys, and falling back to another wrapping key when one service fails.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { SifreDBError } from '../../errors.js';
import type { KeyProvider, KeyVersionInfo } from '../provider.js';
import type { GeneratedKey, KeyBinding, KmsAdapter, WrappedKey } from './adapter.js';
import { SifreDBKmsError } from './errors.js';
import {
  checkKeyringId,
  FileKeyringStore,
  KMS_KEYRING_TYPE,
  toFormat2,
  toStoredForm,
  validateKeyringDocument,
  type KeyringStore,
  type KmsKeyringDocument,
  type KmsKeyringDocumentV2,
  type KmsKeyringVersion,
} from './keyring.js';

/** Cache limits for unwrapped data keys (every KMS provider). */
export interface KmsCacheOptions {
  /**
   * After this many milliseconds, the next `loadKey` of a version unwraps it again (e.g. at a Vault
   * refresh), so that a disabled or deleted KMS key, or a revoked permission, takes effect within
   * this time. When the service cannot be reached or throttles (a `transient` error), the cached key
   * keeps being used; when it refuses, the cached key is dropped and the error is thrown.
   * Default: no limit (unwrap once per provider instance, i.e. per process).
   */
  maxKeyAgeMs?: number;
  /**
   * Keep the unwrapped data keys in the provider's memory (default `true`). With `false`, every
   * `loadKey` unwraps with the service and the plaintext is handed over without a cached copy (a
   * rotation's new key is dropped too): fewer plaintext copies in the JS heap, but every key load
   * needs the service, and an outage fails refreshes instead of being served from the cache.
   */
  keepPlaintextKeys?: boolean;
}

/** Options every envelope-keyring provider accepts (AWS, Vault, GCP, Azure, multi). */
export interface EnvelopeOptions {
  /** The keyring: a JSON file path (mode 0600, atomic writes) or your own {@link KeyringStore}. */
  keyring: string | KeyringStore;
  /**
   * Bound into every wrapped key (AWS encryption context, AAD / context elsewhere). When a keyring is
   * created: default a random UUID; set it to write access policies ahead of time. When one is
   * opened: if given, it must match the stored one.
   */
  keyringId?: string;
  /** `open` only: create the keyring (version 1) when it does not exist. Default `true`. */
  createIfMissing?: boolean;
  /**
   * Unwrap every version (in parallel) before returning, so that service problems show here.
   * Default `false`: `Vault.open` / `Keyring.open` unwrap them anyway.
   */
  preload?: boolean;
  /** For a file keyring: read it even if group or others have permissions on it. Default `false`. */
  allowInsecurePermissions?: boolean;
  /** Cache limits for the unwrapped keys. */
  cache?: KmsCacheOptions;
}

/** `never`: the keyring must exist; `if-missing`: create it if absent; `always`: must not exist. */
export type EnvelopeOpenMode = 'never' | 'if-missing' | 'always';

/** What {@link openEnvelope} hands to a provider's constructor. Opaque to providers. */
export interface EnvelopeInit {
  readonly store: KeyringStore;
  readonly doc: KmsKeyringDocumentV2;
  readonly adapters: readonly KmsAdapter[];
  readonly maxKeyAgeMs: number;
  readonly keepPlaintextKeys: boolean;
  readonly fresh: { readonly version: number; readonly bytes: Buffer } | undefined;
}

/** Result of a re-wrap. */
export interface KmsRewrapResult {
  /** Versions re-wrapped. */
  readonly versions: number;
  /** The key ids (as the service reported them) that now wrap the versions, comma-separated. */
  readonly keyIds: string;
}

interface CachedKey {
  /** Own copy of the 32 key bytes (not from Buffer's shared pool); zeroed when dropped. */
  readonly bytes: Buffer;
  readonly loadedAt: number;
}

const KEY_BYTES = 32;
const MAX_VERSION = 0xffff_ffff;
/** Service calls in flight at once for preload / rewrap / adding a wrapping key. */
export const PARALLEL_KMS_CALLS = 8;

function invalidInput(message: string): never {
  throw new SifreDBError('ERR_SIFREDB_INPUT', message);
}

/**
 * Validates the common options, reads (or creates) the keyring and builds the provider with `make`.
 * Adapters are closed when it fails. Provider classes call it from their static `open` / `create`.
 */
export async function openEnvelope<P extends EnvelopeKeyProvider>(
  name: string,
  options: EnvelopeOptions,
  adapters: readonly KmsAdapter[],
  mode: EnvelopeOpenMode,
  make: (init: EnvelopeInit) => P,
): Promise<P> {
  const closeAdapters = (): void => {
    for (const adapter of adapters) adapter.close?.();
  };
  try {
    if (adapters.length === 0) invalidInput(`${name}: at least one wrapping key is needed`);
    if (options.keyringId !== undefined) checkKeyringId(options.keyringId, name);
    const store = keyringStore(options, name);
    const maxKeyAgeMs = options.cache?.maxKeyAgeMs ?? Infinity;
    if (typeof maxKeyAgeMs !== 'number' || !(maxKeyAgeMs > 0)) {
      invalidInput(`${name}: cache.maxKeyAgeMs must be a positive number of milliseconds`);
    }
    const keepPlaintextKeys = options.cache?.keepPlaintextKeys ?? true;
    if (typeof keepPlaintextKeys !== 'boolean') invalidInput(`${name}: cache.keepPlaintextKeys must be a boolean`);

    let doc = await readDocument(store);
    let fresh: { version: number; bytes: Buffer } | undefined;
    const where = storeDescription(store);
    if (doc === undefined && mode === 'never') {
      throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${where} does not exist (createIfMissing is false)`);
    }
    if (doc !== undefined && mode === 'always') {
      throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${where} already exists`);
    }
    if (doc === undefined) {
      const keyringId = options.keyringId ?? randomUUID();
      const made = await generateVersion(adapters, { keyringId, version: 1 }, `creating version 1 of KMS keyring ${where}`);
      const created: KmsKeyringDocumentV2 = {
        type: KMS_KEYRING_TYPE,
        formatVersion: 2,
        keyringId,
        revision: 1,
        current: 1,
        versions: [{ version: 1, createdAt: new Date().toISOString(), status: 'active', wraps: made.wraps }],
      };
      try {
        await store.write(toStoredForm(created), undefined);
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
      fresh?.bytes.fill(0);
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `KMS keyring ${where} has keyringId "${doc.keyringId}", not the configured "${options.keyringId}"`,
      );
    }
    const provider = make({ store, doc, adapters, maxKeyAgeMs, keepPlaintextKeys, fresh });
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
    closeAdapters();
    throw error;
  }
}

function keyringStore(options: EnvelopeOptions, name: string): KeyringStore {
  const { keyring } = options;
  if (typeof keyring === 'string') {
    return new FileKeyringStore(keyring, { allowInsecurePermissions: options.allowInsecurePermissions === true });
  }
  if (typeof keyring === 'object' && keyring !== null && typeof keyring.read === 'function' && typeof keyring.write === 'function') {
    return keyring;
  }
  return invalidInput(`${name}: keyring must be a file path or a KeyringStore ({ read(), write(doc, previous) })`);
}

/**
 * A {@link KeyProvider} whose root keys are data keys wrapped by key services (envelope
 * encryption). Not constructed directly: use a provider (`AwsKmsProvider`, `VaultTransitProvider`,
 * `MultiKmsProvider`, …), which adapts one service and adds its own options.
 */
export class EnvelopeKeyProvider implements KeyProvider {
  readonly #store: KeyringStore;
  readonly #storeDescription: string;
  readonly #maxKeyAgeMs: number;
  readonly #keepPlaintextKeys: boolean;
  #adapters: KmsAdapter[];
  #doc: KmsKeyringDocumentV2;
  readonly #cache = new Map<number, CachedKey>();
  readonly #inflight = new Map<number, Promise<CachedKey>>();
  #mutation: Promise<unknown> = Promise.resolve();
  #closed = false;

  protected constructor(init: EnvelopeInit) {
    this.#store = init.store;
    this.#storeDescription = storeDescription(init.store);
    this.#adapters = [...init.adapters];
    this.#doc = init.doc;
    this.#maxKeyAgeMs = init.maxKeyAgeMs;
    this.#keepPlaintextKeys = init.keepPlaintextKeys;
    if (init.fresh && init.keepPlaintextKeys) this.#cache.set(init.fresh.version, { bytes: init.fresh.bytes, loadedAt: Date.now() });
    else init.fresh?.bytes.fill(0);
  }

  /** Secret-free: the wrapping key(s) and the keyring's store, e.g. `aws-kms:alias/app keyring file:/x.json`. */
  get description(): string {
    const keys = this.#adapters.map((a) => a.description);
    return `${keys.length === 1 ? keys[0] : `multi-kms(${keys.join(', ')})`} keyring ${this.#storeDescription}`;
  }

  /** The keyring id bound into every wrapped key. */
  get keyringId(): string {
    return this.#doc.keyringId;
  }

  /** The keyring document as last read or written, in its stored form (wrapped keys only; safe to back up). */
  get keyringDocument(): KmsKeyringDocument {
    return structuredClone(toStoredForm(this.#doc));
  }

  /** The adapters, in the order they are tried. */
  protected get adapters(): readonly KmsAdapter[] {
    return this.#adapters;
  }

  /** Re-reads the keyring (other processes may have rotated) and lists its versions. No service call. */
  async listVersions(): Promise<KeyVersionInfo[]> {
    const doc = await this.#reload();
    return doc.versions.map((v) => ({ version: v.version, createdAt: new Date(v.createdAt), status: v.status }));
  }

  /** Re-reads the keyring and returns its current version. No service call. */
  async currentVersion(): Promise<number> {
    return (await this.#reload()).current;
  }

  /**
   * The 32 bytes of `version`: unwrapped once (one service call, shared by concurrent callers), from
   * this provider's cache afterwards (see {@link KmsCacheOptions.maxKeyAgeMs}). Returns a fresh copy
   * in its own allocation (never a slice of Buffer's pool) that the caller zeroes once imported.
   */
  async loadKey(version: number): Promise<Uint8Array> {
    this.#checkOpen();
    if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
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
    return ownCopy((await pending).bytes);
  }

  /** Unwraps every version not cached yet, in parallel (at most 8 service calls at a time). */
  async preload(): Promise<void> {
    this.#checkOpen();
    const versions = this.#doc.versions.map((v) => v.version);
    await inBatches(versions, PARALLEL_KMS_CALLS, async (version) => {
      (await this.loadKey(version)).fill(0);
    });
  }

  /**
   * Makes a new version (one generate or wrap call per wrapping key), appends it to the keyring
   * (atomic write, under the store's lock) and makes it current. Old versions stay readable. Every
   * wrapping key must answer: a version missing a wrap would break the keyring's recovery promise.
   */
  rotate(): Promise<number> {
    return this.#exclusive(() =>
      this.#underStoreLock(async () => {
        for (let attempt = 1; ; attempt++) {
          const doc = await this.#reload();
          const version = doc.versions[doc.versions.length - 1]!.version + 1;
          if (version > MAX_VERSION) throw new SifreDBError('ERR_SIFREDB_KEY', 'key version space exhausted');
          const made = await generateVersion(
            this.#adapters,
            { keyringId: doc.keyringId, version },
            `rotating to version ${version} of KMS keyring ${this.#storeDescription}`,
          );
          const wanted = identities(made.wraps);
          const stale = doc.versions.find((v) => identities(v.wraps) !== wanted);
          if (stale !== undefined) {
            made.bytes.fill(0);
            throw new SifreDBError(
              'ERR_SIFREDB_KEY',
              `KMS keyring ${this.#storeDescription} is wrapped under ${describeWraps(stale.wraps)}, but the configured ` +
                `key${made.wraps.length > 1 ? 's wrap' : ' wraps'} as ${describeWraps(made.wraps)}; ` +
                `${made.wraps.length > 1 || stale.wraps.length > 1 ? 'add or remove wrapping keys (or rewrap)' : 'rewrap the keyring to that key'} first (nothing was written)`,
            );
          }
          const record: KmsKeyringVersion = { version, createdAt: new Date().toISOString(), status: 'active', wraps: made.wraps };
          const next: KmsKeyringDocumentV2 = { ...doc, revision: doc.revision + 1, current: version, versions: [...doc.versions, record] };
          try {
            await this.#store.write(toStoredForm(next), toStoredForm(doc));
          } catch (error) {
            made.bytes.fill(0);
            if (attempt < 3 && (await this.#changedSince(doc))) continue;
            throw error;
          }
          // A store that lost a race without noticing must not leave us encrypting under a key that
          // exists nowhere: the stored version has to carry our wrapped key before we use it.
          let stored: KmsKeyringDocumentV2 | undefined;
          try {
            stored = await readDocument(this.#store);
          } catch (error) {
            made.bytes.fill(0);
            throw error;
          }
          const storedRecord = stored?.versions.find((v) => v.version === version);
          if (storedRecord?.wraps[0]?.wrappedKey !== made.wraps[0]!.wrappedKey) {
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
      }),
    );
  }

  /**
   * Marks a version other than the current one `retired`: it still decrypts, but deterministic and
   * blind-index queries stop including it. No service call.
   */
  retire(version: number): Promise<void> {
    return this.#exclusive(() =>
      this.#underStoreLock(async () => {
        const doc = await this.#reload();
        const record = doc.versions.find((v) => v.version === version);
        if (record === undefined) {
          throw new SifreDBError('ERR_SIFREDB_KEY', `key version ${version} is not in KMS keyring ${this.#storeDescription}`);
        }
        if (version === doc.current) {
          throw new SifreDBError('ERR_SIFREDB_KEY', `key version ${version} is current and cannot be retired; rotate first`);
        }
        if (record.status === 'retired') return;
        await this.#write(doc, {
          ...doc,
          revision: doc.revision + 1,
          versions: doc.versions.map((v) => (v.version === version ? { ...v, status: 'retired' as const } : v)),
        });
      }),
    );
  }

  /**
   * Zeroes and drops cached keys: one version, or all. The next `loadKey` unwraps again.
   */
  forget(version?: number): void {
    for (const [v, entry] of this.#cache) {
      if (version === undefined || v === version) {
        entry.bytes.fill(0);
        this.#cache.delete(v);
      }
    }
  }

  /** Zeroes the cached keys and closes the adapters (which destroy the clients they created). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.forget();
    for (const adapter of this.#adapters) adapter.close?.();
  }

  // --- for provider classes ------------------------------------------------------------------

  /**
   * Re-wraps every version's wrap made by `from` under `to` (which replaces `from` among the
   * adapters): server-side with `to.rewrap` when it can, else unwrap (from the cache when loaded) +
   * `to.wrap`. One keyring write; field data untouched. `from === to` re-wraps under the key's
   * newest version (Vault, GCP).
   */
  protected rewrapWith(from: KmsAdapter, to: KmsAdapter): Promise<KmsRewrapResult> {
    return this.#exclusive(() =>
      this.#underStoreLock(async () => {
        const doc = await this.#reload();
        const versions = await inBatches(doc.versions, PARALLEL_KMS_CALLS, async (record) => {
          const binding = { keyringId: doc.keyringId, version: record.version };
          const old = candidates([from], record.wraps)[0]?.wrap;
          if (old === undefined) {
            throw new SifreDBError(
              'ERR_SIFREDB_KEY',
              `version ${record.version} of KMS keyring ${this.#storeDescription} has no wrap of ${from.description} to re-wrap`,
            );
          }
          let wrap = old.provider === to.provider && to.rewrap ? await to.rewrap(old, binding) : undefined;
          if (wrap === undefined) {
            const plaintext = await this.loadKey(record.version);
            try {
              wrap = await to.wrap(plaintext, binding);
            } finally {
              plaintext.fill(0);
            }
          }
          const wraps = record.wraps.filter((w) => w !== old && identity(w) !== identity(wrap!));
          wraps.splice(record.wraps.indexOf(old), 0, wrap);
          return { ...record, wraps };
        });
        await this.#write(doc, { ...doc, revision: doc.revision + 1, versions });
        // `from` is not closed: it may share its client with `to`; the provider decides.
        if (from !== to) this.#adapters = this.#adapters.map((a) => (a === from ? to : a));
        return { versions: versions.length, keyIds: [...new Set(versions.flatMap((v) => v.wraps.map((w) => w.keyId)))].join(', ') };
      }),
    );
  }

  /**
   * Wraps every version under `adapter` too (one wrap call per version, the data keys unwrapped once
   * each if not loaded) and adds it to the adapters. Versions it already wraps are left alone.
   */
  protected addWrapping(adapter: KmsAdapter): Promise<number> {
    return this.#exclusive(() =>
      this.#underStoreLock(async () => {
        const doc = await this.#reload();
        let added = 0;
        const versions = await inBatches(doc.versions, PARALLEL_KMS_CALLS, async (record) => {
          if (record.wraps.some((w) => owns(adapter, w))) return record;
          const plaintext = await this.loadKey(record.version);
          try {
            const wrap = await adapter.wrap(plaintext, { keyringId: doc.keyringId, version: record.version });
            added += 1;
            return { ...record, wraps: [...record.wraps.filter((w) => identity(w) !== identity(wrap)), wrap] };
          } finally {
            plaintext.fill(0);
          }
        });
        if (added > 0) await this.#write(doc, { ...doc, revision: doc.revision + 1, versions });
        this.#adapters.push(adapter);
        return added;
      }),
    );
  }

  /**
   * Drops `adapter`'s wraps from every version (no service call) and the adapter itself. Refused
   * when a version would be left without any wrap.
   */
  protected removeWrapping(adapter: KmsAdapter): Promise<number> {
    return this.#exclusive(() =>
      this.#underStoreLock(async () => {
        const doc = await this.#reload();
        let removed = 0;
        const versions = doc.versions.map((record) => {
          const wraps = record.wraps.filter((w) => !owns(adapter, w));
          if (wraps.length === 0) {
            throw new SifreDBError(
              'ERR_SIFREDB_KEY',
              `version ${record.version} of KMS keyring ${this.#storeDescription} is wrapped only under ${adapter.description}; ` +
                'add another wrapping key first (nothing was written)',
            );
          }
          removed += record.wraps.length - wraps.length;
          return { ...record, wraps };
        });
        if (removed > 0) await this.#write(doc, { ...doc, revision: doc.revision + 1, versions });
        this.#adapters = this.#adapters.filter((a) => a !== adapter);
        adapter.close?.();
        return removed;
      }),
    );
  }

  // --- internals -----------------------------------------------------------------------------

  #checkOpen(): void {
    if (this.#closed) throw new SifreDBError('ERR_SIFREDB_KEY', `${this.description} is closed`);
  }

  async #write(previous: KmsKeyringDocumentV2, next: KmsKeyringDocumentV2): Promise<void> {
    await this.#store.write(toStoredForm(next), toStoredForm(previous));
    this.#doc = next;
  }

  async #reload(): Promise<KmsKeyringDocumentV2> {
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

  async #changedSince(doc: KmsKeyringDocumentV2): Promise<boolean> {
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

  async #record(version: number): Promise<KmsKeyringVersion> {
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
    const binding = { keyringId: this.#doc.keyringId, version };
    const tries = candidates(this.#adapters, record.wraps);
    if (tries.length === 0) {
      if (stale) this.forget(version);
      throw new SifreDBError(
        'ERR_SIFREDB_KEY',
        `version ${version} of KMS keyring ${this.#storeDescription} is wrapped only under ${describeWraps(record.wraps)}; ` +
          `configure one of those keys (this provider has ${this.#adapters.map((a) => a.description).join(', ')})`,
      );
    }
    const failures: SifreDBError[] = [];
    let plaintext: Uint8Array | undefined;
    for (const { adapter, wrap } of tries) {
      try {
        plaintext = await adapter.unwrap(wrap, binding);
        if (!(plaintext instanceof Uint8Array) || plaintext.length !== KEY_BYTES) {
          (plaintext as Uint8Array | undefined)?.fill?.(0);
          plaintext = undefined;
          throw new SifreDBError('ERR_SIFREDB_KEY', `${adapter.description} returned a data key of the wrong size for version ${version}`);
        }
        break;
      } catch (error) {
        failures.push(adapterFailure(adapter, error, `unwrapping version ${version} of KMS keyring ${this.#storeDescription}`));
      }
    }
    if (plaintext === undefined) {
      const error = combine(failures);
      if (stale && error instanceof SifreDBKmsError && error.transient) {
        // An outage or throttling after the key was loaded: keep serving the cached key.
        return stale;
      }
      if (stale) this.forget(version);
      throw error;
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
}

/** `provider keyId` of a wrap: two wraps with the same identity are the same wrapping key. */
function identity(wrap: WrappedKey): string {
  return `${wrap.provider} ${wrap.keyId}`;
}

/** The sorted identities of a version's wraps, as one comparable string. */
function identities(wraps: readonly WrappedKey[]): string {
  return wraps.map(identity).sort().join('\n');
}

function describeWraps(wraps: readonly WrappedKey[]): string {
  return wraps.map((w) => (w.provider === 'aws-kms' ? w.keyId : `${w.provider}:${w.keyId}`)).join(' + ');
}

function owns(adapter: KmsAdapter, wrap: WrappedKey): boolean {
  return adapter.owns ? adapter.owns(wrap) : wrap.provider === adapter.provider && wrap.keyId === adapter.keyId;
}

/**
 * The (adapter, wrap) pairs to try for one version, in order: each adapter's own wraps (adapters in
 * their configured order), then each adapter with the other wraps of its provider (a key reached
 * under another name or address).
 */
function candidates(adapters: readonly KmsAdapter[], wraps: readonly WrappedKey[]): Array<{ adapter: KmsAdapter; wrap: WrappedKey }> {
  const exact: Array<{ adapter: KmsAdapter; wrap: WrappedKey }> = [];
  const loose: Array<{ adapter: KmsAdapter; wrap: WrappedKey }> = [];
  for (const adapter of adapters) {
    for (const wrap of wraps) {
      if (wrap.provider !== adapter.provider) continue;
      (owns(adapter, wrap) ? exact : loose).push({ adapter, wrap });
    }
  }
  // A wrap another adapter owns exactly is that adapter's: do not spend a call trying it elsewhere.
  const ownedElsewhere = new Set(exact.map((c) => c.wrap));
  return [...exact, ...loose.filter((c) => !ownedElsewhere.has(c.wrap))];
}

/** Makes a version's data key with the first adapter and wraps it under every other one. */
export async function generateVersion(
  adapters: readonly KmsAdapter[],
  binding: KeyBinding,
  action: string,
): Promise<{ bytes: Buffer; wraps: WrappedKey[] }> {
  const [first, ...others] = adapters;
  let made: GeneratedKey;
  try {
    if (first!.generate) {
      made = await first!.generate(binding);
    } else {
      const plaintext = Buffer.allocUnsafeSlow(KEY_BYTES);
      randomBytes(KEY_BYTES).copy(plaintext);
      try {
        made = { plaintext, wrapped: await first!.wrap(plaintext, binding) };
      } catch (error) {
        plaintext.fill(0);
        throw error;
      }
    }
  } catch (error) {
    throw adapterFailure(first!, error, action);
  }
  if (!(made.plaintext instanceof Uint8Array) || made.plaintext.length !== KEY_BYTES) {
    made.plaintext?.fill(0);
    throw new SifreDBError('ERR_SIFREDB_KMS', `${first!.description} generated a data key that is not ${KEY_BYTES} bytes`);
  }
  const bytes = ownCopy(made.plaintext);
  made.plaintext.fill(0);
  const wraps = [made.wrapped];
  try {
    // Every wrapping key must hold the new version: a version missing one would be lost with the others.
    for (const adapter of others) {
      try {
        const wrap = await adapter.wrap(bytes, binding);
        if (!wraps.some((w) => identity(w) === identity(wrap))) wraps.push(wrap);
      } catch (error) {
        throw adapterFailure(adapter, error, action);
      }
    }
  } catch (error) {
    bytes.fill(0);
    throw error;
  }
  return { bytes, wraps };
}

/** An adapter's failure as a SifreDB error; anything not ours is not trusted to be secret-free. */
function adapterFailure(adapter: KmsAdapter, error: unknown, action: string): SifreDBError {
  if (error instanceof SifreDBError) return error;
  return new SifreDBKmsError('ERR_SIFREDB_KMS', `${adapter.description} failed unexpectedly while ${action}`, {
    provider: adapter.provider,
    operation: 'unknown',
    reason: 'refused',
    transient: false,
  });
}

/**
 * One error for all the wrapping keys that failed: the only one as is, else a summary whose
 * `transient` says whether any might answer later (then a cached key is kept) and whose code is
 * `ERR_SIFREDB_KEY` only when every service called the wrapped key itself bad.
 */
function combine(failures: readonly SifreDBError[]): SifreDBError {
  if (failures.length === 1) return failures[0]!;
  const kms = failures.filter((e): e is SifreDBKmsError => e instanceof SifreDBKmsError);
  const transient = kms.some((e) => e.transient);
  const code = failures.every((e) => e.code === 'ERR_SIFREDB_KEY') ? 'ERR_SIFREDB_KEY' : 'ERR_SIFREDB_KMS';
  return new SifreDBKmsError(
    code,
    `every wrapping key failed: ${failures.map((e, i) => `[${i + 1}] ${e.message}`).join(' ')}`,
    {
      provider: 'multi',
      operation: 'unwrap',
      reason: transient ? (kms.find((e) => e.transient)?.reason ?? 'service') : (kms[0]?.reason ?? 'refused'),
      transient,
      failures,
    },
  );
}

async function readDocument(store: KeyringStore): Promise<KmsKeyringDocumentV2 | undefined> {
  const where = storeDescription(store);
  let value: unknown;
  try {
    value = await store.read();
  } catch (error) {
    if (error instanceof SifreDBError) throw error;
    throw new SifreDBError('ERR_SIFREDB_KEY', `KMS keyring ${where} cannot be read`);
  }
  return value === undefined ? undefined : toFormat2(validateKeyringDocument(value, where));
}

function storeDescription(store: KeyringStore): string {
  return typeof store.description === 'string' && store.description !== '' ? store.description : 'store';
}

/** A copy in its own allocation (not Buffer's shared pool), so zeroing it leaves no other copy around. */
export function ownCopy(bytes: Uint8Array): Buffer {
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
