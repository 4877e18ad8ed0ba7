//! `test-vectors/format-v1-row-binding.json` freezes row-bound v1 envelopes (docs/FORMAT.md,
//! "Row binding"): `AAD = header ‖ canonical context ‖ u32be(len(rowAd)) ‖ rowAd`.
//!
//! `generate` (ignored) writes the file: `cargo test -p sifredb-core --release --test
//! row_binding_vectors -- --ignored`. It is run once and the output committed;
//! `committed_row_binding_vectors_reproduce` then recomputes every entry through the cipher API and,
//! independently, through the raw RFC primitives with the documented AAD, and checks that each
//! envelope fails without its row AD and with another one.

mod common;

use std::path::PathBuf;

use serde_json::{json, Value};
use sifredb_core::format::{Algorithm, HEADER_LEN};
use sifredb_core::{encode_context, primitives, Cipher, Error, Purpose, RootKey};

use common::{hexv, read_json, text_form, write_json};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/format-v1-row-binding.json")
}

struct Ctx {
    name: &'static str,
    tenant: Option<&'static str>,
    table: &'static str,
    column: &'static str,
}

const CONTEXTS: [Ctx; 2] = [
    Ctx {
        name: "users.email",
        tenant: None,
        table: "users",
        column: "email",
    },
    Ctx {
        name: "acme/users.email",
        tenant: Some("acme"),
        table: "users",
        column: "email",
    },
];

/// Row ADs as the JS API encodes them: a string's UTF-8, a number's / bigint's decimal ASCII, bytes.
fn row_ads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty", Vec::new()),
        ("number 42", b"42".to_vec()),
        (
            "bigint 12345678901234567890",
            b"12345678901234567890".to_vec(),
        ),
        (
            "string uuid",
            b"6f1c2a4e-9b7d-4c1e-8f00-3a5b6c7d8e9f".to_vec(),
        ),
        ("string unicode", "müşteri/ğ".as_bytes().to_vec()),
        ("bytes", vec![0x00, 0xff, 0x01, 0x80]),
    ]
}

fn plaintexts() -> Vec<(u8, Vec<u8>)> {
    vec![
        (0x01, b"alice@example.com".to_vec()),
        (0x01, Vec::new()),
        (0x00, vec![0xde, 0xad, 0xbe, 0xef]),
    ]
}

const ROOT_VERSION: u32 = 1;

fn root_material() -> Vec<u8> {
    (0x00..=0x1f).collect()
}

fn bound_aad(envelope: &[u8], context: &[u8], row_ad: &[u8]) -> Vec<u8> {
    [
        &envelope[..HEADER_LEN],
        context,
        &(row_ad.len() as u32).to_be_bytes(),
        row_ad,
    ]
    .concat()
}

fn build() -> Value {
    let root = RootKey::new(ROOT_VERSION, &root_material()).unwrap();
    let mut envelopes = Vec::new();
    let mut nonce_seed = 0x5au8;
    for c in &CONTEXTS {
        let ctx = encode_context(c.tenant, c.table, c.column, 1).unwrap();
        for (label, row_ad) in row_ads() {
            for (type_tag, value) in plaintexts() {
                for alg in [
                    Algorithm::ChaCha20Poly1305,
                    Algorithm::XChaCha20Poly1305,
                    Algorithm::Aes256Siv,
                ] {
                    let (envelope, nonce) = if alg == Algorithm::Aes256Siv {
                        let cipher = root.deterministic_cipher(&ctx).unwrap();
                        (
                            cipher.encrypt_bound(type_tag, &value, &row_ad).unwrap(),
                            None,
                        )
                    } else {
                        let cipher = root.randomized_cipher(alg, &ctx).unwrap();
                        // Distinct nonces per vector: even test data should not show nonce reuse.
                        nonce_seed = nonce_seed.wrapping_add(41);
                        let nonce: Vec<u8> = (0..alg.nonce_len() as u8)
                            .map(|i| nonce_seed.wrapping_add(i.wrapping_mul(13)))
                            .collect();
                        let envelope = cipher
                            .encrypt_bound_with_nonce(type_tag, &value, &row_ad, &nonce)
                            .unwrap();
                        (envelope, Some(nonce))
                    };
                    envelopes.push(json!({
                        "algorithm": alg.id(),
                        "context": c.name,
                        "typeTag": type_tag,
                        "valueHex": hex::encode(&value),
                        "valueText": if type_tag == 1 { std::str::from_utf8(&value).ok() } else { None },
                        "rowAd": label,
                        "rowAdHex": hex::encode(&row_ad),
                        "nonceHex": nonce.as_deref().map(hex::encode),
                        "aadHex": hex::encode(bound_aad(&envelope, &ctx, &row_ad)),
                        "envelopeHex": hex::encode(&envelope),
                        "text": text_form(&envelope),
                    }));
                }
            }
        }
    }
    json!({
        "format": 1,
        "description": "Frozen SifreDB v1 row-bound envelopes (docs/FORMAT.md, Row binding): AAD = header || canonical context || u32be(len(rowAd)) || rowAd. Generated once by crates/sifredb-core/tests/row_binding_vectors.rs; never edit or regenerate existing entries. `rowAd` labels how the JS API encodes the row AD (numbers and bigints as decimal ASCII, strings as UTF-8).",
        "rootKey": { "version": ROOT_VERSION, "hex": hex::encode(root_material()) },
        "contexts": CONTEXTS.iter().map(|c| json!({
            "name": c.name, "tenant": c.tenant, "table": c.table, "column": c.column, "version": 1,
            "canonicalHex": hex::encode(encode_context(c.tenant, c.table, c.column, 1).unwrap()),
        })).collect::<Vec<_>>(),
        "envelopes": envelopes,
    })
}

