/**
 * The contract between the envelope keyring ({@link ./envelope.ts}) and one key service (AWS KMS,
 * HashiCorp Vault Transit, Google Cloud KMS, Azure Key Vault…). An adapter only translates: make or
 * wrap a 32-byte data key, unwrap it, optionally re-wrap it server-side, and map the service's
 * failures to {@link SifreDBKmsError}s. Everything else — the keyring document and its store,
 * locking, caching, "one unwrap per version per process", rotate / retire / rewrap, multi-service
 * keyrings — lives in the core, once.
 */
import type { SifreDBKmsError } from './errors.js';

/** What a wrapped data key is bound to: the service must refuse to unwrap it under any other binding. */
export interface KeyBinding {
  /** The keyring's id (1..128 characters of letters, digits and `._:@/+=-`). */
  readonly keyringId: string;
  /** The root-key version, 1..2^32-1. */
  readonly version: number;
}

/**
 * The binding as a string map, for services with a structured context (AWS KMS encryption
 * context): `{ "sifredb:keyring": keyringId, "sifredb:version": "<version>" }`.
 */
export function bindingContext(binding: KeyBinding): Record<string, string> {
  return { 'sifredb:keyring': binding.keyringId, 'sifredb:version': String(binding.version) };
}

/**
 * The binding as bytes, for services with additional authenticated data (Google Cloud KMS
 * `additionalAuthenticatedData`, Vault Transit `context` / `associated_data`): the UTF-8 of the
 * JSON of {@link bindingContext}, keys in that order, no spaces —
 * `{"sifredb:keyring":"<keyringId>","sifredb:version":"<version>"}`. Frozen by
 * test-vectors/kms-keyring.json: changing it makes every wrapped key unreadable.
 */
export function bindingAad(binding: KeyBinding): Buffer {
  return Buffer.from(JSON.stringify(bindingContext(binding)), 'utf8');
}

/** One wrapped copy of a data key, as the keyring stores it (per version, one per wrapping key). */
export interface WrappedKey {
  /** The adapter that made it: {@link KmsAdapter.provider}, e.g. `aws-kms`, `vault-transit`. */
  readonly provider: string;
  /**
   * The wrapping key as the service identified it (an AWS key ARN, a Vault key path…). Not secret;
   * used to pick the adapter that unwraps it and to refuse mixing keys in one keyring.
   */
  readonly keyId: string;
  /** The service's ciphertext as printable ASCII (base64 of binary blobs; Vault's `vault:vN:…` as is). */
  readonly wrappedKey: string;
}

/** A new data key from {@link KmsAdapter.generate}. */
export interface GeneratedKey {
  /** The 32 plaintext bytes, in their own allocation (not Buffer's pool); the core zeroes them. */
  readonly plaintext: Buffer;
  readonly wrapped: WrappedKey;
}

/**
 * One key service, bound to one wrapping key. Implementations:
 * - throw only {@link SifreDBKmsError} (build them with `kmsServiceError` in ./errors.ts), with
 *   `transient: true` exactly when retrying later may succeed (unreachable, timeout, throttled,
 *   5xx), `code` `ERR_SIFREDB_KEY` when the service says the wrapped key itself is bad (altered, or
 *   bound to another keyring/version) and `ERR_SIFREDB_KMS` otherwise;
 * - never put key bytes, wrapped keys, tokens or credentials in a message;
 * - do their own retries of transient failures (SDK retry policies, or a loop for plain HTTP);
 * - bind every wrap to {@link KeyBinding} with the service's AAD / context mechanism. A service
 *   without one must bind another way, and document it.
 */
export interface KmsAdapter {
  /** Written into {@link WrappedKey.provider}: `aws-kms`, `vault-transit`, `gcp-kms`, `azure-keyvault`. */
  readonly provider: string;
  /** The configured wrapping key (id, ARN, alias, path, URL); not secret. */
  readonly keyId: string;
  /** Secret-free, for errors and logs, e.g. `aws-kms:alias/app`, `vault-transit:https://vault:8200 transit/keys/app`. */
  readonly description: string;
  /**
   * Optional: a new 32-byte data key made by the service, and its wrapped form (AWS
   * `GenerateDataKey`, Vault `datakey/plaintext`). Without it the core draws 32 random bytes and
   * calls {@link wrap}.
   */
  generate?(binding: KeyBinding): Promise<GeneratedKey>;
  /** Wraps 32 bytes under this adapter's key. Must not keep or copy `plaintext`. */
  wrap(plaintext: Uint8Array, binding: KeyBinding): Promise<WrappedKey>;
  /**
   * The 32 bytes of `wrapped` (a copy the core zeroes). Called only with wraps of this adapter's
   * `provider`. A wrong size is reported by the core.
   */
  unwrap(wrapped: WrappedKey, binding: KeyBinding): Promise<Uint8Array>;
  /**
   * Optional: re-wraps `wrapped` (made by this provider, possibly under another key of the same
   * service or an older key version) under this adapter's key, without the plaintext leaving the
   * service (AWS `ReEncrypt`, Vault `rewrap`). Return `undefined` when this wrap cannot be re-wrapped
   * server-side: the core then unwraps it and calls {@link wrap}.
   */
  rewrap?(wrapped: WrappedKey, binding: KeyBinding): Promise<WrappedKey | undefined>;
  /**
   * Optional: whether `wrapped` was made with exactly this adapter's key. Default: the same
   * `provider` and `keyId`. The core tries the wraps this adapter owns first, then the other wraps of
   * its provider (a renamed key or moved endpoint still unwraps).
   */
  owns?(wrapped: WrappedKey): boolean;
  /** Releases clients the adapter made (not ones it was given). */
  close?(): void;
}

export type { SifreDBKmsError };
