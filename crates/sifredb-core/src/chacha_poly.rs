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

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
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

fn seal_with<C: KeyIvInit + StreamCipher + StreamCipherSeek>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    buffer: InOutBuf<'_, '_, u8>,
) -> Result<[u8; TAG_LEN], AeadError> {
    if buffer.len() <= SHORT {
        seal_short::<C>(key, nonce, aad, buffer)
    } else if uses_simd(aad, buffer.len()) {
        seal_mac::<C, SimdPoly>(key, nonce, aad, buffer)
    } else {
        seal_mac::<C, SoftPoly>(key, nonce, aad, buffer)
    }
}

fn open_with<C: KeyIvInit + StreamCipher + StreamCipherSeek>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    buffer: InOutBuf<'_, '_, u8>,
    tag: &[u8; TAG_LEN],
) -> Result<(), AeadError> {
    if buffer.len() <= SHORT {
        open_short::<C>(key, nonce, aad, buffer, tag)
    } else if uses_simd(aad, buffer.len()) {
        open_mac::<C, SimdPoly>(key, nonce, aad, buffer, tag)
    } else {
        open_mac::<C, SoftPoly>(key, nonce, aad, buffer, tag)
    }
}

/// Messages up to this many bytes take their Poly1305 key and keystream from one keystream call
/// of whole groups of four blocks: the AVX2 ChaCha20 backend computes four blocks per call even
/// when asked for one, so the usual order (the Poly1305 key block, then the body and its partial
/// last block) would pay for up to twice the blocks it uses.
const SHORT: usize = SHORT_KEYSTREAM - 64;
const SHORT_KEYSTREAM: usize = 512;

fn seal_short<C: KeyIvInit + StreamCipher>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    mut buffer: InOutBuf<'_, '_, u8>,
) -> Result<[u8; TAG_LEN], AeadError> {
    let keystream = short_keystream::<C>(key, nonce, buffer.len())?;
    let (poly_key, body) = split_keystream(&keystream.0, buffer.len())?;
    buffer.xor_in2out(body);
    Ok(SoftPoly::tag(poly_key, aad, buffer.get_out()))
}

fn open_short<C: KeyIvInit + StreamCipher>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    mut buffer: InOutBuf<'_, '_, u8>,
    tag: &[u8; TAG_LEN],
) -> Result<(), AeadError> {
    let keystream = short_keystream::<C>(key, nonce, buffer.len())?;
    let (poly_key, body) = split_keystream(&keystream.0, buffer.len())?;
    let expected = Zeroizing::new(SoftPoly::tag(poly_key, aad, buffer.get_in()));
    if !ct_eq(&expected, tag) {
        return Err(AeadError::Auth);
    }
    buffer.xor_in2out(body);
    Ok(())
}

/// A short keystream on the stack, wiped on drop. `Zeroizing` writes it byte by byte (volatile),
/// which costs as much as computing it; a `memset` that the optimiser must assume is observed
/// (`black_box`) does the same job at memory speed.
struct Keystream([u8; SHORT_KEYSTREAM]);

impl Drop for Keystream {
    fn drop(&mut self) {
        self.0.fill(0);
        core::hint::black_box(&mut self.0);
    }
}

/// The keystream from block 0, enough for a `len`-byte body, in whole groups of four blocks.
fn short_keystream<C: KeyIvInit + StreamCipher>(
    key: &[u8; 32],
    nonce: &[u8],
    len: usize,
) -> Result<Keystream, AeadError> {
    let mut keystream = Keystream([0u8; SHORT_KEYSTREAM]);
    let blocks = (64 + len).div_ceil(256) * 256;
    let used = keystream.0.get_mut(..blocks).ok_or(AeadError::TooLong)?;
    new_cipher::<C>(key, nonce)?.apply_keystream(used);
    Ok(keystream)
}

/// The Poly1305 key (block 0's first half) and the `len` keystream bytes from block 1 on.
fn split_keystream(
    keystream: &[u8; SHORT_KEYSTREAM],
    len: usize,
) -> Result<(&[u8; 32], &[u8]), AeadError> {
    let (block0, rest) = keystream.split_at(64);
    let poly_key = block0.first_chunk::<32>().ok_or(AeadError::TooLong)?;
    Ok((poly_key, rest.get(..len).ok_or(AeadError::TooLong)?))
}

