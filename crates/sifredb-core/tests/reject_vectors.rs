//! `test-vectors/format-v1-reject.json` freezes what a v1 reader refuses (docs/FORMAT.md,
//! "What a reader refuses"), and, beside it, edge values it must keep accepting.
//!
//! `generate` (ignored) writes the file: `cargo test -p sifredb-core --release --test reject_vectors
//! -- --ignored`. It was run once and the output committed; `committed_vectors_hold` then checks
//! every entry against the core: envelope rejects fail to open with their error code, value rejects
//! open to exactly their plaintext (so only the value rules refuse them) and fail
//! [`check_plaintext`], accepts pass it. The JavaScript suite (`__test__/reject-vectors.spec.js`)
//! checks the same file through the public API of both backends.

mod common;

use std::path::PathBuf;

use serde_json::{json, Value};
use sifredb_core::format::Algorithm;
use sifredb_core::value::MAX_JSON_DEPTH;
use sifredb_core::{check_plaintext, encode_context, Cipher, RootKey};

use common::{hexv, read_json, text_form, write_json};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/format-v1-reject.json")
}

const ROOT_KEY: [u8; 32] = [0; 32];
const TABLE: &str = "users";
const COLUMN: &str = "n";

fn context() -> Vec<u8> {
    encode_context(None, TABLE, COLUMN, 1).unwrap()
}

fn f64_bytes(x: f64) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

/// (name, type tag, value bytes, why a reader refuses it).
fn rejected_values() -> Vec<(String, u8, Vec<u8>, &'static str)> {
    let mut v: Vec<(String, u8, Vec<u8>, &'static str)> = Vec::new();
    let mut add = |name: &str, tag: u8, bytes: &[u8], why: &'static str| {
        v.push((name.to_owned(), tag, bytes.to_vec(), why));
    };
    add(
        "string: lone surrogate",
        0x01,
        b"a\xed\xa0\x80",
        "UTF-8 never encodes a surrogate",
    );
    add("string: overlong NUL", 0x01, b"\xc0\x80", "overlong UTF-8");
    add(
        "string: truncated sequence",
        0x01,
        b"\xe2\x82",
        "truncated UTF-8",
    );
    add("string: byte FF", 0x01, b"\xff", "not UTF-8");
    add(
        "number: 7 bytes",
        0x02,
        &[0x3f, 0xf0, 0, 0, 0, 0, 0],
        "a number is exactly 8 bytes",
    );
    add(
        "number: 9 bytes",
        0x02,
        &[0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0],
        "a number is exactly 8 bytes",
    );
    add(
        "number: NaN with payload",
        0x02,
        &[0x7f, 0xf8, 0, 0, 0, 0, 0, 1],
        "the only NaN is 7ff8000000000000",
    );
    add(
        "number: negative NaN",
        0x02,
        &[0xff, 0xf8, 0, 0, 0, 0, 0, 0],
        "the only NaN is 7ff8000000000000",
    );
    add(
        "number: signalling NaN",
        0x02,
        &[0x7f, 0xf0, 0, 0, 0, 0, 0, 1],
        "the only NaN is 7ff8000000000000",
    );
    for (name, text) in [
        ("bigint: -0", "-0"),
        ("bigint: plus sign", "+1"),
        ("bigint: leading zero", "01"),
        ("bigint: empty", ""),
        ("bigint: minus only", "-"),
        ("bigint: space", " 1"),
        ("bigint: fraction", "1.0"),
    ] {
        add(
            name,
            0x03,
            text.as_bytes(),
            "a bigint is written as 0 or -?[1-9][0-9]*",
        );
    }
    add("boolean: 02", 0x04, &[2], "a boolean is one byte, 00 or 01");
    add(
        "boolean: empty",
        0x04,
        &[],
        "a boolean is one byte, 00 or 01",
    );
    add(
        "boolean: two bytes",
        0x04,
        &[0, 0],
        "a boolean is one byte, 00 or 01",
    );
    for (name, t) in [
        ("date: fractional", 1.5),
        ("date: -0", -0.0),
        ("date: past 8.64e15", 8.64e15 + 1.0),
        ("date: before -8.64e15", -8.64e15 - 1.0),
        ("date: Infinity", f64::INFINITY),
        ("date: NaN", f64::NAN),
    ] {
        add(
            name,
            0x05,
            &f64_bytes(t),
            "a Date is an integer time value within ±8.64e15, never -0",
        );
    }
    add(
        "date: 4 bytes",
        0x05,
        &[0, 0, 0, 0],
        "a Date is exactly 8 bytes",
    );
    let deep = format!(
        "{}{}",
        "[".repeat(MAX_JSON_DEPTH + 1),
        "]".repeat(MAX_JSON_DEPTH + 1)
    );
    for (name, text) in [
        ("json: top-level string", "\"s\""),
        ("json: top-level number", "5"),
        ("json: top-level boolean", "true"),
        ("json: empty", ""),
        ("json: leading space", " []"),
        ("json: space after comma", "[1, 2]"),
        ("json: newline", "{\n}"),
        ("json: byte order mark", "\u{feff}[]"),
        ("json: trailing text", "[]x"),
        ("json: duplicate key", "{\"a\":1,\"a\":2}"),
        ("json: index key after a named key", "{\"b\":1,\"1\":2}"),
        ("json: index keys descending", "{\"2\":1,\"1\":2}"),
        ("json: -0", "[-0]"),
        ("json: 1.0", "[1.0]"),
        ("json: 1E5", "[1E5]"),
        ("json: 1e400", "[1e400]"),
        ("json: 1e21 without sign", "[1e21]"),
        ("json: 100 as 1e2", "[1e2]"),
        ("json: leading zero", "[01]"),
        ("json: escaped slash", "[\"\\/\"]"),
        ("json: escaped letter", "[\"\\u0041\"]"),
        ("json: escaped newline as \\u000a", "[\"\\u000a\"]"),
        ("json: uppercase hex escape", "[\"\\u001F\"]"),
        ("json: escaped surrogate pair", "[\"\\ud83d\\udca1\"]"),
        ("json: literal tab", "[\"\t\"]"),
        ("json: NaN", "[NaN]"),
        ("json: nested deeper than 1000", deep.as_str()),
    ] {
        add(
            name,
            0x06,
            text.as_bytes(),
            "JSON is exactly what JSON.stringify writes",
        );
    }
    add(
        "json: invalid UTF-8",
        0x06,
        b"[\"\xff\"]",
        "JSON text is well-formed UTF-8",
    );
    add("unknown type tag 07", 0x07, b"x", "type tags are 00..06");
    add("unknown type tag FF", 0xff, b"", "type tags are 00..06");
    v
}

