//! AES-256-SIV with a vector of associated-data components on the fast path
//! (`sifredb_core::siv_vector`). JavaScript passes the components back to back in one buffer
//! with a `Uint32Array` of their lengths, the layout of the batch calls: the lengths are copied
//! once and only the copy is read, so a buffer another thread rewrites cannot make the split
//! disagree with its check.

use napi::sys;
use sifredb_core::siv_vector::split_components;

use super::failure::Outcome;
use super::primitives::{bytes_arg, write_out};
use super::views::{typed, U32};

/// `aes_siv_encrypt_components` or `aes_siv_decrypt_components`.
pub(super) type SivComponents = fn(&[u8], &[u8], &[&[u8]]) -> sifredb_core::Result<Vec<u8>>;

/// An AES-256-SIV call on `[key, message, ad, adLens, out]`.
pub(super) unsafe fn siv_components(
    env: sys::napi_env,
    [key, message, ad, ad_lens, out]: [sys::napi_value; 5],
    message_name: &str,
    f: SivComponents,
) -> Outcome<()> {
    // SAFETY: as in `primitives::aead`: views read during this call only, shared ones copied
    // first (`bytes_arg`, `u32s_copy`), `out` checked writable and disjoint by `write_out`.
    unsafe {
        let (kv, key) = bytes_arg(env, key, "key")?;
        let (mv, message) = bytes_arg(env, message, message_name)?;
        let (av, ad) = bytes_arg(env, ad, "ad")?;
        let lens_view = typed(env, ad_lens, U32, "adLens")?;
        let lens = lens_view.u32s_copy();
        let components = split_components(ad.bytes(), &lens)?;
        let result = f(key.bytes(), message.bytes(), &components);
        write_out(env, out, &[kv, mv, av, lens_view], result)
    }
}
