/**
 * The keyring's bounded cache of derived handles. Internal.
 *
 * Two-level so that a hit costs two `Map` lookups and no string building: the outer key is the
 * context's `key` (the same string instance on every call, so its hash is cached), the inner key
 * names purpose, key version and index. Recency is approximated with two generations (the "hashlru"
 * scheme): entries used since the last turnover survive the next one, the rest are dropped — LRU
 * without the cost of reordering a list on every hit.
 */
export class HandleCache<V> {
  /** Handles per generation; two generations keep at most about twice this many. */
  readonly #generationSize: number;
  #young = new Map<string, Map<number | string, V>>();
  #old = new Map<string, Map<number | string, V>>();
  #youngSize = 0;

  /** @param maxHandles - bound on cached handles (approximate: a turnover happens at half of it). */
  constructor(maxHandles: number) {
    this.#generationSize = Math.max(1, Math.floor(maxHandles / 2));
  }

  /** The handle stored under (`outer`, `inner`), if any. */
  get(outer: string, inner: number | string): V | undefined {
    return (this.#young.get(outer) ?? this.#promote(outer))?.get(inner);
  }

  /** Stores a handle, turning the generations over when the young one is full. */
  set(outer: string, inner: number | string, value: V): void {
    let entry = this.#young.get(outer) ?? this.#promote(outer);
    if (entry === undefined) {
      entry = new Map();
      this.#young.set(outer, entry);
    }
    if (!entry.has(inner)) this.#youngSize++;
    entry.set(inner, value);
    if (this.#youngSize >= this.#generationSize) this.#turnOver();
  }

  /** Drops everything. Dropped handles become unreachable; backends zeroize their keys when collected. */
  clear(): void {
    this.#young = new Map();
    this.#old = new Map();
    this.#youngSize = 0;
  }

  /** Moves an entry used again from the old generation to the young one. */
  #promote(outer: string): Map<number | string, V> | undefined {
    const entry = this.#old.get(outer);
    if (entry !== undefined) {
      this.#old.delete(outer);
      this.#young.set(outer, entry);
      this.#youngSize += entry.size;
    }
    return entry;
  }

  #turnOver(): void {
    this.#old = this.#young;
    this.#young = new Map();
    this.#youngSize = 0;
  }
}
