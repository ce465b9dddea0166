//! The client's errors. Google's error bodies become [`GmailError::Api`] with their status and
//! reason kept, so callers can tell "CSE not active yet" from "certificate rejected".

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GmailError {
    #[error("cannot use the service account key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },

    #[error("Google refused the token request ({status}): {error}: {description}")]
    Token {
        status: u16,
        error: String,
        description: String,
    },

    #[error("Gmail API error {status} {status_text} ({reason}): {message}")]
    Api {
        status: u16,
        /// e.g. `INVALID_ARGUMENT`, `FAILED_PRECONDITION`.
        status_text: String,
        /// e.g. `invalidArgument`, `failedPrecondition`, `rateLimitExceeded`.
        reason: String,
        message: String,
    },

    #[error("cannot reach {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("unexpected reply from {url}: {reason}")]
    InvalidResponse { url: String, reason: String },

    #[error("cryptographic operation failed: {context}")]
    Crypto {
        context: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },
}

impl GmailError {
    /// Whether a retry could succeed: throttling and server faults.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, reason, .. } => {
                *status == 429
                    || *status >= 500
                    || (*status == 403
                        && matches!(
                            reason.as_str(),
                            "rateLimitExceeded" | "userRateLimitExceeded"
                        ))
            }
            _ => false,
        }
    }

    /// The status, for API errors.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } | Self::Token { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Google says the user is not ready yet (CSE enablement still propagating).
    #[must_use]
    pub fn is_not_ready(&self) -> bool {
        matches!(self, Self::Api { reason, .. } if reason == "failedPrecondition")
    }
}

pub type Result<T, E = GmailError> = std::result::Result<T, E>;
