//! Batches: runs of envelopes laid out back to back in one buffer, sealed or opened in place.
//!
//! A binding allocates one buffer per batch, writes each value's plaintext (`type_tag ‖ value`)
//! at [`Cipher::plaintext_offset`] of its record, and seals the whole run with one call
//! ([`seal_records`]); record `i` is `plaintext_lens[i] + algorithm.overhead()` bytes. To
//! decrypt, it copies the envelopes back to back and opens them in place
//! ([`open_records`]). Every value of the batch then lives in a single allocation, and a
//! failure anywhere leaves nothing half done: the error names the record, and an opened run is
//! wiped whole.

use core::fmt;

use zeroize::Zeroize;

use crate::cipher::{Cipher, Records};
use crate::error::Error;
use crate::format::Algorithm;
use crate::value::check_plaintext;

/// A batch failed at record `index` (0-based, within the run given to the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// The first record that failed. A buffer whose size does not match the records gives the
    /// index of the first record that does not fit (or the record count for trailing bytes).
    pub index: usize,
    /// Why it failed.
    pub error: Error,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: {}", self.index, self.error)
    }
}

impl std::error::Error for BatchError {}

/// Result of a batch call.
pub type BatchResult = core::result::Result<(), BatchError>;

fn at(index: usize) -> impl Fn(Error) -> BatchError {
    move |error| BatchError { index, error }
}

/// Size of the run of envelopes sealing plaintexts of `plaintext_lens` bytes (type tag included,
/// so each is at least 1) under `algorithm`.
pub fn sealed_records_len(
    algorithm: Algorithm,
    plaintext_lens: &[u32],
) -> core::result::Result<usize, BatchError> {
    let mut total = 0usize;
    for (index, &len) in plaintext_lens.iter().enumerate() {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len == 0 {
            return Err(BatchError {
                index,
                error: Error::Input {
                    arg: "plaintext",
                    expected: "at least the 1-byte type tag",
                    got: 0,
                },
            });
        }
        total = len
            .checked_add(algorithm.overhead())
            .and_then(|size| total.checked_add(size))
            .ok_or(BatchError {
                index,
                error: Error::len("batch", "smaller than the address space", len),
            })?;
    }
    Ok(total)
}

fn layout_error(index: usize, got: usize) -> BatchError {
    BatchError {
        index,
        error: Error::Input {
            arg: "buf",
            expected: "exactly the total size of the records",
            got,
        },
    }
}

/// Splits `buf` into records of `sizes`, after checking that they tile it exactly.
fn each_record(
    buf: &mut [u8],
    sizes: impl Iterator<Item = usize> + Clone,
    mut f: impl FnMut(usize, &mut [u8]) -> crate::Result<()>,
) -> BatchResult {
    let mut total = 0usize;
    for (index, size) in sizes.clone().enumerate() {
        total = total
            .checked_add(size)
            .filter(|t| *t <= buf.len())
            .ok_or_else(|| layout_error(index, buf.len()))?;
    }
    if total != buf.len() {
        return Err(layout_error(sizes.count(), buf.len()));
    }
    let mut rest = buf;
    for (index, size) in sizes.enumerate() {
        let (record, tail) = rest.split_at_mut(size);
        f(index, record).map_err(at(index))?;
        rest = tail;
    }
    Ok(())
}

/// Runs `each` on the [`Records`] of `cipher` (one cipher state for the whole run).
fn run(cipher: &dyn Cipher, mut each: impl FnMut(&mut dyn Records) -> BatchResult) -> BatchResult {
    let mut result = None;
    cipher.with_records(&mut |records| result = Some(each(records)));
    result.unwrap_or(Err(layout_error(0, 0)))
}

/// Seals a run of consecutive envelopes laid out in `buf`: record `i` is the sealed length of a
/// `plaintext_lens[i]`-byte plaintext (type tag included) holding that plaintext at
/// [`Cipher::plaintext_offset`]. The layout is checked before anything is written. On failure
/// the error names the record and `buf` is wiped.
pub fn seal_records(cipher: &dyn Cipher, buf: &mut [u8], plaintext_lens: &[u32]) -> BatchResult {
    let algorithm = cipher.algorithm();
    run(cipher, |records| {
        seal_each(algorithm, buf, plaintext_lens, |record| {
            records.seal_in_place(record)
        })
    })
}

