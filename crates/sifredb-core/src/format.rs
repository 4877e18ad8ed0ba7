//! The v1 binary envelope (docs/FORMAT.md): `header ‖ nonce ‖ body`.

use crate::error::{Error, Result};

/// First byte of every envelope (ASCII `S`).
pub const MAGIC: u8 = 0x53;
/// Second byte: the format version this crate reads and writes.
pub const FORMAT_V1: u8 = 0x01;
/// Length of `magic ‖ version ‖ algorithm ‖ key version (u32be)`.
pub const HEADER_LEN: usize = 7;
/// Poly1305 tag and AES-SIV synthetic IV are both 16 bytes.
pub const TAG_LEN: usize = 16;
/// ChaCha20-Poly1305 nonce length.
pub const CHACHA_NONCE_LEN: usize = 12;
/// XChaCha20-Poly1305 nonce length.
pub const XCHACHA_NONCE_LEN: usize = 24;
/// Length of the type tag that starts every plaintext.
pub const TYPE_TAG_LEN: usize = 1;

/// Algorithm id, byte 2 of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Algorithm {
    /// ChaCha20-Poly1305 (RFC 8439), random 12-byte nonce.
    ChaCha20Poly1305 = 1,
    /// XChaCha20-Poly1305, random 24-byte nonce.
    XChaCha20Poly1305 = 2,
    /// AES-256-SIV (RFC 5297), deterministic, no nonce.
    Aes256Siv = 3,
}

impl Algorithm {
    /// The id written into the header.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The algorithm with header id `id`; [`Error::Format`] for unknown ids.
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            1 => Ok(Self::ChaCha20Poly1305),
            2 => Ok(Self::XChaCha20Poly1305),
            3 => Ok(Self::Aes256Siv),
            _ => Err(Error::Format("unknown algorithm")),
        }
    }

    /// Length of the nonce field (0 for AES-SIV).
    pub fn nonce_len(self) -> usize {
        match self {
            Self::ChaCha20Poly1305 => CHACHA_NONCE_LEN,
            Self::XChaCha20Poly1305 => XCHACHA_NONCE_LEN,
            Self::Aes256Siv => 0,
        }
    }

    /// Bytes an envelope adds to its plaintext: header, nonce and tag.
    pub fn overhead(self) -> usize {
        HEADER_LEN + self.nonce_len() + TAG_LEN
    }
}

/// Parses an algorithm id given as an argument (not read from an envelope): unknown ids are
/// [`Error::Invalid`] (`ERR_SIFREDB_INPUT`) rather than a format error.
impl TryFrom<u8> for Algorithm {
    type Error = Error;

    fn try_from(id: u8) -> Result<Self> {
        Self::from_id(id).map_err(|_| Error::Invalid {
            arg: "algorithm",
            reason: "is not 1, 2 or 3",
        })
    }
}

/// The first [`HEADER_LEN`] bytes of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Algorithm of the body.
    pub algorithm: Algorithm,
    /// Root key version, `1..=u32::MAX`.
    pub key_version: u32,
}

impl Header {
    /// The header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let v = self.key_version.to_be_bytes();
        [
            MAGIC,
            FORMAT_V1,
            self.algorithm.id(),
            v[0],
            v[1],
            v[2],
            v[3],
        ]
    }

    /// Parses the header at the start of `envelope`, checking every field.
    pub fn parse(envelope: &[u8]) -> Result<Self> {
        let Some(&[magic, version, algorithm, v0, v1, v2, v3]) =
            envelope.first_chunk::<HEADER_LEN>()
        else {
            return Err(Error::Format("truncated"));
        };
        if magic != MAGIC {
            return Err(Error::Format("bad magic byte"));
        }
        if version != FORMAT_V1 {
            return Err(Error::Format("unsupported format version"));
        }
        let algorithm = Algorithm::from_id(algorithm)?;
        let key_version = u32::from_be_bytes([v0, v1, v2, v3]);
        if key_version == 0 {
            return Err(Error::Format("key version 0 is invalid"));
        }
        Ok(Self {
            algorithm,
            key_version,
        })
    }
}

/// Length of the envelope sealing a `plaintext_len`-byte plaintext (type tag included).
pub fn sealed_len(algorithm: Algorithm, plaintext_len: usize) -> Result<usize> {
    plaintext_len
        .checked_add(algorithm.overhead())
        .ok_or(Error::len(
            "value",
            "smaller than the address space",
            plaintext_len,
        ))
}

/// Shortest valid envelope: its plaintext is a lone type tag.
pub fn min_envelope_len(algorithm: Algorithm) -> usize {
    algorithm.overhead() + TYPE_TAG_LEN
}

/// Length of the plaintext (type tag included) sealed in an `envelope_len`-byte envelope;
/// [`Error::Format`] when too short to hold even the type tag.
pub fn plaintext_len(algorithm: Algorithm, envelope_len: usize) -> Result<usize> {
    if envelope_len < min_envelope_len(algorithm) {
        return Err(Error::Format("truncated"));
    }
    Ok(envelope_len - algorithm.overhead())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_rejections() {
        let h = Header {
            algorithm: Algorithm::XChaCha20Poly1305,
            key_version: 0x0102_0304,
        };
        let bytes = h.encode();
        assert_eq!(bytes, [0x53, 1, 2, 1, 2, 3, 4]);
        assert_eq!(Header::parse(&bytes).unwrap(), h);
        assert_eq!(Header::parse(&bytes[..6]), Err(Error::Format("truncated")));
        let mut bad = bytes;
        bad[0] = 0x54;
        assert!(matches!(Header::parse(&bad), Err(Error::Format(_))));
        bad = bytes;
        bad[1] = 2;
        assert!(matches!(Header::parse(&bad), Err(Error::Format(_))));
        assert!(matches!(Algorithm::try_from(4), Err(Error::Invalid { .. })));
        assert_eq!(Algorithm::try_from(3), Ok(Algorithm::Aes256Siv));
        for alg in [0u8, 4, 255] {
            bad = bytes;
            bad[2] = alg;
            assert!(matches!(Header::parse(&bad), Err(Error::Format(_))));
        }
        bad = [0x53, 1, 1, 0, 0, 0, 0];
        assert!(matches!(Header::parse(&bad), Err(Error::Format(_))));
    }

    #[test]
    fn lengths_match_the_spec() {
        assert_eq!(Algorithm::ChaCha20Poly1305.overhead(), 35);
        assert_eq!(Algorithm::XChaCha20Poly1305.overhead(), 47);
        assert_eq!(Algorithm::Aes256Siv.overhead(), 23);
        assert_eq!(sealed_len(Algorithm::Aes256Siv, 1).unwrap(), 24);
        assert_eq!(min_envelope_len(Algorithm::ChaCha20Poly1305), 36);
        assert!(sealed_len(Algorithm::Aes256Siv, usize::MAX).is_err());
        assert_eq!(
            plaintext_len(Algorithm::Aes256Siv, 23),
            Err(Error::Format("truncated"))
        );
        assert_eq!(plaintext_len(Algorithm::Aes256Siv, 30).unwrap(), 7);
    }
}
