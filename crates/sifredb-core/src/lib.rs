//! SifreDB's algorithms and v1 ciphertext format (docs/FORMAT.md), free of any binding.
//!
//! # For binding authors
//!
//! - Raw RFC functions: [`primitives`] (`aes_siv_encrypt`, `chacha20_poly1305_encrypt`,
//!   `hkdf_sha256`, `hmac_sha256`, `random_bytes`, …).
//! - Import a root key with [`RootKey::new`]`(version, &material)`, then derive handles once per
//!   context: [`RootKey::randomized_cipher`]`(Algorithm::ChaCha20Poly1305, &ctx)`,
//!   [`RootKey::deterministic_cipher`]`(&ctx)`, [`RootKey::blind_index`]`(&ctx, index_name)`.
//!   Map a JS algorithm id with `Algorithm::try_from(id)` (an `ERR_SIFREDB_INPUT` error).
//! - Both ciphers implement [`Cipher`] (`encrypt`, `decrypt`, and `sealed_len` + `encrypt_into`,
//!   `plaintext_len` + `decrypt_into` to write into preallocated buffers). They are
//!   `Send + Sync + Clone`; share them across worker threads with `Arc`.
//! - Every failure is an [`Error`]; [`Error::code`] is the JS `error.code` and `Display` the message.
//!   Messages never contain key or plaintext bytes.
//! - Batches: [`batch`] lays many envelopes back to back in one buffer and seals or opens them in
//!   place with one call ([`batch::seal_records`], [`batch::open_records`],
//!   [`batch::reseal_records`]); errors name the failing record ([`BatchError`]).
//! - A binding that can hook `fork()` (e.g. `pthread_atfork`) should call
//!   [`random::use_fork_hook`] once and [`random::note_fork`] in the child: the nonce pool then
//!   skips its per-call `getpid()` check.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod batch;
pub mod blind_index;
pub mod chacha_poly;
pub mod cipher;
pub mod context;
pub mod ed25519;
pub mod error;
pub mod format;
pub mod keys;
pub mod primitives;
pub mod random;
pub mod siv;
pub mod siv_vector;
pub mod value;

pub use batch::{
    open_records, open_records_into, reseal_records, seal_records, seal_records_from,
    sealed_records_len, BatchError, BatchResult,
};
pub use blind_index::{blind_index_message, term_len, BlindIndexKey};
pub use cipher::{Cipher, DeterministicCipher, RandomizedCipher, Records};
pub use context::encode_context;
pub use error::{Error, Result};
pub use format::{Algorithm, Header};
pub use keys::{Purpose, RootKey};
pub use value::{check_plaintext, check_value, ValueTag};
