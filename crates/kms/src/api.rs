//! The JSON bodies of the server's `/v1` API. The CLI's remote client sends them and the
//! server decodes them; the embedded mode runs the very same requests through [`crate::ops`],
//! so both modes take one path through the store. Binary data travels as standard base64.
//! Unknown fields are refused, so a typo in a script is an error rather than a silent default.

use serde::{Deserialize, Serialize};

use mailpki_issuance::Severity;
use mailpki_store::{Algorithm, ObjectType, Operation};

use crate::mint::{IssuerRef, MintProfile};

/// `Debug` for bodies that carry a secret: every field but the secret ones, which show as
/// `[REDACTED]` when present.
macro_rules! redacted_debug {
    ($name:ident { $($field:ident),* } secret { $($secret:ident),* }) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &self.$field))*
                    $(.field(stringify!($secret), &Redact::redacted(&self.$secret)))*
                    .finish()
            }
        }
    };
}

/// The `/v1` routes: the server's router and the remote client both read them from here.
pub mod routes {
    pub const HEALTH: &str = "/v1/health";
    pub const OPENAPI: &str = "/v1/openapi.json";
    pub const WHOAMI: &str = "/v1/whoami";
    pub const IMPORT: &str = "/v1/objects/import";
    pub const SEARCH: &str = "/v1/objects/search";
    pub const ATTRIBUTES: &str = "/v1/objects/{id}/attributes";
    pub const EXPORT: &str = "/v1/objects/{id}/export";
    pub const ACCESS: &str = "/v1/objects/{id}/access";
    pub const GRANT: &str = "/v1/objects/{id}/grant";
    pub const REVOKE_ACCESS: &str = "/v1/objects/{id}/revoke-access";
    pub const REVOKE: &str = "/v1/objects/{id}/revoke";
    pub const DESTROY: &str = "/v1/objects/{id}/destroy";
    pub const TAGS: &str = "/v1/objects/{id}/tags";
    pub const OWNED: &str = "/v1/access/owned";
    pub const OBTAINED: &str = "/v1/access/obtained";
    pub const TOKENS_FOR_ME: &str = "/v1/access/tokens";
    pub const SYMMETRIC_KEYS: &str = "/v1/symmetric-keys";
    pub const HSM_KEYS: &str = "/v1/hsm-keys";
    pub const CERTIFY: &str = "/v1/certify";
    pub const CSE_WRAP: &str = "/v1/cse/wrap";
    pub const CSE_KEY_PAIRS: &str = "/v1/cse/key-pairs";
    pub const CRL: &str = "/v1/crl";
    pub const JOURNAL: &str = "/v1/journal/{batch}/{subject}";
    pub const ADMIN_TOKENS: &str = "/v1/admin/tokens";
    pub const ADMIN_TOKEN: &str = "/v1/admin/tokens/{id}";
    pub const ADMIN_AUDIT: &str = "/v1/admin/audit";

    /// Every `(method, route)` the server answers; `openapi.json` is tested against it.
    pub const TABLE: &[(&str, &str)] = &[
        ("get", HEALTH),
        ("get", OPENAPI),
        ("get", WHOAMI),
        ("post", IMPORT),
        ("post", SEARCH),
        ("get", ATTRIBUTES),
        ("post", EXPORT),
        ("get", ACCESS),
        ("post", GRANT),
        ("post", REVOKE_ACCESS),
        ("post", REVOKE),
        ("post", DESTROY),
        ("post", TAGS),
        ("get", OWNED),
        ("get", OBTAINED),
        ("get", TOKENS_FOR_ME),
        ("post", SYMMETRIC_KEYS),
        ("post", HSM_KEYS),
        ("post", CERTIFY),
        ("post", CSE_WRAP),
        ("post", CSE_KEY_PAIRS),
        ("post", CRL),
        ("get", JOURNAL),
        ("post", JOURNAL),
        ("get", ADMIN_TOKENS),
        ("post", ADMIN_TOKENS),
        ("delete", ADMIN_TOKEN),
        ("get", ADMIN_AUDIT),
    ];

    /// `route` with each `{name}` replaced by its value, percent-encoded as a path segment.
    #[must_use]
    pub fn path(route: &str, values: &[(&str, &str)]) -> String {
        values.iter().fold(route.to_owned(), |path, (name, value)| {
            path.replace(&format!("{{{name}}}"), &crate::segment(value))
        })
    }

