//! Helpers shared by the integration tests: the frozen-vector files and reproducible test data.
//! Each test uses some of them.
#![allow(dead_code)]

use std::path::Path;

use serde_json::Value;
use sifredb_core::encode_context;

/// RFC 4648 §5 base64url without padding.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The text form of an envelope: `sdb1:` and its base64url.
pub fn text_form(envelope: &[u8]) -> String {
    format!("sdb1:{}", base64url(envelope))
}

/// The bytes of a JSON hex string.
pub fn hexv(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

/// Writes a vector file: pretty JSON and a final newline.
pub fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    std::fs::write(path, text).unwrap();
}

/// Reads a committed vector file.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Encodes the context named `name` in the `contexts` of a vector file and checks it against its
/// committed `canonicalHex`.
pub fn committed_context(file: &Value, name: &Value) -> Vec<u8> {
    let c = file["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == *name)
        .unwrap();
    let encoded = encode_context(
        c["tenant"].as_str(),
        c["table"].as_str().unwrap(),
        c["column"].as_str().unwrap(),
        c["version"].as_u64().unwrap() as u32,
    )
    .unwrap();
    assert_eq!(encoded, hexv(&c["canonicalHex"]), "context {name}");
    encoded
}

/// The bytes of a JSON array of hex strings (e.g. the associated-data components of a SIV case).
#[allow(dead_code)]
pub fn hex_list(v: &Value) -> Vec<Vec<u8>> {
    v.as_array().unwrap().iter().map(hexv).collect()
}

/// xorshift64*: reproducible test data for the differential tests, never for keys.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
