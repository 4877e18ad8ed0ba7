//! Per-context ciphers that write and read whole v1 envelopes.
//!
//! Each cipher is built once per (algorithm, context, key version) and reused: the key schedule
//! and the associated data `header ‖ context` are computed at construction, not per value.
//!
//! Row binding (docs/FORMAT.md, "Row binding"): the `…_bound` methods take per-value associated
//! data (e.g. a primary key) and authenticate `header ‖ context ‖ u32be(len) ‖ row_ad` instead.
//! Nothing in the envelope records it; opening a bound envelope without the same `row_ad` (or an
//! unbound one with any `row_ad`) fails with [`Error::Auth`].

use core::fmt;

use inout::InOutBuf;

use crate::chacha_poly::{ChaChaPoly, Variant};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::format::{self, Algorithm, Header, HEADER_LEN, TAG_LEN, TYPE_TAG_LEN};
use crate::random;
use crate::siv::{AdState, Aes256Siv};

/// Operations shared by [`RandomizedCipher`] and [`DeterministicCipher`]. Object safe, so a
/// binding can hold either as `Arc<dyn Cipher>`.
pub trait Cipher: Send + Sync {
    /// Algorithm written into (and required in) envelope headers.
    fn algorithm(&self) -> Algorithm;

    /// Key version written into (and required in) envelope headers.
    fn key_version(&self) -> u32;

    /// Seals `type_tag ‖ value` into `out`, which must be exactly [`Cipher::sealed_len`] bytes.
    fn encrypt_into(&self, out: &mut [u8], type_tag: u8, value: &[u8]) -> Result<()>;

    /// Verifies `envelope` and writes its plaintext (`type_tag ‖ value`) into `out`, which must be
    /// exactly [`Cipher::plaintext_len`] bytes. On failure `out` is wiped.
    fn decrypt_into(&self, envelope: &[u8], out: &mut [u8]) -> Result<()>;

    /// Like [`Cipher::encrypt_into`], with the envelope bound to `row_ad` (row binding): the
    /// associated data is `header ‖ context ‖ u32be(row_ad.len()) ‖ row_ad`. Same envelope layout
    /// and length as unbound. `row_ad` may be empty (which is still distinct from unbound).
    fn encrypt_into_bound(
        &self,
        out: &mut [u8],
        type_tag: u8,
        value: &[u8],
        row_ad: &[u8],
    ) -> Result<()>;

    /// Like [`Cipher::decrypt_into`] for an envelope sealed with
    /// [`Cipher::encrypt_into_bound`]`(…, row_ad)`. Any other `row_ad`, or an unbound envelope,
    /// fails with [`Error::Auth`] and `out` is wiped.
    fn decrypt_into_bound(&self, envelope: &[u8], out: &mut [u8], row_ad: &[u8]) -> Result<()>;

