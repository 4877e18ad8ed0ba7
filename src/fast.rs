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

use std::ffi::{c_char, c_void, CString};
use std::ptr::{self, NonNull};
use std::slice;
use std::sync::Arc;

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, Env, ValueType};
use sifredb_core::{BatchError, BatchResult, BlindIndexKey, Cipher};

use zeroize::Zeroizing;

use crate::errors::{input_error, Code};

/// A cipher as the fast path holds it.
pub type SharedCipher = Arc<dyn Cipher>;

/// Marks externals made by [`cipher_external`], so that no other external is ever dereferenced
/// as a cipher.
static CIPHER_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x5369_6672_6544_4201,
    upper: 0x0c1f_3e5a_7d21_9b47,
};
/// Marks externals made by [`index_external`].
static INDEX_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x5369_6672_6544_4202,
    upper: 0x6a03_94d1_c2e8_5f10,
};

/// A raw N-API value returned from a `#[napi]` function as is.
pub struct Raw(sys::napi_value);

impl TypeName for Raw {
    fn type_name() -> &'static str {
        "object"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Raw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

fn status_error(what: &str) -> napi::Error<Code> {
    input_error(format!("cannot {what}"))
}

unsafe extern "C" fn drop_cipher(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Box<SharedCipher>` leaked by `cipher_external`; the finalizer runs once.
    drop(unsafe { Box::from_raw(data.cast::<SharedCipher>()) });
}

unsafe extern "C" fn drop_index(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: as in `drop_cipher`, for `index_external`.
    drop(unsafe { Box::from_raw(data.cast::<Arc<BlindIndexKey>>()) });
}

/// Wraps `data` (a leaked box) in a type-tagged external; frees it if that fails.
unsafe fn tagged_external(
    env: sys::napi_env,
    data: *mut c_void,
    finalize: unsafe extern "C" fn(sys::napi_env, *mut c_void, *mut c_void),
    tag: &sys::napi_type_tag,
) -> napi::Result<Raw, Code> {
    let mut value = ptr::null_mut();
    // SAFETY: plain N-API calls on the current env; on success the finalizer owns `data`.
    let status = unsafe {
        sys::napi_create_external(env, data, Some(finalize), ptr::null_mut(), &mut value)
    };
    if status != sys::Status::napi_ok {
        // SAFETY: not handed over, so still ours to free.
        unsafe { finalize(env, data, ptr::null_mut()) };
        return Err(status_error("create a handle"));
    }
    // SAFETY: `value` is the external just created.
    if unsafe { sys::napi_type_tag_object(env, value, tag) } != sys::Status::napi_ok {
        return Err(status_error("tag a handle"));
    }
    Ok(Raw(value))
}

/// An external holding `cipher`, for the fast-path functions.
pub fn cipher_external(env: &Env, cipher: SharedCipher) -> napi::Result<Raw, Code> {
    let data = Box::into_raw(Box::new(cipher)).cast::<c_void>();
    // SAFETY: `data` is a leaked `Box<SharedCipher>`, which `drop_cipher` frees.
    unsafe { tagged_external(env.raw(), data, drop_cipher, &CIPHER_TAG) }
}

/// An external holding a blind-index key, for the fast-path functions.
pub fn index_external(env: &Env, key: Arc<BlindIndexKey>) -> napi::Result<Raw, Code> {
    let data = Box::into_raw(Box::new(key)).cast::<c_void>();
    // SAFETY: `data` is a leaked `Box<Arc<BlindIndexKey>>`, which `drop_index` frees.
    unsafe { tagged_external(env.raw(), data, drop_index, &INDEX_TAG) }
}

/// A failure to report to JavaScript: a code, a message, and for batches the record index.
struct Failure {
    code: &'static str,
    message: String,
    index: Option<usize>,
}

impl Failure {
    fn input(message: &str) -> Self {
        Self {
            code: "ERR_SIFREDB_INPUT",
            message: message.to_owned(),
            index: None,
        }
    }
}

impl From<sifredb_core::Error> for Failure {
    fn from(error: sifredb_core::Error) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
            index: None,
        }
    }
}

impl From<BatchError> for Failure {
    fn from(error: BatchError) -> Self {
        Self {
            code: error.error.code(),
            message: error.error.to_string(),
            index: Some(error.index),
        }
    }
}

type Outcome<T> = Result<T, Failure>;

/// Builds the JS error of `failure`: `code` set, and `index` for a batch record.
unsafe fn error_value(env: sys::napi_env, failure: &Failure) -> sys::napi_value {
    let code = js_string(env, failure.code);
    let message = js_string(env, &failure.message);
    let mut error = ptr::null_mut();
    // SAFETY: N-API calls on the current env with values created above.
    unsafe {
        sys::napi_create_error(env, code, message, &mut error);
        if let Some(index) = failure.index {
            let mut n = ptr::null_mut();
            sys::napi_create_double(env, index as f64, &mut n);
            sys::napi_set_named_property(env, error, c"index".as_ptr(), n);
        }
    }
    error
}

unsafe fn js_string(env: sys::napi_env, s: &str) -> sys::napi_value {
    let mut value = ptr::null_mut();
    // SAFETY: `s` is valid UTF-8 of the given length.
    unsafe {
        sys::napi_create_string_utf8(
            env,
            s.as_ptr().cast::<c_char>(),
            s.len() as isize,
            &mut value,
        )
    };
    value
}

/// Throws `failure` (unless an exception is already pending) and returns `undefined`'s stand-in.
unsafe fn throw(env: sys::napi_env, failure: &Failure) -> sys::napi_value {
    let mut pending = false;
    // SAFETY: N-API calls on the current env.
    unsafe {
        sys::napi_is_exception_pending(env, &mut pending);
        if !pending {
            sys::napi_throw(env, error_value(env, failure));
        }
    }
    ptr::null_mut()
}

/// Reads the callback's arguments; missing ones are `undefined`.
unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> [sys::napi_value; N] {
    let mut argv = [ptr::null_mut(); N];
    let mut argc = N;
    // SAFETY: `argv` has room for `argc` values.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    argv
}

/// The data of a type-tagged external, or an input failure for anything else.
unsafe fn external<T>(
    env: sys::napi_env,
    value: sys::napi_value,
    tag: &sys::napi_type_tag,
) -> Outcome<&'static T> {
    let mut ok = false;
    // SAFETY: a plain N-API query; it fails (status != ok) for non-objects.
    let status = unsafe { sys::napi_check_object_type_tag(env, value, tag, &mut ok) };
    if status != sys::Status::napi_ok || !ok {
        return Err(Failure::input("handle is not a SifreDB native handle"));
    }
    let mut data = ptr::null_mut();
    // SAFETY: the tag proves `value` is one of our externals holding a `T`.
    if unsafe { sys::napi_get_value_external(env, value, &mut data) } != sys::Status::napi_ok
        || data.is_null()
    {
        return Err(Failure::input("handle is not a SifreDB native handle"));
    }
    // SAFETY: the external (alive for this call, as it is an argument) owns the boxed `T`. The
    // 'static lifetime never escapes a callback: callers clone the `Arc` when they keep it.
    Ok(unsafe { &*data.cast::<T>() })
}

/// The cipher of a handle made by [`cipher_external`].
unsafe fn cipher_arg(env: sys::napi_env, value: sys::napi_value) -> Outcome<&'static SharedCipher> {
    // SAFETY: `CIPHER_TAG` marks externals holding a `SharedCipher`.
    unsafe { external::<SharedCipher>(env, value, &CIPHER_TAG) }
}

/// The key of a handle made by [`index_external`].
unsafe fn index_arg(
    env: sys::napi_env,
    value: sys::napi_value,
) -> Outcome<&'static Arc<BlindIndexKey>> {
    // SAFETY: `INDEX_TAG` marks externals holding an `Arc<BlindIndexKey>`.
    unsafe { external::<Arc<BlindIndexKey>>(env, value, &INDEX_TAG) }
}

/// The bytes viewed by a typed array: its address and length in bytes.
#[derive(Clone, Copy)]
struct View {
    data: *mut u8,
    /// Length in bytes.
    len: usize,
    /// Backed by something other than a plain `ArrayBuffer` (a `SharedArrayBuffer`): another
    /// thread may write it at any time, so it is copied before it is read and never written.
    shared: bool,
}

// SAFETY: a `View` is only an address; whoever dereferences it upholds the module's contract.
unsafe impl Send for View {}

impl View {
    fn end(self) -> usize {
        self.data as usize + self.len
    }

    fn overlaps(self, other: View) -> bool {
        self.len > 0
            && other.len > 0
            && (self.data as usize) < other.end()
            && (other.data as usize) < self.end()
    }

    /// # Safety
    /// The memory must be alive and not accessed by anyone else for `'a`.
    unsafe fn bytes_mut<'a>(self) -> &'a mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: per the caller, and `data` is non-null when `len > 0`.
        unsafe { slice::from_raw_parts_mut(self.data, self.len) }
    }

