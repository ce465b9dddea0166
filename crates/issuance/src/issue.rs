//! Minting: key generation and signing a certificate with the issuer's key.

use std::fmt;
use std::str::FromStr;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509Builder, X509Ref, X509Req, X509ReqRef};
use serde::Serialize;

use crate::encode::{EncodeContext, encode};
use crate::error::{IssuanceError, Result};
use crate::extensions::ExtensionSpec;
use crate::signer::SigningKey;
use crate::subject::{EmailAddress, SubjectName};

/// The longest validity the S/MIME BR allow for a subscriber certificate.
pub const MAX_VALIDITY_DAYS: u32 = 825;
/// Certificates start a few minutes in the past so that clients with slow clocks accept them.
pub(crate) const BACKDATE_SECS: i64 = 300;

/// Leaf key algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KeyAlgorithm {
    Rsa(u32),
    P256,
    P384,
}

impl Default for KeyAlgorithm {
    fn default() -> Self {
        Self::Rsa(2048)
    }
}

impl FromStr for KeyAlgorithm {
    type Err = IssuanceError;

    fn from_str(s: &str) -> Result<Self> {
        let norm: String = s
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        Ok(match norm.as_str() {
            "rsa" | "rsa2048" => Self::Rsa(2048),
            "rsa3072" => Self::Rsa(3072),
            "rsa4096" => Self::Rsa(4096),
            "p256" | "nistp256" | "ecp256" | "secp256r1" | "prime256v1" => Self::P256,
            "p384" | "nistp384" | "ecp384" | "secp384r1" => Self::P384,
            _ => return Err(IssuanceError::UnknownAlgorithm { name: s.to_owned() }),
        })
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa(bits) => write!(f, "rsa{bits}"),
            Self::P256 => f.write_str("p256"),
            Self::P384 => f.write_str("p384"),
        }
    }
}

impl KeyAlgorithm {
    pub fn generate(self) -> Result<PKey<Private>> {
        let crypto = IssuanceError::crypto("generating a key");
        match self {
            Self::Rsa(bits) => PKey::from_rsa(Rsa::generate(bits).map_err(crypto)?)
                .map_err(IssuanceError::crypto("generating a key")),
            Self::P256 | Self::P384 => {
                let nid = if self == Self::P256 {
                    Nid::X9_62_PRIME256V1
                } else {
                    Nid::SECP384R1
                };
                let group = EcGroup::from_curve_name(nid).map_err(crypto)?;
                let key =
                    EcKey::generate(&group).map_err(IssuanceError::crypto("generating a key"))?;
                PKey::from_ec_key(key).map_err(IssuanceError::crypto("generating a key"))
            }
        }
    }
}

/// The CA that signs: its certificate and private key, checked to belong together.
pub struct Issuer<'a> {
    certificate: &'a X509Ref,
    key: SigningKey,
}

impl fmt::Debug for Issuer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl<'a> Issuer<'a> {
    pub fn new(certificate: &'a X509Ref, key: impl Into<SigningKey>) -> Result<Self> {
        let key = key.into();
        let public = certificate
            .public_key()
            .map_err(IssuanceError::crypto("reading the issuer"))?;
        if !key.public_eq(&public) {
            return Err(IssuanceError::IssuerKeyMismatch);
        }
        let der = certificate
            .to_der()
            .map_err(IssuanceError::crypto("reading the issuer"))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
            IssuanceError::BadCertificate {
                reason: e.to_string(),
            }
        })?;
        match parsed.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => {}
            Ok(_) => {
                return Err(IssuanceError::NotACa {
                    reason: "its basicConstraints do not say CA:TRUE",
                });
            }
            Err(_) => {
                return Err(IssuanceError::NotACa {
                    reason: "its basicConstraints cannot be read",
                });
            }
        }
        if let Ok(Some(ku)) = parsed.key_usage()
            && !ku.value.key_cert_sign()
        {
            return Err(IssuanceError::NotACa {
                reason: "its keyUsage lacks keyCertSign",
            });
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if parsed.validity().not_after.timestamp() <= now {
            return Err(IssuanceError::IssuerExpired {
                not_after: parsed.validity().not_after.to_string(),
            });
        }
        Ok(Self { certificate, key })
    }

    #[must_use]
    pub fn certificate(&self) -> &X509Ref {
        self.certificate
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn digest(&self) -> MessageDigest {
        self.key.digest()
    }

    /// Signs what `builder` holds with the issuer's key (through its token, for a key held
    /// elsewhere, checked against the issuer's public key).
    pub(crate) fn sign_certificate(&self, mut builder: X509Builder) -> Result<X509> {
        builder
            .sign(&*self.key.builder_key()?, self.digest())
            .map_err(IssuanceError::crypto("signing a certificate"))?;
        let built = builder.build();
        if let SigningKey::Local(_) = self.key {
            return Ok(built);
        }
        let der = built
            .to_der()
            .map_err(IssuanceError::crypto("encoding a certificate"))?;
        let signed = X509::from_der(&self.key.replace_signature(der)?)
            .map_err(IssuanceError::crypto("reading a signed certificate"))?;
        let public = self
            .certificate
            .public_key()
            .map_err(IssuanceError::crypto("reading the issuer"))?;
        if signed.verify(&public).unwrap_or(false) {
            Ok(signed)
        } else {
            Err(IssuanceError::ExternalSigner {
                reason: "its signature does not verify with the issuer's public key".to_owned(),
            })
        }
    }
}

