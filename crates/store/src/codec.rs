//! Reading and writing the file formats certificates and keys travel in: PKCS#12 (modern
//! AES/PBKDF2 and legacy RC2/3DES), PEM (certificates, PKCS#1, SEC1, PKCS#8 and encrypted
//! PKCS#8 keys, public keys) and DER. Parsing yields a [`Bundle`]; nothing here touches the
//! database.

use std::sync::OnceLock;

use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::x509::{X509, X509NameRef, X509Ref};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Result, StoreError};
use crate::model::{Algorithm, CertificateInfo};

/// What one imported file holds.
#[derive(Default)]
pub struct Bundle {
    /// Certificates in file order; for PKCS#12 the one matching the key comes first.
    pub certificates: Vec<X509>,
    pub private_key: Option<PKey<Private>>,
    pub public_key: Option<PKey<Public>>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("certificates", &self.certificates.len())
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("public_key", &self.public_key.is_some())
            .finish()
    }
}

/// The file formats `import` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    Pkcs12,
    Pem,
    Der,
}

/// Loads OpenSSL's legacy provider once, so PKCS#12 files protected with RC2-40 (older
/// OpenSSL, Windows, macOS exports) can be read. Keeping fallbacks leaves the default
/// provider in place.
fn load_legacy_provider() {
    static LEGACY: OnceLock<bool> = OnceLock::new();
    LEGACY.get_or_init(|| {
        match openssl::provider::Provider::try_load(None, "legacy", true) {
            Ok(provider) => {
                // Providers stay loaded for the life of the process.
                std::mem::forget(provider);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "OpenSSL legacy provider unavailable");
                false
            }
        }
    });
}

fn error_reasons(stack: &openssl::error::ErrorStack) -> String {
    let reasons: Vec<String> = stack
        .errors()
        .iter()
        .map(|e| e.reason().unwrap_or("unknown error").to_owned())
        .collect();
    if reasons.is_empty() {
        "unknown error".to_owned()
    } else {
        reasons.join("; ")
    }
}

pub fn parse(format: ImportFormat, data: &[u8], password: Option<&SecretString>) -> Result<Bundle> {
    let bundle = match format {
        ImportFormat::Pkcs12 => parse_pkcs12(data, password)?,
        ImportFormat::Pem => parse_pem(data, password)?,
        ImportFormat::Der => parse_der(data, password)?,
    };
    if bundle.certificates.is_empty() && bundle.private_key.is_none() && bundle.public_key.is_none()
    {
        return Err(StoreError::EmptyImport);
    }
    Ok(bundle)
}

fn parse_pkcs12(data: &[u8], password: Option<&SecretString>) -> Result<Bundle> {
    load_legacy_provider();
    let p12 = Pkcs12::from_der(data).map_err(|e| StoreError::MalformedPkcs12 {
        reason: error_reasons(&e),
    })?;
    let pass = password.map_or("", |p| p.expose_secret());
    let parsed = p12.parse2(pass).map_err(|e| {
        let reasons = error_reasons(&e);
        if reasons.contains("mac verify failure") || reasons.contains("bad decrypt") {
            StoreError::WrongPassword
        } else if reasons.contains("unsupported") || reasons.contains("fetch failed") {
            StoreError::UnsupportedPkcs12 { reason: reasons }
        } else {
            StoreError::MalformedPkcs12 { reason: reasons }
        }
    })?;
    let key = parsed.pkey;
    let mut certificates = Vec::new();
    if let Some(cert) = parsed.cert {
        certificates.push(cert);
    }
    if let Some(chain) = parsed.ca {
        certificates.extend(chain);
    }
    if certificates.is_empty() {
        return Err(StoreError::IncompletePkcs12 {
            what: "certificate",
        });
    }
    // Some exporters put the end-entity among the CA bag: the leaf is the one with the key.
    if let Some(key) = &key
        && let Some(pos) = certificates.iter().position(|c| matches_key(c, key))
    {
        let leaf = certificates.remove(pos);
        certificates.insert(0, leaf);
    } else if key.is_some() {
        return Err(StoreError::KeyMismatch);
    }
    Ok(Bundle {
        certificates,
        private_key: key,
        public_key: None,
    })
}

fn matches_key(cert: &X509Ref, key: &PKeyRef<Private>) -> bool {
    cert.public_key().is_ok_and(|pk| pk.public_eq(key))
}

