/**
 * One column of a batch of rows decrypted to its declared type: what `EncryptedTable` reads with.
 * A value of another type than the schema declares is `ERR_SIFREDB_SCHEMA`: the schema and the data
 * disagree, and guessing would hand the application the wrong type.
 */
import { indexedError } from '../backend/batch.js';
import type { BatchOptions } from '../backend/types.js';
import type { EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { BaseVault } from '../vault/base-vault.js';
import type { ColumnValueType } from './definition.js';

const TYPE_NAMES: Readonly<Record<ColumnValueType, string>> = {
  string: 'string',
  number: 'number',
  bigint: 'bigint',
  boolean: 'boolean',
  date: 'Date',
  json: 'JSON',
  bytes: 'bytes',
};

function typeOfValue(value: unknown): ColumnValueType {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'bigint') return 'bigint';
  if (typeof value === 'boolean') return 'boolean';
  if (value instanceof Date) return 'date';
  if (value instanceof Uint8Array) return 'bytes';
  return 'json';
}

/** The values of `ciphertexts`, each checked against `type`; errors name `ciphertexts[i]` with `error.index`. */
export function decryptColumn(
  vault: BaseVault,
  ciphertexts: readonly (string | Uint8Array)[],
  ctx: EncryptionContext,
  type: ColumnValueType,
  rowAds: readonly string[] | undefined,
): unknown[] {
  return ciphertexts.map((ciphertext, i) => {
    let value: unknown;
    try {
      value = vault.decryptValue(ciphertext, ctx, rowAds === undefined ? undefined : { aad: rowAds[i]! });
    } catch (error) {
      throw indexedError(error, 'ciphertexts', i);
    }
    const held = typeOfValue(value);
    if (held !== type) {
      if (value instanceof Uint8Array) value.fill(0);
      throw indexedError(
        new SifreDBError(ERROR_CODES.schema, `the stored value is ${TYPE_NAMES[held]} but the schema declares ${TYPE_NAMES[type]}`),
        'ciphertexts',
        i,
      );
    }
    return value;
  });
}

/** Async form of {@link decryptColumn}. */
export async function decryptColumnAsync(
  vault: BaseVault,
  ciphertexts: readonly (string | Uint8Array)[],
  ctx: EncryptionContext,
  type: ColumnValueType,
  rowAds: readonly string[] | undefined,
  _options?: BatchOptions,
): Promise<unknown[]> {
  return decryptColumn(vault, ciphertexts, ctx, type, rowAds);
}
