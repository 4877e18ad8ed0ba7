/** Picks the engine once per process: node:crypto when the runtime has everything it needs, else @noble. */
import { SifreDBError } from '../../errors.js';
import type { Engine, EngineName } from './engine.js';
import { nobleEngine } from './noble-engine.js';
import { createNodeEngine } from './node-engine.js';

type NodeCrypto = typeof import('node:crypto');

const REQUIRED_CIPHERS = ['chacha20-poly1305', 'aes-256-cbc', 'aes-256-ecb', 'aes-256-ctr'];

async function loadNodeCrypto(): Promise<NodeCrypto | undefined> {
  try {
    const crypto: NodeCrypto = await import('node:crypto');
    // Bun, Deno and OpenSSL builds without ChaCha20 may expose node:crypto with pieces missing.
    const ciphers = new Set(crypto.getCiphers());
    if (typeof crypto.hkdfSync !== 'function' || !REQUIRED_CIPHERS.every((c) => ciphers.has(c))) return undefined;
    return crypto;
  } catch {
    // Browsers and other runtimes without node:crypto.
    return undefined;
  }
}

// Top-level await keeps every backend call synchronous while the module graph stays runtime-neutral.
const nodeEngine: Engine | undefined = await loadNodeCrypto().then((c) => (c ? createNodeEngine(c) : undefined));

/** Engine choice: `auto` prefers node:crypto; env `SIFREDB_JS_IMPL=noble|node` overrides `auto`. */
export type EngineChoice = EngineName | 'auto';

/** Returns the requested engine; `ERR_SIFREDB_BACKEND` when `node` is asked for but unavailable. */
export function selectEngine(choice: EngineChoice = 'auto'): Engine {
  let wanted = choice;
  if (wanted === 'auto') {
    const fromEnv = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
      ?.SIFREDB_JS_IMPL;
    if (fromEnv === 'noble' || fromEnv === 'node') wanted = fromEnv;
    else if (fromEnv !== undefined && fromEnv !== '' && fromEnv !== 'auto') {
      throw new SifreDBError('ERR_SIFREDB_BACKEND', 'SIFREDB_JS_IMPL must be one of node, noble, auto');
    }
  }
  if (wanted === 'noble') return nobleEngine;
  if (nodeEngine !== undefined) return nodeEngine;
  if (wanted === 'node') throw new SifreDBError('ERR_SIFREDB_BACKEND', 'node:crypto is not available in this runtime');
  return nobleEngine;
}

/** Whether the node:crypto engine can be used in this runtime. */
export const nodeEngineAvailable: boolean = nodeEngine !== undefined;
