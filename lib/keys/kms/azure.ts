/**
 * Azure Key Vault adapter: each root-key version's 32-byte data key is wrapped by a Key Vault key
 * with `wrapKey` and recovered with `unwrapKey` (`CryptographyClient` of `@azure/keyvault-keys`):
 * RSA-OAEP-256 under an RSA key of a Key Vault, AES key wrap (`A256KW`) under an `oct-HSM` key of a
 * Managed HSM.
 *
 * Binding: neither algorithm takes additional authenticated data, so what is wrapped is the data key
 * followed by the SHA-256 of {@link bindingAad} (64 bytes), and unwrapping checks that suffix (in
 * constant time). A wrapped entry moved to another keyring or version is refused.
 *
 * A keyring entry (`wrappedKey`) reads `<algorithm>:<key version>:<base64 of the wrapped bytes>`:
 * Key Vault needs the key version that wrapped it, and the configured key URL may name no version
 * (then the key's current version wraps, resolved with one `get` per wrap).
 *
 * `@azure/keyvault-keys` and (for the default credential) `@azure/identity` are optional peer
 * dependencies, imported on first use only.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { SifreDBError } from '../../errors.js';
import type { KeyProvider } from '../provider.js';
import { bindingAad, type KeyBinding, type KmsAdapter, type WrappedKey } from './adapter.js';
import { DeadlineExceeded, networkErrorCode, optionalSdk, timeoutSetting, withDeadline } from './cloud-call.js';
import { EnvelopeKeyProvider, openEnvelope, ownCopy, type EnvelopeInit, type EnvelopeOpenMode, type EnvelopeOptions, type KmsRewrapResult } from './envelope.js';
import { kmsServiceError, SifreDBKmsError, type KmsFailureReason } from './errors.js';

/** An Azure `TokenCredential` (from `@azure/identity` or your own), typed structurally. */
export interface AzureTokenCredentialLike {
  getToken(scopes: string | string[], options?: unknown): Promise<{ token: string; expiresOnTimestamp: number } | null>;
}

/** The key-wrap algorithms the adapter uses. */
export type AzureWrapAlgorithm = 'RSA-OAEP-256' | 'A256KW';

/** Options of the Azure Key Vault adapter (and of {@link AzureKeyVaultProvider}). */
export interface AzureKeyVaultAdapterOptions {
  /**
   * The key's URL: `https://<vault>.vault.azure.net/keys/<name>` (its current version wraps new data
   * keys) or `…/keys/<name>/<version>` (that version wraps). Managed HSM:
   * `https://<hsm>.managedhsm.azure.net/keys/<name>`.
   */
  keyUrl: string;
  /** Default: `DefaultAzureCredential` from `@azure/identity` (environment, workload or managed identity, Azure CLI…). */
  credential?: AzureTokenCredentialLike;
  /**
   * `CryptographyClientOptions` / `KeyClientOptions` (`retryOptions`, `tlsOptions`,
   * `disableChallengeResourceVerification`…). The SDK's retry policy retries 429 (after
   * Retry-After), 408 and 5xx: 3 retries by default.
   */
  clientOptions?: Record<string, unknown>;
  /** Default: `A256KW` for a Managed HSM (`*.managedhsm.azure.net`), else `RSA-OAEP-256`. */
  algorithm?: AzureWrapAlgorithm;
  /** Deadline of one call, retries included, in milliseconds. Default 30000. */
  timeoutMs?: number;
}

