//! The fast-path functions, one table: each row names the JS function, its arguments and its body.
//! [`fast_path!`] turns every row into an `extern "C"` callback that reads its arguments, runs the
//! body under `catch_unwind` and throws (sync) or returns a promise (async); and lists them all in
//! [`FUNCTIONS`]. `lib/backend/native/fast.ts` types the same table for TypeScript.

use sifredb_core::primitives as core;
use sifredb_core::siv_vector;
use sifredb_core::{open_records_into, reseal_records, seal_records};
use zeroize::Zeroizing;

use super::failure::{callback, callback_async};
use super::handles::{cipher_arg, index_arg};
use super::primitives::{aead, aead_seal, hkdf, hmac, siv};
use super::siv_vector::siv_components;
use super::views::{disjoint, take_plaintexts, typed, uint32, with_utf8, Input, U32, U8};
use super::work::{queue, staged, Work};
use super::Callback;

/// `fast_path! { sync|async "jsName" fn rust_name(env, [args…]) { body } … }`. A sync body
/// returns `Outcome<()>`, an async one `Outcome<promise>`. Every N-API use in a body is on the
/// callback's own env and arguments.
macro_rules! fast_path {
    ($($kind:ident $js:literal fn $name:ident($env:ident, [$($arg:ident),*]) $body:block)*) => {
        $(
            #[doc = concat!("`", $js, "`: see the table in `src/fast/calls.rs`.")]
            unsafe extern "C" fn $name(
                $env: napi::sys::napi_env,
                info: napi::sys::napi_callback_info,
            ) -> napi::sys::napi_value {
                // SAFETY: called by N-API with this callback's env and arguments; the body only
                // uses them, and views it writes are checked writable and disjoint from the rest.
                unsafe { fast_path!(@frame $kind, $env, info, |[$($arg),*]| $body) }
            }
        )*
        /// Every fast-path function, by its JS name.
        pub(super) const FUNCTIONS: &[(&str, Callback)] = &[$(($js, $name)),*];
    };
    (@frame sync, $env:ident, $info:ident, $body:expr) => { callback($env, $info, $body) };
    (@frame async, $env:ident, $info:ident, $body:expr) => { callback_async($env, $info, $body) };
}
pub(super) use fast_path;