    /// # Safety
    /// The memory must be alive and not written by anyone else for `'a`.
    unsafe fn bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: per the caller.
        unsafe { slice::from_raw_parts(self.data, self.len) }
    }

    /// A copy of the bytes, read once with a plain memory copy (no Rust reference to memory that
    /// another thread may be writing).
    ///
    /// # Safety
    /// The memory must be alive for the duration of the call.
    unsafe fn copy(self) -> Zeroizing<Vec<u8>> {
        let mut copy = Zeroizing::new(vec![0u8; self.len]);
        if self.len > 0 {
            // SAFETY: `data` is valid for `len` bytes per the caller; `copy` is ours.
            unsafe { ptr::copy_nonoverlapping(self.data, copy.as_mut_ptr(), self.len) };
        }
        copy
    }

    /// The `u32`s of a `Uint32Array` view, copied once: batch lengths are read only from the copy
    /// (a `SharedArrayBuffer` could change between a check and a use).
    ///
    /// # Safety
    /// The memory must be alive for the duration of the call; the view must come from a
    /// `Uint32Array` (aligned).
    unsafe fn u32s_copy(self) -> Vec<u32> {
        let n = self.len / 4;
        let mut copy = vec![0u32; n];
        if n > 0 {
            // SAFETY: per the caller; a Uint32Array's byte offset is a multiple of 4.
            unsafe { ptr::copy_nonoverlapping(self.data.cast::<u32>(), copy.as_mut_ptr(), n) };
        }
        copy
    }

    /// The view as a buffer this call may write: refused when shared.
    fn writable(self, name: &str) -> Outcome<Self> {
        if self.shared {
            return Err(Failure::input(&format!(
                "{name} must not be backed by a SharedArrayBuffer"
            )));
        }
        Ok(self)
    }
}

