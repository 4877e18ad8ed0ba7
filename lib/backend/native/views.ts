/** `Buffer` views on the one output buffer of a batch. */
import { Buffer } from 'node:buffer';

/** A constructor of `Buffer` views on an ArrayBuffer. */
type ViewMaker = (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer;

/**
 * Makes `Buffer` views as cheaply as Node does internally: `Buffer[Symbol.species]` is Node's own
 * `FastBuffer` class, whose instances are ordinary Buffers (prototype `Buffer.prototype`), and
 * `new FastBuffer(ab, offset, length)` costs about a third of `Buffer.from(ab, offset, length)`,
 * which matters when a batch returns 100,000 of them. Checked once; falls back to `Buffer.from`.
 */
function viewMaker(): ViewMaker {
  try {
    const Species = (Buffer as unknown as { [Symbol.species]?: new (b: ArrayBufferLike, o: number, l: number) => Buffer })[
      Symbol.species
    ];
    if (typeof Species === 'function') {
      const probe = new Species(new ArrayBuffer(4), 1, 2);
      if (Object.getPrototypeOf(probe) === Buffer.prototype && probe.byteOffset === 1 && probe.length === 2) {
        return (buffer, byteOffset, length) => new Species(buffer, byteOffset, length);
      }
    }
  } catch {
    // fall through
  }
  return (buffer, byteOffset, length) => Buffer.from(buffer, byteOffset, length);
}

export const view = viewMaker();

export /** Views of plaintexts laid back to back (`skip` = 1 leaves each type tag out). */
function plaintextViews(buf: Buffer, plaintextLens: Uint32Array, skip: number): Buffer[] {
  const n = plaintextLens.length;
  const out = new Array<Buffer>(n);
  const ab = buf.buffer;
  let at = buf.byteOffset;
  for (let i = 0; i < n; i++) {
    const size = plaintextLens[i]!;
    out[i] = view(ab, at + skip, size - skip);
    at += size;
  }
  return out;
}

/** The type tag (first byte) of each plaintext laid back to back. */
export function typeTagsOf(buf: Buffer, plaintextLens: Uint32Array): Uint8Array {
  const n = plaintextLens.length;
  const tags = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    tags[i] = buf[at]!;
    at += plaintextLens[i]!;
  }
  return tags;
}


/** Views of sealed records laid back to back (`plaintextLens[i] + overhead` bytes each). */
export function envelopeViews(buf: Buffer, plaintextLens: Uint32Array, overhead: number): Buffer[] {
  const n = plaintextLens.length;
  const out = new Array<Buffer>(n);
  const ab = buf.buffer;
  let at = buf.byteOffset;
  for (let i = 0; i < n; i++) {
    const size = plaintextLens[i]! + overhead;
    out[i] = view(ab, at, size);
    at += size;
  }
  return out;
}