/// One `-----BEGIN X-----` … `-----END X-----` block.
struct PemBlock<'a> {
    label: &'a str,
    text: &'a str,
}

fn pem_blocks(text: &str) -> Result<Vec<PemBlock<'_>>> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| StoreError::MalformedPem {
                reason: "a BEGIN line is not closed by -----".to_owned(),
            })?;
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = rest[start..]
            .find(&end_marker)
            .ok_or_else(|| StoreError::MalformedPem {
                reason: format!("no `{end_marker}` line: the file looks truncated"),
            })?;
        let stop = start + end + end_marker.len();
        blocks.push(PemBlock {
            label,
            text: &rest[start..stop],
        });
        rest = &rest[stop..];
    }
    Ok(blocks)
}

fn parse_pem(data: &[u8], password: Option<&SecretString>) -> Result<Bundle> {
    let text = std::str::from_utf8(data).map_err(|_| StoreError::MalformedPem {
        reason: "the file is not text".to_owned(),
    })?;
    let blocks = pem_blocks(text)?;
    if blocks.is_empty() {
        return Err(StoreError::MalformedPem {
            reason: "no -----BEGIN line found".to_owned(),
        });
    }
    let mut bundle = Bundle::default();
    for block in blocks {
        let malformed = |e: openssl::error::ErrorStack| StoreError::MalformedPem {
            reason: format!("block `{}`: {}", block.label, error_reasons(&e)),
        };
        match block.label {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => bundle
                .certificates
                .push(X509::from_pem(block.text.as_bytes()).map_err(malformed)?),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                let encrypted = block.label == "ENCRYPTED PRIVATE KEY"
                    || block.text.contains("Proc-Type: 4,ENCRYPTED");
                let key = if encrypted {
                    let pass = password.ok_or(StoreError::PasswordRequired {
                        what: "private key",
                    })?;
                    PKey::private_key_from_pem_passphrase(
                        block.text.as_bytes(),
                        pass.expose_secret().as_bytes(),
                    )
                    .map_err(|e| {
                        let reasons = error_reasons(&e);
                        if reasons.contains("bad decrypt") {
                            StoreError::WrongPassword
                        } else {
                            StoreError::MalformedPem { reason: reasons }
                        }
                    })?
                } else {
                    PKey::private_key_from_pem(block.text.as_bytes()).map_err(malformed)?
                };
                set_private_key(&mut bundle, key)?;
            }
            "PUBLIC KEY" | "RSA PUBLIC KEY" => {
                let key = if block.label == "PUBLIC KEY" {
                    PKey::public_key_from_pem(block.text.as_bytes())
                } else {
                    openssl::rsa::Rsa::public_key_from_pem_pkcs1(block.text.as_bytes())
                        .and_then(PKey::from_rsa)
                }
                .map_err(malformed)?;
                bundle.public_key = Some(key);
            }
            // `openssl ecparam -genkey` writes the curve before the key: nothing to keep.
            "EC PARAMETERS" => {}
            other => {
                return Err(StoreError::UnsupportedPemBlock {
                    label: other.to_owned(),
                });
            }
        }
    }
    // With a key, the certificate it belongs to is the one imported under the given ID.
    if let Some(key) = &bundle.private_key
        && let Some(pos) = bundle.certificates.iter().position(|c| matches_key(c, key))
    {
        let leaf = bundle.certificates.remove(pos);
        bundle.certificates.insert(0, leaf);
    }
    Ok(bundle)
}

fn set_private_key(bundle: &mut Bundle, key: PKey<Private>) -> Result<()> {
    if bundle.private_key.is_some() {
        return Err(StoreError::MalformedPem {
            reason: "the file holds more than one private key".to_owned(),
        });
    }
    bundle.private_key = Some(key);
    Ok(())
}