/// Bytes a call reads: the view itself, or a copy when the view is shared.
enum Input {
    View(View),
    Copy(Zeroizing<Vec<u8>>),
}

impl Input {
    /// # Safety
    /// The view's memory must be alive for the duration of the call.
    unsafe fn of(view: View) -> Self {
        if view.shared {
            // SAFETY: per the caller.
            Self::Copy(unsafe { view.copy() })
        } else {
            Self::View(view)
        }
    }

    /// # Safety
    /// As for [`View::bytes`] when not copied.
    unsafe fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: per the caller.
            Self::View(view) => unsafe { view.bytes() },
            Self::Copy(copy) => copy,
        }
    }
}

/// A `Uint8Array` (or `Buffer`) argument, or a `Uint32Array` when `kind` says so.
unsafe fn typed(
    env: sys::napi_env,
    value: sys::napi_value,
    kind: sys::napi_typedarray_type,
    name: &str,
) -> Outcome<View> {
    let mut actual = -1;
    let mut length = 0usize;
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    // SAFETY: fails with a status for anything that is not a typed array.
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env,
            value,
            &mut actual,
            &mut length,
            &mut data,
            &mut buffer,
            ptr::null_mut(),
        )
    };
    if status != sys::Status::napi_ok || actual != kind {
        let expected = if kind == sys::TypedarrayType::uint32_array {
            "a Uint32Array"
        } else {
            "a Uint8Array"
        };
        return Err(Failure::input(&format!("{name} must be {expected}")));
    }
    let width = if kind == sys::TypedarrayType::uint32_array {
        4
    } else {
        1
    };
    // `napi_is_arraybuffer` is false for a SharedArrayBuffer.
    let mut plain = false;
    // SAFETY: a plain N-API query on the typed array's buffer.
    let status = unsafe { sys::napi_is_arraybuffer(env, buffer, &mut plain) };
    let shared = status != sys::Status::napi_ok || !plain;
    let data = if length == 0 {
        NonNull::<u32>::dangling().as_ptr().cast()
    } else {
        data.cast::<u8>()
    };
    Ok(View {
        data,
        len: length * width,
        shared,
    })
}

unsafe fn uint32(env: sys::napi_env, value: sys::napi_value, name: &str) -> Outcome<u32> {
    let mut n = 0u32;
    // SAFETY: a plain N-API query; it fails with `napi_number_expected` for anything else.
    if unsafe { sys::napi_get_value_uint32(env, value, &mut n) } != sys::Status::napi_ok {
        return Err(Failure::input(&format!("{name} must be a number")));
    }
    Ok(n)
}

const U8: sys::napi_typedarray_type = sys::TypedarrayType::uint8_array;
const U32: sys::napi_typedarray_type = sys::TypedarrayType::uint32_array;

fn disjoint(a: View, b: View) -> Outcome<()> {
    if a.overlaps(b) {
        Err(Failure::input("input and output buffers overlap"))
    } else {
        Ok(())
    }
}

/// Runs a callback body and turns its failure into a thrown error.
unsafe fn finish(env: sys::napi_env, outcome: Outcome<()>) -> sys::napi_value {
    match outcome {
        Ok(()) => ptr::null_mut(),
        // SAFETY: called from a callback on the JS thread.
        Err(failure) => unsafe { throw(env, &failure) },
    }
}

/// The failure standing for a panic, which must never cross an `extern "C"` boundary (it would
/// abort the process). A last line of defence: no input is meant to reach one.
fn panicked() -> Failure {
    Failure {
        code: "ERR_SIFREDB_BACKEND",
        message: "internal error in the native addon (a panic was caught)".to_owned(),
        index: None,
    }
}

