//! Buffered CSPRNG for nonces.
//!
//! One `getrandom` call per 4 KiB (about 340 ChaCha20-Poly1305 nonces) instead of one
//! per value, which matters for batch encryption. Each thread owns its pool, so there is no lock.

use core::cell::RefCell;

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
    /// Process that filled the pool. A `fork()` copies the pool into the child; without this check
    /// parent and child would hand out the same nonces, which is fatal for ChaCha20-Poly1305.
    pid: u32,
}

impl Pool {
    const fn empty() -> Self {
        Self {
            bytes: [0; POOL_LEN],
            next: POOL_LEN,
            pid: 0,
        }
    }

    fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        let pid = std::process::id();
        if self.pid != pid {
            self.bytes.zeroize();
            self.next = POOL_LEN;
            self.pid = pid;
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
}
