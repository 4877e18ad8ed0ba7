/**
 * The default backend of the browser and edge entry: pure JS on @noble, with random bytes from
 * WebCrypto. Nothing here imports a `node:` module or reads `process`.
 */
import { registerBackendChooser } from './default.js';
import { createJsBackend } from './js/index.js';

registerBackendChooser(() => ({ backend: createJsBackend({ impl: 'noble' }), error: undefined }));

export { defaultBackendChoice, getBackend } from './default.js';
