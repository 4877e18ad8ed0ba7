//! `test-vectors/format-v1.json` freezes the v1 bytes for both backends.
//!
//! `generate` (ignored) writes the file: `cargo test -p sifredb-core --release --test frozen_vectors
//! -- --ignored`. It is run once and the output committed; `committed_vectors_reproduce` then
//! recomputes every committed vector from its inputs, so any change to the format fails here.

mod common;

use std::path::PathBuf;

use serde_json::{json, Value};
use sifredb_core::format::Algorithm;
use sifredb_core::keys::HKDF_SALT;
use sifredb_core::{blind_index_message, encode_context, Cipher, Purpose, RootKey};

use common::{base64url, hexv, read_json, text_form, write_json};

const PURPOSES: [Purpose; 4] = [
    Purpose::ChaCha20Poly1305,
    Purpose::XChaCha20Poly1305,
    Purpose::Aes256Siv,
    Purpose::BlindIndex,
];
const BITS: [u32; 7] = [8, 12, 16, 32, 64, 100, 256];

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/format-v1.json")
}

struct Ctx {
    name: &'static str,
    tenant: Option<&'static str>,
    table: &'static str,
    column: &'static str,
    version: u32,
    index_name: &'static str,
}

const CONTEXTS: [Ctx; 4] = [
    Ctx {
        name: "users.email",
        tenant: None,
        table: "users",
        column: "email",
        version: 1,
        index_name: "email_bidx",
    },
    Ctx {
        name: "acme/users.email",
        tenant: Some("acme"),
        table: "users",
        column: "email",
        version: 1,
        index_name: "email_bidx",
    },
    Ctx {
        name: "unicode",
        tenant: Some("şirket-ü"),
        table: "müşteriler",
        column: "e-posta",
        version: 1,
        index_name: "arama_ı",
    },
    Ctx {
        name: "users.email@v2",
        tenant: None,
        table: "users",
        column: "email",
        version: 2,
        index_name: "email_bidx",
    },
];

fn root_keys() -> Vec<(u32, Vec<u8>)> {
    vec![
        (1, (0x00..=0x1f).collect()),
        (7, (0xe0..=0xff).rev().collect()),
    ]
}

fn plaintexts() -> Vec<(u8, Vec<u8>)> {
    vec![
        (0x01, Vec::new()),
        (0x01, b"alice@example.com".to_vec()),
        (0x00, vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]),
        (0x00, (0..300u32).map(|i| (i * 7 + 3) as u8).collect()),
    ]
}

fn purpose_from(name: &str) -> Purpose {
    PURPOSES.into_iter().find(|p| p.label() == name).unwrap()
}

fn build() -> Value {
    let roots = root_keys();
    let contexts: Vec<Value> = CONTEXTS
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "tenant": c.tenant, "table": c.table, "column": c.column, "version": c.version,
                "canonicalHex": hex::encode(encode_context(c.tenant, c.table, c.column, c.version).unwrap()),
            })
        })
        .collect();

    let mut derived = Vec::new();
    let mut envelopes = Vec::new();
    let mut blind = Vec::new();
    let mut nonce_seed = 0u8;
    for (version, material) in &roots {
        let root = RootKey::new(*version, material).unwrap();
        for c in &CONTEXTS {
            let ctx = encode_context(c.tenant, c.table, c.column, c.version).unwrap();
            for purpose in PURPOSES {
                let index = (purpose == Purpose::BlindIndex).then_some(c.index_name);
                let key = root
                    .derive_key(purpose, &ctx, index.map(str::as_bytes))
                    .unwrap();
                derived.push(json!({
                    "rootKey": version, "context": c.name, "purpose": purpose.label(),
                    "indexName": index, "keyHex": hex::encode(key.as_slice()),
                }));
            }
            // The second root key gets envelopes for one context only, to keep the file small.
            if *version != 1 && c.name != "acme/users.email" {
                continue;
            }
            for (type_tag, value) in plaintexts() {
                for alg in [Algorithm::ChaCha20Poly1305, Algorithm::XChaCha20Poly1305] {
                    let cipher = root.randomized_cipher(alg, &ctx).unwrap();
                    // Distinct nonces per vector: even test data should not show nonce reuse.
                    nonce_seed = nonce_seed.wrapping_add(37);
                    let nonce: Vec<u8> = (0..alg.nonce_len() as u8)
                        .map(|i| nonce_seed.wrapping_add(i.wrapping_mul(11)))
                        .collect();
                    let envelope = cipher.encrypt_with_nonce(type_tag, &value, &nonce).unwrap();
                    envelopes.push(envelope_json(
                        "randomized",
                        alg,
                        *version,
                        c.name,
                        type_tag,
                        &value,
                        Some(&nonce),
                        &envelope,
                    ));
                }
                let envelope = root
                    .deterministic_cipher(&ctx)
                    .unwrap()
                    .encrypt(type_tag, &value)
                    .unwrap();
                envelopes.push(envelope_json(
                    "deterministic",
                    Algorithm::Aes256Siv,
                    *version,
                    c.name,
                    type_tag,
                    &value,
                    None,
                    &envelope,
                ));
            }
            if c.name == "users.email@v2" {
                continue;
            }
            let key = root.blind_index(&ctx, c.index_name.as_bytes()).unwrap();
            let messages: [&[&[u8]]; 3] = [&[b"alice@example.com"], &[b"Ada", b"Lovelace"], &[b""]];
            for fields in messages {
                let message = blind_index_message(fields).unwrap();
                for bits in BITS {
                    blind.push(json!({
                        "rootKey": version, "context": c.name, "indexName": c.index_name,
                        "fieldsHex": fields.iter().map(hex::encode).collect::<Vec<_>>(),
                        "messageHex": hex::encode(&message), "bits": bits,
                        "termHex": hex::encode(key.compute(&message, bits).unwrap()),
                    }));
                }
            }
        }
    }
    json!({
        "format": 1,
        "description": "Frozen SifreDB v1 vectors (docs/FORMAT.md). Generated once by crates/sifredb-core/tests/frozen_vectors.rs; never edit or regenerate existing entries.",
        "hkdfSaltHex": hex::encode(HKDF_SALT),
        "rootKeys": roots.iter().map(|(v, k)| json!({"version": v, "hex": hex::encode(k)})).collect::<Vec<_>>(),
        "contexts": contexts,
        "derivedKeys": derived,
        "envelopes": envelopes,
        "blindIndex": blind,
    })
}

