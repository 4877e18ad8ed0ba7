/**
 * The v1 binary envelope (docs/FORMAT.md), the one place its layout is written down: algorithm ids,
 * header, nonce and tag lengths. The vaults parse headers here, without keys, to pick the key version
 * and algorithm before any backend call; both backends take their layout from here.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { readU32BE, writeU32BE } from './bytes.js';

/** Algorithm ids as written in byte 2 of the envelope header. */
export const ALGORITHM = {
  chacha20Poly1305: 1,
  xchacha20Poly1305: 2,
  aesSiv: 3,
} as const;

/** Algorithm id of a randomized (nonce-based) cipher. */
export type RandomizedAlgorithmId = typeof ALGORITHM.chacha20Poly1305 | typeof ALGORITHM.xchacha20Poly1305;

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

/** Where things sit in an envelope of one algorithm. */
export interface EnvelopeLayout {
  readonly nonceLength: number;
  /** Where the plaintext (`typeTag ‖ value`) starts: after the nonce, or after the synthetic IV. */
  readonly plaintextOffset: number;
  /** Bytes an envelope adds to its plaintext: header, nonce and tag (or synthetic IV). */
  readonly overhead: number;
}

/** The layout of envelopes of `algorithm`, or `undefined` for an unknown id. */
export function envelopeLayout(algorithm: number): EnvelopeLayout | undefined {
  const known = ALGORITHMS.get(algorithm);
  if (known === undefined) return undefined;
  const { nonceLength } = known;
  return { nonceLength, plaintextOffset: HEADER_LENGTH + (nonceLength || TAG_LENGTH), overhead: HEADER_LENGTH + nonceLength + TAG_LENGTH };
}

/** Builds the 7-byte header. */
export function encodeHeader(algorithm: number, keyVersion: number): Uint8Array {
  const header = new Uint8Array(HEADER_LENGTH);
  header[0] = MAGIC;
  header[1] = FORMAT_VERSION;
  header[2] = algorithm;
  writeU32BE(header, 3, keyVersion);
  return header;
}

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
  const keyVersion = readU32BE(envelope, 3);
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

/**
 * Checks an envelope's header against a cipher handle (`algorithm`, `keyVersion`) and its minimum
 * length; throws `ERR_SIFREDB_FORMAT` (not SifreDB, wrong format or algorithm, key version 0,
 * truncated) or `ERR_SIFREDB_KEY` (another key version), in that order, so callers learn the most
 * useful fault first. The handle-level form of {@link parseHeader}, with the messages of the backends.
 */
export function checkEnvelope(envelope: Uint8Array, algorithm: number, keyVersion: number): void {
  const format = (why: string) => new SifreDBError(ERROR_CODES.format, `envelope ${why}`);
  if (envelope.length < HEADER_LENGTH) throw format('is truncated');
  if (envelope[0] !== MAGIC) throw format('is not a SifreDB ciphertext');
  if (envelope[1] !== FORMAT_VERSION) throw format(`has unsupported format version ${envelope[1]}`);
  const actual = envelope[2]!;
  if (!ALGORITHMS.has(actual)) throw format(`has unsupported algorithm ${actual}`);
  if (actual !== algorithm) throw format(`algorithm ${actual} does not match this cipher (${algorithm})`);
  const version = readU32BE(envelope, 3);
  if (version === 0) throw format('has key version 0, which is invalid');
  if (version !== keyVersion) {
    throw new SifreDBError(ERROR_CODES.key, `envelope key version ${version} does not match this cipher (${keyVersion})`);
  }
  if (envelope.length < envelopeLayout(algorithm)!.overhead + 1) throw format('is truncated');
}
