/**
 * {@link BlindIndex}: equality search over randomized ciphertexts with truncated HMAC-SHA256 terms
 * (docs/FORMAT.md, "Blind index terms").
 */
import type { Buffer } from 'node:buffer';
import { HEX_BYTE, allocOut, utf8Bytes, utf8Length, writeU32BE, writeUtf8 } from '../format/bytes.js';
import { assertContext, type EncryptionContext } from '../context.js';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { assertWellFormed } from '../format/utf8.js';
import { Keyring, type KeyringOptions, type KeySource } from '../keys/keyring.js';
import { assertArray, indexedError, reindexError } from '../backend/batch.js';
import { digits, toLowerCase, toNFC, toUpperCase, trim } from './unicode.js';

/**
 * A normalisation applied to a field's text before hashing, so that values a user considers equal
 * give the same term. Applied in the order listed. Case mapping and NFC use Unicode 17.0.0 tables
 * shipped with the library, never the runtime's ICU, so terms do not change with the runtime
 * (docs/BLIND-INDEX.md, "Transforms", defines each exactly):
 * - `lowercase` / `uppercase`: full, locale-independent case mapping (as `toLowerCase` / `toUpperCase`);
 * - `trim`: strip leading and trailing ECMAScript whitespace and line terminators (as `trim`);
 * - `digits`: keep ASCII digits only (phone numbers, SSNs);
 * - `{ lastN: n }`: keep the last `n` characters (code points, never half a surrogate pair);
 * - `nfc`: Unicode NFC normalisation (composed and decomposed accents become equal).
 */
export type BlindIndexTransform = 'lowercase' | 'uppercase' | 'trim' | 'digits' | 'nfc' | { readonly lastN: number };

/** One field of a compound index. */
export interface BlindIndexField {
  /** Field name, used to pick the value when `compute` gets an object. */
  name: string;
  /** Transforms of this field (default none). */
  transforms?: readonly BlindIndexTransform[];
}

/** Options of {@link BlindIndex.open}. `cacheSize` and `backend` apply only when the source is not a {@link Keyring}. */
export interface BlindIndexOptions<B extends number = number> extends KeyringOptions {
  /**
   * Index name, 1..255 UTF-8 bytes. Part of the key derivation: two indexes on one column with
   * different names (e.g. full email and email domain) have independent keys.
   */
  name: string;
  /**
   * Term length in bits, 8..256 (default {@link DEFAULT_BLIND_INDEX_BITS}); size it with
   * `planBlindIndex`. A literal here types the terms' `int` (see {@link BlindIndexInt}).
   */
  bits?: B;
  /** Transforms of a single-field index. Use `fields[i].transforms` for a compound index. */
  transforms?: readonly BlindIndexTransform[];
  /** Fields of a compound index, in order (e.g. last 4 of an SSN, then a birth year). */
  fields?: readonly BlindIndexField[];
}

/** One field's value: text, or a number / bigint indexed as its decimal text. */
export type BlindIndexInput = string | number | bigint;

/**
 * What {@link BlindIndex.compute} takes: one value for a single-field index; for a compound index
 * the values in field order, or an object keyed by field name.
 */
export type BlindIndexValue = BlindIndexInput | readonly BlindIndexInput[] | Readonly<Record<string, BlindIndexInput>>;

/** The bit lengths whose terms fit a `number` exactly (`Number.MAX_SAFE_INTEGER` is 2^53 - 1). */
type NumberBits =
  | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 20 | 21 | 22 | 23 | 24 | 25 | 26 | 27 | 28
  | 29 | 30 | 31 | 32 | 33 | 34 | 35 | 36 | 37 | 38 | 39 | 40 | 41 | 42 | 43 | 44 | 45 | 46 | 47 | 48
  | 49 | 50 | 51 | 52 | 53;

