//! Failures: how a callback reports an error or a panic to JavaScript, and the callback frames
//! that guarantee no panic crosses the `extern "C"` boundary.

use std::ffi::c_char;
use std::ptr;

use napi::sys;
use sifredb_core::BatchError;

/// A failure to report to JavaScript: a code, a message, and for batches the record index.
pub(super) struct Failure {
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) index: Option<usize>,
}

impl Failure {
    pub(super) fn input(message: &str) -> Self {
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

pub(super) type Outcome<T> = Result<T, Failure>;

/// Builds the JS error of `failure`: `code` set, and `index` for a batch record.
pub(super) unsafe fn error_value(env: sys::napi_env, failure: &Failure) -> sys::napi_value {
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

pub(super) unsafe fn js_string(env: sys::napi_env, s: &str) -> sys::napi_value {
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
pub(super) unsafe fn throw(env: sys::napi_env, failure: &Failure) -> sys::napi_value {
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
pub(super) unsafe fn args<const N: usize>(
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
pub(super) fn guarded<T>(f: impl FnOnce() -> Outcome<T>) -> Outcome<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked()))
}

/// Runs a callback's body on its first `N` arguments (missing ones are `undefined`); a failure is
/// thrown, and so is a panic (as `ERR_SIFREDB_BACKEND`).
pub(super) unsafe fn callback<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce([sys::napi_value; N]) -> Outcome<()>,
) -> sys::napi_value {
    // SAFETY: per the caller, `env` and `info` are those of the running callback.
    unsafe { finish(env, guarded(|| body(args::<N>(env, info)))) }
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
pub(super) unsafe fn callback_async<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce([sys::napi_value; N]) -> Outcome<sys::napi_value>,
) -> sys::napi_value {
    // SAFETY: as in `callback`.
    unsafe { finish_async(env, guarded(|| body(args::<N>(env, info)))) }
}
