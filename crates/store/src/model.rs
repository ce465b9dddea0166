//! The object model: what the store holds and the words used to talk about it. Names follow
//! KMIP (and Cosmian KMS) so that `attributes get` reads the same to their users.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Result, StoreError};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        // Written as the names below; read as `FromStr` reads them (any case).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> std::result::Result<Self, String> {
                s.parse()
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(s))
                    .ok_or_else(|| {
                        let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        format!("unknown value `{s}` (expected one of: {})", known.join(", "))
                    })
            }
        }
    };
}

string_enum! {
    /// The kind of a stored object.
    ObjectType {
        Certificate => "Certificate",
        PrivateKey => "PrivateKey",
        PublicKey => "PublicKey",
        SymmetricKey => "SymmetricKey",
    }
}

string_enum! {
    /// The lifecycle state of an object (KMIP's states).
    State {
        PreActive => "PreActive",
        Active => "Active",
        Deactivated => "Deactivated",
        Compromised => "Compromised",
        Destroyed => "Destroyed",
    }
}

string_enum! {
    /// Typed links between objects. A certificate links to its keys and to its issuer's
    /// certificate (`CertificateLink`); keys link to each other and to their certificate.
    LinkType {
        PrivateKeyLink => "PrivateKeyLink",
        PublicKeyLink => "PublicKeyLink",
        CertificateLink => "CertificateLink",
    }
}

string_enum! {
    /// Operations that access rights are granted for.
    Operation {
        Get => "get",
        GetAttributes => "get_attributes",
        Export => "export",
        Certify => "certify",
        CertifyCa => "certify_ca",
        Sign => "sign",
        Encrypt => "encrypt",
        Decrypt => "decrypt",
        Revoke => "revoke",
        Destroy => "destroy",
    }
}

string_enum! {
    /// Cryptographic algorithm of a key (or of a certificate's public key).
    Algorithm {
        Rsa => "RSA",
        Ec => "EC",
        Ed25519 => "Ed25519",
        Ed448 => "Ed448",
        Aes => "AES",
    }
}

/// The user an operation is performed for. In embedded mode this is the configured or OS
/// user; a server authenticates it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor(String);

impl Actor {
    /// The grantee name that stands for every user.
    pub const EVERYONE: &'static str = "*";

    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let reason = if name.trim().is_empty() {
            Some("it is empty")
        } else if name == Self::EVERYONE {
            Some("`*` stands for everyone and cannot act")
        } else if name.chars().any(char::is_control) {
            Some("it contains control characters")
        } else if name.chars().any(crate::text::is_invisible) {
            Some("it contains invisible (bidirectional or zero-width) characters")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(StoreError::InvalidUser { user: name, reason }),
            None => Ok(Self(name)),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a user-given object ID. IDs are shown in shells and URLs, so they stay printable.
pub(crate) fn check_uid(uid: &str) -> Result<()> {
    let reason = if uid.is_empty() {
        Some("it is empty")
    } else if uid.len() > 256 {
        Some("it is longer than 256 bytes")
    } else if uid.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("it contains white space or control characters")
    } else if uid.chars().any(crate::text::is_invisible) {
        Some("it contains invisible (bidirectional or zero-width) characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidId {
            uid: uid.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty()
        || tag
            .chars()
            .any(|c| c.is_control() || crate::text::is_invisible(c))
    {
        return Err(StoreError::InvalidTag {
            tag: tag.to_owned(),
        });
    }
    Ok(())
}

/// Searchable facts about a certificate, kept in clear beside its DER.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// SHA-256 of the DER, lower-case hex.
    pub sha256_fingerprint: String,
    pub is_ca: bool,
    /// SHA-256 of the subject name's DER, to find a certificate's issuer.
    #[serde(skip)]
    pub subject_hash: String,
    #[serde(skip)]
    pub issuer_hash: String,
    /// The mailbox the certificate is for, lower-case (the subject's emailAddress, else the
    /// first rfc822Name): what a search by email looks up through an index.
    #[serde(skip)]
    pub email: Option<String>,
}

/// An object's key material as the backend holds it.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    /// Public data (certificates, public keys) in DER.
    Clear(Vec<u8>),
    /// Secret data sealed under the master key (nonce ‖ ciphertext ‖ tag).
    Sealed(Vec<u8>),
    /// Wiped by destroy.
    Gone,
    /// Held by a PKCS#11 token: where it is, and (for a private key) its public half.
    Hsm(HsmHeld),
}

/// A key that lives in an HSM, as the store records it: never the key, only where it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HsmHeld {
    #[serde(flatten)]
    pub key: mailpki_hsm::KeyRef,
    /// The private key's SubjectPublicKeyInfo (DER, base64); none for a secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// How the `material` column marks a reference to a token's key (DER never starts so).
const HSM_MARK: &[u8] = b"mailpki-hsm:";

impl Material {
    /// The `material` and `sealed` columns.
    pub(crate) fn columns(&self) -> (Option<std::borrow::Cow<'_, [u8]>>, bool) {
        use std::borrow::Cow;
        match self {
            Self::Clear(b) => (Some(Cow::Borrowed(b.as_slice())), false),
            Self::Sealed(b) => (Some(Cow::Borrowed(b.as_slice())), true),
            Self::Gone => (None, false),
            Self::Hsm(held) => {
                let mut bytes = HSM_MARK.to_vec();
                // Serializing a struct of strings cannot fail.
                bytes.extend(serde_json::to_vec(held).unwrap_or_default());
                (Some(Cow::Owned(bytes)), false)
            }
        }
    }

