/**
 * Typed values inside the plaintext: `type tag (1 byte) ‖ value bytes` (docs/FORMAT.md, "Plaintext"),
 * so that a number comes back as a number, a Date as a Date, and so on.
 */
import type { Buffer } from 'node:buffer';
import { allocSecret, equalBytes, isUtf8, viewOf } from './bytes.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { decodeUtf8 } from './utf8.js';

/** Type tags, byte 0 of every plaintext. Frozen by format v1. */
export const VALUE_TAG = {
  bytes: 0x00,
  string: 0x01,
  number: 0x02,
  bigint: 0x03,
  boolean: 0x04,
  date: 0x05,
  json: 0x06,
} as const;

/** One of {@link VALUE_TAG}. */
export type ValueTag = (typeof VALUE_TAG)[keyof typeof VALUE_TAG];

/** A value `JSON.stringify` / `JSON.parse` round-trips. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * What the vaults encrypt. Strings, bytes, numbers, bigints, booleans and Dates keep their type;
 * `null`, arrays and plain objects are stored as JSON.
 */
export type EncryptableValue = string | Uint8Array | number | bigint | boolean | Date | null | JsonValue[] | { [key: string]: JsonValue };

/** What `decrypt` returns: the same JS type as encrypted (bytes come back as a `Buffer`). */
export type DecryptedValue = string | Buffer | number | bigint | boolean | Date | JsonValue;

/** The JS type of each stored value type, as `decrypt` returns it. */
export interface ValueTypeMap {
  string: string;
  number: number;
  bigint: bigint;
  boolean: boolean;
  date: Date;
  json: JsonValue;
  bytes: Buffer;
}

/** A stored value's type, as named by `decrypt`'s `expect` option (one per {@link VALUE_TAG}). */
export type ValueType = keyof ValueTypeMap;

/** What `decrypt(…, { expect: T })` returns: `ValueOf<'date'>` is `Date`, `ValueOf<'json'>` is {@link JsonValue}. */
export type ValueOf<T extends ValueType> = ValueTypeMap[T];

/** A value ready for a backend call: its tag and its bytes (strings are left for the backend to encode). */
export interface EncodedValue {
  readonly tag: ValueTag;
  readonly data: Uint8Array | string;
}

// No `+`, no leading zeros, no `-0`: the one text `bigint.toString(10)` gives.
const BIGINT_TEXT = /^(?:0|-?[1-9][0-9]*)$/;

/** Largest absolute Date time value, in milliseconds (ECMAScript's TimeClip range). */
const MAX_TIME_MS = 8.64e15;

/**
 * Deepest nesting of arrays and objects in a JSON value (the outermost container is level 1). The
 * writer refuses deeper values and readers refuse deeper text, so that every reader, recursive or
 * not, accepts the same values.
 */
export const MAX_JSON_DEPTH = 1000;

// Encodings of values are plaintext: `allocSecret` gives them their own allocation, never a slice
// of Buffer's shared 8 KiB pool (readable through any other pooled Buffer's `.buffer`); the vault
// zeroes them after use.

function float64(n: number): Buffer {
  const out = allocSecret(8);
  // Every NaN is stored as the one canonical quiet NaN, so DeterministicVault gives one ciphertext
  // for NaN whatever payload the engine produced.
  if (Number.isNaN(n)) {
    viewOf(out).setBigUint64(0, 0x7ff8000000000000n);
  } else {
    viewOf(out).setFloat64(0, n);
  }
  return out;
}

function isPlainJson(value: object): boolean {
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function describeRefused(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : String(value); // NaN, Infinity, -Infinity
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    case 'bigint':
      return 'a bigint';
    default:
      break;
  }
  if (value === null) return undefined;
  if (!isPlainJson(value as object)) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `a ${name}` : 'not a plain object';
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return 'an object with toJSON()';
  return undefined;
}

/**
 * Checks that `value` is made only of plain objects, arrays, finite numbers, strings, booleans and
 * null, so that `JSON.stringify` / `JSON.parse` give it back unchanged; throws `ERR_SIFREDB_INPUT`
 * naming the first offending path (e.g. `value.m is a Map`). Values are never quoted.
 */
function assertJsonValue(value: unknown, path: string, seen: Set<object>): void {
  const refused = describeRefused(value);
  if (refused !== undefined) {
    throw new SifreDBError(ERROR_CODES.input, `${path} is ${refused}; only plain objects, arrays, finite numbers, strings, booleans and null are stored as JSON`);
  }
  if (typeof value !== 'object' || value === null) return;
  if (seen.has(value)) throw new SifreDBError(ERROR_CODES.input, `${path} is a circular reference`);
  if (seen.size === MAX_JSON_DEPTH) {
    throw new SifreDBError(ERROR_CODES.input, `${path} nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);
  }
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw new SifreDBError(ERROR_CODES.input, `${path}[${i}] is a hole in a sparse array`);
      assertJsonValue(value[i], `${path}[${i}]`, seen);
    }
  } else {
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new SifreDBError(ERROR_CODES.input, `${path} has symbol keys, which JSON drops`);
    }
    for (const key of Object.keys(value)) {
      assertJsonValue((value as Record<string, unknown>)[key], IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`, seen);
    }
  }
  seen.delete(value);
}