/// Verifies and decrypts a run of consecutive envelopes in place (`envelope_lens[i]` bytes each);
/// plaintext `i` ends up at [`Cipher::plaintext_offset`] of its record. On failure the whole of
/// `buf` is wiped, so no plaintext of the run is left behind, and the error names the first record
/// that failed.
pub fn open_records(cipher: &dyn Cipher, buf: &mut [u8], envelope_lens: &[u32]) -> BatchResult {
    run(cipher, |records| {
        open_each(buf, envelope_lens, |record| records.open_in_place(record))
    })
}

/// Verifies and decrypts a run of consecutive envelopes (`envelope_lens[i]` bytes each) of `input`
/// into `output`, which receives their plaintexts back to back (`type_tag ‖ value`, each
/// `envelope_lens[i]` minus the algorithm's overhead). The layout is checked first; on failure
/// `output` is wiped and the error names the first record that failed.
pub fn open_records_into(
    cipher: &dyn Cipher,
    input: &[u8],
    envelope_lens: &[u32],
    output: &mut [u8],
) -> BatchResult {
    let algorithm = cipher.algorithm();
    run(cipher, |records| {
        open_each_into(algorithm, input, envelope_lens, output, |envelope, out| {
            records.decrypt_into(envelope, out)
        })
    })
}

/// The loop behind [`seal_records`]: checks the layout, then seals each record with
/// `seal`. On failure `buf` is wiped (it still holds the plaintexts of the records not sealed).
fn seal_each(
    algorithm: Algorithm,
    buf: &mut [u8],
    plaintext_lens: &[u32],
    mut seal: impl FnMut(&mut [u8]) -> crate::Result<()>,
) -> BatchResult {
    let expected = sealed_records_len(algorithm, plaintext_lens)?;
    if expected != buf.len() {
        // Name the first record that does not fit.
        let mut total = 0usize;
        for (index, &len) in plaintext_lens.iter().enumerate() {
            total += len as usize + algorithm.overhead();
            if total > buf.len() {
                return Err(layout_error(index, buf.len()));
            }
        }
        return Err(layout_error(plaintext_lens.len(), buf.len()));
    }
    let overhead = algorithm.overhead();
    let sizes = plaintext_lens.iter().map(|&len| len as usize + overhead);
    let result = each_record(buf, sizes, |_, record| seal(record));
    if result.is_err() {
        buf.zeroize();
    }
    result
}

/// The loop behind [`open_records`]: checks the layout, then opens each record with
/// `open`. On failure the whole of `buf` is wiped.
fn open_each(
    buf: &mut [u8],
    envelope_lens: &[u32],
    mut open: impl FnMut(&mut [u8]) -> crate::Result<()>,
) -> BatchResult {
    let sizes = envelope_lens.iter().map(|&len| len as usize);
    let result = each_record(buf, sizes, |_, record| open(record));
    if result.is_err() {
        buf.zeroize();
    }
    result
}

/// The loop behind [`open_records_into`]: checks that `input` is exactly the envelopes and
/// `output` exactly their plaintexts, then opens each with `open(envelope, plaintext_slot)`. On
/// failure `output` is wiped.
fn open_each_into(
    algorithm: Algorithm,
    input: &[u8],
    envelope_lens: &[u32],
    output: &mut [u8],
    mut open: impl FnMut(&[u8], &mut [u8]) -> crate::Result<()>,
) -> BatchResult {
    let overhead = algorithm.overhead();
    let mut in_total = 0usize;
    let mut out_total = 0usize;
    for (index, &len) in envelope_lens.iter().enumerate() {
        let len = len as usize;
        in_total = in_total
            .checked_add(len)
            .filter(|t| *t <= input.len())
            .ok_or_else(|| layout_error(index, input.len()))?;
        // An envelope too short for its header and tag is reported by `open` below, in order;
        // it takes no room in `output`.
        out_total += len.saturating_sub(overhead);
    }
    if in_total != input.len() || out_total != output.len() {
        return Err(layout_error(envelope_lens.len(), output.len()));
    }
    let (mut src, mut dst) = (0usize, 0usize);
    let mut result = Ok(());
    for (index, &len) in envelope_lens.iter().enumerate() {
        let len = len as usize;
        let plain = len.saturating_sub(overhead);
        if let Err(error) = open(&input[src..src + len], &mut output[dst..dst + plain]) {
            result = Err(BatchError { index, error });
            break;
        }
        src += len;
        dst += plain;
    }
    if result.is_err() {
        output.zeroize();
    }
    result
}

