//! The raw RFC algorithms over byte slices, without the SifreDB format. These back the
//! `primitives` object of the JavaScript API and the Wycheproof tests.

use hkdf::Hkdf;
use hmac::KeyInit;
use hmac::{Hmac, Mac};
use inout::InOutBuf;
use sha2::Sha256;

use crate::chacha_poly::{ChaChaPoly, Variant};
use crate::error::{Error, Result};
use crate::format::TAG_LEN;
use crate::random;
use crate::siv::Aes256Siv;
use crate::siv_vector::{aes_siv_decrypt_components, aes_siv_encrypt_components};

/// Largest HKDF-SHA256 output (255 blocks of 32 bytes, RFC 5869).
pub const HKDF_SHA256_MAX_LEN: usize = 255 * 32;

/// Largest [`random_bytes`] request.
pub const MAX_RANDOM_BYTES: usize = 65536;

/// AES-256-SIV (RFC 5297) with `ad` as the single associated-data header: returns `SIV ‖ ciphertext`.
/// `key` is 64 bytes (MAC key ‖ CTR key).
pub fn aes_siv_encrypt(key: &[u8], plaintext: &[u8], ad: &[u8]) -> Result<Vec<u8>> {
    aes_siv_encrypt_components(key, plaintext, &[ad])
}

/// Inverse of [`aes_siv_encrypt`]; [`Error::Auth`] when the SIV does not verify.
pub fn aes_siv_decrypt(key: &[u8], ciphertext: &[u8], ad: &[u8]) -> Result<Vec<u8>> {
    aes_siv_decrypt_components(key, ciphertext, &[ad])
}

/// ChaCha20-Poly1305 (RFC 8439): returns `ciphertext ‖ tag`. `key` 32 bytes, `nonce` 12 bytes.
pub fn chacha20_poly1305_encrypt(
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    aead_encrypt(Variant::ChaCha20, key, nonce, plaintext, aad)
}

/// Inverse of [`chacha20_poly1305_encrypt`]; [`Error::Auth`] when the tag does not verify.
pub fn chacha20_poly1305_decrypt(
    key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    aead_decrypt(Variant::ChaCha20, key, nonce, ciphertext, aad)
}

/// XChaCha20-Poly1305: returns `ciphertext ‖ tag`. `key` 32 bytes, `nonce` 24 bytes.
pub fn xchacha20_poly1305_encrypt(
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    aead_encrypt(Variant::XChaCha20, key, nonce, plaintext, aad)
}

/// Inverse of [`xchacha20_poly1305_encrypt`]; [`Error::Auth`] when the tag does not verify.
pub fn xchacha20_poly1305_decrypt(
    key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    aead_decrypt(Variant::XChaCha20, key, nonce, ciphertext, aad)
}

/// HKDF-SHA256 (RFC 5869) extract-then-expand to `len` bytes, `1..=8160`.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], len: usize) -> Result<Vec<u8>> {
    if !(1..=HKDF_SHA256_MAX_LEN).contains(&len) {
        return Err(Error::len("length", "1..=8160", len));
    }
    let mut okm = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .map_err(|_| Error::len("length", "1..=8160", len))?;
    Ok(okm)
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key` (any length).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Result<[u8; 32]> {
    let mut mac = hmac_key(key)?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().into())
}

/// `n` bytes (`0..=65536`) straight from the OS CSPRNG.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    if n > MAX_RANDOM_BYTES {
        return Err(Error::len("n", "0..=65536", n));
    }
    let mut out = vec![0u8; n];
    random::fill_os(&mut out)?;
    Ok(out)
}

pub(crate) fn hmac_key(key: &[u8]) -> Result<Hmac<Sha256>> {
    // HMAC accepts keys of any length, so this error is unreachable; it is mapped, not unwrapped.
    Hmac::<Sha256>::new_from_slice(key).map_err(|_| Error::len("key", "any length", key.len()))
}

pub(crate) fn siv_from_slice(key: &[u8]) -> Result<Aes256Siv> {
    let key: &[u8; 64] = key
        .try_into()
        .map_err(|_| Error::len("key", "64 bytes", key.len()))?;
    Ok(Aes256Siv::new(key))
}

fn chacha_key(variant: Variant, key: &[u8], nonce: &[u8]) -> Result<ChaChaPoly> {
    let key: &[u8; 32] = key
        .try_into()
        .map_err(|_| Error::len("key", "32 bytes", key.len()))?;
    if nonce.len() != variant.nonce_len() {
        let expected = match variant {
            Variant::ChaCha20 => "12 bytes",
            Variant::XChaCha20 => "24 bytes",
        };
        return Err(Error::len("nonce", expected, nonce.len()));
    }
    Ok(ChaChaPoly::new(variant, key))
}

fn aead_encrypt(
    variant: Variant,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; plaintext.len() + TAG_LEN];
    aead_seal_into(variant, key, nonce, plaintext, aad, &mut out)?;
    Ok(out)
}

/// [`chacha20_poly1305_encrypt`] into `out`, which must be `plaintext.len() + 16` bytes: no
/// allocation (the fast path of the Node binding writes straight into a JS buffer).
pub fn chacha20_poly1305_encrypt_into(
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<()> {
    aead_seal_into(Variant::ChaCha20, key, nonce, plaintext, aad, out)
}

/// [`xchacha20_poly1305_encrypt`] into `out` (`plaintext.len() + 16` bytes).
pub fn xchacha20_poly1305_encrypt_into(
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<()> {
    aead_seal_into(Variant::XChaCha20, key, nonce, plaintext, aad, out)
}

fn aead_seal_into(
    variant: Variant,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let aead = chacha_key(variant, key, nonce)?;
    let expected = plaintext.len().checked_add(TAG_LEN).ok_or(TOO_LONG)?;
    if out.len() != expected {
        return Err(Error::len("out", "plaintext length + 16 bytes", out.len()));
    }
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    let tag = aead
        .encrypt_inout_detached(
            nonce,
            aad,
            InOutBuf::new(plaintext, body).map_err(|_| TOO_LONG)?,
        )
        .map_err(|_| TOO_LONG)?;
    tag_out.copy_from_slice(&tag);
    Ok(())
}

const TOO_LONG: Error = Error::Invalid {
    arg: "plaintext",
    reason: "is too long",
};

fn aead_decrypt(
    variant: Variant,
    key: &[u8],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let aead = chacha_key(variant, key, nonce)?;
    let (body, tag) = ciphertext.split_last_chunk::<TAG_LEN>().ok_or(Error::len(
        "ciphertext",
        "at least 16 bytes",
        ciphertext.len(),
    ))?;
    let mut out = vec![0u8; body.len()];
    aead.decrypt_inout_detached(
        nonce,
        aad,
        InOutBuf::new(body, &mut out).map_err(|_| Error::Auth)?,
        tag,
    )
    .map_err(|_| Error::Auth)?;
    Ok(out)
}