    /// Allocating form of [`Cipher::encrypt_into_bound`].
    fn encrypt_bound(&self, type_tag: u8, value: &[u8], row_ad: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.sealed_len(value.len())?];
        self.encrypt_into_bound(&mut out, type_tag, value, row_ad)?;
        Ok(out)
    }

    /// Allocating form of [`Cipher::decrypt_into_bound`]; returns `type_tag ‖ value`.
    fn decrypt_bound(&self, envelope: &[u8], row_ad: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.plaintext_len(envelope)?];
        self.decrypt_into_bound(envelope, &mut out, row_ad)?;
        Ok(out)
    }

    /// Length of the envelope of a `value_len`-byte value.
    fn sealed_len(&self, value_len: usize) -> Result<usize> {
        format::sealed_len(self.algorithm(), value_len.saturating_add(TYPE_TAG_LEN))
    }

    /// Checks the header of `envelope` against this cipher and returns the length its plaintext
    /// (type tag included) would have. Does not authenticate.
    fn plaintext_len(&self, envelope: &[u8]) -> Result<usize> {
        let header = Header::parse(envelope)?;
        if header.algorithm != self.algorithm() {
            return Err(Error::Format("algorithm mismatch"));
        }
        if header.key_version != self.key_version() {
            return Err(Error::Key("key version mismatch"));
        }
        format::plaintext_len(header.algorithm, envelope.len())
    }

    /// Seals `type_tag ‖ value` into a new envelope.
    fn encrypt(&self, type_tag: u8, value: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.sealed_len(value.len())?];
        self.encrypt_into(&mut out, type_tag, value)?;
        Ok(out)
    }

    /// Verifies `envelope` and returns its plaintext, `type_tag ‖ value`.
    fn decrypt(&self, envelope: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.plaintext_len(envelope)?];
        self.decrypt_into(envelope, &mut out)?;
        Ok(out)
    }

    /// Where the plaintext (`type_tag ‖ value`) sits inside an envelope: after the header and the
    /// nonce (randomized), or after the header and the synthetic IV (AES-SIV).
    fn plaintext_offset(&self) -> usize {
        match self.algorithm() {
            Algorithm::Aes256Siv => HEADER_LEN + TAG_LEN,
            algorithm => HEADER_LEN + algorithm.nonce_len(),
        }
    }

    /// Seals an envelope in place. `envelope` is exactly the sealed length of its plaintext and
    /// already holds `type_tag ‖ value` at [`Cipher::plaintext_offset`]; the header, nonce and
    /// tag (or synthetic IV) are written around it and the plaintext is encrypted where it is.
    /// Lets a caller lay the value straight into the output buffer (no intermediate copy).
    fn seal_in_place(&self, envelope: &mut [u8]) -> Result<()> {
        let offset = self.plaintext_offset();
        let plaintext = in_place_plaintext(self.algorithm(), envelope, offset)?.to_vec();
        let plaintext = Zeroizing::new(plaintext);
        let (type_tag, value) = plaintext.split_first().ok_or(OUT_TOO_SHORT)?;
        self.encrypt_into(envelope, *type_tag, value)
    }

    /// Verifies `envelope` and decrypts it in place: on success its plaintext (`type_tag ‖ value`,
    /// [`Cipher::plaintext_len`] bytes) sits at [`Cipher::plaintext_offset`]. On failure the
    /// envelope's body is wiped.
    fn open_in_place(&self, envelope: &mut [u8]) -> Result<()> {
        let mut plaintext = Zeroizing::new(vec![0u8; self.plaintext_len(envelope)?]);
        let opened = self.decrypt_into(envelope, &mut plaintext);
        let offset = self.plaintext_offset();
        let slot = envelope
            .get_mut(offset..offset + plaintext.len())
            .ok_or(Error::Format("truncated"))?;
        match opened {
            Ok(()) => {
                slot.copy_from_slice(&plaintext);
                Ok(())
            }
            Err(error) => {
                slot.zeroize();
                Err(error)
            }
        }
    }

    /// Runs `run` once with the per-record operations of this cipher, The batch
    /// loops of [`crate::batch`] go through it.
    fn with_records(&self, run: &mut dyn FnMut(&mut dyn Records));
}

/// The per-record operations of one batch run (see [`Cipher::with_records`]).
pub trait Records {
    /// [`Cipher::seal_in_place`].
    fn seal_in_place(&mut self, envelope: &mut [u8]) -> Result<()>;
    /// [`Cipher::open_in_place`].
    fn open_in_place(&mut self, envelope: &mut [u8]) -> Result<()>;
    /// [`Cipher::decrypt_into`].
    fn decrypt_into(&mut self, envelope: &[u8], out: &mut [u8]) -> Result<()>;
}

/// [`Records`] of a cipher without per-run state: each record is one call of the cipher.
struct PerValue<'a, C: Cipher>(&'a C);

impl<C: Cipher> Records for PerValue<'_, C> {
    fn seal_in_place(&mut self, envelope: &mut [u8]) -> Result<()> {
        self.0.seal_in_place(envelope)
    }
    fn open_in_place(&mut self, envelope: &mut [u8]) -> Result<()> {
        self.0.open_in_place(envelope)
    }
    fn decrypt_into(&mut self, envelope: &[u8], out: &mut [u8]) -> Result<()> {
        self.0.decrypt_into(envelope, out)
    }
}

