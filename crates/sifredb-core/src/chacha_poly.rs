//! ChaCha20-Poly1305 (RFC 8439 §2.8) and XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha §2.3)
//! composed from the `chacha20` stream cipher and Poly1305, with the Poly1305 implementation
//! chosen per message by size.
//!
//! Why: poly1305's AVX2 backend is about 2.5× the portable one on long inputs but costs about
//! 1 µs of set-up and finalisation per message, which would triple the cost of sealing a 32-byte
//! value. Its backend is a compile-time `cfg` (`poly1305_backend`), so one build cannot hold both —
//! except that poly1305 0.8 names its switch differently (`poly1305_force_soft`). The workspace
//! forces 0.9 to the portable backend (`.cargo/config.toml`) and 0.8 keeps its runtime AVX2
//! detection; short messages go to 0.9, long ones to 0.8. `chacha20` picks its SIMD backend
//! (AVX2/SSE2) at run time on its own.
//!
//! Bytes are those of the `chacha20poly1305` crate: checked by Wycheproof, the RFC 8439 vectors
//! and a differential test against that crate (tests/chacha_poly_differential.rs).

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::{ChaCha20, XChaCha20};
use inout::InOutBuf;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Messages whose Poly1305 input (padded AAD and ciphertext) is at least this many bytes are
/// authenticated with the SIMD (AVX2 where the CPU has it) Poly1305; shorter ones with the
/// portable one. Measured on an AMD EPYC (crates/sifredb-core/benches): the two cost the same
/// near 3 KiB.
pub const SIMD_POLY1305_FROM: usize = 3072;

/// Largest plaintext RFC 8439 allows under one nonce: 2^32 - 1 blocks of 64 bytes, the first of
/// which keys Poly1305.
const MAX_LEN: u64 = ((1u64 << 32) - 1) * 64 - 64;

/// Which nonce size (and so which ChaCha20 variant) a [`ChaChaPoly`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// 12-byte nonce, RFC 8439.
    ChaCha20,
    /// 24-byte nonce: HChaCha20 subkey, then ChaCha20.
    XChaCha20,
}

impl Variant {
    /// Nonce length in bytes.
    pub const fn nonce_len(self) -> usize {
        match self {
            Variant::ChaCha20 => 12,
            Variant::XChaCha20 => 24,
        }
    }
}

/// Why a seal or an open failed. Deliberately uninformative about an open: the tag did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeadError {
    /// The nonce is not [`Variant::nonce_len`] bytes.
    NonceLength,
    /// The message exceeds RFC 8439's limit.
    TooLong,
    /// The tag did not verify (open only); nothing was decrypted.
    Auth,
}

/// A ChaCha20-Poly1305 or XChaCha20-Poly1305 key. The key is wiped on drop.
#[derive(Clone)]
pub struct ChaChaPoly {
    key: [u8; 32],
    variant: Variant,
}

impl Zeroize for ChaChaPoly {
    fn zeroize(&mut self) {
        self.key.zeroize();
    }
}

impl Drop for ChaChaPoly {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for ChaChaPoly {}

impl core::fmt::Debug for ChaChaPoly {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChaChaPoly")
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

impl ChaChaPoly {
    /// A cipher under `key`.
    pub fn new(variant: Variant, key: &[u8; 32]) -> Self {
        Self { key: *key, variant }
    }

    /// The variant this key was made for.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Encrypts `buffer` (its input into its output, which may be the same memory) and returns
    /// the tag over `aad` and the ciphertext.
    pub fn encrypt_inout_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
    ) -> Result<[u8; TAG_LEN], AeadError> {
        check_len(buffer.len())?;
        match self.variant {
            Variant::ChaCha20 => seal_with::<ChaCha20>(&self.key, nonce, aad, buffer),
            Variant::XChaCha20 => seal_with::<XChaCha20>(&self.key, nonce, aad, buffer),
        }
    }

    /// Verifies `tag` over `aad` and the ciphertext in `buffer`'s input and, only if it verifies,
    /// decrypts into `buffer`'s output. On failure nothing is written.
    pub fn decrypt_inout_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buffer: InOutBuf<'_, '_, u8>,
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        check_len(buffer.len())?;
        match self.variant {
            Variant::ChaCha20 => open_with::<ChaCha20>(&self.key, nonce, aad, buffer, tag),
            Variant::XChaCha20 => open_with::<XChaCha20>(&self.key, nonce, aad, buffer, tag),
        }
    }
}

fn check_len(len: usize) -> Result<(), AeadError> {
    if len as u64 > MAX_LEN {
        Err(AeadError::TooLong)
    } else {
        Ok(())
    }
}

