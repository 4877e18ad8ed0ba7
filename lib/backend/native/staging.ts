/**
 * Memory the native backend hands to Rust: off-heap scratch for small plaintexts, reused staging
 * buffers for batch inputs, and batches packed as records.
 */
import { Buffer } from 'node:buffer';
import { isWellFormed } from '../../format/utf8.js';
import type { PlainInput } from '../types.js';
import { indexedError } from '../batch.js';
import { inputError } from './addon.js';

/**
 * Outputs up to this size are decrypted into {@link SCRATCH} and copied out: V8 keeps typed arrays
 * this small on its heap (`--typed-array-max-size-in-heap`, 64 bytes), and handing one to Rust
 * would first move it off the heap — an allocation costing more than the decryption.
 */
export const SMALL_OUTPUT = 64;

/**
 * Off-heap scratch for small plaintexts, wiped after every use: `SCRATCH[n]` views its first `n`
 * bytes (a whole plaintext), `SCRATCH_VALUE[n]` the `n` bytes after the type tag.
 */
export const { SCRATCH, SCRATCH_VALUE } = (() => {
  const scratch = Buffer.allocUnsafeSlow(4 * SMALL_OUTPUT).fill(0);
  const views = (from: number): Buffer[] =>
    Array.from({ length: SMALL_OUTPUT + 2 }, (_, n) => scratch.subarray(from, from + n));
  return { SCRATCH: views(0), SCRATCH_VALUE: views(1) };
})();

/** The byte length of batch value `i`: a Uint8Array, or a well-formed string as UTF-8. */
export function valueLength(value: PlainInput | undefined, i: number): number {
  if (typeof value === 'string') {
    if (!isWellFormed(value)) throw indexedError(inputError('value contains a lone surrogate'), 'values', i);
    return Buffer.byteLength(value, 'utf8');
  }
  if (value instanceof Uint8Array) return value.length;
  throw indexedError(inputError('value must be a Uint8Array or a string'), 'values', i);
}

/** Writes `typeTag ‖ value` at `at` (the value checked by {@link valueLength}). */
export function writeTagged(buf: Buffer, at: number, typeTag: number, value: PlainInput): void {
  buf[at] = typeTag;
  if (typeof value === 'string') buf.write(value, at + 1);
  else buf.set(value, at + 1);
}

/** Values laid out as records of a batch: one buffer, and each record's plaintext or envelope length. */
export interface Packed {
  readonly buf: Buffer;
  readonly lens: Uint32Array;
}

/**
 * Copies `items` (envelopes or blind-index messages) back to back into one new buffer. An async
 * batch gets a buffer of its own (`allocUnsafeSlow`), never reachable from user code, which the
 * thread pool may then read and write while JavaScript runs.
 */
export function packBytes(items: readonly Uint8Array[], name: string, what: string, own: boolean): Packed {
  const { lens, total } = measureBytes(items, name, what);
  const buf = own ? Buffer.allocUnsafeSlow(total) : Buffer.allocUnsafe(total);
  copyBytes(items, lens, buf);
  return { buf, lens };
}

/** Checks that every item is bytes; their lengths and sum. */
function measureBytes(items: readonly Uint8Array[], name: string, what: string): { lens: Uint32Array; total: number } {
  const n = items.length;
  const lens = new Uint32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const item = items[i];
    if (!(item instanceof Uint8Array)) throw indexedError(inputError(`${what} must be a Uint8Array`), name, i);
    lens[i] = item.length;
    total += item.length;
  }
  return { lens, total };
}

/** Writes `items` back to back at the start of `into`. */
function copyBytes(items: readonly Uint8Array[], lens: Uint32Array, into: Buffer): void {
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    into.set(items[i]!, at);
    at += lens[i]!;
  }
}

/** Largest staging buffer kept for reuse, and how many are kept. */
const STAGING_KEEP_BYTES = 16 * 1024 * 1024;
const STAGING_KEEP_COUNT = 4;
const stagingFree: Buffer[] = [];

/**
 * A batch's input staged in a reused buffer (its own ArrayBuffer, never reachable from user code):
 * copying values into warm memory costs less than into a fresh allocation, whose first touch (page
 * faults) then happens in Rust — on the thread pool for async batches. `stage` is the used part of
 * `full`; give `full` back with {@link releaseStaging} once no call uses it any more.
 */
export interface Staged {
  readonly full: Buffer;
  readonly stage: Buffer;
  readonly lens: Uint32Array;
}

export function takeStaging(size: number): Buffer {
  for (let i = stagingFree.length - 1; i >= 0; i--) {
    if (stagingFree[i]!.length >= size) return stagingFree.splice(i, 1)[0]!;
  }
  return Buffer.allocUnsafeSlow(Math.max(size, 64 * 1024));
}

/** Returns a staging buffer to the free list. Plaintexts staged in it were wiped by Rust. */
export function releaseStaging(full: Buffer): void {
  if (full.length <= STAGING_KEEP_BYTES && stagingFree.length < STAGING_KEEP_COUNT) stagingFree.push(full);
}

/** {@link packBytes} into a staging buffer. */
export function stageBytes(items: readonly Uint8Array[], name: string, what: string): Staged {
  const { lens, total } = measureBytes(items, name, what);
  const full = takeStaging(total);
  copyBytes(items, lens, full);
  return { full, stage: full.subarray(0, total), lens };
}

