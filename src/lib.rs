//! Node.js binding of `sifredb-core`: converts arguments, calls the core, maps errors. Nothing here
//! decides anything about cryptography or the format.
#![deny(clippy::all)]

mod buffers;
mod ciphers;
mod errors;
mod primitives;

pub use ciphers::{NativeBlindIndex, NativeCipher, NativeRootKey};
pub use primitives::*;
