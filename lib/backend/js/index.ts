/**
 * The pure-JS backend: the same API and bytes as the native addon, on node:crypto where the runtime
 * has it and @noble everywhere else.
 */
import { SifreDBError } from '../../errors.js';
import type { Backend } from '../types.js';
import type { EngineName } from './engine.js';
import { RootKey } from './keys.js';
import { NoncePool } from './nonce-pool.js';
import { jsEd25519 } from './ed25519.js';
import { createPrimitives } from './primitives.js';
import { type EngineChoice, selectEngine } from './runtime.js';

export type { EngineChoice } from './runtime.js';
export type { EngineName } from './engine.js';
export { nodeEngineAvailable } from './runtime.js';

/** Options of {@link createJsBackend}. */
export interface JsBackendOptions {
  /**
   * `node` (node:crypto/OpenSSL), `noble` (pure JS) or `auto` (default: node when available; the
   * `SIFREDB_JS_IMPL` environment variable overrides `auto`). Both give identical bytes.
   */
  impl?: EngineChoice;
}

/** A pure-JS backend that also reports which engine it runs on. */
export interface JsBackend extends Backend {
  readonly name: 'js';
  readonly impl: EngineName;
}

/** Creates a pure-JS backend; `ERR_SIFREDB_BACKEND` if `impl: 'node'` is asked for without node:crypto. */
export function createJsBackend(options: JsBackendOptions = {}): JsBackend {
  const impl = options.impl ?? 'auto';
  if (impl !== 'auto' && impl !== 'node' && impl !== 'noble') {
    throw new SifreDBError('ERR_SIFREDB_INPUT', 'impl must be one of node, noble, auto');
  }
  const engine = selectEngine(impl);
  const nonces = new NoncePool(engine);
  return Object.freeze({
    name: 'js' as const,
    impl: engine.name,
    primitives: Object.freeze(createPrimitives(engine)),
    ed25519: jsEd25519,
    importRootKey: (version: number, material: Uint8Array) => new RootKey(engine, nonces, version, material),
  });
}

let defaultBackend: JsBackend | undefined;
const getDefault = (): JsBackend => (defaultBackend ??= createJsBackend());

/**
 * The default pure-JS backend (engine chosen as for `impl: 'auto'`). Created on first use, so a bad
 * `SIFREDB_JS_IMPL` surfaces as `ERR_SIFREDB_BACKEND` from a call rather than failing every import.
 */
export const jsBackend: JsBackend = Object.freeze({
  name: 'js' as const,
  get impl() {
    return getDefault().impl;
  },
  get primitives() {
    return getDefault().primitives;
  },
  ed25519: jsEd25519,
  importRootKey: (version: number, material: Uint8Array) => getDefault().importRootKey(version, material),
});
