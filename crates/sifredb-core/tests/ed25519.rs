//! Ed25519 against RFC 8032's test vectors (test-vectors/ed25519-rfc8032.json) and every case of
//! Project Wycheproof's `ed25519_test.json`, read from `../shared/vectors/wycheproof/` beside the
//! clone (or `SIFREDB_WYCHEPROOF_DIR`) as the JavaScript suites read it. When the file is absent the
//! test says so loudly; with `SIFREDB_REQUIRE_VECTORS=1` (CI) the absence is a failure.

use std::path::PathBuf;

use serde_json::Value;
use sifredb_core::ed25519::{public_key, sign, verify, verify_batch, BatchItem};

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("JSON")
}

fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("hex string")).expect("hex")
}

#[test]
fn rfc8032_vectors() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/ed25519-rfc8032.json");
    let file = read_json(&path);
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let (secret, public, message, signature) = (
            unhex(&v["secretKey"]),
            unhex(&v["publicKey"]),
            unhex(&v["message"]),
            unhex(&v["signature"]),
        );
        assert_eq!(
            public_key(&secret).unwrap().as_slice(),
            public.as_slice(),
            "{name}: public key"
        );
        assert_eq!(
            sign(&secret, &message).unwrap().as_slice(),
            signature.as_slice(),
            "{name}: signature"
        );
        assert!(
            verify(&public, &message, &signature).unwrap(),
            "{name}: verifies"
        );
        let mut altered = message.clone();
        altered.push(0);
        assert!(
            !verify(&public, &altered, &signature).unwrap(),
            "{name}: another message"
        );
    }
}

fn wycheproof_dir() -> PathBuf {
    match std::env::var_os("SIFREDB_WYCHEPROOF_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/wycheproof")
        }
    }
}

#[test]
fn wycheproof_every_case_single_and_batch() {
    let path = wycheproof_dir().join("ed25519_test.json");
    if !path.exists() {
        let required = std::env::var("SIFREDB_REQUIRE_VECTORS").as_deref() == Ok("1");
        eprintln!(
            "\n!! Wycheproof ed25519_test.json NOT FOUND at {}\n",
            path.display()
        );
        assert!(
            !required,
            "Wycheproof vectors are required (SIFREDB_REQUIRE_VECTORS=1)"
        );
        return;
    }
    let set = read_json(&path);
    let (mut valid, mut invalid) = (0, 0);
    let mut cases = Vec::new();
    for group in set["testGroups"].as_array().unwrap() {
        let public = unhex(&group["publicKey"]["pk"]);
        for t in group["tests"].as_array().unwrap() {
            let (message, signature) = (unhex(&t["msg"]), unhex(&t["sig"]));
            let expected = match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tc {}: result {other} has no strict verdict", t["tcId"]),
            };
            let got = verify(&public, &message, &signature).unwrap();
            assert_eq!(got, expected, "tc {} ({})", t["tcId"], t["comment"]);
            if expected {
                valid += 1
            } else {
                invalid += 1
            }
            cases.push((public.clone(), message, signature, expected));
        }
    }
    println!("ed25519_test.json: {valid} valid, {invalid} invalid");
    assert_eq!(
        valid + invalid,
        set["numberOfTests"].as_u64().unwrap() as usize
    );
    assert!(valid > 0 && invalid > 0);
    // The batch gives every case the single verdict, whether the cases are batched all together
    // (the batch fails and falls back) or only the valid ones (the batch equation passes).
    let items: Vec<BatchItem> = cases
        .iter()
        .map(|(p, m, s, _)| BatchItem {
            public_key: p,
            message: m,
            signature: s,
        })
        .collect();
    let expected: Vec<bool> = cases.iter().map(|c| c.3).collect();
    assert_eq!(verify_batch(&items).unwrap(), expected);
    let valid_items: Vec<BatchItem> = items
        .iter()
        .zip(&expected)
        .filter(|(_, &e)| e)
        .map(|(i, _)| *i)
        .collect();
    assert!(verify_batch(&valid_items).unwrap().iter().all(|&v| v));
}

#[test]
fn lengths_and_non_canonical_encodings() {
    let secret = [7u8; 32];
    let public = public_key(&secret).unwrap();
    let signature = sign(&secret, b"m").unwrap();
    assert_eq!(
        verify(&public[..31], b"m", &signature).unwrap_err().code(),
        "ERR_SIFREDB_INPUT"
    );
    assert_eq!(
        sign(&secret[..31], b"m").unwrap_err().code(),
        "ERR_SIFREDB_INPUT"
    );
    assert!(!verify(&public, b"m", &signature[..63]).unwrap());
    // S + L: the same point equation, an unreduced S.
    let l: [u8; 32] =
        hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            .unwrap()
            .try_into()
            .unwrap();
    let mut malleated = signature;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = malleated[32 + i] as u16 + l[i] as u16 + carry;
        malleated[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert!(!verify(&public, b"m", &malleated).unwrap());
    // The identity (small order) as a public key, and y = 1 with the sign bit set (non-canonical).
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(!verify(&identity, b"m", &signature).unwrap());
    identity[31] = 0x80;
    assert!(!verify(&identity, b"m", &signature).unwrap());
    // A non-canonical public key: y = p + 2 (a point with y = 2, re-encoded as y + p).
    let mut high_y =
        hex::decode("efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f").unwrap();
    high_y[0] = 0xef;
    assert!(!verify(&high_y, b"m", &signature).unwrap());
    let batch = verify_batch(&[
        BatchItem {
            public_key: &public,
            message: b"m",
            signature: &signature,
        },
        BatchItem {
            public_key: &public,
            message: b"m",
            signature: &malleated,
        },
        BatchItem {
            public_key: &public,
            message: b"n",
            signature: &signature,
        },
    ])
    .unwrap();
    assert_eq!(batch, [true, false, false]);
    assert_eq!(verify_batch(&[]).unwrap(), Vec::<bool>::new());
}
