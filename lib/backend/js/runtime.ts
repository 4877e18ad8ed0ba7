/**
 * Picks the engine: node:crypto when the runtime has everything it needs, else @noble. node:crypto is
 * looked up with `process.getBuiltinModule` on first use rather than imported, so this module loads
 * in browsers and edge runtimes (no `node:` import, nothing read at load) and stays synchronous
 * everywhere (no top-level await, so `require()` works).
 */
import { SifreDBError } from '../../errors.js';
import type { Engine, EngineName } from './engine.js';
import { nobleEngine } from './noble-engine.js';
import { createNodeEngine } from './node-engine.js';
import { readEnv } from '../env.js';

type NodeCrypto = typeof import('node:crypto');

const REQUIRED_CIPHERS = ['chacha20-poly1305', 'aes-256-cbc', 'aes-256-ecb', 'aes-256-ctr'];

function loadNodeCrypto(): NodeCrypto | undefined {
  try {
    const process = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const crypto = process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
    if (crypto === undefined) return undefined;
    // Bun, Deno and OpenSSL builds without ChaCha20 may expose node:crypto with pieces missing.
    const ciphers = new Set(crypto.getCiphers());
    if (typeof crypto.hkdfSync !== 'function' || !REQUIRED_CIPHERS.every((c) => ciphers.has(c))) return undefined;
    return crypto;
  } catch {
    return undefined;
  }
}

let nodeEngine: Engine | null | undefined;
function getNodeEngine(): Engine | undefined {
  if (nodeEngine === undefined) {
    const crypto = loadNodeCrypto();
    nodeEngine = crypto === undefined ? null : createNodeEngine(crypto);
  }
  return nodeEngine ?? undefined;
}

/** Engine choice: `auto` prefers node:crypto; env `SIFREDB_JS_IMPL=noble|node` overrides `auto`. */
export type EngineChoice = EngineName | 'auto';

/** Returns the requested engine; `ERR_SIFREDB_BACKEND` when `node` is asked for but unavailable. */
export function selectEngine(choice: EngineChoice = 'auto'): Engine {
  let wanted = choice;
  if (wanted === 'auto') {
    const fromEnv = readEnv('SIFREDB_JS_IMPL');
    if (fromEnv === 'noble' || fromEnv === 'node') wanted = fromEnv;
    else if (fromEnv !== undefined && fromEnv !== '' && fromEnv !== 'auto') {
      throw new SifreDBError('ERR_SIFREDB_BACKEND', 'SIFREDB_JS_IMPL must be one of node, noble, auto');
    }
  }
  if (wanted === 'noble') return nobleEngine;
  const node = getNodeEngine();
  if (node !== undefined) return node;
  if (wanted === 'node') throw new SifreDBError('ERR_SIFREDB_BACKEND', 'node:crypto is not available in this runtime');
  return nobleEngine;
}

/** Whether the node:crypto engine can be used in this runtime. */
export function nodeEngineAvailable(): boolean {
  return getNodeEngine() !== undefined;
}
