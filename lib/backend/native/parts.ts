/** Async batches split into parts, one per thread-pool task. */
import type { Buffer } from 'node:buffer';
import { availableParallelism } from 'node:os';
import type { SifreDBError } from '../../errors.js';
import { errorIndex } from '../batch.js';
import { batchFailure } from './addon.js';

/** Below this many bytes a batch is not worth splitting across threads. */
const MIN_PART_BYTES = 16 * 1024;

// Read on first use, not at import: Deno asks for --allow-sys to read it.
let threadCount: number | undefined;
export const defaultThreads = (): number => (threadCount ??= Math.max(1, availableParallelism()));

/** A buffer of records in a batch: record `i` is `lens[i] + add` bytes. */
export interface Records {
  readonly buf: Buffer;
  readonly lens: Uint32Array;
  readonly add: number;
}

/**
 * A batch split into parts, one per thread-pool task, of about equal bytes of the first buffer:
 * part `p` covers the same records of every buffer. `run` starts one part; every part is awaited
 * before failing, so that no task still writes into a buffer being wiped.
 */
export async function inParts<T>(
  threads: number,
  buffers: readonly Records[],
  run: (bufs: Buffer[], first: number, end: number) => Promise<void>,
  name: string,
  meanwhile: () => T,
): Promise<T> {
  const primary = buffers[0]!;
  const count = primary.lens.length;
  const parts = Math.max(1, Math.min(threads, count, Math.floor(primary.buf.length / MIN_PART_BYTES)));
  // Record bounds of the parts: cut when the first buffer's bytes pass each part's share.
  const bounds = [0];
  const { lens, add } = primary;
  const share = primary.buf.length / parts;
  let bytes = 0;
  for (let i = 0; i < count && bounds.length < parts; i++) {
    bytes += lens[i]! + add;
    if (bytes >= share * bounds.length && i + 1 < count) bounds.push(i + 1);
  }
  bounds.push(count);
  const tasks: Promise<void>[] = [];
  const starts = buffers.map(() => 0);
  for (let p = 0; p + 1 < bounds.length; p++) {
    const first = bounds[p]!;
    const end = bounds[p + 1]!;
    const views = buffers.map((records, b) => {
      let size = 0;
      const { lens: l, add: a } = records;
      for (let i = first; i < end; i++) size += l[i]! + a;
      const start = starts[b]!;
      starts[b] = start + size;
      return records.buf.subarray(start, start + size);
    });
    tasks.push(run(views, first, end).catch((error: unknown) => Promise.reject(batchFailure(error, name, first))));
  }
  // JavaScript work that does not read the results (e.g. creating the result views) overlaps the
  // thread pool's; nothing made here reaches the caller before every part has succeeded.
  const made = meanwhile();
  const settled = await Promise.allSettled(tasks);
  let failure: SifreDBError | undefined;
  for (const result of settled) {
    if (result.status === 'rejected') {
      const error = result.reason as SifreDBError;
      if (failure === undefined || (errorIndex(error) ?? Infinity) < (errorIndex(failure) ?? Infinity)) failure = error;
    }
  }
  if (failure !== undefined) {
    for (const { buf } of buffers) buf.fill(0);
    throw failure;
  }
  return made;
}