fast_path! {
    // Seals in place: `envelope` holds `type_tag ‖ value` at the plaintext offset.
    sync "seal" fn seal(env, [h, out]) {
        let cipher = cipher_arg(env, h)?;
        let out = typed(env, out, U8, "envelope")?.writable("envelope")?;
        cipher.seal_in_place(out.bytes_mut())?;
        Ok(())
    }

    // Verifies `envelope` and writes its plaintext into `out` (exactly its plaintext length).
    sync "open" fn open(env, [h, envelope, out]) {
        let cipher = cipher_arg(env, h)?;
        let envelope = typed(env, envelope, U8, "envelope")?;
        let out = typed(env, out, U8, "out")?.writable("out")?;
        disjoint(envelope, out)?;
        // A shared envelope is copied first: the header check, authentication and decryption
        // then read the same bytes.
        let envelope = Input::of(envelope);
        // `decrypt_into` checks the header, then that `out` is exactly the plaintext length.
        cipher.decrypt_into(envelope.bytes(), out.bytes_mut())?;
        Ok(())
    }

    // `sifredb_core::seal_records` on the records of `buf`, in place.
    sync "sealMany" fn seal_many(env, [h, buf, lens]) {
        let cipher = cipher_arg(env, h)?;
        let buf = typed(env, buf, U8, "buf")?.writable("buf")?;
        let lens = typed(env, lens, U32, "lens")?;
        disjoint(buf, lens)?;
        seal_records(cipher.as_ref(), buf.bytes_mut(), &lens.u32s_copy())?;
        Ok(())
    }

    // `sifredb_core::open_records_into`: envelopes of `input` to plaintexts back to back.
    sync "openInto" fn open_into(env, [h, input, lens, output]) {
        let cipher = cipher_arg(env, h)?;
        let input = typed(env, input, U8, "input")?;
        let lens = typed(env, lens, U32, "lens")?;
        let output = typed(env, output, U8, "output")?.writable("output")?;
        disjoint(input, output)?;
        disjoint(lens, output)?;
        let (input, lens) = (Input::of(input), lens.u32s_copy());
        open_records_into(cipher.as_ref(), input.bytes(), &lens, output.bytes_mut())?;
        Ok(())
    }

    // `sifredb_core::reseal_records(from, to, input, envelopeLens, output)`.
    sync "resealMany" fn reseal_many(env, [from, to, input, lens, output]) {
        let from = cipher_arg(env, from)?;
        let to = cipher_arg(env, to)?;
        let input = typed(env, input, U8, "input")?.writable("input")?;
        let lens = typed(env, lens, U32, "lens")?;
        let output = typed(env, output, U8, "output")?.writable("output")?;
        disjoint(input, lens)?;
        disjoint(input, output)?;
        disjoint(lens, output)?;
        let lens = lens.u32s_copy();
        reseal_records(from.as_ref(), to.as_ref(), input.bytes_mut(), &lens, output.bytes_mut())?;
        Ok(())
    }

    // The blind-index term of `message` into `out`.
    sync "mac" fn mac(env, [h, message, bits, out]) {
        let key = index_arg(env, h)?;
        let message = typed(env, message, U8, "message")?;
        let bits = uint32(env, bits, "bits")?;
        let out = typed(env, out, U8, "out")?.writable("out")?;
        disjoint(message, out)?;
        key.compute_into(Input::of(message).bytes(), bits, out.bytes_mut())?;
        Ok(())
    }

    // The term of a one-field index (`u32be len ‖ UTF-8 of field`); a string or a Uint8Array.
    sync "macField" fn mac_field(env, [h, field, bits, out]) {
        let key = index_arg(env, h)?;
        let bits = uint32(env, bits, "bits")?;
        let out = typed(env, out, U8, "out")?.writable("out")?;
        let mut kind = 0;
        napi::sys::napi_typeof(env, field, &mut kind);
        if kind == napi::sys::ValueType::napi_string {
            with_utf8(env, field, "field", |bytes| {
                key.compute_field_into(bytes, bits, out.bytes_mut())?;
                Ok(())
            })
        } else {
            let field = typed(env, field, U8, "field")?;
            disjoint(field, out)?;
            key.compute_field_into(Input::of(field).bytes(), bits, out.bytes_mut())?;
            Ok(())
        }
    }

    // `BlindIndexKey::compute_records(messages, messageLens, bits, out)`.
    sync "macMany" fn mac_many(env, [h, messages, lens, bits, out]) {
        let key = index_arg(env, h)?;
        let messages = typed(env, messages, U8, "messages")?;
        let lens = typed(env, lens, U32, "lens")?;
        let bits = uint32(env, bits, "bits")?;
        let out = typed(env, out, U8, "out")?.writable("out")?;
        disjoint(messages, out)?;
        disjoint(lens, out)?;
        let (messages, lens) = (Input::of(messages), lens.u32s_copy());
        key.compute_records(messages.bytes(), &lens, bits, out.bytes_mut())?;
        Ok(())
    }

    // `sifredb_core::seal_records_from` on the thread pool; `input` is copied and wiped at once.
    async "sealFromAsync" fn seal_from_async(env, [h, input, lens, output]) {
        let cipher = cipher_arg(env, h)?.clone();
        let args = staged(env, input, lens, output)?;
        let input = take_plaintexts(args.input.writable("input")?);
        let work = Work::SealFrom {
            cipher,
            input,
            lens: args.lens,
            output: vec![0u8; args.output_len],
        };
        queue(env, work, output)
    }

    // `openInto` on the thread pool.
    async "openIntoAsync" fn open_into_async(env, [h, input, lens, output]) {
        let cipher = cipher_arg(env, h)?.clone();
        let args = staged(env, input, lens, output)?;
        let work = Work::OpenInto {
            cipher,
            input: args.input.copy().to_vec(),
            lens: args.lens,
            output: Zeroizing::new(vec![0u8; args.output_len]),
        };
        queue(env, work, output)
    }

    // `resealMany` on the thread pool.
    async "resealManyAsync" fn reseal_many_async(env, [from, to, input, lens, output]) {
        let from = cipher_arg(env, from)?.clone();
        let to = cipher_arg(env, to)?.clone();
        let args = staged(env, input, lens, output)?;
        let work = Work::Reseal {
            from,
            to,
            input: args.input.copy(),
            lens: args.lens,
            output: vec![0u8; args.output_len],
        };
        queue(env, work, output)
    }

    // The raw primitives (`primitives` of the native backend): the result into `out`, which
    // JavaScript allocated exactly as long (see `src/fast/primitives.rs`).
    sync "chacha20Poly1305Encrypt" fn chacha_encrypt(env, [key, nonce, plaintext, aad, out]) {
        aead_seal(env, [key, nonce, plaintext, aad, out], core::chacha20_poly1305_encrypt_into)
    }

    sync "chacha20Poly1305Decrypt" fn chacha_decrypt(env, [key, nonce, sealed, aad, out]) {
        aead(env, [key, nonce, sealed, aad, out], "ciphertextAndTag", core::chacha20_poly1305_decrypt)
    }

    sync "xchacha20Poly1305Encrypt" fn xchacha_encrypt(env, [key, nonce, plaintext, aad, out]) {
        aead_seal(env, [key, nonce, plaintext, aad, out], core::xchacha20_poly1305_encrypt_into)
    }

    sync "xchacha20Poly1305Decrypt" fn xchacha_decrypt(env, [key, nonce, sealed, aad, out]) {
        aead(env, [key, nonce, sealed, aad, out], "ciphertextAndTag", core::xchacha20_poly1305_decrypt)
    }

    sync "aesSivEncrypt" fn siv_encrypt(env, [key, plaintext, ad, out]) {
        siv(env, [key, plaintext, ad, out], "plaintext", core::aes_siv_encrypt)
    }

    sync "aesSivDecrypt" fn siv_decrypt(env, [key, ciphertext, ad, out]) {
        siv(env, [key, ciphertext, ad, out], "ciphertext", core::aes_siv_decrypt)
    }

    // AES-256-SIV over several associated-data components: `ad` holds them back to back,
    // `adLens` their lengths (see `src/fast/siv_vector.rs`).
    sync "aesSivEncryptComponents" fn siv_encrypt_components(env, [key, plaintext, ad, lens, out]) {
        let f = siv_vector::aes_siv_encrypt_components;
        siv_components(env, [key, plaintext, ad, lens, out], "plaintext", f)
    }

    sync "aesSivDecryptComponents" fn siv_decrypt_components(env, [key, ciphertext, ad, lens, out]) {
        let f = siv_vector::aes_siv_decrypt_components;
        siv_components(env, [key, ciphertext, ad, lens, out], "ciphertext", f)
    }

    sync "hmacSha256" fn hmac_sha256(env, [key, message, out]) {
        hmac(env, [key, message, out])
    }

    sync "hkdfSha256" fn hkdf_sha256(env, [ikm, salt, info, length, out]) {
        hkdf(env, [ikm, salt, info, length, out])
    }
}
