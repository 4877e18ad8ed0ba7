/** Cipher handles: a v1 envelope around one derived key (docs/FORMAT.md). */
import { SifreDBError } from '../../errors.js';
import { allocOut, allocSecret, concatBytes, toBuffer, utf8Length, wipe, writeU32BE, writeUtf8 } from '../../format/bytes.js';
import { ALGORITHM, checkEnvelope, encodeHeader, HEADER_LENGTH, type RandomizedAlgorithmId, TAG_LENGTH } from '../../format/envelope.js';
import { checkPlaintext } from '../batch.js';
import { BaseCipherHandle, rowAdArg } from '../cipher-handle.js';
import type { PlainInput } from '../types.js';
import { assertBytesOfLength } from './bytes.js';
import type { AeadKey, SivWithAd } from './engine.js';
import type { NoncePool } from './nonce-pool.js';
import { authError } from './primitives.js';

/** `typeTag ‖ value` (checked by the handle) as one fresh array; the caller wipes it after use. */
export function encodePlaintext(value: string | Uint8Array, typeTag: number): Uint8Array {
  const length = typeof value === 'string' ? utf8Length(value) : value.length;
  const out = allocSecret(1 + length);
  out[0] = typeTag;
  if (typeof value === 'string') writeUtf8(out, value, 1);
  else out.set(value, 1);
  return out;
}

/** What both JS handle kinds add to the shared handle: `header ‖ context` and row binding. */
abstract class JsCipher extends BaseCipherHandle {
  protected readonly backend = 'js';
  /** `header ‖ context`: the AEAD associated data, identical for every value under this handle. */
  protected readonly aad: Uint8Array;

  constructor(algorithm: number, keyVersion: number, context: Uint8Array) {
    super(algorithm, keyVersion);
    this.aad = concatBytes(encodeHeader(algorithm, keyVersion), context);
  }

  /** The associated data of a value: `header ‖ context [‖ u32be(rowAd.length) ‖ rowAd]` (docs/FORMAT.md). */
  protected aadOf(rowAd: Uint8Array | undefined): Uint8Array {
    if (rowAd === undefined) return this.aad;
    if (rowAd.length > 0xffffffff) throw new SifreDBError('ERR_SIFREDB_INPUT', 'rowAd must be at most 4294967295 bytes');
    const base = this.aad.length;
    const out = new Uint8Array(base + 4 + rowAd.length);
    out.set(this.aad);
    writeU32BE(out, base, rowAd.length);
    out.set(rowAd, base + 4);
    return out;
  }
}

/** ChaCha20-Poly1305 / XChaCha20-Poly1305 with a random nonce per value. */
export class RandomizedCipher extends JsCipher {
  readonly #aead: AeadKey;
  readonly #nonces: NoncePool;

  constructor(algorithm: RandomizedAlgorithmId, keyVersion: number, context: Uint8Array, aead: AeadKey, nonces: NoncePool) {
    super(algorithm, keyVersion, context);
    this.#aead = aead;
    this.#nonces = nonces;
  }

  /** Test-vector hook: a caller-chosen nonce. Reusing a nonce under one key breaks the AEAD. */
  encryptWithNonce(value: PlainInput, typeTag: number, nonce: Uint8Array, rowAd?: Uint8Array): Buffer {
    assertBytesOfLength(nonce, 'nonce', this.layout.nonceLength);
    checkPlaintext(value, typeTag);
    return this.#seal(value, typeTag, nonce, this.aadOf(rowAdArg(rowAd)));
  }

  protected seal(value: PlainInput, typeTag: number, rowAd: Uint8Array | undefined): Buffer {
    return this.#seal(value, typeTag, undefined, this.aadOf(rowAd));
  }

  #seal(value: PlainInput, typeTag: number, nonce: Uint8Array | undefined, aad: Uint8Array): Buffer {
    const plaintext = encodePlaintext(value, typeTag);
    const { nonceLength, plaintextOffset: bodyStart } = this.layout;
    const out = allocOut(bodyStart + plaintext.length + TAG_LENGTH);
    out.set(this.aad.subarray(0, HEADER_LENGTH));
    if (nonce === undefined) this.#nonces.fill(out, HEADER_LENGTH, nonceLength);
    else out.set(nonce, HEADER_LENGTH);
    this.#aead.seal(out.subarray(HEADER_LENGTH, bodyStart), plaintext, aad, out.subarray(bodyStart));
    wipe(plaintext);
    return out;
  }

  /** Checked, authenticated and decrypted from one snapshot (the envelope is owned). */
  protected open(envelope: Uint8Array, rowAd: Uint8Array | undefined): Buffer {
    checkEnvelope(envelope, this.algorithm, this.keyVersion);
    const bodyStart = this.layout.plaintextOffset;
    // The plaintext: unpooled (ciphertext outputs above may stay pooled, they are not secret).
    const out = allocSecret(envelope.length - bodyStart - TAG_LENGTH);
    if (!this.#aead.open(envelope.subarray(HEADER_LENGTH, bodyStart), envelope.subarray(bodyStart), this.aadOf(rowAd), out)) {
      throw authError();
    }
    return out;
  }
}

/** AES-256-SIV: equal plaintexts under one handle give equal envelopes. */
export class DeterministicCipher extends JsCipher {
  readonly #siv: SivWithAd;
  readonly #bindAd: (ad: Uint8Array) => SivWithAd;

  constructor(keyVersion: number, context: Uint8Array, bindAd: (ad: Uint8Array) => SivWithAd) {
    super(ALGORITHM.aesSiv, keyVersion, context);
    this.#siv = bindAd(this.aad);
    this.#bindAd = bindAd;
  }

  /** The S2V of `header ‖ context` is bound once per handle; a row AD is bound per call. */
  #sivOf(rowAd: Uint8Array | undefined): SivWithAd {
    return rowAd === undefined ? this.#siv : this.#bindAd(this.aadOf(rowAd));
  }

  protected seal(value: PlainInput, typeTag: number, rowAd: Uint8Array | undefined): Buffer {
    const plaintext = encodePlaintext(value, typeTag);
    const body = this.#sivOf(rowAd).seal(plaintext);
    wipe(plaintext);
    const out = allocOut(HEADER_LENGTH + body.length);
    out.set(this.aad.subarray(0, HEADER_LENGTH));
    out.set(body, HEADER_LENGTH);
    return out;
  }

  protected open(envelope: Uint8Array, rowAd: Uint8Array | undefined): Buffer {
    checkEnvelope(envelope, this.algorithm, this.keyVersion);
    const plaintext = this.#sivOf(rowAd).open(envelope.subarray(HEADER_LENGTH));
    if (plaintext === null) throw authError();
    return toBuffer(plaintext);
  }
}
