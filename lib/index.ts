/**
 * SifreDB: field-level encryption for Node.js.
 *
 * @packageDocumentation
 */
// First: registers how the default backend is chosen, before any module below can ask for it.
import { defaultBackendChoice } from './backend/index.js';
import type { BackendName, Ed25519, Primitives } from './backend/types.js';

export { getBackend } from './backend/index.js';

const choice = defaultBackendChoice();

/** `'native'` or `'js'`: the backend in use. */
export const backend: BackendName = choice.backend.name;

/**
 * Why the native addon is not in use when the pure-JS backend was chosen automatically (an
 * `ERR_SIFREDB_BACKEND` error in SifreDB's words, its `cause` the loader's); `undefined` otherwise.
 */
export const backendError: Error | undefined = choice.error;

/** The raw RFC primitives of the backend in use (see {@link Primitives}); the same bytes on both backends. */
export const primitives: Primitives = choice.backend.primitives;

/** Ed25519 of the backend in use (audit signatures; see {@link Ed25519}); the same bytes and verdicts on both backends. */
export const ed25519: Ed25519 = choice.backend.ed25519;

export * from './api.js';
