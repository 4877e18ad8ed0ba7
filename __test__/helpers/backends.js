// Both backends side by side, for tests that compare them. The native addon must load here: a
// machine where it does not is a broken build for these tests, not a reason to skip them.
import { jsBackend } from '../../dist/backend/js/index.js';
import { loadNativeBackend } from '../../dist/backend/native.js';

const native = await loadNativeBackend();
if (!native.backend) {
  throw new Error(`the native addon did not load; run \`npm run build\` first (${native.error.message})`);
}

export const nativeBackend = native.backend;
export { jsBackend };
export const bothBackends = [nativeBackend, jsBackend];
