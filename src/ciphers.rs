use std::sync::Arc;

use napi::bindgen_prelude::{BufferSlice, Either};
use napi::Env;
use napi_derive::napi;
use sifredb_core::{
    Algorithm, BlindIndexKey, Cipher, DeterministicCipher, RandomizedCipher, RootKey,
};

use crate::buffers::new_buffer;
use crate::fast::{cipher_external, index_external, Raw, SharedCipher};
use napi::Result;

use crate::errors::{input_error, to_js, Code};

/// A plaintext as JS gives it: bytes, or a string the core receives as UTF-8.
pub type PlainInput<'a> = Either<&'a [u8], String>;

fn plain_bytes<'a>(value: &'a PlainInput<'_>) -> &'a [u8] {
    match value {
        Either::A(bytes) => bytes,
        Either::B(text) => text.as_bytes(),
    }
}

/// A new Buffer of `len` bytes written by `fill`; a core error from either is thrown.
fn filled<'env>(
    env: &'env Env,
    len: sifredb_core::Result<usize>,
    fill: impl FnOnce(&mut [u8]) -> sifredb_core::Result<()>,
) -> Result<BufferSlice<'env>, Code> {
    new_buffer(env, len.map_err(to_js)?, |out| fill(out).map_err(to_js))
}

fn type_tag(tag: u32) -> Result<u8, Code> {
    u8::try_from(tag).map_err(|_| input_error("typeTag must be 0..255"))
}

fn key_version(version: i64) -> Result<u32, Code> {
    u32::try_from(version)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| input_error("version must be an integer 1..4294967295"))
}

/// One root-key version held in Rust memory (zeroized on drop); derives per-context ciphers.
#[napi]
pub struct NativeRootKey {
    root: RootKey,
}

#[napi]
impl NativeRootKey {
    /// Copies `material` (32 bytes); the caller should zero its own copy.
    #[napi(constructor)]
    pub fn new(version: i64, material: &[u8]) -> Result<Self, Code> {
        Ok(Self {
            root: RootKey::new(key_version(version)?, material).map_err(to_js)?,
        })
    }

    /// The key version written into ciphertext headers.
    #[napi(getter)]
    pub fn version(&self) -> u32 {
        self.root.version()
    }

    /// A randomized cipher (1 = ChaCha20-Poly1305, 2 = XChaCha20-Poly1305) for a canonical context.
    #[napi]
    pub fn randomized_cipher(&self, algorithm: u32, context: &[u8]) -> Result<NativeCipher, Code> {
        let algorithm = u8::try_from(algorithm)
            .map_err(|_| input_error("algorithm must be 1 or 2"))
            .and_then(|id| {
                Algorithm::from_id(id).map_err(|_| input_error("algorithm must be 1 or 2"))
            })?;
        let cipher = self
            .root
            .randomized_cipher(algorithm, context)
            .map_err(to_js)?;
        Ok(NativeCipher {
            inner: Inner::Randomized(Arc::new(cipher)),
        })
    }

    /// The AES-256-SIV cipher for a canonical context.
    #[napi]
    pub fn deterministic_cipher(&self, context: &[u8]) -> Result<NativeCipher, Code> {
        let cipher = self.root.deterministic_cipher(context).map_err(to_js)?;
        Ok(NativeCipher {
            inner: Inner::Deterministic(Arc::new(cipher)),
        })
    }

    /// The HMAC-SHA256 key of blind index `indexName` (UTF-8 bytes) for a canonical context.
    #[napi]
    pub fn blind_index(&self, context: &[u8], index_name: &[u8]) -> Result<NativeBlindIndex, Code> {
        Ok(NativeBlindIndex {
            key: Arc::new(self.root.blind_index(context, index_name).map_err(to_js)?),
        })
    }
}

/// A cipher bound to one derived key; builds and opens whole v1 envelopes.
#[napi]
pub struct NativeCipher {
    inner: Inner,
}

/// Shared so that batch work on the thread pool can hold the cipher past the JS call.
#[derive(Clone)]
enum Inner {
    Randomized(Arc<RandomizedCipher>),
    Deterministic(Arc<DeterministicCipher>),
}

impl Inner {
    fn shared(&self) -> SharedCipher {
        match self {
            Self::Randomized(cipher) => cipher.clone(),
            Self::Deterministic(cipher) => cipher.clone(),
        }
    }

    fn cipher(&self) -> &dyn Cipher {
        match self {
            Self::Randomized(cipher) => cipher.as_ref(),
            Self::Deterministic(cipher) => cipher.as_ref(),
        }
    }
}