fn new_cipher<C: KeyIvInit>(key: &[u8; 32], nonce: &[u8]) -> Result<C, AeadError> {
    let iv = chacha20::cipher::Iv::<C>::try_from(nonce).map_err(|_| AeadError::NonceLength)?;
    let key = chacha20::cipher::Key::<C>::try_from(&key[..]).map_err(|_| AeadError::NonceLength)?;
    Ok(C::new(&key, &iv))
}

fn uses_simd(aad: &[u8], ciphertext_len: usize) -> bool {
    aad.len().saturating_add(ciphertext_len) >= SIMD_POLY1305_FROM
}

fn seal_mac<C: KeyIvInit + StreamCipher + StreamCipherSeek, M: Poly>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    mut buffer: InOutBuf<'_, '_, u8>,
) -> Result<[u8; TAG_LEN], AeadError> {
    let (mut cipher, poly_key) = keyed::<C>(key, nonce)?;
    // Two passes (encrypt, then MAC): measured faster here than interleaving 2–16 KiB chunks,
    // whose per-call set-up in both crates outweighs the cache locality.
    cipher.apply_keystream_inout(buffer.reborrow());
    Ok(M::tag(&poly_key, aad, buffer.get_out()))
}

fn open_mac<C: KeyIvInit + StreamCipher + StreamCipherSeek, M: Poly>(
    key: &[u8; 32],
    nonce: &[u8],
    aad: &[u8],
    buffer: InOutBuf<'_, '_, u8>,
    tag: &[u8; TAG_LEN],
) -> Result<(), AeadError> {
    let (mut cipher, poly_key) = keyed::<C>(key, nonce)?;
    let expected = Zeroizing::new(M::tag(&poly_key, aad, buffer.get_in()));
    if !ct_eq(&expected, tag) {
        return Err(AeadError::Auth);
    }
    cipher.apply_keystream_inout(buffer);
    Ok(())
}

/// Poly1305 over `pad16(aad) ‖ pad16(ciphertext) ‖ le64(|aad|) ‖ le64(|ciphertext|)`.
trait Poly {
    fn tag(poly_key: &[u8; 32], aad: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN];
}

fn lengths(aad: &[u8], ciphertext: &[u8]) -> [u8; 16] {
    let mut lengths = [0u8; 16];
    lengths[..8].copy_from_slice(&(aad.len() as u64).to_le_bytes());
    lengths[8..].copy_from_slice(&(ciphertext.len() as u64).to_le_bytes());
    lengths
}

/// poly1305 0.9, portable backend (the workspace's `poly1305_backend="soft"`).
enum SoftPoly {}

impl Poly for SoftPoly {
    #[inline]
    fn tag(poly_key: &[u8; 32], aad: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
        use poly1305::universal_hash::{KeyInit, UniversalHash};
        let mut mac = poly1305::Poly1305::new(&(*poly_key).into());
        mac.update_padded(aad);
        mac.update_padded(ciphertext);
        mac.update_padded(&lengths(aad, ciphertext));
        mac.finalize().into()
    }
}

/// poly1305 0.8, AVX2 backend where the CPU has it.
enum SimdPoly {}

impl Poly for SimdPoly {
    fn tag(poly_key: &[u8; 32], aad: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
        use poly1305_simd::universal_hash::{KeyInit, UniversalHash};
        let mut mac = poly1305_simd::Poly1305::new(poly1305_simd::Key::from_slice(poly_key));
        mac.update_padded(aad);
        // The AVX2 state takes four blocks at a time only while it holds no cached blocks; an
        // AAD of, say, two blocks would push every ciphertext block through its one-block path
        // (universal-hash 0.5 does not realign). The blocks that complete the AAD's group of four
        // are fed on their own, the rest aligned.
        let skew = 16 * ((4 - aad.len().div_ceil(16) % 4) % 4);
        let (first, rest) = ciphertext.split_at(skew.min(ciphertext.len()));
        mac.update_padded(first);
        mac.update_padded(rest);
        mac.update_padded(&lengths(aad, ciphertext));
        mac.finalize().into()
    }
}

/// The stream cipher positioned at block 1, and the one-time Poly1305 key (block 0's first half).
fn keyed<C: KeyIvInit + StreamCipher + StreamCipherSeek>(
    key: &[u8; 32],
    nonce: &[u8],
) -> Result<(C, Zeroizing<[u8; 32]>), AeadError> {
    let mut cipher = new_cipher::<C>(key, nonce)?;
    let mut poly_key = Zeroizing::new([0u8; 32]);
    cipher.apply_keystream(&mut poly_key[..]);
    cipher.seek(64u64);
    Ok((cipher, poly_key))
}

/// Constant-time equality of two tags.
pub(crate) fn ct_eq(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}
