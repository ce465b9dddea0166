//! The store's error type. Variants carry the context a user needs to fix the problem;
//! none of them ever carries secret material or passwords.

use std::path::PathBuf;

use crate::model::{LinkType, ObjectType, Operation};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("no object with ID `{uid}`")]
    NotFound { uid: String },

    #[error("an object with ID `{uid}` already exists")]
    AlreadyExists { uid: String },

    #[error("`{uid}` is a {actual}, not a {expected}")]
    WrongObjectType {
        uid: String,
        expected: ObjectType,
        actual: ObjectType,
    },

    #[error("user `{user}` may not {operation} object `{uid}`")]
    PermissionDenied {
        user: String,
        operation: Operation,
        uid: String,
    },

    /// A refusal on an object the user holds no right on at all: it reads as "not found", so
    /// that nobody learns which IDs exist, but callers record it as a denial.
    #[error("no object with ID `{uid}`")]
    Hidden {
        uid: String,
        user: String,
        operation: Operation,
    },

    #[error("only the owner of `{uid}` can change its access rights")]
    NotOwner { uid: String },

    #[error(
        "unknown revocation reason `{given}`: use one of unspecified, keyCompromise, cACompromise, \
         affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, aACompromise \
         (a note may follow a colon: `superseded: new CA`)"
    )]
    UnknownRevocationReason { given: String },

    #[error("`{uid}` is already revoked ({reason}); only a key compromise may be recorded over it")]
    AlreadyRevoked { uid: String, reason: String },

    /// The message carries the token's own cause: no error source, so it is said once.
    #[error("HSM: {0}")]
    Hsm(mailpki_hsm::HsmError),

    #[error(
        "`{uid}` lives in the HSM token `{token}`, and no HSM is configured here: add [hsm] \
         (module, token, PIN) to the configuration"
    )]
    HsmNotConfigured { uid: String, token: String },

    #[error("the file holds no private key to put into the HSM")]
    NoPrivateKey,

    #[error("no HSM is configured: add [hsm] (module, token, PIN) to the configuration")]
    NoHsm,

    #[error("`{uid}` lives in the HSM token `{token}`: its key material never leaves the token")]
    InHsm { uid: String, token: String },

    #[error("`{uid}` has been destroyed; its key material is gone")]
    Destroyed { uid: String },

    #[error(
        "`{uid}` is revoked and valid until {until}: its issuer's CRLs and OCSP answers must \
         say so until then, so it cannot be removed; destroy it without removing it (it stays \
         listed)"
    )]
    StillListed { uid: String, until: String },

    #[error("`{uid}` is {state}: only an active key can {operation}")]
    NotActive {
        uid: String,
        state: crate::model::State,
        operation: Operation,
    },

    #[error("`{uid}` is still needed by {dependents:?}; use force to destroy it anyway")]
    InUse {
        uid: String,
        dependents: Vec<String>,
    },

    #[error("`{uid}` has no {link}")]
    MissingLink { uid: String, link: LinkType },

    #[error("the PKCS#12 password is wrong (the file's integrity check failed)")]
    WrongPassword,

    #[error("this {what} is encrypted: a password is required")]
    PasswordRequired { what: &'static str },

    #[error("not a valid PKCS#12 file: {reason}")]
    MalformedPkcs12 { reason: String },

    #[error("the PKCS#12 file uses an algorithm this OpenSSL cannot decrypt: {reason}")]
    UnsupportedPkcs12 { reason: String },

    #[error("the PKCS#12 file holds no {what}")]
    IncompletePkcs12 { what: &'static str },

    #[error("not a valid PEM file: {reason}")]
    MalformedPem { reason: String },

    #[error("PEM block `{label}` is not a certificate, private key or public key")]
    UnsupportedPemBlock { label: String },

    #[error("not a DER certificate or key: {reason}")]
    MalformedDer { reason: String },

    #[error("the file holds nothing to import")]
    EmptyImport,

    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,

    #[error("invalid object ID `{uid}`: {reason}")]
    InvalidId { uid: String, reason: &'static str },

    #[error("invalid user name `{user}`: {reason}")]
    InvalidUser { user: String, reason: &'static str },

    #[error("invalid tag `{tag}`: tags are non-empty and have no control characters")]
    InvalidTag { tag: String },

    #[error("unsupported key length {bits} for {algorithm}")]
    InvalidKeyLength { algorithm: String, bits: u32 },

    #[error("{path} is not a mailpki store")]
    NotAStore { path: PathBuf },

    #[error(
        "{path} was written by a newer mailpki (schema {found}, this build knows up to {supported})"
    )]
    StoreTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("the master key does not open this store")]
    MasterKeyMismatch,

    #[error("the master key file {path} is missing, but the store {store} already exists")]
    MasterKeyMissing { path: PathBuf, store: PathBuf },

    #[error("invalid master key {source_name}: {reason}")]
    InvalidMasterKey {
        source_name: String,
        reason: &'static str,
    },

    #[error("stored object `{uid}` is corrupt: {reason}")]
    Corrupt { uid: String, reason: String },

    #[error("cryptographic operation failed: {context}")]
    Crypto {
        context: &'static str,
        #[source]
        source: openssl::error::ErrorStack,
    },

    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("database error")]
    Database(#[from] rusqlite::Error),

    #[error("database error: {0}")]
    Postgres(postgres::Error),

    #[error("the database is unavailable: {reason}")]
    Unavailable { reason: String },

    #[error("invalid database URL {url}: {reason}")]
    InvalidDatabaseUrl { url: String, reason: String },
}

impl StoreError {
    /// Whether the error comes from what the user asked (bad input, missing object, no right)
    /// rather than from the machine or the store itself.
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Self::Crypto { .. }
                | Self::Io { .. }
                | Self::Database(_)
                | Self::Postgres(_)
                | Self::Unavailable { .. }
                | Self::Corrupt { .. }
        ) && !self.is_unavailable()
    }

    /// Whether the database or the HSM is away: nothing was changed, and trying again later
    /// may succeed.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Hsm(e) => e.is_unavailable(),
            _ => false,
        }
    }

    pub(crate) fn crypto(context: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> Self {
        move |source| Self::Crypto { context, source }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<mailpki_hsm::HsmError> for StoreError {
    fn from(e: mailpki_hsm::HsmError) -> Self {
        Self::Hsm(e)
    }
}
