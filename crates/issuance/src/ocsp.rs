//! OCSP (RFC 6960), the DER of it: reading a request's certificate IDs and nonce, and writing
//! a signed basic response (good, revoked with time and reason, unknown) or an error status.
//! The responder is the issuer itself, or a delegated responder certificate the issuer signs
//! (`OCSPSigning`, `id-pkix-ocsp-nocheck`) whose key then signs the answers, so that the
//! issuer's key is used once per responder certificate rather than per answer. The
//! responder's ID is its key hash.

// yasna's callbacks are higher-ranked over the reader's lifetime: a method path in their place
// does not type-check, the closures do.
#![allow(clippy::redundant_closure_for_method_calls)]

use openssl::hash::{MessageDigest, hash};

use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

use crate::encode::{extension, key_identifier, public_key_bits};
use crate::error::{IssuanceError, Result};
use crate::issue::{BACKDATE_SECS, Issuer, KeyAlgorithm, random_serial};
use crate::signer::SigningKey;

const SHA1: [u64; 6] = [1, 3, 14, 3, 2, 26];
const SHA256: [u64; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 1];
const NONCE: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2];
const BASIC: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1];
const NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

/// The key that signs answers and the certificate that names it: the issuer's own, or a
/// delegated responder's (then sent along in each answer for clients to check).
#[derive(Clone)]
pub struct ResponderKey {
    certificate: X509,
    key: SigningKey,
    /// SHA-1 of the responder's public key: its `ResponderID`.
    key_hash: Vec<u8>,
    /// A delegated certificate's end (Unix seconds); `None` for the issuer itself, which never
    /// needs renewing here.
    not_after: Option<i64>,
}

impl std::fmt::Debug for ResponderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponderKey")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ResponderKey {
    /// The issuer answers for itself.
    pub fn issuer(issuer: &Issuer<'_>) -> Result<Self> {
        Self::with(issuer.certificate().to_owned(), issuer.key().clone(), None)
    }

    /// A responder certificate the issuer signs now, valid for `days`: a new key of the
    /// issuer's kind (RSA-2048 or the issuer's curve), `OCSPSigning` only, `id-pkix-ocsp-nocheck`
    /// (RFC 6960 §4.2.2.2.1: clients do not ask about the responder itself), CA:FALSE.
    pub fn delegated(issuer: &Issuer<'_>, days: u32) -> Result<Self> {
        let crypto = IssuanceError::crypto;
        let algorithm = match (issuer.key().id(), issuer.key().bits()) {
            (openssl::pkey::Id::EC, bits) if bits > 256 => KeyAlgorithm::P384,
            (openssl::pkey::Id::EC, _) => KeyAlgorithm::P256,
            _ => KeyAlgorithm::Rsa(2048),
        };
        let key = algorithm.generate()?;
        let ca = issuer.certificate();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Backdated as minted leaves are, for clocks a little behind.
        let not_before = now - BACKDATE_SECS;
        let not_after = now + i64::from(days.max(1)) * 86_400;
        let mut subject = X509NameBuilder::new().map_err(crypto("naming the responder"))?;
        for entry in ca.subject_name().entries() {
            if entry.object().nid() != openssl::nid::Nid::COMMONNAME {
                subject
                    .append_entry(entry)
                    .map_err(crypto("naming the responder"))?;
            }
        }
        let ca_name = ca
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok())
            .unwrap_or_else(|| "CA".to_owned());
        let cn: String = format!("{ca_name} OCSP Responder")
            .chars()
            .take(64)
            .collect();
        subject
            .append_entry_by_nid(openssl::nid::Nid::COMMONNAME, &cn)
            .map_err(crypto("naming the responder"))?;
        let subject = subject.build();
        let build = crypto("building the responder certificate");
        let mut b = X509Builder::new().map_err(build)?;
        b.set_version(2)
            .map_err(crypto("building the responder certificate"))?;
        let serial = random_serial()?;
        b.set_serial_number(&serial)
            .map_err(crypto("building the responder certificate"))?;
        b.set_subject_name(&subject)
            .map_err(crypto("building the responder certificate"))?;
        b.set_issuer_name(ca.subject_name())
            .map_err(crypto("building the responder certificate"))?;
        b.set_pubkey(&key)
            .map_err(crypto("building the responder certificate"))?;
        let time = |t| openssl::asn1::Asn1Time::from_unix(t).map_err(crypto("setting validity"));
        let (start, end) = (time(not_before)?, time(not_after)?);
        b.set_not_before(&start)
            .map_err(crypto("setting validity"))?;
        b.set_not_after(&end).map_err(crypto("setting validity"))?;
        let ext = crypto("adding an extension");
        let extensions = [
            BasicConstraints::new().critical().build().map_err(ext)?,
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .map_err(crypto("adding an extension"))?,
            ExtendedKeyUsage::new()
                .other("OCSPSigning")
                .build()
                .map_err(crypto("adding an extension"))?,
            SubjectKeyIdentifier::new()
                .build(&b.x509v3_context(Some(ca), None))
                .map_err(crypto("adding an extension"))?,
            AuthorityKeyIdentifier::new()
                .keyid(true)
                .build(&b.x509v3_context(Some(ca), None))
                .map_err(crypto("adding an extension"))?,
            extension(NOCHECK, false, &[0x05, 0x00])?,
        ];
        for e in extensions {
            b.append_extension(e)
                .map_err(crypto("adding an extension"))?;
        }
        Self::with(issuer.sign_certificate(b)?, key.into(), Some(not_after))
    }

    fn with(certificate: X509, key: SigningKey, not_after: Option<i64>) -> Result<Self> {
        let spki = certificate
            .public_key()
            .and_then(|k| k.public_key_to_der())
            .map_err(IssuanceError::crypto("reading the responder key"))?;
        let key_hash = key_identifier(&spki)?;
        Ok(Self {
            certificate,
            key,
            key_hash,
            not_after,
        })
    }

    /// When a delegated responder certificate ends; `None` for the issuer itself.
    #[must_use]
    pub fn not_after(&self) -> Option<i64> {
        self.not_after
    }
}

