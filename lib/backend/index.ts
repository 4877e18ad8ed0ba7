import { ERROR_CODES, SifreDBError } from '../errors.js';
import { jsBackend } from './js/index.js';
import { loadNativeBackend } from './native.js';
import type { Backend, BackendName } from './types.js';

/**
 * Picks the backend once, at import: `SIFREDB_BACKEND=native|js` forces one; otherwise the native
 * addon when it loads, else pure JS. A missing or incompatible binary (no prebuilt package for the
 * platform, a glibc too old, a bundler that dropped the `.node` file) must never crash an import, so
 * the automatic mode falls back silently and keeps the reason in {@link backendError}.
 */
async function selectBackend(): Promise<{ backend: Backend; error: Error | undefined }> {
  const requested = (process.env.SIFREDB_BACKEND ?? '').trim().toLowerCase();
  if (requested === 'js') return { backend: jsBackend, error: undefined };
  if (requested !== '' && requested !== 'native' && requested !== 'auto') {
    throw new SifreDBError(
      ERROR_CODES.input,
      `SIFREDB_BACKEND must be "native", "js" or "auto", got ${JSON.stringify(requested)}`,
    );
  }
  const native = await loadNativeBackend();
  if (native.backend) return { backend: native.backend, error: undefined };
  if (requested === 'native') {
    throw new SifreDBError(
      ERROR_CODES.backend,
      `SIFREDB_BACKEND=native but the native addon could not be loaded: ${native.error.message}`,
      { cause: native.error },
    );
  }
  return { backend: jsBackend, error: native.error };
}

const selected = await selectBackend();

/** The backend every API object uses unless given another one. */
export function getBackend(): Backend {
  return selected.backend;
}

/** `'native'` or `'js'`: the backend in use. */
export const backend: BackendName = selected.backend.name;

/** Why the native addon did not load when the pure-JS backend was chosen automatically; `undefined` otherwise. */
export const backendError: Error | undefined = selected.error;

export type { Backend, BackendName } from './types.js';