    /// The material the columns hold.
    pub(crate) fn from_columns(material: Option<Vec<u8>>, sealed: bool) -> Option<Self> {
        Some(match (material, sealed) {
            (None, _) => Self::Gone,
            (Some(bytes), true) => Self::Sealed(bytes),
            (Some(bytes), false) => match bytes.strip_prefix(HSM_MARK) {
                Some(json) => Self::Hsm(serde_json::from_slice(json).ok()?),
                None => Self::Clear(bytes),
            },
        })
    }
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Clear(bytes) => write!(f, "Clear({} bytes)", bytes.len()),
            Self::Sealed(bytes) => write!(f, "Sealed({} bytes)", bytes.len()),
            Self::Gone => f.write_str("Gone"),
            Self::Hsm(held) => write!(f, "Hsm({})", held.key),
        }
    }
}

/// One stored object with its attributes, as a backend reads and writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRecord {
    pub uid: String,
    pub object_type: ObjectType,
    pub state: State,
    pub algorithm: Option<Algorithm>,
    pub length: Option<u32>,
    pub owner: String,
    pub tags: BTreeSet<String>,
    pub links: BTreeMap<LinkType, String>,
    /// Unix seconds.
    pub created: i64,
    pub updated: i64,
    /// SHA-256 of the SubjectPublicKeyInfo DER, pairing certificates with their keys.
    pub spki_sha256: Option<String>,
    pub revocation_reason: Option<String>,
    /// When it was revoked (Unix seconds); `None` if never, or revoked before this was kept.
    pub revoked_at: Option<i64>,
    pub certificate: Option<CertificateInfo>,
    pub material: Material,
}

/// Why a certificate was revoked: RFC 5280's reason codes, less `certificateHold` (the S/MIME
/// Baseline Requirements forbid suspension) and `removeFromCRL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    pub const ALL: [Self; 8] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::CaCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::PrivilegeWithdrawn,
        Self::AaCompromise,
    ];

    /// RFC 5280's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// The `CRLReason` value.
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// Whether the key itself is no longer to be trusted.
    #[must_use]
    pub fn is_compromise(self) -> bool {
        matches!(
            self,
            Self::KeyCompromise | Self::CaCompromise | Self::AaCompromise
        )
    }

    /// A reason as written (`keyCompromise`, `key-compromise`, `KEY_COMPROMISE`...) and the
    /// note after a colon, if any: `superseded: new CA`.
    #[must_use]
    pub fn parse_with_note(text: &str) -> Option<(Self, Option<&str>)> {
        let (name, note) = match text.split_once(':') {
            Some((name, note)) => (name, Some(note.trim()).filter(|n| !n.is_empty())),
            None => (text, None),
        };
        let wanted: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().to_ascii_lowercase() == wanted)
            .map(|r| (r, note))
    }
}

