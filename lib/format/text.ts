/**
 * The text form for TEXT/VARCHAR columns: `sdb1:` ‖ unpadded base64url of the binary envelope
 * (docs/FORMAT.md, "Text form"). Recognisable at a glance and parseable without keys.
 */
import type { Buffer } from 'node:buffer';
import { fromBase64Url, toBase64Url } from './bytes.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';

/** Prefix of every text-form ciphertext; `1` is the text-form version. */
export const TEXT_PREFIX = 'sdb1:';

const TEXT_FORM = /^sdb1:[A-Za-z0-9_-]+$/;

/** Encodes a binary envelope in the text form. */
export function toText(envelope: Uint8Array): string {
  return TEXT_PREFIX + toBase64Url(envelope);
}

/**
 * Decodes the text form strictly: the exact prefix, base64url alphabet only, no padding, no
 * whitespace, and canonical (no stray bits in the last character), so each envelope has exactly one
 * text form. Throws `ERR_SIFREDB_FORMAT` otherwise; the message never echoes the input, which may be a
 * plaintext left in the column.
 */
export function fromText(text: string): Buffer {
  if (!TEXT_FORM.test(text)) {
    throw new SifreDBError(
      ERROR_CODES.format,
      text.startsWith(TEXT_PREFIX)
        ? 'malformed text-form ciphertext: expected base64url without padding after "sdb1:"'
        : 'not a SifreDB ciphertext: text form must start with "sdb1:"',
    );
  }
  const encoded = text.slice(TEXT_PREFIX.length);
  const bytes = fromBase64Url(encoded);
  if (bytes === undefined) {
    throw new SifreDBError(ERROR_CODES.format, 'malformed text-form ciphertext: non-canonical base64url');
  }
  return bytes;
}
