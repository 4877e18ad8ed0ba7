/**
 * AWS KMS key provider (moved to ./kms/aws.ts, on the shared envelope core); this module keeps the
 * old import path and re-exports the KMS keyring pieces that belong to the public API.
 */
export {
  AwsKmsAdapter,
  AwsKmsProvider,
  type AwsKmsCacheOptions,
  type AwsKmsProviderOptions,
  type AwsKmsRewrapResult,
  type KmsClientLike,
} from './kms/aws.js';
export { SifreDBKmsError, kmsServiceError, type KmsFailureReason, type KmsServiceFailure } from './kms/errors.js';
export { autoRefresh, type AutoRefresh, type AutoRefreshOptions, type Refreshable } from './kms/auto-refresh.js';
export { bindingAad, bindingContext, type GeneratedKey, type KeyBinding, type KmsAdapter, type WrappedKey } from './kms/adapter.js';
export {
  EnvelopeKeyProvider,
  openEnvelope,
  type EnvelopeInit,
  type EnvelopeOpenMode,
  type EnvelopeOptions,
  type KmsCacheOptions,
  type KmsRewrapResult,
} from './kms/envelope.js';
export {
  FileKeyringStore,
  KMS_KEYRING_TYPE,
  kmsEncryptionContext,
  validateKeyringDocument,
  type FileKeyringStoreOptions,
  type KeyringStore,
  type KmsKeyringDocument,
  type KmsKeyringDocumentV1,
  type KmsKeyringDocumentV2,
  type KmsKeyringVersion,
  type KmsWrappedKeyVersion,
} from './kms/keyring.js';