/// Seals plaintexts given back to back in `input` (`plaintext_lens[i]` bytes each, type tag
/// included) into the records of `output`, laid out as for [`seal_records`]. The caller
/// can then write values into a small reused buffer and leave the output's first touch to the
/// thread that seals. `input` is wiped, success or not; on failure `output` is wiped too.
pub fn seal_records_from(
    cipher: &dyn Cipher,
    input: &mut [u8],
    plaintext_lens: &[u32],
    output: &mut [u8],
) -> BatchResult {
    let result = seal_from(cipher, input, plaintext_lens, output);
    input.zeroize();
    if result.is_err() {
        output.zeroize();
    }
    result
}

fn seal_from(
    cipher: &dyn Cipher,
    input: &[u8],
    plaintext_lens: &[u32],
    output: &mut [u8],
) -> BatchResult {
    let expected = sealed_records_len(cipher.algorithm(), plaintext_lens)?;
    let total: usize = plaintext_lens.iter().map(|&len| len as usize).sum();
    if expected != output.len() || total != input.len() {
        return Err(layout_error(plaintext_lens.len(), output.len()));
    }
    let (offset, overhead) = (cipher.plaintext_offset(), cipher.algorithm().overhead());
    let (mut src, mut dst) = (0usize, 0usize);
    for &len in plaintext_lens {
        let len = len as usize;
        output[dst + offset..dst + offset + len].copy_from_slice(&input[src..src + len]);
        src += len;
        dst += len + overhead;
    }
    seal_records(cipher, output, plaintext_lens)
}

/// Re-encrypts a run: opens the envelopes of `input` (laid out back to back, `envelope_lens[i]`
/// bytes each) with `from`, and seals their plaintexts, type tags kept, with `to` into `output`,
/// which must be exactly [`sealed_records_len`]`(to.algorithm(), plaintext lens)` bytes.
///
/// `input` is decrypted in place and wiped before returning, success or not; on failure `output`
/// is wiped too and the error names the first record that failed. A plaintext that is not a
/// well-formed value ([`crate::value::check_plaintext`]) fails its record with [`Error::Format`].
pub fn reseal_records(
    from: &dyn Cipher,
    to: &dyn Cipher,
    input: &mut [u8],
    envelope_lens: &[u32],
    output: &mut [u8],
) -> BatchResult {
    let result = reseal(from, to, input, envelope_lens, output);
    input.zeroize();
    if result.is_err() {
        output.zeroize();
    }
    result
}

