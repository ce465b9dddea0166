//! DER encoding of an [`ExtensionSpec`] for one certificate. Everything is encoded here, so
//! what the linter reads back is exactly what the spec said.

use openssl::asn1::{Asn1Object, Asn1OctetString};
use openssl::hash::{MessageDigest, hash};
use openssl::x509::{X509Extension, X509Ref};
use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

use crate::error::{IssuanceError, Result};
use crate::extensions::{ExtensionSpec, SanEntry};
use crate::subject::EmailAddress;

/// What encoding needs beyond the spec.
pub(crate) struct EncodeContext<'a> {
    /// The subject's addresses, for `email:copy`.
    pub(crate) subject_emails: &'a [EmailAddress],
    /// DER SubjectPublicKeyInfo of the certified key.
    pub(crate) spki_der: &'a [u8],
    pub(crate) issuer: &'a X509Ref,
}

/// `text` as an OID that DER can encode: at least two arcs, the first 0, 1 or 2, the second
/// below 40 unless the first is 2 (X.690 §8.19.4). Anything else would make the encoder panic.
pub(crate) fn encodable_oid(text: &str) -> Option<ObjectIdentifier> {
    let oid: ObjectIdentifier = text.parse().ok()?;
    let arcs = oid.components();
    let fits = arcs.len() >= 2
        && arcs[0] < 3
        && (arcs[0] == 2 || arcs[1] < 40)
        && arcs[1] <= u64::MAX - 80;
    fits.then_some(oid)
}

fn oid(text: &str) -> Result<ObjectIdentifier> {
    encodable_oid(text).ok_or_else(|| IssuanceError::ExtensionSection {
        reason: format!("`{text}` is not a valid OID"),
    })
}

pub(crate) fn extension(oid_text: &str, critical: bool, der: &[u8]) -> Result<X509Extension> {
    let object =
        Asn1Object::from_str(oid_text).map_err(IssuanceError::crypto("encoding an OID"))?;
    let value = Asn1OctetString::new_from_bytes(der)
        .map_err(IssuanceError::crypto("encoding an extension"))?;
    X509Extension::new_from_der(&object, critical, &value)
        .map_err(IssuanceError::crypto("encoding an extension"))
}

/// Key identifier: SHA-1 of the subjectPublicKey BIT STRING's bytes (RFC 5280 §4.2.1.2 (1)).
pub(crate) fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>> {
    let bits = public_key_bits(spki_der)?;
    Ok(hash(MessageDigest::sha1(), &bits)
        .map_err(IssuanceError::crypto("hashing a key"))?
        .to_vec())
}

/// The subjectPublicKey BIT STRING's bytes of a DER SubjectPublicKeyInfo (what key
/// identifiers and OCSP's issuer key hash are hashes of).
pub(crate) fn public_key_bits(spki_der: &[u8]) -> Result<Vec<u8>> {
    yasna::parse_der(spki_der, |r| {
        r.read_sequence(|r| {
            r.next().read_der()?;
            let (bytes, _) = r.next().read_bitvec_bytes()?;
            Ok(bytes)
        })
    })
    .map_err(|_| IssuanceError::BadCertificate {
        reason: "the public key is not a valid SubjectPublicKeyInfo".to_owned(),
    })
}

fn write_general_name(w: DERWriter<'_>, entry: &SanEntry) {
    match entry {
        SanEntry::Email(e) => w.write_tagged_implicit(Tag::context(1), |w| w.write_ia5_string(e)),
        SanEntry::Dns(d) => w.write_tagged_implicit(Tag::context(2), |w| w.write_ia5_string(d)),
        SanEntry::Uri(u) => w.write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(u)),
        SanEntry::Ip(ip) => {
            let bytes = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            w.write_tagged_implicit(Tag::context(7), |w| w.write_bytes(&bytes));
        }
        // Expanded before encoding.
        SanEntry::EmailCopy => {}
    }
}

fn uri_name(w: DERWriter<'_>, uri: &str) {
    w.write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(uri));
}

