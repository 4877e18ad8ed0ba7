/**
 * {@link Keyring}: the loaded root keys of a provider (or of every tenant of a router), imported into
 * the backend, and a bounded cache of the per-context handles derived from them.
 */
import { utf8Bytes } from '../format/bytes.js';
import { getBackend } from '../backend/default.js';
import type { Backend, BlindIndexHandle, CipherHandle, RandomizedAlgorithmId, RootKeyHandle } from '../backend/types.js';
import { ALGORITHM } from '../backend/types.js';
import { assertContext, type EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError, asSifreDBError } from '../errors.js';
import { isKeyStatus, isKeyVersion, MAX_KEY_VERSION, ROOT_KEY_LENGTH } from './material.js';
import { HandleCache } from './handle-cache.js';
import type { KeyProvider, KeyVersionInfo } from './provider.js';
import { assertKeyProvider, TenantKeyRouter } from './tenant-router.js';

/** Options of {@link Keyring.open}. */
export interface KeyringOptions {
  /**
   * Bound on cached derived handles (one per purpose × context × index × key version in use),
   * approximately LRU. Default 10,000. A miss costs one HKDF and a key schedule, so size it to the
   * working set of columns × tenants.
   */
  cacheSize?: number;
  /** Backend to import keys into; default the one chosen by `SIFREDB_BACKEND` (see `getBackend()`). */
  backend?: Backend;
}

/** Where keys come from: one provider, a per-tenant router, or an already open {@link Keyring}. */
export type KeySource = KeyProvider | TenantKeyRouter | Keyring;

/** Default {@link KeyringOptions.cacheSize}. */
export const DEFAULT_CACHE_SIZE = 10_000;

/** The versions of one provider, imported. */
interface LoadedKeys {
  readonly description: string;
  readonly current: number;
  /** Every readable version, ascending. */
  readonly versions: readonly number[];
  /** The current version, then the other `active` ones, newest first. */
  readonly queryVersions: readonly number[];
  readonly roots: ReadonlyMap<number, RootKeyHandle>;
}

/** A tenant whose provider failed to load: its operations fail, the others work. */
interface FailedKeys {
  readonly description: string;
  readonly error: SifreDBError;
}

type Slot = LoadedKeys | FailedKeys;

interface KeyringState {
  /** Set when the source is a single provider: every context uses it. */
  readonly single: LoadedKeys | undefined;
  readonly tenants: ReadonlyMap<string, Slot>;
  readonly fallback: LoadedKeys | undefined;
}

function providerError(provider: KeyProvider, error: unknown): SifreDBError {
  // Only our own errors are known to be free of secrets; anything else is kept as the cause.
  const detail = error instanceof SifreDBError ? `: ${error.message}` : '';
  return new SifreDBError(ERROR_CODES.key, `cannot load keys from ${provider.description}${detail}`, { cause: error });
}

/**
 * Loads every version of `provider` once — the `loadKey` calls in parallel — imports each into the
 * backend and zeroes the JS copies (also when something fails).
 */
async function loadProvider(provider: KeyProvider, backend: Backend): Promise<LoadedKeys> {
  let infos: KeyVersionInfo[];
  let current: number;
  try {
    [infos, current] = await Promise.all([provider.listVersions(), provider.currentVersion()]);
  } catch (error) {
    throw providerError(provider, error);
  }
  const invalid = (why: string) => new SifreDBError(ERROR_CODES.key, `key provider ${provider.description} ${why}`);
  if (!Array.isArray(infos) || infos.length === 0) throw invalid('lists no key versions');
  const seen = new Set<number>();
  for (const info of infos) {
    if (!isKeyVersion(info?.version) || !isKeyStatus(info.status) || seen.has(info.version)) {
      throw invalid('lists an invalid or duplicate key version');
    }
    seen.add(info.version);
  }
  const currentInfo = infos.find((info) => info.version === current);
  if (currentInfo === undefined || currentInfo.status !== 'active') {
    // Only a well-formed version is shown: a provider reading a broken file could return anything here.
    throw invalid(`reports current version ${isKeyVersion(current) ? current : `(not an integer in 1..${MAX_KEY_VERSION})`}, which is not one of its active versions`);
  }

  const results = await Promise.allSettled(infos.map((info) => provider.loadKey(info.version)));
  try {
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined) throw providerError(provider, failure.reason);
    const roots = new Map<number, RootKeyHandle>();
    infos.forEach((info, i) => {
      const material = (results[i] as PromiseFulfilledResult<Uint8Array>).value;
      if (!(material instanceof Uint8Array) || material.length !== ROOT_KEY_LENGTH) {
        throw invalid(`returned key material for version ${info.version} that is not ${ROOT_KEY_LENGTH} bytes`);
      }
      try {
        roots.set(info.version, backend.importRootKey(info.version, material));
      } catch (error) {
        throw asSifreDBError(error);
      }
    });
    const versions = [...seen].sort((a, b) => a - b);
    const others = infos
      .filter((info) => info.status === 'active' && info.version !== current)
      .map((info) => info.version)
      .sort((a, b) => b - a);
    return Object.freeze({
      description: provider.description,
      current,
      versions: Object.freeze(versions),
      queryVersions: Object.freeze([current, ...others]),
      roots,
    });
  } finally {
    for (const result of results) {
      if (result.status === 'fulfilled' && result.value instanceof Uint8Array) result.value.fill(0);
    }
  }
}

