/**
 * One column of a batch of rows decrypted to its declared type, one backend call per column and
 * context: what `EncryptedTable` reads with. A value of another type than the schema declares is
 * `ERR_SIFREDB_SCHEMA`: the schema and the data disagree, and guessing would hand the application
 * the wrong type.
 */
import type { BatchOptions } from '../backend/types.js';
import type { EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { ValueType } from '../format/value-codec.js';
import type { BaseVault } from '../vault/base-vault.js';

/** The vault's `expect` mismatch (an input error naming `ciphertexts[i]`) as a schema error. */
function asSchemaError(error: unknown, type: ValueType): unknown {
  if (!(error instanceof SifreDBError) || error.code !== ERROR_CODES.input) return error;
  const index = (error as { index?: unknown }).index;
  const renamed = new SifreDBError(ERROR_CODES.schema, `${error.message} (the schema declares ${type})`);
  if (typeof index === 'number') (renamed as unknown as { index: number }).index = index;
  return renamed;
}

/** The values of `ciphertexts`, each checked against `type`; errors name `ciphertexts[i]` with `error.index`. */
export function decryptColumn(
  vault: BaseVault,
  ciphertexts: readonly (string | Uint8Array)[],
  ctx: EncryptionContext,
  type: ValueType,
  rowAds: readonly string[] | undefined,
): unknown[] {
  try {
    return vault.decryptMany(ciphertexts, ctx, rowAds === undefined ? { expect: type } : { expect: type, aad: rowAds });
  } catch (error) {
    throw asSchemaError(error, type);
  }
}

/** Async form of {@link decryptColumn}: the ciphers run on the thread pool. */
export async function decryptColumnAsync(
  vault: BaseVault,
  ciphertexts: readonly (string | Uint8Array)[],
  ctx: EncryptionContext,
  type: ValueType,
  rowAds: readonly string[] | undefined,
  options?: BatchOptions,
): Promise<unknown[]> {
  try {
    return await vault.decryptManyAsync(ciphertexts, ctx, { ...options, expect: type, ...(rowAds === undefined ? {} : { aad: rowAds }) });
  } catch (error) {
    throw asSchemaError(error, type);
  }
}
