//! AES-256-SIV with a vector of associated-data components (src/siv_vector.rs):
//! - `test-vectors/aes-siv-components.json`, computed by Python's `cryptography` (OpenSSL), an
//!   implementation outside this repository (`__test__/aes-siv-components.spec.js` re-checks it
//!   against Python and both JS backends);
//! - the `aes-siv` crate's `Siv` on random components and sizes;
//! - every component, its order and the count authenticate.

mod common;

use std::path::PathBuf;

use aes_siv::aead::array::Array;
use aes_siv::siv::Aes256Siv as Oracle;
use aes_siv::KeyInit;
use sifredb_core::siv_vector::{
    aes_siv_decrypt_components, aes_siv_encrypt_components, split_components, MAX_AD_COMPONENTS,
};
use sifredb_core::Error;

use common::Rng;

fn vectors() -> serde_json::Value {
    common::read_json(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../test-vectors/aes-siv-components.json"),
    )
}

#[test]
fn committed_vectors_from_python_cryptography() {
    let file = vectors();
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let key = common::hexv(&case["key"]);
        let ad = common::hex_list(&case["ad"]);
        let components: Vec<&[u8]> = ad.iter().map(Vec::as_slice).collect();
        let plaintext = common::hexv(&case["plaintext"]);
        let ciphertext = common::hexv(&case["ciphertext"]);
        assert_eq!(
            aes_siv_encrypt_components(&key, &plaintext, &components).unwrap(),
            ciphertext,
            "{name}"
        );
        assert_eq!(
            aes_siv_decrypt_components(&key, &ciphertext, &components).unwrap(),
            plaintext,
            "{name}"
        );
        // The same components, laid out as the addon passes them.
        let joined: Vec<u8> = ad.concat();
        let lens: Vec<u32> = ad.iter().map(|c| c.len() as u32).collect();
        assert_eq!(
            split_components(&joined, &lens).unwrap(),
            components,
            "{name}"
        );
        // Dropping, adding or swapping a component fails authentication.
        if let Some((_, rest)) = components.split_first() {
            assert_eq!(
                aes_siv_decrypt_components(&key, &ciphertext, rest),
                Err(Error::Auth),
                "{name}"
            );
        }
        if components.len() < MAX_AD_COMPONENTS {
            let mut more = components.clone();
            more.push(b"");
            assert_eq!(
                aes_siv_decrypt_components(&key, &ciphertext, &more),
                Err(Error::Auth),
                "{name}"
            );
        }
        if components.len() >= 2 && components[0] != components[1] {
            let mut swapped = components.clone();
            swapped.swap(0, 1);
            assert_eq!(
                aes_siv_decrypt_components(&key, &ciphertext, &swapped),
                Err(Error::Auth),
                "{name}"
            );
        }
    }
}

#[test]
fn too_many_components_are_refused() {
    let key = [1u8; 64];
    let many = vec![&b"c"[..]; MAX_AD_COMPONENTS + 1];
    for err in [
        aes_siv_encrypt_components(&key, b"x", &many).unwrap_err(),
        aes_siv_decrypt_components(&key, &[0u8; 32], &many).unwrap_err(),
        split_components(&[b'c'; 127], &[1; 127]).unwrap_err(),
    ] {
        assert_eq!(err.code(), "ERR_SIFREDB_INPUT");
        assert_eq!(
            err.to_string(),
            "ad must be at most 126 components, got 127"
        );
    }
}

#[test]
fn matches_the_aes_siv_crate() {
    let mut rng = Rng(0x5157_0ec7_0000_0001);
    for round in 0..400 {
        let key: [u8; 64] = rng.bytes(64).try_into().unwrap();
        let count = if round % 50 == 0 {
            MAX_AD_COMPONENTS
        } else {
            rng.below(6)
        };
        let ad: Vec<Vec<u8>> = (0..count)
            .map(|_| {
                let n = rng.below(50);
                rng.bytes(n)
            })
            .collect();
        let components: Vec<&[u8]> = ad.iter().map(Vec::as_slice).collect();
        let n = rng.below(100);
        let plaintext = rng.bytes(n);

        let mut oracle = Oracle::new(&Array::try_from(&key[..]).unwrap());
        let mut expected = plaintext.clone();
        let iv = oracle
            .encrypt_inout_detached(components.iter(), (&mut expected[..]).into())
            .unwrap();
        let sealed = aes_siv_encrypt_components(&key, &plaintext, &components).unwrap();
        assert_eq!(&sealed[..16], &iv[..], "round {round}");
        assert_eq!(&sealed[16..], &expected[..], "round {round}");
        assert_eq!(
            aes_siv_decrypt_components(&key, &sealed, &components).unwrap(),
            plaintext
        );
    }
}
