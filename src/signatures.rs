//! Ed25519 for audit signatures: an object of plain N-API functions on the fast-path frame
//! (`src/fast/ed25519.rs`), apart from `fastPath()` so that each table stays one concern.

use napi::Env;
use napi_derive::napi;

use crate::errors::Code;
use crate::fast::Raw;

/// The Ed25519 functions (internal: `lib/backend/native/ed25519.ts` is their only caller).
#[napi(
    ts_return_type = "{ ed25519PublicKey(secretKey: Uint8Array, out: Uint8Array): void; ed25519Sign(secretKey: Uint8Array, message: Uint8Array, out: Uint8Array): void; ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, out: Uint8Array): void; ed25519VerifyBatch(publicKeys: Uint8Array, messages: Uint8Array, messageLens: Uint32Array, signatures: Uint8Array, out: Uint8Array): void }"
)]
pub fn ed25519_path(env: &Env) -> napi::Result<Raw, Code> {
    crate::fast::ed25519_object(env)
}