#[test]
#[ignore = "writes test-vectors/format-v1-row-binding.json; run once, then commit the file"]
fn generate() {
    write_json(&path(), &build());
}

#[test]
fn committed_row_binding_vectors_reproduce() {
    let file = read_json(&path());
    assert_eq!(file["format"], 1);
    let root = RootKey::new(
        file["rootKey"]["version"].as_u64().unwrap() as u32,
        &hexv(&file["rootKey"]["hex"]),
    )
    .unwrap();
    let context = |name: &Value| common::committed_context(&file, name);
    let envelopes = file["envelopes"].as_array().unwrap();
    let mut algorithms = [0usize; 3];
    for e in envelopes {
        let ctx = context(&e["context"]);
        let alg = Algorithm::from_id(e["algorithm"].as_u64().unwrap() as u8).unwrap();
        algorithms[usize::from(alg.id()) - 1] += 1;
        let tag = e["typeTag"].as_u64().unwrap() as u8;
        let (value, row_ad, expected) = (
            hexv(&e["valueHex"]),
            hexv(&e["rowAdHex"]),
            hexv(&e["envelopeHex"]),
        );
        let aad = hexv(&e["aadHex"]);
        assert_eq!(aad, bound_aad(&expected, &ctx, &row_ad), "{e}");
        let plaintext = [&[tag][..], &value].concat();

        // Through the cipher API.
        let cipher: Box<dyn Cipher> = match alg {
            Algorithm::Aes256Siv => {
                let c = root.deterministic_cipher(&ctx).unwrap();
                assert_eq!(
                    c.encrypt_bound(tag, &value, &row_ad).unwrap(),
                    expected,
                    "{e}"
                );
                Box::new(c)
            }
            _ => {
                let c = root.randomized_cipher(alg, &ctx).unwrap();
                let nonce = hexv(&e["nonceHex"]);
                assert_eq!(
                    c.encrypt_bound_with_nonce(tag, &value, &row_ad, &nonce)
                        .unwrap(),
                    expected,
                    "{e}"
                );
                Box::new(c)
            }
        };
        assert_eq!(cipher.decrypt_bound(&expected, &row_ad).unwrap(), plaintext);
        assert_eq!(cipher.decrypt(&expected), Err(Error::Auth), "unbound open");
        let other = [&row_ad[..], b"x"].concat();
        assert_eq!(cipher.decrypt_bound(&expected, &other), Err(Error::Auth));
        assert_eq!(e["text"], text_form(&expected));

        // Independently, through the raw primitives and the documented AAD.
        let purpose = match alg {
            Algorithm::ChaCha20Poly1305 => Purpose::ChaCha20Poly1305,
            Algorithm::XChaCha20Poly1305 => Purpose::XChaCha20Poly1305,
            Algorithm::Aes256Siv => Purpose::Aes256Siv,
        };
        let key = root.derive_key(purpose, &ctx, None).unwrap();
        let body = match alg {
            Algorithm::ChaCha20Poly1305 => {
                let nonce = hexv(&e["nonceHex"]);
                [
                    nonce.clone(),
                    primitives::chacha20_poly1305_encrypt(&key, &nonce, &plaintext, &aad).unwrap(),
                ]
                .concat()
            }
            Algorithm::XChaCha20Poly1305 => {
                let nonce = hexv(&e["nonceHex"]);
                [
                    nonce.clone(),
                    primitives::xchacha20_poly1305_encrypt(&key, &nonce, &plaintext, &aad).unwrap(),
                ]
                .concat()
            }
            Algorithm::Aes256Siv => primitives::aes_siv_encrypt(&key, &plaintext, &aad).unwrap(),
        };
        assert_eq!(&expected[HEADER_LEN..], &body[..], "{e}");
    }
    println!("{} row-bound envelopes {algorithms:?}", envelopes.len());
    assert!(algorithms.iter().all(|n| *n > 0));
}
