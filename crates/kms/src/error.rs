//! Errors of the shared operations and of the remote client. A server's refusal arrives as
//! [`KmsError::Remote`] carrying the server's code and message, so the CLI reports it as it
//! would the same refusal from the embedded store.

use mailpki_issuance::IssuanceError;
use mailpki_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Issuance(#[from] IssuanceError),

    #[error("cryptographic operation failed")]
    Crypto(#[from] openssl::error::ErrorStack),

    #[error("give the issuer with -k/--issuer-private-key-id or --issuer-certificate-id")]
    NoIssuer,

    #[error("cannot use `{id}` as the issuer")]
    Issuer {
        id: String,
        #[source]
        source: Box<KmsError>,
    },

    #[error("in the extension file {name}")]
    ExtensionFile {
        name: String,
        #[source]
        source: IssuanceError,
    },

    #[error(
        "refusing to mint a certificate Gmail would reject (pass --allow-non-compliant to mint anyway)"
    )]
    Refused(#[source] IssuanceError),

    #[error("refusing to upload a certificate Gmail would reject")]
    WouldReject(#[source] IssuanceError),

    #[error("{reason}")]
    InvalidRequest { reason: String },

    /// `certify` mints end-entity S/MIME certificates only; more needs `certify_ca`.
    #[error(
        "user `{user}` may only mint end-entity S/MIME certificates with `{id}` ({}); a CA certificate or another purpose needs the `certify_ca` right from the key's owner",
        reasons.join(", ")
    )]
    EndEntityOnly {
        id: String,
        user: String,
        reasons: Vec<String>,
    },

    /// The server refused or failed; `code` is its machine-readable reason.
    #[error("{message}")]
    Remote {
        status: u16,
        code: crate::api::ErrorCode,
        message: String,
    },

    #[error("cannot reach the KMS server at {url}: {reason}")]
    Unreachable { url: String, reason: String },

    #[error("unexpected answer from the KMS server: {reason}")]
    Protocol { reason: String },
}

impl KmsError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            reason: reason.into(),
        }
    }

    /// Whether the caller's request was at fault (as opposed to the machine or the server).
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Store(e) => e.is_user_error(),
            Self::Issuance(e)
            | Self::ExtensionFile { source: e, .. }
            | Self::Refused(e)
            | Self::WouldReject(e) => e.is_user_error(),
            Self::Issuer { source, .. } => source.is_user_error(),
            Self::NoIssuer | Self::InvalidRequest { .. } | Self::EndEntityOnly { .. } => true,
            Self::Remote { status, .. } => (400..500).contains(status),
            Self::Crypto(_) | Self::Unreachable { .. } | Self::Protocol { .. } => false,
        }
    }

    /// Whether trying again later may succeed (the server or its database is away).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
            Self::Issuer { source, .. } => source.is_transient(),
            Self::Unreachable { .. } => true,
            Self::Remote { status, .. } => *status == 503 || *status == 429,
            _ => false,
        }
    }
}

pub type Result<T, E = KmsError> = std::result::Result<T, E>;
