/** Validation of root-key material and versions, shared by the key providers and the keyring. Internal. */
import type { Buffer } from 'node:buffer';
import { copyBytes, fromBase64Url } from '../format/bytes.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { KeyStatus } from './provider.js';

/** Every root key is 32 random bytes. */
export const ROOT_KEY_LENGTH = 32;
/** Largest key version: the header stores it as a u32. */
export const MAX_KEY_VERSION = 0xffffffff;

/** Root-key bytes, or their standard base64 / base64url encoding (padding optional). */
export type KeyMaterial = Uint8Array | string;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$|^[A-Za-z0-9_-]*$/;

/** True when `version` can appear in an envelope header. */
export function isKeyVersion(version: unknown): version is number {
  return Number.isInteger(version) && (version as number) >= 1 && (version as number) <= MAX_KEY_VERSION;
}

/** True for the two statuses of {@link KeyStatus}. */
export function isKeyStatus(status: unknown): status is KeyStatus {
  return status === 'active' || status === 'retired';
}

/**
 * Decodes and checks 32 bytes of key material into a fresh buffer (the caller zeroes it when done).
 * The buffer is its own allocation, never a slice of Buffer's shared 8 KiB pool (which `Buffer.from`
 * uses for small inputs): any other pooled Buffer's `.buffer` would expose a key kept there.
 * Throws `ERR_SIFREDB_KEY`; the message names `what` but never quotes the material.
 */
export function decodeKeyMaterial(material: unknown, what: string): Buffer {
  let bytes: Buffer;
  if (material instanceof Uint8Array) {
    bytes = copyBytes(material);
  } else if (typeof material === 'string') {
    const text = material.trim();
    if (!BASE64.test(text)) {
      throw new SifreDBError(ERROR_CODES.key, `${what} is not valid base64`);
    }
    // Standard base64 is base64url with two other letters; padding carries no bits.
    bytes = fromBase64Url(text.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'), false)!;
  } else {
    throw new SifreDBError(ERROR_CODES.key, `${what} must be a Uint8Array or a base64 string`);
  }
  if (bytes.length !== ROOT_KEY_LENGTH) {
    const length = bytes.length;
    bytes.fill(0);
    throw new SifreDBError(ERROR_CODES.key, `${what} must be ${ROOT_KEY_LENGTH} bytes, got ${length}`);
  }
  return bytes;
}
