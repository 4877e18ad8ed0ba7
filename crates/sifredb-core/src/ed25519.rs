//! Ed25519 (RFC 8032) for audit signatures: signing from a 32-byte seed, strict verification, and
//! batch verification.
//!
//! Verification is *strict* and the pure-JS backend (`lib/backend/js/ed25519.ts`) checks exactly
//! the same conditions, so both backends reach the same verdict on every input:
//! - the signature is 64 bytes and `S < L` (no malleable, unreduced `S`);
//! - the public key `A` and the commitment `R` are canonical encodings (`y < p`, no `x = 0` with the
//!   sign bit set): `ed25519-dalek` alone accepts a non-canonical `A`, so this module re-encodes it;
//! - neither `A` nor `R` is of small order;
//! - the cofactorless equation holds: `[S]B - [k]A` encodes to exactly the bytes of `R`.
//!
//! A failed verification is `Ok(false)`, whatever made it fail; only a public key of the wrong
//! length is an error (the caller passed the wrong thing, not a bad signature).

use std::collections::HashMap;

use curve25519_dalek::Scalar;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of a secret key (the RFC 8032 seed).
pub const SECRET_KEY_LEN: usize = 32;
/// Length of a public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a signature (`R ‖ S`).
pub const SIGNATURE_LEN: usize = 64;

fn signing_key(secret: &[u8]) -> Result<SigningKey> {
    let seed: &[u8; SECRET_KEY_LEN] = secret
        .try_into()
        .map_err(|_| Error::len("secretKey", "32 bytes", secret.len()))?;
    // `SigningKey` wipes itself on drop (the `zeroize` feature); the seed copy is wiped here.
    let seed = Zeroizing::new(*seed);
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key of a 32-byte secret key.
pub fn public_key(secret: &[u8]) -> Result<[u8; PUBLIC_KEY_LEN]> {
    Ok(signing_key(secret)?.verifying_key().to_bytes())
}

/// The RFC 8032 signature of `message` (deterministic: the same key and message give the same bytes).
pub fn sign(secret: &[u8], message: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
    Ok(signing_key(secret)?.sign(message).to_bytes())
}

/// `y < p` for the encoding of a point (its sign bit aside): `ed25519-dalek` reduces `y` mod p
/// when it decompresses, so a non-canonical encoding would otherwise pass for the canonical one.
/// The other non-canonical form, `x = 0` with the sign bit set, only exists for `y = ±1`, points of
/// small order that the strict checks refuse anyway.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    // p = 2^255 - 19, little-endian: ed ff … ff 7f.
    let mut y = *bytes;
    y[31] &= 0x7f;
    // y ≥ p only when bytes 1..=30 are all ff, byte 31 is 7f and byte 0 is ≥ ed.
    !(y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed)
}

/// A public key that passes the strict checks, or `None` (non-canonical or of small order).
fn strict_public_key(public: &[u8; PUBLIC_KEY_LEN]) -> Option<VerifyingKey> {
    if !canonical_y(public) {
        return None;
    }
    let key = VerifyingKey::from_bytes(public).ok()?;
    (!key.is_weak()).then_some(key)
}

fn public_array(public: &[u8]) -> Result<&[u8; PUBLIC_KEY_LEN]> {
    public
        .try_into()
        .map_err(|_| Error::len("publicKey", "32 bytes", public.len()))
}

/// Strict verification (see the module documentation): `Ok(true)` when `signature` is valid.
pub fn verify(public: &[u8], message: &[u8], signature: &[u8]) -> Result<bool> {
    let public = public_array(public)?;
    let Ok(signature) = Signature::from_slice(signature) else {
        return Ok(false);
    };
    let Some(key) = strict_public_key(public) else {
        return Ok(false);
    };
    // `verify_strict` refuses `S ≥ L`, a small-order `R` or `A`, and compares the recomputed `R`
    // by its bytes (so a non-canonical `R` never matches).
    Ok(key.verify_strict(message, &signature).is_ok())
}

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    /// The signer's 32-byte public key.
    pub public_key: &'a [u8],
    /// The signed message.
    pub message: &'a [u8],
    /// The 64-byte signature.
    pub signature: &'a [u8],
}

/// Verifies many signatures at once: one verdict per item, each equal to [`verify`]'s.
///
/// Items that pass the per-item strict checks (lengths, canonical encodings, no small-order
/// point, `S < L`) are checked together by `ed25519-dalek`'s randomized batch equation, about
/// twice as fast as one by one; when the batch fails, each of its items is verified alone to say
/// which. The batch equation is cofactorless like [`verify`], with 128-bit random coefficients, so
/// it accepts an invalid signature only with negligible probability, except a signature whose `R`
/// differs from a valid signature's by a small-order point: that is no forgery (the signer did
/// sign this message), and callers that must reject such malleated bytes hash them (the audit
/// chain hashes records, not signatures).
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<Vec<bool>> {
    let mut verdicts = vec![false; items.len()];
    let mut keys = Vec::with_capacity(items.len());
    let mut signatures = Vec::with_capacity(items.len());
    let mut messages: Vec<&[u8]> = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    // Records of one table are signed by a handful of keys: each is decompressed and checked once.
    let mut checked: HashMap<[u8; PUBLIC_KEY_LEN], Option<VerifyingKey>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let public = public_array(item.public_key)?;
        let Ok(signature) = Signature::from_slice(item.signature) else {
            continue;
        };
        let Some(key) = *checked
            .entry(*public)
            .or_insert_with(|| strict_public_key(public))
        else {
            continue;
        };
        if !strict_signature_shape(&signature) {
            continue;
        }
        keys.push(key);
        signatures.push(signature);
        messages.push(item.message);
        positions.push(i);
    }
    if positions.is_empty() {
        return Ok(verdicts);
    }
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        for i in positions {
            verdicts[i] = true;
        }
    } else {
        for (j, i) in positions.into_iter().enumerate() {
            verdicts[i] = keys[j].verify_strict(messages[j], &signatures[j]).is_ok();
        }
    }
    Ok(verdicts)
}

/// The checks [`VerifyingKey::verify_strict`] makes on `R` and `S` before its equation, which
/// the batch equation does not make: `S < L`, and `R` canonical and not of small order.
fn strict_signature_shape(signature: &Signature) -> bool {
    let s_canonical = bool::from(Scalar::from_canonical_bytes(*signature.s_bytes()).is_some());
    // `R` is checked as a public key is: a canonical encoding of a point not of small order.
    s_canonical && strict_public_key(signature.r_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    /// `canonical_y` agrees with a decompress/compress round trip on every encoding near p and on
    /// points with the sign bit set, the encodings where the two could differ.
    #[test]
    fn canonical_y_is_the_round_trip() {
        let mut encodings = Vec::new();
        for low in 0xe0..=0xffu8 {
            for high in [0x7fu8, 0xff] {
                let mut y = [0xffu8; 32];
                y[0] = low;
                y[31] = high;
                encodings.push(y);
            }
        }
        for small in 0..40u8 {
            for sign in [0u8, 0x80] {
                let mut y = [0u8; 32];
                y[0] = small;
                y[31] = sign;
                encodings.push(y);
            }
        }
        for y in encodings {
            if let Some(point) = CompressedEdwardsY(y).decompress() {
                let round_trip = point.compress().to_bytes() == y;
                // x = 0 with the sign bit only differs for y = ±1, which are of small order.
                if round_trip != canonical_y(&y) {
                    assert!(point.is_small_order(), "{y:02x?}");
                }
            }
        }
    }
}
