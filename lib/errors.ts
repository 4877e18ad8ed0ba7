/** Stable error codes. Messages name the argument or field at fault, never plaintext or key bytes. */
export const ERROR_CODES = {
  /** Wrong type, size or range of an argument; invalid context; bad configuration. */
  input: 'ERR_SIFREDB_INPUT',
  /** Authentication failed: wrong key or context, or the ciphertext was altered. */
  auth: 'ERR_SIFREDB_AUTH',
  /** Not a SifreDB ciphertext, truncated, or an unsupported format/algorithm. */
  format: 'ERR_SIFREDB_FORMAT',
  /** Unknown or unreadable key version, or a key store that cannot be used. */
  key: 'ERR_SIFREDB_KEY',
  /** The requested backend cannot be loaded. */
  backend: 'ERR_SIFREDB_BACKEND',
  /** A key management service call failed. */
  kms: 'ERR_SIFREDB_KMS',
  /** A database connection or statement failed (batch jobs in `lib/db`, the CLI). */
  database: 'ERR_SIFREDB_DATABASE',
  /**
   * The configuration disagrees with the data or with the settings recorded in the database (a blind
   * index's bits or transforms, a context, a value type): nothing was written.
   */
  schema: 'ERR_SIFREDB_SCHEMA',
  /**
   * A write to an audited table through a path that cannot sign it in the data's transaction (an
   * integration's unsigned helper, a statement whose rows cannot be seen): refused, nothing written.
   */
  auditUnsigned: 'ERR_SIFREDB_AUDIT_UNSIGNED',
} as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Base class of every error SifreDB throws on purpose. `code` is stable; `message` is for humans. */
export class SifreDBError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SifreDBError';
    this.code = code;
  }
}

/**
 * A failure of item `index` of a batch argument `name`: message `name[index]: reason`, the same
 * `code` as `reason`, `cause` the un-prefixed reason, and an `index` property.
 */
export function indexedError(reason: unknown, name: string, index: number): SifreDBError {
  const cause = asSifreDBError(reason);
  const error = new SifreDBError(cause.code, `${name}[${index}]: ${cause.message}`, { cause });
  Object.defineProperty(error, 'index', { value: index, enumerable: true });
  return error;
}

/** Re-throws a backend error as a {@link SifreDBError} with the same code; anything unexpected becomes `ERR_SIFREDB_INPUT`. */
export function asSifreDBError(error: unknown): SifreDBError {
  if (error instanceof SifreDBError) return error;
  const code = (error as { code?: unknown })?.code;
  const message = (error as { message?: unknown })?.message;
  const known = Object.values(ERROR_CODES) as string[];
  return new SifreDBError(
    typeof code === 'string' && known.includes(code) ? (code as ErrorCode) : ERROR_CODES.input,
    typeof message === 'string' ? message : 'invalid input',
  );
}