/// One certificate asked about.
#[derive(Clone, Debug)]
pub struct CertId {
    /// The CertID exactly as sent, echoed in the response.
    pub der: Vec<u8>,
    /// The digest of the two hashes, when it is one the responder knows (SHA-1, SHA-256).
    pub digest: Option<HashAlgorithm>,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    /// Upper-case hex, as the store keeps serials.
    pub serial_hex: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    Sha1,
    Sha256,
}

impl HashAlgorithm {
    fn digest(self) -> MessageDigest {
        match self {
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha256 => MessageDigest::sha256(),
        }
    }
}

/// A request: the certificates asked about and the nonce extension, as sent.
#[derive(Clone, Debug)]
pub struct OcspRequest {
    pub ids: Vec<CertId>,
    /// The whole nonce `Extension`, DER, to echo.
    pub nonce: Option<Vec<u8>>,
}

/// Reads a DER `OCSPRequest`; `None` when it is not one (`malformedRequest`).
#[must_use]
pub fn parse_request(der: &[u8]) -> Option<OcspRequest> {
    let (ids, extensions) = yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            let tbs = r.next().read_sequence(|r| {
                r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_u8()))?;
                r.read_optional(|r| r.read_tagged(Tag::context(1), |r| r.read_der()))?;
                let mut ids = Vec::new();
                r.next().read_sequence_of(|r| {
                    r.read_sequence(|r| {
                        ids.push(r.next().read_der()?);
                        r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
                        Ok(())
                    })
                })?;
                let extensions =
                    r.read_optional(|r| r.read_tagged(Tag::context(2), |r| r.read_der()))?;
                Ok((ids, extensions))
            })?;
            // An optional signature: accepted, not checked (no requestor is authenticated).
            r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
            Ok(tbs)
        })
    })
    .ok()?;
    if ids.is_empty() {
        return None;
    }
    let ids = ids
        .into_iter()
        .map(parse_cert_id)
        .collect::<Option<Vec<_>>>()?;
    let nonce = extensions.and_then(|der| find_nonce(&der));
    Some(OcspRequest { ids, nonce })
}