#[allow(clippy::too_many_arguments)]
fn envelope_json(
    kind: &str,
    alg: Algorithm,
    root: u32,
    ctx: &str,
    tag: u8,
    value: &[u8],
    nonce: Option<&[u8]>,
    env: &[u8],
) -> Value {
    json!({
        "kind": kind, "algorithm": alg.id(), "rootKey": root, "context": ctx, "typeTag": tag,
        "valueHex": hex::encode(value),
        "valueText": if tag == 1 { std::str::from_utf8(value).ok() } else { None },
        "nonceHex": nonce.map(hex::encode),
        "envelopeHex": hex::encode(env), "text": text_form(env),
    })
}

#[test]
#[ignore = "writes test-vectors/format-v1.json; run once, then commit the file"]
fn generate() {
    write_json(&path(), &build());
}

#[test]
fn committed_vectors_reproduce() {
    let file = read_json(&path());
    assert_eq!(file["format"], 1);
    assert_eq!(hexv(&file["hkdfSaltHex"]), HKDF_SALT);
    let root = |v: &Value| {
        let entry = file["rootKeys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == *v)
            .unwrap();
        RootKey::new(
            entry["version"].as_u64().unwrap() as u32,
            &hexv(&entry["hex"]),
        )
        .unwrap()
    };
    let context = |name: &Value| common::committed_context(&file, name);

    let derived = file["derivedKeys"].as_array().unwrap();
    for d in derived {
        let name = d["indexName"].as_str().map(str::as_bytes);
        let key = root(&d["rootKey"])
            .derive_key(
                purpose_from(d["purpose"].as_str().unwrap()),
                &context(&d["context"]),
                name,
            )
            .unwrap();
        assert_eq!(key.as_slice(), hexv(&d["keyHex"]), "{d}");
    }

    let envelopes = file["envelopes"].as_array().unwrap();
    for e in envelopes {
        let (root, ctx) = (root(&e["rootKey"]), context(&e["context"]));
        let alg = Algorithm::from_id(e["algorithm"].as_u64().unwrap() as u8).unwrap();
        let (tag, value, expected) = (
            e["typeTag"].as_u64().unwrap() as u8,
            hexv(&e["valueHex"]),
            hexv(&e["envelopeHex"]),
        );
        let cipher: Box<dyn Cipher> = match alg {
            Algorithm::Aes256Siv => {
                let c = root.deterministic_cipher(&ctx).unwrap();
                assert_eq!(c.encrypt(tag, &value).unwrap(), expected, "{e}");
                Box::new(c)
            }
            _ => {
                let c = root.randomized_cipher(alg, &ctx).unwrap();
                assert_eq!(
                    c.encrypt_with_nonce(tag, &value, &hexv(&e["nonceHex"]))
                        .unwrap(),
                    expected,
                    "{e}"
                );
                Box::new(c)
            }
        };
        assert_eq!(
            cipher.decrypt(&expected).unwrap(),
            [&[tag][..], &value].concat()
        );
        assert_eq!(e["text"], text_form(&expected));
        if let Some(text) = e["valueText"].as_str() {
            assert_eq!(text.as_bytes(), value);
        }
    }

    let blind = file["blindIndex"].as_array().unwrap();
    for b in blind {
        let key = root(&b["rootKey"])
            .blind_index(
                &context(&b["context"]),
                b["indexName"].as_str().unwrap().as_bytes(),
            )
            .unwrap();
        let fields: Vec<Vec<u8>> = b["fieldsHex"]
            .as_array()
            .unwrap()
            .iter()
            .map(hexv)
            .collect();
        let message =
            blind_index_message(&fields.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
        assert_eq!(message, hexv(&b["messageHex"]));
        assert_eq!(
            key.compute(&message, b["bits"].as_u64().unwrap() as u32)
                .unwrap(),
            hexv(&b["termHex"]),
            "{b}"
        );
    }

    println!(
        "{} derived keys, {} envelopes, {} blind-index terms",
        derived.len(),
        envelopes.len(),
        blind.len()
    );
    assert!(!derived.is_empty() && !envelopes.is_empty() && !blind.is_empty());
}

#[test]
fn base64url_matches_rfc4648() {
    // RFC 4648 §10 vectors, padding removed, plus the two characters that differ from base64.
    for (input, output) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64url(input.as_bytes()), output);
    }
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}