/// Checks the size of an envelope being sealed in place and returns its plaintext slot.
fn in_place_plaintext(
    algorithm: Algorithm,
    envelope: &mut [u8],
    offset: usize,
) -> Result<&mut [u8]> {
    if envelope.len() < format::min_envelope_len(algorithm) {
        return Err(Error::Input {
            arg: "envelope",
            expected: "at least the sealed length of a 1-byte plaintext",
            got: envelope.len(),
        });
    }
    let end = envelope.len() - algorithm.overhead() + offset;
    envelope.get_mut(offset..end).ok_or(OUT_TOO_SHORT)
}

/// ChaCha20-Poly1305 or XChaCha20-Poly1305 under one derived key, with a fresh random nonce per
/// value.
#[derive(Clone)]
pub struct RandomizedCipher {
    aead: ChaChaPoly,
    header: Header,
    /// `header ‖ canonical context`.
    aad: Box<[u8]>,
}

impl RandomizedCipher {
    pub(crate) fn new(
        algorithm: Algorithm,
        key_version: u32,
        key: &[u8; 32],
        context: &[u8],
    ) -> Result<Self> {
        let aead = match algorithm {
            Algorithm::ChaCha20Poly1305 => ChaChaPoly::new(Variant::ChaCha20, key),
            Algorithm::XChaCha20Poly1305 => ChaChaPoly::new(Variant::XChaCha20, key),
            Algorithm::Aes256Siv => {
                return Err(Error::Invalid {
                    arg: "algorithm",
                    reason: "is not a randomized algorithm",
                })
            }
        };
        let header = Header {
            algorithm,
            key_version,
        };
        Ok(Self {
            aead,
            header,
            aad: aad(&header, context),
        })
    }

    /// Like [`Cipher::encrypt_into`] with a caller-chosen nonce.
    ///
    /// **Dangerous**: a test-vector hook. Two values sealed under one key with one nonce leak
    /// their XOR and let an attacker forge ciphertexts. The library never calls this.
    pub fn encrypt_into_with_nonce(
        &self,
        out: &mut [u8],
        type_tag: u8,
        value: &[u8],
        nonce: &[u8],
    ) -> Result<()> {
        self.check_nonce_len(nonce)?;
        self.seal_with_nonce(out, type_tag, value, nonce, &self.aad)
    }

    /// [`RandomizedCipher::encrypt_into_with_nonce`] with row binding
    /// ([`Cipher::encrypt_into_bound`]). **Dangerous** for the same reason: test vectors only.
    pub fn encrypt_into_bound_with_nonce(
        &self,
        out: &mut [u8],
        type_tag: u8,
        value: &[u8],
        row_ad: &[u8],
        nonce: &[u8],
    ) -> Result<()> {
        self.check_nonce_len(nonce)?;
        self.seal_with_nonce(out, type_tag, value, nonce, &bound_aad(&self.aad, row_ad)?)
    }

