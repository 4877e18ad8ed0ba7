/** Cipher handles: a v1 envelope around one derived key (docs/FORMAT.md). */
import { SifreDBError } from '../../errors.js';
import { assertArray, indexedError, requestedThreads, settleLater } from '../batch.js';
import {
  ALGORITHM,
  type BatchOptions,
  type CipherHandle,
  type DecryptedBatch,
  type PlainInput,
  type RandomizedAlgorithmId,
  type TaggedValue,
} from '../types.js';
import { assertBytes, assertBytesOfLength } from './bytes.js';
import { allocOut, allocSecret, concatBytes, ownedBytes, toBuffer, wipe, writeU32BE } from '../../format/bytes.js';
import type { AeadKey, SivWithAd } from './engine.js';
import { checkEnvelope, encodeHeader, envelopeLayout, HEADER_LENGTH, TAG_LENGTH } from '../../format/envelope.js';
import { encodePlaintext } from './format.js';
import type { NoncePool } from './nonce-pool.js';
import { authError } from './primitives.js';

/** Re-throws a per-item error with the item's position (and an `index` property), keeping its code. */
function atIndex(error: unknown, name: string, index: number): unknown {
  if (!(error instanceof SifreDBError)) return error;
  return indexedError(error, name, index);
}

/** The loops shared by both handle kinds; the encoding and AEAD live in the subclasses. */
abstract class BaseCipher implements CipherHandle {
  readonly keyVersion: number;
  readonly algorithm: number;
  /** `header ‖ context`: the AEAD associated data, identical for every value under this handle. */
  protected readonly aad: Uint8Array;

  constructor(algorithm: number, keyVersion: number, context: Uint8Array) {
    this.algorithm = algorithm;
    this.keyVersion = keyVersion;
    this.aad = concatBytes(encodeHeader(algorithm, keyVersion), context);
  }

  abstract encrypt(value: PlainInput, typeTag: number): Buffer;
  abstract decrypt(envelope: Uint8Array): Buffer;
  abstract encryptBound(value: PlainInput, typeTag: number, rowAd: Uint8Array): Buffer;
  abstract decryptBound(envelope: Uint8Array, rowAd: Uint8Array): Buffer;

  /** Row binding (docs/FORMAT.md): `header ‖ context ‖ u32be(rowAd.length) ‖ rowAd`. */
  protected boundAad(rowAd: Uint8Array): Uint8Array {
    assertBytes(rowAd, 'rowAd');
    if (rowAd.length > 0xffffffff) throw new SifreDBError('ERR_SIFREDB_INPUT', 'rowAd must be at most 4294967295 bytes');
    const base = this.aad.length;
    const out = new Uint8Array(base + 4 + rowAd.length);
    out.set(this.aad);
    writeU32BE(out, base, rowAd.length);
    out.set(rowAd, base + 4);
    return out;
  }

  decryptTaggedBound(envelope: Uint8Array, rowAd: Uint8Array): TaggedValue {
    const plaintext = this.decryptBound(envelope, rowAd);
    return { typeTag: plaintext[0]!, value: plaintext.subarray(1) };
  }

