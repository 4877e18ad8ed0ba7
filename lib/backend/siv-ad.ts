/**
 * The associated data of the raw AES-256-SIV primitives, checked once for both backends: one
 * string of bytes, or a vector of them (RFC 5297's S2V takes up to 126 components besides the
 * plaintext). Other writers seal with several, e.g. SifreDB for Rust's `DeterministicVault`
 * (`[context, 16 zero bytes]`); SifreDB's own formats use one.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { utf8Bytes } from '../format/bytes.js';
import { assertWellFormed } from '../format/utf8.js';

/**
 * AES-SIV associated data: a `Uint8Array`, a string (its UTF-8), or an array of up to
 * {@link MAX_SIV_AD_COMPONENTS} of them, in S2V order.
 */
export type SivAssociatedData = Uint8Array | string | readonly (Uint8Array | string)[];

/** Most associated-data components S2V takes (RFC 5297 §7: 127 inputs, one the plaintext). */
export const MAX_SIV_AD_COMPONENTS = 126;

const bytesOf = (value: unknown, name: string): Uint8Array => {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') {
    assertWellFormed(value, name);
    return utf8Bytes(value);
  }
  throw new SifreDBError(ERROR_CODES.input, `${name} must be a Uint8Array or a string`);
};

/**
 * `ad` as S2V input: a `Uint8Array` for one component (given one, that same view, so the
 * single-string path is unchanged), or an array of components, each a copy taken once here (a
 * getter, a resizable or shared buffer cannot change them afterwards). Throws `ERR_SIFREDB_INPUT`
 * for anything else or for more than 126 components.
 */
export function sivAdComponents(ad: unknown): Uint8Array | Uint8Array[] {
  if (!Array.isArray(ad)) {
    if (ad instanceof Uint8Array || typeof ad === 'string') return bytesOf(ad, 'ad');
    throw new SifreDBError(ERROR_CODES.input, 'ad must be a Uint8Array, a string or an array of them');
  }
  const count = ad.length;
  if (count > MAX_SIV_AD_COMPONENTS) {
    throw new SifreDBError(ERROR_CODES.input, `ad must be at most ${MAX_SIV_AD_COMPONENTS} components, got ${count}`);
  }
  const components: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const component: unknown = ad[i];
    const bytes = bytesOf(component, `ad[${i}]`);
    components.push(typeof component === 'string' ? bytes : Uint8Array.from(bytes));
  }
  return components;
}
