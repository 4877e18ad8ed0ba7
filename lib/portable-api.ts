/**
 * The part of the public API that runs in every runtime (Node, Bun, Deno, browsers, edge workers):
 * contexts, keyrings and the static key provider, the two vaults, blind indexes and the key-free
 * format helpers. Both entry points (`lib/index.ts`, `lib/web.ts`) re-export it; nothing it imports
 * may use a `node:` module or read `process` at load.
 */
export type {
  Backend,
  BackendName,
  BatchOptions,
  BlindIndexHandle,
  CipherHandle,
  DecryptedBatch,
  Ed25519,
  Ed25519BatchItem,
  Primitives,
  RootKeyHandle,
  TaggedValue,
} from './backend/types.js';
export { MAX_SIV_AD_COMPONENTS } from './backend/siv-ad.js';
export type { SivAssociatedData } from './backend/siv-ad.js';
export { ERROR_CODES, SifreDBError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { KeyProvider, KeyVersionInfo, KeyStatus } from './keys/provider.js';

export { EncryptionContext, MAX_CONTEXT_FIELD_BYTES } from './context.js';
export type { EncryptionContextInit } from './context.js';

export { Vault } from './vault/vault.js';
export type { RandomizedAlgorithm, VaultOptions } from './vault/vault.js';
export { DeterministicVault } from './vault/deterministic-vault.js';
export type { DeterministicVaultOptions } from './vault/deterministic-vault.js';
export type { BaseVault, DecryptManyOptions, DecryptOptions, ReencryptOptions } from './vault/base-vault.js';

export { BlindIndex, DEFAULT_BLIND_INDEX_BITS } from './blind-index/blind-index.js';
export type {
  BlindIndexField,
  BlindIndexInput,
  BlindIndexInt,
  BlindIndexOptions,
  BlindIndexTerm,
  BlindIndexTransform,
  BlindIndexValue,
} from './blind-index/blind-index.js';
export { planBlindIndex } from './blind-index/planner.js';
export type { BlindIndexPlan, BlindIndexPlanInput } from './blind-index/planner.js';

export { Keyring, DEFAULT_CACHE_SIZE } from './keys/keyring.js';
export type { KeyringOptions, KeySource } from './keys/keyring.js';
export { StaticKeyProvider } from './keys/static.js';
export type { StaticKeyProviderOptions, StaticKeyVersion } from './keys/static.js';
export { TenantKeyRouter } from './keys/tenant-router.js';
export type { TenantKeyRouterOptions } from './keys/tenant-router.js';
export type { KeyMaterial } from './keys/material.js';

export { inspect, isEncrypted } from './format/inspect.js';
export { encodeRowAd } from './format/row-ad.js';
export type { BatchRowBindingOptions, RowAd, RowBindingOptions } from './format/row-ad.js';
export type { CiphertextInfo } from './format/inspect.js';
export type { AlgorithmName } from './format/envelope.js';
export { TEXT_PREFIX } from './format/text.js';
export { VALUE_TAG, valueTypeOf } from './format/value-codec.js';
export type { DecryptedValue, EncryptableValue, JsonValue, ValueOf, ValueTag, ValueType, ValueTypeMap } from './format/value-codec.js';