fn reseal(
    from: &dyn Cipher,
    to: &dyn Cipher,
    input: &mut [u8],
    envelope_lens: &[u32],
    output: &mut [u8],
) -> BatchResult {
    open_records(from, input, envelope_lens)?;
    let from_overhead = from.algorithm().overhead();
    // Each length passed `plaintext_len` inside `open_records`, so it exceeds the overhead.
    let plaintext_lens: Vec<u32> = envelope_lens
        .iter()
        .map(|&len| len - from_overhead as u32)
        .collect();
    let expected = sealed_records_len(to.algorithm(), &plaintext_lens)?;
    if expected != output.len() {
        return Err(layout_error(plaintext_lens.len(), output.len()));
    }
    let (from_offset, to_offset, to_overhead) = (
        from.plaintext_offset(),
        to.plaintext_offset(),
        to.algorithm().overhead(),
    );
    let mut src = 0usize;
    let mut dst = 0usize;
    for (index, (&envelope_len, &plaintext_len)) in
        envelope_lens.iter().zip(&plaintext_lens).enumerate()
    {
        let len = plaintext_len as usize;
        let plaintext = &input[src + from_offset..src + from_offset + len];
        // A value no reader accepts is refused here rather than sealed anew under the target key.
        check_plaintext(plaintext).map_err(at(index))?;
        output[dst + to_offset..dst + to_offset + len].copy_from_slice(plaintext);
        src += envelope_len as usize;
        dst += len + to_overhead;
    }
    seal_records(to, output, &plaintext_lens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_context, RootKey};

    fn ciphers() -> Vec<Box<dyn Cipher>> {
        let root = RootKey::new(7, &[3; 32]).unwrap();
        let ctx = encode_context(Some("t"), "users", "email", 1).unwrap();
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

    /// Lays out `values` (tag 0) as records of `cipher`, ready for `seal_records`.
    fn layout(cipher: &dyn Cipher, values: &[Vec<u8>]) -> (Vec<u8>, Vec<u32>) {
        let lens: Vec<u32> = values.iter().map(|v| v.len() as u32 + 1).collect();
        let mut buf = vec![0u8; sealed_records_len(cipher.algorithm(), &lens).unwrap()];
        let mut at = 0;
        for v in values {
            let off = at + cipher.plaintext_offset();
            buf[off] = 0;
            buf[off + 1..off + 1 + v.len()].copy_from_slice(v);
            at += cipher.sealed_len(v.len()).unwrap();
        }
        (buf, lens)
    }

    fn split(buf: &[u8], lens: &[usize]) -> Vec<Vec<u8>> {
        let mut at = 0;
        lens.iter()
            .map(|&len| {
                at += len;
                buf[at - len..at].to_vec()
            })
            .collect()
    }

    #[test]
    fn records_round_trip_and_match_single_calls() {
        let values: Vec<Vec<u8>> = [0usize, 1, 31, 32, 33, 1000, 65536]
            .iter()
            .map(|&n| (0..n).map(|i| i as u8).collect())
            .collect();
        for cipher in ciphers() {
            let cipher = cipher.as_ref();
            let (mut buf, lens) = layout(cipher, &values);
            seal_records(cipher, &mut buf, &lens).unwrap();
            let sizes: Vec<usize> = values
                .iter()
                .map(|v| cipher.sealed_len(v.len()).unwrap())
                .collect();
            let envelopes = split(&buf, &sizes);
            for (envelope, value) in envelopes.iter().zip(&values) {
                let plaintext = cipher.decrypt(envelope).unwrap();
                assert_eq!(&plaintext[1..], &value[..]);
                if cipher.algorithm() == Algorithm::Aes256Siv {
                    assert_eq!(envelope, &cipher.encrypt(0, value).unwrap());
                }
            }
            let env_lens: Vec<u32> = sizes.iter().map(|&s| s as u32).collect();
            open_records(cipher, &mut buf, &env_lens).unwrap();
            let mut at = 0;
            for (value, size) in values.iter().zip(&sizes) {
                let off = at + cipher.plaintext_offset();
                assert_eq!(buf[off], 0);
                assert_eq!(&buf[off + 1..off + 1 + value.len()], &value[..]);
                at += size;
            }
        }
    }

    #[test]
    fn a_bad_record_names_its_index_and_wipes_the_run() {
        for cipher in ciphers() {
            let cipher = cipher.as_ref();
            let values = vec![vec![1u8; 40]; 5];
            let (mut buf, lens) = layout(cipher, &values);
            seal_records(cipher, &mut buf, &lens).unwrap();
            let size = cipher.sealed_len(40).unwrap();
            buf[3 * size + 30] ^= 1;
            let env_lens = vec![size as u32; 5];
            let err = open_records(cipher, &mut buf, &env_lens).unwrap_err();
            assert_eq!(
                err,
                BatchError {
                    index: 3,
                    error: Error::Auth
                }
            );
            assert!(buf.iter().all(|&b| b == 0), "run wiped");
        }
    }

    #[test]
    fn layout_is_checked_before_any_work() {
        for cipher in ciphers() {
            let cipher = cipher.as_ref();
            let (mut buf, lens) = layout(cipher, &[vec![5u8; 10], vec![6u8; 10]]);
            let mut longer = buf.clone();
            longer.push(0);
            assert_eq!(
                seal_records(cipher, &mut longer, &lens).unwrap_err().index,
                2
            );
            assert_eq!(
                seal_records(cipher, &mut buf[..20], &lens)
                    .unwrap_err()
                    .index,
                0
            );
            assert_eq!(
                seal_records(cipher, &mut buf, &[11, 0]).unwrap_err().index,
                1
            );
            let err = open_records(cipher, &mut buf, &[3, 3]).unwrap_err();
            assert!(matches!(err.error, Error::Input { .. }), "{err}");
        }
    }

    #[test]
    fn sealing_from_and_opening_into_separate_buffers() {
        let values: Vec<Vec<u8>> = [0usize, 1, 33, 1000, 70_000]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7) as u8).collect())
            .collect();
        for cipher in ciphers() {
            let cipher = cipher.as_ref();
            let lens: Vec<u32> = values.iter().map(|v| v.len() as u32 + 1).collect();
            let mut input: Vec<u8> = values
                .iter()
                .flat_map(|v| [&[1u8][..], v].concat())
                .collect();
            let mut output = vec![0u8; sealed_records_len(cipher.algorithm(), &lens).unwrap()];
            seal_records_from(cipher, &mut input, &lens, &mut output).unwrap();
            assert!(input.iter().all(|&b| b == 0), "input wiped");
            let sizes: Vec<usize> = values
                .iter()
                .map(|v| cipher.sealed_len(v.len()).unwrap())
                .collect();
            let envelopes = split(&output, &sizes);
            for (envelope, value) in envelopes.iter().zip(&values) {
                assert_eq!(
                    cipher.decrypt(envelope).unwrap(),
                    [&[1u8][..], value].concat()
                );
            }
            let env_lens: Vec<u32> = sizes.iter().map(|&s| s as u32).collect();
            let mut plain = vec![0u8; lens.iter().sum::<u32>() as usize];
            open_records_into(cipher, &output, &env_lens, &mut plain).unwrap();
            let expected: Vec<u8> = values
                .iter()
                .flat_map(|v| [&[1u8][..], v].concat())
                .collect();
            assert_eq!(plain, expected);

            let mut broken = output.clone();
            broken[sizes[0] + sizes[1] + sizes[2] + 9] ^= 4;
            let err = open_records_into(cipher, &broken, &env_lens, &mut plain).unwrap_err();
            assert_eq!(
                err,
                BatchError {
                    index: 3,
                    error: Error::Auth
                }
            );
            assert!(plain.iter().all(|&b| b == 0), "output wiped");
            assert!(open_records_into(cipher, &output, &env_lens, &mut plain[1..]).is_err());
            let mut short = vec![1u8; 3];
            assert_eq!(
                seal_records_from(cipher, &mut short, &[3], &mut [0u8; 10])
                    .unwrap_err()
                    .index,
                1
            );
            assert_eq!(short, [0, 0, 0], "input wiped on failure too");
        }
    }

    #[test]
    fn reseal_moves_values_between_ciphers() {
        let all = ciphers();
        let values: Vec<Vec<u8>> = (0..20).map(|n| vec![n as u8; n * 7]).collect();
        for from in &all {
            for to in &all {
                let (from, to) = (from.as_ref(), to.as_ref());
                let (mut input, lens) = layout(from, &values);
                seal_records(from, &mut input, &lens).unwrap();
                let env_lens: Vec<u32> = lens
                    .iter()
                    .map(|l| l + from.algorithm().overhead() as u32)
                    .collect();
                let mut output = vec![0u8; sealed_records_len(to.algorithm(), &lens).unwrap()];
                reseal_records(from, to, &mut input, &env_lens, &mut output).unwrap();
                assert!(input.iter().all(|&b| b == 0), "input wiped");
                let sizes: Vec<usize> = values
                    .iter()
                    .map(|v| to.sealed_len(v.len()).unwrap())
                    .collect();
                for (envelope, value) in split(&output, &sizes).iter().zip(&values) {
                    assert_eq!(&to.decrypt(envelope).unwrap()[1..], &value[..]);
                }
            }
        }
    }
}
