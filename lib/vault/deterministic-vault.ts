/** {@link DeterministicVault}: deterministic encryption (AES-256-SIV) for equality lookups. */
import type { Buffer } from 'node:buffer';
import { ALGORITHM, type CipherHandle } from '../backend/types.js';
import { assertContext, type EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { EnvelopeHeader } from '../format/envelope.js';
import { toText } from '../format/text.js';
import { type EncryptableValue, encodeValue } from '../format/value-codec.js';
import { Keyring, type KeyringOptions, type KeySource } from '../keys/keyring.js';
import { BaseVault } from './base-vault.js';

/** Options of {@link DeterministicVault.open}; they apply only when the source is not already a {@link Keyring}. */
export type DeterministicVaultOptions = KeyringOptions;

/**
 * Deterministic field encryption with AES-256-SIV (RFC 5297): the same value, context and key
 * version always give the same ciphertext, so a column can be searched with `WHERE col = $1` or,
 * during a key rotation, `WHERE col IN (…queryTerms)`. Different contexts give unrelated ciphertexts.
 *
 * It reveals which rows hold equal values (and, like any encryption here, their lengths). Use it only
 * for columns you must look up exactly; prefer a `Vault` plus a `BlindIndex` otherwise (SECURITY.md).
 *
 * @example
 * ```ts
 * const dvault = await DeterministicVault.open(provider);
 * const ctx = EncryptionContext.of('users', 'email');
 * await db.query('SELECT * FROM users WHERE email = ANY($1)', [dvault.queryTerms('alice@example.com', ctx)]);
 * ```
 */
export class DeterministicVault extends BaseVault {
  protected readonly algorithmId = ALGORITHM.aesSiv;

  private constructor(keyring: Keyring) {
    super(keyring);
    Object.freeze(this);
  }

  /**
   * Loads the keys of `source` once; after that every operation is synchronous.
   * @throws `ERR_SIFREDB_KEY` when the keys cannot be loaded.
   */
  static async open(source: KeySource, options: DeterministicVaultOptions = {}): Promise<DeterministicVault> {
    return new DeterministicVault(await Keyring.from(source, options));
  }

  /**
   * Every ciphertext a stored `value` of `ctx` may have: one per readable, non-retired key version,
   * the current version first. Use them all in `WHERE col IN (…)` so that rows not yet re-encrypted
   * after a rotation are still found; the list shrinks back to one term once old versions are
   * retired. The value must have the type it was stored with (a number never matches a string).
   */
  queryTerms(value: EncryptableValue, ctx: EncryptionContext): Buffer[] {
    assertContext(ctx);
    const encoded = encodeValue(value);
    return this.keyring
      .queryVersionsFor(ctx)
      .map((version) => this.keyring.deterministicCipher(ctx, version).encrypt(encoded.data, encoded.tag));
  }

  /** {@link queryTerms} in the `sdb1:` text form, for TEXT/VARCHAR columns. */
  queryTermsAsText(value: EncryptableValue, ctx: EncryptionContext): string[] {
    return this.queryTerms(value, ctx).map(toText);
  }

  protected encryptionCipher(ctx: EncryptionContext): CipherHandle {
    return this.keyring.deterministicCipher(ctx);
  }

  protected decryptionCipher(header: EnvelopeHeader, ctx: EncryptionContext): CipherHandle {
    return this.keyring.deterministicCipher(ctx, header.keyVersion);
  }

  protected checkAlgorithm(header: EnvelopeHeader): void {
    if (header.algorithmId !== ALGORITHM.aesSiv) {
      throw new SifreDBError(ERROR_CODES.format, `this is a randomized (${header.algorithm}) ciphertext; read it with a Vault`);
    }
  }
}