/** The bit lengths whose terms need a `bigint`. */
type BigintBits =
  | 54 | 55 | 56 | 57 | 58 | 59 | 60 | 61 | 62 | 63 | 64 | 65 | 66 | 67 | 68 | 69 | 70 | 71 | 72 | 73
  | 74 | 75 | 76 | 77 | 78 | 79 | 80 | 81 | 82 | 83 | 84 | 85 | 86 | 87 | 88 | 89 | 90 | 91 | 92 | 93
  | 94 | 95 | 96 | 97 | 98 | 99 | 100 | 101 | 102 | 103 | 104 | 105 | 106 | 107 | 108 | 109 | 110 | 111
  | 112 | 113 | 114 | 115 | 116 | 117 | 118 | 119 | 120 | 121 | 122 | 123 | 124 | 125 | 126 | 127 | 128
  | 129 | 130 | 131 | 132 | 133 | 134 | 135 | 136 | 137 | 138 | 139 | 140 | 141 | 142 | 143 | 144 | 145
  | 146 | 147 | 148 | 149 | 150 | 151 | 152 | 153 | 154 | 155 | 156 | 157 | 158 | 159 | 160 | 161 | 162
  | 163 | 164 | 165 | 166 | 167 | 168 | 169 | 170 | 171 | 172 | 173 | 174 | 175 | 176 | 177 | 178 | 179
  | 180 | 181 | 182 | 183 | 184 | 185 | 186 | 187 | 188 | 189 | 190 | 191 | 192 | 193 | 194 | 195 | 196
  | 197 | 198 | 199 | 200 | 201 | 202 | 203 | 204 | 205 | 206 | 207 | 208 | 209 | 210 | 211 | 212 | 213
  | 214 | 215 | 216 | 217 | 218 | 219 | 220 | 221 | 222 | 223 | 224 | 225 | 226 | 227 | 228 | 229 | 230
  | 231 | 232 | 233 | 234 | 235 | 236 | 237 | 238 | 239 | 240 | 241 | 242 | 243 | 244 | 245 | 246 | 247
  | 248 | 249 | 250 | 251 | 252 | 253 | 254 | 255 | 256;

/**
 * The type of {@link BlindIndexTerm.int} for `B` bits: `number` up to 53 bits, `bigint` above, and
 * `number | bigint` when `B` is not a literal type (bits only known at run time).
 */
export type BlindIndexInt<B extends number> = B extends NumberBits ? number : B extends BigintBits ? bigint : number | bigint;

/**
 * A blind-index term under one key version, in the forms a database column may want. `I` is the
 * type of `int`: a `BlindIndex<B>` gives `BlindIndexTerm<BlindIndexInt<B>>`.
 */
export interface BlindIndexTerm<I extends number | bigint = number | bigint> {
  /** Key version the term was computed under. */
  readonly version: number;
  /** `ceil(bits / 8)` bytes; unused low-order bits of the last byte are zero (BYTEA column). */
  readonly bytes: Buffer;
  /** Lowercase hex of `bytes` (TEXT column). */
  readonly hex: string;
  /**
   * The `bits` leading bits as an unsigned integer: a `number` when `bits` ≤ 53, else a `bigint`
   * (INTEGER column for ≤ 31 bits, BIGINT for ≤ 63).
   */
  readonly int: I;
}

/**
 * Default term length. 16 bits keeps at least two distinct values per term (so a term does not
 * identify a value) from about 130,000 distinct values up, and costs about 15 false positives per
 * lookup per million rows. Tables far from that size should use `planBlindIndex`.
 */
export const DEFAULT_BLIND_INDEX_BITS = 16;

type Transform = (s: string) => string;

function compileTransform(spec: BlindIndexTransform, where: string): Transform {
  switch (spec) {
    case 'lowercase':
      return toLowerCase;
    case 'uppercase':
      return toUpperCase;
    case 'trim':
      return trim;
    case 'digits':
      return digits;
    case 'nfc':
      return toNFC;
    default: {
      const n = (spec as { lastN?: unknown } | null)?.lastN;
      if (typeof spec === 'object' && spec !== null && Number.isInteger(n) && (n as number) >= 1) {
        const count = n as number;
        // Counting code points keeps surrogate pairs whole; short strings skip the split.
        return (s) => (s.length <= count ? s : Array.from(s).slice(-count).join(''));
      }
      throw new SifreDBError(
        ERROR_CODES.input,
        `${where} must be "lowercase", "uppercase", "trim", "digits", "nfc" or { lastN: n } with n ≥ 1`,
      );
    }
  }
}

