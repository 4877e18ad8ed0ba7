//! The composed ChaCha20-Poly1305 / XChaCha20-Poly1305 (src/chacha_poly.rs) against the
//! `chacha20poly1305` crate on random keys, nonces, AADs and sizes on both sides of the size at
//! which the Poly1305 implementation switches.

use chacha20poly1305::aead::array::Array;
use chacha20poly1305::{AeadInOut, ChaCha20Poly1305, KeyInit, XChaCha20Poly1305};
use sifredb_core::chacha_poly::{ChaChaPoly, Variant, SIMD_POLY1305_FROM};

mod common;
use common::Rng;

fn sizes(rng: &mut Rng) -> Vec<usize> {
    let t = SIMD_POLY1305_FROM;
    let mut v: Vec<usize> = (0..=130).collect();
    v.extend([
        191, 192, 193, 255, 256, 257, 447, 448, 449, 511, 512, 1023, 1024, 4095, 4096, 4097, 65535,
        65536, 65537, 200_000,
    ]);
    v.extend((t - 80..t + 80).step_by(1));
    v.extend((0..60).map(|_| rng.below(70_000)));
    v
}

fn check(variant: Variant, rng: &mut Rng) {
    let mut cases = 0;
    for size in sizes(rng) {
        let key: [u8; 32] = rng.bytes(32).try_into().unwrap();
        let nonce = rng.bytes(variant.nonce_len());
        // Mostly short AADs (like SifreDB's header ‖ context), sometimes long enough to cross
        // the switch on their own.
        let aad_len = match rng.below(8) {
            0 => rng.below(5000),
            1 => 0,
            _ => rng.below(80),
        };
        let aad = rng.bytes(aad_len);
        let plaintext = rng.bytes(size);

        let mut expected = plaintext.clone();
        let expected_tag = match variant {
            Variant::ChaCha20 => ChaCha20Poly1305::new(&key.into())
                .encrypt_inout_detached(
                    Array::try_from(&nonce[..]).unwrap().as_ref(),
                    &aad,
                    (&mut expected[..]).into(),
                )
                .unwrap(),
            Variant::XChaCha20 => XChaCha20Poly1305::new(&key.into())
                .encrypt_inout_detached(
                    Array::try_from(&nonce[..]).unwrap().as_ref(),
                    &aad,
                    (&mut expected[..]).into(),
                )
                .unwrap(),
        };

        let ours = ChaChaPoly::new(variant, &key);
        let mut sealed = plaintext.clone();
        let tag = ours
            .encrypt_inout_detached(&nonce, &aad, (&mut sealed[..]).into())
            .unwrap();
        assert_eq!(sealed, expected, "{variant:?} ciphertext, size {size}");
        assert_eq!(
            &tag[..],
            &expected_tag[..],
            "{variant:?} tag, size {size}, aad {aad_len}"
        );

        let mut opened = sealed.clone();
        ours.decrypt_inout_detached(&nonce, &aad, (&mut opened[..]).into(), &tag)
            .unwrap();
        assert_eq!(opened, plaintext);

        // A flipped bit anywhere (ciphertext, AAD or tag) is refused and nothing is written.
        let mut bad_tag = tag;
        bad_tag[rng.below(16)] ^= 1 << rng.below(8);
        let mut out = vec![0xa5u8; size];
        assert!(ours
            .decrypt_inout_detached(
                &nonce,
                &aad,
                chacha20poly1305::aead::inout::InOutBuf::new(&sealed[..], &mut out[..]).unwrap(),
                &bad_tag
            )
            .is_err());
        assert!(out.iter().all(|b| *b == 0xa5));
        if size > 0 {
            let mut bad = sealed.clone();
            bad[rng.below(size)] ^= 1 << rng.below(8);
            assert!(ours
                .decrypt_inout_detached(&nonce, &aad, (&mut bad[..]).into(), &tag)
                .is_err());
        }
        if aad_len > 0 {
            let mut bad_aad = aad.clone();
            bad_aad[rng.below(aad_len)] ^= 1 << rng.below(8);
            let mut buf = sealed.clone();
            assert!(ours
                .decrypt_inout_detached(&nonce, &bad_aad, (&mut buf[..]).into(), &tag)
                .is_err());
        }
        cases += 1;
    }
    assert!(cases > 300);
}

#[test]
fn chacha20_poly1305_matches_the_crate() {
    check(Variant::ChaCha20, &mut Rng(0x5eed_1234_abcd_0001));
}

#[test]
fn xchacha20_poly1305_matches_the_crate() {
    check(Variant::XChaCha20, &mut Rng(0x5eed_1234_abcd_0002));
}

#[test]
fn wrong_nonce_length_is_refused() {
    let ours = ChaChaPoly::new(Variant::ChaCha20, &[0; 32]);
    let mut buf = [0u8; 4];
    assert!(ours
        .encrypt_inout_detached(&[0; 24], b"", (&mut buf[..]).into())
        .is_err());
}
