/**
 * The seam between the SifreDB format code and the crypto implementation. Two engines implement it
 * with identical bytes: node:crypto (OpenSSL, fast) and @noble (pure JS, any runtime). Engines take
 * already-validated arguments; {@link ./primitives.ts} and the handles do all checking.
 */

/** Which implementation backs the pure-JS backend. */
export type EngineName = 'node' | 'noble';

/** An AEAD (ChaCha20-Poly1305 or XChaCha20-Poly1305) bound to one 32-byte key. */
export interface AeadKey {
  /** Writes `ciphertext ‖ tag` into `out`, which is exactly `plaintext.length + 16` bytes. */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): void;
  /**
   * Writes the plaintext into `out` (exactly `ciphertextAndTag.length - 16` bytes) and returns true,
   * or returns false, with `out` zeroed, when the tag does not verify.
   */
  open(nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array, out: Uint8Array): boolean;
}

/** AES-256-SIV (RFC 5297) bound to one key and one associated-data string. */
export interface SivWithAd {
  /** Returns `V ‖ C`. */
  seal(plaintext: Uint8Array): Uint8Array;
  /** Returns the plaintext, or null when the synthetic IV does not verify. */
  open(sivAndCiphertext: Uint8Array): Uint8Array | null;
}

/** AES-256-SIV bound to one 64-byte key (first half S2V/CMAC, second half CTR). */
export interface SivKey {
  /**
   * Binds the associated data. The SIV handles bind it once: their AD (header ‖ context) never
   * changes, so the S2V state after it can be computed once per handle.
   */
  withAd(ad: Uint8Array): SivWithAd;
  /** Binds a vector of associated-data components (S2V inputs in order, at most 126; checked by the caller). */
  withAdComponents(components: readonly Uint8Array[]): SivWithAd;
}

/** HMAC-SHA256 bound to one key. */
export interface MacKey {
  mac(message: Uint8Array): Uint8Array;
}

/** One crypto implementation. */
export interface Engine {
  readonly name: EngineName;
  chacha20Poly1305(key: Uint8Array): AeadKey;
  xchacha20Poly1305(key: Uint8Array): AeadKey;
  aesSiv(key: Uint8Array): SivKey;
  hmacSha256(key: Uint8Array): MacKey;
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /** Fills `out` from the OS CSPRNG. */
  randomFill(out: Uint8Array): void;
}
