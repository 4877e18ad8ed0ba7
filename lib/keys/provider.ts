/** Lifecycle of a root-key version. */
export type KeyStatus = 'active' | 'retired';

/** Public facts about a root-key version; never the key bytes. */
export interface KeyVersionInfo {
  /** 1, 2, 3 … as written in the ciphertext header. */
  readonly version: number;
  readonly createdAt: Date;
  /**
   * `active` versions encrypt (the current one) or decrypt, and deterministic / blind-index query
   * helpers include them; `retired` ones still decrypt but are left out of query terms (retire a
   * version once no row is stored under it any more). See KEYS.md.
   */
  readonly status: KeyStatus;
}

/**
 * Source of versioned 32-byte root keys. Async so that KMS-backed providers fit; a Vault calls it at
 * open/refresh time only, never per value.
 */
export interface KeyProvider {
  /** Human-readable, secret-free description for errors and logs, e.g. `file:/etc/sifredb/keys.json`. */
  readonly description: string;
  /** Every readable version, ascending. */
  listVersions(): Promise<KeyVersionInfo[]>;
  /** The version new ciphertexts are written under. */
  currentVersion(): Promise<number>;
  /** The 32 key bytes of `version`; the caller zeroes the returned buffer once imported. */
  loadKey(version: number): Promise<Uint8Array>;
  /** Creates a new version and makes it current; old versions stay readable. Returns the new version. */
  rotate(): Promise<number>;
  /**
   * Optional: marks a non-current version `retired` (still readable, no longer in query terms).
   * Providers that cannot record a status omit it.
   */
  retire?(version: number): Promise<void>;
}
