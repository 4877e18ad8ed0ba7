/**
 * The public API built on the backends: contexts, key providers and keyrings, the two vaults, blind
 * indexes, and the key-free format helpers. `lib/index.ts` re-exports everything here.
 */
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
export { FileKeyProvider, KEYSTORE_FORMAT, KEYSTORE_VERSION } from './keys/file.js';
export type { FileKeyProviderCreateOptions, FileKeyProviderOpenOptions, KeystoreFile, KeystoreKeyEntry } from './keys/file.js';
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

export { defineTable, loadSchema, parseSchema, Schema, TableSchema } from './schema/definition.js';
export { diffSettings, schemaRecords, settingsFingerprint } from './schema/settings.js';
export type { SettingsRecord, StoredColumnSettings } from './schema/settings.js';
export type {
  BlindIndexFieldSpec,
  BlindIndexSpec,
  CiphertextStorage,
  ColumnValueType,
  ContextSpec,
  DeterministicLookupSpec,
  EncryptedColumnSpec,
  PlainValueOf,
  ResolvedBlindIndex,
  ResolvedColumn,
  ResolvedDeterministicLookup,
  TableSchemaInit,
  TermStorage,
} from './schema/definition.js';
export { EncryptedTable } from './schema/encrypted-table.js';
export { applySchema, compareSettings, readRecordedSettings, schemaSql, SETTINGS_TABLE } from './schema/sql.js';
export type { SchemaSqlOptions, SettingsMismatch } from './schema/sql.js';
export { checkSchema } from './schema/check.js';
export type { CheckSchemaOptions, FindingKind, SchemaFinding } from './schema/check.js';
export type { EqualityQuery, PlainColumns, PlainRow, PlainRowInput, QueryOperator, StoredRow, WhereOptions } from './schema/encrypted-table.js';
export * from './keys/aws-kms.js';
export * from './db/index.js';
