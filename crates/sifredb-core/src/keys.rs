//! Root keys and the HKDF-SHA256 derivation of per-context keys (docs/FORMAT.md, "Key derivation").

use core::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::blind_index::BlindIndexKey;
use crate::cipher::{DeterministicCipher, RandomizedCipher};
use crate::context::validate_context;
use crate::error::{Error, Result};
use crate::format::Algorithm;

/// Length of a root key.
pub const ROOT_KEY_LEN: usize = 32;

/// HKDF salt shared by every derivation.
pub const HKDF_SALT: &[u8] = b"SifreDB/v1/hkdf-salt";

/// Prefix of every HKDF info string.
pub const INFO_PREFIX: &[u8] = b"SifreDB/v1/";

/// Longest blind-index name, in UTF-8 bytes.
pub const MAX_INDEX_NAME_LEN: usize = 255;

/// What a derived key is for; the purpose string is part of the HKDF info.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Randomized vault, ChaCha20-Poly1305 (32-byte key).
    ChaCha20Poly1305,
    /// Randomized vault, XChaCha20-Poly1305 (32-byte key).
    XChaCha20Poly1305,
    /// Deterministic vault, AES-256-SIV (64-byte key).
    Aes256Siv,
    /// Blind index (32-byte HMAC-SHA256 key); the index name is part of the info.
    BlindIndex,
}

impl Purpose {
    /// The ASCII purpose string of the HKDF info.
    pub fn label(self) -> &'static str {
        match self {
            Self::ChaCha20Poly1305 => "chacha20poly1305",
            Self::XChaCha20Poly1305 => "xchacha20poly1305",
            Self::Aes256Siv => "aes-256-siv",
            Self::BlindIndex => "blind-index",
        }
    }

    /// Length of the derived key.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes256Siv => 64,
            _ => 32,
        }
    }
}

/// One version of the 32-byte root key.
///
/// Only the HKDF pseudorandom key is kept (as a keyed HMAC state, wiped on drop): deriving a
/// per-context key then costs HKDF-Expand alone.
#[derive(Clone)]
pub struct RootKey {
    version: u32,
    prk: Hkdf<Sha256>,
}

impl RootKey {
    /// Imports `material` (32 bytes) as root key `version` (`1..=u32::MAX`). The caller should wipe
    /// its copy of `material`.
    pub fn new(version: u32, material: &[u8]) -> Result<Self> {
        if version == 0 {
            return Err(Error::len("version", "1..=4294967295", 0));
        }
        if material.len() != ROOT_KEY_LEN {
            return Err(Error::len("key", "32 bytes", material.len()));
        }
        Ok(Self {
            version,
            prk: Hkdf::new(Some(HKDF_SALT), material),
        })
    }

    /// The key version written into envelope headers.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Cipher for the randomized vault: `algorithm` is ChaCha20-Poly1305 or XChaCha20-Poly1305,
    /// `context` a canonical context.
    pub fn randomized_cipher(
        &self,
        algorithm: Algorithm,
        context: &[u8],
    ) -> Result<RandomizedCipher> {
        let purpose = match algorithm {
            Algorithm::ChaCha20Poly1305 => Purpose::ChaCha20Poly1305,
            Algorithm::XChaCha20Poly1305 => Purpose::XChaCha20Poly1305,
            Algorithm::Aes256Siv => {
                return Err(Error::Invalid {
                    arg: "algorithm",
                    reason: "is not a randomized algorithm",
                })
            }
        };
        let mut key = Zeroizing::new([0u8; 32]);
        self.derive_into(purpose, context, None, key.as_mut_slice())?;
        RandomizedCipher::new(algorithm, self.version, &key, context)
    }

    /// Cipher for the deterministic vault (AES-256-SIV) of `context`.
    pub fn deterministic_cipher(&self, context: &[u8]) -> Result<DeterministicCipher> {
        let mut key = Zeroizing::new([0u8; 64]);
        self.derive_into(Purpose::Aes256Siv, context, None, key.as_mut_slice())?;
        Ok(DeterministicCipher::new(self.version, &key, context))
    }

