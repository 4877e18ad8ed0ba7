use std::ptr;

use napi::bindgen_prelude::{BufferSlice, FromNapiValue};
use napi::{sys, Env};

use crate::errors::{input_error, JsResult};

/// Allocates a Node.js Buffer of `len` bytes and lets `fill` write it in place: the value is produced
/// straight into JS memory, with no Rust-side Vec and no external-buffer finalizer.
pub fn new_buffer<'env>(
    env: &'env Env,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> JsResult<()>,
) -> JsResult<BufferSlice<'env>> {
    let mut raw = ptr::null_mut();
    let mut data = ptr::null_mut();
    // SAFETY: napi_create_buffer writes a valid napi_value for a Buffer of `len` bytes into `raw`.
    let status = unsafe { sys::napi_create_buffer(env.raw(), len, &mut data, &mut raw) };
    if status != sys::Status::napi_ok {
        return Err(input_error(format!(
            "cannot allocate a buffer of {len} bytes"
        )));
    }
    // SAFETY: `raw` is the Buffer just created in this env.
    let mut buffer = unsafe { BufferSlice::from_napi_value(env.raw(), raw) }
        .map_err(|_| input_error("cannot access a new buffer"))?;
    fill(&mut buffer)?;
    Ok(buffer)
}

/// Copies bytes into a new Node.js Buffer.
pub fn copy_to_buffer<'env>(env: &'env Env, bytes: &[u8]) -> JsResult<BufferSlice<'env>> {
    new_buffer(env, bytes.len(), |out| {
        out.copy_from_slice(bytes);
        Ok(())
    })
}
