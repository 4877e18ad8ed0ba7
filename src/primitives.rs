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

/// AES-256-SIV (RFC 5297) with one associated-data string; returns SIV tag ‖ ciphertext.
#[napi]
pub fn aes_siv_encrypt<'env>(
    env: &'env Env,
    key: &[u8],
    plaintext: &[u8],
    ad: &[u8],
) -> Result<BufferSlice<'env>, Code> {
    bytes_out(env, core::aes_siv_encrypt(key, plaintext, ad))
}

/// Verifies and decrypts AES-256-SIV output; throws `ERR_SIFREDB_AUTH` on any mismatch.
#[napi]
pub fn aes_siv_decrypt<'env>(
    env: &'env Env,
    key: &[u8],
    ciphertext: &[u8],
    ad: &[u8],
) -> Result<BufferSlice<'env>, Code> {
    bytes_out(env, core::aes_siv_decrypt(key, ciphertext, ad))
}

/// ChaCha20-Poly1305 (RFC 8439); returns ciphertext ‖ tag.
#[napi]
pub fn chacha20_poly1305_encrypt<'env>(
    env: &'env Env,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<BufferSlice<'env>, Code> {
    bytes_out(
        env,
        core::chacha20_poly1305_encrypt(key, nonce, plaintext, aad),
    )
}

/// Verifies and decrypts ChaCha20-Poly1305 ciphertext ‖ tag.
#[napi]
pub fn chacha20_poly1305_decrypt<'env>(
    env: &'env Env,
    key: &[u8],
    nonce: &[u8],
    ciphertext_and_tag: &[u8],
    aad: &[u8],
) -> Result<BufferSlice<'env>, Code> {
    bytes_out(
        env,
        core::chacha20_poly1305_decrypt(key, nonce, ciphertext_and_tag, aad),
    )
}

/// XChaCha20-Poly1305 (24-byte nonce); returns ciphertext ‖ tag.
#[napi]
pub fn xchacha20_poly1305_encrypt<'env>(
    env: &'env Env,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<BufferSlice<'env>, Code> {
    bytes_out(
        env,
        core::xchacha20_poly1305_encrypt(key, nonce, plaintext, aad),
    )
}

/// Verifies and decrypts XChaCha20-Poly1305 ciphertext ‖ tag.
#[napi]
pub fn xchacha20_poly1305_decrypt<'env>(
    env: &'env Env,
    key: &[u8],
    nonce: &[u8],
    ciphertext_and_tag: &[u8],
    aad: &[u8],
) -> Result<BufferSlice<'env>, Code> {
    bytes_out(
        env,
        core::xchacha20_poly1305_decrypt(key, nonce, ciphertext_and_tag, aad),
    )
}

/// HKDF-SHA256 (RFC 5869); `length` is 1..8160.
#[napi]
pub fn hkdf_sha256<'env>(
    env: &'env Env,
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    length: i64,
) -> Result<BufferSlice<'env>, Code> {
    let length = usize::try_from(length).map_err(|_| input_error("length must be 1..8160"))?;
    bytes_out(env, core::hkdf_sha256(ikm, salt, info, length))
}

/// HMAC-SHA256; returns 32 bytes.
#[napi]
pub fn hmac_sha256<'env>(
    env: &'env Env,
    key: &[u8],
    message: &[u8],
) -> Result<BufferSlice<'env>, Code> {
    bytes_out(env, core::hmac_sha256(key, message))
}

/// `n` bytes from the operating system's CSPRNG (0..65536).
#[napi]
pub fn random_bytes<'env>(env: &'env Env, n: i64) -> Result<BufferSlice<'env>, Code> {
    let n = usize::try_from(n).map_err(|_| input_error("n must be 0..65536"))?;
    bytes_out(env, core::random_bytes(n))
}
