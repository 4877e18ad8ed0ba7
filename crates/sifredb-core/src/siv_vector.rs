//! AES-256-SIV (RFC 5297) with a vector of associated-data components, for the raw primitives.
//!
//! SifreDB's own formats pass one associated-data string; other writers pass several. SifreDB for
//! Rust's `DeterministicVault` (crate `sifredb` 0.1.1) seals through the `aes-siv` crate's AEAD
//! interface, whose S2V components are `[aad, nonce]`: there, `[context, 16 zero bytes]`.
//! Components are given back to back in one buffer with their lengths (`lens`), which is how the
//! addon passes them: one allocation, lengths read once.

use inout::InOutBuf;

use crate::error::{Error, Result};
use crate::format::TAG_LEN;
use crate::primitives::siv_from_slice;

/// Most associated-data components S2V takes alongside the plaintext (RFC 5297 §7: at most 127
/// inputs in all).
pub const MAX_AD_COMPONENTS: usize = 126;

/// Cuts `ads` into the components `lens` describes; the lengths must add up to `ads.len()`.
pub fn split_components<'a>(ads: &'a [u8], lens: &[u32]) -> Result<Vec<&'a [u8]>> {
    if lens.len() > MAX_AD_COMPONENTS {
        return Err(Error::len("ad", "at most 126 components", lens.len()));
    }
    let mut components = Vec::with_capacity(lens.len());
    let mut rest = ads;
    for &len in lens {
        let len = usize::try_from(len).map_err(|_| Error::Invalid {
            arg: "adLens",
            reason: "do not match the associated data",
        })?;
        if len > rest.len() {
            return Err(Error::Invalid {
                arg: "adLens",
                reason: "do not match the associated data",
            });
        }
        let (component, tail) = rest.split_at(len);
        components.push(component);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(Error::Invalid {
            arg: "adLens",
            reason: "do not match the associated data",
        });
    }
    Ok(components)
}

/// AES-256-SIV over `components` then `plaintext`: returns `SIV ‖ ciphertext`. `key` is 64 bytes.
pub fn aes_siv_encrypt_components(
    key: &[u8],
    plaintext: &[u8],
    components: &[&[u8]],
) -> Result<Vec<u8>> {
    check_count(components)?;
    let siv = siv_from_slice(key)?;
    let mut out = vec![0u8; TAG_LEN + plaintext.len()];
    let (iv, body) = out.split_at_mut(TAG_LEN);
    body.copy_from_slice(plaintext);
    iv.copy_from_slice(&siv.seal_in_place(&siv.ad_state_components(components), body));
    Ok(out)
}

/// Inverse of [`aes_siv_encrypt_components`]; [`Error::Auth`] when the SIV does not verify.
pub fn aes_siv_decrypt_components(
    key: &[u8],
    ciphertext: &[u8],
    components: &[&[u8]],
) -> Result<Vec<u8>> {
    check_count(components)?;
    let siv = siv_from_slice(key)?;
    let (iv, body) = ciphertext.split_first_chunk::<TAG_LEN>().ok_or(Error::len(
        "ciphertext",
        "at least 16 bytes",
        ciphertext.len(),
    ))?;
    // SIV decrypts before it verifies: a forgery's unauthenticated plaintext is wiped on the way out.
    let mut out = vec![0u8; body.len()];
    let buf = InOutBuf::new(body, &mut out).map_err(|_| Error::Auth)?;
    siv.open_inout(&siv.ad_state_components(components), iv, buf)
        .map_err(|_| Error::Auth)?;
    Ok(out)
}

fn check_count(components: &[&[u8]]) -> Result<()> {
    if components.len() > MAX_AD_COMPONENTS {
        return Err(Error::len("ad", "at most 126 components", components.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{aes_siv_decrypt, aes_siv_encrypt};

    #[test]
    fn one_component_is_the_single_string_form() {
        let key = [7u8; 64];
        for len in [0usize, 1, 15, 16, 17, 40] {
            let pt = vec![0x5a; len];
            let one = aes_siv_encrypt_components(&key, &pt, &[b"header"]).unwrap();
            assert_eq!(one, aes_siv_encrypt(&key, &pt, b"header").unwrap());
            assert_eq!(aes_siv_decrypt(&key, &one, b"header").unwrap(), pt);
        }
    }

    #[test]
    fn order_count_and_limit_matter() {
        let key = [9u8; 64];
        let ab = aes_siv_encrypt_components(&key, b"x", &[b"a", b"b"]).unwrap();
        let ba = aes_siv_encrypt_components(&key, b"x", &[b"b", b"a"]).unwrap();
        let joined = aes_siv_encrypt_components(&key, b"x", &[b"ab"]).unwrap();
        let none = aes_siv_encrypt_components(&key, b"x", &[]).unwrap();
        let empty = aes_siv_encrypt_components(&key, b"x", &[b""]).unwrap();
        let all = [&ab, &ba, &joined, &none, &empty];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            aes_siv_decrypt_components(&key, &ab, &[b"b", b"a"]),
            Err(Error::Auth)
        );
        let many = vec![&b""[..]; 127];
        let err = aes_siv_encrypt_components(&key, b"x", &many).unwrap_err();
        assert_eq!(err.code(), "ERR_SIFREDB_INPUT");
        assert!(aes_siv_encrypt_components(&key, b"x", &many[..126]).is_ok());
    }

    #[test]
    fn split_checks_lengths() {
        assert_eq!(
            split_components(b"abc", &[1, 2]).unwrap(),
            vec![&b"a"[..], b"bc"]
        );
        assert!(split_components(b"abc", &[1, 1]).is_err());
        assert!(split_components(b"abc", &[4]).is_err());
        assert!(split_components(b"abc", &[u32::MAX, 1]).is_err());
        assert!(split_components(b"", &[0; 127]).is_err());
        assert_eq!(split_components(b"", &[]).unwrap().len(), 0);
    }
}
