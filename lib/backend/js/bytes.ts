/** Argument checks and byte helpers shared by the pure-JS backend. */
import { SifreDBError } from '../../errors.js';

// Buffer is a Node (and Bun/Deno-compat) global; in other runtimes outputs stay plain Uint8Arrays.
const NodeBuffer: typeof Buffer | undefined = (globalThis as { Buffer?: typeof Buffer }).Buffer;

/** Views `bytes` as a Buffer without copying (the Backend contract promises Buffers). */
export function toBuffer(bytes: Uint8Array): Buffer {
  if (NodeBuffer === undefined || bytes instanceof NodeBuffer) return bytes as Buffer;
  return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Allocates `n` bytes whose every byte the caller overwrites (pooled, uninitialised under Node). */
export function allocOut(n: number): Buffer {
  return NodeBuffer === undefined ? (new Uint8Array(n) as Buffer) : NodeBuffer.allocUnsafe(n);
}

/**
 * Like {@link allocOut} for secret bytes (plaintexts, keys): its own allocation, never a slice of
 * Buffer's shared 8 KiB pool, whose other users could read it through their `.buffer`.
 */
export function allocSecret(n: number): Buffer {
  return NodeBuffer === undefined ? (new Uint8Array(n) as Buffer) : NodeBuffer.allocUnsafeSlow(n);
}

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

/** Writes `value` as an unsigned 16-bit big-endian integer at `offset`. */
export function writeU16BE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 8;
  out[offset + 1] = value & 0xff;
}

/** Writes `value` as an unsigned 32-bit big-endian integer at `offset`. */
export function writeU32BE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

/** Reads an unsigned 16-bit big-endian integer at `offset`. */
export function readU16BE(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

/** Reads an unsigned 32-bit big-endian integer at `offset`. */
export function readU32BE(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

/** Concatenates byte strings into one new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Overwrites secret bytes that are no longer needed (best effort: JS cannot pin memory). */
export function wipe(...arrays: Uint8Array[]): void {
  for (const a of arrays) a.fill(0);
}