/// Runs `f`, turning a panic into [`panicked`].
fn guarded<T>(f: impl FnOnce() -> Outcome<T>) -> Outcome<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked()))
}

/// Runs a callback's body on its first `N` arguments (missing ones are `undefined`); a failure is
/// thrown, and so is a panic (as `ERR_SIFREDB_BACKEND`).
unsafe fn callback<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce([sys::napi_value; N]) -> Outcome<()>,
) -> sys::napi_value {
    // SAFETY: per the caller, `env` and `info` are those of the running callback.
    unsafe { finish(env, guarded(|| body(args::<N>(env, info)))) }
}

/// `seal(cipher, envelope)`: seals in place; `envelope` holds `type_tag ‖ value` at the plaintext
/// offset (`Cipher::seal_in_place`).
unsafe extern "C" fn seal(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: every N-API use below is on this callback's env with its own arguments.
    unsafe {
        callback(env, info, |[h, out]| {
            let cipher = cipher_arg(env, h)?;
            let out = typed(env, out, U8, "envelope")?.writable("envelope")?;
            cipher.seal_in_place(out.bytes_mut())?;
            Ok(())
        })
    }
}

/// `open(cipher, envelope, out)`: verifies `envelope` and writes its plaintext into `out`
/// (exactly its plaintext length).
unsafe extern "C" fn open(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as in `seal`; the two views are checked to be disjoint.
    unsafe {
        callback(env, info, |[h, envelope, out]| {
            let cipher = cipher_arg(env, h)?;
            let envelope = typed(env, envelope, U8, "envelope")?;
            let out = typed(env, out, U8, "out")?.writable("out")?;
            disjoint(envelope, out)?;
            // A shared envelope is copied first: the header check, authentication and decryption
            // then read the same bytes.
            let envelope = Input::of(envelope);
            // `decrypt_into` checks the header, then that `out` is exactly the plaintext length.
            cipher.decrypt_into(envelope.bytes(), out.bytes_mut())?;
            Ok(())
        })
    }
}

