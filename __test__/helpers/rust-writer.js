// Builds and runs __test__/rust-writer (the published SifreDB Rust crates, `sifredb` and
// `sifredb-key-file` 0.1.1): a key directory and a few hundred values written by the crates
// themselves. The build is cargo's (cached in __test__/rust-writer/target); a machine without cargo
// or the crates fails the tests that need it, loudly.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const crateDir = fileURLToPath(new URL('../rust-writer/', import.meta.url));
let binary;

/** Builds the writer once per process (cargo skips the work when nothing changed). */
export function buildRustWriter() {
  if (binary) return binary;
  execFileSync(
    process.env.CARGO ?? 'cargo',
    ['build', '--release', '--locked', '--quiet', '--manifest-path', join(crateDir, 'Cargo.toml')],
    { stdio: ['ignore', 'ignore', 'inherit'], timeout: 15 * 60_000 },
  );
  binary = join(crateDir, 'target', 'release', 'sifredb-rust-writer');
  return binary;
}

/**
 * Runs the writer in a fresh temporary directory: `{ dir, keyDir, deterministicKey, currentKek,
 * values: [{ tenant, table, column, version, context, indexContext, plaintext, ciphertext,
 * blindIndex }], wrappedDeks: [{ kekId, dek, wrapped }] }`, bytes as Buffers.
 */
export function runRustWriter() {
  const dir = mkdtempSync(join(tmpdir(), 'sifredb-rust-'));
  const out = JSON.parse(execFileSync(buildRustWriter(), [dir], { maxBuffer: 64 << 20 }).toString());
  const hex = (s) => Buffer.from(s, 'hex');
  return {
    ...out,
    dir,
    values: out.values.map((v) => ({ ...v, plaintext: hex(v.plaintext), ciphertext: hex(v.ciphertext), blindIndex: hex(v.blindIndex) })),
    wrappedDeks: out.wrappedDeks.map((w) => ({ ...w, dek: hex(w.dek), wrapped: hex(w.wrapped) })),
  };
}
