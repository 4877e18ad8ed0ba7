/**
 * Ed25519 of the pure-JS backend on @noble/curves, with the strict verification of the native core
 * (`crates/sifredb-core/src/ed25519.rs`, which uses ed25519-dalek's `verify_strict`), written here
 * on noble's point arithmetic because noble's own `verify` checks the cofactored equation and
 * accepts a small-order `R`: the two backends must reach the same verdict on every signature.
 */
import { ed25519 as noble } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { SifreDBError } from '../../errors.js';
import { ownedBytes, toBuffer } from '../../format/bytes.js';
import type { Ed25519, Ed25519BatchItem } from '../types.js';
import { assertBytes, assertBytesOfLength } from './bytes.js';

const Point = noble.Point;
/** The order L of the prime-order subgroup. */
const L = Point.Fn.ORDER;

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** A canonical encoding (`y < p`, no `x = 0` with the sign bit) of a point not of small order. */
function strictPoint(bytes: Uint8Array): InstanceType<typeof Point> | undefined {
  try {
    const point = Point.fromBytes(bytes, false);
    return point.isSmallOrder() ? undefined : point;
  } catch {
    return undefined;
  }
}

function verifyStrict(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const rBytes = signature.subarray(0, 32);
  const s = littleEndian(signature.subarray(32));
  if (s >= L) return false;
  const a = strictPoint(publicKey);
  if (a === undefined || strictPoint(rBytes) === undefined) return false;
  const hash = sha512.create().update(rBytes).update(publicKey).update(message).digest();
  const k = littleEndian(hash) % L;
  // Cofactorless: [S]B - [k]A must encode to exactly the bytes of R.
  const expected = Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k));
  return sameBytes(expected.toBytes(), rBytes);
}

function checkedVerify(publicKey: unknown, message: unknown, signature: unknown, at = ''): boolean {
  assertBytesOfLength(publicKey, `publicKey${at}`, 32);
  assertBytes(message, `message${at}`);
  assertBytes(signature, `signature${at}`);
  // One snapshot of each input when another thread could rewrite it.
  return verifyStrict(ownedBytes(publicKey), ownedBytes(message), ownedBytes(signature));
}

/** The pure-JS {@link Ed25519}. */
export const jsEd25519: Ed25519 = Object.freeze({
  publicKey(secretKey: Uint8Array): Buffer {
    assertBytesOfLength(secretKey, 'secretKey', 32);
    return toBuffer(noble.getPublicKey(ownedBytes(secretKey)));
  },
  sign(secretKey: Uint8Array, message: Uint8Array): Buffer {
    assertBytesOfLength(secretKey, 'secretKey', 32);
    assertBytes(message, 'message');
    return toBuffer(noble.sign(ownedBytes(message), ownedBytes(secretKey)));
  },
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    return checkedVerify(publicKey, message, signature);
  },
  verifyBatch(items: readonly Ed25519BatchItem[]): boolean[] {
    if (!Array.isArray(items)) throw new SifreDBError('ERR_SIFREDB_INPUT', 'items must be an array');
    return items.map((item, i) => {
      if (typeof item !== 'object' || item === null) {
        throw new SifreDBError('ERR_SIFREDB_INPUT', `items[${i}] must be an object`);
      }
      return checkedVerify(item.publicKey, item.message, item.signature, ` of items[${i}]`);
    });
  },
});
