/**
 * Google Cloud KMS adapter: each root-key version's 32-byte data key is encrypted with a symmetric
 * (`ENCRYPT_DECRYPT`) CryptoKey by `Encrypt`, with `additionalAuthenticatedData` binding it to the
 * keyring id and version ({@link bindingAad}), and recovered with `Decrypt`. Cloud KMS picks the
 * CryptoKey's primary version to encrypt and finds the version itself when decrypting, so the keyring
 * records the CryptoKey name only; after the CryptoKey rotates, {@link GcpKmsProvider.rewrap}
 * re-encrypts every entry under the new primary version, after which the old versions can be disabled.
 *
 * Every request carries CRC32C checksums and every answer's checksums are verified, as Google's data
 * integrity guidelines ask (https://cloud.google.com/kms/docs/data-integrity-guidelines).
 *
 * `@google-cloud/kms` is an optional peer dependency, imported on first use only. The provider's own
 * client uses the SDK's HTTP/JSON (REST) transport, the one SifreDB's tests run against.
 */
import { SifreDBError } from '../../errors.js';
import type { KeyProvider } from '../provider.js';
import { bindingAad, type KeyBinding, type KmsAdapter, type WrappedKey } from './adapter.js';
import {
  DeadlineExceeded,
  networkErrorCode,
  optionalSdk,
  retrySettings,
  timeoutSetting,
  withDeadline,
  withRetries,
  type RetrySettings,
} from './cloud-call.js';
import { EnvelopeKeyProvider, openEnvelope, ownCopy, type EnvelopeInit, type EnvelopeOpenMode, type EnvelopeOptions, type KmsRewrapResult } from './envelope.js';
import { kmsServiceError, SifreDBKmsError, type KmsFailureReason } from './errors.js';

/**
 * The part of a `KeyManagementServiceClient` (from `@google-cloud/kms`) the adapter uses. Typed
 * structurally so that SifreDB's type declarations do not require the Google SDK.
 */
export interface GcpKmsClientLike {
  encrypt(request: Record<string, unknown>, options?: Record<string, unknown>): Promise<unknown>;
  decrypt(request: Record<string, unknown>, options?: Record<string, unknown>): Promise<unknown>;
  initialize?(): Promise<unknown>;
  close?(): Promise<void>;
}

/**
 * The client of an adapter, shared with the adapters made from it by `withKey`. The SDK's client
 * authenticates when it first builds its service stub and keeps a failed stub for good (and each
 * later call then rejects a promise nobody handles), so the adapter builds the stub itself with
 * `initialize()` first, and replaces a client it made whose stub failed.
 */
interface ClientSlot {
  client: GcpKmsClientLike;
  readonly make: (() => GcpKmsClientLike) | undefined;
  initialized: boolean;
}

/** Options of the Google Cloud KMS adapter (and of {@link GcpKmsProvider}). */
export interface GcpKmsAdapterOptions {
  /** The CryptoKey: `projects/P/locations/L/keyRings/R/cryptoKeys/K` (purpose ENCRYPT_DECRYPT). */
  keyName: string;
  /**
   * A ready `KeyManagementServiceClient` (gRPC or REST, your credentials). Not closed by
   * `close()`. Retries and time-outs below still apply around its calls.
   */
  client?: GcpKmsClientLike;
  /**
   * `KeyManagementServiceClient` options when the adapter makes its client (`credentials`,
   * `keyFilename`, `apiEndpoint`, `projectId`…). Default: Application Default Credentials and the
   * REST transport (`fallback: true`).
   */
  clientOptions?: Record<string, unknown>;
  /** Deadline of one call, retries included, in milliseconds. Default 30000. */
  timeoutMs?: number;
  /** Retries of throttling (RESOURCE_EXHAUSTED), 5xx and unreachable. Default 4 attempts, from 100 ms. */
  retry?: Partial<RetrySettings>;
}

const PROVIDER = 'gcp-kms';
const SERVICE = 'Google Cloud KMS';
const KEY_NAME = /^projects\/[a-z0-9][a-z0-9-.:]{0,62}\/locations\/[a-z0-9-]{1,63}\/keyRings\/[A-Za-z0-9_-]{1,63}\/cryptoKeys\/[A-Za-z0-9_-]{1,63}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DEFAULT_TIMEOUT_MS = 30_000;

