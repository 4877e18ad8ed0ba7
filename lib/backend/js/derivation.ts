/**
 * Key derivation of docs/FORMAT.md: HKDF salt, info and purposes, and the checks of what keys a
 * derivation (key version, canonical context, index name). The envelope layout lives in
 * lib/format/envelope.ts.
 */
import { SifreDBError } from '../../errors.js';
import { ALGORITHM } from '../../format/envelope.js';
import { assertBytes, assertInteger } from './bytes.js';
import { readU16BE, readU32BE, writeU16BE } from '../../format/bytes.js';

/** HKDF purpose label per algorithm id, and the blind-index label. */
export const PURPOSE = {
  [ALGORITHM.chacha20Poly1305]: 'chacha20poly1305',
  [ALGORITHM.xchacha20Poly1305]: 'xchacha20poly1305',
  [ALGORITHM.aesSiv]: 'aes-256-siv',
  blindIndex: 'blind-index',
} as const;

/** A purpose label from {@link PURPOSE}. */
export type Purpose = (typeof PURPOSE)[keyof typeof PURPOSE];

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** HKDF salt for every derivation. */
export const HKDF_SALT: Uint8Array = ascii('SifreDB/v1/hkdf-salt');
const INFO_PREFIX = ascii('SifreDB/v1/');

/** Throws `ERR_SIFREDB_INPUT` unless `version` is a valid key version (1..2^32-1). */
export function assertKeyVersion(version: unknown, name = 'version'): asserts version is number {
  assertInteger(version, name, 1, 0xffffffff);
}

/**
 * Throws `ERR_SIFREDB_INPUT` unless `context` is a well-formed canonical v1 context. Checked once per
 * handle so a malformed context can never key a cipher, even though the encoder lives elsewhere.
 */
export function assertCanonicalContext(context: unknown): asserts context is Uint8Array {
  assertBytes(context, 'context');
  const bad = (why: string) => new SifreDBError('ERR_SIFREDB_INPUT', `context is not a canonical v1 context: ${why}`);
  if (context.length < 1 || context[0] !== 0x01) throw bad('unknown encoding version');
  let offset = 1;
  // Only the tenant may be empty (absent); every name is at most 255 bytes of UTF-8.
  for (const [name, min] of [['tenant', 0], ['table', 1], ['column', 1]] as const) {
    if (offset + 2 > context.length) throw bad('truncated');
    const length = readU16BE(context, offset);
    if (length < min || length > 255 || offset + 2 + length > context.length) throw bad(`${name} length out of range`);
    try {
      strictUtf8.decode(context.subarray(offset + 2, offset + 2 + length));
    } catch {
      throw bad(`${name} is not UTF-8`);
    }
    offset += 2 + length;
  }
  if (offset + 4 !== context.length) throw bad('wrong length');
  if (readU32BE(context, offset) === 0) throw bad('version must be at least 1');
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Throws `ERR_SIFREDB_INPUT` unless `indexName` is 1..255 bytes. */
export function assertIndexName(indexName: unknown): asserts indexName is Uint8Array {
  assertBytes(indexName, 'indexName');
  if (indexName.length < 1 || indexName.length > 255) {
    throw new SifreDBError('ERR_SIFREDB_INPUT', `indexName must be 1..255 bytes, got ${indexName.length}`);
  }
}

/** `info = "SifreDB/v1/" ‖ purpose ‖ 0x00 ‖ context [‖ u16be len ‖ index name]`. */
export function hkdfInfo(purpose: Purpose, context: Uint8Array, indexName?: Uint8Array): Uint8Array {
  const label = ascii(purpose);
  const suffix = indexName === undefined ? 0 : 2 + indexName.length;
  const info = new Uint8Array(INFO_PREFIX.length + label.length + 1 + context.length + suffix);
  let offset = 0;
  info.set(INFO_PREFIX, offset);
  offset += INFO_PREFIX.length;
  info.set(label, offset);
  offset += label.length + 1; // the 0x00 separator is already there
  info.set(context, offset);
  offset += context.length;
  if (indexName !== undefined) {
    writeU16BE(info, offset, indexName.length);
    info.set(indexName, offset + 2);
  }
  return info;
}