/// One entry of a CRL.
#[derive(Clone, Debug)]
pub struct RevokedCertificate {
    /// Serial number, upper-case hex.
    pub serial: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// `None` when the stored reason names none of RFC 5280's (revoked before they were
    /// required): the entry then carries no reason code.
    pub reason: Option<RevocationReason>,
}

/// A read-only view of an object's attributes, for printing.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Attributes {
    pub unique_identifier: String,
    pub object_type: ObjectType,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cryptographic_algorithm: Option<Algorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cryptographic_length: Option<u32>,
    pub owner: String,
    pub tags: BTreeSet<String>,
    pub created: String,
    pub last_change_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spki_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_sha256_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_is_ca: Option<bool>,
    /// Where a key's material is: `store` (sealed under the master key) or `hsm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_location: Option<String>,
    /// For a key in an HSM: the token, the key's `CKA_ID` (hex) and `CKA_LABEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsm_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsm_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsm_key_label: Option<String>,
    /// Links by type, flattened so that `jq .PrivateKeyLink` works as with Cosmian.
    #[serde(flatten)]
    pub links: BTreeMap<LinkType, String>,
}

impl From<&ObjectRecord> for Attributes {
    fn from(r: &ObjectRecord) -> Self {
        let cert = r.certificate.as_ref();
        let hsm = match &r.material {
            Material::Hsm(held) => Some(held),
            _ => None,
        };
        Self {
            unique_identifier: r.uid.clone(),
            object_type: r.object_type,
            state: r.state,
            cryptographic_algorithm: r.algorithm,
            cryptographic_length: r.length,
            owner: r.owner.clone(),
            tags: r.tags.clone(),
            created: rfc3339(r.created),
            last_change_date: rfc3339(r.updated),
            spki_sha256: r.spki_sha256.clone(),
            revocation_reason: r.revocation_reason.clone(),
            revocation_date: r.revoked_at.map(rfc3339),
            certificate_subject: cert.map(|c| c.subject.clone()),
            certificate_issuer: cert.map(|c| c.issuer.clone()),
            certificate_serial_number: cert.map(|c| c.serial.clone()),
            certificate_not_before: cert.map(|c| rfc3339(c.not_before)),
            certificate_not_after: cert.map(|c| rfc3339(c.not_after)),
            certificate_sha256_fingerprint: cert.map(|c| c.sha256_fingerprint.clone()),
            certificate_is_ca: cert.map(|c| c.is_ca),
            key_location: match &r.material {
                Material::Sealed(_) => Some("store".to_owned()),
                Material::Hsm(_) => Some("hsm".to_owned()),
                Material::Clear(_) | Material::Gone => None,
            },
            hsm_token: hsm.map(|h| h.key.token.clone()),
            hsm_key_id: hsm.map(|h| h.key.id.clone()),
            hsm_key_label: hsm.map(|h| h.key.label.clone()),
            links: r.links.clone(),
        }
    }
}

/// Formats Unix seconds as RFC 3339 UTC; out-of-range values print as the raw number.
#[must_use]
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Which objects `list` returns. Every condition given must hold.
#[derive(Clone, Debug, Default)]
pub struct ObjectFilter {
    pub object_type: Option<ObjectType>,
    pub tags: Vec<String>,
    /// Case-insensitive substring of the certificate subject.
    pub subject_contains: Option<String>,
    /// Certificates whose not-after is before this (Unix seconds).
    pub expires_before: Option<i64>,
    pub include_destroyed: bool,
    /// CA certificates only.
    pub ca_only: bool,
    /// Only objects listed after this one (by creation, then ID): the next page.
    pub after: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Certificates for this mailbox (any case).
    pub email: Option<String>,
    /// Objects in this state.
    pub state: Option<State>,
    /// Certificates whose not-after is at or after this (Unix seconds).
    pub expires_after: Option<i64>,
    /// The certificate with this serial number (hex, any case, leading zeros and colons
    /// ignored).
    pub serial: Option<String>,
    /// Certificates issued by the CA whose certificate has this ID (by issuer name).
    pub issued_by: Option<String>,
}