/// The digest a key signs with: SHA-256, or SHA-384/512 for the larger curves.
pub(crate) fn signing_digest<T: HasPublic>(key: &PKeyRef<T>) -> MessageDigest {
    match (key.id(), key.bits()) {
        (Id::EC, bits) if bits > 384 => MessageDigest::sha512(),
        (Id::EC, bits) if bits > 256 => MessageDigest::sha384(),
        _ => MessageDigest::sha256(),
    }
}

/// A certificate to mint.
pub struct LeafRequest<'a, K: HasPublic> {
    pub subject: &'a SubjectName,
    pub public_key: &'a PKeyRef<K>,
    pub extensions: &'a ExtensionSpec,
    pub days: u32,
    /// Addresses to add to the subject's for `email:copy` (the user the certificate is for).
    pub extra_emails: &'a [EmailAddress],
}

/// What `issue` made, with what it adjusted.
pub struct Issued {
    pub certificate: X509,
    /// Human-readable adjustments, e.g. validity shortened to the issuer's.
    pub notes: Vec<String>,
}

/// A random serial: 16 bytes (127 bits of entropy), positive, never zero.
pub(crate) fn random_serial() -> Result<Asn1Integer> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(IssuanceError::crypto("drawing a serial"))?;
    bytes[0] = (bytes[0] & 0x7F) | 0x40;
    BigNum::from_slice(&bytes)
        .and_then(|bn| bn.to_asn1_integer())
        .map_err(IssuanceError::crypto("drawing a serial"))
}

pub fn issue<K: HasPublic>(issuer: &Issuer<'_>, request: &LeafRequest<'_, K>) -> Result<Issued> {
    if request.days == 0 {
        return Err(IssuanceError::InvalidValidity {
            days: 0,
            reason: "it must be at least one day",
        });
    }
    let crypto = |context| IssuanceError::crypto(context);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let not_before = now - BACKDATE_SECS;
    let wanted = now + i64::from(request.days) * 86_400;
    let issuer_der = issuer
        .certificate
        .to_der()
        .map_err(crypto("reading the issuer"))?;
    let issuer_not_after = x509_parser::parse_x509_certificate(&issuer_der)
        .map(|(_, c)| c.validity().not_after.timestamp())
        .map_err(|e| IssuanceError::BadCertificate {
            reason: e.to_string(),
        })?;
    let mut notes = Vec::new();
    let not_after = if wanted > issuer_not_after {
        notes.push(format!(
            "validity shortened from {} days to the issuer's end",
            request.days
        ));
        issuer_not_after
    } else {
        wanted
    };

    let mut emails = request.subject.emails();
    for e in request.extra_emails {
        if !emails.iter().any(|x| x.normalized() == e.normalized()) {
            emails.push(e.clone());
        }
    }
    let spki_der = request
        .public_key
        .public_key_to_der()
        .map_err(crypto("encoding the public key"))?;
    let extensions = encode(
        request.extensions,
        &EncodeContext {
            subject_emails: &emails,
            spki_der: &spki_der,
            issuer: issuer.certificate,
        },
    )?;

    let serial = random_serial()?;
    let subject = request.subject.to_x509_name()?;
    let start = Asn1Time::from_unix(not_before).map_err(crypto("setting validity"))?;
    let end = Asn1Time::from_unix(not_after).map_err(crypto("setting validity"))?;
    let mut b = X509Builder::new().map_err(crypto("building a certificate"))?;
    b.set_version(2).map_err(crypto("building a certificate"))?;
    b.set_serial_number(&serial)
        .map_err(crypto("building a certificate"))?;
    b.set_subject_name(&subject)
        .map_err(crypto("building a certificate"))?;
    b.set_issuer_name(issuer.certificate.subject_name())
        .map_err(crypto("building a certificate"))?;
    b.set_pubkey(request.public_key)
        .map_err(crypto("building a certificate"))?;
    b.set_not_before(&start)
        .map_err(crypto("setting validity"))?;
    b.set_not_after(&end).map_err(crypto("setting validity"))?;
    for ext in extensions {
        b.append_extension(ext)
            .map_err(crypto("adding an extension"))?;
    }
    Ok(Issued {
        certificate: issuer.sign_certificate(b)?,
        notes,
    })
}

/// Reads a PEM or DER certificate signing request and checks its self-signature.
pub fn parse_csr(data: &[u8]) -> Result<X509Req> {
    let csr = X509Req::from_pem(data)
        .or_else(|_| X509Req::from_der(data))
        .map_err(|e| IssuanceError::BadCertificate {
            reason: format!("not a PEM or DER certificate signing request ({e})"),
        })?;
    check_csr(&csr)?;
    Ok(csr)
}

fn check_csr(csr: &X509ReqRef) -> Result<()> {
    let key = csr
        .public_key()
        .map_err(IssuanceError::crypto("reading the CSR key"))?;
    if csr.verify(&key).unwrap_or(false) {
        Ok(())
    } else {
        Err(IssuanceError::BadCsrSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_forgiving() {
        assert_eq!(
            "RSA-3072".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::Rsa(3072)
        );
        assert_eq!(
            "nist-p256".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::P256
        );
        assert_eq!(
            "secp384r1".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::P384
        );
        assert!("rsa1024".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn serials_are_positive_and_long() {
        for _ in 0..32 {
            let bytes = random_serial().unwrap().to_bn().unwrap().to_vec();
            assert_eq!(bytes.len(), 16);
            assert!(bytes[0] & 0x80 == 0 && bytes[0] != 0);
        }
    }
}
