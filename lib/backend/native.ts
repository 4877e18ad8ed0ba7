/** The native backend (the napi-rs addon): loads it and wraps its keys as backend handles. */
import { ALGORITHM } from '../format/envelope.js';
import { type AddonModule, loadAddon } from './addon-loader.js';
import type { Backend, RandomizedAlgorithmId, RootKeyHandle } from './types.js';
import type * as Addon from '../../index.js';
import { call, type FastPath, requireBytes } from './native/addon.js';
import { NativeBlindIndexHandle } from './native/blind-index.js';
import { NativeCipherHandle } from './native/cipher.js';
import { nativeEd25519 } from './native/ed25519.js';
import { nativePrimitives } from './native/primitives.js';

function wrapRootKey(root: Addon.NativeRootKey, fast: FastPath): RootKeyHandle {
  const version = root.version;
  return {
    version,
    // Rust rejects any algorithm but 1 and 2 before a handle exists.
    randomizedCipher: (algorithm: RandomizedAlgorithmId, context: Uint8Array) =>
      new NativeCipherHandle(call(() => root.randomizedCipher(algorithm, context)), fast, version, algorithm),
    deterministicCipher: (context: Uint8Array) =>
      new NativeCipherHandle(call(() => root.deterministicCipher(context)), fast, version, ALGORITHM.aesSiv),
    blindIndex: (context: Uint8Array, indexName: Uint8Array) =>
      new NativeBlindIndexHandle(call(() => root.blindIndex(context, indexName)), fast, version),
  };
}

/** Loads the native addon, or reports why it cannot be loaded on this platform. */
export function loadNativeBackend(): { backend: Backend; error?: undefined } | { backend?: undefined; error: Error } {
  let addon: AddonModule;
  try {
    addon = loadAddon();
  } catch (error) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
  let fast: FastPath;
  let ed25519;
  try {
    fast = addon.fastPath();
    ed25519 = nativeEd25519(addon.ed25519Path());
  } catch (error) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
  const backend: Backend = {
    name: 'native',
    primitives: nativePrimitives(addon, fast),
    ed25519,
    importRootKey(version, material) {
      requireBytes(material, 'material');
      return wrapRootKey(call(() => new addon.NativeRootKey(version, material)), fast);
    },
  };
  return { backend };
}
