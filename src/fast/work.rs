//! Async batches: work that owns its memory, run on the libuv thread pool, and delivered into the
//! caller's buffer on the JS thread only if that buffer is still attached and as long.

use std::ffi::c_void;
use std::ptr;

use napi::sys;
use sifredb_core::BatchError;
use zeroize::Zeroizing;

use super::failure::{error_value, guarded, js_string, Failure, Outcome};
use super::handles::SharedCipher;
use super::views::{disjoint, typed, View, U32, U8};

/// Work of one async call, run on a libuv pool thread. It owns all its memory: its inputs were
/// copied on the JS thread when the call was made, and its result is copied into the caller's
/// buffer on the JS thread when it completes (after checking that buffer is still attached and as
/// long). JavaScript may detach, resize or free its buffers meanwhile; the thread pool never sees
/// them.
pub(super) enum Work {
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
        use sifredb_core::{open_records_into, reseal_records, seal_records_from};
        let result = match self {
            Self::SealFrom {
                cipher,
                input,
                lens,
                output,
            } => seal_records_from(cipher.as_ref(), input, lens, output),
            Self::OpenInto {
                cipher,
                input,
                lens,
                output,
            } => open_records_into(cipher.as_ref(), input, lens, output),
            Self::Reseal {
                from,
                to,
                input,
                lens,
                output,
            } => reseal_records(from.as_ref(), to.as_ref(), input, lens, output),
        };
        match self {
            Self::SealFrom { input, .. } | Self::Reseal { input, .. } => {
                drop(std::mem::take(input))
            }
            Self::OpenInto { input, .. } => drop(std::mem::take(input)),
        }
        result
    }

    /// The bytes to hand back to the caller's buffer.
    fn result(&self) -> &[u8] {
        match self {
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
pub(super) unsafe fn queue(
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

/// The arguments of a staged async call: the input copied, the lengths copied, and a zeroed
/// output of the caller's output length (which receives it when the promise resolves).
pub(super) struct Staged {
    pub(super) input: View,
    pub(super) lens: Vec<u32>,
    pub(super) output_len: usize,
}

/// Reads `input, lens, output` of a staged async call (`output` must be writable and disjoint).
pub(super) unsafe fn staged(
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