/** CRC32C (Castagnoli), for the checksums of Cloud KMS requests and answers. */
const CRC32C_TABLE = /* @__PURE__ */ (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC32C of `bytes` (check value of "123456789": 0xe3069283). */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC32C_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

type GcpSdk = { KeyManagementServiceClient: new (options?: Record<string, unknown>) => GcpKmsClientLike };
const sdkCache: { promise?: Promise<GcpSdk> } = {};

function loadSdk(): Promise<GcpSdk> {
  return optionalSdk(
    sdkCache,
    async () => {
      // Guarded in place, so that bundlers leave a missing optional SDK to run time instead of failing the build.
      try {
        const module = (await import('@google-cloud/kms')) as unknown as GcpSdk & { default?: GcpSdk };
        return typeof module.KeyManagementServiceClient === 'function' ? module : module.default!;
      } catch (error) {
        throw error;
      }
    },
    '@google-cloud/kms',
    'GcpKmsProvider',
  );
}

/** Checks a CryptoKey resource name (not a key version). */
export function checkGcpKeyName(keyName: unknown, where: string): string {
  if (typeof keyName !== 'string' || !KEY_NAME.test(keyName)) {
    throw new SifreDBError(
      'ERR_SIFREDB_INPUT',
      `${where}: keyName must be a CryptoKey name, projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key> (without /cryptoKeyVersions/…)`,
    );
  }
  return keyName;
}

/** A retryable integrity failure of one answer (a checksum that does not match what arrived). */
class CorruptedInTransit extends Error {}

interface CallContext {
  operation: 'Encrypt' | 'Decrypt';
  action: string;
  keyName: string;
  /** Decrypt: the key the keyring entry says wrapped it. */
  wrappedBy?: string;
}

/** The Google Cloud KMS {@link KmsAdapter}. Make it with {@link GcpKmsAdapter.make}. */
export class GcpKmsAdapter implements KmsAdapter {
  readonly provider = PROVIDER;
  readonly keyId: string;
  readonly description: string;
  readonly #slot: ClientSlot;
  readonly #timeoutMs: number;
  readonly #retry: RetrySettings;
  readonly #target: string;

  private constructor(init: { keyName: string; slot: ClientSlot; timeoutMs: number; retry: RetrySettings; target: string }) {
    this.keyId = init.keyName;
    this.description = `gcp-kms:${init.keyName}`;
    this.#slot = init.slot;
    this.#timeoutMs = init.timeoutMs;
    this.#retry = init.retry;
    this.#target = init.target;
  }

  /**
   * The same client and settings with another CryptoKey (for a re-wrap under it). The new adapter
   * takes over closing the client; this one is dropped by the provider.
   */
  withKey(keyName: string): GcpKmsAdapter {
    return new GcpKmsAdapter({
      keyName: checkGcpKeyName(keyName, 'rewrap'),
      slot: this.#slot,
      timeoutMs: this.#timeoutMs,
      retry: this.#retry,
      target: this.#target,
    });
  }

  /** Validates the options and makes the client (importing `@google-cloud/kms` when it must). */
  static async make(options: GcpKmsAdapterOptions, where = 'GcpKmsProvider'): Promise<GcpKmsAdapter> {
    const keyName = checkGcpKeyName(options.keyName, where);
    const { client, clientOptions } = options;
    if (client !== undefined && (typeof client !== 'object' || client === null || typeof client.encrypt !== 'function' || typeof client.decrypt !== 'function')) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `${where}: client must be a KeyManagementServiceClient from @google-cloud/kms`);
    }
    if (client !== undefined && clientOptions !== undefined) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `${where}: clientOptions apply only when no client is given; configure your client instead`);
    }
    if (clientOptions !== undefined && (typeof clientOptions !== 'object' || clientOptions === null)) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `${where}: clientOptions must be an object of KeyManagementServiceClient options`);
    }
    const timeoutMs = timeoutSetting(options.timeoutMs, DEFAULT_TIMEOUT_MS, `${where}: timeoutMs`);
    const retry = retrySettings(options.retry, where);
    let slot: ClientSlot;
    if (client !== undefined) {
      slot = { client, make: undefined, initialized: false };
    } else {
      const sdk = await loadSdk();
      const make = (): GcpKmsClientLike => new sdk.KeyManagementServiceClient({ fallback: true, ...(clientOptions ?? {}) });
      slot = { client: make(), make, initialized: false };
    }
    return new GcpKmsAdapter({ keyName, slot, timeoutMs, retry, target: describeTarget(clientOptions) });
  }

  async wrap(plaintext: Uint8Array, binding: KeyBinding): Promise<WrappedKey> {
    const aad = bindingAad(binding);
    const context: CallContext = {
      operation: 'Encrypt',
      action: `wrapping version ${binding.version} of keyring ${binding.keyringId}`,
      keyName: this.keyId,
    };
    const response = (await this.#call(context, (client, options) =>
      client.encrypt(
        {
          name: this.keyId,
          plaintext,
          additionalAuthenticatedData: aad,
          plaintextCrc32c: { value: crc32c(plaintext) },
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        options,
      ),
      (answer) => {
        const r = answer as { name?: unknown; ciphertext?: unknown; ciphertextCrc32c?: unknown; verifiedPlaintextCrc32c?: unknown; verifiedAdditionalAuthenticatedDataCrc32c?: unknown };
        const ciphertext = bytes(r.ciphertext);
        if (ciphertext === undefined || ciphertext.length === 0) throw this.#invalidResponse(context, 'no ciphertext');
        if (r.verifiedPlaintextCrc32c !== true || r.verifiedAdditionalAuthenticatedDataCrc32c !== true) {
          // The request did not arrive as sent (or the service ignored the checksums): do not keep it.
          throw new CorruptedInTransit();
        }
        if (int64(r.ciphertextCrc32c) !== crc32c(ciphertext)) throw new CorruptedInTransit();
        if (typeof r.name !== 'string' || !r.name.startsWith(`${this.keyId}/cryptoKeyVersions/`)) {
          throw this.#invalidResponse(context, 'the answer names another key');
        }
        return ciphertext;
      },
    )) as Uint8Array;
    return { provider: PROVIDER, keyId: this.keyId, wrappedKey: Buffer.from(response).toString('base64') };
  }

  async unwrap(wrapped: WrappedKey, binding: KeyBinding): Promise<Uint8Array> {
    // Always the configured CryptoKey: a key name read from the keyring file never decides which key
    // (possibly in someone else's project) the data key is taken from.
    const keyName = this.keyId;
    const context: CallContext = {
      operation: 'Decrypt',
      action: `unwrapping version ${binding.version} of keyring ${binding.keyringId}`,
      keyName,
      wrappedBy: wrapped.keyId,
    };
    if (!BASE64.test(wrapped.wrappedKey) || wrapped.wrappedKey.length === 0) {
      throw kmsServiceError({ ...this.#failure(context), reason: 'invalid-ciphertext', hint: 'the keyring entry is not base64: it was altered' });
    }
    const ciphertext = Buffer.from(wrapped.wrappedKey, 'base64');
    const aad = bindingAad(binding);
    return (await this.#call(
      context,
      (client, options) =>
        client.decrypt(
          {
            name: keyName,
            ciphertext,
            additionalAuthenticatedData: aad,
            ciphertextCrc32c: { value: crc32c(ciphertext) },
            additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
          },
          options,
        ),
      (answer) => {
        const r = answer as { plaintext?: unknown; plaintextCrc32c?: unknown };
        const plaintext = bytes(r.plaintext);
        if (plaintext === undefined) throw this.#invalidResponse(context, 'no plaintext');
        const copy = ownCopy(plaintext);
        plaintext.fill(0);
        if (int64(r.plaintextCrc32c) !== crc32c(copy)) {
          copy.fill(0);
          throw new CorruptedInTransit();
        }
        return copy;
      },
    )) as Uint8Array;
  }

  close(): void {
    if (this.#slot.make !== undefined) void Promise.resolve(this.#slot.client.close?.()).catch(() => undefined);
  }

  // --- internals -----------------------------------------------------------------------------

  /** The client, its service stub built (authenticated); a failure is a `credentials` error. */
  async #ready(context: CallContext): Promise<GcpKmsClientLike> {
    const slot = this.#slot;
    const client = slot.client;
    if (slot.initialized || typeof client.initialize !== 'function') return client;
    try {
      await client.initialize();
      slot.initialized = true;
      return client;
    } catch (error) {
      if (slot.make !== undefined && slot.client === client) {
        void Promise.resolve(client.close?.()).catch(() => undefined);
        slot.client = slot.make();
      }
      const e = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; name?: unknown };
      const file = typeof e.code === 'string' && ['ENOENT', 'EACCES', 'EISDIR'].includes(e.code) ? ` (credentials file: ${e.code})` : '';
      throw kmsServiceError({
        ...this.#failure(context),
        reason: 'credentials',
        hint:
          `no usable Google credentials${file}: set GOOGLE_APPLICATION_CREDENTIALS to a readable key file, run on Google Cloud ` +
          `with a service account, or pass clientOptions.credentials (${safeName(e.name)})`,
      });
    }
  }

  async #call(
    context: CallContext,
    send: (client: GcpKmsClientLike, options: Record<string, unknown>) => Promise<unknown>,
    check: (answer: unknown) => unknown,
  ): Promise<unknown> {
    let attempts = 0;
    try {
      return await withDeadline(this.#timeoutMs, async (signal) => {
        const client = await this.#ready(context);
        return withRetries(this.#retry, async (n) => {
          attempts = n;
          if (signal.aborted) throw new DeadlineExceeded();
          let answer: unknown;
          try {
            const result = await send(client, {});
            answer = Array.isArray(result) ? result[0] : result;
          } catch (error) {
            throw this.#mapError(error, context, n);
          }
          try {
            return check(answer);
          } catch (error) {
            if (error instanceof CorruptedInTransit) {
              throw kmsServiceError({
                ...this.#failure(context, n),
                reason: 'service',
                hint: 'a CRC32C checksum of the request or answer did not match (data corrupted in transit); retry later',
              });
            }
            throw error;
          }
        });
      });
    } catch (error) {
      if (error instanceof DeadlineExceeded) {
        throw kmsServiceError({ ...this.#failure(context, attempts), reason: 'unreachable', networkErrorCode: 'ETIMEDOUT' });
      }
      throw error;
    }
  }

  #failure(context: CallContext, attempts?: number) {
    return {
      provider: PROVIDER,
      service: SERVICE,
      operation: context.operation,
      action: context.action,
      keyId: context.keyName,
      target: this.#target,
      attempts,
    };
  }

  #invalidResponse(context: CallContext, why: string): SifreDBKmsError {
    return kmsServiceError({ ...this.#failure(context), reason: 'invalid-response', hint: `${SERVICE} returned an unexpected answer (${why})` });
  }

  /**
   * Maps what the client threw: a google-gax `GoogleError` (gRPC status code 0-16), a gaxios error
   * of the REST transport (HTTP status, google.rpc.Status JSON as its message), a network error, or a
   * credentials error from google-auth-library. Nothing of the client's error is kept but names,
   * codes and, for errors that name resources and states only, Google's message.
   */
  #mapError(error: unknown, context: CallContext, attempts: number): SifreDBKmsError {
    if (error instanceof SifreDBKmsError) return error;
    const base = this.#failure(context, attempts);
    const network = networkErrorCode(error);
    const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
    const status = googleStatus(e);
    if (status === undefined) {
      if (network !== undefined) return kmsServiceError({ ...base, reason: 'unreachable', networkErrorCode: network });
      const message = typeof e.message === 'string' ? e.message : '';
      if (/credential|access token|invalid_grant|unauthorized_client|private key|metadata server/i.test(message)) {
        return kmsServiceError({
          ...base,
          reason: 'credentials',
          hint: 'no usable Google credentials: set GOOGLE_APPLICATION_CREDENTIALS, run on Google Cloud with a service account, or pass clientOptions.credentials',
        });
      }
      return kmsServiceError({ ...base, reason: 'refused', hint: `the ${SERVICE} client failed before the service answered (${safeName(e.name)})` });
    }
    const { name, httpStatus, message } = status;
    const withStatus = { ...base, serviceErrorName: name, httpStatusCode: httpStatus };
    let reason = reasonOf(name, httpStatus, message);
    if (reason === 'invalid-ciphertext' && context.wrappedBy !== undefined && context.wrappedBy !== context.keyName) reason = 'wrong-key';
    // Google's messages for these name resources and states only; others may quote the request.
    const quotable = reason === 'denied' || reason === 'not-found' || reason === 'disabled';
    const hints: Partial<Record<KmsFailureReason, string>> = {
      denied: `access denied to ${SERVICE} key ${context.keyName}: grant this identity roles/cloudkms.cryptoKeyEncrypterDecrypter on the CryptoKey (docs/KMS.md)`,
      disabled: `the version of ${SERVICE} key ${context.keyName} that wrapped this keyring is disabled, scheduled for destruction or destroyed; restore and enable it to read data encrypted under it`,
      'invalid-ciphertext': `${SERVICE} refused the wrapped key: it was made under another CryptoKey than ${context.keyName}, bound to another keyring id or version, or altered`,
      'wrong-key': `the keyring entry was wrapped by ${SERVICE} key ${String(context.wrappedBy).slice(0, 300)}, not the configured ${context.keyName}; configure that key, or rewrap the keyring`,
      credentials: `${SERVICE} rejected the credentials (missing, invalid or expired)`,
    };
    return kmsServiceError({ ...withStatus, reason, hint: hints[reason], serviceMessage: quotable ? message : undefined });
  }
}

