/**
 * Rust ciphertexts as a database stores them: BYTEA holds the raw `tag ‖ ciphertext`; TEXT holds
 * it as hex or base64 (the crates return bytes and leave the text form to the application).
 *
 * Hex digits are also base64 characters, so a hex string whose length is a multiple of 4 is valid
 * base64 too. `auto` does not guess: it tries every decoding the text is valid in (hex first) and
 * keeps the one that authenticates — AES-SIV's tag is a MAC, so a wrong decoding opens with
 * probability 2⁻¹²⁸. `hex` or `base64` restrict it to one.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { RustContext } from './context.js';
import type { RustDeterministicVault } from './deterministic.js';

/** How a TEXT column holds Rust ciphertexts. */
export type RustTextEncoding = 'auto' | 'hex' | 'base64';

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]+|[A-Za-z0-9_-]+)={0,2}$/;

/** The byte strings `text` can stand for under `encoding`, hex first. */
export function rustTextCandidates(text: string, encoding: RustTextEncoding): Buffer[] {
  const out: Buffer[] = [];
  if (encoding !== 'base64' && HEX.test(text)) out.push(Buffer.from(text, 'hex'));
  if (encoding !== 'hex' && BASE64.test(text) && text.replace(/=+$/, '').length % 4 !== 1) {
    const bytes = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    // Only the canonical spelling (no stray bits in the last character) is accepted.
    const again = bytes.toString(text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (again.replace(/=+$/, '') === text.replace(/=+$/, '')) out.push(bytes);
  }
  return out;
}

/**
 * Opens a stored Rust value: the raw bytes of a BYTEA value, or the decodings of a TEXT one (see
 * the module comment). Throws `ERR_SIFREDB_FORMAT` when text is neither encoding, else the error
 * of the last decoding tried (`ERR_SIFREDB_AUTH` when none opens).
 */
export function openStoredRustValue(vault: RustDeterministicVault, stored: string | Uint8Array, context: RustContext, encoding: RustTextEncoding = 'auto'): Buffer {
  if (stored instanceof Uint8Array) return vault.decrypt(stored, context);
  if (typeof stored !== 'string') throw new SifreDBError(ERROR_CODES.input, 'a stored Rust value is text or bytes');
  const candidates = rustTextCandidates(stored, encoding);
  if (candidates.length === 0) {
    const expected = encoding === 'auto' ? 'hex or base64' : encoding;
    throw new SifreDBError(ERROR_CODES.format, `not a Rust ciphertext in ${expected} (${stored.length} characters)`);
  }
  let last: unknown;
  for (const bytes of candidates) {
    try {
      return vault.decrypt(bytes, context);
    } catch (error) {
      last = error;
    }
  }
  throw last;
}
