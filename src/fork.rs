//! Tells the core's nonce pool about `fork()` through `pthread_atfork`, so that it need not call
//! `getpid()` for every nonce (`sifredb_core::random::use_fork_hook`).

use std::sync::Once;

#[cfg(unix)]
extern "C" fn in_child() {
    sifredb_core::random::note_fork();
}

/// Installs the hook once per process; without it (registration failed, or not unix) the pool
/// keeps its `getpid()` check.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        {
            // SAFETY: registers a handler that only does an atomic add (async-signal-safe). Node
            // never unloads an addon, so the function stays mapped for the life of the process.
            if unsafe { libc::pthread_atfork(None, None, Some(in_child)) } == 0 {
                sifredb_core::random::use_fork_hook();
            }
        }
    });
}
