//! Node.js binding of `sifredb-core`: converts arguments, calls the core, maps errors. Nothing here
//! decides anything about cryptography or the format.
#![deny(clippy::all)]

mod buffers;
mod ciphers;
mod errors;
mod fast;
mod fork;
mod primitives;
mod signatures;

pub use ciphers::{NativeBlindIndex, NativeCipher, NativeRootKey};
pub use primitives::*;
pub use signatures::*;

use napi::Env;
use napi_derive::napi;

use crate::errors::Code;
use crate::fast::Raw;

/// The fast-path functions (internal: `lib/backend/native.ts` is their only caller; see
/// `src/fast/calls.rs`). Also installs the `fork()` hook of the nonce pool, once per process.
#[napi(
    ts_return_type = "{ seal(cipher: object, envelope: Uint8Array): void; open(cipher: object, envelope: Uint8Array, out: Uint8Array): void; sealMany(cipher: object, buf: Uint8Array, plaintextLens: Uint32Array): void; resealMany(from: object, to: object, input: Uint8Array, envelopeLens: Uint32Array, output: Uint8Array): void; mac(index: object, message: Uint8Array, bits: number, out: Uint8Array): void; macField(index: object, field: string | Uint8Array, bits: number, out: Uint8Array): void; macMany(index: object, messages: Uint8Array, messageLens: Uint32Array, bits: number, out: Uint8Array): void; resealManyAsync(from: object, to: object, input: Uint8Array, envelopeLens: Uint32Array, output: Uint8Array): Promise<void>; openInto(cipher: object, input: Uint8Array, envelopeLens: Uint32Array, output: Uint8Array): void; sealFromAsync(cipher: object, input: Uint8Array, plaintextLens: Uint32Array, output: Uint8Array): Promise<void>; openIntoAsync(cipher: object, input: Uint8Array, envelopeLens: Uint32Array, output: Uint8Array): Promise<void>; chacha20Poly1305Encrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): void; chacha20Poly1305Decrypt(key: Uint8Array, nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array, out: Uint8Array): void; xchacha20Poly1305Encrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): void; xchacha20Poly1305Decrypt(key: Uint8Array, nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array, out: Uint8Array): void; aesSivEncrypt(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, out: Uint8Array): void; aesSivDecrypt(key: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array, out: Uint8Array): void; aesSivEncryptComponents(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, adLens: Uint32Array, out: Uint8Array): void; aesSivDecryptComponents(key: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array, adLens: Uint32Array, out: Uint8Array): void; hmacSha256(key: Uint8Array, message: Uint8Array, out: Uint8Array): void; hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number, out: Uint8Array): void }"
)]
pub fn fast_path(env: &Env) -> napi::Result<Raw, Code> {
    fork::install();
    fast::fast_path_object(env)
}
