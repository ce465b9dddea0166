//! OCSP (RFC 6960), the DER of it: reading a request's certificate IDs and nonce, and writing
//! a signed basic response (good, revoked with time and reason, unknown) or an error status.
//! The responder is the issuer itself; its ID is its key hash.

// yasna's callbacks are higher-ranked over the reader's lifetime: a method path in their place
// does not type-check, the closures do.
#![allow(clippy::redundant_closure_for_method_calls)]

use openssl::hash::{MessageDigest, hash};
use openssl::sign::Signer;
use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

use crate::encode::{key_identifier, public_key_bits};
use crate::error::{IssuanceError, Result};
use crate::issue::Issuer;

const SHA1: [u64; 6] = [1, 3, 14, 3, 2, 26];
const SHA256: [u64; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 1];
const NONCE: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2];
const BASIC: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1];

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
    let (ids, extensions) = yasna::parse_ber(der, |r| {
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
    let (oid, name_hash, key_hash, serial) = yasna::parse_ber(&der, |r| {
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
        yasna::parse_ber(extensions, |r| r.collect_sequence_of(|r| r.read_der())).ok()?;
    all.into_iter().find(|ext| {
        yasna::parse_ber(ext, |r| {
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

/// Whether `id` names the issuer whose certificate is `cert` (its subject and key, hashed as
/// the request says).
#[must_use]
pub fn names_issuer(id: &CertId, cert: &openssl::x509::X509Ref) -> bool {
    let Some(digest) = id.digest else {
        return false;
    };
    let name = cert.subject_name().to_der().ok();
    let key_bits = cert
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .ok()
        .and_then(|spki| public_key_bits(&spki).ok());
    let (Some(name), Some(bits)) = (name, key_bits) else {
        return false;
    };
    let matches =
        |data: &[u8], want: &[u8]| hash(digest.digest(), data).is_ok_and(|h| h.as_ref() == want);
    matches(&name, &id.issuer_name_hash) && matches(&bits, &id.issuer_key_hash)
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
    issuer: &Issuer<'_>,
    answers: &[(&CertId, CertStatus)],
    nonce: Option<&[u8]>,
    now: i64,
    next_update: i64,
) -> Result<Vec<u8>> {
    let crypto = IssuanceError::crypto;
    let cert = issuer.certificate();
    let spki = cert
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(crypto("reading the issuer key"))?;
    let key_hash = key_identifier(&spki)?;
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_tagged(Tag::context(2), |w| w.write_bytes(&key_hash));
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
    let digest = issuer.digest();
    let mut signer = Signer::new(digest, issuer.key()).map_err(crypto("signing a response"))?;
    signer.update(&tbs).map_err(crypto("signing a response"))?;
    let signature = signer.sign_to_vec().map_err(crypto("signing a response"))?;
    let algorithm = signature_algorithm(issuer)?;
    let basic = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next().write_der(&algorithm);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
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

/// The AlgorithmIdentifier of the issuer's signatures, as its own certificates carry it.
fn signature_algorithm(issuer: &Issuer<'_>) -> Result<Vec<u8>> {
    let key = issuer.key();
    let (oid, null): (&[u64], bool) = match (key.id(), issuer.digest().type_().as_raw()) {
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