function compileTransforms(specs: readonly BlindIndexTransform[] | undefined, where: string): Transform[] {
  if (specs === undefined) return [];
  if (!Array.isArray(specs)) throw new SifreDBError(ERROR_CODES.input, `${where} must be an array`);
  return specs.map((spec, i) => compileTransform(spec, `${where}[${i}]`));
}

function fieldText(value: unknown, field: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString(10);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new SifreDBError(ERROR_CODES.input, `${field} must be a string, a finite number or a bigint`);
}

/**
 * A blind index: a short keyed hash of a (normalised) value, stored next to its randomized ciphertext
 * so that rows can be found by equality without decrypting the column. The key is derived per
 * context, index name and key version, so terms of different columns, tenants or indexes are
 * unrelated.
 *
 * Terms are truncated on purpose: with the right `bits` several values share each term, so a term
 * does not identify a value, and a lookup returns a few extra rows that the application filters out
 * after decrypting. See docs/BLIND-INDEX.md and `planBlindIndex`.
 *
 * @example
 * ```ts
 * const byEmail = await BlindIndex.open(keyring, { name: 'email', bits: 16, transforms: ['trim', 'lowercase'] });
 * row.email_idx = byEmail.compute(email, ctx).int; // a number: BlindIndex<16>
 * const terms = byEmail.queryTerms('Alice@Example.com ', ctx).map((t) => t.int); // WHERE email_idx = ANY($1)
 * ```
 */
export class BlindIndex<B extends number = number> {
  /** The loaded keys. */
  readonly keyring: Keyring;
  /** Index name (part of the key derivation). */
  readonly name: string;
  /** Term length in bits. */
  readonly bits: B;
  /** Field names of a compound index; empty for a single-field index. */
  readonly fields: readonly string[];
  /** Transforms of a single-field index, as given (empty for a compound index). */
  readonly transforms: readonly BlindIndexTransform[];
  /** Transforms of each field of a compound index, as given, in field order (empty for a single-field index). */
  readonly fieldTransforms: readonly (readonly BlindIndexTransform[])[];
  readonly #transforms: readonly (readonly Transform[])[];

  private constructor(
    keyring: Keyring,
    name: string,
    bits: B,
    fields: readonly string[],
    specs: readonly (readonly BlindIndexTransform[])[],
    transforms: Transform[][],
  ) {
    this.keyring = keyring;
    this.name = name;
    this.bits = bits;
    this.fields = Object.freeze(fields);
    const copy = (list: readonly BlindIndexTransform[]) => Object.freeze(list.map((t) => (typeof t === 'string' ? t : Object.freeze({ lastN: t.lastN }))));
    this.transforms = fields.length === 0 ? copy(specs[0] ?? []) : Object.freeze([]);
    this.fieldTransforms = Object.freeze(fields.length === 0 ? [] : specs.map(copy));
    this.#transforms = Object.freeze(transforms.map((t) => Object.freeze(t)));
    Object.freeze(this);
  }

