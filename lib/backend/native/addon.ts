/** The addon as the native backend calls it: its fast-path functions, and errors mapped once. */
import { ERROR_CODES, SifreDBError, asSifreDBError } from '../../errors.js';
import { ownedBytes } from '../../format/bytes.js';
import type { AddonModule } from '../addon-loader.js';
import { errorIndex, indexedError } from '../batch.js';

/** The fast-path functions of the addon (`fastPath()` in `src/lib.rs`, one table in `src/fast/calls.rs`). */
export type FastPath = ReturnType<AddonModule['fastPath']>;

export /** Rust reports its own typed errors; napi-rs conversion failures get `ERR_SIFREDB_INPUT`. */
function call<T>(operation: () => T): T {
  try {
    return operation();
  } catch (error) {
    throw asSifreDBError(error);
  }
}

export function requireBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new SifreDBError(ERROR_CODES.input, `${name} must be a Uint8Array`);
  }
}

/** {@link requireBytes}, then the bytes as {@link ownedBytes}: a shared or resizable view is copied once. */
export function owned(value: unknown, name: string): Uint8Array {
  requireBytes(value, name);
  return ownedBytes(value);
}

export function inputError(message: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.input, message);
}

/** A native batch failure (`index` relative to the run given) as the error of item `base + index`. */
export function batchFailure(error: unknown, name: string, base = 0): SifreDBError {
  const index = errorIndex(error);
  return index === undefined ? asSifreDBError(error) : indexedError(error, name, base + index);
}

