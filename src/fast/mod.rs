//! The hot path: plain N-API callbacks, without napi-rs's per-call argument machinery.
//!
//! A napi-rs class method costs a few hundred nanoseconds per call (borrow tracking, instance
//! unwrapping, argument conversion), more than sealing a short value. These callbacks do only
//! what a call needs: read the arguments (an external holding the cipher, and typed-array views),
//! run the core, and throw on error. Outputs are allocated by JavaScript (`Buffer.allocUnsafe`,
//! pooled) and filled here, so no Buffer is created on the native side.
//!
//! Batches are one call over one buffer: `lib/backend/native.ts` lays the values out back to back
//! (see `sifredb_core::batch`), the core seals or opens them in place, and JavaScript cuts the
//! buffer into `Buffer` views. The async forms run the same work on the libuv thread pool.
//!
//! These functions are internal (`lib/backend/native.ts` is their only caller), but their
//! soundness does not rest on the caller: any argument either works or throws.
//! - A typed array on a `SharedArrayBuffer` (which another thread may rewrite) is copied once
//!   before it is read, and refused where it would be written. Batch lengths are copied once.
//! - The `…Async` forms own their memory: inputs are copied on the JS thread when called, the
//!   thread pool works on those copies, and the result is copied into the caller's buffer on the
//!   JS thread at completion, only if that buffer is still attached and as long (else the promise
//!   rejects with `ERR_SIFREDB_INPUT`). Detaching or resizing a buffer meanwhile is harmless.
//! - Every callback body runs under `catch_unwind`: a panic becomes `ERR_SIFREDB_BACKEND`, never
//!   an abort.

mod calls;
mod ed25519;
mod failure;
mod handles;
mod primitives;
mod siv_vector;
mod views;
mod work;

use std::ffi::CString;
use std::ptr;

use napi::{sys, Env};

use crate::errors::Code;
pub use handles::{cipher_external, index_external, Raw, SharedCipher};

/// An N-API callback, as the table in [`calls`] lists them.
type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// The object of fast-path functions (see the module documentation).
pub fn fast_path_object(env: &Env) -> napi::Result<Raw, Code> {
    functions_object(env, calls::FUNCTIONS)
}

/// The object of Ed25519 functions (`src/fast/ed25519.rs`), on the same frame as the fast path.
pub fn ed25519_object(env: &Env) -> napi::Result<Raw, Code> {
    functions_object(env, ed25519::FUNCTIONS)
}

fn functions_object(env: &Env, functions: &[(&str, Callback)]) -> napi::Result<Raw, Code> {
    let env = env.raw();
    // SAFETY: N-API calls on the JS thread creating plain functions.
    unsafe {
        let mut object = ptr::null_mut();
        if sys::napi_create_object(env, &mut object) != sys::Status::napi_ok {
            return Err(handles::status_error("create the fast-path object"));
        }
        for &(name, callback) in functions {
            let c_name =
                CString::new(name).map_err(|_| handles::status_error("name a function"))?;
            let mut function = ptr::null_mut();
            let status = sys::napi_create_function(
                env,
                c_name.as_ptr(),
                name.len() as isize,
                Some(callback),
                ptr::null_mut(),
                &mut function,
            );
            if status != sys::Status::napi_ok
                || sys::napi_set_named_property(env, object, c_name.as_ptr(), function)
                    != sys::Status::napi_ok
            {
                return Err(handles::status_error("create a fast-path function"));
            }
        }
        Ok(Raw(object))
    }
}