const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

const HTTP_TO_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** The google.rpc status name, HTTP status and Google's message of a client error, when the service answered. */
function googleStatus(e: Record<string, unknown>): { name: string; httpStatus: number | undefined; message: string } | undefined {
  const response = (typeof e.response === 'object' && e.response !== null ? e.response : {}) as Record<string, unknown>;
  const httpStatus =
    typeof e.status === 'number' && e.status >= 100 ? e.status : typeof response.status === 'number' ? response.status : typeof e.code === 'number' && e.code >= 100 ? e.code : undefined;
  // REST transport: the body (google.rpc.Status JSON) is the error's message.
  let body: { status?: unknown; message?: unknown; code?: unknown } | undefined;
  if (typeof e.message === 'string' && e.message.startsWith('{')) {
    try {
      const parsed = JSON.parse(e.message) as { error?: typeof body };
      body = typeof parsed?.error === 'object' && parsed.error !== null ? parsed.error : undefined;
    } catch {
      body = undefined;
    }
  }
  let name: string | undefined;
  if (typeof body?.status === 'string' && (GRPC_STATUS_NAMES as readonly string[]).includes(body.status)) name = body.status;
  else if (typeof e.code === 'number' && e.code >= 0 && e.code < GRPC_STATUS_NAMES.length) name = GRPC_STATUS_NAMES[e.code];
  else if (httpStatus !== undefined) name = HTTP_TO_STATUS[httpStatus] ?? (httpStatus >= 500 ? 'INTERNAL' : httpStatus >= 400 ? 'FAILED_PRECONDITION' : undefined);
  if (name === undefined || name === 'OK') return undefined;
  const message = typeof body?.message === 'string' ? body.message : typeof e.details === 'string' ? e.details : '';
  return { name, httpStatus, message };
}

