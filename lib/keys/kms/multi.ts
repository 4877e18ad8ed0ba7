/**
 * {@link MultiKmsProvider}: one keyring whose data keys are each wrapped under several KMS keys, from
 * any mix of services (AWS KMS in two regions, AWS + Vault, Vault + GCP…). Reading needs any one of
 * them: the disaster-recovery answer to losing a region, an account or a whole provider.
 */
import { SifreDBError } from '../../errors.js';
import type { KmsAdapter } from './adapter.js';
import { EnvelopeKeyProvider, openEnvelope, type EnvelopeInit, type EnvelopeOpenMode, type EnvelopeOptions, type KmsRewrapResult } from './envelope.js';

/** Options of {@link MultiKmsProvider.open} and {@link MultiKmsProvider.create}. */
export interface MultiKmsProviderOptions extends EnvelopeOptions {
  /**
   * The wrapping keys, in the order they are tried when unwrapping, e.g.
   * `[await AwsKmsAdapter.make({ keyId }), new VaultTransitAdapter({ key: 'transit/keys/app' })]`.
   * Every one must answer to create the keyring or rotate; any one is enough to read it.
   * {@link MultiKmsProvider.close} closes them.
   */
  adapters: KmsAdapter[];
}

function invalidInput(message: string): never {
  throw new SifreDBError('ERR_SIFREDB_INPUT', message);
}

function checkAdapter(adapter: unknown, where: string): KmsAdapter {
  const a = adapter as Partial<KmsAdapter> | null;
  if (
    typeof a !== 'object' ||
    a === null ||
    typeof a.provider !== 'string' ||
    typeof a.keyId !== 'string' ||
    typeof a.wrap !== 'function' ||
    typeof a.unwrap !== 'function'
  ) {
    invalidInput(`${where}: each wrapping key must be a KMS adapter (AwsKmsAdapter, VaultTransitAdapter, …)`);
  }
  return a as KmsAdapter;
}

/**
 * A key provider over several wrapping keys. Opening an existing keyring calls no service; each
 * version is unwrapped once (per provider instance) by the first wrapping key that answers, in the
 * configured order, so a process start costs one unwrap per version while the first service is up,
 * plus the failed attempts at the services before it while it is not.
 */
export class MultiKmsProvider extends EnvelopeKeyProvider {
  private constructor(init: EnvelopeInit) {
    super(init);
  }

  /**
   * Opens the keyring, creating it with version 1 (one generate call at the first key, one wrap at
   * each other) when it does not exist (unless `createIfMissing: false`).
   */
  static async open(options: MultiKmsProviderOptions): Promise<MultiKmsProvider> {
    return MultiKmsProvider.#start(options, options?.createIfMissing === false ? 'never' : 'if-missing');
  }

  /** Creates a new keyring with version 1; fails with `ERR_SIFREDB_KEY` if one already exists. */
  static async create(options: MultiKmsProviderOptions): Promise<MultiKmsProvider> {
    return MultiKmsProvider.#start(options, 'always');
  }

  static async #start(options: MultiKmsProviderOptions, mode: EnvelopeOpenMode): Promise<MultiKmsProvider> {
    if (typeof options !== 'object' || options === null) invalidInput('MultiKmsProvider: options must be an object');
    if (!Array.isArray(options.adapters) || options.adapters.length === 0) {
      invalidInput('MultiKmsProvider: adapters must be a non-empty array of wrapping keys');
    }
    const adapters = options.adapters.map((a) => checkAdapter(a, 'MultiKmsProvider'));
    const seen = new Set<string>();
    for (const adapter of adapters) {
      const identity = `${adapter.provider} ${adapter.keyId}`;
      if (seen.has(identity)) invalidInput(`MultiKmsProvider: ${adapter.description} is listed twice`);
      seen.add(identity);
    }
    return openEnvelope('MultiKmsProvider', options, adapters, mode, (init) => new MultiKmsProvider(init));
  }

  /** The wrapping keys' descriptions, in the order they are tried. */
  get wrappingKeys(): string[] {
    return this.adapters.map((a) => a.description);
  }

  /**
   * Wraps every version under one more key (one wrap call per version; versions not loaded yet are
   * unwrapped first) and writes the keyring once. Returns the number of versions wrapped.
   */
  async addWrappingKey(adapter: KmsAdapter): Promise<number> {
    checkAdapter(adapter, 'addWrappingKey');
    if (this.adapters.some((a) => a.provider === adapter.provider && a.keyId === adapter.keyId)) {
      invalidInput(`addWrappingKey: ${adapter.description} already wraps this keyring`);
    }
    return this.addWrapping(adapter);
  }

  /**
   * Removes a wrapping key (an adapter of this provider, or its `keyId`): its wraps are dropped from
   * every version (no service call) and the keyring is written once. Refused when it is the last
   * key of some version. Returns the number of wraps removed. Back the keyring up afterwards.
   */
  async removeWrappingKey(key: KmsAdapter | string): Promise<number> {
    const adapter = this.adapters.find((a) => a === key || a.keyId === key);
    if (adapter === undefined) invalidInput(`removeWrappingKey: ${typeof key === 'string' ? key : key?.description} is not a wrapping key of this keyring`);
    if (this.adapters.length === 1) invalidInput('removeWrappingKey: it is the only wrapping key');
    return this.removeWrapping(adapter);
  }

  /**
   * Re-wraps every version under each wrapping key's newest key version (server-side where the
   * service can: AWS `ReEncrypt`, Vault `rewrap`). One keyring write per wrapping key.
   */
  async rewrap(): Promise<KmsRewrapResult> {
    let result: KmsRewrapResult = { versions: 0, keyIds: '' };
    for (const adapter of [...this.adapters]) result = await this.rewrapWith(adapter, adapter);
    return result;
  }
}