fn parse_cert_id(der: Vec<u8>) -> Option<CertId> {
    let (oid, name_hash, key_hash, serial) = yasna::parse_der(&der, |r| {
        r.read_sequence(|r| {
            let oid = r.next().read_sequence(|r| {
                let oid = r.next().read_oid()?;
                r.read_optional(|r| r.read_null())?;
                Ok(oid)
            })?;
            let name_hash = r.next().read_bytes()?;
            let key_hash = r.next().read_bytes()?;
            let serial = r.next().read_bigint_bytes()?;
            Ok((oid, name_hash, key_hash, serial))
        })
    })
    .ok()?;
    let (serial_bytes, non_negative) = serial;
    if !non_negative || serial_bytes.len() > 20 {
        return None;
    }
    let digest = if oid == ObjectIdentifier::from_slice(&SHA1) {
        Some(HashAlgorithm::Sha1)
    } else if oid == ObjectIdentifier::from_slice(&SHA256) {
        Some(HashAlgorithm::Sha256)
    } else {
        None
    };
    let serial_hex = openssl::bn::BigNum::from_slice(&serial_bytes)
        .ok()?
        .to_hex_str()
        .ok()?
        .to_string();
    Some(CertId {
        der,
        digest,
        issuer_name_hash: name_hash,
        issuer_key_hash: key_hash,
        serial_hex,
    })
}

fn find_nonce(extensions: &[u8]) -> Option<Vec<u8>> {
    let all: Vec<Vec<u8>> =
        yasna::parse_der(extensions, |r| r.collect_sequence_of(|r| r.read_der())).ok()?;
    all.into_iter().find(|ext| {
        yasna::parse_der(ext, |r| {
            r.read_sequence(|r| {
                let oid = r.next().read_oid()?;
                r.read_optional(|r| r.read_bool())?;
                r.next().read_bytes()?;
                Ok(oid)
            })
        })
        .is_ok_and(|oid| oid == ObjectIdentifier::from_slice(&NONCE))
    })
}

/// An issuer's name and key hashed as requests may hash them (SHA-1, SHA-256), to tell which
/// issuer a request is about without hashing per request.
#[derive(Clone, Debug)]
pub struct IssuerHashes {
    sha1: (Vec<u8>, Vec<u8>),
    sha256: (Vec<u8>, Vec<u8>),
}

impl IssuerHashes {
    /// The hashes of `cert`'s subject and public key.
    pub fn of(cert: &openssl::x509::X509Ref) -> Result<Self> {
        let crypto = IssuanceError::crypto("hashing the issuer");
        let name = cert.subject_name().to_der().map_err(crypto)?;
        let spki = cert
            .public_key()
            .and_then(|k| k.public_key_to_der())
            .map_err(IssuanceError::crypto("hashing the issuer"))?;
        let bits = public_key_bits(&spki)?;
        let pair = |digest: HashAlgorithm| -> Result<(Vec<u8>, Vec<u8>)> {
            let h = |data: &[u8]| {
                hash(digest.digest(), data)
                    .map(|h| h.to_vec())
                    .map_err(IssuanceError::crypto("hashing the issuer"))
            };
            Ok((h(&name)?, h(&bits)?))
        };
        Ok(Self {
            sha1: pair(HashAlgorithm::Sha1)?,
            sha256: pair(HashAlgorithm::Sha256)?,
        })
    }

    /// Whether `id` names this issuer; never for a hash the responder does not know.
    #[must_use]
    pub fn names(&self, id: &CertId) -> bool {
        let (name, key) = match id.digest {
            Some(HashAlgorithm::Sha1) => &self.sha1,
            Some(HashAlgorithm::Sha256) => &self.sha256,
            None => return false,
        };
        *name == id.issuer_name_hash && *key == id.issuer_key_hash
    }
}

/// What the responder says of one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// Unix seconds, and the RFC 5280 reason code if there is one.
    Revoked {
        at: i64,
        reason: Option<i32>,
    },
    Unknown,
}

/// `OCSPResponse` with an error status and no body: 1 malformedRequest, 2 internalError,
/// 3 tryLater, 6 unauthorized.
#[must_use]
pub fn error_response(status: u8) -> Vec<u8> {
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_enum(i64::from(status))))
}