/// (name, type tag, value bytes): edge values a writer produces, which readers must accept.
fn accepted_values() -> Vec<(String, u8, Vec<u8>)> {
    let deepest = format!(
        "{}{}",
        "[".repeat(MAX_JSON_DEPTH),
        "]".repeat(MAX_JSON_DEPTH)
    );
    let mut v = vec![
        ("bytes: empty".to_owned(), 0x00, vec![]),
        ("string: empty".to_owned(), 0x01, vec![]),
        (
            "string: byte order mark is content".to_owned(),
            0x01,
            "\u{feff}x".as_bytes().to_vec(),
        ),
        ("number: -0".to_owned(), 0x02, f64_bytes(-0.0)),
        (
            "number: NaN".to_owned(),
            0x02,
            vec![0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
        ),
        (
            "number: -Infinity".to_owned(),
            0x02,
            f64_bytes(f64::NEG_INFINITY),
        ),
        ("bigint: 0".to_owned(), 0x03, b"0".to_vec()),
        ("bigint: -10".to_owned(), 0x03, b"-10".to_vec()),
        ("date: 8.64e15".to_owned(), 0x05, f64_bytes(8.64e15)),
        ("date: -8.64e15".to_owned(), 0x05, f64_bytes(-8.64e15)),
        ("date: 0".to_owned(), 0x05, f64_bytes(0.0)),
        (
            "json: deepest nesting".to_owned(),
            0x06,
            deepest.into_bytes(),
        ),
    ];
    for text in [
        "null",
        "[]",
        "{}",
        "{\"1\":1,\"4294967294\":2,\"b\":3,\"4294967295\":4,\"a\":5}",
        "[\"\\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\",\"\u{7f}\u{2028}\u{2029}é💡\"]",
        "[\"\\ud800\",\"\\udc00\",\"\\ud800x\"]",
        "[0,-1.5,1e+21,1e-7,0.000001,123456789012345680000,5e-324,1.7976931348623157e+308]",
        "{\"__proto__\":{},\"\":[true,false,null]}",
    ] {
        v.push((format!("json: {text}"), 0x06, text.as_bytes().to_vec()));
    }
    v
}

fn sealers(root: &RootKey) -> Vec<(&'static str, Box<dyn Fn(u8, &[u8], u16) -> Vec<u8> + '_>)> {
    let ctx = context();
    let chacha = root
        .randomized_cipher(Algorithm::ChaCha20Poly1305, &ctx)
        .unwrap();
    let siv = root.deterministic_cipher(&ctx).unwrap();
    vec![
        (
            "chacha20-poly1305",
            Box::new(move |tag, value, n| {
                let mut nonce = [0u8; 12];
                nonce[10..].copy_from_slice(&n.to_be_bytes());
                chacha.encrypt_with_nonce(tag, value, &nonce).unwrap()
            }),
        ),
        (
            "aes-256-siv",
            Box::new(move |tag, value, _| siv.encrypt(tag, value).unwrap()),
        ),
    ]
}

fn cipher_for(root: &RootKey, algorithm: &str) -> Box<dyn Cipher> {
    let ctx = context();
    match algorithm {
        "chacha20-poly1305" => Box::new(
            root.randomized_cipher(Algorithm::ChaCha20Poly1305, &ctx)
                .unwrap(),
        ),
        "aes-256-siv" => Box::new(root.deterministic_cipher(&ctx).unwrap()),
        other => panic!("unknown algorithm {other}"),
    }
}

/// Envelope-level rejects, made by altering a valid envelope of the string "x" (a 2-byte plaintext).
fn rejected_envelopes(valid: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let with = |i: usize, b: u8| {
        let mut e = valid.to_vec();
        e[i] = b;
        e
    };
    let mut tampered = valid.to_vec();
    *tampered.last_mut().unwrap() ^= 1;
    vec![
        ("bad magic byte", with(0, 0x54), "ERR_SIFREDB_FORMAT"),
        ("format version 2", with(1, 2), "ERR_SIFREDB_FORMAT"),
        ("unknown algorithm 9", with(2, 9), "ERR_SIFREDB_FORMAT"),
        ("key version 0", with(6, 0), "ERR_SIFREDB_FORMAT"),
        ("header only", valid[..7].to_vec(), "ERR_SIFREDB_FORMAT"),
        (
            "shorter than the header",
            valid[..5].to_vec(),
            "ERR_SIFREDB_FORMAT",
        ),
        (
            "no room for the type tag",
            valid[..valid.len() - 2].to_vec(),
            "ERR_SIFREDB_FORMAT",
        ),
        ("tag altered", tampered, "ERR_SIFREDB_AUTH"),
        ("key version 2 not held", with(6, 2), "ERR_SIFREDB_KEY"),
    ]
}

/// Text-form rejects, made from the text of a valid envelope: each is no envelope's text form.
fn rejected_texts(valid: &str) -> Vec<(&'static str, String)> {
    let body = &valid["sdb1:".len()..];
    let last = body.chars().last().unwrap();
    // The 2-byte tail of a 37-byte envelope is 3 characters whose last one carries 2 unused bits.
    let stray = char::from(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            [(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                .iter()
                .position(|&c| c == last as u8)
                .unwrap()
                | 1)
                & 63],
    );
    vec![
        ("uppercase prefix", format!("SDB1:{body}")),
        ("other text-form version", format!("sdb2:{body}")),
        ("no prefix", body.to_owned()),
        ("padding", format!("{valid}=")),
        ("leading space", format!(" {valid}")),
        ("trailing newline", format!("{valid}\n")),
        ("standard base64 '+'", format!("sdb1:+{}", &body[1..])),
        (
            "standard base64 '/'",
            format!("sdb1:{}/", &body[..body.len() - 1]),
        ),
        (
            "stray bits in the last character",
            format!("{}{stray}", &valid[..valid.len() - 1]),
        ),
        (
            "a length no byte string has (4n + 1 characters)",
            format!("{valid}AAA"),
        ),
        ("empty", "sdb1:".to_owned()),
    ]
}

/// Whether `text` is the text form of some byte string (a strict decoder then re-encoder).
fn is_text_form(text: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let Some(body) = text.strip_prefix("sdb1:") else {
        return false;
    };
    let mut bits = Vec::new();
    for c in body.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            return false;
        };
        bits.extend((0..6).rev().map(|i| (v >> i) & 1));
    }
    let bytes: Vec<u8> = bits
        .chunks_exact(8)
        .map(|b| b.iter().fold(0u8, |n, &bit| n << 1 | bit as u8))
        .collect();
    !body.is_empty() && text_form(&bytes) == text
}