/// What [`crate::Store::count_by`] groups the objects it counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountBy {
    /// Lifecycle state (`Active`, `Compromised`, ...).
    State,
    /// Certificates by expiry: the bucket number `(not_after - from) / width`, for objects
    /// that expire at or after `from` (seconds).
    ExpiryBucket { from: i64, width: i64 },
    /// Both at once, in one pass: `"{state} {bucket}"`, the bucket as above and `-1` for what
    /// expired before `from`.
    StateAndExpiry { from: i64, width: i64 },
}

/// One line of the audit log: who did what to which object, when, with what outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Unix seconds.
    pub at: i64,
    pub actor: String,
    pub operation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `ok`, `denied`, `failed` or `unauthenticated`.
    pub outcome: String,
    /// What went wrong, as the error message says it (never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How the actor came to act, when someone else made that possible: `api token ID made
    /// by ADMIN` for a token an admin created for the actor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// Which audit lines to read, newest first.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub object: Option<String>,
    pub operation: Option<String>,
    /// Lines written at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Lines written before this time (Unix seconds).
    pub until: Option<i64>,
    pub limit: usize,
}

/// An API token as stored: its hash stands in for the secret, which is never kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ApiToken {
    pub id: String,
    /// The user the token acts as.
    pub user: String,
    pub created: i64,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<i64>,
}

impl ApiToken {
    /// Neither revoked nor expired at `now` (Unix seconds).
    #[must_use]
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked.is_none() && self.expires.is_none_or(|e| e > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hsm_reference_round_trips_through_the_columns_and_is_never_mistaken() {
        let held = Material::Hsm(HsmHeld {
            key: mailpki_hsm::KeyRef {
                token: "ca".into(),
                id: "a1b2".into(),
                label: "issuing".into(),
            },
            public_key: Some("MFkw".into()),
        });
        let (bytes, sealed) = held.columns();
        assert!(!sealed);
        let back = Material::from_columns(bytes.map(std::borrow::Cow::into_owned), false);
        assert_eq!(back, Some(held));
        // DER (a certificate, a public key) stays clear material; a damaged reference is
        // refused, not read as something else.
        assert_eq!(
            Material::from_columns(Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]), false),
            Some(Material::Clear(vec![0x30, 0x03, 0x02, 0x01, 0x01]))
        );
        assert_eq!(
            Material::from_columns(Some(b"mailpki-hsm:{not json".to_vec()), false),
            None
        );
        assert!(matches!(
            Material::from_columns(Some(b"mailpki-hsm:x".to_vec()), true),
            Some(Material::Sealed(_))
        ));
    }

    #[test]
    fn enums_parse_case_insensitively_and_name_the_choices() {
        assert_eq!(
            "privatekeylink".parse::<LinkType>(),
            Ok(LinkType::PrivateKeyLink)
        );
        assert_eq!("EXPORT".parse::<Operation>(), Ok(Operation::Export));
        let err = "fly".parse::<Operation>().unwrap_err();
        assert!(err.contains("get_attributes"), "{err}");
    }

    #[test]
    fn actor_rejects_wildcard_and_blank() {
        assert!(Actor::new("*").is_err());
        assert!(Actor::new("  ").is_err());
        assert_eq!(
            Actor::new("alice").map(|a| a.to_string()).ok(),
            Some("alice".into())
        );
    }

    #[test]
    fn ids_must_be_printable() {
        assert!(check_uid("issuer_ca_certificate").is_ok());
        assert!(check_uid("has space").is_err());
        assert!(check_uid("").is_err());
    }

    #[test]
    fn material_debug_never_shows_bytes() {
        let m = Material::Sealed(vec![0xAB; 4]);
        assert_eq!(format!("{m:?}"), "Sealed(4 bytes)");
    }
}
