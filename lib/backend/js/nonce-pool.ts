/** Random nonces drawn from a buffered CSPRNG: one OS call per 4 KiB instead of one per value. */
import type { Engine } from './engine.js';

const POOL_SIZE = 4096;

/** A pool of CSPRNG bytes; each byte is handed out once. */
export class NoncePool {
  readonly #engine: Engine;
  readonly #pool = new Uint8Array(POOL_SIZE);
  #offset = POOL_SIZE;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  /** Copies `length` (≤ 4096) fresh random bytes into `out` at `offset`. */
  fill(out: Uint8Array, offset: number, length: number): void {
    if (this.#offset + length > POOL_SIZE) {
      this.#engine.randomFill(this.#pool);
      this.#offset = 0;
    }
    out.set(this.#pool.subarray(this.#offset, this.#offset + length), offset);
    // Zeroed once used, so a later heap dump cannot tie a nonce to bytes still in the pool.
    this.#pool.fill(0, this.#offset, this.#offset + length);
    this.#offset += length;
  }
}