    /// Allocating form of [`RandomizedCipher::encrypt_into_bound_with_nonce`]; equally dangerous.
    pub fn encrypt_bound_with_nonce(
        &self,
        type_tag: u8,
        value: &[u8],
        row_ad: &[u8],
        nonce: &[u8],
    ) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.sealed_len(value.len())?];
        self.encrypt_into_bound_with_nonce(&mut out, type_tag, value, row_ad, nonce)?;
        Ok(out)
    }

    /// Allocating form of [`RandomizedCipher::encrypt_into_with_nonce`]; equally dangerous.
    pub fn encrypt_with_nonce(&self, type_tag: u8, value: &[u8], nonce: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.sealed_len(value.len())?];
        self.encrypt_into_with_nonce(&mut out, type_tag, value, nonce)?;
        Ok(out)
    }

    /// Rejects a caller-chosen nonce of the wrong length for this algorithm.
    fn check_nonce_len(&self, nonce: &[u8]) -> Result<()> {
        if nonce.len() == self.header.algorithm.nonce_len() {
            return Ok(());
        }
        let expected = match self.header.algorithm {
            Algorithm::XChaCha20Poly1305 => "24 bytes",
            _ => "12 bytes",
        };
        Err(Error::len("nonce", expected, nonce.len()))
    }

    /// Lays out and seals an envelope under a caller-chosen nonce and a given associated data.
    fn seal_with_nonce(
        &self,
        out: &mut [u8],
        type_tag: u8,
        value: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<()> {
        let (nonce_out, body, tag) = self.layout(out, type_tag, value)?;
        copy_exact(nonce_out, nonce)?;
        self.seal_aad(nonce_out, body, tag, aad)
    }

    /// Lays out and seals an envelope under a fresh random nonce and a given associated data.
    fn seal_random(&self, out: &mut [u8], type_tag: u8, value: &[u8], aad: &[u8]) -> Result<()> {
        let (nonce, body, tag) = self.layout(out, type_tag, value)?;
        random::fill_nonce(nonce)?;
        self.seal_aad(nonce, body, tag, aad)
    }

    /// Writes the header and plaintext into `out` and returns its nonce, body and tag slots.
    fn layout<'a>(&self, out: &'a mut [u8], type_tag: u8, value: &[u8]) -> Result<Slots<'a>> {
        let rest = write_header(out, self.sealed_len(value.len())?, &self.header)?;
        let (nonce, body, tag) = self.slots(rest)?;
        write_plaintext(body, type_tag, value)?;
        Ok((nonce, body, tag))
    }

    /// Splits what follows the header of an envelope being written into nonce, body and tag.
    fn slots<'a>(&self, rest: &'a mut [u8]) -> Result<Slots<'a>> {
        let (rest, tag) = rest
            .split_last_chunk_mut::<TAG_LEN>()
            .ok_or(OUT_TOO_SHORT)?;
        let (nonce, body) = rest
            .split_at_mut_checked(self.header.algorithm.nonce_len())
            .ok_or(OUT_TOO_SHORT)?;
        Ok((nonce, body, tag))
    }

    #[inline]
    fn seal_aad(
        &self,
        nonce: &[u8],
        body: &mut [u8],
        tag_out: &mut [u8; TAG_LEN],
        aad: &[u8],
    ) -> Result<()> {
        *tag_out = self
            .aead
            .encrypt_inout_detached(nonce, aad, body.into())
            .map_err(|_| Error::Invalid {
                arg: "value",
                reason: "is too long",
            })?;
        Ok(())
    }
}

impl RandomizedCipher {
    /// [`Cipher::decrypt_into`] under a given associated data.
    #[inline]
    fn open_into(&self, envelope: &[u8], out: &mut [u8], aad: &[u8]) -> Result<()> {
        check_out_len(out, self.plaintext_len(envelope)?)?;
        let body = envelope
            .get(HEADER_LEN..)
            .ok_or(Error::Format("truncated"))?;
        let (nonce, body) = body
            .split_at_checked(self.header.algorithm.nonce_len())
            .ok_or(Error::Format("truncated"))?;
        let (ciphertext, tag) = body
            .split_last_chunk::<TAG_LEN>()
            .ok_or(Error::Format("truncated"))?;
        let buf = InOutBuf::new(ciphertext, out).map_err(|_| OUT_TOO_SHORT)?;
        let verified = self.aead.decrypt_inout_detached(nonce, aad, buf, tag);
        wipe_unless_ok(verified.is_ok(), out)
    }
}

impl Cipher for RandomizedCipher {
    fn algorithm(&self) -> Algorithm {
        self.header.algorithm
    }

    fn key_version(&self) -> u32 {
        self.header.key_version
    }

    fn encrypt_into(&self, out: &mut [u8], type_tag: u8, value: &[u8]) -> Result<()> {
        self.seal_random(out, type_tag, value, &self.aad)
    }