function reasonOf(status: string, httpStatus: number | undefined, message: string): KmsFailureReason {
  switch (status) {
    case 'PERMISSION_DENIED':
      return 'denied';
    case 'UNAUTHENTICATED':
      return 'credentials';
    case 'NOT_FOUND':
      return 'not-found';
    case 'RESOURCE_EXHAUSTED':
      return 'throttled';
    case 'UNAVAILABLE':
    case 'INTERNAL':
    case 'DEADLINE_EXCEEDED':
    case 'ABORTED':
      return 'service';
    case 'FAILED_PRECONDITION':
      // "projects/…/cryptoKeyVersions/1 is not enabled, current state is: DISABLED."
      return /not enabled|current state|destroy/i.test(message) ? 'disabled' : 'refused';
    case 'INVALID_ARGUMENT':
      if (/checksum|crc32c/i.test(message)) return 'service';
      return /decrypt|ciphertext/i.test(message) ? 'invalid-ciphertext' : 'refused';
    default:
      return httpStatus !== undefined && httpStatus >= 500 ? 'service' : 'refused';
  }
}

/** `http://127.0.0.1:8080` of a custom endpoint, else the service's name; never credentials. */
function describeTarget(clientOptions: Record<string, unknown> | undefined): string {
  const endpoint = clientOptions?.apiEndpoint ?? clientOptions?.servicePath;
  if (typeof endpoint !== 'string' || endpoint === '') return 'cloudkms.googleapis.com';
  const protocol = typeof clientOptions?.protocol === 'string' ? clientOptions.protocol : 'https';
  const port = typeof clientOptions?.port === 'number' ? `:${clientOptions.port}` : '';
  return `${protocol}://${endpoint.replace(/[^A-Za-z0-9.:[\]-]/g, '')}${port}`;
}

function bytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string' && BASE64.test(value)) return Buffer.from(value, 'base64');
  return undefined;
}

/** google.protobuf.Int64Value as the SDK returns it (`{ value: '123' }`), or a bare value. */
function int64(value: unknown): number | undefined {
  const inner = typeof value === 'object' && value !== null ? (value as { value?: unknown }).value : value;
  if (typeof inner === 'number') return inner;
  if (typeof inner === 'string' && /^\d{1,20}$/.test(inner)) return Number(inner);
  if (typeof inner === 'bigint') return Number(inner);
  return undefined;
}

function safeName(value: unknown): string {
  return typeof value === 'string' ? value.replace(/[^A-Za-z0-9._-]/g, '').slice(0, 64) || 'Error' : 'Error';
}

/** Options of {@link GcpKmsProvider.open} and {@link GcpKmsProvider.create}. */
export interface GcpKmsProviderOptions extends EnvelopeOptions, GcpKmsAdapterOptions {}

/**
 * A {@link KeyProvider} whose root keys are data keys encrypted by a Google Cloud KMS CryptoKey
 * (envelope encryption). `Encrypt` is called once per new version (create, rotate), `Decrypt` once
 * per version per process when the keys are loaded; never per value. See docs/KMS.md.
 */
export class GcpKmsProvider extends EnvelopeKeyProvider {
  private constructor(init: EnvelopeInit) {
    super(init);
  }

