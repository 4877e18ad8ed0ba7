/** Root keys and the per-context HKDF derivation of docs/FORMAT.md. */
import { SifreDBError } from '../../errors.js';
import { ALGORITHM, type RandomizedAlgorithmId } from '../../format/envelope.js';
import type { BlindIndexHandle, CipherHandle, RootKeyHandle } from '../types.js';
import { assertBytesOfLength } from './bytes.js';
import { wipe } from '../../format/bytes.js';
import { BlindIndex } from './blind-index.js';
import { DeterministicCipher, RandomizedCipher } from './ciphers.js';
import type { Engine } from './engine.js';
import { assertCanonicalContext, assertIndexName, assertKeyVersion, HKDF_SALT, hkdfInfo, PURPOSE, type Purpose } from './derivation.js';
import type { NoncePool } from './nonce-pool.js';

/** One imported root key version. Its bytes live in a private field and never leave it. */
export class RootKey implements RootKeyHandle {
  readonly version: number;
  readonly #engine: Engine;
  readonly #nonces: NoncePool;
  readonly #material: Uint8Array;

  /** Copies `material` (32 bytes); the caller may zero its own buffer afterwards. */
  constructor(engine: Engine, nonces: NoncePool, version: number, material: Uint8Array) {
    assertKeyVersion(version);
    assertBytesOfLength(material, 'material', 32);
    this.version = version;
    this.#engine = engine;
    this.#nonces = nonces;
    this.#material = Uint8Array.from(material);
  }

  /** Runs `use` on the derived key, then wipes it: engines keep their own copy or KeyObject. */
  #derive<T>(purpose: Purpose, length: number, context: Uint8Array, indexName: Uint8Array | undefined, use: (key: Uint8Array) => T): T {
    const key = this.#engine.hkdfSha256(this.#material, HKDF_SALT, hkdfInfo(purpose, context, indexName), length);
    try {
      return use(key);
    } finally {
      wipe(key);
    }
  }

  randomizedCipher(algorithm: RandomizedAlgorithmId, context: Uint8Array): CipherHandle {
    if (algorithm !== ALGORITHM.chacha20Poly1305 && algorithm !== ALGORITHM.xchacha20Poly1305) {
      throw new SifreDBError('ERR_SIFREDB_INPUT', 'algorithm must be 1 (ChaCha20-Poly1305) or 2 (XChaCha20-Poly1305)');
    }
    assertCanonicalContext(context);
    const engine = this.#engine;
    const aead = this.#derive(PURPOSE[algorithm], 32, context, undefined, (key) =>
      algorithm === ALGORITHM.chacha20Poly1305 ? engine.chacha20Poly1305(key) : engine.xchacha20Poly1305(key),
    );
    return new RandomizedCipher(algorithm, this.version, context, aead, this.#nonces);
  }

  deterministicCipher(context: Uint8Array): CipherHandle {
    assertCanonicalContext(context);
    const siv = this.#derive(PURPOSE[ALGORITHM.aesSiv], 64, context, undefined, (key) => this.#engine.aesSiv(key));
    return new DeterministicCipher(this.version, context, (ad) => siv.withAd(ad));
  }

  blindIndex(context: Uint8Array, indexName: Uint8Array): BlindIndexHandle {
    assertCanonicalContext(context);
    assertIndexName(indexName);
    const mac = this.#derive(PURPOSE.blindIndex, 32, context, indexName, (key) => this.#engine.hmacSha256(key));
    return new BlindIndex(this.version, mac);
  }
}
