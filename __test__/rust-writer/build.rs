//! Compiles the seed's blind-index source, which `sifredb` 0.1.1 ships in its package
//! (`src/blind_index.rs`) but does not compile (its `lib.rs` declares no such module), against the
//! crate's public types: the writer then computes legacy terms with the crate's own code, not a
//! transcription. The file is read from cargo's copy of the package and written to OUT_DIR; nothing
//! of it is committed here.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.toml");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let json = String::from_utf8(out.stdout).expect("UTF-8 metadata");
    // The package's manifest path is the one JSON string ending in sifredb-0.1.1/Cargo.toml.
    let end = json
        .find("sifredb-0.1.1/Cargo.toml\"")
        .expect("sifredb 0.1.1 in the metadata")
        + "sifredb-0.1.1/Cargo.toml".len();
    let start = json[..end].rfind('"').unwrap() + 1;
    let package = PathBuf::from(&json[start..end]).parent().unwrap().to_path_buf();
    let source = package.join("src").join("blind_index.rs");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = fs::read_to_string(&source).expect("read sifredb's src/blind_index.rs");
    // As a module of this crate: `crate::` is sifredb's public API, and inner doc comments, which
    // `include!` does not accept, go.
    let adapted: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//!"))
        .map(|line| line.replace("use crate::", "use sifredb::"))
        .collect::<Vec<_>>()
        .join("\n");
    let dest = PathBuf::from(env::var("OUT_DIR").unwrap()).join("seed_blind_index.rs");
    fs::write(dest, adapted).expect("write OUT_DIR/seed_blind_index.rs");
}