  /** Opens the keyring, creating it with version 1 (one `Encrypt`) when it does not exist (unless `createIfMissing: false`). */
  static async open(options: GcpKmsProviderOptions): Promise<GcpKmsProvider> {
    return GcpKmsProvider.#start(options, options?.createIfMissing === false ? 'never' : 'if-missing');
  }

  /** Creates a new keyring with version 1; fails with `ERR_SIFREDB_KEY` if one already exists. */
  static async create(options: GcpKmsProviderOptions): Promise<GcpKmsProvider> {
    return GcpKmsProvider.#start(options, 'always');
  }

  static async #start(options: GcpKmsProviderOptions, mode: EnvelopeOpenMode): Promise<GcpKmsProvider> {
    if (typeof options !== 'object' || options === null) throw new SifreDBError('ERR_SIFREDB_INPUT', 'GcpKmsProvider: options must be an object');
    const adapter = await GcpKmsAdapter.make(options);
    return openEnvelope('GcpKmsProvider', options, [adapter], mode, (init) => new GcpKmsProvider(init));
  }

  /** The CryptoKey that wraps new versions (after {@link GcpKmsProvider.rewrap} to another key, that one). */
  get keyName(): string {
    return this.adapters[0]!.keyId;
  }

  /**
   * Re-encrypts every version's data key under the CryptoKey's current primary version (after the
   * CryptoKey was rotated, so that its older versions can be disabled), or under another CryptoKey
   * `newKeyName`. Cloud KMS has no server-side re-encrypt: each version is decrypted (unless already
   * loaded) and encrypted again; one keyring write. Field data is untouched. With `newKeyName`, this
   * provider uses that key afterwards: configure it for future opens.
   */
  async rewrap(newKeyName?: string): Promise<KmsRewrapResult> {
    const from = this.adapters[0] as GcpKmsAdapter;
    return this.rewrapWith(from, newKeyName === undefined || newKeyName === from.keyId ? from : from.withKey(newKeyName));
  }
}
