/** Argument checks shared by the pure-JS backend. */
import { SifreDBError } from '../../errors.js';

/** Throws `ERR_SIFREDB_INPUT` unless `value` is a Uint8Array (a Buffer is one). */
export function assertBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new SifreDBError('ERR_SIFREDB_INPUT', `${name} must be a Uint8Array`);
}

/** Like {@link assertBytes}, and also requires an exact length. */
export function assertBytesOfLength(value: unknown, name: string, length: number): asserts value is Uint8Array {
  assertBytes(value, name);
  if (value.length !== length) {
    throw new SifreDBError('ERR_SIFREDB_INPUT', `${name} must be ${length} bytes, got ${value.length}`);
  }
}

/** Throws `ERR_SIFREDB_INPUT` unless `value` is an integer in `min..max`. */
export function assertInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SifreDBError('ERR_SIFREDB_INPUT', `${name} must be an integer in ${min}..${max}`);
  }
}

