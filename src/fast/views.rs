//! Views: typed-array arguments read once, copied when another thread may write them.

use std::ptr::{self, NonNull};
use std::slice;

use napi::sys;
use zeroize::Zeroizing;

use super::failure::{Failure, Outcome};

/// The bytes viewed by a typed array: its address and length in bytes.
#[derive(Clone, Copy)]
pub(super) struct View {
    pub(super) data: *mut u8,
    /// Length in bytes.
    pub(super) len: usize,
    /// Backed by something other than a plain `ArrayBuffer` (a `SharedArrayBuffer`): another
    /// thread may write it at any time, so it is copied before it is read and never written.
    pub(super) shared: bool,
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
    pub(super) unsafe fn bytes_mut<'a>(self) -> &'a mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: per the caller, and `data` is non-null when `len > 0`.
        unsafe { slice::from_raw_parts_mut(self.data, self.len) }
    }

    /// # Safety
    /// The memory must be alive and not written by anyone else for `'a`.
    pub(super) unsafe fn bytes<'a>(self) -> &'a [u8] {
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
    pub(super) unsafe fn copy(self) -> Zeroizing<Vec<u8>> {
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
    pub(super) unsafe fn u32s_copy(self) -> Vec<u32> {
        let n = self.len / 4;
        let mut copy = vec![0u32; n];
        if n > 0 {
            // SAFETY: per the caller; a Uint32Array's byte offset is a multiple of 4.
            unsafe { ptr::copy_nonoverlapping(self.data.cast::<u32>(), copy.as_mut_ptr(), n) };
        }
        copy
    }

    /// The view as a buffer this call may write: refused when shared.
    pub(super) fn writable(self, name: &str) -> Outcome<Self> {
        if self.shared {
            return Err(Failure::input(&format!(
                "{name} must not be backed by a SharedArrayBuffer"
            )));
        }
        Ok(self)
    }
}

/// Bytes a call reads: the view itself, or a copy when the view is shared.
pub(super) enum Input {
    View(View),
    Copy(Zeroizing<Vec<u8>>),
}

impl Input {
    /// # Safety
    /// The view's memory must be alive for the duration of the call.
    pub(super) unsafe fn of(view: View) -> Self {
        if view.shared {
            // SAFETY: per the caller.
            Self::Copy(unsafe { view.copy() })
        } else {
            Self::View(view)
        }
    }

    /// # Safety
    /// As for [`View::bytes`] when not copied.
    pub(super) unsafe fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: per the caller.
            Self::View(view) => unsafe { view.bytes() },
            Self::Copy(copy) => copy,
        }
    }
}

/// A `Uint8Array` (or `Buffer`) argument, or a `Uint32Array` when `kind` says so.
pub(super) unsafe fn typed(
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

pub(super) unsafe fn uint32(
    env: sys::napi_env,
    value: sys::napi_value,
    name: &str,
) -> Outcome<u32> {
    let mut n = 0u32;
    // SAFETY: a plain N-API query; it fails with `napi_number_expected` for anything else.
    if unsafe { sys::napi_get_value_uint32(env, value, &mut n) } != sys::Status::napi_ok {
        return Err(Failure::input(&format!("{name} must be a number")));
    }
    Ok(n)
}

pub(super) const U8: sys::napi_typedarray_type = sys::TypedarrayType::uint8_array;
pub(super) const U32: sys::napi_typedarray_type = sys::TypedarrayType::uint32_array;

pub(super) fn disjoint(a: View, b: View) -> Outcome<()> {
    if a.overlaps(b) {
        Err(Failure::input("input and output buffers overlap"))
    } else {
        Ok(())
    }
}

/// Reads a JS string as UTF-8 and runs `f` on the bytes: through a stack buffer for short strings
/// (one N-API call), else a heap buffer sized by a first call. The caller has checked that the
/// string is well-formed (N-API would replace lone surrogates).
pub(super) unsafe fn with_utf8<R>(
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

/// Wipes a plaintext copy: a `memset` the optimiser must keep, since `black_box` (an empty asm
/// block given the pointer) may read the bytes. Volatile byte stores did the same at one byte per
/// cycle: ~20 µs for a 64 KiB string, a quarter of its blind index.
pub(super) fn zeroize_bytes(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&mut *bytes);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Copies `view` for the thread pool and wipes the caller's copy (it holds plaintexts).
///
/// # Safety
/// On the JS thread, during the call that received `view`; `view` is not shared.
pub(super) unsafe fn take_plaintexts(view: View) -> Zeroizing<Vec<u8>> {
    // SAFETY: per the caller.
    unsafe {
        let copy = view.copy();
        zeroize_bytes(view.bytes_mut());
        copy
    }
}