  /**
   * Opens an index on the keys of `source` (a provider, a `TenantKeyRouter` or a shared `Keyring`).
   * A literal `options.bits` types the index (`bits: 18` gives a `BlindIndex<18>`, whose terms' `int`
   * is a `number`); without `bits` it is a `BlindIndex<16>`.
   * @throws `ERR_SIFREDB_INPUT` for a bad name, bit length, transform or field list;
   *   `ERR_SIFREDB_KEY` when the keys cannot be loaded.
   */
  static async open<B extends number = typeof DEFAULT_BLIND_INDEX_BITS>(
    source: KeySource,
    options: BlindIndexOptions<B>,
  ): Promise<BlindIndex<B>> {
    if (typeof options !== 'object' || options === null) {
      throw new SifreDBError(ERROR_CODES.input, 'BlindIndex.open needs options { name, bits?, transforms?, fields? }');
    }
    const { name, bits = DEFAULT_BLIND_INDEX_BITS, transforms, fields, ...keyringOptions } = options;
    if (typeof name !== 'string' || name.length === 0) {
      throw new SifreDBError(ERROR_CODES.input, 'blind index name must be a non-empty string');
    }
    assertWellFormed(name, 'blind index name');
    if (utf8Length(name) > 255) {
      throw new SifreDBError(ERROR_CODES.input, 'blind index name must be at most 255 UTF-8 bytes');
    }
    if (!Number.isInteger(bits) || bits < 8 || bits > 256) {
      throw new SifreDBError(ERROR_CODES.input, 'bits must be an integer in 8..256');
    }
    let names: string[] = [];
    let compiled: Transform[][];
    if (fields === undefined) {
      compiled = [compileTransforms(transforms, 'transforms')];
    } else {
      if (transforms !== undefined) {
        throw new SifreDBError(ERROR_CODES.input, 'give transforms per field (fields[i].transforms) for a compound index');
      }
      if (!Array.isArray(fields) || fields.length === 0) {
        throw new SifreDBError(ERROR_CODES.input, 'fields must be a non-empty array of { name, transforms? }');
      }
      names = fields.map((field, i) => {
        if (typeof field?.name !== 'string' || field.name.length === 0) {
          throw new SifreDBError(ERROR_CODES.input, `fields[${i}].name must be a non-empty string`);
        }
        return field.name;
      });
      if (new Set(names).size !== names.length) throw new SifreDBError(ERROR_CODES.input, 'field names must be unique');
      compiled = fields.map((field, i) => compileTransforms(field.transforms, `fields[${i}].transforms`));
    }
    const keyring = await Keyring.from(source, keyringOptions);
    const specs = fields === undefined ? [transforms ?? []] : fields.map((field) => field.transforms ?? []);
    return new BlindIndex(keyring, name, bits as B, names, specs, compiled);
  }

  /**
   * The term of `value` in `ctx` under the current key version — what to store with the row.
   * @throws `ERR_SIFREDB_INPUT` for a value that does not fit the index's fields, or text with a
   *   lone surrogate (after transforms).
   */
  compute(value: BlindIndexValue, ctx: EncryptionContext): BlindIndexTerm<BlindIndexInt<B>> {
    assertContext(ctx);
    if (this.fields.length === 0) {
      // One field: the backend hashes `u32be len ‖ UTF-8` without a message built here.
      const text = this.#fieldText(value);
      const version = this.keyring.currentVersionFor(ctx);
      return this.#termOf(version, this.keyring.blindIndex(ctx, this.name, version).computeField(text, this.bits));
    }
    const message = this.#message(value);
    try {
      return this.#term(this.keyring.currentVersionFor(ctx), message, ctx);
    } finally {
      message.fill(0);
    }
  }

  /**
   * Every term a stored `value` of `ctx` may have: one per readable, non-retired key version, the
   * current one first. Use them all in `WHERE idx IN (…)` so that rows written before a rotation are
   * still found; the list shrinks to one once old versions are retired.
   */
  queryTerms(value: BlindIndexValue, ctx: EncryptionContext): BlindIndexTerm<BlindIndexInt<B>>[] {
    assertContext(ctx);
    const message = this.#message(value);
    try {
      return this.keyring.queryVersionsFor(ctx).map((version) => this.#term(version, message, ctx));
    } finally {
      message.fill(0);
    }
  }

  /**
   * The term of `value` in `ctx` under key `version` — what a row written under that version holds.
   * Jobs use it to check stored terms against this index's settings before rewriting them.
   */
  computeAt(value: BlindIndexValue, ctx: EncryptionContext, version: number): BlindIndexTerm {
    assertContext(ctx);
    const message = this.#message(value);
    try {
      return this.#term(version, message, ctx);
    } finally {
      message.fill(0);
    }
  }

  /**
   * The text each field of `value` is hashed as (after transforms): two values are equal to this
   * index exactly when these are. Used to drop a lookup's false positives.
   */
  normalize(value: BlindIndexValue): string[] {
    return this.#fieldValues(value).map((raw, i) => {
      const where = this.fields.length === 0 ? 'value' : `field ${JSON.stringify(this.fields[i])}`;
      let text = fieldText(raw, where);
      for (const transform of this.#transforms[i]!) text = transform(text);
      return text;
    });
  }

  /** Reloads the keys (after a rotation); see {@link Keyring.refresh}. */
  refresh(): Promise<void> {
    return this.keyring.refresh();
  }

