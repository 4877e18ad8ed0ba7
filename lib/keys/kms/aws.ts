/**
 * AWS KMS: {@link AwsKmsAdapter} (the envelope core's adapter over `@aws-sdk/client-kms`) and
 * {@link AwsKmsProvider}, the key provider built on it.
 *
 * Each root-key version is a 32-byte data key made by KMS `GenerateDataKey` (AES_256), kept only
 * wrapped (`CiphertextBlob`) in the keyring. The KMS encryption context `{ "sifredb:keyring":
 * keyringId, "sifredb:version": "n" }` binds each wrapped key to its keyring and version, and lets
 * IAM policies restrict who may unwrap which keyring. See docs/KMS.md.
 *
 * `@aws-sdk/client-kms` is an optional peer dependency, imported on first use only.
 */
import { SifreDBError } from '../../errors.js';
import { bindingContext, type GeneratedKey, type KeyBinding, type KmsAdapter, type WrappedKey } from './adapter.js';
import { EnvelopeKeyProvider, openEnvelope, ownCopy, type EnvelopeInit, type EnvelopeOpenMode, type EnvelopeOptions, type KmsCacheOptions } from './envelope.js';
import { kmsError, type KmsCallDescription } from './errors.js';
import { AWS_KMS_PROVIDER } from './keyring.js';

/**
 * The part of a `KMSClient` (from `@aws-sdk/client-kms`) the provider uses. Typed structurally so
 * that SifreDB's type declarations do not require the AWS SDK to be installed.
 */
export interface KmsClientLike {
  send(command: unknown, options?: unknown): Promise<unknown>;
  destroy?(): void;
  readonly config?: unknown;
}

/** Cache limits for unwrapped data keys (the same for every KMS provider). */
export type AwsKmsCacheOptions = KmsCacheOptions;

/** Options of {@link AwsKmsProvider.open} and {@link AwsKmsProvider.create}. */
export interface AwsKmsProviderOptions extends EnvelopeOptions {
  /** The KMS key that wraps the data keys: key id, key ARN, alias name (`alias/x`) or alias ARN. */
  keyId: string;
  /** AWS region, when the provider creates its client (default: the SDK's region chain, e.g. AWS_REGION). */
  region?: string;
  /** A ready `KMSClient` (custom endpoint, credentials, retries, timeouts). Not destroyed by {@link AwsKmsProvider.close}. */
  client?: KmsClientLike;
  /**
   * Extra `KMSClient` constructor options when the provider creates its client (`endpoint`,
   * `maxAttempts`, `credentials`…). Default `requestHandler`: 5 s to connect, 15 s per request.
   */
  clientConfig?: Record<string, unknown>;
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

const KEY_BYTES = 32;
/** Timeouts of a client the provider makes (override with `clientConfig.requestHandler`). */
const DEFAULT_REQUEST_HANDLER = { connectionTimeout: 5_000, requestTimeout: 15_000, throwOnRequestTimeout: true };

function invalidInput(message: string): never {
  throw new SifreDBError('ERR_SIFREDB_INPUT', message);
}

function checkKeyId(keyId: unknown, where: string): string {
  if (typeof keyId !== 'string' || keyId.trim() === '' || keyId.length > 2048) {
    invalidInput(`${where} must be a KMS key id, key ARN, alias name or alias ARN`);
  }
  return keyId;
}

/**
 * The AWS KMS adapter: `GenerateDataKey` / `Encrypt` to wrap, `Decrypt` to unwrap, `ReEncrypt` to
 * re-wrap under another KMS key inside KMS. The SDK retries (its `maxAttempts`); errors are mapped by
 * `kmsError` (errors.ts).
 */
export class AwsKmsAdapter implements KmsAdapter {
  readonly provider = AWS_KMS_PROVIDER;
  readonly keyId: string;
  readonly #sdk: KmsSdk;
  readonly #client: KmsClientLike;
  readonly #ownsClient: boolean;
  #target: string | undefined;

  /** `ownsClient`: {@link close} destroys the client. */
  constructor(keyId: string, sdk: KmsSdk, client: KmsClientLike, ownsClient: boolean) {
    this.keyId = checkKeyId(keyId, 'AwsKmsAdapter: keyId');
    this.#sdk = sdk;
    this.#client = client;
    this.#ownsClient = ownsClient;
  }

