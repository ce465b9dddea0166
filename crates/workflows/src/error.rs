//! What can go wrong in a workflow: the KMS's and Gmail's own errors, passed through whole
//! (the CLI reads their codes and hints), and the workflows' own.

use std::path::PathBuf;

use mailpki_gmail::GmailError;
use mailpki_issuance::IssuanceError;
use mailpki_kms::KmsError;
use mailpki_store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    #[error(transparent)]
    Kms(#[from] KmsError),

    #[error(transparent)]
    Gmail(#[from] GmailError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Issuance(#[from] IssuanceError),

    #[error("cannot use `{id}` as {what}")]
    Unusable {
        id: String,
        what: &'static str,
        #[source]
        source: KmsError,
    },

    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write the report")]
    Report(#[source] std::io::Error),

    #[error("invalid {what} `{value}`")]
    Invalid {
        what: &'static str,
        value: String,
        #[source]
        source: IssuanceError,
    },

    /// Input a workflow cannot use, said in the message (a row without a file, say).
    #[error("{0}")]
    Input(String),

    #[error("refusing to upload a certificate Gmail would reject for {address}")]
    WouldReject {
        address: String,
        #[source]
        source: IssuanceError,
    },

    /// Gmail or the store answered something that contradicts itself.
    #[error("{0}")]
    Inconsistent(String),

    #[error("cryptographic operation failed")]
    Crypto(#[from] openssl::error::ErrorStack),
}

impl From<csv::Error> for WorkflowError {
    fn from(e: csv::Error) -> Self {
        Self::Report(e.into())
    }
}

impl WorkflowError {
    /// The library error this one carries whole (the KMS's, Gmail's, the store's or the
    /// issuance's), for callers that classify errors by it: their codes and hints apply.
    #[must_use]
    pub fn passed_through(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Kms(e) => Some(e),
            Self::Gmail(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Issuance(e) => Some(e),
            _ => None,
        }
    }

    /// Gmail is not ready for the user yet (CSE still propagating): try again later.
    #[must_use]
    pub fn is_not_ready(&self) -> bool {
        matches!(self, Self::Gmail(e) if e.is_not_ready())
    }
}

/// An error and its causes on one line, as reports show them.
#[must_use]
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

pub type Result<T, E = WorkflowError> = std::result::Result<T, E>;