const PROVIDER = 'azure-keyvault';
const SERVICE = 'Azure Key Vault';
const ALGORITHMS: readonly AzureWrapAlgorithm[] = ['RSA-OAEP-256', 'A256KW'];
const KEY_NAME = /^[A-Za-z0-9-]{1,127}$/;
const KEY_VERSION = /^[A-Za-z0-9]{1,64}$/;
const WRAPPED = /^(RSA-OAEP-256|A256KW):([A-Za-z0-9]{1,64}):((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/;
const DATA_KEY_BYTES = 32;
const DEFAULT_TIMEOUT_MS = 30_000;

interface KeyVaultKeyLike {
  id?: string;
}
interface CryptographyClientLike {
  wrapKey(algorithm: string, key: Uint8Array, options?: Record<string, unknown>): Promise<{ result: Uint8Array; keyID?: string }>;
  unwrapKey(algorithm: string, encryptedKey: Uint8Array, options?: Record<string, unknown>): Promise<{ result: Uint8Array }>;
}
type KeysSdk = {
  CryptographyClient: new (key: string | KeyVaultKeyLike, credential: AzureTokenCredentialLike, options?: Record<string, unknown>) => CryptographyClientLike;
  KeyClient: new (vaultUrl: string, credential: AzureTokenCredentialLike, options?: Record<string, unknown>) => {
    getKey(name: string, options?: Record<string, unknown>): Promise<KeyVaultKeyLike>;
  };
};
type IdentitySdk = { DefaultAzureCredential: new () => AzureTokenCredentialLike };
const keysCache: { promise?: Promise<KeysSdk> } = {};
const identityCache: { promise?: Promise<IdentitySdk> } = {};

// Each import is guarded in place, so that bundlers leave a missing optional SDK to run time instead
// of failing the build.
function loadKeysSdk(): Promise<KeysSdk> {
  const load = async (): Promise<KeysSdk> => {
    try {
      return (await import('@azure/keyvault-keys')) as unknown as KeysSdk;
    } catch (error) {
      throw error;
    }
  };
  return optionalSdk(keysCache, load, '@azure/keyvault-keys', 'AzureKeyVaultProvider');
}
function loadIdentitySdk(): Promise<IdentitySdk> {
  const load = async (): Promise<IdentitySdk> => {
    try {
      return (await import('@azure/identity')) as unknown as IdentitySdk;
    } catch (error) {
      throw error;
    }
  };
  return optionalSdk(identityCache, load, '@azure/identity', 'AzureKeyVaultProvider');
}

/** The parts of a Key Vault key URL. */
export interface AzureKeyUrl {
  /** `https://<vault>.vault.azure.net` */
  vaultUrl: string;
  name: string;
  version: string | undefined;
  /** The URL without version: what the keyring records as the wrapping key. */
  keyId: string;
}

/** Parses and checks a Key Vault key URL (`https://…/keys/<name>[/<version>]`, no query or credentials). */
export function parseAzureKeyUrl(keyUrl: unknown, where: string): AzureKeyUrl {
  const bad = (): never => {
    throw new SifreDBError(
      'ERR_SIFREDB_INPUT',
      `${where}: keyUrl must be a Key Vault key URL, https://<vault>.vault.azure.net/keys/<name>[/<version>] (or a Managed HSM's https://<hsm>.managedhsm.azure.net/keys/<name>)`,
    );
  };
  if (typeof keyUrl !== 'string' || keyUrl.length > 2048) return bad();
  let url: URL;
  try {
    url = new URL(keyUrl);
  } catch {
    return bad();
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return bad();
  const segments = url.pathname.replace(/\/$/, '').split('/');
  if ((segments.length !== 3 && segments.length !== 4) || segments[1] !== 'keys' || !KEY_NAME.test(segments[2]!)) return bad();
  const version = segments[3];
  if (version !== undefined && !KEY_VERSION.test(version)) return bad();
  const vaultUrl = url.origin;
  return { vaultUrl, name: segments[2]!, version, keyId: `${vaultUrl}/keys/${segments[2]}` };
}

interface CallContext {
  operation: 'wrapKey' | 'unwrapKey' | 'get';
  action: string;
  /** unwrapKey: the key the keyring entry says wrapped it. */
  wrappedBy?: string;
}

/** The Azure Key Vault {@link KmsAdapter}. Make it with {@link AzureKeyVaultAdapter.make}. */
export class AzureKeyVaultAdapter implements KmsAdapter {
  readonly provider = PROVIDER;
  readonly keyId: string;
  readonly description: string;
  readonly #sdk: KeysSdk;
  readonly #key: AzureKeyUrl;
  readonly #credential: AzureTokenCredentialLike;
  readonly #clientOptions: Record<string, unknown>;
  readonly #algorithm: AzureWrapAlgorithm;
  readonly #algorithmOption: AzureWrapAlgorithm | undefined;
  readonly #timeoutMs: number;
  /**
   * One client per key version. A client made from a key URL reads the key on its first call; later
   * calls wait for that first one (`ready`), so that parallel unwraps at open read it once.
   */
  readonly #clients = new Map<string, { client: CryptographyClientLike; ready: Promise<void> | undefined }>();
  #keyClient: InstanceType<KeysSdk['KeyClient']> | undefined;

  private constructor(init: {
    sdk: KeysSdk;
    key: AzureKeyUrl;
    credential: AzureTokenCredentialLike;
    clientOptions: Record<string, unknown>;
    algorithmOption: AzureWrapAlgorithm | undefined;
    timeoutMs: number;
  }) {
    this.#sdk = init.sdk;
    this.#key = init.key;
    this.keyId = init.key.keyId;
    this.description = `azure-keyvault:${init.key.keyId}${init.key.version ? `/${init.key.version}` : ''}`;
    this.#credential = init.credential;
    this.#clientOptions = init.clientOptions;
    this.#algorithmOption = init.algorithmOption;
    this.#algorithm = init.algorithmOption ?? defaultAlgorithm(init.key);
    this.#timeoutMs = init.timeoutMs;
  }

  /** Validates the options, imports the SDK and, without `credential`, makes a `DefaultAzureCredential`. */
  static async make(options: AzureKeyVaultAdapterOptions, where = 'AzureKeyVaultProvider'): Promise<AzureKeyVaultAdapter> {
    const key = parseAzureKeyUrl(options.keyUrl, where);
    const { credential, clientOptions, algorithm } = options;
    if (credential !== undefined && (typeof credential !== 'object' || credential === null || typeof credential.getToken !== 'function')) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `${where}: credential must be a TokenCredential (e.g. from @azure/identity)`);
    }
    if (clientOptions !== undefined && (typeof clientOptions !== 'object' || clientOptions === null)) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `${where}: clientOptions must be an object of CryptographyClient options`);
    }
    if (algorithm !== undefined && !ALGORITHMS.includes(algorithm)) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `${where}: algorithm must be RSA-OAEP-256 (Key Vault RSA keys) or A256KW (Managed HSM oct-HSM keys)`);
    }
    const timeoutMs = timeoutSetting(options.timeoutMs, DEFAULT_TIMEOUT_MS, `${where}: timeoutMs`);
    const sdk = await loadKeysSdk();
    const usedCredential = credential ?? new (await loadIdentitySdk()).DefaultAzureCredential();
    return new AzureKeyVaultAdapter({
      sdk,
      key,
      credential: usedCredential,
      clientOptions: { ...(clientOptions ?? {}) },
      algorithmOption: algorithm,
      timeoutMs,
    });
  }

  /** The same SDK, credential and options with another key (for a re-wrap under it). */
  withKey(keyUrl: string): AzureKeyVaultAdapter {
    return new AzureKeyVaultAdapter({
      sdk: this.#sdk,
      key: parseAzureKeyUrl(keyUrl, 'rewrap'),
      credential: this.#credential,
      clientOptions: this.#clientOptions,
      algorithmOption: this.#algorithmOption,
      timeoutMs: this.#timeoutMs,
    });
  }

  async wrap(plaintext: Uint8Array, binding: KeyBinding): Promise<WrappedKey> {
    if (plaintext.length !== DATA_KEY_BYTES) throw new SifreDBError('ERR_SIFREDB_KEY', `${SERVICE}: a data key must be ${DATA_KEY_BYTES} bytes`);
    const action = `wrapping version ${binding.version} of keyring ${binding.keyringId}`;
    // The version must be known before wrapping: the entry records it, and unwrapping must use it.
    const version = this.#key.version ?? (await this.#currentVersion(action));
    const bound = Buffer.concat([plaintext, bindingDigest(binding)]);
    try {
      const result = await this.#call({ operation: 'wrapKey', action }, (signal) =>
        this.#withClient(version, (client) => client.wrapKey(this.#algorithm, bound, { abortSignal: signal })),
      );
      const wrapped = result.result;
      if (!(wrapped instanceof Uint8Array) || wrapped.length === 0) {
        throw kmsServiceError({ ...this.#failure({ operation: 'wrapKey', action }), reason: 'invalid-response' });
      }
      return { provider: PROVIDER, keyId: this.keyId, wrappedKey: `${this.#algorithm}:${version}:${Buffer.from(wrapped).toString('base64')}` };
    } finally {
      bound.fill(0);
    }
  }

  async unwrap(wrapped: WrappedKey, binding: KeyBinding): Promise<Uint8Array> {
    const context: CallContext = {
      operation: 'unwrapKey',
      action: `unwrapping version ${binding.version} of keyring ${binding.keyringId}`,
      wrappedBy: wrapped.keyId,
    };
    const match = WRAPPED.exec(wrapped.wrappedKey);
    if (!match) {
      throw kmsServiceError({
        ...this.#failure(context),
        reason: 'invalid-ciphertext',
        hint: 'the keyring entry is not <algorithm>:<key version>:<base64>: it was altered',
      });
    }
    const [, algorithm, version, data] = match;
    // Always the configured vault and key (with the entry's version): a keyId read from the keyring
    // file never decides where the credential's token is sent.
    const result = await this.#call(context, (signal) =>
      this.#withClient(version!, (client) => client.unwrapKey(algorithm!, Buffer.from(data!, 'base64'), { abortSignal: signal })),
    );
    const unwrapped = result.result;
    if (!(unwrapped instanceof Uint8Array)) throw kmsServiceError({ ...this.#failure(context), reason: 'invalid-response' });
    const copy = ownCopy(unwrapped);
    unwrapped.fill(0);
    const expected = bindingDigest(binding);
    const matches = copy.length === DATA_KEY_BYTES + expected.length && timingSafeEqual(copy.subarray(DATA_KEY_BYTES), expected);
    if (!matches) {
      copy.fill(0);
      throw kmsServiceError({
        ...this.#failure(context),
        reason: 'invalid-ciphertext',
        hint: `the unwrapped key is not bound to keyring ${binding.keyringId} version ${binding.version}: the keyring entry was moved from another keyring or version, or altered`,
      });
    }
    const key = ownCopy(copy.subarray(0, DATA_KEY_BYTES));
    copy.fill(0);
    return key;
  }

  close(): void {
    this.#clients.clear();
    this.#keyClient = undefined;
  }

  // --- internals -----------------------------------------------------------------------------

  async #withClient<T>(version: string, operation: (client: CryptographyClientLike) => Promise<T>): Promise<T> {
    const url = `${this.keyId}/${version}`;
    let entry = this.#clients.get(url);
    if (entry === undefined) {
      entry = { client: new this.#sdk.CryptographyClient(url, this.#credential, { ...this.#clientOptions }), ready: undefined };
      this.#clients.set(url, entry);
      const first = operation(entry.client);
      entry.ready = first.then(
        () => undefined,
        () => undefined,
      );
      return first;
    }
    await entry.ready;
    return operation(entry.client);
  }

  /** The key's current version (one `get`), for a key URL configured without version. */
  async #currentVersion(action: string): Promise<string> {
    this.#keyClient ??= new this.#sdk.KeyClient(this.#key.vaultUrl, this.#credential, { ...this.#clientOptions });
    const keyClient = this.#keyClient;
    const key = await this.#call({ operation: 'get', action }, (signal) => keyClient.getKey(this.#key.name, { abortSignal: signal }));
    const parsed = typeof key.id === 'string' ? safeParse(key.id) : undefined;
    if (parsed?.version === undefined || parsed.keyId !== this.keyId) {
      throw kmsServiceError({ ...this.#failure({ operation: 'get', action }), reason: 'invalid-response', hint: `${SERVICE} returned another key, or one without a version` });
    }
    // A client made from the key just read does not read it again.
    const url = `${this.keyId}/${parsed.version}`;
    if (!this.#clients.has(url)) {
      this.#clients.set(url, { client: new this.#sdk.CryptographyClient(key, this.#credential, { ...this.#clientOptions }), ready: undefined });
    }
    return parsed.version;
  }

  async #call<T>(context: CallContext, send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await withDeadline(this.#timeoutMs, send);
    } catch (error) {
      throw this.#mapError(error, context);
    }
  }

  #failure(context: CallContext) {
    return {
      provider: PROVIDER,
      service: SERVICE,
      operation: context.operation,
      action: context.action,
      keyId: this.keyId,
      target: this.#key.vaultUrl,
    };
  }

  /**
   * Maps a `RestError` of the Azure SDK (HTTP status and Key Vault's error code), a network error, a
   * time-out, a credential failure or the SDK's own checks (expired key, key operations). Only
   * Key Vault's error code and, for refusals that name keys and states, its message are kept.
   */
  #mapError(error: unknown, context: CallContext): SifreDBKmsError {
    if (error instanceof SifreDBKmsError) return error;
    const base = this.#failure(context);
    if (error instanceof DeadlineExceeded) return kmsServiceError({ ...base, reason: 'unreachable', networkErrorCode: 'ETIMEDOUT' });
    const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
    const name = typeof e.name === 'string' ? e.name : 'Error';
    const message = typeof e.message === 'string' ? e.message : '';
    const statusCode = typeof e.statusCode === 'number' ? e.statusCode : undefined;
    const serviceCode = typeof e.code === 'string' && /^[A-Za-z][A-Za-z0-9_.]{0,63}$/.test(e.code) ? e.code : undefined;
    if (statusCode === undefined) {
      const network = networkErrorCode(error);
      if (network !== undefined) return kmsServiceError({ ...base, reason: 'unreachable', networkErrorCode: network });
      if (name === 'AbortError') return kmsServiceError({ ...base, reason: 'unreachable', networkErrorCode: 'ETIMEDOUT' });
      // The credential's own failures, and the SDK's when the credential gave no token.
      if (
        name === 'CredentialUnavailableError' ||
        name === 'AuthenticationError' ||
        name === 'AggregateAuthenticationError' ||
        /^Failed to refresh access token/.test(message)
      ) {
        return kmsServiceError({
          ...base,
          reason: 'credentials',
          serviceErrorName: name,
          hint: 'no usable Azure credential: configure DefaultAzureCredential (environment, workload or managed identity, Azure CLI) or pass credential',
        });
      }
      if (/expired at|can't be used before/.test(message)) {
        return kmsServiceError({ ...base, reason: 'disabled', hint: `${SERVICE} key ${this.keyId} is expired or not yet valid (its exp / nbf attributes)` });
      }
      if (/is not supported on key/.test(message)) {
        return kmsServiceError({ ...base, reason: 'refused', hint: `${SERVICE} key ${this.keyId} does not allow ${context.operation} (its key_ops)` });
      }
      return kmsServiceError({ ...base, reason: 'refused', hint: `the ${SERVICE} client failed before the service answered (${safeName(name)})` });
    }
    let reason: KmsFailureReason;
    let hint: string | undefined;
    if (statusCode === 429) reason = 'throttled';
    else if (statusCode >= 500 || statusCode === 408) reason = 'service';
    else if (statusCode === 401) reason = 'credentials';
    else if (statusCode === 404) reason = 'not-found';
    else if (statusCode === 403 && /disabled/i.test(message)) reason = 'disabled';
    else if (statusCode === 403) {
      reason = 'denied';
      hint = `access denied to ${SERVICE} key ${this.keyId}: assign this identity the "Key Vault Crypto Service Encryption User" role on the key (or an access policy with get, wrapKey and unwrapKey; Managed HSM: "Managed HSM Crypto Service Encryption User") (docs/KMS.md)`;
    } else if (statusCode === 400 && context.operation === 'unwrapKey' && context.wrappedBy !== undefined && context.wrappedBy !== this.keyId) {
      reason = 'wrong-key';
      hint = `the keyring entry was wrapped by ${SERVICE} key ${context.wrappedBy.slice(0, 300)}, not the configured ${this.keyId}; configure that key, or rewrap the keyring`;
    } else if (statusCode === 400 && context.operation === 'unwrapKey') {
      reason = 'invalid-ciphertext';
      hint = `${SERVICE} could not unwrap the keyring entry with key ${this.keyId}: it was altered or made under another key`;
    } else reason = 'refused';
    const quotable = reason === 'not-found' || reason === 'disabled' || reason === 'denied';
    return kmsServiceError({
      ...base,
      reason,
      hint,
      httpStatusCode: statusCode,
      serviceErrorName: serviceCode ?? `HTTP ${statusCode}`,
      serviceMessage: quotable ? message : undefined,
    });
  }
}

