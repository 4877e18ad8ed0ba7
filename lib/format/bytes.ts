/**
 * Byte helpers that run in every runtime. Node, Bun and Deno have the `Buffer` global, which is
 * faster and what the Node API promises (outputs are Buffers); browsers and edge runtimes get plain
 * `Uint8Array`s with identical bytes from the portable branch. No `node:` import, so the browser
 * entry can use this module. Internal.
 */
import type { Buffer } from 'node:buffer';

const NodeBuffer: typeof Buffer | undefined = (globalThis as { Buffer?: typeof Buffer }).Buffer;
const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is part of the value, never stripped.
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Views `bytes` as a Buffer without copying where Buffer exists. */
export function toBuffer(bytes: Uint8Array): Buffer {
  if (NodeBuffer === undefined || bytes instanceof NodeBuffer) return bytes as Buffer;
  return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `n` zero bytes. */
export function allocZeroed(n: number): Buffer {
  return NodeBuffer === undefined ? (new Uint8Array(n) as Buffer) : NodeBuffer.alloc(n);
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

/** A copy of `bytes` in an allocation of its own. */
export function copyBytes(bytes: Uint8Array): Buffer {
  const out = allocSecret(bytes.length);
  out.set(bytes);
  return out;
}

/** UTF-8 length of a well-formed string. */
export function utf8Length(s: string): number {
  if (NodeBuffer !== undefined) return NodeBuffer.byteLength(s, 'utf8');
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** UTF-8 bytes of a well-formed string (callers refuse lone surrogates first). */
export function utf8Bytes(s: string): Buffer {
  return NodeBuffer === undefined ? (encoder.encode(s) as Buffer) : NodeBuffer.from(s, 'utf8');
}

/** Writes the UTF-8 bytes of `s` at `offset`; `out` must have room for {@link utf8Length}. */
export function writeUtf8(out: Uint8Array, s: string, offset: number): void {
  if (NodeBuffer !== undefined) toBuffer(out).write(s, offset, 'utf8');
  else encoder.encodeInto(s, out.subarray(offset));
}

/** Decodes UTF-8, or returns `undefined` when `bytes` is not valid UTF-8 (never inserts U+FFFD). */
export function utf8Text(bytes: Uint8Array): string | undefined {
  if (NodeBuffer !== undefined) {
    // isUtf8 + toString is about twice as fast as a fatal TextDecoder on short values.
    const buffer = toBuffer(bytes);
    return isUtf8(buffer) ? buffer.toString('utf8') : undefined;
  }
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

// Node's `buffer.isUtf8` is not on the Buffer class; a fatal decoder is the portable fallback.
let nodeIsUtf8: ((bytes: Uint8Array) => boolean) | undefined;
/** Whether `bytes` is well-formed UTF-8 (no surrogates, no overlong forms). */
export function isUtf8(bytes: Uint8Array): boolean {
  if (nodeIsUtf8 === undefined) {
    const builtin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.(
      'node:buffer',
    ) as { isUtf8?: (bytes: Uint8Array) => boolean } | undefined;
    nodeIsUtf8 =
      builtin?.isUtf8 ??
      ((b) => {
        try {
          strictDecoder.decode(b);
          return true;
        } catch {
          return false;
        }
      });
  }
  return nodeIsUtf8(bytes);
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const BASE64URL_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64URL.length; i++) BASE64URL_VALUES[BASE64URL.charCodeAt(i)] = i;

/** Unpadded base64url. */
export function toBase64Url(bytes: Uint8Array): string {
  if (NodeBuffer !== undefined) return toBuffer(bytes).toString('base64url');
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]! + BASE64URL[(n >>> 6) & 63]! + BASE64URL[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += BASE64URL[n >>> 18]! + BASE64URL[(n >>> 12) & 63]! + BASE64URL[(n >>> 6) & 63]!;
  }
  return out;
}

const BASE64URL_TEXT = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes unpadded base64url; `undefined` for any character outside the alphabet. `canonical` (the
 * default, for ciphertexts) also refuses a dangling character and stray bits in the last one, so each
 * byte string has exactly one text. Lenient decoding (`canonical: false`) ignores both, as Node's
 * decoder does; it is what key material is read with, so its result gets an allocation of its own,
 * never a slice of Buffer's shared pool.
 */
export function fromBase64Url(text: string, canonical = true): Buffer | undefined {
  if (!BASE64URL_TEXT.test(text) || (canonical && text.length % 4 === 1)) return undefined;
  if (NodeBuffer !== undefined) {
    if (canonical) {
      const bytes = NodeBuffer.from(text, 'base64url');
      // Node's decoder ignores stray bits in the last character; re-encoding catches them.
      return bytes.toString('base64url') === text ? bytes : undefined;
    }
    const room = allocSecret(NodeBuffer.byteLength(text, 'base64url'));
    const written = room.write(text, 'base64url');
    room.fill(0, written);
    return room.subarray(0, written);
  }
  const out = (canonical ? allocOut : allocSecret)(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    acc = (acc << 6) | BASE64URL_VALUES[text.charCodeAt(i)]!;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  return !canonical || acc === 0 ? out : undefined;
}

/** Two lowercase hex digits per byte value: a lookup beats `toString('hex')` on a few bytes. */
export const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  if (NodeBuffer !== undefined) return toBuffer(bytes).toString('hex');
  let out = '';
  for (const b of bytes) out += HEX_BYTE[b]!;
  return out;
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

/** Whether two byte strings are equal (not constant time: for values the caller already holds). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (NodeBuffer !== undefined) return toBuffer(a).equals(b);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A DataView over exactly `bytes`. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Fills `out` from the platform CSPRNG (WebCrypto, which Node, Deno, Bun, browsers and workers have). */
export function fillRandom(out: Uint8Array): Uint8Array {
  // getRandomValues fills at most 65,536 bytes per call.
  for (let offset = 0; offset < out.length; offset += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(out.length, offset + 65536)));
  }
  return out;
}

/**
 * `view` itself when the call can rely on its bytes (a plain, fixed-length `ArrayBuffer` of this
 * realm, which only this thread can change), else a copy of it made once: a `SharedArrayBuffer`
 * (growable or not) can be rewritten by another thread at any moment, and a resizable buffer can
 * shrink. Parsing, authentication and decryption must read the same bytes, so every envelope and
 * key-derived input from the caller passes through here first. O(1) for ordinary inputs.
 */
export function ownedBytes(view: Uint8Array): Uint8Array {
  const buffer = view.buffer;
  if (buffer instanceof ArrayBuffer && (buffer as { resizable?: boolean }).resizable !== true) return view;
  return new Uint8Array(view);
}
