/** {@link Vault}: randomized encryption (ChaCha20-Poly1305 or XChaCha20-Poly1305) of fields. */
import { ALGORITHM, type CipherHandle, type RandomizedAlgorithmId } from '../backend/types.js';
import type { EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { EnvelopeHeader } from '../format/envelope.js';
import { Keyring, type KeyringOptions, type KeySource } from '../keys/keyring.js';
import { BaseVault } from './base-vault.js';

/** Randomized algorithms a {@link Vault} can write. */
export type RandomizedAlgorithm = 'chacha20-poly1305' | 'xchacha20-poly1305';

/** Options of {@link Vault.open}. `cacheSize` and `backend` apply only when the source is not already a {@link Keyring}. */
export interface VaultOptions extends KeyringOptions {
  /**
   * Algorithm of new ciphertexts. Default `chacha20-poly1305` (96-bit random nonces: keep each
   * (context, key version) under 2^32 encryptions). `xchacha20-poly1305` (192-bit nonces) removes that
   * limit for very high write volumes at 12 bytes more per value. Both are always readable.
   */
  algorithm?: RandomizedAlgorithm;
}

const ALGORITHM_IDS: Readonly<Record<RandomizedAlgorithm, RandomizedAlgorithmId>> = {
  'chacha20-poly1305': ALGORITHM.chacha20Poly1305,
  'xchacha20-poly1305': ALGORITHM.xchacha20Poly1305,
};

/**
 * Randomized field encryption: every call uses a fresh random nonce, so equal values give unrelated
 * ciphertexts (no equality leak — pair it with a `BlindIndex` for lookups). Each value is bound to its
 * {@link EncryptionContext} and to its header, so values moved between rows' tenants, columns or
 * tables, or altered, fail to decrypt.
 *
 * @example
 * ```ts
 * const vault = await Vault.open(await FileKeyProvider.open('keys.json'));
 * const ctx = new EncryptionContext({ table: 'users', column: 'email' });
 * const stored = vault.encryptToString('alice@example.com', ctx); // "sdb1:…"
 * vault.decrypt(stored, ctx); // 'alice@example.com', typed DecryptedValue
 * vault.decrypt(stored, ctx, { expect: 'string' }); // typed string; throws for a non-string
 * vault.decrypt(vault.encrypt(new Date(0), ctx), ctx, { expect: 'date' }); // a Date
 * ```
 */
export class Vault extends BaseVault {
  /** Algorithm of new ciphertexts. */
  readonly algorithm: RandomizedAlgorithm;
  protected readonly algorithmId: RandomizedAlgorithmId;

  private constructor(keyring: Keyring, algorithm: RandomizedAlgorithm) {
    super(keyring);
    this.algorithm = algorithm;
    this.algorithmId = ALGORITHM_IDS[algorithm];
    Object.freeze(this);
  }

  /**
   * Loads the keys of `source` once (a provider, a `TenantKeyRouter`, or a shared `Keyring`); after
   * that every operation is synchronous.
   * @throws `ERR_SIFREDB_KEY` when the keys cannot be loaded; `ERR_SIFREDB_INPUT` for bad options.
   */
  static async open(source: KeySource, options: VaultOptions = {}): Promise<Vault> {
    const { algorithm = 'chacha20-poly1305', ...keyringOptions } = options;
    if (!Object.hasOwn(ALGORITHM_IDS, algorithm)) {
      throw new SifreDBError(ERROR_CODES.input, 'algorithm must be "chacha20-poly1305" or "xchacha20-poly1305"');
    }
    return new Vault(await Keyring.from(source, keyringOptions), algorithm);
  }

  protected encryptionCipher(ctx: EncryptionContext): CipherHandle {
    return this.keyring.randomizedCipher(this.algorithmId, ctx);
  }

  protected decryptionCipher(header: EnvelopeHeader, ctx: EncryptionContext): CipherHandle {
    return this.keyring.randomizedCipher(header.algorithmId as RandomizedAlgorithmId, ctx, header.keyVersion);
  }

  protected checkAlgorithm(header: EnvelopeHeader): void {
    if (header.algorithmId === ALGORITHM.aesSiv) {
      throw new SifreDBError(ERROR_CODES.format, 'this is a deterministic (AES-SIV) ciphertext; read it with a DeterministicVault');
    }
  }
}
