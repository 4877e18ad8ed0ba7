//! The raw RFC primitives on the fast path: arguments read as in the other callbacks (a shared
//! view copied once before it is read), the core's result written into the `out` Buffer that
//! JavaScript allocated (`lib/backend/native/primitives.ts`), and the Rust copy wiped.

use napi::sys;
use sifredb_core::primitives as core;
use zeroize::Zeroize;

use super::failure::{Failure, Outcome};
use super::views::{disjoint, typed, Input, View, U8};

/// A `Uint8Array` argument: its view, for the overlap check with `out`, and the bytes to read
/// (a copy when it is shared).
pub(super) unsafe fn bytes_arg(
    env: sys::napi_env,
    value: sys::napi_value,
    name: &str,
) -> Outcome<(View, Input)> {
    // SAFETY: per the caller, on the JS thread during the call that received `value`.
    unsafe {
        let view = typed(env, value, U8, name)?;
        Ok((view, Input::of(view)))
    }
}

/// Writes a primitive's result into `out`, which must be exactly as long and disjoint from every
/// input view; the result is wiped (it may be a plaintext or a key) whether or not it fits.
pub(super) unsafe fn write_out<T: AsRef<[u8]> + Zeroize>(
    env: sys::napi_env,
    out: sys::napi_value,
    inputs: &[View],
    result: sifredb_core::Result<T>,
) -> Outcome<()> {
    let mut bytes = result?;
    let written = (|| {
        // SAFETY: per the caller; `out` is checked writable (not shared) and disjoint below.
        let out = unsafe { typed(env, out, U8, "out")? }.writable("out")?;
        for &input in inputs {
            disjoint(input, out)?;
        }
        let bytes = bytes.as_ref();
        if out.len != bytes.len() {
            return Err(Failure::input(&format!(
                "out must be {} bytes",
                bytes.len()
            )));
        }
        // SAFETY: a plain ArrayBuffer's memory, alive during this call, written by no one else
        // (the JS thread is here) and disjoint from the inputs.
        unsafe { out.bytes_mut() }.copy_from_slice(bytes);
        Ok(())
    })();
    bytes.zeroize();
    written
}

/// The ChaCha20-Poly1305 family: `fn(key, nonce, message, aad)`.
pub(super) type Aead = fn(&[u8], &[u8], &[u8], &[u8]) -> sifredb_core::Result<Vec<u8>>;

/// An AEAD call on `[key, nonce, message, aad, out]`.
pub(super) unsafe fn aead(
    env: sys::napi_env,
    [key, nonce, message, aad, out]: [sys::napi_value; 5],
    message_name: &str,
    f: Aead,
) -> Outcome<()> {
    // SAFETY: per the caller; the views are read during this call only.
    unsafe {
        let (kv, key) = bytes_arg(env, key, "key")?;
        let (nv, nonce) = bytes_arg(env, nonce, "nonce")?;
        let (mv, message) = bytes_arg(env, message, message_name)?;
        let (av, aad) = bytes_arg(env, aad, "aad")?;
        let result = f(key.bytes(), nonce.bytes(), message.bytes(), aad.bytes());
        write_out(env, out, &[kv, nv, mv, av], result)
    }
}

/// An AEAD seal straight into `out` (no intermediate copy): `fn(key, nonce, plaintext, aad, out)`.
pub(super) type SealInto = fn(&[u8], &[u8], &[u8], &[u8], &mut [u8]) -> sifredb_core::Result<()>;

/// A ChaCha20-Poly1305 seal on `[key, nonce, plaintext, aad, out]`, written into `out`.
pub(super) unsafe fn aead_seal(
    env: sys::napi_env,
    [key, nonce, plaintext, aad, out]: [sys::napi_value; 5],
    f: SealInto,
) -> Outcome<()> {
    // SAFETY: as in `aead`; `out` is checked writable and disjoint from every input view, and
    // the inputs are only read (through `Input`, copies when shared) while it is written.
    unsafe {
        let (kv, key) = bytes_arg(env, key, "key")?;
        let (nv, nonce) = bytes_arg(env, nonce, "nonce")?;
        let (pv, plaintext) = bytes_arg(env, plaintext, "plaintext")?;
        let (av, aad) = bytes_arg(env, aad, "aad")?;
        let out = typed(env, out, U8, "out")?.writable("out")?;
        for input in [kv, nv, pv, av] {
            disjoint(input, out)?;
        }
        f(
            key.bytes(),
            nonce.bytes(),
            plaintext.bytes(),
            aad.bytes(),
            out.bytes_mut(),
        )?;
        Ok(())
    }
}

/// AES-256-SIV on `[key, message, ad, out]`.
pub(super) unsafe fn siv(
    env: sys::napi_env,
    [key, message, ad, out]: [sys::napi_value; 4],
    message_name: &str,
    f: fn(&[u8], &[u8], &[u8]) -> sifredb_core::Result<Vec<u8>>,
) -> Outcome<()> {
    // SAFETY: as in `aead`.
    unsafe {
        let (kv, key) = bytes_arg(env, key, "key")?;
        let (mv, message) = bytes_arg(env, message, message_name)?;
        let (av, ad) = bytes_arg(env, ad, "ad")?;
        let result = f(key.bytes(), message.bytes(), ad.bytes());
        write_out(env, out, &[kv, mv, av], result)
    }
}

/// HMAC-SHA256 on `[key, message, out]`.
pub(super) unsafe fn hmac(
    env: sys::napi_env,
    [key, message, out]: [sys::napi_value; 3],
) -> Outcome<()> {
    // SAFETY: as in `aead`.
    unsafe {
        let (kv, key) = bytes_arg(env, key, "key")?;
        let (mv, message) = bytes_arg(env, message, "message")?;
        let result = core::hmac_sha256(key.bytes(), message.bytes());
        write_out(env, out, &[kv, mv], result)
    }
}

/// HKDF-SHA256 on `[ikm, salt, info, length, out]`.
pub(super) unsafe fn hkdf(
    env: sys::napi_env,
    [ikm, salt, info, length, out]: [sys::napi_value; 5],
) -> Outcome<()> {
    // SAFETY: as in `aead`.
    unsafe {
        let (iv, ikm) = bytes_arg(env, ikm, "ikm")?;
        let (sv, salt) = bytes_arg(env, salt, "salt")?;
        let (fv, info) = bytes_arg(env, info, "info")?;
        let mut n = 0f64;
        let status = sys::napi_get_value_double(env, length, &mut n);
        if status != sys::Status::napi_ok || n.fract() != 0.0 || !(0.0..=1e15).contains(&n) {
            return Err(Failure::input("length must be 1..8160"));
        }
        let result = core::hkdf_sha256(ikm.bytes(), salt.bytes(), info.bytes(), n as usize);
        write_out(env, out, &[iv, sv, fv], result)
    }
}
