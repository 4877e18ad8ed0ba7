//! Ed25519 (`sifredb_core::ed25519`) on the fast-path frame: the same argument rules as the other
//! callbacks (shared views copied once before they are read, outputs written only when plain and
//! disjoint from every input, batch lengths copied once, panics caught). `lib/backend/native/
//! ed25519.ts` is the only caller and allocates every output exactly as long.

use sifredb_core::ed25519::{self as core, BatchItem, PUBLIC_KEY_LEN, SIGNATURE_LEN};

use super::calls::fast_path;
use super::failure::{callback, Failure, Outcome};
use super::primitives::{bytes_arg, write_out};
use super::views::{typed, U32};
use super::Callback;

fast_path! {
    // The public key of a 32-byte secret key into `out` (32 bytes).
    sync "ed25519PublicKey" fn ed25519_public_key(env, [secret, out]) {
        let (sv, secret) = bytes_arg(env, secret, "secretKey")?;
        write_out(env, out, &[sv], core::public_key(secret.bytes()))
    }

    // The signature of `message` into `out` (64 bytes).
    sync "ed25519Sign" fn ed25519_sign(env, [secret, message, out]) {
        let (sv, secret) = bytes_arg(env, secret, "secretKey")?;
        let (mv, message) = bytes_arg(env, message, "message")?;
        write_out(env, out, &[sv, mv], core::sign(secret.bytes(), message.bytes()))
    }

    // Strict verification; `out[0]` is 1 when valid, 0 when not.
    sync "ed25519Verify" fn ed25519_verify(env, [public, message, signature, out]) {
        let (pv, public) = bytes_arg(env, public, "publicKey")?;
        let (mv, message) = bytes_arg(env, message, "message")?;
        let (gv, signature) = bytes_arg(env, signature, "signature")?;
        let valid = core::verify(public.bytes(), message.bytes(), signature.bytes());
        write_out(env, out, &[pv, mv, gv], valid.map(|v| [u8::from(v)]))
    }

    // Batch verification of `n` signatures: public keys and signatures back to back (32 and 64
    // bytes each), messages back to back with their lengths; `out[i]` is item i's verdict.
    sync "ed25519VerifyBatch" fn ed25519_verify_batch(env, [publics, messages, lens, signatures, out]) {
        let (pv, publics) = bytes_arg(env, publics, "publicKeys")?;
        let (mv, messages) = bytes_arg(env, messages, "messages")?;
        let lens_view = typed(env, lens, U32, "messageLens")?;
        let (gv, signatures) = bytes_arg(env, signatures, "signatures")?;
        let lens = lens_view.u32s_copy();
        let (publics, messages, signatures) = (publics.bytes(), messages.bytes(), signatures.bytes());
        let items = batch_items(publics, messages, &lens, signatures)?;
        let verdicts = core::verify_batch(&items)?;
        let verdicts: Vec<u8> = verdicts.into_iter().map(u8::from).collect();
        write_out(env, out, &[pv, mv, lens_view, gv], Ok(verdicts))
    }
}

/// Cuts the batch buffers into items, checking every length against the (copied) `lens`.
fn batch_items<'a>(
    publics: &'a [u8],
    messages: &'a [u8],
    lens: &[u32],
    signatures: &'a [u8],
) -> Outcome<Vec<BatchItem<'a>>> {
    let n = lens.len();
    if publics.len() != n * PUBLIC_KEY_LEN || signatures.len() != n * SIGNATURE_LEN {
        return Err(Failure::input(
            "publicKeys and signatures must hold 32 and 64 bytes per message",
        ));
    }
    let mut items = Vec::with_capacity(n);
    let mut at = 0usize;
    for (i, &len) in lens.iter().enumerate() {
        let end = at
            .checked_add(len as usize)
            .filter(|&end| end <= messages.len())
            .ok_or_else(|| Failure::input("messageLens exceed messages"))?;
        items.push(BatchItem {
            public_key: &publics[i * PUBLIC_KEY_LEN..(i + 1) * PUBLIC_KEY_LEN],
            message: &messages[at..end],
            signature: &signatures[i * SIGNATURE_LEN..(i + 1) * SIGNATURE_LEN],
        });
        at = end;
    }
    if at != messages.len() {
        return Err(Failure::input(
            "messageLens must add up to the length of messages",
        ));
    }
    Ok(items)
}
