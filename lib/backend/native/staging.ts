/**
 * Memory the native backend hands to Rust: off-heap scratch for small plaintexts, reused staging
 * buffers for batch inputs, and batches packed as records.
 */
import { Buffer } from 'node:buffer';
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

/** Writes `typeTag ‖ value` at `at` (the value checked by `plaintextLengths`). */
function writeTagged(buf: Buffer, at: number, typeTag: number, value: PlainInput): void {
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


/**
 * Lays `typeTags[i] ‖ values[i]` (checked; `lens[i]` bytes with the tag) at `offset` of record `i`
 * of one new buffer, records of `lens[i] + overhead` bytes: ready to be sealed in place.
 */
export function packPlaintexts(values: PlainInput[], typeTags: Uint8Array, lens: Uint32Array, offset: number, overhead: number): Buffer {
  const n = values.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += lens[i]! + overhead;
  const buf = Buffer.allocUnsafe(total);
  let at = offset;
  for (let i = 0; i < n; i++) {
    writeTagged(buf, at, typeTags[i]!, values[i]!);
    at += lens[i]! + overhead;
  }
  return buf;
}

/**
 * Lays `typeTags[i] ‖ values[i]` back to back in a staging buffer (for
 * `sifredb_core::seal_records_from`, which wipes it).
 */
export function stagePlaintexts(values: PlainInput[], typeTags: Uint8Array, lens: Uint32Array): Staged {
  const n = values.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += lens[i]!;
  const full = takeStaging(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    writeTagged(full, at, typeTags[i]!, values[i]!);
    at += lens[i]!;
  }
  return { full, stage: full.subarray(0, total), lens };
}

/**
 * The output of a batch decryption: the plaintexts back to back (never in Node's shared pool),
 * sized from the envelopes (a too-short one takes no room; Rust reports it in order).
 */
export function openOutput(lens: Uint32Array, overhead: number): { output: Buffer; plaintextLens: Uint32Array } {
  const n = lens.length;
  const plaintextLens = new Uint32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const length = lens[i]! - overhead;
    if (length > 0) {
      plaintextLens[i] = length;
      total += length;
    }
  }
  return { output: Buffer.allocUnsafeSlow(total), plaintextLens };
}

/**
 * The output of a re-encryption: each plaintext keeps its length (too-short envelopes count as
 * one byte; Rust rejects them before anything is sealed).
 */
export function resealOutput(
  lens: Uint32Array,
  fromOverhead: number,
  toOverhead: number,
  own: boolean,
): { output: Buffer; plaintextLens: Uint32Array } {
  const n = lens.length;
  const plaintextLens = new Uint32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const length = lens[i]! - fromOverhead;
    plaintextLens[i] = length > 0 ? length : 1;
    total += plaintextLens[i]! + toOverhead;
  }
  return { output: own ? Buffer.allocUnsafeSlow(total) : Buffer.allocUnsafe(total), plaintextLens };
}
