/**
 * Row binding (docs/FORMAT.md, "Row binding"): how the per-value associated data given as
 * `{ aad }` becomes bytes.
 *
 * - `Uint8Array`: as is.
 * - `string`: UTF-8 (a string with a lone surrogate is refused, never replaced).
 * - `number`: a safe integer (`Number.isSafeInteger`), as decimal ASCII: `-` for negatives, no `+`,
 *   no leading zeros, `-0` as `0`. Other numbers (fractions, NaN, ±Infinity, beyond 2^53 − 1) are
 *   refused: pass a bigint or a string.
 * - `bigint`: decimal ASCII, as `bigint.toString()`.
 *
 * So `42`, `42n` and `'42'` bind to the same bytes (`34 32`): the id as a database driver returns it
 * (number, bigint or text) always matches. Bytes `[0x34, 0x32]` do too.
 */
import { utf8Bytes } from './bytes.js';
import { ERROR_CODES, SifreDBError, indexedError } from '../errors.js';
import { isWellFormed } from './utf8.js';

/** Per-value associated data for row binding, e.g. the row's primary key. */
export type RowAd = string | Uint8Array | number | bigint;

/** The `options` of the single-value vault methods. */
export interface RowBindingOptions {
  /**
   * Binds the ciphertext to this value (typically the row's primary key): decrypting then requires
   * the same `aad`, so ciphertexts swapped between rows fail with `ERR_SIFREDB_AUTH`. Encoded by
   * {@link encodeRowAd}. Giving the key with `undefined` or `null` is an error, not "unbound".
   */
  aad?: RowAd;
}

/** The `options` of the batch vault methods: one `aad` per item. */
export interface BatchRowBindingOptions {
  /** `aad[i]` binds item `i` (see {@link RowBindingOptions.aad}); as many entries as items. */
  aad?: readonly RowAd[];
}

/** The bytes of a row AD (rules in the module doc). @throws `ERR_SIFREDB_INPUT` for anything else. */
export function encodeRowAd(aad: RowAd): Uint8Array {
  if (aad instanceof Uint8Array) return aad;
  if (typeof aad === 'string') {
    if (!isWellFormed(aad)) throw new SifreDBError(ERROR_CODES.input, 'aad contains a lone surrogate');
    return utf8Bytes(aad);
  }
  if (typeof aad === 'number') {
    if (!Number.isSafeInteger(aad)) {
      throw new SifreDBError(ERROR_CODES.input, 'aad must be a safe integer when a number (use a bigint or a string)');
    }
    return utf8Bytes(String(aad === 0 ? 0 : aad));
  }
  if (typeof aad === 'bigint') return utf8Bytes(aad.toString(10));
  throw new SifreDBError(ERROR_CODES.input, 'aad must be a string, a Uint8Array, a number or a bigint');
}

/**
 * The row AD of `options`: `undefined` when no `aad` key is given (unbound), else its bytes.
 * @throws `ERR_SIFREDB_INPUT` for options that are not an object, or an `aad` key that is not a {@link RowAd}.
 */
export function rowAdOf(options: RowBindingOptions | undefined): Uint8Array | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') {
    throw new SifreDBError(ERROR_CODES.input, 'options must be an object { aad? }');
  }
  if (!('aad' in options)) return undefined;
  return encodeRowAd(options.aad as RowAd);
}

/** True when batch `options` carry an `aad` key (the row-bound, one-call-per-item path). */
export function hasRowAds(options: BatchRowBindingOptions | undefined): options is BatchRowBindingOptions {
  return options !== undefined && options !== null && typeof options === 'object' && 'aad' in options;
}

/**
 * The row ADs of batch `options` for `n` items: `undefined` when no `aad` key is given, else one per
 * item. @throws `ERR_SIFREDB_INPUT`, naming `aad[i]` for a bad entry.
 */
export function rowAdsOf(options: BatchRowBindingOptions | undefined, n: number): Uint8Array[] | undefined {
  if (options === undefined || options === null || typeof options !== 'object' || !('aad' in options)) return undefined;
  const { aad } = options;
  if (!Array.isArray(aad)) throw new SifreDBError(ERROR_CODES.input, 'aad must be an array with one entry per item');
  if (aad.length !== n) throw new SifreDBError(ERROR_CODES.input, `aad has ${aad.length} entries for ${n} items`);
  const out = new Array<Uint8Array>(n);
  for (let i = 0; i < n; i++) {
    try {
      out[i] = encodeRowAd(aad[i] as RowAd);
    } catch (error) {
      throw indexedError(error, 'aad', i);
    }
  }
  return out;
}