/** `A256KW` for a Managed HSM, `RSA-OAEP-256` for a Key Vault. */
function defaultAlgorithm(key: AzureKeyUrl): AzureWrapAlgorithm {
  return new URL(key.vaultUrl).hostname.endsWith('.managedhsm.azure.net') ? 'A256KW' : 'RSA-OAEP-256';
}

/** SHA-256 of the binding: the 32-byte suffix wrapped with each data key. */
function bindingDigest(binding: KeyBinding): Buffer {
  return createHash('sha256').update(bindingAad(binding)).digest();
}

function safeParse(keyUrl: string): AzureKeyUrl | undefined {
  try {
    return parseAzureKeyUrl(keyUrl, 'keyring');
  } catch {
    return undefined;
  }
}

function safeName(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]/g, '').slice(0, 64) || 'Error';
}

/** Options of {@link AzureKeyVaultProvider.open} and {@link AzureKeyVaultProvider.create}. */
export interface AzureKeyVaultProviderOptions extends EnvelopeOptions, AzureKeyVaultAdapterOptions {}

/**
 * A {@link KeyProvider} whose root keys are data keys wrapped by an Azure Key Vault or Managed HSM
 * key (envelope encryption). `wrapKey` is called once per new version (create, rotate; plus one
 * `get` of the key's current version when the key URL names none), `unwrapKey` once per version per
 * process when the keys are loaded; never per value. See docs/KMS.md.
 */