#[napi]
impl NativeCipher {
    #[napi(getter)]
    pub fn key_version(&self) -> u32 {
        self.inner.cipher().key_version()
    }

    #[napi(getter)]
    pub fn algorithm(&self) -> u32 {
        u32::from(self.inner.cipher().algorithm().id())
    }

    /// Row binding (docs/FORMAT.md): encrypts `typeTag ‖ value` bound to `rowAd`, the per-value
    /// associated data (e.g. a primary key). Not on the fast path: one napi-rs call per value.
    #[napi(
        ts_args_type = "value: Uint8Array | string, typeTag: number, rowAd: Uint8Array",
        ts_return_type = "Buffer"
    )]
    pub fn encrypt_bound<'env>(
        &self,
        env: &'env Env,
        value: PlainInput,
        type_tag_value: u32,
        row_ad: &[u8],
    ) -> Result<BufferSlice<'env>, Code> {
        let tag = type_tag(type_tag_value)?;
        let value = plain_bytes(&value);
        filled(env, self.inner.cipher().sealed_len(value.len()), |out| {
            self.inner
                .cipher()
                .encrypt_into_bound(out, tag, value, row_ad)
        })
    }

    /// Verifies and decrypts an envelope bound to `rowAd`; returns `typeTag ‖ value`. Any other
    /// `rowAd`, or an unbound envelope, fails with `ERR_SIFREDB_AUTH`.
    #[napi(ts_return_type = "Buffer")]
    pub fn decrypt_bound<'env>(
        &self,
        env: &'env Env,
        envelope: &[u8],
        row_ad: &[u8],
    ) -> Result<BufferSlice<'env>, Code> {
        filled(env, self.inner.cipher().plaintext_len(envelope), |out| {
            self.inner
                .cipher()
                .decrypt_into_bound(envelope, out, row_ad)
        })
    }

    /// Test-vector hook: `encryptBound` with a caller-chosen nonce (randomized ciphers only).
    #[napi(
        ts_args_type = "value: Uint8Array | string, typeTag: number, rowAd: Uint8Array, nonce: Uint8Array",
        ts_return_type = "Buffer"
    )]
    pub fn encrypt_bound_with_nonce<'env>(
        &self,
        env: &'env Env,
        value: PlainInput,
        type_tag_value: u32,
        row_ad: &[u8],
        nonce: &[u8],
    ) -> Result<BufferSlice<'env>, Code> {
        let Inner::Randomized(cipher) = &self.inner else {
            return Err(input_error(
                "encryptBoundWithNonce is only for randomized ciphers",
            ));
        };
        let tag = type_tag(type_tag_value)?;
        let value = plain_bytes(&value);
        filled(env, cipher.sealed_len(value.len()), |out| {
            cipher.encrypt_into_bound_with_nonce(out, tag, value, row_ad, nonce)
        })
    }

    /// An opaque handle on this cipher for the fast path (`fastPath()`), which `lib/backend/native.ts`
    /// uses for every encryption and decryption.
    #[napi(ts_return_type = "object")]
    pub fn handle(&self, env: &Env) -> Result<Raw, Code> {
        cipher_external(env, self.inner.shared())
    }

    /// Test-vector hook: encrypts with a caller-chosen nonce. Reusing a nonce under one key is fatal
    /// for ChaCha20-Poly1305; the library itself never calls this.
    #[napi(
        ts_args_type = "value: Uint8Array | string, typeTag: number, nonce: Uint8Array",
        ts_return_type = "Buffer"
    )]
    pub fn encrypt_with_nonce<'env>(
        &self,
        env: &'env Env,
        value: PlainInput,
        type_tag_value: u32,
        nonce: &[u8],
    ) -> Result<BufferSlice<'env>, Code> {
        let Inner::Randomized(cipher) = &self.inner else {
            return Err(input_error(
                "encryptWithNonce is only for randomized ciphers",
            ));
        };
        let tag = type_tag(type_tag_value)?;
        let value = plain_bytes(&value);
        filled(env, cipher.sealed_len(value.len()), |out| {
            cipher.encrypt_into_with_nonce(out, tag, value, nonce)
        })
    }
}

/// HMAC-SHA256 keyed for one blind index.
#[napi]
pub struct NativeBlindIndex {
    key: Arc<BlindIndexKey>,
}

#[napi]
impl NativeBlindIndex {
    #[napi(getter)]
    pub fn key_version(&self) -> u32 {
        self.key.key_version()
    }

    /// An opaque handle on this key for the fast path (`fastPath()`).
    #[napi(ts_return_type = "object")]
    pub fn handle(&self, env: &Env) -> Result<Raw, Code> {
        index_external(env, self.key.clone())
    }
}