    fn decrypt_into(&self, envelope: &[u8], out: &mut [u8]) -> Result<()> {
        self.open_into(envelope, out, &self.aad)
    }

    fn encrypt_into_bound(
        &self,
        out: &mut [u8],
        type_tag: u8,
        value: &[u8],
        row_ad: &[u8],
    ) -> Result<()> {
        self.seal_random(out, type_tag, value, &bound_aad(&self.aad, row_ad)?)
    }

    fn decrypt_into_bound(&self, envelope: &[u8], out: &mut [u8], row_ad: &[u8]) -> Result<()> {
        let aad = bound_aad(&self.aad, row_ad)?;
        self.open_into(envelope, out, &aad)
    }

    fn seal_in_place(&self, envelope: &mut [u8]) -> Result<()> {
        in_place_plaintext(self.header.algorithm, envelope, self.plaintext_offset())?;
        let (nonce, body, tag) = self.slots(put_header(envelope, &self.header)?)?;
        random::fill_nonce(nonce)?;
        self.seal_aad(nonce, body, tag, &self.aad)
    }

    fn open_in_place(&self, envelope: &mut [u8]) -> Result<()> {
        self.plaintext_len(envelope)?;
        let (_, rest) = envelope
            .split_first_chunk_mut::<HEADER_LEN>()
            .ok_or(Error::Format("truncated"))?;
        let (rest, tag) = rest
            .split_last_chunk_mut::<TAG_LEN>()
            .ok_or(Error::Format("truncated"))?;
        let tag = *tag;
        let (nonce, body) = rest
            .split_at_mut_checked(self.header.algorithm.nonce_len())
            .ok_or(Error::Format("truncated"))?;
        let nonce: &[u8] = nonce;
        // The tag is checked before anything is decrypted; the body is wiped on failure anyway.
        let verified = self
            .aead
            .decrypt_inout_detached(nonce, &self.aad, body.into(), &tag);
        wipe_unless_ok(verified.is_ok(), body)
    }

    fn with_records(&self, run: &mut dyn FnMut(&mut dyn Records)) {
        run(&mut PerValue(self))
    }
}

impl fmt::Debug for RandomizedCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandomizedCipher")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// AES-256-SIV under one derived key: equal plaintexts give equal envelopes (for equality lookups).
#[derive(Clone)]
pub struct DeterministicCipher {
    siv: Aes256Siv,
    header: Header,
    /// `header ‖ canonical context`, the single S2V associated-data string.
    aad: Box<[u8]>,
    /// S2V's state after `aad`: computed once here, not per value.
    ad_state: AdState,
}

impl DeterministicCipher {
    pub(crate) fn new(key_version: u32, key: &[u8; 64], context: &[u8]) -> Self {
        let header = Header {
            algorithm: Algorithm::Aes256Siv,
            key_version,
        };
        let siv = Aes256Siv::new(key);
        let aad = aad(&header, context);
        let ad_state = siv.ad_state(&aad);
        Self {
            siv,
            header,
            aad,
            ad_state,
        }
    }

    /// The S2V state of a row-bound associated data (computed per call: it depends on `row_ad`).
    fn bound_state(&self, row_ad: &[u8]) -> Result<AdState> {
        Ok(self.siv.ad_state(&bound_aad(&self.aad, row_ad)?))
    }

    /// [`Cipher::encrypt_into`] under a given S2V state.
    fn seal_into(&self, out: &mut [u8], type_tag: u8, value: &[u8], ad: &AdState) -> Result<()> {
        let rest = write_header(out, self.sealed_len(value.len())?, &self.header)?;
        let (iv, body) = rest
            .split_first_chunk_mut::<TAG_LEN>()
            .ok_or(OUT_TOO_SHORT)?;
        write_plaintext(body, type_tag, value)?;
        *iv = self.siv.seal_in_place(ad, body);
        Ok(())
    }

