/**
 * The value plumbing of the vaults' batches: encoding values for a backend call, decoding (and
 * wiping) what it returns, and keeping each output in its input's form. Internal.
 */
import type { Buffer } from 'node:buffer';
import { assertArray, type HandleRun, indexedError, wipeAll } from '../backend/batch.js';
import type { CipherHandle, DecryptedBatch, TaggedValue } from '../backend/types.js';
import { HEADER_LENGTH } from '../format/envelope.js';
import { toText } from '../format/text.js';
import {
  checkType,
  checkValue,
  type DecryptedValue,
  decodeValue,
  type EncryptableValue,
  encodeValue,
  VALUE_TAG,
  type ValueType,
} from '../format/value-codec.js';

/** Encodes a batch of values (see `encodeValue`); a bad one is named `values[i]`. */
export function encodeValues(values: readonly EncryptableValue[]): { data: (Uint8Array | string)[]; tags: Uint8Array } {
  assertArray(values, 'values');
  const n = values.length;
  const data = new Array<Uint8Array | string>(n);
  const tags = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const value = values[i];
    try {
      // Strings and bytes (the usual batch) inline; everything else through encodeValue. The cipher
      // handle checks each string once.
      if (typeof value === 'string') {
        data[i] = value;
        tags[i] = VALUE_TAG.string;
      } else if (value instanceof Uint8Array) {
        data[i] = value;
        tags[i] = VALUE_TAG.bytes;
      } else {
        const encoded = encodeValue(value!);
        data[i] = encoded.data;
        tags[i] = encoded.tag;
      }
    } catch (error) {
      wipeEncodings(data.slice(0, i), tags);
      throw indexedError(error, 'values', i);
    }
  }
  return { data, tags };
}

/** Zeroes the encodings that are our scratch copies (numbers, bigints, booleans, Dates, not bytes). */
export function wipeEncodings(data: readonly (Uint8Array | string)[], tags: Uint8Array): void {
  for (let i = 0; i < data.length; i++) {
    const item = data[i];
    if (tags[i] !== VALUE_TAG.bytes && item instanceof Uint8Array) item.fill(0);
  }
}

/**
 * Decodes one decrypted value after checking its type against `expected`. The value's bytes are
 * wiped, unless they are handed out as bytes.
 */
export function decodeChecked({ typeTag, value }: TaggedValue, expected: ValueType | undefined): DecryptedValue {
  let handedOut = false;
  try {
    checkType(typeTag, expected);
    const decoded = decodeValue(typeTag, value);
    handedOut = typeTag === VALUE_TAG.bytes;
    return decoded;
  } finally {
    if (!handedOut) value.fill(0);
  }
}

/**
 * Decodes a decrypted batch, checking each type against `expected`. On failure every value is wiped
 * and the error names `ciphertexts[i]`; on success only the bytes handed out as bytes are kept.
 */
export function decodeMany({ values, typeTags }: DecryptedBatch, expected: ValueType | undefined): DecryptedValue[] {
  const out = new Array<DecryptedValue>(values.length);
  let i = 0;
  try {
    for (; i < values.length; i++) {
      checkType(typeTags[i]!, expected);
      out[i] = decodeValue(typeTags[i]!, values[i]!);
    }
  } catch (error) {
    wipeAll(values);
    throw indexedError(error, 'ciphertexts', i);
  }
  for (let j = 0; j < values.length; j++) if (typeTags[j] !== VALUE_TAG.bytes) values[j]!.fill(0);
  return out;
}

/**
 * The type tags of a batch in batch order, from the tags of each handle run (in run order, as
 * `runByHandle` calls them).
 */
export function tagsInOrder(runs: readonly HandleRun<CipherHandle>[], runTags: readonly Uint8Array[], n: number): Uint8Array {
  if (runs.length === 1 && runs[0]!.indices === undefined) return runTags[0]!;
  const out = new Uint8Array(n);
  for (let r = 0; r < runs.length; r++) {
    const indices = runs[r]!.indices!;
    const tags = runTags[r]!;
    for (let j = 0; j < indices.length; j++) out[indices[j]!] = tags[j]!;
  }
  return out;
}

/** True when the first 7 bytes (the header) of two envelopes are equal. */
export function sameHeader(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length < HEADER_LENGTH) return false;
  for (let i = 0; i < HEADER_LENGTH; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Each output in the form its input had: `sdb1:` text for text. */
export function sameForm(inputs: readonly (Uint8Array | string)[], outputs: Buffer[]): (Buffer | string)[] {
  const out = new Array<Buffer | string>(outputs.length);
  for (let i = 0; i < outputs.length; i++) out[i] = typeof inputs[i] === 'string' ? toText(outputs[i]!) : outputs[i]!;
  return out;
}

/** {@link checkValue} for the paths that hand a value's bytes on; wipes `value` when it is refused. */
export function checkOrWipe(typeTag: number, value: Buffer): void {
  try {
    checkValue(typeTag, value);
  } catch (error) {
    value.fill(0);
    throw error;
  }
}