fn seal_with<C: KeyIvInit + StreamCipher>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    mut buffer: InOutBuf<'_, '_, u8>,
) -> Result<[u8; TAG_LEN], AeadError> {
    let (mut cipher, poly_key) = keyed::<C>(key, nonce)?;
    let len = buffer.len();
    let mut mac = Poly::new(&poly_key, aad, len);
    // Two passes (encrypt, then MAC): measured faster here than interleaving 2–16 KiB chunks,
    // whose per-call set-up in both crates outweighs the cache locality.
    cipher.apply_keystream_inout(buffer.reborrow());
    mac.update(buffer.get_out());
    Ok(mac.finalize(aad.len(), len))
}

fn open_with<C: KeyIvInit + StreamCipher>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    buffer: InOutBuf<'_, '_, u8>,
    tag: &[u8; TAG_LEN],
) -> Result<(), AeadError> {
    let (mut cipher, poly_key) = keyed::<C>(key, nonce)?;
    let len = buffer.len();
    let mut mac = Poly::new(&poly_key, aad, len);
    mac.update(buffer.get_in());
    let expected = Zeroizing::new(mac.finalize(aad.len(), len));
    if !ct_eq(&expected, tag) {
        return Err(AeadError::Auth);
    }
    cipher.apply_keystream_inout(buffer);
    Ok(())
}

/// Poly1305 over `pad16(aad) ‖ pad16(ciphertext) ‖ le64(|aad|) ‖ le64(|ciphertext|)`, fed the
/// ciphertext in pieces whose lengths are multiples of 16 (any length for the last).
enum Poly {
    Soft(poly1305::Poly1305),
    /// `skew`: ciphertext bytes still to feed one block at a time (see [`Poly::new`]).
    Simd {
        mac: poly1305_simd::Poly1305,
        skew: usize,
    },
}

impl Poly {
    fn new(poly_key: &[u8; 32], aad: &[u8], ciphertext_len: usize) -> Self {
        if aad.len().saturating_add(ciphertext_len) >= SIMD_POLY1305_FROM {
            use poly1305_simd::universal_hash::{KeyInit, UniversalHash};
            let mut mac = poly1305_simd::Poly1305::new(poly1305_simd::Key::from_slice(poly_key));
            mac.update_padded(aad);
            // The AVX2 state takes four blocks at a time only while it holds no cached blocks; an
            // AAD of, say, two blocks would push every ciphertext block through its one-block path
            // (universal-hash 0.5 does not realign). The blocks that complete the AAD's group of
            // four are fed on their own, the rest aligned.
            let skew = 16 * ((4 - aad.len().div_ceil(16) % 4) % 4);
            Poly::Simd { mac, skew }
        } else {
            use poly1305::universal_hash::{KeyInit, UniversalHash};
            let mut mac = poly1305::Poly1305::new(&(*poly_key).into());
            mac.update_padded(aad);
            Poly::Soft(mac)
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Poly::Soft(mac) => {
                use poly1305::universal_hash::UniversalHash;
                mac.update_padded(data);
            }
            Poly::Simd { mac, skew } => {
                use poly1305_simd::universal_hash::UniversalHash;
                let (first, rest) = data.split_at((*skew).min(data.len()));
                *skew -= first.len();
                mac.update_padded(first);
                mac.update_padded(rest);
            }
        }
    }

    fn finalize(self, aad_len: usize, ciphertext_len: usize) -> [u8; TAG_LEN] {
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(aad_len as u64).to_le_bytes());
        lengths[8..].copy_from_slice(&(ciphertext_len as u64).to_le_bytes());
        match self {
            Poly::Soft(mut mac) => {
                use poly1305::universal_hash::UniversalHash;
                mac.update_padded(&lengths);
                mac.finalize().into()
            }
            Poly::Simd { mut mac, .. } => {
                use poly1305_simd::universal_hash::UniversalHash;
                mac.update_padded(&lengths);
                mac.finalize().into()
            }
        }
    }
}

/// The stream cipher positioned at block 1, and the one-time Poly1305 key (block 0's first half).
fn keyed<C: KeyIvInit + StreamCipher>(
    key: &[u8; 32],
    nonce: &[u8],
) -> Result<(C, Zeroizing<[u8; 32]>), AeadError> {
    let iv = chacha20::cipher::Iv::<C>::try_from(nonce).map_err(|_| AeadError::NonceLength)?;
    let key = chacha20::cipher::Key::<C>::try_from(&key[..]).map_err(|_| AeadError::NonceLength)?;
    let mut cipher = C::new(&key, &iv);
    let mut block0 = Zeroizing::new([0u8; 64]);
    cipher.apply_keystream(&mut block0[..]);
    let mut poly_key = Zeroizing::new([0u8; 32]);
    poly_key.copy_from_slice(&block0[..32]);
    Ok((cipher, poly_key))
}

/// Constant-time equality of two tags.
pub(crate) fn ct_eq(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