    /// An object route (`{id}`) for `id`.
    #[must_use]
    pub fn object(route: &str, id: &str) -> String {
        path(route, &[("id", id)])
    }
}

/// What the key service's `check` endpoint (a mailpki extension) signs: this prefix then the
/// caller's nonce, so that it never signs a digest of the caller's choosing.
pub const KACLS_CHECK_PREFIX: &[u8] = b"mailpki kacls check\0";

/// A secret field (a password, a private key file, an export): wiped from memory on drop.
pub type Secret = zeroize::Zeroizing<String>;

#[must_use]
pub fn secret(value: &str) -> Secret {
    zeroize::Zeroizing::new(value.to_owned())
}

trait Redact {
    fn redacted(&self) -> &'static str;
}

impl Redact for String {
    fn redacted(&self) -> &'static str {
        "[REDACTED]"
    }
}

impl Redact for Secret {
    fn redacted(&self) -> &'static str {
        "[REDACTED]"
    }
}

impl Redact for Option<Secret> {
    fn redacted(&self) -> &'static str {
        if self.is_some() {
            "Some([REDACTED])"
        } else {
            "None"
        }
    }
}

/// What an import reads: `pkcs12` (also `p12`, `pfx`), `pem` or `der`, in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum ImportFormat {
    Pkcs12,
    Pem,
    Der,
}

impl TryFrom<String> for ImportFormat {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "pkcs12" | "p12" | "pfx" => Ok(Self::Pkcs12),
            "pem" => Ok(Self::Pem),
            "der" => Ok(Self::Der),
            other => Err(format!(
                "unknown import format `{other}` (expected pkcs12, pem or der)"
            )),
        }
    }
}

impl From<ImportFormat> for mailpki_store::ImportFormat {
    fn from(format: ImportFormat) -> Self {
        match format {
            ImportFormat::Pkcs12 => Self::Pkcs12,
            ImportFormat::Pem => Self::Pem,
            ImportFormat::Der => Self::Der,
        }
    }
}

/// What an export writes, in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum ExportFormat {
    /// The certificate, PEM.
    Pem,
    /// The certificate then its issuers, PEM.
    PemChain,
    Der,
    /// The certificate and its chain as PEM PKCS#7.
    Pkcs7,
    /// Certificate, chain and private key, under the body's password.
    Pkcs12,
}

impl TryFrom<String> for ExportFormat {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "pem" => Ok(Self::Pem),
            "pem-chain" => Ok(Self::PemChain),
            "der" => Ok(Self::Der),
            "pkcs7" => Ok(Self::Pkcs7),
            "pkcs12" => Ok(Self::Pkcs12),
            other => Err(format!(
                "unknown export format `{other}` (expected pem, pem-chain, der, pkcs7 or pkcs12)"
            )),
        }
    }
}

/// `POST /v1/objects/import`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The file's bytes, base64.
    pub data: Secret,
    pub format: ImportFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub replace: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Put the private key into the server's HSM instead of the store.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hsm: bool,
}

// The file itself may be an unencrypted private key.
redacted_debug!(ImportBody { format, id, replace, tags, hsm } secret { data, password });

/// `POST /v1/hsm-keys`: record a key that already lives in the HSM, found by its label or
/// `CKA_ID`; with a certificate, an issuer's private key (its public key and chain come from
/// the certificate), else an AES key.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HsmKeyBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `CKA_ID` in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key's certificate, PEM or DER, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// `POST /v1/objects/{id}/export`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    pub format: ExportFormat,
    /// The PKCS#12 password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// PKCS#12 with 3DES and a SHA-1 MAC.
    #[serde(default)]
    pub legacy: bool,
}

redacted_debug!(ExportBody { format, legacy } secret { password });

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportReply {
    /// The exported bytes, base64.
    pub data: Secret,
}

redacted_debug!(ExportReply {} secret { data });

/// `POST /v1/objects/search`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<ObjectType>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_contains: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_before: Option<i64>,
    #[serde(default)]
    pub include_destroyed: bool,
    /// The next page: objects listed after this ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// At most this many objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Certificates for this mailbox (any case; an index lookup, unlike `subject_contains`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `POST /v1/objects/{id}/grant` and `/revoke-access`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessBody {
    pub user: String,
    pub operations: Vec<Operation>,
}