/// The extensions, ready for the certificate builder: in the spec's order (an extension
/// file's), the rest in a fixed order.
pub(crate) fn encode(spec: &ExtensionSpec, ctx: &EncodeContext<'_>) -> Result<Vec<X509Extension>> {
    let mut encoded = [
        ("basicConstraints", basic_constraints(spec)?),
        ("keyUsage", key_usage(spec)?),
        ("extendedKeyUsage", extended_key_usage(spec)?),
        ("subjectKeyIdentifier", subject_key_identifier(spec, ctx)?),
        (
            "authorityKeyIdentifier",
            authority_key_identifier(spec, ctx)?,
        ),
        ("subjectAltName", subject_alt_name(spec, ctx)?),
        ("crlDistributionPoints", crl_distribution_points(spec)?),
        ("authorityInfoAccess", authority_info_access(spec)?),
        ("certificatePolicies", certificate_policies(spec)?),
    ];
    let mut ordered = Vec::with_capacity(encoded.len());
    for key in &spec.order {
        if let Some((_, extension)) = encoded.iter_mut().find(|(k, _)| k == key) {
            ordered.extend(extension.take());
        }
    }
    ordered.extend(encoded.into_iter().filter_map(|(_, extension)| extension));
    Ok(ordered)
}

fn basic_constraints(spec: &ExtensionSpec) -> Result<Option<X509Extension>> {
    let Some(bc) = &spec.basic_constraints else {
        return Ok(None);
    };
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if bc.value.ca {
                w.next().write_bool(true);
            }
            if let Some(len) = bc.value.path_len {
                w.next().write_u32(len);
            }
        });
    });
    extension("2.5.29.19", bc.critical, &der).map(Some)
}

fn key_usage(spec: &ExtensionSpec) -> Result<Option<X509Extension>> {
    let Some(ku) = &spec.key_usage else {
        return Ok(None);
    };
    let mut bytes = [0u8; 2];
    let mut len = 0;
    for bit in &ku.value {
        let b = bit.bit();
        bytes[b / 8] |= 0x80 >> (b % 8);
        len = len.max(b + 1);
    }
    let der = yasna::construct_der(|w| w.write_bitvec_bytes(&bytes[..len.div_ceil(8)], len));
    extension("2.5.29.15", ku.critical, &der).map(Some)
}

fn extended_key_usage(spec: &ExtensionSpec) -> Result<Option<X509Extension>> {
    let Some(eku) = &spec.extended_key_usage else {
        return Ok(None);
    };
    let oids = eku
        .value
        .iter()
        .map(|e| oid(e.oid()))
        .collect::<Result<Vec<_>>>()?;
    let der = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for o in &oids {
                w.next().write_oid(o);
            }
        });
    });
    extension("2.5.29.37", eku.critical, &der).map(Some)
}

fn subject_key_identifier(
    spec: &ExtensionSpec,
    ctx: &EncodeContext<'_>,
) -> Result<Option<X509Extension>> {
    if !spec.subject_key_identifier {
        return Ok(None);
    }
    let ski = key_identifier(ctx.spki_der)?;
    extension(
        "2.5.29.14",
        false,
        &yasna::construct_der(|w| w.write_bytes(&ski)),
    )
    .map(Some)
}

fn authority_key_identifier(
    spec: &ExtensionSpec,
    ctx: &EncodeContext<'_>,
) -> Result<Option<X509Extension>> {
    let Some(aki) = &spec.authority_key_identifier else {
        return Ok(None);
    };
    // OpenSSL's v3_akid rules for a certificate its issuer did not sign itself.
    let issuer_key_id = match (aki.keyid, ctx.issuer.subject_key_id()) {
        (Some(_), Some(id)) if !id.as_slice().is_empty() => Some(id.as_slice().to_vec()),
        (Some(_), _) if aki.derive => {
            let spki = ctx
                .issuer
                .public_key()
                .and_then(|k| k.public_key_to_der())
                .map_err(IssuanceError::crypto("reading the issuer key"))?;
            Some(key_identifier(&spki)?)
        }
        (Some(true), _) => return Err(IssuanceError::IssuerKeyIdMissing),
        (Some(false) | None, _) => None,
    };
    let with_issuer = match aki.issuer {
        Some(true) => true,
        Some(false) => issuer_key_id.is_none(),
        None => false,
    };
    if issuer_key_id.is_none() && !with_issuer {
        // OpenSSL would write an empty extension; none at all says the same more plainly.
        return Ok(None);
    }
    let issuer_name = ctx
        .issuer
        .issuer_name()
        .to_der()
        .map_err(IssuanceError::crypto("encoding a name"))?;
    let serial = ctx
        .issuer
        .serial_number()
        .to_bn()
        .map_err(IssuanceError::crypto("reading a serial"))?
        .to_vec();
    let der = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            if let Some(id) = &issuer_key_id {
                w.next()
                    .write_tagged_implicit(Tag::context(0), |w| w.write_bytes(id));
            }
            if with_issuer {
                w.next().write_tagged_implicit(Tag::context(1), |w| {
                    w.write_sequence(|w| {
                        w.next()
                            .write_tagged(Tag::context(4), |w| w.write_der(&issuer_name));
                    });
                });
                w.next().write_tagged_implicit(Tag::context(2), |w| {
                    w.write_bigint_bytes(&serial, true);
                });
            }
        });
    });
    extension("2.5.29.35", false, &der).map(Some)
}

