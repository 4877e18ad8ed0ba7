//! AES-256-SIV (RFC 5297) composed from the `aes` block cipher (AES-NI where the CPU has it,
//! detected at run time) and the `ctr` crate, with S2V and CMAC (RFC 4493) written out here so that
//!
//! - the part of S2V that depends only on the associated data, `D = dbl(dbl(CMAC(0)) ⊕ CMAC(AD))`'s
//!   inner value, is computed once per key handle ([`Aes256Siv::ad_state`]) instead of per value;
//! - the CMAC chain keeps its state in a register: CMAC is one serial chain of AES calls, so its
//!   speed is the latency of that chain, and a state written to and read back from memory between
//!   blocks (as a generic block-buffered MAC does) costs about as much as the AES rounds;
//! - the CMAC subkeys are derived once per key.
//!
//! SifreDB's own formats use one associated-data string (`header ‖ context`, or its row-bound
//! form); the raw primitives also take a vector of them ([`Aes256Siv::ad_state_components`],
//! [`crate::siv_vector`]), which is how SifreDB for Rust's `DeterministicVault` sealed. Bytes are
//! those of the `aes-siv` crate: checked by Wycheproof, the frozen vectors, differential tests
//! against that crate (tests/siv_differential.rs, tests/siv_vector.rs) and vectors computed by
//! Python's `cryptography` (test-vectors/aes-siv-components.json).

use aes::cipher::{
    consts::U16, Array, BlockCipherEncBackend, BlockCipherEncClosure, BlockCipherEncrypt,
    BlockSizeUser, InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper,
};
use aes::Aes256Enc;
use inout::InOutBuf;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::chacha_poly::ct_eq;

const BLOCK: usize = 16;
type Block = Array<u8, U16>;

/// The S2V state after the associated data (see [`Aes256Siv::ad_state`]); secret, wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AdState([u8; BLOCK]);

impl core::fmt::Debug for AdState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AdState(..)")
    }
}

/// An AES-256-SIV key: the S2V (CMAC) half and the CTR half, expanded, and the CMAC subkeys.
#[derive(Clone)]
pub struct Aes256Siv {
    mac: Aes256Enc,
    ctr: Aes256Enc,
    subkeys: Subkeys,
}

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct Subkeys {
    k1: [u8; BLOCK],
    k2: [u8; BLOCK],
    /// `dbl(CMAC(0¹²⁸))`: S2V's state before any associated data.
    d0: [u8; BLOCK],
}

// Every field wipes itself: the `aes` key schedules (its `zeroize` feature) and `Subkeys`.
impl ZeroizeOnDrop for Aes256Siv {}

impl core::fmt::Debug for Aes256Siv {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Aes256Siv").finish_non_exhaustive()
    }
}

/// The synthetic IV did not verify (open only); the output was wiped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SivAuthError;

impl Aes256Siv {
    /// A key from 64 bytes: the first half keys S2V, the second CTR (RFC 5297 §2.6).
    pub fn new(key: &[u8; 64]) -> Self {
        let (mac_key, ctr_key) = key.split_at(32);
        let mac = Aes256Enc::new(&array32(mac_key));
        let ctr = Aes256Enc::new(&array32(ctr_key));
        let mut l = Zeroizing::new([0u8; BLOCK]);
        encrypt_block(&mac, &mut l);
        let k1 = dbl(&l);
        let k2 = dbl(&k1);
        let mut siv = Self {
            mac,
            ctr,
            subkeys: Subkeys {
                k1,
                k2,
                d0: [0; BLOCK],
            },
        };
        let zero_mac = Zeroizing::new(siv.cmac(&[0u8; BLOCK]));
        siv.subkeys.d0 = dbl(&zero_mac);
        siv
    }

    /// S2V's state after one associated-data string `ad`: `dbl(CMAC(0)) ⊕ CMAC(ad)`. Reuse it for
    /// every message sealed under the same `ad`.
    pub fn ad_state(&self, ad: &[u8]) -> AdState {
        let mut d = self.cmac(ad);
        xor_into(&mut d, &self.subkeys.d0);
        AdState(d)
    }

    /// S2V's state after a vector of associated-data components (RFC 5297 §2.4), in order:
    /// `D = CMAC(0)`, then `D = dbl(D) ⊕ CMAC(Sᵢ)` for each. One component gives
    /// [`Aes256Siv::ad_state`]'s state; none leaves `CMAC(0)`. The count limit (126) is the
    /// caller's to enforce ([`crate::siv_vector`]).
    pub fn ad_state_components(&self, components: &[&[u8]]) -> AdState {
        let mut d = Zeroizing::new(self.cmac(&[0u8; BLOCK]));
        for component in components {
            let mac = Zeroizing::new(self.cmac(component));
            *d = dbl(&d);
            xor_into(&mut d[..], &mac);
        }
        AdState(*d)
    }

    /// Encrypts `buffer` in place and returns its synthetic IV (`SIV ‖ buffer` is the RFC 5297
    /// output for the associated data `ad` was made from).
    pub fn seal_in_place(&self, ad: &AdState, buffer: &mut [u8]) -> [u8; BLOCK] {
        let v = self.s2v(ad, buffer);
        self.ctr_inout(&v, buffer.into());
        v
    }

