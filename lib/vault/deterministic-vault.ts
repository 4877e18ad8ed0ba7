/** {@link DeterministicVault}: deterministic encryption (AES-256-SIV) for equality lookups. */
import type { Buffer } from 'node:buffer';
import { ALGORITHM, type CipherHandle } from '../backend/types.js';
import { assertContext, type EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { EnvelopeHeader } from '../format/envelope.js';
import { toText } from '../format/text.js';
import { type RowBindingOptions, rowAdOf } from '../format/row-ad.js';
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
 * Row binding (`{ aad }` on every method) works here too, but costs the point of this vault: equal
 * values in different rows then give different ciphertexts, so `WHERE col = $1` across rows no
 * longer finds them (it hides the equality instead). Bind deterministic columns only when lookups
 * always name the row as well; otherwise leave them unbound, or use a `Vault` + `BlindIndex` with
 * row binding.
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
   *
   * With `options.aad` the terms are those of the value bound to that one row: they find that row
   * only (a lookup of a known row, e.g. `WHERE id = $1 AND email IN (…)`). Row-bound deterministic
   * ciphertexts of equal values in different rows differ, so there is no search across rows.
   */
  queryTerms(value: EncryptableValue, ctx: EncryptionContext, options?: RowBindingOptions): Buffer[] {
    assertContext(ctx);
    const rowAd = rowAdOf(options);
    const encoded = encodeValue(value);
    return this.keyring.queryVersionsFor(ctx).map((version) => {
      const cipher = this.keyring.deterministicCipher(ctx, version);
      return cipher.encrypt(encoded.data, encoded.tag, rowAd);
    });
  }

  /** {@link queryTerms} in the `sdb1:` text form, for TEXT/VARCHAR columns. */
  queryTermsAsText(value: EncryptableValue, ctx: EncryptionContext, options?: RowBindingOptions): string[] {
    return this.queryTerms(value, ctx, options).map(toText);
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