/**
 * Maps a JS value to its type tag and bytes. Throws `ERR_SIFREDB_INPUT` for `undefined`, functions,
 * symbols, invalid Dates and objects JSON cannot represent faithfully
 * (class instances other than Date/Uint8Array, e.g. Map or ArrayBuffer); inside an array or plain
 * object, anything but plain objects, arrays, finite numbers, strings, booleans and null is refused
 * with its path (`value.m is a Map`), never silently dropped or converted. A string is passed on as
 * is: the cipher handle that encodes it checks it once (a lone surrogate is `ERR_SIFREDB_INPUT`).
 */
export function encodeValue(value: EncryptableValue): EncodedValue {
  switch (typeof value) {
    case 'string':
      return { tag: VALUE_TAG.string, data: value };
    case 'number':
      return { tag: VALUE_TAG.number, data: float64(value) };
    case 'bigint': {
      const text = value.toString(10);
      const data = allocSecret(text.length);
      for (let i = 0; i < text.length; i++) data[i] = text.charCodeAt(i);
      return { tag: VALUE_TAG.bigint, data };
    }
    case 'boolean': {
      const data = allocSecret(1);
      data[0] = value ? 1 : 0;
      return { tag: VALUE_TAG.boolean, data };
    }
    case 'object': {
      if (value instanceof Uint8Array) return { tag: VALUE_TAG.bytes, data: value };
      if (value instanceof Date) {
        const time = value.getTime();
        if (Number.isNaN(time)) throw new SifreDBError(ERROR_CODES.input, 'value is an invalid Date');
        return { tag: VALUE_TAG.date, data: float64(time) };
      }
      if (value !== null && !isPlainJson(value)) {
        throw new SifreDBError(
          ERROR_CODES.input,
          'value must be a string, Uint8Array, number, bigint, boolean, Date, null, array or plain object',
        );
      }
      let json: string;
      try {
        // Refuse, rather than silently change, anything nested that JSON would drop or rewrite
        // (Map/Set → {}, NaN → null, Date → string, undefined → gone, toJSON → whatever it returns).
        assertJsonValue(value, 'value', new Set());
        json = JSON.stringify(value);
      } catch (error) {
        if (error instanceof SifreDBError) throw error;
        // e.g. a bigint or a cycle inside; the original message may quote the value, so it is dropped.
        throw new SifreDBError(ERROR_CODES.input, 'value cannot be serialized as JSON');
      }
      // JSON.stringify escapes lone surrogates as \uXXXX, so the JSON text is always well-formed.
      return { tag: VALUE_TAG.json, data: json };
    }
    default:
      throw new SifreDBError(ERROR_CODES.input, `value of type ${typeof value} cannot be encrypted`);
  }
}

/** Indexed by tag. */
const VALUE_TYPES: readonly ValueType[] = ['bytes', 'string', 'number', 'bigint', 'boolean', 'date', 'json'];

/** The {@link ValueType} of a type tag (`VALUE_TAG.date` → `'date'`); `undefined` for an unknown tag. */
export function valueTypeOf(tag: number): ValueType | undefined {
  return VALUE_TYPES[tag];
}

const DESCRIPTIONS: Readonly<Record<ValueType, string>> = {
  bytes: 'bytes',
  string: 'a string',
  number: 'a number',
  bigint: 'a bigint',
  boolean: 'a boolean',
  date: 'a date',
  json: 'JSON',
};

/** A value type or tag as a phrase for error messages: `a number`, `JSON`, `bytes`. */
export function describeType(typeOrTag: ValueType | number): string {
  const type = typeof typeOrTag === 'number' ? valueTypeOf(typeOrTag) : typeOrTag;
  return type === undefined ? `of unknown type tag ${typeOrTag}` : DESCRIPTIONS[type];
}

/**
 * `expect` checked: `undefined`, or the {@link ValueType} it names.
 * @throws `ERR_SIFREDB_INPUT` for anything else.
 */
export function expectedType(expect: unknown): ValueType | undefined {
  if (expect === undefined) return undefined;
  if (typeof expect === 'string' && Object.hasOwn(DESCRIPTIONS, expect)) return expect as ValueType;
  throw new SifreDBError(ERROR_CODES.input, `expect must be one of ${VALUE_TYPES.map((t) => `'${t}'`).join(', ')}`);
}