/// `POST /v1/objects/{id}/revoke`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    pub reason: String,
    #[serde(default)]
    pub compromised: bool,
}

/// `POST /v1/crl`: a new CRL of the CA whose private key is `issuer_private_key_id`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrlBody {
    pub issuer_private_key_id: String,
    /// Days until `nextUpdate` [default: 7].
    #[serde(default)]
    pub days: Option<u32>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct CrlReply {
    /// The CRL, DER, base64.
    pub crl: String,
    pub crl_number: i64,
    pub this_update: String,
    pub next_update: String,
    /// The issuer's certificate ID.
    pub issuer: String,
    pub revoked: usize,
}

/// `POST /v1/objects/{id}/destroy`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DestroyBody {
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub remove: bool,
}

/// `POST /v1/objects/{id}/tags`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagsBody {
    pub tags: Vec<String>,
}

/// `POST /v1/symmetric-keys`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SymmetricKeyBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `AES` (the only one CSE uses).
    pub algorithm: Algorithm,
    pub length: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Make the key inside the server's HSM (AES-256 only), never extractable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hsm: bool,
}

/// The ID of an object a request made.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IdReply {
    pub unique_identifier: String,
}

/// Whose key a certificate is for.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// A new key pair, made and kept by the server.
    Generate,
    /// A public key already in the store (its `certify` right needed).
    PublicKeyId(String),
    /// A PEM or DER certificate signing request, base64.
    Csr(String),
}

/// `POST /v1/certify`: mint one certificate with a stored issuer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertifyBody {
    pub issuer: IssuerRef,
    #[serde(default)]
    pub profile: MintProfile,
    /// The subject; with a CSR, the CSR's subject when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub key: KeySource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Also return the new certificate, its generated key and chain as a PKCS#12 with this
    /// password: one request where certify then export would take two (certify-batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Pkcs12Wanted>,
    /// Mint only if no certificate of the caller carries all of `tags` yet; else answer with
    /// that one. Requests with the same tags are serialized in each process, and the new
    /// certificate's ID follows from the caller and the tags, so that instances answering the
    /// same request at once store one certificate: a request still running for a client that
    /// died and the resumed client's request, on any instance, make one certificate, not two.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once: bool,
}

/// The PKCS#12 a certify request asks back.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs12Wanted {
    pub password: Secret,
    /// 3DES and a SHA-1 MAC, for old Windows and macOS.
    #[serde(default)]
    pub legacy: bool,
}

redacted_debug!(Pkcs12Wanted { legacy } secret { password });

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertifyReply {
    pub unique_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub issuer_certificate: String,
    pub subject: String,
    pub serial_number: String,
    pub not_after: String,
    /// The certificate, PEM.
    pub certificate: String,
    /// The S/MIME BR profile the linter saw (null when none).
    pub profile: serde_json::Value,
    pub findings: Vec<Finding>,
    /// Warnings about the minting itself (a fallback CRL URL, a shortened validity).
    pub notes: Vec<String>,
    /// The certificate is a CA (minted under the `certify_ca` right).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub certificate_authority: bool,
    /// The PKCS#12 asked for (base64), when the request asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Secret>,
    /// With `once`: an earlier request made this certificate; nothing was minted now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_minted: bool,
}

redacted_debug!(CertifyReply {
    unique_identifier, private_key, public_key, issuer_certificate, subject, serial_number,
    not_after, certificate, profile, findings, notes, certificate_authority, already_minted
} secret { pkcs12 });

/// A linter finding, as the reply carries it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
}

/// Where the certificate of a CSE key pair comes from.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CseCertificate {
    /// A certificate in the store, with its linked private key.
    Stored(String),
    /// Minted for the user now (and stored unless the request is a dry run).
    Mint(Box<CertifyBody>),
    /// A PKCS#12 file (base64) with its password, never stored. Embedded mode only: a server
    /// takes the file through `import` first.
    Pkcs12 {
        data: Secret,
        #[serde(default)]
        password: Option<Secret>,
    },
}

