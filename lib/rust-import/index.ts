/** Reading what SifreDB for Rust wrote (crates `sifredb`, `sifredb-key-file` 0.1.1). Node-only. */
export { RUST_DEFAULT_TENANT, rustContextString, rustIndexContextString } from './context.js';
export type { RustContext, RustIndexContext } from './context.js';
export { RUST_DETERMINISTIC_KEY_LENGTH, RustDeterministicVault } from './deterministic.js';
export type { RustDeterministicVaultOptions } from './deterministic.js';
export { RUST_BLIND_INDEX_LENGTH, RustKeyDirectory, rustBlindIndexTerm } from './key-directory.js';
export type { RustKek, RustKeyDirectoryOptions } from './key-directory.js';
export type { RustKeyFileOptions } from './key-file.js';
export { openStoredRustValue, rustTextCandidates } from './stored.js';
export type { RustTextEncoding } from './stored.js';
