//! The issuance engine's errors. Each says what to change; none carries key material.

/// Everything that can go wrong while parsing inputs, minting or linting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuanceError {
    #[error("invalid subject name at character {position}: {reason}")]
    InvalidSubject { position: usize, reason: String },

    #[error("`{email}` is not a usable email address: {reason}")]
    InvalidEmail { email: String, reason: &'static str },

    #[error("extension file, line {line}: {reason}")]
    ExtensionFile { line: usize, reason: String },

    #[error("extension file: {reason}")]
    ExtensionSection { reason: String },

    #[error("unknown key algorithm `{name}` (expected rsa2048, rsa3072, rsa4096, p256 or p384)")]
    UnknownAlgorithm { name: String },

    #[error("the issuer is not a CA: {reason}")]
    NotACa { reason: &'static str },

    #[error("the issuer certificate does not match the issuer private key")]
    IssuerKeyMismatch,

    #[error(
        "authorityKeyIdentifier=keyid:always, but the issuer certificate has no subjectKeyIdentifier"
    )]
    IssuerKeyIdMissing,

    #[error("the issuer certificate expired on {not_after}")]
    IssuerExpired { not_after: String },

    #[error("the certificate signing request's signature does not verify")]
    BadCsrSignature,

    #[error(
        "no email address for the certificate: put one in the subject (CN or emailAddress) or give it"
    )]
    NoEmail,

    #[error("validity of {days} days is not allowed: {reason}")]
    InvalidValidity { days: u32, reason: &'static str },

    #[error("the certificate breaks rules Google enforces:\n{}", .findings.iter().map(|f| format!("  - [{}] {}", f.rule, f.message)).collect::<Vec<_>>().join("\n"))]
    NonCompliant { findings: Vec<crate::lint::Finding> },

    #[error("the issuer's key (held outside this process) failed to sign: {reason}")]
    ExternalSigner { reason: String },

    #[error("cannot read the certificate: {reason}")]
    BadCertificate { reason: String },

    #[error("cryptographic operation failed: {context}")]
    Crypto {
        context: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },
}

impl IssuanceError {
    pub(crate) fn crypto(context: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> Self {
        move |source| Self::Crypto { context, source }
    }

    /// Whether the user can fix it by changing the request.
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Self::Crypto { .. })
    }
}

pub type Result<T, E = IssuanceError> = std::result::Result<T, E>;
