//! Blind-index terms: truncated HMAC-SHA256 of the length-prefixed indexed fields.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::primitives::hmac_key;

/// Shortest term, in bits.
pub const MIN_BITS: u32 = 8;
/// Longest term, in bits (the whole HMAC-SHA256 output).
pub const MAX_BITS: u32 = 256;

/// HMAC-SHA256 key of one blind index (context, index name, key version).
///
/// Holds the keyed HMAC state, cloned per term, so the inner and outer pad blocks are hashed once
/// per key instead of once per term.
#[derive(Clone)]
pub struct BlindIndexKey {
    mac: Hmac<Sha256>,
    key_version: u32,
}

impl BlindIndexKey {
    pub(crate) fn new(key_version: u32, key: &[u8]) -> Result<Self> {
        Ok(Self {
            mac: hmac_key(key)?,
            key_version,
        })
    }

    /// Version of the root key this index key was derived from.
    pub fn key_version(&self) -> u32 {
        self.key_version
    }

    /// The term of `message` (see [`blind_index_message`]) truncated to `bits` (`8..=256`).
    pub fn compute(&self, message: &[u8], bits: u32) -> Result<Vec<u8>> {
        let mut out = vec![0u8; term_len(bits)?];
        self.compute_into(message, bits, &mut out)?;
        Ok(out)
    }

    /// Writes the term into `out`, which must be exactly [`term_len`]`(bits)` bytes.
    pub fn compute_into(&self, message: &[u8], bits: u32, out: &mut [u8]) -> Result<()> {
        let len = term_len(bits)?;
        if out.len() != len {
            return Err(Error::Input {
                arg: "out",
                expected: "term_len(bits) bytes",
                got: out.len(),
            });
        }
        let mut mac = self.mac.clone();
        mac.update(message);
        let full = mac.finalize().into_bytes();
        let kept = full.get(..len).ok_or(Error::len("bits", "8..=256", len))?;
        out.copy_from_slice(kept);
        if let Some(last) = out.last_mut() {
            // Keep the high-order `bits % 8` bits of the last byte (all 8 when it divides evenly).
            *last &= 0xffu8 << ((8 - bits % 8) % 8);
        }
        Ok(())
    }
}

impl BlindIndexKey {
    /// The term of a one-field index: [`BlindIndexKey::compute_into`] of
    /// [`blind_index_message`]`(&[field])` (`u32be len ‖ field`), without building the message.
    pub fn compute_field_into(&self, field: &[u8], bits: u32, out: &mut [u8]) -> Result<()> {
        let len = term_len(bits)?;
        if out.len() != len {
            return Err(Error::Input {
                arg: "out",
                expected: "term_len(bits) bytes",
                got: out.len(),
            });
        }
        let prefix = u32::try_from(field.len())
            .map_err(|_| Error::len("field", "under 4 GiB", field.len()))?
            .to_be_bytes();
        let mut mac = self.mac.clone();
        mac.update(&prefix);
        mac.update(field);
        let full = mac.finalize().into_bytes();
        let kept = full.get(..len).ok_or(Error::len("bits", "8..=256", len))?;
        out.copy_from_slice(kept);
        if let Some(last) = out.last_mut() {
            *last &= 0xffu8 << ((8 - bits % 8) % 8);
        }
        Ok(())
    }

    /// Batch form of [`BlindIndexKey::compute_into`]: `messages` holds the messages back to back
    /// (`message_lens[i]` bytes each) and `out` receives their terms back to back
    /// (`term_len(bits)` bytes each). The layout is checked before any work; on failure `out` is
    /// wiped and the error names the message.
    pub fn compute_records(
        &self,
        messages: &[u8],
        message_lens: &[u32],
        bits: u32,
        out: &mut [u8],
    ) -> core::result::Result<(), crate::BatchError> {
        let at = |index: usize| move |error: Error| crate::BatchError { index, error };
        let len = term_len(bits).map_err(at(0))?;
        let total: Option<usize> = message_lens
            .iter()
            .try_fold(0usize, |sum, &n| sum.checked_add(n as usize));
        if total != Some(messages.len()) || Some(out.len()) != len.checked_mul(message_lens.len()) {
            return Err(at(message_lens.len())(Error::Input {
                arg: "batch",
                expected: "messages and out matching message_lens",
                got: messages.len(),
            }));
        }
        let mut start = 0usize;
        for (index, (&n, term)) in message_lens
            .iter()
            .zip(out.chunks_exact_mut(len))
            .enumerate()
        {
            let message = &messages[start..start + n as usize];
            if let Err(error) = self.compute_into(message, bits, term) {
                out.zeroize();
                return Err(at(index)(error));
            }
            start += n as usize;
        }
        Ok(())
    }
}

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlindIndexKey")
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

