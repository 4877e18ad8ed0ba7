/**
 * Batch plumbing shared by the backends and the API layer: indexed errors, option checks, and
 * splitting a batch into parts for the thread pool. Internal.
 */
import { ERROR_CODES, SifreDBError, asSifreDBError, indexedError } from '../errors.js';
import { utf8Length } from '../format/bytes.js';
import { isWellFormed, loneSurrogateError } from '../format/utf8.js';
import type { BatchOptions, PlainInput } from './types.js';

export { indexedError };

/** Most parts one async batch is split into. */
export const MAX_BATCH_THREADS = 256;

/** The `index` of an {@link indexedError} (or of a native batch error), else `undefined`. */
export function errorIndex(error: unknown): number | undefined {
  const index = (error as { index?: unknown } | null)?.index;
  return typeof index === 'number' && Number.isInteger(index) && index >= 0 ? index : undefined;
}

/**
 * Re-targets a batch error: item `map(i)` of argument `name`, where `i` is the index the error
 * carries. Errors without an index pass through as SifreDB errors.
 */
export function reindexError(error: unknown, name: string, map: (index: number) => number): SifreDBError {
  const index = errorIndex(error);
  if (index === undefined) return asSifreDBError(error);
  const cause = error instanceof SifreDBError && error.cause instanceof SifreDBError ? error.cause : error;
  return indexedError(cause, name, map(index));
}

/** `options.threads` checked: a positive integer, or `undefined` for the backend's default. */
export function requestedThreads(options: BatchOptions | undefined): number | undefined {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object') {
    throw new SifreDBError(ERROR_CODES.input, 'options must be an object { threads? }');
  }
  const { threads } = options;
  if (threads === undefined) return undefined;
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > MAX_BATCH_THREADS) {
    throw new SifreDBError(ERROR_CODES.input, `threads must be an integer in 1..${MAX_BATCH_THREADS}`);
  }
  return threads;
}

/** Throws `ERR_SIFREDB_INPUT` unless `value` is an array (batch inputs). */
export function assertArray(value: unknown, name: string): asserts value is readonly unknown[] {
  if (!Array.isArray(value)) throw new SifreDBError(ERROR_CODES.input, `${name} must be an array`);
}

/** Zeroes each buffer (plaintexts of a batch that failed). */
export function wipeAll(buffers: readonly Uint8Array[]): void {
  for (const buffer of buffers) buffer.fill(0);
}

/**
 * The per-item loop of a batch: `out[i] = each(i)` in order. A failure of item `i` throws as
 * `name[i]: …` (with `index`), after `undo` has run on the outputs already made (e.g. to wipe them).
 */
export function eachItem<T>(count: number, name: string, each: (index: number) => T, undo?: (done: T[]) => void): T[] {
  const out = new Array<T>(count);
  for (let i = 0; i < count; i++) {
    try {
      out[i] = each(i);
    } catch (error) {
      undo?.(out.slice(0, i));
      throw indexedError(error, name, i);
    }
  }
  return out;
}

/**
 * Checks a batch of plaintexts once: `values` an array of bytes or well-formed strings, `typeTags`
 * as long. Returns each plaintext's length, type tag included (a string counts as its UTF-8).
 */
export function plaintextLengths(values: readonly unknown[], typeTags: unknown): Uint32Array {
  assertArray(values, 'values');
  if (!(typeTags instanceof Uint8Array)) throw new SifreDBError(ERROR_CODES.input, 'typeTags must be a Uint8Array');
  if (typeTags.length !== values.length) {
    throw new SifreDBError(ERROR_CODES.input, `typeTags has ${typeTags.length} entries for ${values.length} values`);
  }
  const n = values.length;
  const lens = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const value = values[i];
    if (typeof value === 'string') {
      if (!isWellFormed(value)) throw indexedError(plaintextError(value), 'values', i);
      lens[i] = 1 + utf8Length(value);
    } else if (value instanceof Uint8Array) {
      lens[i] = 1 + value.length;
    } else {
      throw indexedError(plaintextError(value), 'values', i);
    }
  }
  return lens;
}

/**
 * Throws `ERR_SIFREDB_INPUT` unless `typeTag` is a byte and `value` bytes or a well-formed string
 * (a lone surrogate would not round-trip through UTF-8).
 */
export function checkPlaintext(value: unknown, typeTag: unknown): asserts value is PlainInput {
  if (typeof typeTag !== 'number' || (typeTag & 0xff) !== typeTag) {
    throw new SifreDBError(ERROR_CODES.input, 'typeTag must be an integer in 0..255');
  }
  if (!(value instanceof Uint8Array) && (typeof value !== 'string' || !isWellFormed(value))) throw plaintextError(value);
}