/// `sealMany` and `openMany`: `op` on the records of `buf` in place.
unsafe fn records(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    op: fn(&(dyn Cipher + 'static), &mut [u8], &[u32]) -> BatchResult,
) -> sys::napi_value {
    // SAFETY: as in `open`.
    unsafe {
        callback(env, info, |[h, buf, lens]| {
            let cipher = cipher_arg(env, h)?;
            let buf = typed(env, buf, U8, "buf")?.writable("buf")?;
            let lens = typed(env, lens, U32, "lens")?;
            disjoint(buf, lens)?;
            op(cipher.as_ref(), buf.bytes_mut(), &lens.u32s_copy())?;
            Ok(())
        })
    }
}

/// `sealMany(cipher, buf, plaintextLens)`: `Cipher::seal_records`.
unsafe extern "C" fn seal_many(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: called by N-API with this callback's env and arguments.
    unsafe { records(env, info, sifredb_core::seal_records) }
}

/// `openMany(cipher, buf, envelopeLens)`: `Cipher::open_records`.
unsafe extern "C" fn open_many(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `seal_many`.
    unsafe { records(env, info, sifredb_core::open_records) }
}

/// `sealFrom(cipher, input, plaintextLens, output)`: `sifredb_core::seal_records_from`.
unsafe extern "C" fn seal_from(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `open`; the three views are pairwise disjoint.
    unsafe {
        callback(env, info, |[h, input, lens, output]| {
            let cipher = cipher_arg(env, h)?;
            let input = typed(env, input, U8, "input")?.writable("input")?;
            let lens = typed(env, lens, U32, "lens")?;
            let output = typed(env, output, U8, "output")?.writable("output")?;
            disjoint(input, lens)?;
            disjoint(input, output)?;
            disjoint(lens, output)?;
            sifredb_core::seal_records_from(
                cipher.as_ref(),
                input.bytes_mut(),
                &lens.u32s_copy(),
                output.bytes_mut(),
            )?;
            Ok(())
        })
    }
}

/// `openInto(cipher, input, envelopeLens, output)`: `Cipher::open_records_into`.
unsafe extern "C" fn open_into(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `open`; the three views are pairwise disjoint.
    unsafe {
        callback(env, info, |[h, input, lens, output]| {
            let cipher = cipher_arg(env, h)?;
            let input = typed(env, input, U8, "input")?;
            let lens = typed(env, lens, U32, "lens")?;
            let output = typed(env, output, U8, "output")?.writable("output")?;
            disjoint(input, output)?;
            disjoint(lens, output)?;
            let (input, lens) = (Input::of(input), lens.u32s_copy());
            sifredb_core::open_records_into(cipher.as_ref(), input.bytes(), &lens, output.bytes_mut())?;
            Ok(())
        })
    }
}

/// `resealMany(from, to, input, envelopeLens, output)`: `sifredb_core::reseal_records`.
unsafe extern "C" fn reseal_many(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `open`; the three views are pairwise disjoint.
    unsafe {
        callback(env, info, |[from, to, input, lens, output]| {
            let from = cipher_arg(env, from)?;
            let to = cipher_arg(env, to)?;
            let input = typed(env, input, U8, "input")?.writable("input")?;
            let lens = typed(env, lens, U32, "lens")?;
            let output = typed(env, output, U8, "output")?.writable("output")?;
            disjoint(input, lens)?;
            disjoint(input, output)?;
            disjoint(lens, output)?;
            sifredb_core::reseal_records(
                from.as_ref(),
                to.as_ref(),
                input.bytes_mut(),
                &lens.u32s_copy(),
                output.bytes_mut(),
            )?;
            Ok(())
        })
    }
}

/// `mac(index, message, bits, out)`: the blind-index term of `message` into `out`.
unsafe extern "C" fn mac(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: as in `open`.
    unsafe {
        callback(env, info, |[h, message, bits, out]| {
            let key = index_arg(env, h)?;
            let message = typed(env, message, U8, "message")?;
            let bits = uint32(env, bits, "bits")?;
            let out = typed(env, out, U8, "out")?.writable("out")?;
            disjoint(message, out)?;
            key.compute_into(Input::of(message).bytes(), bits, out.bytes_mut())?;
            Ok(())
        })
    }
}

/// Reads a JS string as UTF-8 and runs `f` on the bytes: through a stack buffer for short strings
/// (one N-API call), else a heap buffer sized by a first call. The caller has checked that the
/// string is well-formed (N-API would replace lone surrogates).
unsafe fn with_utf8<R>(
    env: sys::napi_env,
    value: sys::napi_value,
    name: &str,
    f: impl FnOnce(&[u8]) -> Outcome<R>,
) -> Outcome<R> {
    const STACK: usize = 512;
    // Not zero-filled first (a 512-byte memset per call is measurable here): only the bytes N-API
    // wrote are read, and they are wiped after use.
    let mut stack = std::mem::MaybeUninit::<[u8; STACK]>::uninit();
    let base = stack.as_mut_ptr().cast::<u8>();
    let mut written = 0usize;
    // SAFETY: `base` has room for STACK bytes, NUL terminator included.
    let status =
        unsafe { sys::napi_get_value_string_utf8(env, value, base.cast(), STACK, &mut written) };
    if status != sys::Status::napi_ok {
        return Err(Failure::input(&format!("{name} must be a string")));
    }
    // N-API writes whole characters only: within 4 bytes of the end the string may be cut short.
    if written + 4 < STACK {
        // SAFETY: N-API initialised the first `written` bytes (and a NUL after them).
        let bytes = unsafe { slice::from_raw_parts_mut(base, written) };
        let result = f(bytes);
        zeroize_bytes(bytes);
        return result;
    }
    // SAFETY: the first STACK - 1 bytes were written (the string was cut short); wipe them.
    zeroize_bytes(unsafe { slice::from_raw_parts_mut(base, STACK - 1) });
    let mut len = 0usize;
    // SAFETY: a NULL buffer asks for the UTF-8 length.
    unsafe { sys::napi_get_value_string_utf8(env, value, ptr::null_mut(), 0, &mut len) };
    let mut heap = vec![0u8; len + 1];
    // SAFETY: `heap` has room for the string and its NUL.
    unsafe {
        sys::napi_get_value_string_utf8(env, value, heap.as_mut_ptr().cast(), len + 1, &mut written)
    };
    let result = f(&heap[..written]);
    zeroize_bytes(&mut heap);
    result
}

/// Wipes a plaintext copy (volatile writes, not optimised away).
fn zeroize_bytes(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference.
        unsafe { ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// `macField(index, field, bits, out)`: the term of a one-field index (`u32be len ‖ UTF-8 of
/// field`); `field` is a string or a Uint8Array.
unsafe extern "C" fn mac_field(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `open`.
    unsafe {
        callback(env, info, |[h, field, bits, out]| {
            let key = index_arg(env, h)?;
            let bits = uint32(env, bits, "bits")?;
            let out = typed(env, out, U8, "out")?.writable("out")?;
            let mut kind = 0;
            sys::napi_typeof(env, field, &mut kind);
            if kind == sys::ValueType::napi_string {
                with_utf8(env, field, "field", |bytes| {
                    key.compute_field_into(bytes, bits, out.bytes_mut())?;
                    Ok(())
                })
            } else {
                let field = typed(env, field, U8, "field")?;
                disjoint(field, out)?;
                key.compute_field_into(Input::of(field).bytes(), bits, out.bytes_mut())?;
                Ok(())
            }
        })
    }
}

/// `macMany(index, messages, messageLens, bits, out)`: `BlindIndexKey::compute_records`.
unsafe extern "C" fn mac_many(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `open`.
    unsafe {
        callback(env, info, |[h, messages, lens, bits, out]| {
            let key = index_arg(env, h)?;
            let messages = typed(env, messages, U8, "messages")?;
            let lens = typed(env, lens, U32, "lens")?;
            let bits = uint32(env, bits, "bits")?;
            let out = typed(env, out, U8, "out")?.writable("out")?;
            disjoint(messages, out)?;
            disjoint(lens, out)?;
            let (messages, lens) = (Input::of(messages), lens.u32s_copy());
            key.compute_records(messages.bytes(), &lens, bits, out.bytes_mut())?;
            Ok(())
        })
    }
}

/// Work of one async call, run on a libuv pool thread. It owns all its memory: its inputs were
/// copied on the JS thread when the call was made, and its result is copied into the caller's
/// buffer on the JS thread when it completes (after checking that buffer is still attached and as
/// long). JavaScript may detach, resize or free its buffers meanwhile; the thread pool never sees
/// them.
enum Work {
    Seal {
        cipher: SharedCipher,
        buf: Zeroizing<Vec<u8>>,
        lens: Vec<u32>,
    },
    Open {
        cipher: SharedCipher,
        buf: Zeroizing<Vec<u8>>,
        lens: Vec<u32>,
    },
    SealFrom {
        cipher: SharedCipher,
        input: Zeroizing<Vec<u8>>,
        lens: Vec<u32>,
        output: Vec<u8>,
    },
    OpenInto {
        cipher: SharedCipher,
        input: Vec<u8>,
        lens: Vec<u32>,
        output: Zeroizing<Vec<u8>>,
    },
    Reseal {
        from: SharedCipher,
        to: SharedCipher,
        input: Zeroizing<Vec<u8>>,
        lens: Vec<u32>,
        output: Vec<u8>,
    },
}

impl Work {
    /// Runs the batch on memory the work owns; the inputs are dropped (wiped) on this thread.
    fn run(&mut self) -> Result<(), BatchError> {
        match self {
            Self::Seal { cipher, buf, lens } => sifredb_core::seal_records(cipher.as_ref(), buf, lens),
            Self::Open { cipher, buf, lens } => sifredb_core::open_records(cipher.as_ref(), buf, lens),
            Self::SealFrom {
                cipher,
                input,
                lens,
                output,
            } => {
                let result = sifredb_core::seal_records_from(cipher.as_ref(), input, lens, output);
                drop(std::mem::take(input));
                result
            }
            Self::OpenInto {
                cipher,
                input,
                lens,
                output,
            } => {
                let result = sifredb_core::open_records_into(cipher.as_ref(), input, lens, output);
                drop(std::mem::take(input));
                result
            }
            Self::Reseal {
                from,
                to,
                input,
                lens,
                output,
            } => {
                let result =
                    sifredb_core::reseal_records(from.as_ref(), to.as_ref(), input, lens, output);
                drop(std::mem::take(input));
                result
            }
        }
    }

    /// The bytes to hand back to the caller's buffer.
    fn result(&self) -> &[u8] {
        match self {
            Self::Seal { buf, .. } | Self::Open { buf, .. } => buf,
            Self::SealFrom { output, .. } | Self::Reseal { output, .. } => output,
            Self::OpenInto { output, .. } => output,
        }
    }
}

/// One async call in flight: its work, a reference to the buffer receiving its result, its
/// promise.
struct Job {
    work: Work,
    result: Outcome<()>,
    target: sys::napi_ref,
    deferred: sys::napi_deferred,
    handle: sys::napi_async_work,
}

unsafe extern "C" fn execute(_env: sys::napi_env, data: *mut c_void) {
    // SAFETY: `data` is the `Job` boxed by `queue`; only this thread touches it until `complete`.
    // The work owns all the memory it touches.
    let job = unsafe { &mut *data.cast::<Job>() };
    job.result = guarded(|| job.work.run().map_err(Failure::from));
}

/// Copies `bytes` into the typed array `target`, if it is still an attached, unshared `Uint8Array`
/// of exactly that length (JavaScript may have detached or resized it meanwhile).
unsafe fn deliver(env: sys::napi_env, target: sys::napi_ref, bytes: &[u8]) -> Outcome<()> {
    let mut value = ptr::null_mut();
    // SAFETY: N-API calls on the JS thread; `target` is a live reference.
    let view = unsafe {
        if sys::napi_get_reference_value(env, target, &mut value) != sys::Status::napi_ok
            || value.is_null()
        {
            return Err(Failure::input("the batch's output buffer is gone"));
        }
        typed(env, value, U8, "output")?
    };
    if view.shared || view.len != bytes.len() {
        return Err(Failure::input(
            "the batch's output buffer was detached or resized while the batch ran",
        ));
    }
    if !bytes.is_empty() {
        // SAFETY: `view` was just read on the JS thread: attached, `len` bytes, not shared, and no
        // JavaScript runs during this copy.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), view.data, bytes.len()) };
    }
    Ok(())
}

unsafe extern "C" fn complete(env: sys::napi_env, status: sys::napi_status, data: *mut c_void) {
    // SAFETY: on the JS thread, after `execute` (or instead of it when cancelled); we own the box.
    unsafe {
        let mut job = Box::from_raw(data.cast::<Job>());
        let result = std::mem::replace(&mut job.result, Ok(()));
        let outcome: Outcome<()> = if status == sys::Status::napi_cancelled {
            Err(Failure::input("the batch was cancelled"))
        } else {
            result.and_then(|()| guarded(|| deliver(env, job.target, job.work.result())))
        };
        sys::napi_delete_reference(env, job.target);
        sys::napi_delete_async_work(env, job.handle);
        match outcome {
            Ok(()) => {
                let mut undefined = ptr::null_mut();
                sys::napi_get_undefined(env, &mut undefined);
                sys::napi_resolve_deferred(env, job.deferred, undefined);
            }
            Err(failure) => {
                sys::napi_reject_deferred(env, job.deferred, error_value(env, &failure));
            }
        }
        // The work's memory (plaintexts wiped) is freed here.
    }
}

/// Queues `work` on the thread pool, its result to be copied into `target` (a checked, unshared
/// `Uint8Array`); returns the promise.
unsafe fn queue(
    env: sys::napi_env,
    work: Work,
    target: sys::napi_value,
) -> Outcome<sys::napi_value> {
    // SAFETY: N-API calls on the JS thread; every early return releases what was created.
    unsafe {
        let mut reference = ptr::null_mut();
        if sys::napi_create_reference(env, target, 1, &mut reference) != sys::Status::napi_ok {
            return Err(Failure::input("cannot keep a batch buffer"));
        }
        let mut promise = ptr::null_mut();
        let mut deferred = ptr::null_mut();
        let name = js_string(env, "sifredb:batch");
        let job = Box::into_raw(Box::new(Job {
            work,
            result: Ok(()),
            target: reference,
            deferred: ptr::null_mut(),
            handle: ptr::null_mut(),
        }));
        let mut handle = ptr::null_mut();
        let created = sys::napi_create_promise(env, &mut deferred, &mut promise)
            == sys::Status::napi_ok
            && sys::napi_create_async_work(
                env,
                ptr::null_mut(),
                name,
                Some(execute),
                Some(complete),
                job.cast(),
                &mut handle,
            ) == sys::Status::napi_ok;
        if !created {
            let job = Box::from_raw(job);
            sys::napi_delete_reference(env, job.target);
            return Err(Failure::input("cannot start a batch"));
        }
        (*job).deferred = deferred;
        (*job).handle = handle;
        if sys::napi_queue_async_work(env, handle) != sys::Status::napi_ok {
            let job = Box::from_raw(job);
            sys::napi_delete_reference(env, job.target);
            sys::napi_delete_async_work(env, handle);
            return Err(Failure::input("cannot queue a batch"));
        }
        Ok(promise)
    }
}

/// Returns the promise, or throws.
unsafe fn finish_async(env: sys::napi_env, outcome: Outcome<sys::napi_value>) -> sys::napi_value {
    match outcome {
        Ok(promise) => promise,
        // SAFETY: on the JS thread.
        Err(failure) => unsafe { throw(env, &failure) },
    }
}

/// As [`callback`], for a body that returns a promise.
unsafe fn callback_async<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce([sys::napi_value; N]) -> Outcome<sys::napi_value>,
) -> sys::napi_value {
    // SAFETY: as in `callback`.
    unsafe { finish_async(env, guarded(|| body(args::<N>(env, info)))) }
}

/// Copies `view` for the thread pool and wipes the caller's copy (it holds plaintexts).
///
/// # Safety
/// On the JS thread, during the call that received `view`; `view` is not shared.
unsafe fn take_plaintexts(view: View) -> Zeroizing<Vec<u8>> {
    // SAFETY: per the caller.
    unsafe {
        let copy = view.copy();
        zeroize_bytes(view.bytes_mut());
        copy
    }
}

/// `sealManyAsync(cipher, buf, plaintextLens)`: `sealMany` on the thread pool; a promise. `buf` is
/// copied and wiped at once, and receives the envelopes when the promise resolves.
unsafe extern "C" fn seal_many_async(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: N-API use on this callback's env and arguments; the work gets copies.
    unsafe {
        callback_async(env, info, |[h, buf_value, lens]| {
            let cipher = cipher_arg(env, h)?.clone();
            let buf = typed(env, buf_value, U8, "buf")?.writable("buf")?;
            let lens = typed(env, lens, U32, "lens")?.u32s_copy();
            let buf = take_plaintexts(buf);
            queue(env, Work::Seal { cipher, buf, lens }, buf_value)
        })
    }
}

/// `openManyAsync(cipher, buf, envelopeLens)`: `openMany` on the thread pool; a promise. `buf`
/// receives the plaintexts when the promise resolves.
unsafe extern "C" fn open_many_async(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `seal_many_async`.
    unsafe {
        callback_async(env, info, |[h, buf_value, lens]| {
            let cipher = cipher_arg(env, h)?.clone();
            let buf = typed(env, buf_value, U8, "buf")?.writable("buf")?;
            let lens = typed(env, lens, U32, "lens")?.u32s_copy();
            let buf = buf.copy();
            queue(env, Work::Open { cipher, buf, lens }, buf_value)
        })
    }
}

/// The arguments of a staged async call: the input copied, the lengths copied, and a zeroed
/// output of the caller's output length (which receives it when the promise resolves).
struct Staged {
    input: View,
    lens: Vec<u32>,
    output_len: usize,
}

/// Reads `input, lens, output` of a staged async call (`output` must be writable and disjoint).
unsafe fn staged(
    env: sys::napi_env,
    input: sys::napi_value,
    lens: sys::napi_value,
    output: sys::napi_value,
) -> Outcome<Staged> {
    // SAFETY: N-API use on the JS thread with this callback's arguments.
    unsafe {
        let input = typed(env, input, U8, "input")?;
        let lens = typed(env, lens, U32, "lens")?.u32s_copy();
        let output = typed(env, output, U8, "output")?.writable("output")?;
        disjoint(input, output)?;
        Ok(Staged {
            input,
            lens,
            output_len: output.len,
        })
    }
}

/// `sealFromAsync(cipher, input, plaintextLens, output)`: `sealFrom` on the thread pool; a promise.
/// `input` is copied and wiped at once.
unsafe extern "C" fn seal_from_async(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `seal_many_async`.
    unsafe {
        callback_async(env, info, |[h, input, lens, output_value]| {
            let cipher = cipher_arg(env, h)?.clone();
            let args = staged(env, input, lens, output_value)?;
            let input = take_plaintexts(args.input.writable("input")?);
            let work = Work::SealFrom {
                cipher,
                input,
                lens: args.lens,
                output: vec![0u8; args.output_len],
            };
            queue(env, work, output_value)
        })
    }
}

/// `openIntoAsync(cipher, input, envelopeLens, output)`: `openInto` on the thread pool; a promise.
unsafe extern "C" fn open_into_async(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `seal_many_async`.
    unsafe {
        callback_async(env, info, |[h, input, lens, output_value]| {
            let cipher = cipher_arg(env, h)?.clone();
            let args = staged(env, input, lens, output_value)?;
            let work = Work::OpenInto {
                cipher,
                input: args.input.copy().to_vec(),
                lens: args.lens,
                output: Zeroizing::new(vec![0u8; args.output_len]),
            };
            queue(env, work, output_value)
        })
    }
}

/// `resealManyAsync(from, to, input, envelopeLens, output)`: `resealMany` on the thread pool.
unsafe extern "C" fn reseal_many_async(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: as in `seal_many_async`.
    unsafe {
        callback_async(env, info, |[from, to, input, lens, output_value]| {
            let from = cipher_arg(env, from)?.clone();
            let to = cipher_arg(env, to)?.clone();
            let args = staged(env, input, lens, output_value)?;
            let work = Work::Reseal {
                from,
                to,
                input: args.input.copy(),
                lens: args.lens,
                output: vec![0u8; args.output_len],
            };
            queue(env, work, output_value)
        })
    }
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

const FUNCTIONS: [(&str, Callback); 15] = [
    ("seal", seal),
    ("open", open),
    ("sealMany", seal_many),
    ("openMany", open_many),
    ("resealMany", reseal_many),
    ("mac", mac),
    ("macField", mac_field),
    ("macMany", mac_many),
    ("sealManyAsync", seal_many_async),
    ("openManyAsync", open_many_async),
    ("resealManyAsync", reseal_many_async),
    ("sealFrom", seal_from),
    ("openInto", open_into),
    ("sealFromAsync", seal_from_async),
    ("openIntoAsync", open_into_async),
];

/// The object of fast-path functions (see the module documentation).
pub fn fast_path_object(env: &Env) -> napi::Result<Raw, Code> {
    let env = env.raw();
    // SAFETY: N-API calls on the JS thread creating plain functions.
    unsafe {
        let mut object = ptr::null_mut();
        if sys::napi_create_object(env, &mut object) != sys::Status::napi_ok {
            return Err(status_error("create the fast-path object"));
        }
        for (name, callback) in FUNCTIONS {
            let c_name = CString::new(name).map_err(|_| status_error("name a function"))?;
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
                return Err(status_error("create a fast-path function"));
            }
        }
        Ok(Raw(object))
    }
}
