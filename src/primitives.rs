//! The napi-rs export of `randomBytes`; the other raw primitives are fast-path callbacks
//! (`src/fast/primitives.rs`).

use napi::bindgen_prelude::BufferSlice;
use napi::Env;
use napi_derive::napi;
use sifredb_core::primitives as core;
use zeroize::Zeroize;

use crate::buffers::copy_to_buffer;
use napi::Result;

use crate::errors::{input_error, to_js, Code};

/// A primitive's output (or its error, thrown) as a new Buffer.
fn bytes_out<'env, T: AsRef<[u8]> + Zeroize>(
    env: &'env Env,
    output: sifredb_core::Result<T>,
) -> Result<BufferSlice<'env>, Code> {
    // The Rust copy of a decrypted plaintext or derived key is wiped once JS has its own.
    let mut bytes = output.map_err(to_js)?;
    let buffer = copy_to_buffer(env, bytes.as_ref());
    bytes.zeroize();
    buffer
}

/// `n` bytes from the operating system's CSPRNG (0..65536).
#[napi]
pub fn random_bytes<'env>(env: &'env Env, n: i64) -> Result<BufferSlice<'env>, Code> {
    let n = usize::try_from(n).map_err(|_| input_error("n must be 0..65536"))?;
    bytes_out(env, core::random_bytes(n))
}
