/**
 * SifreDB for browsers and edge runtimes (chosen by the `browser`, `worker`, `workerd` and
 * `edge-light` export conditions): the pure-JS backend on @noble with WebCrypto's random bytes, and
 * the API that runs without Node — contexts, keyrings, the static key provider, both vaults, blind
 * indexes and the format helpers. The same bytes as the Node entry. No `node:` import, and nothing is
 * read from `process` at load.
 *
 * @packageDocumentation
 */
// First: registers the default backend before any module below can ask for it.
import { defaultBackendChoice } from './backend/web.js';
import type { BackendName, Ed25519, Primitives } from './backend/types.js';

export { getBackend } from './backend/web.js';

const choice = defaultBackendChoice();

/** Always `'js'` here: the pure-JS backend. */
export const backend: BackendName = choice.backend.name;

/** Always `undefined` here: the pure-JS backend is the only one, not a fallback. */
export const backendError: Error | undefined = choice.error;

/** The raw RFC primitives (see {@link Primitives}); the same bytes as in Node. */
export const primitives: Primitives = choice.backend.primitives;

/** Ed25519 of the backend in use (audit signatures; see {@link Ed25519}); the same bytes and verdicts on both backends. */
export const ed25519: Ed25519 = choice.backend.ed25519;

export * from './portable-api.js';
