//! The one error type of the crate, mapped onto SifreDB's stable error codes.

use core::fmt;

/// Why an operation failed. Never carries key, nonce or plaintext bytes: only argument names,
/// sizes and fixed reasons, so that messages are safe to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An argument has the wrong size or is out of range (`ERR_SIFREDB_INPUT`).
    Input {
        /// The argument at fault, as the caller names it (`"key"`, `"nonce"`, `"bits"` …).
        arg: &'static str,
        /// What was expected, e.g. `"64 bytes"` or `"1..=8160"`.
        expected: &'static str,
        /// What was given (a size or a value, never content).
        got: usize,
    },
    /// An argument is malformed in a way no number describes (`ERR_SIFREDB_INPUT`).
    Invalid {
        /// The argument at fault.
        arg: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Authentication failed: wrong key or context, or altered ciphertext (`ERR_SIFREDB_AUTH`).
    Auth,
    /// Not a SifreDB v1 envelope, truncated, or of another algorithm (`ERR_SIFREDB_FORMAT`).
    Format(&'static str),
    /// The envelope was written under another key version (`ERR_SIFREDB_KEY`).
    Key(&'static str),
    /// The operating system's random number generator failed (`ERR_SIFREDB_BACKEND`).
    Rng,
}

impl Error {
    /// The stable error code the JavaScript layer exposes as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Input { .. } | Self::Invalid { .. } => "ERR_SIFREDB_INPUT",
            Self::Auth => "ERR_SIFREDB_AUTH",
            Self::Format(_) => "ERR_SIFREDB_FORMAT",
            Self::Key(_) => "ERR_SIFREDB_KEY",
            Self::Rng => "ERR_SIFREDB_BACKEND",
        }
    }

    pub(crate) fn len(arg: &'static str, expected: &'static str, got: usize) -> Self {
        Self::Input { arg, expected, got }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input { arg, expected, got } => write!(f, "{arg} must be {expected}, got {got}"),
            Self::Invalid { arg, reason } => write!(f, "{arg} {reason}"),
            Self::Auth => {
                f.write_str("authentication failed: wrong key or context, or altered ciphertext")
            }
            Self::Format(reason) => write!(f, "not a SifreDB v1 ciphertext: {reason}"),
            Self::Key(reason) => f.write_str(reason),
            Self::Rng => f.write_str("the operating system's random number generator failed"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let e = Error::len("key", "64 bytes", 10);
        assert_eq!(e.code(), "ERR_SIFREDB_INPUT");
        assert_eq!(e.to_string(), "key must be 64 bytes, got 10");
        assert_eq!(Error::Auth.code(), "ERR_SIFREDB_AUTH");
        assert_eq!(Error::Format("truncated").code(), "ERR_SIFREDB_FORMAT");
        assert_eq!(Error::Key("key version mismatch").code(), "ERR_SIFREDB_KEY");
        assert_eq!(
            Error::Key("key version mismatch").to_string(),
            "key version mismatch"
        );
    }
}
