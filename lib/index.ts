/**
 * SifreDB: field-level encryption for Node.js.
 *
 * @packageDocumentation
 */
import { getBackend } from './backend/index.js';
import type { Primitives } from './backend/types.js';

export { backend, backendError, getBackend } from './backend/index.js';
export type {
  Backend,
  BackendName,
  BatchOptions,
  BlindIndexHandle,
  CipherHandle,
  DecryptedBatch,
  Primitives,
  RootKeyHandle,
  TaggedValue,
} from './backend/types.js';
export { ERROR_CODES, SifreDBError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { KeyProvider, KeyVersionInfo, KeyStatus } from './keys/provider.js';

/** The raw RFC primitives of the backend in use (see {@link Primitives}); the same bytes on both backends. */
export const primitives: Primitives = getBackend().primitives;

export * from './api.js';