/// A signed successful response for `answers` (each the request's CertID and its status).
pub fn sign_response(
    responder: &ResponderKey,
    answers: &[(&CertId, CertStatus)],
    nonce: Option<&[u8]>,
    now: i64,
    next_update: i64,
) -> Result<Vec<u8>> {
    let crypto = IssuanceError::crypto;
    let key_hash = &responder.key_hash;
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_tagged(Tag::context(2), |w| w.write_bytes(key_hash));
            write_time(w.next(), now);
            w.next().write_sequence(|w| {
                for (id, status) in answers {
                    w.next().write_sequence(|w| {
                        w.next().write_der(&id.der);
                        match status {
                            CertStatus::Good => {
                                w.next()
                                    .write_tagged_implicit(Tag::context(0), |w| w.write_null());
                            }
                            CertStatus::Revoked { at, reason } => {
                                w.next().write_tagged_implicit(Tag::context(1), |w| {
                                    w.write_sequence(|w| {
                                        write_time(w.next(), *at);
                                        if let Some(code) = reason {
                                            w.next().write_tagged(Tag::context(0), |w| {
                                                w.write_enum(i64::from(*code));
                                            });
                                        }
                                    });
                                });
                            }
                            CertStatus::Unknown => {
                                w.next()
                                    .write_tagged_implicit(Tag::context(2), |w| w.write_null());
                            }
                        }
                        write_time(w.next(), now);
                        w.next()
                            .write_tagged(Tag::context(0), |w| write_time(w, next_update));
                    });
                }
            });
            if let Some(nonce) = nonce {
                w.next().write_tagged(Tag::context(1), |w| {
                    w.write_sequence(|w| w.next().write_der(nonce));
                });
            }
        });
    });
    let digest = responder.key.digest();
    let signature = responder.key.sign(digest, &tbs)?;
    responder.key.check(digest, &tbs, &signature)?;
    let algorithm = signature_algorithm(&responder.key, digest)?;
    // A delegated responder's certificate goes along: clients know only the issuer.
    let certs = if responder.not_after.is_some() {
        Some(
            responder
                .certificate
                .to_der()
                .map_err(crypto("encoding the responder certificate"))?,
        )
    } else {
        None
    };
    let basic = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next().write_der(&algorithm);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
            if let Some(cert) = &certs {
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| w.next().write_der(cert));
                });
            }
        });
    });
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_enum(0);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_oid(&ObjectIdentifier::from_slice(&BASIC));
                    w.next().write_bytes(&basic);
                });
            });
        });
    }))
}

/// The AlgorithmIdentifier of `key`'s signatures with `digest`, as certificates carry it.
fn signature_algorithm(key: &SigningKey, digest: MessageDigest) -> Result<Vec<u8>> {
    let (oid, null): (&[u64], bool) = match (key.id(), digest.type_().as_raw()) {
        (openssl::pkey::Id::RSA, _) => (&[1, 2, 840, 113_549, 1, 1, 11], true),
        (openssl::pkey::Id::EC, nid) if nid == openssl::nid::Nid::SHA384.as_raw() => {
            (&[1, 2, 840, 10_045, 4, 3, 3], false)
        }
        (openssl::pkey::Id::EC, nid) if nid == openssl::nid::Nid::SHA512.as_raw() => {
            (&[1, 2, 840, 10_045, 4, 3, 4], false)
        }
        (openssl::pkey::Id::EC, _) => (&[1, 2, 840, 10_045, 4, 3, 2], false),
        _ => {
            return Err(IssuanceError::BadCertificate {
                reason: "OCSP responses are signed with RSA or EC keys only".to_owned(),
            });
        }
    };
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_oid(&ObjectIdentifier::from_slice(oid));
            if null {
                w.next().write_null();
            }
        });
    }))
}

/// GeneralizedTime, as RFC 6960 wants (`YYYYMMDDHHMMSSZ`).
fn write_time(w: DERWriter<'_>, unix: i64) {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let mut der = vec![0x18, u8::try_from(text.len()).unwrap_or(0)];
    der.extend_from_slice(text.as_bytes());
    w.write_der(&der);
}

#[cfg(test)]
mod tests {
    /// Nested indefinite lengths (BER) made the reader crawl for minutes (found by fuzzing);
    /// requests are DER (RFC 6960), so they are refused at once.
    #[test]
    fn indefinite_lengths_are_refused_at_once() {
        let mut data = Vec::new();
        for _ in 0..64 {
            data.extend_from_slice(&[0x30, 0x80]);
        }
        assert!(super::parse_request(&data).is_none());
        let seed = include_bytes!("../../../fuzz/seeds/ocsp_request/indefinite-length-nesting");
        assert!(super::parse_request(seed).is_none());
    }
}
