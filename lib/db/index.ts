/** Database batch jobs: re-encryption and column encryption, CHECK constraints, and the adapters they run on. */
export { encryptColumn, importRustColumn, reencryptColumn } from './column-job.js';
export type {
  BlindIndexColumn,
  ColumnJobAudit,
  ColumnJobOptions,
  DeterministicColumn,
  EncryptColumnOptions,
  ImportRustColumnOptions,
  JobProgress,
  JobResult,
  ReencryptColumnOptions,
  RowFailure,
} from './column-job.js';
export { applyColumnConstraints, ciphertextCheck, columnConstraints, constraintFor, MIN_TEXT_CIPHERTEXT_LENGTH, TEXT_CIPHERTEXT_PATTERN } from './constraints.js';
export type { ColumnConstraint, ColumnConstraintsOptions } from './constraints.js';
export { fromPGlite, fromPgPool, isPostgresUrl, openDatabase } from './database.js';
export type { Database, DbSession, OpenDatabaseOptions, PGliteLike, PgPoolLike, QueryResult } from './database.js';