    /// Decrypts `buffer`'s input into its output and checks the synthetic IV `v` over the result.
    /// On failure the output (unauthenticated plaintext) is wiped.
    pub fn open_inout(
        &self,
        ad: &AdState,
        v: &[u8; BLOCK],
        mut buffer: InOutBuf<'_, '_, u8>,
    ) -> Result<(), SivAuthError> {
        self.ctr_inout(v, buffer.reborrow());
        let out = buffer.get_out();
        let expected = Zeroizing::new(self.s2v(ad, out));
        if ct_eq(&expected, v) {
            Ok(())
        } else {
            out.zeroize();
            Err(SivAuthError)
        }
    }

    /// S2V's last step over the plaintext (RFC 5297 §2.4).
    fn s2v(&self, ad: &AdState, plaintext: &[u8]) -> [u8; BLOCK] {
        let n = plaintext.len();
        if n >= BLOCK {
            // T = plaintext xorend D: every block but the last one or two straight from the
            // plaintext, the rest (which the XOR touches) through a small copy.
            let head = (n - BLOCK) / BLOCK * BLOCK;
            let mut tail = Zeroizing::new([0u8; 2 * BLOCK]);
            let tail_len = n - head;
            tail[..tail_len].copy_from_slice(&plaintext[head..]);
            xor_into(&mut tail[tail_len - BLOCK..tail_len], &ad.0);
            self.cmac_parts(&plaintext[..head], &tail[..tail_len])
        } else {
            // T = dbl(D) xor pad(plaintext).
            let mut t = Zeroizing::new(dbl(&ad.0));
            for (t, p) in t.iter_mut().zip(plaintext) {
                *t ^= p;
            }
            t[n] ^= 0x80;
            self.cmac(&*t)
        }
    }

    /// CMAC (RFC 4493) of `message`.
    fn cmac(&self, message: &[u8]) -> [u8; BLOCK] {
        self.cmac_parts(&[], message)
    }

    /// CMAC of `head ‖ tail`, where `head` is whole blocks.
    fn cmac_parts(&self, head: &[u8], tail: &[u8]) -> [u8; BLOCK] {
        let mut state = [0u8; BLOCK];
        cbc_mac(&self.mac, &mut state, head);
        let last_start = tail.len().saturating_sub(1) / BLOCK * BLOCK;
        let (middle, last) = tail.split_at(last_start);
        cbc_mac(&self.mac, &mut state, middle);
        let mut block = Zeroizing::new([0u8; BLOCK]);
        block[..last.len()].copy_from_slice(last);
        if last.len() == BLOCK {
            xor_into(&mut block[..], &self.subkeys.k1);
        } else {
            block[last.len()] = 0x80;
            xor_into(&mut block[..], &self.subkeys.k2);
        }
        xor_into(&mut state, &block);
        encrypt_block(&self.mac, &mut state);
        state
    }

    /// AES-CTR keyed by the second half, from `v` with bits 31 and 63 cleared (RFC 5297 §2.5).
    fn ctr_inout(&self, v: &[u8; BLOCK], buffer: InOutBuf<'_, '_, u8>) {
        let mut q = Zeroizing::new(*v);
        q[8] &= 0x7f;
        q[12] &= 0x7f;
        let core = ctr::CtrCore::<&Aes256Enc, ctr::flavors::Ctr128BE>::inner_iv_init(
            &self.ctr,
            Array::cast_from_core(&q),
        );
        StreamCipherCoreWrapper::from_core(core).apply_keystream_inout(buffer);
    }
}

/// A 32-byte AES key half (wiped on drop).
fn array32(half: &[u8]) -> Zeroizing<Array<u8, aes::cipher::consts::U32>> {
    let mut key = Zeroizing::new(Array::default());
    key.copy_from_slice(half);
    key
}

/// Doubling in GF(2^128) (RFC 5297 §2.3), without a branch on the top bit.
fn dbl(block: &[u8; BLOCK]) -> [u8; BLOCK] {
    let v = u128::from_be_bytes(*block);
    ((v << 1) ^ ((v >> 127) * 0x87)).to_be_bytes()
}

fn xor_into(target: &mut [u8], source: &[u8; BLOCK]) {
    for (t, s) in target.iter_mut().zip(source) {
        *t ^= s;
    }
}

fn encrypt_block(cipher: &Aes256Enc, block: &mut [u8; BLOCK]) {
    cipher.encrypt_block(Array::cast_from_core_mut(block));
}

/// `state = E(… E(E(state ⊕ m₀) ⊕ m₁) …)` over the whole blocks of `data` (its length is a multiple
/// of 16). Runs inside the cipher's backend (one CPU-feature check per call, not per block) with
/// the chaining value in a local, so it can stay in a register.
fn cbc_mac(cipher: &Aes256Enc, state: &mut [u8; BLOCK], data: &[u8]) {
    let (blocks, rest) = Block::slice_as_chunks(data);
    debug_assert!(rest.is_empty());
    if blocks.is_empty() {
        return;
    }
    cipher.encrypt_with_backend(CbcMac { state, blocks });
}

struct CbcMac<'a> {
    state: &'a mut [u8; BLOCK],
    blocks: &'a [Block],
}

impl BlockSizeUser for CbcMac<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for CbcMac<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let mut x = Block::from(*self.state);
        for block in self.blocks {
            for (x, m) in x.iter_mut().zip(block) {
                *x ^= m;
            }
            backend.encrypt_block_inplace(&mut x);
        }
        *self.state = x.into();
        x.zeroize();
    }
}
