//! The composed AES-256-SIV (src/siv.rs: S2V with the associated data precomputed, CMAC, CTR)
//! against the `aes-siv` crate on random keys, associated data and sizes, including every length
//! around the block boundaries where S2V's `xorend` and CMAC's padding change shape.

use aes_siv::aead::array::Array;
use aes_siv::siv::Aes256Siv as Oracle;
use aes_siv::KeyInit;
use sifredb_core::siv::Aes256Siv;

mod common;
use common::Rng;

#[test]
fn aes256_siv_matches_the_crate() {
    let mut rng = Rng(0x51f0_0000_1234_5678);
    let mut sizes: Vec<usize> = (0..=100).collect();
    sizes.extend([
        127, 128, 129, 255, 256, 257, 4095, 4096, 4097, 65535, 65536, 65537,
    ]);
    sizes.extend((0..60).map(|_| rng.below(70_000)));
    for size in sizes {
        let key: [u8; 64] = rng.bytes(64).try_into().unwrap();
        let ad_len = match rng.below(6) {
            0 => 0,
            1 => rng.below(3000),
            _ => rng.below(70),
        };
        let ad = rng.bytes(ad_len);
        let plaintext = rng.bytes(size);

        let mut oracle = Oracle::new(&Array::try_from(&key[..]).unwrap());
        let mut expected = plaintext.clone();
        let expected_iv = oracle
            .encrypt_inout_detached([&ad], (&mut expected[..]).into())
            .unwrap();

        let ours = Aes256Siv::new(&key);
        let state = ours.ad_state(&ad);
        let mut sealed = plaintext.clone();
        let iv = ours.seal_in_place(&state, &mut sealed);
        assert_eq!(&iv[..], &expected_iv[..], "SIV, size {size}, ad {ad_len}");
        assert_eq!(sealed, expected, "ciphertext, size {size}");

        let mut opened = sealed.clone();
        ours.open_inout(&state, &iv, (&mut opened[..]).into())
            .unwrap();
        assert_eq!(opened, plaintext);

        // Tampering anywhere fails and leaves nothing behind.
        let mut bad_iv = iv;
        bad_iv[rng.below(16)] ^= 1 << rng.below(8);
        let mut out = vec![0xa5u8; size];
        let buf = aes_siv::aead::inout::InOutBuf::new(&sealed[..], &mut out[..]).unwrap();
        assert!(ours.open_inout(&state, &bad_iv, buf).is_err());
        assert!(out.iter().all(|b| *b == 0), "wiped");
        if size > 0 {
            let mut bad = sealed.clone();
            bad[rng.below(size)] ^= 1 << rng.below(8);
            assert!(ours.open_inout(&state, &iv, (&mut bad[..]).into()).is_err());
            assert!(bad.iter().all(|b| *b == 0), "wiped in place");
        }
        let other = ours.ad_state(&[ad.as_slice(), b"x"].concat());
        let mut buf = sealed.clone();
        assert!(ours.open_inout(&other, &iv, (&mut buf[..]).into()).is_err());
    }
}

/// RFC 5297 A.1's key and input under AES-256 are not in the RFC; this pins the composition to the
/// crate with several AD strings' worth of state reuse: one `ad_state`, many messages.
#[test]
fn one_ad_state_many_messages() {
    let mut rng = Rng(7);
    let key: [u8; 64] = rng.bytes(64).try_into().unwrap();
    let ad = rng.bytes(28);
    let ours = Aes256Siv::new(&key);
    let state = ours.ad_state(&ad);
    let mut oracle = Oracle::new(&Array::try_from(&key[..]).unwrap());
    for size in 0..200 {
        let plaintext = rng.bytes(size);
        let mut a = plaintext.clone();
        let iv = ours.seal_in_place(&state, &mut a);
        let mut b = plaintext.clone();
        let tag = oracle
            .encrypt_inout_detached([&ad], (&mut b[..]).into())
            .unwrap();
        assert_eq!((&iv[..], a), (&tag[..], b));
    }
}