function plaintextError(value: unknown): SifreDBError {
  if (typeof value === 'string') return loneSurrogateError('value');
  return new SifreDBError(ERROR_CODES.input, 'value must be a Uint8Array or a string');
}

const schedule: (callback: () => void) => void =
  typeof setImmediate === 'function' ? (callback) => setImmediate(callback) : (callback) => setTimeout(callback, 0);

/**
 * Runs `work` now and settles with its result on a later tick (the async form of a synchronous
 * batch, for backends without a thread pool): inputs are read during the call, as with the native
 * backend, and callers never see the promise settle synchronously.
 */
export function settleLater<T>(work: () => T): Promise<T> {
  let result: T;
  try {
    result = work();
  } catch (error) {
    return new Promise<T>((_, reject) => schedule(() => reject(error)));
  }
  return new Promise<T>((resolve) => schedule(() => resolve(result)));
}

/** One run of a batch that goes to one handle: `indices` of the batch, or `undefined` for all of it in order. */
export interface HandleRun<H> {
  readonly handle: H;
  readonly indices: number[] | undefined;
}

/**
 * Splits a batch by handle, keeping order within each run. A batch read after a key rotation may
 * hold several key versions (hence handles); the usual batch has one and stays whole.
 */
export function splitByHandle<H>(count: number, handleAt: (index: number) => H): HandleRun<H>[] {
  if (count === 0) return [];
  const first = handleAt(0);
  let runs: Map<H, number[]> | undefined;
  for (let i = 1; i < count; i++) {
    const handle = handleAt(i);
    if (runs === undefined && handle !== first) {
      runs = new Map([[first, Array.from({ length: i }, (_, j) => j)]]);
    }
    if (runs !== undefined) {
      let indices = runs.get(handle);
      if (indices === undefined) runs.set(handle, (indices = []));
      indices.push(i);
    }
  }
  if (runs === undefined) return [{ handle: first, indices: undefined }];
  return [...runs].map(([handle, indices]) => ({ handle, indices }));
}

/**
 * The body shared by {@link runByHandle} and {@link runByHandleAsync}: yields each run's handle and
 * items, receives its outputs (or, through `throw`, its failure) and returns them in batch order.
 */
function* byHandle<H, T>(
  runs: readonly HandleRun<H>[],
  items: readonly T[],
  name: string,
  wipe: boolean,
): Generator<[H, T[]], Buffer[], Buffer[]> {
  const whole = runs.length === 1 ? runs[0]! : undefined;
  if (whole !== undefined && whole.indices === undefined) {
    try {
      return yield [whole.handle, items as T[]];
    } catch (error) {
      throw reindexError(error, name, (i) => i);
    }
  }
  const out = new Array<Buffer>(items.length);
  const done: Buffer[][] = [];
  try {
    for (const { handle, indices } of runs) {
      const part = indices!;
      let result: Buffer[];
      try {
        result = yield [handle, part.map((i) => items[i]!)];
      } catch (error) {
        throw reindexError(error, name, (i) => part[i]!);
      }
      done.push(result);
      for (let j = 0; j < part.length; j++) out[part[j]!] = result[j]!;
    }
  } catch (error) {
    if (wipe) for (const result of done) for (const buffer of result) buffer.fill(0);
    throw error;
  }
  return out;
}

/**
 * Runs `run` once per handle run and puts the outputs back in batch order. A failure names the
 * item of the whole batch (`name[i]`); when `wipe` is set, outputs of runs already done are wiped.
 */
export function runByHandle<H, T>(
  runs: readonly HandleRun<H>[],
  items: readonly T[],
  name: string,
  wipe: boolean,
  run: (handle: H, items: T[]) => Buffer[],
): Buffer[] {
  const steps = byHandle(runs, items, name, wipe);
  let step = steps.next();
  while (!step.done) {
    let result: Buffer[];
    try {
      result = run(...step.value);
    } catch (error) {
      step = steps.throw(error);
      continue;
    }
    step = steps.next(result);
  }
  return step.value;
}

/** Async form of {@link runByHandle}: the runs go one after the other, each on the thread pool. */
export async function runByHandleAsync<H, T>(
  runs: readonly HandleRun<H>[],
  items: readonly T[],
  name: string,
  wipe: boolean,
  run: (handle: H, items: T[]) => Promise<Buffer[]>,
): Promise<Buffer[]> {
  const steps = byHandle(runs, items, name, wipe);
  let step = steps.next();
  while (!step.done) {
    let result: Buffer[];
    try {
      result = await run(...step.value);
    } catch (error) {
      step = steps.throw(error);
      continue;
    }
    step = steps.next(result);
  }
  return step.value;
}