  /**
   * Batch form of {@link compute}: the terms of every value in `ctx` under the current key version,
   * with one backend call, in order.
   * @throws as {@link compute}, naming the first bad value: `values[i]: …`, with `error.index === i`.
   */
  computeMany(values: readonly BlindIndexValue[], ctx: EncryptionContext): BlindIndexTerm<BlindIndexInt<B>>[] {
    assertContext(ctx);
    assertArray(values, 'values');
    const version = this.keyring.currentVersionFor(ctx);
    const messages: Buffer[] = [];
    try {
      for (let i = 0; i < values.length; i++) {
        try {
          messages.push(this.#message(values[i]!));
        } catch (error) {
          throw indexedError(error, 'values', i);
        }
      }
      let terms: Buffer[];
      try {
        terms = this.keyring.blindIndex(ctx, this.name, version).computeMany(messages, this.bits);
      } catch (error) {
        throw reindexError(error, 'values', (i) => i);
      }
      return terms.map((bytes) => this.#termOf(version, bytes));
    } finally {
      for (const message of messages) message.fill(0);
    }
  }

  #term(version: number, message: Uint8Array, ctx: EncryptionContext): BlindIndexTerm<BlindIndexInt<B>> {
    return this.#termOf(version, this.keyring.blindIndex(ctx, this.name, version).compute(message, this.bits));
  }

  #termOf(version: number, bytes: Buffer): BlindIndexTerm<BlindIndexInt<B>> {
    // A table beats bytes.toString('hex') (a call into C++) for terms of a few bytes.
    let hex = '';
    for (let i = 0; i < bytes.length; i++) hex += HEX_BYTE[bytes[i]!];
    const spare = bytes.length * 8 - this.bits;
    let int: number | bigint;
    if (this.bits <= 53) {
      let n = 0;
      for (let i = 0; i < bytes.length; i++) n = n * 256 + bytes[i]!;
      int = n / 2 ** spare;
    } else {
      int = BigInt(`0x${hex}`) >> BigInt(spare);
    }
    return Object.freeze({ version, bytes, hex, int: int as BlindIndexInt<B> });
  }

  /**
   * The transformed fields as `u32be len ‖ UTF-8` each, in field order (docs/FORMAT.md). The length
   * prefixes keep ("ab","c") and ("a","bc") apart. The caller zeroes the result.
   */
  /** The transformed text of a one-field index's value. */
  #fieldText(value: BlindIndexValue): string {
    let text = fieldText(value, 'value');
    const transforms = this.#transforms[0]!;
    for (let i = 0; i < transforms.length; i++) text = transforms[i]!(text);
    assertWellFormed(text, 'value');
    return text;
  }

  #message(value: BlindIndexValue): Buffer {
    if (this.fields.length === 0) {
      // Single field (the usual index): written straight into the message, no intermediate Buffer.
      const text = this.#fieldText(value);
      const length = utf8Length(text);
      const message = allocOut(4 + length);
      writeU32BE(message, 0, length);
      writeUtf8(message, text, 4);
      return message;
    }
    const values = this.#fieldValues(value);
    const parts = values.map((raw, i) => {
      const where = this.fields.length === 0 ? 'value' : `field ${JSON.stringify(this.fields[i])}`;
      let text = fieldText(raw, where);
      for (const transform of this.#transforms[i]!) text = transform(text);
      assertWellFormed(text, where);
      return utf8Bytes(text);
    });
    const message = allocOut(parts.reduce((n, part) => n + 4 + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      writeU32BE(message, offset, part.length);
      message.set(part, offset + 4);
      offset += 4 + part.length;
      part.fill(0);
    }
    return message;
  }

  #fieldValues(value: BlindIndexValue): readonly unknown[] {
    if (this.fields.length === 0) return [value];
    if (Array.isArray(value)) {
      if (value.length !== this.fields.length) {
        throw new SifreDBError(ERROR_CODES.input, `this index has ${this.fields.length} fields; got ${value.length} values`);
      }
      return value;
    }
    if (typeof value !== 'object' || value === null) {
      throw new SifreDBError(ERROR_CODES.input, 'a compound index needs an array of values or an object keyed by field name');
    }
    const record = value as Readonly<Record<string, unknown>>;
    return this.fields.map((field) => {
      if (!Object.hasOwn(record, field)) throw new SifreDBError(ERROR_CODES.input, `missing value for field ${JSON.stringify(field)}`);
      return record[field];
    });
  }
}