    /// [`Cipher::decrypt_into`] under a given S2V state.
    fn open_into(&self, envelope: &[u8], out: &mut [u8], ad: &AdState) -> Result<()> {
        check_out_len(out, self.plaintext_len(envelope)?)?;
        let body = envelope
            .get(HEADER_LEN..)
            .ok_or(Error::Format("truncated"))?;
        let (iv, ciphertext) = body
            .split_first_chunk::<TAG_LEN>()
            .ok_or(Error::Format("truncated"))?;
        let buf = InOutBuf::new(ciphertext, out).map_err(|_| OUT_TOO_SHORT)?;
        // On failure the unauthenticated plaintext in `out` is wiped by `open_inout`.
        let verified = self.siv.open_inout(ad, iv, buf);
        wipe_unless_ok(verified.is_ok(), out)
    }
}

impl Cipher for DeterministicCipher {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Aes256Siv
    }

    fn key_version(&self) -> u32 {
        self.header.key_version
    }

    fn encrypt_into(&self, out: &mut [u8], type_tag: u8, value: &[u8]) -> Result<()> {
        self.seal_into(out, type_tag, value, &self.ad_state)
    }

    fn decrypt_into(&self, envelope: &[u8], out: &mut [u8]) -> Result<()> {
        self.open_into(envelope, out, &self.ad_state)
    }

    fn encrypt_into_bound(
        &self,
        out: &mut [u8],
        type_tag: u8,
        value: &[u8],
        row_ad: &[u8],
    ) -> Result<()> {
        self.seal_into(out, type_tag, value, &self.bound_state(row_ad)?)
    }

    fn decrypt_into_bound(&self, envelope: &[u8], out: &mut [u8], row_ad: &[u8]) -> Result<()> {
        self.open_into(envelope, out, &self.bound_state(row_ad)?)
    }

    fn seal_in_place(&self, envelope: &mut [u8]) -> Result<()> {
        in_place_plaintext(Algorithm::Aes256Siv, envelope, HEADER_LEN + TAG_LEN)?;
        let (iv, body) = put_header(envelope, &self.header)?
            .split_first_chunk_mut::<TAG_LEN>()
            .ok_or(OUT_TOO_SHORT)?;
        *iv = self.siv.seal_in_place(&self.ad_state, body);
        Ok(())
    }

    fn open_in_place(&self, envelope: &mut [u8]) -> Result<()> {
        self.plaintext_len(envelope)?;
        let (_, rest) = envelope
            .split_first_chunk_mut::<HEADER_LEN>()
            .ok_or(Error::Format("truncated"))?;
        let (iv, body) = rest
            .split_first_chunk_mut::<TAG_LEN>()
            .ok_or(Error::Format("truncated"))?;
        let iv = *iv;
        // In place, a failed check leaves unauthenticated plaintext in `body`: wiped by
        // `open_inout` and again below.
        let verified = self.siv.open_inout(&self.ad_state, &iv, body.into());
        wipe_unless_ok(verified.is_ok(), body)
    }

    fn with_records(&self, run: &mut dyn FnMut(&mut dyn Records)) {
        run(&mut PerValue(self))
    }
}

impl fmt::Debug for DeterministicCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeterministicCipher")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

const OUT_TOO_SHORT: Error = Error::Invalid {
    arg: "out",
    reason: "has the wrong length",
};

fn aad(header: &Header, context: &[u8]) -> Box<[u8]> {
    [&header.encode()[..], context].concat().into_boxed_slice()
}

/// The associated data of a row-bound value: `header ‖ context ‖ u32be(len) ‖ row_ad`. The context
/// encoding is self-delimiting, so this never equals an unbound AAD, and the length prefix keeps
/// every `row_ad` (empty included) distinct.
fn bound_aad(aad: &[u8], row_ad: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(row_ad.len())
        .map_err(|_| Error::len("row_ad", "at most 4294967295 bytes", row_ad.len()))?;
    let mut out = Vec::with_capacity(aad.len() + 4 + row_ad.len());
    out.extend_from_slice(aad);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(row_ad);
    Ok(out)
}

