/**
 * Ed25519 of the native backend (`src/fast/ed25519.rs` over `sifredb_core::ed25519`): outputs
 * allocated here exactly as long and filled by Rust. Inputs on shared or resizable memory are
 * copied once here (`owned`), so Rust reads bytes no one can change or shrink during the call.
 */
import { Buffer } from 'node:buffer';
import { ERROR_CODES, SifreDBError } from '../../errors.js';
import type { AddonModule } from '../addon-loader.js';
import type { Ed25519, Ed25519BatchItem } from '../types.js';
import { call, owned } from './addon.js';

/** The Ed25519 functions of the addon (`ed25519Path()` in `src/signatures.rs`). */
export type Ed25519Path = ReturnType<AddonModule['ed25519Path']>;

function batchArgs(items: readonly Ed25519BatchItem[]) {
  if (!Array.isArray(items)) throw new SifreDBError(ERROR_CODES.input, 'items must be an array');
  const n = items.length;
  const publicKeys = Buffer.allocUnsafe(n * 32);
  const signatures = Buffer.alloc(n * 64);
  const lens = new Uint32Array(n);
  const messages: Uint8Array[] = [];
  // A signature of the wrong length is invalid, not an error: its slot stays zero (S = 0 and an
  // R of small order, refused by the strict checks) and its verdict is forced to false.
  const wrongLength: number[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const item = items[i];
    if (typeof item !== 'object' || item === null) {
      throw new SifreDBError(ERROR_CODES.input, `items[${i}] must be an object`);
    }
    const publicKey = owned(item.publicKey, `publicKey of items[${i}]`);
    const message = owned(item.message, `message of items[${i}]`);
    const signature = owned(item.signature, `signature of items[${i}]`);
    if (publicKey.length !== 32) {
      throw new SifreDBError(ERROR_CODES.input, `publicKey of items[${i}] must be 32 bytes, got ${publicKey.length}`);
    }
    publicKeys.set(publicKey, i * 32);
    if (signature.length === 64) signatures.set(signature, i * 64);
    else wrongLength.push(i);
    messages.push(message);
    lens[i] = message.length;
    total += message.length;
  }
  const joined = Buffer.allocUnsafe(total);
  let at = 0;
  for (const message of messages) {
    joined.set(message, at);
    at += message.length;
  }
  return { publicKeys, joined, lens, signatures, wrongLength };
}

/** The native {@link Ed25519}. */
export function nativeEd25519(path: Ed25519Path): Ed25519 {
  return Object.freeze({
    publicKey(secretKey: Uint8Array): Buffer {
      const out = Buffer.allocUnsafeSlow(32);
      call(() => path.ed25519PublicKey(owned(secretKey, 'secretKey'), out));
      return out;
    },
    sign(secretKey: Uint8Array, message: Uint8Array): Buffer {
      const out = Buffer.allocUnsafe(64);
      call(() => path.ed25519Sign(owned(secretKey, 'secretKey'), owned(message, 'message'), out));
      return out;
    },
    verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      const out = new Uint8Array(1);
      const args = [owned(publicKey, 'publicKey'), owned(message, 'message'), owned(signature, 'signature')] as const;
      call(() => path.ed25519Verify(args[0], args[1], args[2], out));
      return out[0] === 1;
    },
    verifyBatch(items: readonly Ed25519BatchItem[]): boolean[] {
      const { publicKeys, joined, lens, signatures, wrongLength } = batchArgs(items);
      const out = new Uint8Array(lens.length);
      call(() => path.ed25519VerifyBatch(publicKeys, joined, lens, signatures, out));
      const verdicts = Array.from(out, (v) => v === 1);
      for (const i of wrongLength) verdicts[i] = false;
      return verdicts;
    },
  });
}
