/** {@link StaticKeyProvider}: root keys given in code or an environment variable. */
import { allocSecret, fillRandom } from '../format/bytes.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { decodeKeyMaterial, isKeyStatus, isKeyVersion, type KeyMaterial } from './material.js';
import type { KeyProvider, KeyStatus, KeyVersionInfo } from './provider.js';

/** One version given to a {@link StaticKeyProvider}. */
export interface StaticKeyVersion {
  /** Key version, 1..2^32-1. */
  version: number;
  /** 32 bytes, or their base64 / base64url encoding. */
  key: KeyMaterial;
  /** Default `active`. */
  status?: KeyStatus;
  /** Default: when the provider was constructed. */
  createdAt?: Date;
}

/** Several versions for a {@link StaticKeyProvider}. */
export interface StaticKeyProviderOptions {
  /** At least one version. */
  keys: StaticKeyVersion[];
  /** The version to encrypt with; default the highest `active` version. */
  current?: number;
}

interface Entry {
  info: KeyVersionInfo;
  key: Uint8Array;
}

/**
 * Root keys held in memory: for tests, and for setups that pass the key in an environment variable
 * (`new StaticKeyProvider(process.env.SIFREDB_KEY)`). It copies the material it is given, so the
 * caller may zero its own buffer. {@link rotate} adds a random version in memory only: persist it
 * yourself, or use {@link FileKeyProvider} / a KMS provider.
 *
 * @example
 * ```ts
 * const provider = new StaticKeyProvider(process.env.SIFREDB_KEY!); // version 1
 * const twoVersions = new StaticKeyProvider({ keys: [{ version: 1, key: k1 }, { version: 2, key: k2 }] });
 * ```
 */
export class StaticKeyProvider implements KeyProvider {
  /** `static` — the provider holds no path or id worth showing. */
  readonly description = 'static';
  readonly #entries = new Map<number, Entry>();
  #current: number;

  /**
   * @param keys - one key (becomes version 1), or {@link StaticKeyProviderOptions}.
   * @throws `ERR_SIFREDB_KEY` for key material that is not 32 bytes; `ERR_SIFREDB_INPUT` for bad versions.
   */
  constructor(keys: KeyMaterial | StaticKeyProviderOptions) {
    const options: StaticKeyProviderOptions =
      typeof keys === 'string' || keys instanceof Uint8Array ? { keys: [{ version: 1, key: keys }] } : keys;
    if (typeof options !== 'object' || options === null || !Array.isArray(options.keys) || options.keys.length === 0) {
      throw new SifreDBError(ERROR_CODES.input, 'StaticKeyProvider needs a key or { keys: [{ version, key }, …] }');
    }
    const now = new Date();
    for (const [i, spec] of options.keys.entries()) {
      if (!isKeyVersion(spec?.version)) {
        throw new SifreDBError(ERROR_CODES.input, `keys[${i}].version must be an integer in 1..4294967295`);
      }
      if (this.#entries.has(spec.version)) {
        throw new SifreDBError(ERROR_CODES.input, `key version ${spec.version} is given twice`);
      }
      const status = spec.status ?? 'active';
      if (!isKeyStatus(status)) {
        throw new SifreDBError(ERROR_CODES.input, `keys[${i}].status must be "active" or "retired"`);
      }
      const createdAt = spec.createdAt ?? now;
      if (!(createdAt instanceof Date) || Number.isNaN(createdAt.getTime())) {
        throw new SifreDBError(ERROR_CODES.input, `keys[${i}].createdAt must be a valid Date`);
      }
      const key = decodeKeyMaterial(spec.key, `key version ${spec.version}`);
      this.#entries.set(spec.version, { info: Object.freeze({ version: spec.version, createdAt, status }), key });
    }
    const active = [...this.#entries.values()].filter((e) => e.info.status === 'active').map((e) => e.info.version);
    const current = options.current ?? Math.max(...active);
    const entry = this.#entries.get(current);
    if (entry === undefined || entry.info.status !== 'active') {
      throw new SifreDBError(ERROR_CODES.input, 'the current key version must be one of the given active versions');
    }
    this.#current = current;
  }

  /** A provider with one fresh random version 1 — handy for tests and examples; nothing is persisted. */
  static generate(): StaticKeyProvider {
    const key = fillRandom(allocSecret(32));
    try {
      return new StaticKeyProvider(key);
    } finally {
      key.fill(0);
    }
  }

  /** {@inheritDoc KeyProvider.listVersions} */
  async listVersions(): Promise<KeyVersionInfo[]> {
    return [...this.#entries.values()].map((e) => e.info).sort((a, b) => a.version - b.version);
  }

  /** {@inheritDoc KeyProvider.currentVersion} */
  async currentVersion(): Promise<number> {
    return this.#current;
  }

  /** A copy of the key of `version`; `ERR_SIFREDB_KEY` when there is none. */
  async loadKey(version: number): Promise<Uint8Array> {
    const entry = this.#entries.get(version);
    if (entry === undefined) throw new SifreDBError(ERROR_CODES.key, `static provider has no key version ${version}`);
    return Uint8Array.from(entry.key);
  }

  /** Adds a random version (highest + 1) in memory and makes it current. */
  async rotate(): Promise<number> {
    const version = Math.max(...this.#entries.keys()) + 1;
    if (!isKeyVersion(version)) throw new SifreDBError(ERROR_CODES.key, 'no key version left to rotate to');
    this.#entries.set(version, {
      info: Object.freeze({ version, createdAt: new Date(), status: 'active' as const }),
      key: fillRandom(allocSecret(32)),
    });
    this.#current = version;
    return version;
  }

  /** Marks a non-current version `retired`. */
  async retire(version: number): Promise<void> {
    const entry = this.#entries.get(version);
    if (entry === undefined) throw new SifreDBError(ERROR_CODES.key, `static provider has no key version ${version}`);
    if (version === this.#current) {
      throw new SifreDBError(ERROR_CODES.key, `key version ${version} is current and cannot be retired; rotate first`);
    }
    entry.info = Object.freeze({ ...entry.info, status: 'retired' as const });
  }
}
