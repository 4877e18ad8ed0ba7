//! Envelope behaviour: round trips, tamper detection, truncation, determinism, context binding.

use sifredb_core::format::{Algorithm, HEADER_LEN};
use sifredb_core::{encode_context, Cipher, Error, RootKey};

fn root(version: u32) -> RootKey {
    RootKey::new(version, &[0x42; 32]).unwrap()
}

fn ctx(column: &str) -> Vec<u8> {
    encode_context(Some("acme"), "users", column, 1).unwrap()
}

fn all_ciphers(root: &RootKey, context: &[u8]) -> Vec<Box<dyn Cipher>> {
    vec![
        Box::new(
            root.randomized_cipher(Algorithm::ChaCha20Poly1305, context)
                .unwrap(),
        ),
        Box::new(
            root.randomized_cipher(Algorithm::XChaCha20Poly1305, context)
                .unwrap(),
        ),
        Box::new(root.deterministic_cipher(context).unwrap()),
    ]
}

#[test]
fn round_trips_at_every_size() {
    let big = vec![0xab; 1 << 20];
    for cipher in all_ciphers(&root(1), &ctx("email")) {
        for value in [&b""[..], b"x", b"alice@example.com", &big] {
            let envelope = cipher.encrypt(0x01, value).unwrap();
            assert_eq!(envelope.len(), cipher.sealed_len(value.len()).unwrap());
            assert_eq!(
                envelope.len(),
                value.len() + 1 + cipher.algorithm().overhead()
            );
            assert_eq!(&envelope[..3], &[0x53, 0x01, cipher.algorithm().id()]);
            assert_eq!(&envelope[3..7], &[0, 0, 0, 1]);
            let plain = cipher.decrypt(&envelope).unwrap();
            assert_eq!(plain[0], 0x01);
            assert_eq!(&plain[1..], value);
            assert_eq!(cipher.plaintext_len(&envelope).unwrap(), plain.len());
        }
    }
}

#[test]
fn every_bit_flip_is_rejected() {
    for cipher in all_ciphers(&root(1), &ctx("email")) {
        let envelope = cipher.encrypt(0x00, b"secret value").unwrap();
        for i in 0..envelope.len() * 8 {
            let mut bad = envelope.clone();
            bad[i / 8] ^= 1 << (i % 8);
            match cipher.decrypt(&bad) {
                Err(Error::Auth) => assert!(i / 8 >= HEADER_LEN, "header byte {} gave Auth", i / 8),
                Err(Error::Format(_)) => assert!(i / 8 < 3 || bad[3..7] == [0, 0, 0, 0]),
                Err(Error::Key(_)) => assert!((3..7).contains(&(i / 8))),
                other => panic!("bit {i} of {:?}: {other:?}", cipher.algorithm()),
            }
        }
    }
}

#[test]
fn truncations_and_extensions_are_rejected() {
    for cipher in all_ciphers(&root(1), &ctx("email")) {
        let envelope = cipher.encrypt(0x01, b"hello").unwrap();
        for len in 0..envelope.len() {
            assert!(
                matches!(
                    cipher.decrypt(&envelope[..len]),
                    Err(Error::Format(_) | Error::Auth)
                ),
                "{:?} truncated to {len}",
                cipher.algorithm()
            );
        }
        let mut longer = envelope.clone();
        longer.push(0);
        assert_eq!(cipher.decrypt(&longer), Err(Error::Auth));
        // A bare header plus tag (plaintext without even the type tag) is a format error.
        let min = cipher.algorithm().overhead();
        assert!(matches!(
            cipher.decrypt(&envelope[..min]),
            Err(Error::Format(_))
        ));
    }
}