/**
 * Throws `ERR_SIFREDB_INPUT` when a value of tag `tag` is not of type `expected` (no check when
 * `expected` is undefined). The message names the two types only, never the value. An unknown tag
 * passes: it is a malformed plaintext, which decoding refuses with `ERR_SIFREDB_FORMAT`.
 */
export function checkType(tag: number, expected: ValueType | undefined): void {
  const stored = VALUE_TYPES[tag];
  if (expected !== undefined && stored !== undefined && stored !== expected) {
    throw new SifreDBError(ERROR_CODES.input, `the stored value is ${describeType(stored)}, not ${describeType(expected)}`);
  }
}

function malformed(what: string): SifreDBError {
  return new SifreDBError(ERROR_CODES.format, `decrypted ${what} value is malformed`);
}

/** The 8-byte body of a number or Date; only the canonical NaN (`7ff8000000000000`) is a NaN. */
function readFloat64(body: Uint8Array, what: string): number {
  if (body.length !== 8) throw malformed(what);
  const view = viewOf(body);
  const x = view.getFloat64(0);
  if (Number.isNaN(x) && (view.getUint32(0) !== 0x7ff80000 || view.getUint32(4) !== 0)) throw malformed(what);
  return x;
}

/** Nesting depth of JSON text, counting brackets outside strings; stops once past the limit. */
function exceedsJsonDepth(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // the escaped character cannot end the string
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * JSON text as the writer produces it, parsed: at the top level `null`, an array or an object
 * (other values have tags of their own), and byte for byte what `JSON.stringify` gives back for the
 * parsed value — which refuses whitespace, duplicate keys, keys out of ECMAScript's order,
 * non-canonical numbers (`-0`, `1.0`, `1E5`, `1e400`) and escapes `JSON.stringify` never writes.
 */
function decodeJson(body: Uint8Array): JsonValue {
  const text = decodeUtf8(body, 'decrypted JSON');
  if (exceedsJsonDepth(text)) throw malformed('JSON');
  let value: unknown;
  try {
    value = JSON.parse(text);
    if (typeof value !== 'object' || JSON.stringify(value) !== text) throw malformed('JSON');
  } catch {
    throw malformed('JSON');
  }
  return value as JsonValue;
}

/**
 * Decodes a decrypted value — its type tag and its bytes `body` — to the original JS type. The bytes
 * were authenticated, so a malformed value means a writer that does not follow the format:
 * `ERR_SIFREDB_FORMAT`, never a guess. Bytes are returned as `body` itself, not a copy: the caller
 * wipes `body` after decoding any other type, never after bytes.
 */
export function decodeValue(tag: number, body: Buffer): DecryptedValue {
  switch (tag) {
    case VALUE_TAG.bytes:
      return body;
    case VALUE_TAG.string:
      return decodeUtf8(body, 'decrypted string');
    case VALUE_TAG.number:
      return readFloat64(body, 'number');
    case VALUE_TAG.bigint: {
      let text = '';
      for (let i = 0; i < body.length; i++) text += String.fromCharCode(body[i]!);
      if (!BIGINT_TEXT.test(text)) throw malformed('bigint');
      return BigInt(text);
    }
    case VALUE_TAG.boolean:
      if (body.length !== 1 || body[0]! > 1) throw malformed('boolean');
      return body[0] === 1;
    case VALUE_TAG.date: {
      // The writer stores `getTime()`: an integer within ±8.64e15, and never −0 (TimeClip gives +0).
      const time = readFloat64(body, 'Date');
      if (!Number.isInteger(time) || Math.abs(time) > MAX_TIME_MS || Object.is(time, -0)) throw malformed('Date');
      return new Date(time);
    }
    case VALUE_TAG.json:
      return decodeJson(body);
    default:
      throw new SifreDBError(ERROR_CODES.format, `decrypted value has unknown type tag ${tag}`);
  }
}

/**
 * Checks that `body` is a well-formed value of type `tag` without returning it, for the paths that
 * hand bytes on (raw reads, re-encryption): they refuse exactly what {@link decodeValue} refuses.
 * @throws `ERR_SIFREDB_FORMAT` as {@link decodeValue}.
 */
export function checkValue(tag: number, body: Uint8Array): void {
  if (tag === VALUE_TAG.bytes) return;
  if (tag === VALUE_TAG.string) {
    if (!isUtf8(body)) throw new SifreDBError(ERROR_CODES.format, 'decrypted string is not valid UTF-8');
    return;
  }
  decodeValue(tag, body as Buffer);
}

/**
 * Whether two values as {@link decodeValue} returns them are equal: bytes by content, Dates by time,
 * JSON by its text, everything else by identity (a bigint is never equal to a string).
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && equalBytes(a, b);
  }
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}