/// Length in bytes of a `bits`-bit term: `ceil(bits / 8)`; [`Error::Input`] outside `8..=256`.
pub fn term_len(bits: u32) -> Result<usize> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(Error::len(
            "bits",
            "8..=256",
            usize::try_from(bits).unwrap_or(usize::MAX),
        ));
    }
    usize::try_from(bits.div_ceil(8)).map_err(|_| Error::len("bits", "8..=256", 0))
}

/// The blind-index message of `fields`: `u32be len ‖ bytes` per field, in order.
pub fn blind_index_message(fields: &[&[u8]]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| 4 + f.len()).sum());
    for field in fields {
        let len = u32::try_from(field.len())
            .map_err(|_| Error::len("field", "under 4 GiB", field.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::hmac_sha256;

    #[test]
    fn truncation_zeroes_low_bits() {
        let key = BlindIndexKey::new(1, &[9; 32]).unwrap();
        let full = hmac_sha256(&[9; 32], b"m").unwrap();
        assert_eq!(key.compute(b"m", 256).unwrap(), full);
        assert_eq!(key.compute(b"m", 8).unwrap(), full[..1]);
        let t = key.compute(b"m", 12).unwrap();
        assert_eq!(t, [full[0], full[1] & 0xf0]);
        let t = key.compute(b"m", 255).unwrap();
        assert_eq!(t[31], full[31] & 0xfe);
        for bad in [0, 7, 257, u32::MAX] {
            assert!(key.compute(b"m", bad).is_err());
        }
        assert!(key.compute_into(b"m", 16, &mut [0; 3]).is_err());
    }

    #[test]
    fn field_terms_match_message_terms() {
        let key = BlindIndexKey::new(1, &[9; 32]).unwrap();
        for field in [&b""[..], b"a", &[0x61; 300]] {
            let mut out = [0u8; 3];
            key.compute_field_into(field, 20, &mut out).unwrap();
            let message = blind_index_message(&[field]).unwrap();
            assert_eq!(key.compute(&message, 20).unwrap(), out);
        }
        assert!(key.compute_field_into(b"a", 20, &mut [0u8; 2]).is_err());
        assert!(key.compute_field_into(b"a", 4, &mut []).is_err());
    }

    #[test]
    fn records_match_single_terms() {
        let key = BlindIndexKey::new(1, &[9; 32]).unwrap();
        let messages: Vec<Vec<u8>> = (0..10).map(|n| vec![n as u8; n * 3]).collect();
        let lens: Vec<u32> = messages.iter().map(|m| m.len() as u32).collect();
        let mut out = vec![0u8; 2 * messages.len()];
        key.compute_records(&messages.concat(), &lens, 12, &mut out)
            .unwrap();
        for (m, term) in messages.iter().zip(out.chunks(2)) {
            assert_eq!(key.compute(m, 12).unwrap(), term);
        }
        assert!(key
            .compute_records(&messages.concat(), &lens, 12, &mut out[1..])
            .is_err());
        assert!(key
            .compute_records(&messages.concat(), &lens[1..], 12, &mut out)
            .is_err());
        let err = key.compute_records(&[], &[], 7, &mut []).unwrap_err();
        assert_eq!(err.error.code(), "ERR_SIFREDB_INPUT");
        key.compute_records(&[], &[], 8, &mut []).unwrap();
    }

    #[test]
    fn message_encoding() {
        assert_eq!(
            blind_index_message(&[b"ab", b""]).unwrap(),
            [0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0]
        );
    }
}
