//! What can go wrong with a token, worded for the person who configured it.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, HsmError>;

#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {}: {cause}", path.display())]
    Module {
        path: PathBuf,
        cause: cryptoki::error::Error,
    },
    #[error("no token labelled `{token}` in the PKCS#11 module (tokens present: {})", list(.present))]
    TokenNotPresent { token: String, present: Vec<String> },
    #[error("cannot log in to the token `{token}`: {reason}")]
    Login { token: String, reason: String },
    #[error("the HSM PIN cannot be read: {reason}")]
    Pin { reason: String },
    #[error("no {what} with {by} in the token `{token}`")]
    KeyNotFound {
        token: String,
        what: &'static str,
        by: String,
    },
    #[error(
        "the token `{token}` no longer holds the key with ID {id} (was it re-initialised, or \
         another token given the same label?)"
    )]
    KeyGone { token: String, id: String },
    #[error("{count} keys match {by} in the token `{token}`: name one by its ID")]
    Ambiguous {
        token: String,
        by: String,
        count: usize,
    },
    #[error("the key belongs to the token `{key}`, but the configured token is `{configured}`")]
    OtherToken { key: String, configured: String },
    #[error("the token cannot hold this key: {reason}")]
    Unsupported { reason: String },
    #[error("the token failed {what}: {cause}")]
    Token {
        what: &'static str,
        cause: cryptoki::error::Error,
    },
    #[error("{what}: {cause}")]
    Crypto {
        what: &'static str,
        cause: openssl::error::ErrorStack,
    },
    #[error("the token's key does not match the certificate's public key")]
    KeyMismatch,
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl HsmError {
    pub(crate) fn token(what: &'static str) -> impl Fn(cryptoki::error::Error) -> Self {
        move |cause| Self::Token { what, cause }
    }

    pub(crate) fn crypto(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> Self {
        move |cause| Self::Crypto { what, cause }
    }

    /// Whether the token itself is gone or broken (removed, module failing), as opposed to a
    /// request it refused: the caller may say "check the HSM" rather than "check the input".
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        use cryptoki::error::{Error, RvError};
        match self {
            Self::Module { .. } | Self::TokenNotPresent { .. } | Self::KeyGone { .. } => true,
            Self::Token {
                cause: Error::Pkcs11(rv, _),
                ..
            } => matches!(
                rv,
                RvError::TokenNotPresent
                    | RvError::DeviceRemoved
                    | RvError::DeviceError
                    | RvError::DeviceMemory
                    | RvError::GeneralError
                    | RvError::SessionHandleInvalid
                    | RvError::SessionClosed
            ),
            _ => false,
        }
    }
}