async function loadState(source: KeyProvider | TenantKeyRouter, backend: Backend): Promise<KeyringState> {
  if (!(source instanceof TenantKeyRouter)) {
    return { single: await loadProvider(source, backend), tenants: new Map(), fallback: undefined };
  }
  const tenants = source.entries();
  const fallbackProvider = source.defaultProvider;
  // A default that cannot load is a configuration error, so it fails open(); one tenant's provider
  // failing (e.g. its key was deleted to crypto-shred it) must not take the other tenants down.
  const [fallback, ...loaded] = await Promise.all([
    fallbackProvider === undefined ? undefined : loadProvider(fallbackProvider, backend),
    ...tenants.map(([, provider]) =>
      loadProvider(provider, backend).catch(
        (error: unknown): FailedKeys => ({ description: provider.description, error: asSifreDBError(error) }),
      ),
    ),
  ]);
  const map = new Map<string, Slot>();
  tenants.forEach(([tenant], i) => map.set(tenant, loaded[i]!));
  return { single: undefined, tenants: map, fallback };
}

/**
 * Cache key of a cipher within its context: a number (cheaper to hash than a string) that cannot
 * collide with a blind index's `"version:name"` string key. Algorithm ids are 1..3.
 */
function cipherId(algorithm: number, version: number): number {
  return version * 4 + algorithm;
}

function isFailed(slot: Slot): slot is FailedKeys {
  return 'error' in slot;
}

/**
 * The root keys of a {@link KeyProvider} (or of each tenant of a {@link TenantKeyRouter}), loaded once
 * and imported into the backend — JS keeps handles, not key bytes — plus a bounded, approximately LRU
 * cache of the per-context handles derived from them (HKDF, docs/FORMAT.md), keyed by purpose, context, index
 * name and key version.
 *
 * Vaults and blind indexes open their own keyring, or share one: pass the same `Keyring` to
 * `Vault.open`, `DeterministicVault.open` and `BlindIndex.open` to load keys once. After
 * {@link Keyring.open} every method except {@link refresh} is synchronous.
 */
export class Keyring {
  /** Backend holding the keys. */
  readonly backend: Backend;
  readonly #source: KeyProvider | TenantKeyRouter;
  readonly #cache: HandleCache<CipherHandle | BlindIndexHandle>;
  #state: KeyringState;
  #refreshing: Promise<void> | undefined;

  private constructor(source: KeyProvider | TenantKeyRouter, backend: Backend, cacheSize: number, state: KeyringState) {
    this.#source = source;
    this.backend = backend;
    this.#cache = new HandleCache(cacheSize);
    this.#state = state;
  }

  /**
   * Loads every key version of `source`.
   * @throws `ERR_SIFREDB_KEY` when the provider (or a router's default provider) cannot load;
   *   `ERR_SIFREDB_INPUT` for bad options.
   */
  static async open(source: KeyProvider | TenantKeyRouter, options: KeyringOptions = {}): Promise<Keyring> {
    if (source instanceof Keyring) {
      throw new SifreDBError(ERROR_CODES.input, 'source is already a Keyring');
    }
    if (!(source instanceof TenantKeyRouter)) assertKeyProvider(source, 'source');
    const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    if (!Number.isInteger(cacheSize) || cacheSize < 1) {
      throw new SifreDBError(ERROR_CODES.input, 'cacheSize must be a positive integer');
    }
    const backend = options.backend ?? getBackend();
    return new Keyring(source, backend, cacheSize, await loadState(source, backend));
  }

  /**
   * The keyring for a {@link KeySource}: `source` itself when it is a `Keyring` (then `options` must
   * not set `cacheSize` or `backend`, which were fixed when it was opened), else a new one.
   */
  static async from(source: KeySource, options: KeyringOptions = {}): Promise<Keyring> {
    if (!(source instanceof Keyring)) return Keyring.open(source, options);
    if (options.cacheSize !== undefined || options.backend !== undefined) {
      throw new SifreDBError(ERROR_CODES.input, 'cacheSize and backend belong to Keyring.open, not to an open Keyring');
    }
    return source;
  }

