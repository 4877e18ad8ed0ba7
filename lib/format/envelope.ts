/**
 * The v1 binary envelope header (docs/FORMAT.md): parsed here, without keys, to pick the key version
 * and algorithm before any backend call. Backends re-check it when they decrypt.
 */
import { ALGORITHM } from '../backend/types.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';

/** Byte 0 of every envelope, ASCII `S`. */
export const MAGIC = 0x53;
/** The only binary format version this library writes and reads. */
export const FORMAT_VERSION = 1;
/** magic ‖ format version ‖ algorithm id ‖ u32be key version. */
export const HEADER_LENGTH = 7;
/** Poly1305 tag / AES-SIV synthetic IV. */
export const TAG_LENGTH = 16;

/** Public names of the algorithms, as {@link inspect} reports them. */
export type AlgorithmName = 'chacha20-poly1305' | 'xchacha20-poly1305' | 'aes-256-siv';

/** Per algorithm id: its public name and nonce length. */
export const ALGORITHMS: ReadonlyMap<number, { readonly name: AlgorithmName; readonly nonceLength: number }> = new Map([
  [ALGORITHM.chacha20Poly1305, { name: 'chacha20-poly1305', nonceLength: 12 }],
  [ALGORITHM.xchacha20Poly1305, { name: 'xchacha20-poly1305', nonceLength: 24 }],
  [ALGORITHM.aesSiv, { name: 'aes-256-siv', nonceLength: 0 }],
] as const);

/** What the header says, plus the sizes it implies. */
export interface EnvelopeHeader {
  readonly algorithmId: number;
  readonly algorithm: AlgorithmName;
  readonly keyVersion: number;
  readonly nonceLength: number;
  /** Bytes after the nonce: ciphertext and tag (AEAD) or synthetic IV and ciphertext (AES-SIV). */
  readonly bodyLength: number;
}

/**
 * Parses and checks the header of a binary envelope. Throws `ERR_SIFREDB_FORMAT` for anything that is
 * not a well-formed v1 envelope: too short, bad magic, another format version, unknown algorithm,
 * key version 0, or a body shorter than tag plus type tag.
 */
export function parseHeader(envelope: Uint8Array): EnvelopeHeader {
  if (envelope.length < HEADER_LENGTH) {
    throw new SifreDBError(ERROR_CODES.format, 'not a SifreDB ciphertext: shorter than the 7-byte header');
  }
  if (envelope[0] !== MAGIC) {
    throw new SifreDBError(ERROR_CODES.format, 'not a SifreDB ciphertext: bad magic byte');
  }
  if (envelope[1] !== FORMAT_VERSION) {
    throw new SifreDBError(ERROR_CODES.format, `unsupported format version ${envelope[1]} (this reader knows version 1)`);
  }
  const algorithmId = envelope[2]!;
  const algorithm = ALGORITHMS.get(algorithmId);
  if (algorithm === undefined) {
    throw new SifreDBError(ERROR_CODES.format, `unknown algorithm id ${algorithmId}`);
  }
  // `>>> 0` keeps the top bit unsigned.
  const keyVersion = ((envelope[3]! << 24) | (envelope[4]! << 16) | (envelope[5]! << 8) | envelope[6]!) >>> 0;
  if (keyVersion === 0) {
    throw new SifreDBError(ERROR_CODES.format, 'invalid key version 0 in the header');
  }
  const bodyLength = envelope.length - HEADER_LENGTH - algorithm.nonceLength;
  // The smallest plaintext is the 1-byte type tag, so every body holds at least tag + 1 bytes.
  if (bodyLength < TAG_LENGTH + 1) {
    throw new SifreDBError(ERROR_CODES.format, `truncated ${algorithm.name} ciphertext`);
  }
  return { algorithmId, algorithm: algorithm.name, keyVersion, nonceLength: algorithm.nonceLength, bodyLength };
}