  encryptMany(values: PlainInput[], typeTags: Uint8Array): Buffer[] {
    if (!Array.isArray(values)) throw new SifreDBError('ERR_SIFREDB_INPUT', 'values must be an array');
    assertBytes(typeTags, 'typeTags');
    if (typeTags.length !== values.length) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', `typeTags has ${typeTags.length} entries for ${values.length} values`);
    }
    const out = new Array<Buffer>(values.length);
    for (let i = 0; i < values.length; i++) {
      try {
        out[i] = this.encrypt(values[i]!, typeTags[i]!);
      } catch (error) {
        throw atIndex(error, 'values', i);
      }
    }
    return out;
  }

  decryptMany(envelopes: Uint8Array[]): Buffer[] {
    if (!Array.isArray(envelopes)) throw new SifreDBError('ERR_SIFREDB_INPUT', 'envelopes must be an array');
    const out = new Array<Buffer>(envelopes.length);
    for (let i = 0; i < envelopes.length; i++) {
      try {
        out[i] = this.decrypt(envelopes[i]!);
      } catch (error) {
        // Plaintexts already decrypted are in the caller's hands only on success.
        for (let j = 0; j < i; j++) wipe(out[j]!);
        throw atIndex(error, 'envelopes', i);
      }
    }
    return out;
  }

  decryptTagged(envelope: Uint8Array): TaggedValue {
    const plaintext = this.decrypt(envelope);
    return { typeTag: plaintext[0]!, value: plaintext.subarray(1) };
  }

  decryptManyValues(envelopes: Uint8Array[]): DecryptedBatch {
    const plaintexts = this.decryptMany(envelopes);
    const typeTags = new Uint8Array(plaintexts.length);
    const values = plaintexts.map((plaintext, i) => {
      typeTags[i] = plaintext[0]!;
      return plaintext.subarray(1);
    });
    return { values, typeTags };
  }

  reencryptMany(envelopes: Uint8Array[], target: CipherHandle): Buffer[] {
    if (!(target instanceof BaseCipher)) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', 'target must be a cipher handle of the same (js) backend');
    }
    assertArray(envelopes, 'envelopes');
    const plaintexts = this.decryptMany(envelopes);
    try {
      const out = new Array<Buffer>(plaintexts.length);
      for (let i = 0; i < plaintexts.length; i++) {
        const plaintext = plaintexts[i]!;
        try {
          out[i] = target.encrypt(plaintext.subarray(1), plaintext[0]!);
        } catch (error) {
          throw atIndex(error, 'envelopes', i);
        }
      }
      return out;
    } finally {
      for (const plaintext of plaintexts) wipe(plaintext);
    }
  }

  encryptManyAsync(values: PlainInput[], typeTags: Uint8Array, options?: BatchOptions): Promise<Buffer[]> {
    return settleLater(() => {
      requestedThreads(options);
      return this.encryptMany(values, typeTags);
    });
  }

  decryptManyValuesAsync(envelopes: Uint8Array[], options?: BatchOptions): Promise<DecryptedBatch> {
    return settleLater(() => {
      requestedThreads(options);
      return this.decryptManyValues(envelopes);
    });
  }

  reencryptManyAsync(envelopes: Uint8Array[], target: CipherHandle, options?: BatchOptions): Promise<Buffer[]> {
    return settleLater(() => {
      requestedThreads(options);
      return this.reencryptMany(envelopes, target);
    });
  }
}

/** ChaCha20-Poly1305 / XChaCha20-Poly1305 with a random nonce per value. */
export class RandomizedCipher extends BaseCipher {
  readonly #aead: AeadKey;
  readonly #nonces: NoncePool;
  readonly #nonceLength: number;

  constructor(algorithm: RandomizedAlgorithmId, keyVersion: number, context: Uint8Array, aead: AeadKey, nonces: NoncePool) {
    super(algorithm, keyVersion, context);
    this.#aead = aead;
    this.#nonces = nonces;
    this.#nonceLength = envelopeLayout(algorithm)!.nonceLength;
  }

  encrypt(value: PlainInput, typeTag: number): Buffer {
    return this.#seal(value, typeTag, undefined, this.aad);
  }