fn parse_der(data: &[u8], password: Option<&SecretString>) -> Result<Bundle> {
    let mut bundle = Bundle::default();
    if let Ok(cert) = X509::from_der(data) {
        bundle.certificates.push(cert);
    } else if let Ok(key) = PKey::private_key_from_der(data) {
        bundle.private_key = Some(key);
    } else if let Ok(key) = PKey::public_key_from_der(data) {
        bundle.public_key = Some(key);
    } else if let Some(pass) = password {
        let key = PKey::private_key_from_pkcs8_passphrase(data, pass.expose_secret().as_bytes())
            .map_err(|e| StoreError::MalformedDer {
                reason: error_reasons(&e),
            })?;
        bundle.private_key = Some(key);
    } else {
        return Err(StoreError::MalformedDer {
            reason: "it is neither an X.509 certificate, a private key nor a public key \
                     (an encrypted PKCS#8 key needs a password)"
                .to_owned(),
        });
    }
    Ok(bundle)
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn sha256_hex(data: &[u8]) -> Result<String> {
    Ok(hex(
        &hash(MessageDigest::sha256(), data).map_err(StoreError::crypto("hashing"))?
    ))
}

/// Formats a distinguished name the way admins write it: `C=FR, O=Org, CN=user@org`.
#[must_use]
pub fn format_name(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let nid = entry.object().nid();
            let key = match nid {
                Nid::PKCS9_EMAILADDRESS => "emailAddress".to_owned(),
                Nid::UNDEF => entry.object().to_string(),
                _ => nid
                    .short_name()
                    .map_or_else(|_| entry.object().to_string(), str::to_owned),
            };
            let value = entry
                .data()
                .to_string()
                .unwrap_or_else(|_| "<unprintable>".to_owned());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Algorithm and size in bits of a key.
pub fn key_algorithm<T: openssl::pkey::HasPublic>(key: &PKeyRef<T>) -> (Option<Algorithm>, u32) {
    let algorithm = match key.id() {
        Id::RSA | Id::RSA_PSS => Some(Algorithm::Rsa),
        Id::EC => Some(Algorithm::Ec),
        Id::ED25519 => Some(Algorithm::Ed25519),
        Id::ED448 => Some(Algorithm::Ed448),
        _ => None,
    };
    (algorithm, key.bits())
}

/// SHA-256 of a key's SubjectPublicKeyInfo, the same for a certificate and its keys.
pub fn spki_sha256<T: openssl::pkey::HasPublic>(key: &PKeyRef<T>) -> Result<String> {
    sha256_hex(
        &key.public_key_to_der()
            .map_err(StoreError::crypto("encoding a public key"))?,
    )
}

pub fn certificate_info(cert: &X509Ref) -> Result<CertificateInfo> {
    let der = cert
        .to_der()
        .map_err(StoreError::crypto("encoding a certificate"))?;
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
        .map_err(StoreError::crypto("reading a serial number"))?;
    let epoch = openssl::asn1::Asn1Time::from_unix(0)
        .map_err(StoreError::crypto("reading validity dates"))?;
    let unix = |t: &openssl::asn1::Asn1TimeRef| -> Result<i64> {
        let diff = epoch
            .diff(t)
            .map_err(StoreError::crypto("reading validity dates"))?;
        Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
    };
    let subject_der = cert
        .subject_name()
        .to_der()
        .map_err(StoreError::crypto("encoding a name"))?;
    let issuer_der = cert
        .issuer_name()
        .to_der()
        .map_err(StoreError::crypto("encoding a name"))?;
    Ok(CertificateInfo {
        subject: format_name(cert.subject_name()),
        issuer: format_name(cert.issuer_name()),
        serial,
        not_before: unix(cert.not_before())?,
        not_after: unix(cert.not_after())?,
        sha256_fingerprint: sha256_hex(&der)?,
        is_ca: is_ca(cert),
        subject_hash: sha256_hex(&subject_der)?,
        issuer_hash: sha256_hex(&issuer_der)?,
        email: mailbox(cert),
    })
}

/// The mailbox a certificate is for, lower-case: the subject's emailAddress, else the first
/// rfc822Name of its subjectAltName.
pub(crate) fn mailbox(cert: &X509Ref) -> Option<String> {
    let from_subject = cert
        .subject_name()
        .entries_by_nid(Nid::PKCS9_EMAILADDRESS)
        .find_map(|e| e.data().to_string().ok());
    from_subject
        .or_else(|| {
            cert.subject_alt_names()?
                .iter()
                .find_map(|n| n.email().map(str::to_owned))
        })
        .map(|email| email.trim().to_lowercase())
        .filter(|email| !email.is_empty())
}

/// Whether basicConstraints says CA:TRUE. The openssl crate exposes no direct accessor, so
/// this reads OpenSSL's own text rendering of the extension list.
fn is_ca(cert: &X509Ref) -> bool {
    cert.to_text().is_ok_and(|text| {
        String::from_utf8_lossy(&text)
            .split("X509v3 Basic Constraints")
            .nth(1)
            .and_then(|rest| rest.lines().nth(1))
            .is_some_and(|line| line.trim_start().starts_with("CA:TRUE"))
    })
}

/// Whether `parent` issued `child`: names chain and the signature verifies.
pub fn issued_by(child: &X509Ref, parent: &X509Ref) -> bool {
    let names_match = match (child.issuer_name().to_der(), parent.subject_name().to_der()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    names_match
        && parent
            .public_key()
            .and_then(|key| child.verify(&key))
            .unwrap_or(false)
}

/// Whether a certificate is self-issued and self-signed (a root).
pub fn is_self_signed(cert: &X509Ref) -> bool {
    issued_by(cert, cert)
}

/// A certs-only PKCS#7 SignedData in PEM (`-----BEGIN PKCS7-----`), certificates in the order
/// given (leaf first), as `openssl crl2pkcs7 -nocrl -certfile` makes it.
pub fn pkcs7_pem(certificates: &[X509]) -> Result<Vec<u8>> {
    let ders = certificates
        .iter()
        .map(|c| c.to_der())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(StoreError::crypto("encoding a certificate"))?;
    let signed_data = yasna::models::ObjectIdentifier::from_slice(&[1, 2, 840, 113_549, 1, 7, 2]);
    let data = yasna::models::ObjectIdentifier::from_slice(&[1, 2, 840, 113_549, 1, 7, 1]);
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_oid(&signed_data);
            w.next().write_tagged(yasna::Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_set(|_| {});
                    w.next().write_sequence(|w| w.next().write_oid(&data));
                    // [0] IMPLICIT SET OF Certificate, kept in chain order rather than sorted:
                    // readers (Gmail, OpenSSL) take the first certificate as the leaf.
                    w.next().write_tagged_implicit(yasna::Tag::context(0), |w| {
                        w.write_sequence(|w| {
                            for der in &ders {
                                w.next().write_der(der);
                            }
                        });
                    });
                    w.next().write_set(|_| {});
                });
            });
        });
    });
    openssl::pkcs7::Pkcs7::from_der(&der)
        .and_then(|p7| p7.to_pem())
        .map_err(StoreError::crypto("encoding a PKCS#7"))
}