#[test]
fn context_algorithm_and_key_version_are_bound() {
    let root1 = root(1);
    let email = all_ciphers(&root1, &ctx("email"));
    let phone = all_ciphers(&root1, &ctx("phone"));
    for (a, b) in email.iter().zip(&phone) {
        let envelope = a.encrypt(0x01, b"+90 555").unwrap();
        assert_eq!(b.decrypt(&envelope), Err(Error::Auth));
    }
    // Same key bytes under another version: the header check fires before any crypto.
    let other_version = all_ciphers(&root(2), &ctx("email"));
    for (a, b) in email.iter().zip(&other_version) {
        let envelope = a.encrypt(0x01, b"x").unwrap();
        assert_eq!(
            b.decrypt(&envelope),
            Err(Error::Key("key version mismatch"))
        );
        assert_eq!(b.decrypt(&envelope).unwrap_err().code(), "ERR_SIFREDB_KEY");
    }
    let envelope = email[0].encrypt(0x01, b"x").unwrap();
    assert!(matches!(email[1].decrypt(&envelope), Err(Error::Format(_))));
    assert!(matches!(email[2].decrypt(&envelope), Err(Error::Format(_))));
}

#[test]
fn deterministic_is_deterministic_and_randomized_is_not() {
    let root = root(1);
    let siv = root.deterministic_cipher(&ctx("email")).unwrap();
    let same = root.deterministic_cipher(&ctx("email")).unwrap();
    let other = root.deterministic_cipher(&ctx("phone")).unwrap();
    let a = siv.encrypt(0x01, b"alice@example.com").unwrap();
    assert_eq!(a, siv.encrypt(0x01, b"alice@example.com").unwrap());
    assert_eq!(a, same.encrypt(0x01, b"alice@example.com").unwrap());
    assert_eq!(a, siv.clone().encrypt(0x01, b"alice@example.com").unwrap());
    assert_ne!(a, other.encrypt(0x01, b"alice@example.com").unwrap());
    assert_ne!(a, siv.encrypt(0x00, b"alice@example.com").unwrap());
    for alg in [Algorithm::ChaCha20Poly1305, Algorithm::XChaCha20Poly1305] {
        let c = root.randomized_cipher(alg, &ctx("email")).unwrap();
        assert_ne!(
            c.encrypt(0x01, b"v").unwrap(),
            c.encrypt(0x01, b"v").unwrap()
        );
    }
}

#[test]
fn preallocated_buffers_must_have_the_exact_length() {
    let root = root(1);
    for cipher in all_ciphers(&root, &ctx("email")) {
        let len = cipher.sealed_len(5).unwrap();
        for wrong in [0, len - 1, len + 1] {
            let mut out = vec![0u8; wrong];
            assert!(matches!(
                cipher.encrypt_into(&mut out, 1, b"hello"),
                Err(Error::Input { arg: "out", .. })
            ));
        }
        let mut out = vec![0u8; len];
        cipher.encrypt_into(&mut out, 1, b"hello").unwrap();
        let mut plain = vec![0u8; 7];
        assert!(matches!(
            cipher.decrypt_into(&out, &mut plain),
            Err(Error::Input { arg: "out", .. })
        ));
        let mut plain = vec![0u8; 6];
        cipher.decrypt_into(&out, &mut plain).unwrap();
        assert_eq!(plain, b"\x01hello");
        // A failed decryption leaves no plaintext behind.
        out[len - 1] ^= 1;
        assert_eq!(cipher.decrypt_into(&out, &mut plain), Err(Error::Auth));
        assert_eq!(plain, [0u8; 6]);
    }
}

#[test]
fn fixed_nonce_hook() {
    let c = root(1)
        .randomized_cipher(Algorithm::XChaCha20Poly1305, &ctx("email"))
        .unwrap();
    let a = c.encrypt_with_nonce(1, b"v", &[7; 24]).unwrap();
    assert_eq!(a, c.encrypt_with_nonce(1, b"v", &[7; 24]).unwrap());
    assert_eq!(&a[7..31], &[7; 24]);
    assert_eq!(c.decrypt(&a).unwrap(), b"\x01v");
    let e = c.encrypt_with_nonce(1, b"v", &[7; 12]).unwrap_err();
    assert_eq!(e.to_string(), "nonce must be 24 bytes, got 12");
}

#[test]
fn ciphers_work_across_threads() {
    let root = root(1);
    let siv = std::sync::Arc::new(root.deterministic_cipher(&ctx("email")).unwrap());
    let expected = siv.encrypt(1, b"shared").unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let siv = siv.clone();
            std::thread::spawn(move || {
                (0..200)
                    .map(|_| siv.encrypt(1, b"shared").unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in handles {
        assert!(handle.join().unwrap().iter().all(|e| *e == expected));
    }
}
