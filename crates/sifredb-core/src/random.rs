//! Buffered CSPRNG for nonces.
//!
//! One `getrandom` call per 4 KiB (about 340 ChaCha20-Poly1305 nonces) instead of one
//! per value, which matters for batch encryption. Each thread owns its pool, so there is no lock.

use core::cell::RefCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use zeroize::Zeroize;

use crate::error::{Error, Result};

/// Size of each thread's pool of random bytes.
const POOL_LEN: usize = 4096;

/// Requests larger than this bypass the pool: they gain nothing from batching and would drain it.
const MAX_POOLED: usize = 64;

struct Pool {
    bytes: [u8; POOL_LEN],
    /// Start of the unused bytes; `POOL_LEN` when empty.
    next: usize,
    /// Process that filled the pool ([`owner`]). A `fork()` copies the pool into the child;
    /// without this check parent and child would hand out the same nonces, which is fatal for
    /// ChaCha20-Poly1305.
    owner: u64,
}

/// Bumped by [`note_fork`] in a forked child.
static FORK_EPOCH: AtomicU32 = AtomicU32::new(0);
/// Set by [`use_fork_hook`]: forks are reported, so [`owner`] need not ask the kernel.
static FORK_HOOKED: AtomicBool = AtomicBool::new(false);
/// Owner values of the hooked mode carry this bit, so they never equal a pid.
const EPOCH_OWNER: u64 = 1 << 32;

/// Who may use a pool filled now: this process. Without a fork hook that is the pid, which costs
/// a `getpid()` system call per nonce (glibc no longer caches it) — about 100 ns, as much as
/// sealing a short value. With the hook it is the fork epoch, one atomic load.
fn owner() -> u64 {
    if FORK_HOOKED.load(Ordering::Acquire) {
        EPOCH_OWNER | u64::from(FORK_EPOCH.load(Ordering::Acquire))
    } else {
        u64::from(std::process::id())
    }
}

/// Declares that this process reports every `fork()` through [`note_fork`] (a binding installs
/// `pthread_atfork(None, None, Some(child))` whose child handler calls it, and only then calls
/// this). Pools filled before are discarded on their next use. Irreversible.
///
/// Do not call it where the process may be duplicated without the hook running (a raw `clone`
/// system call that is not followed by `exec`); the default `getpid()` check covers those.
pub fn use_fork_hook() {
    FORK_HOOKED.store(true, Ordering::Release);
}

/// Reports a `fork()`: call it in the child, before any nonce is drawn there. Every pool copied
/// from the parent is then discarded on its next use. Async-signal-safe (one atomic add), as
/// `pthread_atfork` child handlers must be.
pub fn note_fork() {
    FORK_EPOCH.fetch_add(1, Ordering::AcqRel);
}

impl Pool {
    const fn empty() -> Self {
        Self {
            bytes: [0; POOL_LEN],
            next: POOL_LEN,
            owner: u64::MAX,
        }
    }

    fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        let owner = owner();
        if self.owner != owner {
            self.bytes.zeroize();
            self.next = POOL_LEN;
            self.owner = owner;
        }
        if POOL_LEN - self.next < out.len() {
            getrandom::fill(&mut self.bytes).map_err(|_| Error::Rng)?;
            self.next = 0;
        }
        let end = self.next + out.len();
        let taken = self.bytes.get_mut(self.next..end).ok_or(Error::Rng)?;
        out.copy_from_slice(taken);
        // Bytes handed out are wiped so that a later memory disclosure cannot replay them.
        taken.zeroize();
        self.next = end;
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool::empty()) };
}

/// Fills `out` with bytes from the OS CSPRNG, through this thread's pool when `out` is nonce-sized.
pub fn fill_nonce(out: &mut [u8]) -> Result<()> {
    if out.len() > MAX_POOLED {
        return fill_os(out);
    }
    // `try_with`/`try_borrow_mut` fail only during thread teardown or re-entrance; the OS is then
    // asked directly rather than panicking.
    POOL.try_with(|pool| match pool.try_borrow_mut() {
        Ok(mut pool) => pool.fill(out),
        Err(_) => fill_os(out),
    })
    .unwrap_or_else(|_| fill_os(out))
}

/// Fills `out` straight from the OS CSPRNG.
pub fn fill_os(out: &mut [u8]) -> Result<()> {
    getrandom::fill(out).map_err(|_| Error::Rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_across_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let mut n = [0u8; 24];
            fill_nonce(&mut n).unwrap();
            assert!(seen.insert(n));
        }
        let mut big = [0u8; 100];
        fill_nonce(&mut big).unwrap();
        assert_ne!(big, [0u8; 100]);
    }

    #[test]
    fn a_reported_fork_discards_the_pool() {
        use_fork_hook();
        let mut n = [0u8; 12];
        fill_nonce(&mut n).unwrap();
        let next = || POOL.with(|pool| pool.borrow().next);
        let before = next();
        fill_nonce(&mut n).unwrap();
        assert_eq!(next(), before + 12, "served from the pool");
        note_fork();
        fill_nonce(&mut n).unwrap();
        assert_eq!(next(), 12, "refilled after the fork");
    }
}