  /**
   * Reloads every provider (after a rotation, possibly done elsewhere) and drops the cached handles.
   * Operations keep using the old keys until the new ones are fully loaded; if loading fails, the
   * old keys stay in place and the promise rejects. Concurrent calls share one reload.
   */
  refresh(): Promise<void> {
    this.#refreshing ??= loadState(this.#source, this.backend)
      .then((state) => {
        this.#state = state;
        this.#cache.clear();
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  /**
   * Current version of the single provider, or of a router's default provider.
   * @throws `ERR_SIFREDB_KEY` for a router without a default: use {@link currentVersionFor}.
   */
  get currentVersion(): number {
    return this.#unscoped().current;
  }

  /**
   * True when the keys come from a {@link TenantKeyRouter}: the current version can then differ from
   * one tenant to another, so it must be asked per context ({@link currentVersionFor}).
   */
  get routesByTenant(): boolean {
    return this.#state.single === undefined;
  }

  /** Every readable version (ascending) of the single provider or a router's default provider. */
  get versions(): readonly number[] {
    return this.#unscoped().versions;
  }

  /** Version new ciphertexts for `ctx` are written under. */
  currentVersionFor(ctx: EncryptionContext): number {
    return this.#keysFor(ctx).current;
  }

  /** Every version that can decrypt values of `ctx`, ascending. */
  versionsFor(ctx: EncryptionContext): readonly number[] {
    return this.#keysFor(ctx).versions;
  }

  /**
   * The versions a stored deterministic ciphertext or blind-index term of `ctx` may be under: the
   * current one first, then every other `active` version, newest first. Retired versions are left out.
   */
  queryVersionsFor(ctx: EncryptionContext): readonly number[] {
    return this.#keysFor(ctx).queryVersions;
  }

  /**
   * The randomized cipher for `ctx` under `version` (default: current). Advanced: vaults call this;
   * batch jobs may use the handle's `encryptMany` / `decryptMany` directly.
   */
  randomizedCipher(algorithm: RandomizedAlgorithmId, ctx: EncryptionContext, version?: number): CipherHandle {
    assertContext(ctx);
    const v = version ?? this.#keysFor(ctx).current;
    const id = cipherId(algorithm, v);
    return (
      (this.#cache.get(ctx.key, id) as CipherHandle | undefined) ??
      this.#derive(id, ctx, v, (root) => root.randomizedCipher(algorithm, ctx.bytes))
    );
  }

  /** The AES-256-SIV cipher for `ctx` under `version` (default: current). Advanced, like {@link randomizedCipher}. */
  deterministicCipher(ctx: EncryptionContext, version?: number): CipherHandle {
    assertContext(ctx);
    const v = version ?? this.#keysFor(ctx).current;
    const id = cipherId(ALGORITHM.aesSiv, v);
    return (
      (this.#cache.get(ctx.key, id) as CipherHandle | undefined) ?? this.#derive(id, ctx, v, (root) => root.deterministicCipher(ctx.bytes))
    );
  }

  /**
   * The HMAC handle of blind index `indexName` (1..255 UTF-8 bytes) for `ctx` under `version`
   * (default: current). Advanced, like {@link randomizedCipher}.
   */
  blindIndex(ctx: EncryptionContext, indexName: string, version?: number): BlindIndexHandle {
    assertContext(ctx);
    const v = version ?? this.#keysFor(ctx).current;
    const id = `${v}:${indexName}`;
    return (
      (this.#cache.get(ctx.key, id) as BlindIndexHandle | undefined) ??
      this.#derive(id, ctx, v, (root) => root.blindIndex(ctx.bytes, utf8Bytes(indexName)))
    );
  }

  #derive<T extends CipherHandle | BlindIndexHandle>(
    id: number | string,
    ctx: EncryptionContext,
    version: number,
    make: (root: RootKeyHandle) => T,
  ): T {
    const keys = this.#keysFor(ctx);
    const root = keys.roots.get(version);
    if (root === undefined) {
      throw new SifreDBError(
        ERROR_CODES.key,
        `unknown key version ${version}: ${keys.description} has version${keys.versions.length > 1 ? 's' : ''} ${keys.versions.join(', ')}`,
      );
    }
    let handle: T;
    try {
      handle = make(root);
    } catch (error) {
      throw asSifreDBError(error);
    }
    this.#cache.set(ctx.key, id, handle);
    return handle;
  }

  #unscoped(): LoadedKeys {
    const state = this.#state;
    const keys = state.single ?? state.fallback;
    if (keys === undefined) {
      throw new SifreDBError(ERROR_CODES.key, 'this keyring routes by tenant and has no default provider; ask with a context (…For(ctx))');
    }
    return keys;
  }

  #keysFor(ctx: EncryptionContext): LoadedKeys {
    const state = this.#state;
    if (state.single !== undefined) return state.single;
    const slot = (ctx.tenant === undefined ? undefined : state.tenants.get(ctx.tenant)) ?? state.fallback;
    if (slot === undefined) {
      throw new SifreDBError(
        ERROR_CODES.key,
        ctx.tenant === undefined
          ? 'no key provider for contexts without a tenant (the router has no default)'
          : `no key provider for tenant ${JSON.stringify(ctx.tenant)} (the router has no default)`,
      );
    }
    if (isFailed(slot)) {
      throw new SifreDBError(ERROR_CODES.key, `keys of tenant ${JSON.stringify(ctx.tenant)} are unavailable: ${slot.error.message}`, {
        cause: slot.error,
      });
    }
    return slot;
  }
}