fn build() -> Value {
    let root = RootKey::new(1, &ROOT_KEY).unwrap();
    let mut n = 0u16;
    let mut rejects = Vec::new();
    for (algorithm, seal) in sealers(&root) {
        let valid = seal(0x01, b"x", u16::MAX);
        for (name, text) in rejected_texts(&text_form(&valid)) {
            rejects.push(json!({
                "name": format!("{algorithm}: text form: {name}"), "layer": "text", "algorithm": algorithm,
                "text": text, "error": "ERR_SIFREDB_FORMAT",
            }));
        }
        for (name, bytes, error) in rejected_envelopes(&valid) {
            rejects.push(json!({
                "name": format!("{algorithm}: {name}"), "layer": "envelope", "algorithm": algorithm,
                "envelopeHex": hex::encode(&bytes), "text": text_form(&bytes), "error": error,
            }));
        }
        for (name, tag, value, why) in rejected_values() {
            n += 1;
            let envelope = seal(tag, &value, n);
            let mut plaintext = vec![tag];
            plaintext.extend_from_slice(&value);
            rejects.push(json!({
                "name": format!("{algorithm}: {name}"), "layer": "value", "algorithm": algorithm,
                "plaintextHex": hex::encode(&plaintext), "envelopeHex": hex::encode(&envelope),
                "text": text_form(&envelope), "error": "ERR_SIFREDB_FORMAT", "why": why,
            }));
        }
    }
    let mut accepts = Vec::new();
    for (algorithm, seal) in sealers(&root) {
        for (name, tag, value) in accepted_values() {
            n += 1;
            let envelope = seal(tag, &value, n);
            let mut plaintext = vec![tag];
            plaintext.extend_from_slice(&value);
            accepts.push(json!({
                "name": format!("{algorithm}: {name}"), "algorithm": algorithm,
                "plaintextHex": hex::encode(&plaintext), "envelopeHex": hex::encode(&envelope),
                "text": text_form(&envelope),
            }));
        }
    }
    json!({
        "description": "Frozen SifreDB v1 reject vectors (docs/FORMAT.md, \"What a reader refuses\"). Generated once by crates/sifredb-core/tests/reject_vectors.rs; never edit or regenerate existing entries.",
        "format": 1,
        "rootKey": { "version": 1, "hex": hex::encode(ROOT_KEY) },
        "context": { "tenant": null, "table": TABLE, "column": COLUMN, "version": 1 },
        "rejects": rejects,
        "accepts": accepts,
    })
}