    /// HMAC key of blind index `index_name` (1..=255 bytes of UTF-8) of `context`.
    pub fn blind_index(&self, context: &[u8], index_name: &[u8]) -> Result<BlindIndexKey> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.derive_into(
            Purpose::BlindIndex,
            context,
            Some(index_name),
            key.as_mut_slice(),
        )?;
        BlindIndexKey::new(self.version, key.as_slice())
    }

    /// The raw derived key, for test vectors and cross-implementation checks only: the handles
    /// above keep keys to themselves. `index_name` is required for [`Purpose::BlindIndex`] and
    /// rejected otherwise.
    pub fn derive_key(
        &self,
        purpose: Purpose,
        context: &[u8],
        index_name: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let mut key = Zeroizing::new(vec![0u8; purpose.key_len()]);
        self.derive_into(purpose, context, index_name, &mut key)?;
        Ok(key)
    }

    fn derive_into(
        &self,
        purpose: Purpose,
        context: &[u8],
        index_name: Option<&[u8]>,
        okm: &mut [u8],
    ) -> Result<()> {
        validate_context(context)?;
        // Only blind-index keys carry `u16be len ‖ index name`; other infos end with the context.
        let name_len: [u8; 2];
        let suffix: [&[u8]; 2] = match (purpose, index_name) {
            (Purpose::BlindIndex, Some(name)) => {
                if !(1..=MAX_INDEX_NAME_LEN).contains(&name.len()) {
                    return Err(Error::len("index name", "1..=255 bytes", name.len()));
                }
                if core::str::from_utf8(name).is_err() {
                    return Err(Error::Invalid {
                        arg: "index name",
                        reason: "is not valid UTF-8",
                    });
                }
                let len = u16::try_from(name.len())
                    .map_err(|_| Error::len("index name", "1..=255 bytes", name.len()))?;
                name_len = len.to_be_bytes();
                [&name_len, name]
            }
            (Purpose::BlindIndex, None) => {
                return Err(Error::len("index name", "1..=255 bytes", 0))
            }
            (_, Some(_)) => {
                return Err(Error::Invalid {
                    arg: "index name",
                    reason: "is only for blind indexes",
                })
            }
            (_, None) => [&[], &[]],
        };
        let info = [
            INFO_PREFIX,
            purpose.label().as_bytes(),
            &[0],
            context,
            suffix[0],
            suffix[1],
        ];
        self.prk
            .expand_multi_info(&info, okm)
            .map_err(|_| Error::len("derived key", "at most 8160 bytes", okm.len()))
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootKey")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::encode_context;
    use crate::primitives::hkdf_sha256;

    #[test]
    fn derivation_matches_the_spec_formula() {
        let material: Vec<u8> = (0u8..32).collect();
        let root = RootKey::new(1, &material).unwrap();
        let ctx = encode_context(Some("acme"), "users", "email", 1).unwrap();
        let mut info = b"SifreDB/v1/blind-index\0".to_vec();
        info.extend_from_slice(&ctx);
        info.extend_from_slice(&[0, 5]);
        info.extend_from_slice(b"email");
        let expected = hkdf_sha256(&material, HKDF_SALT, &info, 32).unwrap();
        let got = root
            .derive_key(Purpose::BlindIndex, &ctx, Some(b"email"))
            .unwrap();
        assert_eq!(got.as_slice(), expected.as_slice());

        let mut info = b"SifreDB/v1/aes-256-siv\0".to_vec();
        info.extend_from_slice(&ctx);
        let expected = hkdf_sha256(&material, HKDF_SALT, &info, 64).unwrap();
        assert_eq!(
            root.derive_key(Purpose::Aes256Siv, &ctx, None)
                .unwrap()
                .as_slice(),
            expected.as_slice()
        );
    }

    #[test]
    fn rejections() {
        assert!(RootKey::new(0, &[0; 32]).is_err());
        assert_eq!(
            RootKey::new(1, &[0; 31]).unwrap_err().to_string(),
            "key must be 32 bytes, got 31"
        );
        let root = RootKey::new(1, &[7; 32]).unwrap();
        let ctx = encode_context(None, "t", "c", 1).unwrap();
        assert!(root.randomized_cipher(Algorithm::Aes256Siv, &ctx).is_err());
        assert!(root
            .randomized_cipher(Algorithm::ChaCha20Poly1305, &[])
            .is_err());
        assert!(root.blind_index(&ctx, b"").is_err());
        assert!(root.blind_index(&ctx, &[b'x'; 256]).is_err());
        assert!(root.blind_index(&ctx, &[0xff]).is_err());
        assert!(root.derive_key(Purpose::BlindIndex, &ctx, None).is_err());
        assert!(root
            .derive_key(Purpose::Aes256Siv, &ctx, Some(b"x"))
            .is_err());
        assert!(format!("{root:?}").contains("version: 1"));
    }
}
