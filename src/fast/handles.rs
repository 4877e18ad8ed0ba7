//! Handles: the externals that carry a cipher or a blind-index key into the fast path.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{sys, Env, ValueType};
use sifredb_core::{BlindIndexKey, Cipher};

use super::failure::{Failure, Outcome};
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
pub struct Raw(pub(super) sys::napi_value);

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

pub(super) fn status_error(what: &str) -> napi::Error<Code> {
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
pub(super) unsafe fn cipher_arg(
    env: sys::napi_env,
    value: sys::napi_value,
) -> Outcome<&'static SharedCipher> {
    // SAFETY: `CIPHER_TAG` marks externals holding a `SharedCipher`.
    unsafe { external::<SharedCipher>(env, value, &CIPHER_TAG) }
}

/// The key of a handle made by [`index_external`].
pub(super) unsafe fn index_arg(
    env: sys::napi_env,
    value: sys::napi_value,
) -> Outcome<&'static Arc<BlindIndexKey>> {
    // SAFETY: `INDEX_TAG` marks externals holding an `Arc<BlindIndexKey>`.
    unsafe { external::<Arc<BlindIndexKey>>(env, value, &INDEX_TAG) }
}