/// The PKCS#12 encryption profile for exports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pkcs12Profile {
    /// AES-256-CBC with PBKDF2 and a SHA-256 MAC: OpenSSL 3's default.
    #[default]
    Modern,
    /// 3DES with a SHA-1 MAC, for Windows before Server 2019 and other old readers.
    Legacy,
}

pub fn build_pkcs12(
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    chain: &[X509],
    password: &SecretString,
    profile: Pkcs12Profile,
    friendly_name: &str,
) -> Result<Vec<u8>> {
    let mut stack =
        openssl::stack::Stack::new().map_err(StoreError::crypto("building a PKCS#12"))?;
    for c in chain {
        stack
            .push(c.clone())
            .map_err(StoreError::crypto("building a PKCS#12"))?;
    }
    let mut builder = Pkcs12::builder();
    builder.name(friendly_name).pkey(key).cert(cert).ca(stack);
    if profile == Pkcs12Profile::Legacy {
        builder
            .key_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
            .cert_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
            .mac_md(MessageDigest::sha1());
    }
    builder
        .build2(password.expose_secret())
        .and_then(|p12| p12.to_der())
        .map_err(StoreError::crypto("building a PKCS#12"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_report_truncation() {
        let text = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let Err(StoreError::MalformedPem { reason }) = pem_blocks(text) else {
            panic!("expected a malformed PEM error");
        };
        assert!(reason.contains("truncated"), "{reason}");
    }

    #[test]
    fn pem_without_blocks_is_rejected() {
        assert!(matches!(
            parse(ImportFormat::Pem, b"hello", None),
            Err(StoreError::MalformedPem { .. })
        ));
    }

    #[test]
    fn garbage_is_not_pkcs12() {
        assert!(matches!(
            parse(ImportFormat::Pkcs12, b"\x30\x03\x02\x01", None),
            Err(StoreError::MalformedPkcs12 { .. })
        ));
    }

    #[test]
    fn unknown_pem_labels_are_named() {
        let text = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
        let Err(StoreError::UnsupportedPemBlock { label }) = parse(ImportFormat::Pem, text, None)
        else {
            panic!("expected an unsupported block error");
        };
        assert_eq!(label, "X509 CRL");
    }
}
