/**
 * The public API of the Node entry: everything in {@link ./portable-api.ts}, plus what needs Node
 * (the key file, AWS KMS, table schemas and the database jobs). `lib/index.ts` re-exports it.
 */
export * from './portable-api.js';
export { FileKeyProvider, KEYSTORE_FORMAT, KEYSTORE_VERSION } from './keys/file.js';
export type { FileKeyProviderCreateOptions, FileKeyProviderOpenOptions, KeystoreFile, KeystoreKeyEntry } from './keys/file.js';

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
export {
  parseVaultKey,
  VAULT_TRANSIT_PROVIDER,
  VaultTransitAdapter,
  VaultTransitProvider,
  type VaultAppRoleCredentials,
  type VaultTransitConnection,
  type VaultTransitProviderOptions,
} from './keys/kms/vault.js';
export { MultiKmsProvider, type MultiKmsProviderOptions } from './keys/kms/multi.js';
export { GcpKmsAdapter, GcpKmsProvider } from './keys/kms/gcp.js';
export type { GcpKmsAdapterOptions, GcpKmsClientLike, GcpKmsProviderOptions } from './keys/kms/gcp.js';
export { AzureKeyVaultAdapter, AzureKeyVaultProvider } from './keys/kms/azure.js';
export type { AzureKeyVaultAdapterOptions, AzureKeyVaultProviderOptions, AzureTokenCredentialLike, AzureWrapAlgorithm } from './keys/kms/azure.js';
export * from './db/index.js';
export * from './rust-import/index.js';

// Audit signatures (docs/AUDIT.md).
export * from './audit/index.js';
export { AuditKeyFile, AuditSigner, AUDIT_KEYS_FORMAT, AUDIT_PUBLIC_KEYS_FORMAT, formatPublicKeys, parsePublicKeys } from './keys/audit-keys.js';
export type { AuditKeyFileOpenOptions, AuditPublicKey } from './keys/audit-keys.js';
export {
  AUDIT_FORMAT_VERSION,
  auditHash,
  auditKeyId,
  decodeAuditCheckpoint,
  decodeAuditRecord,
  encodeAuditCheckpoint,
  encodeAuditRecord,
  storedValueHash,
} from './format/audit-record.js';
export type { AuditCheckpoint, AuditColumn, AuditOperation, AuditRecord } from './format/audit-record.js';
