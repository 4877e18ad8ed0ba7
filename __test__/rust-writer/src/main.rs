//! Test fixture for `lib/rust-import`: writes what an application on the published SifreDB Rust
//! crates (`sifredb` 0.1.1, `sifredb-key-file` 0.1.1) leaves behind, so that the Node package's
//! reader is tested against the crates' own output, not against a re-implementation.
//!
//! `sifredb-rust-writer <dir>` creates `<dir>/keys` (the key directory, through
//! `FileKeyProvider::init` and one rotation), `<dir>/deterministic.key` (64 raw bytes, mode 0600)
//! and prints one JSON document on stdout: every value written, its context, the
//! `DeterministicVault` ciphertext, the legacy blind-index term and a few wrapped DEKs.
//!
//! The blind index of the seed's source (`src/blind_index.rs` of the `sifredb` 0.1.1 package) is not
//! compiled into the crate; `build.rs` compiles that very file here, against the crate's public types,
//! and the terms come from its `generate_blind_index` with the crate's own key provider.

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::SecretVec;
use sifredb::context::{EncryptionContext, IndexContext};
use sifredb::deterministic::DeterministicVault;
use sifredb::key_provider::KeyProvider;
use sifredb_key_file::FileKeyProvider;

/// `sifredb` 0.1.1's `src/blind_index.rs`, as `build.rs` prepared it.
#[allow(dead_code)]
mod seed_blind_index {
    include!(concat!(env!("OUT_DIR"), "/seed_blind_index.rs"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes
}

/// The values written under every context: empty, ASCII, unicode (2-, 3- and 4-byte UTF-8),
/// block-boundary lengths around AES's 16 bytes, and a few raw non-UTF-8 byte strings.
fn plaintexts() -> Vec<Vec<u8>> {
    let mut values: Vec<Vec<u8>> = [
        "",
        "a",
        "alice@example.com",
        "Çağrı Şükrü Öztürk",
        "İstanbul ığüşöç",
        "日本語のテキスト",
        "emoji 🦀🔐 and more 🎉",
        "pipe | inside | value",
        "line\nbreak\ttab \"quoted\" \\ back",
        "0123456789abcde",
        "0123456789abcdef",
        "0123456789abcdef0",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    values.push("x".repeat(300).into_bytes());
    values.push(vec![0xff, 0x00, 0xfe, 0x80]);
    values
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: sifredb-rust-writer <dir>");
    let dir = Path::new(&dir);
    let key_dir = dir.join("keys");
    FileKeyProvider::init(&key_dir).expect("init the key directory");
    let provider = FileKeyProvider::new(&key_dir).expect("open the key directory");

    // Wrap a DEK under kek_v1, rotate, wrap another under kek_v2 (now current).
    let mut wrapped = Vec::new();
    let dek1 = random(32);
    let kek1 = provider.current_kek_id().expect("current KEK");
    wrapped.push((kek1.clone(), dek1.clone(), provider.wrap_dek(&kek1, &dek1).expect("wrap")));
    let kek2 = provider.create_kek().expect("rotate");
    let dek2 = random(32);
    wrapped.push((kek2.clone(), dek2.clone(), provider.wrap_dek(&kek2, &dek2).expect("wrap")));


    let key = random(64);
    let key_path = dir.join("deterministic.key");
    fs::write(&key_path, &key).expect("write the deterministic key");
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).expect("chmod");
    let vault = DeterministicVault::new(SecretVec::new(key)).expect("a 64-byte key");

    let tenants: [Option<&str>; 4] = [None, Some("acme"), Some("globex-ünï"), Some("")];
    let places = [("users", "email"), ("users", "name"), ("orders", "note")];
    let versions = [1u32, 2];

    let mut rows = Vec::new();
    for tenant in tenants {
        for (table, column) in places {
            for version in versions {
                for plaintext in plaintexts() {
                    let mut ctx = EncryptionContext::new(table, column).with_version(version);
                    let mut index_ctx = IndexContext::new(table, column);
                    if let Some(tenant) = tenant {
                        ctx = ctx.with_tenant(tenant);
                        index_ctx = index_ctx.with_tenant(tenant);
                    }
                    let ciphertext = vault.encrypt(&plaintext, &ctx).expect("encrypt");
                    assert_eq!(vault.decrypt(&ciphertext, &ctx).expect("decrypt"), plaintext);
                    let term =
                        seed_blind_index::generate_blind_index(&provider, &plaintext, &index_ctx)
                            .expect("a blind index");
                    rows.push(format!(
                        "{{\"tenant\":{},\"table\":{},\"column\":{},\"version\":{},\"context\":{},\"indexContext\":{},\"plaintext\":\"{}\",\"ciphertext\":\"{}\",\"blindIndex\":\"{}\"}}",
                        tenant.map_or("null".to_string(), json_string),
                        json_string(table),
                        json_string(column),
                        version,
                        json_string(&ctx.to_string()),
                        json_string(&index_ctx.to_string()),
                        hex(&plaintext),
                        hex(&ciphertext),
                        hex(&term[..16]),
                    ));
                }
            }
        }
    }

    let wrapped: Vec<String> = wrapped
        .iter()
        .map(|(kek, dek, w)| {
            format!(
                "{{\"kekId\":{},\"dek\":\"{}\",\"wrapped\":\"{}\"}}",
                json_string(kek),
                hex(dek),
                hex(w)
            )
        })
        .collect();
    println!(
        "{{\"keyDir\":{},\"deterministicKey\":{},\"currentKek\":{},\"values\":[{}],\"wrappedDeks\":[{}]}}",
        json_string(&key_dir.display().to_string()),
        json_string(&key_path.display().to_string()),
        json_string(&kek2),
        rows.join(","),
        wrapped.join(",")
    );
}