#[test]
#[ignore = "writes test-vectors/format-v1-reject.json; run once, then commit"]
fn generate() {
    write_json(&path(), &build());
}

#[test]
fn committed_vectors_hold() {
    let file = read_json(&path());
    let root = RootKey::new(1, &hexv(&file["rootKey"]["hex"])).unwrap();
    let (mut rejects, mut accepts) = (0, 0);
    for v in file["rejects"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let cipher = cipher_for(&root, v["algorithm"].as_str().unwrap());
        if v["layer"] == "text" {
            assert!(!is_text_form(v["text"].as_str().unwrap()), "{name}");
            rejects += 1;
            continue;
        }
        let envelope = hexv(&v["envelopeHex"]);
        assert_eq!(v["text"].as_str().unwrap(), text_form(&envelope), "{name}");
        match v["layer"].as_str().unwrap() {
            "envelope" => {
                let error = cipher.decrypt(&envelope).expect_err(name);
                assert_eq!(error.code(), v["error"].as_str().unwrap(), "{name}");
            }
            "value" => {
                let plaintext = cipher
                    .decrypt(&envelope)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(plaintext, hexv(&v["plaintextHex"]), "{name}");
                let error = check_plaintext(&plaintext).expect_err(name);
                assert_eq!(error.code(), "ERR_SIFREDB_FORMAT", "{name}");
            }
            other => panic!("{name}: unknown layer {other}"),
        }
        rejects += 1;
    }
    for v in file["accepts"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let cipher = cipher_for(&root, v["algorithm"].as_str().unwrap());
        let plaintext = cipher.decrypt(&hexv(&v["envelopeHex"])).unwrap();
        assert_eq!(plaintext, hexv(&v["plaintextHex"]), "{name}");
        check_plaintext(&plaintext).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(is_text_form(v["text"].as_str().unwrap()), "{name}");
        accepts += 1;
    }
    assert!(
        rejects > 100 && accepts > 30,
        "{rejects} rejects, {accepts} accepts"
    );
}

#[test]
fn generator_still_describes_the_committed_file() {
    // The inputs above are the committed file's provenance: regenerating must give the same bytes.
    assert_eq!(build(), read_json(&path()));
}