  /** Makes the adapter, importing the SDK and creating a client when none is given. */
  static async make(options: Pick<AwsKmsProviderOptions, 'keyId' | 'region' | 'client' | 'clientConfig'>): Promise<AwsKmsAdapter> {
    const { keyId, region, client, clientConfig } = options;
    checkKeyId(keyId, 'AwsKmsProvider: keyId');
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
    const sdk = await loadSdk();
    const kms: KmsClientLike =
      client ??
      new sdk.KMSClient({
        ...(region !== undefined ? { region } : {}),
        // A KMS endpoint that accepts connections but never answers must not hang Vault.open.
        requestHandler: DEFAULT_REQUEST_HANDLER,
        ...(clientConfig ?? {}),
      });
    return new AwsKmsAdapter(keyId, sdk, kms, client === undefined);
  }

  get description(): string {
    return `aws-kms:${this.keyId}`;
  }

  /** An adapter for another KMS key on the same client (which it then owns if this one did). */
  withKey(keyId: string): AwsKmsAdapter {
    return new AwsKmsAdapter(keyId, this.#sdk, this.#client, this.#ownsClient);
  }

  owns(wrapped: WrappedKey): boolean {
    if (wrapped.provider !== AWS_KMS_PROVIDER) return false;
    // KMS records the key ARN; the configuration may name the key id or the ARN (aliases never match).
    return wrapped.keyId === this.keyId || wrapped.keyId.endsWith(`:key/${this.keyId}`);
  }

  async generate(binding: KeyBinding): Promise<GeneratedKey> {
    const response = (await this.#send(
      new this.#sdk.GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: bindingContext(binding) }),
      'GenerateDataKey',
      `making version ${binding.version} of KMS keyring ${binding.keyringId}`,
    )) as { Plaintext?: Uint8Array; CiphertextBlob?: Uint8Array; KeyId?: string };
    const { Plaintext: plaintext, CiphertextBlob: blob } = response;
    if (!(plaintext instanceof Uint8Array) || plaintext.length !== KEY_BYTES || !(blob instanceof Uint8Array) || blob.length === 0) {
      plaintext?.fill(0);
      throw new SifreDBError('ERR_SIFREDB_KMS', 'KMS GenerateDataKey returned an unexpected answer (no 32-byte data key)');
    }
    const bytes = ownCopy(plaintext);
    plaintext.fill(0);
    return { plaintext: bytes, wrapped: this.#wrapped(response.KeyId, blob) };
  }

  async wrap(plaintext: Uint8Array, binding: KeyBinding): Promise<WrappedKey> {
    const response = (await this.#send(
      new this.#sdk.EncryptCommand({ KeyId: this.keyId, Plaintext: plaintext, EncryptionContext: bindingContext(binding) }),
      'Encrypt',
      `wrapping version ${binding.version} of KMS keyring ${binding.keyringId}`,
    )) as { CiphertextBlob?: Uint8Array; KeyId?: string };
    if (!(response.CiphertextBlob instanceof Uint8Array) || response.CiphertextBlob.length === 0) {
      throw new SifreDBError('ERR_SIFREDB_KMS', 'KMS Encrypt returned no ciphertext');
    }
    return this.#wrapped(response.KeyId, response.CiphertextBlob);
  }