  /** Test-vector hook: a caller-chosen nonce. Reusing a nonce under one key breaks the AEAD. */
  encryptWithNonce(value: PlainInput, typeTag: number, nonce: Uint8Array): Buffer {
    assertBytesOfLength(nonce, 'nonce', this.#nonceLength);
    return this.#seal(value, typeTag, nonce, this.aad);
  }

  encryptBound(value: PlainInput, typeTag: number, rowAd: Uint8Array): Buffer {
    return this.#seal(value, typeTag, undefined, this.boundAad(rowAd));
  }

  /** Test-vector hook: {@link encryptBound} with a caller-chosen nonce; as dangerous as {@link encryptWithNonce}. */
  encryptBoundWithNonce(value: PlainInput, typeTag: number, rowAd: Uint8Array, nonce: Uint8Array): Buffer {
    assertBytesOfLength(nonce, 'nonce', this.#nonceLength);
    return this.#seal(value, typeTag, nonce, this.boundAad(rowAd));
  }

  #seal(value: PlainInput, typeTag: number, nonce: Uint8Array | undefined, aad: Uint8Array): Buffer {
    const plaintext = encodePlaintext(value, typeTag);
    const bodyStart = HEADER_LENGTH + this.#nonceLength;
    const out = allocOut(bodyStart + plaintext.length + TAG_LENGTH);
    out.set(this.aad.subarray(0, HEADER_LENGTH));
    if (nonce === undefined) this.#nonces.fill(out, HEADER_LENGTH, this.#nonceLength);
    else out.set(nonce, HEADER_LENGTH);
    this.#aead.seal(out.subarray(HEADER_LENGTH, bodyStart), plaintext, aad, out.subarray(bodyStart));
    wipe(plaintext);
    return out;
  }

  decrypt(envelope: Uint8Array): Buffer {
    return this.#open(envelope, this.aad);
  }

  decryptBound(envelope: Uint8Array, rowAd: Uint8Array): Buffer {
    assertBytes(envelope, 'envelope');
    checkEnvelope(envelope, this.algorithm, this.keyVersion);
    return this.#open(envelope, this.boundAad(rowAd));
  }

  #open(input: Uint8Array, aad: Uint8Array): Buffer {
    assertBytes(input, 'envelope');
    // Checked, authenticated and decrypted from one snapshot when another thread can rewrite it.
    const envelope = ownedBytes(input);
    checkEnvelope(envelope, this.algorithm, this.keyVersion);
    const bodyStart = HEADER_LENGTH + this.#nonceLength;
    // The plaintext: unpooled (ciphertext outputs above may stay pooled, they are not secret).
    const out = allocSecret(envelope.length - bodyStart - TAG_LENGTH);
    if (!this.#aead.open(envelope.subarray(HEADER_LENGTH, bodyStart), envelope.subarray(bodyStart), aad, out)) {
      throw authError();
    }
    return out;
  }
}

/** AES-256-SIV: equal plaintexts under one handle give equal envelopes. */
export class DeterministicCipher extends BaseCipher {
  readonly #siv: SivWithAd;
  readonly #bindAd: (ad: Uint8Array) => SivWithAd;

  constructor(keyVersion: number, context: Uint8Array, bindAd: (ad: Uint8Array) => SivWithAd) {
    super(ALGORITHM.aesSiv, keyVersion, context);
    this.#siv = bindAd(this.aad);
    this.#bindAd = bindAd;
  }

  encrypt(value: PlainInput, typeTag: number): Buffer {
    return this.#seal(this.#siv, value, typeTag);
  }

  /** Row binding: the S2V associated data is per value, so it is bound per call. */
  encryptBound(value: PlainInput, typeTag: number, rowAd: Uint8Array): Buffer {
    return this.#seal(this.#bindAd(this.boundAad(rowAd)), value, typeTag);
  }

  decryptBound(envelope: Uint8Array, rowAd: Uint8Array): Buffer {
    assertBytes(envelope, 'envelope');
    checkEnvelope(envelope, this.algorithm, this.keyVersion);
    return this.#open(this.#bindAd(this.boundAad(rowAd)), envelope);
  }

  #seal(siv: SivWithAd, value: PlainInput, typeTag: number): Buffer {
    const plaintext = encodePlaintext(value, typeTag);
    const body = siv.seal(plaintext);
    wipe(plaintext);
    const out = allocOut(HEADER_LENGTH + body.length);
    out.set(this.aad.subarray(0, HEADER_LENGTH));
    out.set(body, HEADER_LENGTH);
    return out;
  }

  decrypt(envelope: Uint8Array): Buffer {
    return this.#open(this.#siv, envelope);
  }

  #open(siv: SivWithAd, input: Uint8Array): Buffer {
    assertBytes(input, 'envelope');
    const envelope = ownedBytes(input);
    checkEnvelope(envelope, this.algorithm, this.keyVersion);
    const plaintext = siv.open(envelope.subarray(HEADER_LENGTH));
    if (plaintext === null) throw authError();
    return toBuffer(plaintext);
  }
}