/// Nonce, body and tag slots of a randomized envelope being written.
type Slots<'a> = (&'a mut [u8], &'a mut [u8], &'a mut [u8; TAG_LEN]);

/// Checks that `out` is exactly `len` bytes, writes `header` into it and returns the rest.
fn write_header<'a>(out: &'a mut [u8], len: usize, header: &Header) -> Result<&'a mut [u8]> {
    check_out_len(out, len)?;
    put_header(out, header)
}

/// Writes `header` at the start of `out` and returns the rest.
fn put_header<'a>(out: &'a mut [u8], header: &Header) -> Result<&'a mut [u8]> {
    let (head, rest) = out
        .split_first_chunk_mut::<HEADER_LEN>()
        .ok_or(OUT_TOO_SHORT)?;
    *head = header.encode();
    Ok(rest)
}

fn check_out_len(out: &[u8], len: usize) -> Result<()> {
    if out.len() == len {
        Ok(())
    } else {
        Err(Error::Input {
            arg: "out",
            expected: "the exact sealed or plaintext length",
            got: out.len(),
        })
    }
}

fn write_plaintext(body: &mut [u8], type_tag: u8, value: &[u8]) -> Result<()> {
    let (tag, rest) = body.split_first_mut().ok_or(OUT_TOO_SHORT)?;
    *tag = type_tag;
    copy_exact(rest, value)
}

fn copy_exact(dst: &mut [u8], src: &[u8]) -> Result<()> {
    if dst.len() != src.len() {
        return Err(OUT_TOO_SHORT);
    }
    dst.copy_from_slice(src);
    Ok(())
}