  async unwrap(wrapped: WrappedKey, binding: KeyBinding): Promise<Uint8Array> {
    const response = (await this.#send(
      new this.#sdk.DecryptCommand({
        CiphertextBlob: Buffer.from(wrapped.wrappedKey, 'base64'),
        KeyId: this.keyId,
        EncryptionContext: bindingContext(binding),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      }),
      'Decrypt',
      `unwrapping version ${binding.version} of KMS keyring ${binding.keyringId}`,
    )) as { Plaintext?: Uint8Array };
    const plaintext = response.Plaintext;
    if (!(plaintext instanceof Uint8Array) || plaintext.length !== KEY_BYTES) {
      plaintext?.fill(0);
      throw new SifreDBError('ERR_SIFREDB_KEY', `KMS returned a data key of the wrong size for version ${binding.version}`);
    }
    return plaintext;
  }

  /** `ReEncrypt` from the key that made `wrapped` to this adapter's key: the data key stays inside KMS. */
  async rewrap(wrapped: WrappedKey, binding: KeyBinding): Promise<WrappedKey> {
    const context = bindingContext(binding);
    const response = (await this.#send(
      new this.#sdk.ReEncryptCommand({
        CiphertextBlob: Buffer.from(wrapped.wrappedKey, 'base64'),
        SourceKeyId: wrapped.keyId,
        SourceEncryptionContext: context,
        DestinationKeyId: this.keyId,
        DestinationEncryptionContext: context,
      }),
      'ReEncrypt',
      `re-wrapping version ${binding.version} of KMS keyring ${binding.keyringId} under ${this.keyId}`,
      `${wrapped.keyId} (source) or ${this.keyId} (destination)`,
    )) as { CiphertextBlob?: Uint8Array; KeyId?: string };
    if (!(response.CiphertextBlob instanceof Uint8Array) || response.CiphertextBlob.length === 0) {
      throw new SifreDBError('ERR_SIFREDB_KMS', 'KMS ReEncrypt returned no ciphertext');
    }
    return this.#wrapped(response.KeyId, response.CiphertextBlob);
  }

  close(): void {
    if (this.#ownsClient) this.#client.destroy?.();
  }

  #wrapped(arn: unknown, blob: Uint8Array): WrappedKey {
    return {
      provider: AWS_KMS_PROVIDER,
      keyId: typeof arn === 'string' && arn !== '' ? arn : this.keyId,
      wrappedKey: Buffer.from(blob).toString('base64'),
    };
  }

  async #send(command: unknown, operation: string, action: string, keyId = this.keyId): Promise<unknown> {
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

/**
 * A key provider whose root keys are AWS KMS data keys (envelope encryption). Create it with
 * {@link AwsKmsProvider.open} (creates the keyring on first use) or {@link AwsKmsProvider.create}.
 * Opening an existing keyring calls no KMS API; each version is unwrapped with one `Decrypt` when the
 * Vault loads it (or here with `preload: true`), once per provider instance.
 */
export class AwsKmsProvider extends EnvelopeKeyProvider {
  private constructor(init: EnvelopeInit) {
    super(init);
  }

  /**
   * Opens the keyring, creating it with version 1 (one `GenerateDataKey`) when it does not exist
   * (unless `createIfMissing: false`).
   */
  static async open(options: AwsKmsProviderOptions): Promise<AwsKmsProvider> {
    return AwsKmsProvider.#start(options, options?.createIfMissing === false ? 'never' : 'if-missing');
  }

  /** Creates a new keyring with version 1; fails with `ERR_SIFREDB_KEY` if one already exists. */
  static async create(options: AwsKmsProviderOptions): Promise<AwsKmsProvider> {
    return AwsKmsProvider.#start(options, 'always');
  }

  static async #start(options: AwsKmsProviderOptions, mode: EnvelopeOpenMode): Promise<AwsKmsProvider> {
    if (typeof options !== 'object' || options === null) invalidInput('AwsKmsProvider: options must be an object');
    const adapter = await AwsKmsAdapter.make(options);
    return openEnvelope('AwsKmsProvider', options, [adapter], mode, (init) => new AwsKmsProvider(init));
  }

  /** The configured KMS key (id, ARN or alias); after {@link AwsKmsProvider.rewrap}, the new one. */
  get keyId(): string {
    return this.adapters[0]!.keyId;
  }

  /**
   * Re-encrypts every wrapped key under another KMS key with KMS `ReEncrypt` (one call per version;
   * the data keys never leave KMS in plaintext) and writes the keyring atomically. Field data is
   * untouched. Afterwards this provider uses `newKeyId`; configure it for future opens. Needs
   * kms:ReEncryptFrom on the old key and kms:ReEncryptTo on the new one.
   */
  async rewrap(newKeyId: string): Promise<AwsKmsRewrapResult> {
    checkKeyId(newKeyId, 'rewrap: newKeyId');
    const from = this.adapters[0] as AwsKmsAdapter;
    const result = await this.rewrapWith(from, from.withKey(newKeyId));
    return { versions: result.versions, kmsKeyArn: result.keyIds };
  }
}
