/**
 * The default backend in Node, Bun and Deno: `SIFREDB_BACKEND=native|js` forces one; otherwise the
 * native addon when it loads, else pure JS. A missing or incompatible binary (no prebuilt package for
 * the platform, a glibc too old, a bundler that dropped the `.node` file, Deno without --allow-ffi)
 * must never crash an import, so the automatic mode falls back and keeps the reason, in our own
 * words, in {@link backendError}. Importing this module registers the choice; it is made on first use.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { type BackendChoice, defaultBackendChoice, getBackend, registerBackendChooser } from './default.js';
import { readEnv } from './env.js';
import { jsBackend } from './js/index.js';
import { loadNativeBackend } from './native.js';

function chooseBackend(): BackendChoice {
  const requested = (readEnv('SIFREDB_BACKEND') ?? '').trim().toLowerCase();
  if (requested === 'js') return { backend: jsBackend, error: undefined };
  if (requested !== '' && requested !== 'native' && requested !== 'auto') {
    throw new SifreDBError(
      ERROR_CODES.input,
      `SIFREDB_BACKEND must be "native", "js" or "auto", got ${JSON.stringify(requested)}`,
    );
  }
  const native = loadNativeBackend();
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

registerBackendChooser(chooseBackend);

export { getBackend, defaultBackendChoice };
export type { Backend, BackendName } from './types.js';