impl std::fmt::Debug for CseCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stored(id) => f.debug_tuple("Stored").field(id).finish(),
            Self::Mint(body) => f.debug_tuple("Mint").field(body).finish(),
            Self::Pkcs12 { .. } => f.write_str("Pkcs12([REDACTED])"),
        }
    }
}

/// `POST /v1/cse/key-pairs`: what Gmail's `keypairs.create` takes for a user: the certificate
/// (linted for the user and refused when Gmail would reject it, or when it is not RSA) with
/// its chain as PKCS#7, and its private key wrapped under the CSE key.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CseKeyPairBody {
    pub certificate: CseCertificate,
    /// The user's primary address, which the certificate must serve.
    pub user: String,
    pub cse_key_id: String,
    /// Keep nothing: a minted certificate and its key are not stored.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CseKeyPairReply {
    /// The leaf then its issuers, PEM PKCS#7 (`keypairs.create`'s `pkcs7`).
    pub pkcs7: String,
    /// The private key wrapped under the CSE key (`kaclsData`).
    pub kacls_data: String,
    /// The leaf, PEM.
    pub certificate: String,
    /// The stored certificate (none for a PKCS#12 file or a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// The linter's findings and the notes of a minting (empty when nothing was minted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

redacted_debug!(CseKeyPairReply { pkcs7, certificate, certificate_id, findings, notes } secret { kacls_data });

/// `POST /v1/cse/wrap`: a private key wrapped under a CSE key, as Gmail's `kaclsData`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WrapBody {
    pub private_key_id: String,
    pub cse_key_id: String,
}

/// The wrapped key is safe to show, but it is the user's key all the same.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WrapReply {
    pub kacls_data: String,
}

redacted_debug!(WrapReply {} secret { kacls_data });

/// `POST /v1/journal/{batch}/{subject}`: a step of a batch reached.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JournalBody {
    pub step: String,
    pub value: String,
}

/// `POST /v1/admin/tokens`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// The user the token acts as.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenReply {
    #[serde(flatten)]
    pub token: mailpki_store::ApiToken,
    /// The secret: shown once, never stored.
    pub secret: Secret,
}

redacted_debug!(TokenReply { token } secret { secret });

#[cfg(test)]
mod tests {
    #[test]
    fn error_codes_are_their_wire_words_and_unknown_ones_are_other() {
        use super::ErrorCode;
        for code in ErrorCode::SENT {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        let newer: ErrorCode = serde_json::from_str("\"quota_exceeded\"").unwrap();
        assert_eq!(newer, ErrorCode::Other);
    }

    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let import = ImportBody {
            data: secret("c2VjcmV0LWtleQ=="),
            format: ImportFormat::Pem,
            password: Some(secret("hunter2")),
            id: Some("ca".to_owned()),
            replace: false,
            tags: vec![],
            hsm: false,
        };
        let export = ExportBody {
            format: ExportFormat::Pkcs12,
            password: Some(secret("hunter2")),
            legacy: false,
        };
        let text = format!("{import:?} {export:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("c2VjcmV0"),
            "{text}"
        );
        assert!(text.contains("ca") && text.contains("Pkcs12"), "{text}");
    }
}

/// `GET /v1/whoami`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WhoAmI {
    pub user: String,
    pub admin: bool,
    /// `oidc` or `api-token`.
    pub method: String,
}

/// Every error reply: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorReply {
    pub error: ErrorBody,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// The machine-readable reason of an error reply; `openapi.json` lists the same words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    InUse,
    FailedPrecondition,
    TooLarge,
    UnsupportedMediaType,
    NonCompliant,
    TooManyFailures,
    Unavailable,
    Internal,
    /// A code this client does not know (a newer server), or a reply that was not the API's.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// Every code a server sends.
    pub const SENT: [Self; 13] = [
        Self::InvalidRequest,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::NotFound,
        Self::AlreadyExists,
        Self::InUse,
        Self::FailedPrecondition,
        Self::TooLarge,
        Self::UnsupportedMediaType,
        Self::NonCompliant,
        Self::TooManyFailures,
        Self::Unavailable,
        Self::Internal,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::InUse => "in_use",
            Self::FailedPrecondition => "failed_precondition",
            Self::TooLarge => "too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::NonCompliant => "non_compliant",
            Self::TooManyFailures => "too_many_failures",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Other => "other",
        }
    }
}