fn subject_alt_name(
    spec: &ExtensionSpec,
    ctx: &EncodeContext<'_>,
) -> Result<Option<X509Extension>> {
    let Some(san) = &spec.subject_alt_name else {
        return Ok(None);
    };
    let mut entries: Vec<SanEntry> = Vec::new();
    for entry in &san.value {
        let expanded: Vec<SanEntry> = match entry {
            SanEntry::EmailCopy => ctx
                .subject_emails
                .iter()
                .map(|e| SanEntry::Email(e.to_string()))
                .collect(),
            other => vec![other.clone()],
        };
        for e in expanded {
            if !entries.contains(&e) {
                entries.push(e);
            }
        }
    }
    if entries.is_empty() {
        return Err(IssuanceError::NoEmail);
    }
    let der = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for e in &entries {
                write_general_name(w.next(), e);
            }
        });
    });
    extension("2.5.29.17", san.critical, &der).map(Some)
}

fn crl_distribution_points(spec: &ExtensionSpec) -> Result<Option<X509Extension>> {
    let Some(crl) = &spec.crl_distribution_points else {
        return Ok(None);
    };
    let der = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for uri in &crl.value {
                w.next().write_sequence(|w| {
                    // distributionPoint [0] { fullName [0] GeneralNames }
                    w.next().write_tagged(Tag::context(0), |w| {
                        w.write_tagged_implicit(Tag::context(0), |w| {
                            w.write_sequence_of(|w| uri_name(w.next(), uri));
                        });
                    });
                });
            }
        });
    });
    extension("2.5.29.31", crl.critical, &der).map(Some)
}

fn authority_info_access(spec: &ExtensionSpec) -> Result<Option<X509Extension>> {
    let Some(aia) = &spec.authority_info_access else {
        return Ok(None);
    };
    let methods = aia
        .iter()
        .map(|(m, _)| oid(m.oid()))
        .collect::<Result<Vec<_>>>()?;
    let der = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for ((_, uri), method) in aia.iter().zip(&methods) {
                w.next().write_sequence(|w| {
                    w.next().write_oid(method);
                    uri_name(w.next(), uri);
                });
            }
        });
    });
    extension("1.3.6.1.5.5.7.1.1", false, &der).map(Some)
}

fn certificate_policies(spec: &ExtensionSpec) -> Result<Option<X509Extension>> {
    let Some(policies) = &spec.certificate_policies else {
        return Ok(None);
    };
    let oids = policies
        .value
        .iter()
        .map(|p| oid(&p.oid))
        .collect::<Result<Vec<_>>>()?;
    let cps_oid = oid("1.3.6.1.5.5.7.2.1")?;
    let der = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for (policy, o) in policies.value.iter().zip(&oids) {
                w.next().write_sequence(|w| {
                    w.next().write_oid(o);
                    if !policy.cps.is_empty() {
                        w.next().write_sequence_of(|w| {
                            for cps in &policy.cps {
                                w.next().write_sequence(|w| {
                                    w.next().write_oid(&cps_oid);
                                    w.next().write_ia5_string(cps);
                                });
                            }
                        });
                    }
                });
            }
        });
    });
    extension("2.5.29.32", policies.critical, &der).map(Some)
}