export class AzureKeyVaultProvider extends EnvelopeKeyProvider {
  private constructor(init: EnvelopeInit) {
    super(init);
  }

  /** Opens the keyring, creating it with version 1 (one `wrapKey`) when it does not exist (unless `createIfMissing: false`). */
  static async open(options: AzureKeyVaultProviderOptions): Promise<AzureKeyVaultProvider> {
    return AzureKeyVaultProvider.#start(options, options?.createIfMissing === false ? 'never' : 'if-missing');
  }

  /** Creates a new keyring with version 1; fails with `ERR_SIFREDB_KEY` if one already exists. */
  static async create(options: AzureKeyVaultProviderOptions): Promise<AzureKeyVaultProvider> {
    return AzureKeyVaultProvider.#start(options, 'always');
  }

  static async #start(options: AzureKeyVaultProviderOptions, mode: EnvelopeOpenMode): Promise<AzureKeyVaultProvider> {
    if (typeof options !== 'object' || options === null) throw new SifreDBError('ERR_SIFREDB_INPUT', 'AzureKeyVaultProvider: options must be an object');
    const adapter = await AzureKeyVaultAdapter.make(options);
    return openEnvelope('AzureKeyVaultProvider', options, [adapter], mode, (init) => new AzureKeyVaultProvider(init));
  }

  /** The key (URL without version) that wraps new versions. */
  get keyUrl(): string {
    return this.adapters[0]!.keyId;
  }

  /**
   * Wraps every version's data key again under the key's current version (after the Key Vault key
   * was rotated, so that older key versions can be disabled), or under another key `newKeyUrl`
   * (another vault, a Managed HSM). Key Vault has no server-side re-wrap: each version is unwrapped
   * (unless already loaded) and wrapped again; one keyring write. Field data is untouched. With
   * `newKeyUrl`, this provider uses that key afterwards: configure it for future opens.
   */
  async rewrap(newKeyUrl?: string): Promise<KmsRewrapResult> {
    const from = this.adapters[0] as AzureKeyVaultAdapter;
    return this.rewrapWith(from, newKeyUrl === undefined ? from : from.withKey(newKeyUrl));
  }
}
