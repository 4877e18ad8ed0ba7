/** UTF-8 helpers shared by contexts, the value codec and blind indexes. Internal. */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { utf8Text } from './bytes.js';
import { isWellFormed } from './well-formed.js';

export { isWellFormed };

/**
 * Throws `ERR_SIFREDB_INPUT` naming `field` when `s` has a lone surrogate. Replacing it with U+FFFD
 * (what `TextEncoder` does) would silently change the value, so it is refused instead.
 */
export function assertWellFormed(s: string, field: string): void {
  if (!isWellFormed(s)) throw loneSurrogateError(field);
}

/** The error of {@link assertWellFormed}. */
export function loneSurrogateError(field: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.input, `${field} contains a lone surrogate (not valid UTF-16), which UTF-8 cannot represent`);
}

/** Decodes UTF-8, throwing `ERR_SIFREDB_FORMAT` on invalid bytes rather than inserting U+FFFD. */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  const text = utf8Text(bytes);
  if (text === undefined) throw new SifreDBError(ERROR_CODES.format, `${what} is not valid UTF-8`);
  return text;
}