fn wipe_unless_ok(ok: bool, out: &mut [u8]) -> Result<()> {
    if ok {
        Ok(())
    } else {
        out.zeroize();
        Err(Error::Auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
    use zeroize::ZeroizeOnDrop;

    fn assert_shareable<T: Send + Sync + Clone>() {}
    fn assert_wiped_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn ciphers_are_shareable_and_keys_wiped() {
        assert_shareable::<RandomizedCipher>();
        assert_shareable::<DeterministicCipher>();
        assert_shareable::<crate::BlindIndexKey>();
        assert_shareable::<crate::RootKey>();
        assert_wiped_on_drop::<ChaCha20Poly1305>();
        assert_wiped_on_drop::<crate::chacha_poly::ChaChaPoly>();
        assert_wiped_on_drop::<XChaCha20Poly1305>();
        assert_wiped_on_drop::<aes_siv::siv::Aes256Siv>();
        assert_wiped_on_drop::<Aes256Siv>();
        assert_wiped_on_drop::<AdState>();
        assert_wiped_on_drop::<aes::Aes256Enc>();
        assert_wiped_on_drop::<aes::Aes256>();
        // `Hmac` has no marker, but its state is two SHA-256 cores, which wipe themselves.
        assert_wiped_on_drop::<sha2::Sha256>();
    }

    fn ciphers() -> Vec<Box<dyn Cipher>> {
        let root = crate::RootKey::new(1, &[7u8; 32]).unwrap();
        let ctx = crate::encode_context(Some("t"), "users", "email", 1).unwrap();
        vec![
            Box::new(
                root.randomized_cipher(Algorithm::ChaCha20Poly1305, &ctx)
                    .unwrap(),
            ),
            Box::new(
                root.randomized_cipher(Algorithm::XChaCha20Poly1305, &ctx)
                    .unwrap(),
            ),
            Box::new(root.deterministic_cipher(&ctx).unwrap()),
        ]
    }

    #[test]
    fn row_binding_round_trips() {
        for cipher in ciphers() {
            for row_ad in [&b""[..], b"42", b"a longer row id \x00\xff", &[0u8; 300]] {
                for value in [&b""[..], b"alice@example.com", &[9u8; 1000]] {
                    let env = cipher.encrypt_bound(1, value, row_ad).unwrap();
                    assert_eq!(env.len(), cipher.sealed_len(value.len()).unwrap());
                    assert_eq!(
                        cipher.decrypt_bound(&env, row_ad).unwrap(),
                        [&[1u8][..], value].concat()
                    );
                    let mut out = vec![0u8; cipher.plaintext_len(&env).unwrap()];
                    cipher.decrypt_into_bound(&env, &mut out, row_ad).unwrap();
                    assert_eq!(out[0], 1);
                }
            }
        }
    }

    #[test]
    fn wrong_or_missing_row_ad_fails_with_auth() {
        for cipher in ciphers() {
            let env = cipher.encrypt_bound(1, b"alice", b"42").unwrap();
            assert_eq!(cipher.decrypt(&env), Err(Error::Auth), "missing row AD");
            for wrong in [&b""[..], b"4", b"43", b"420", b"\x0042"] {
                assert_eq!(cipher.decrypt_bound(&env, wrong), Err(Error::Auth));
                let mut out = vec![0xaau8; cipher.plaintext_len(&env).unwrap()];
                assert_eq!(
                    cipher.decrypt_into_bound(&env, &mut out, wrong),
                    Err(Error::Auth)
                );
                assert!(out.iter().all(|b| *b == 0), "out is wiped");
            }
            // An empty row AD is a binding too, distinct from none.
            let empty = cipher.encrypt_bound(1, b"alice", b"").unwrap();
            assert_eq!(cipher.decrypt(&empty), Err(Error::Auth));
            // An unbound envelope does not open under any row AD.
            let unbound = cipher.encrypt(1, b"alice").unwrap();
            assert_eq!(cipher.decrypt_bound(&unbound, b""), Err(Error::Auth));
            assert_eq!(cipher.decrypt_bound(&unbound, b"42"), Err(Error::Auth));
        }
    }

    #[test]
    fn bound_differs_from_unbound_and_between_rows() {
        let root = crate::RootKey::new(1, &[7u8; 32]).unwrap();
        let ctx = crate::encode_context(None, "users", "email", 1).unwrap();
        let siv = root.deterministic_cipher(&ctx).unwrap();
        let unbound = siv.encrypt(1, b"alice").unwrap();
        let row1 = siv.encrypt_bound(1, b"alice", b"1").unwrap();
        let row2 = siv.encrypt_bound(1, b"alice", b"2").unwrap();
        let empty = siv.encrypt_bound(1, b"alice", b"").unwrap();
        assert_ne!(unbound, row1);
        assert_ne!(unbound, empty);
        assert_ne!(row1, row2, "equal values in different rows no longer match");
        assert_eq!(row1, siv.encrypt_bound(1, b"alice", b"1").unwrap());
        assert_eq!(
            siv.decrypt_bound(&row2, b"1"),
            Err(Error::Auth),
            "swapped rows"
        );

        let chacha = root
            .randomized_cipher(Algorithm::ChaCha20Poly1305, &ctx)
            .unwrap();
        let nonce = [3u8; 12];
        let a = chacha.encrypt_with_nonce(1, b"alice", &nonce).unwrap();
        let b = chacha
            .encrypt_bound_with_nonce(1, b"alice", b"", &nonce)
            .unwrap();
        // Same nonce, same keystream: only the tag differs.
        assert_eq!(a[..a.len() - TAG_LEN], b[..b.len() - TAG_LEN]);
        assert_ne!(a[a.len() - TAG_LEN..], b[b.len() - TAG_LEN..]);
        assert_eq!(chacha.decrypt_bound(&b, b"").unwrap(), b"\x01alice");
        assert!(chacha
            .encrypt_bound_with_nonce(1, b"x", b"1", &[0u8; 24])
            .is_err());
    }

    #[test]
    fn bound_aad_layout() {
        assert_eq!(
            bound_aad(b"HC", b"pk").unwrap(),
            b"HC\x00\x00\x00\x02pk".to_vec()
        );
        assert_eq!(
            bound_aad(b"HC", b"").unwrap(),
            b"HC\x00\x00\x00\x00".to_vec()
        );
    }
}
