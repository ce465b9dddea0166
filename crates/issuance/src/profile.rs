//! The built-in Google S/MIME profile: the extensions a subscriber certificate needs for Gmail
//! (hosted S/MIME and CSE) and for the CA/Browser Forum S/MIME BR strict generation, chosen
//! from the subject and key. Used when no extension file is given.

use std::collections::BTreeSet;

use openssl::pkey::{HasPublic, Id, PKeyRef};
use serde::Serialize;

use crate::error::{IssuanceError, Result};
use crate::extensions::{
    AccessMethod, AkiSpec, BasicConstraints, Critical, ExtendedKeyUsage, ExtensionSpec,
    KeyUsageBit, Policy, SanEntry,
};
use crate::subject::{SubjectName, ValidationType};
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};

/// The CA/B Forum S/MIME policy OID for a validation type, strict generation.
#[must_use]
pub fn smime_policy_oid(validation: ValidationType) -> String {
    format!("2.23.140.1.5.{}.3", validation.policy_arc())
}

/// Where relying parties find revocation and the issuer certificate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProfileUrls {
    pub crl: Vec<String>,
    pub ca_issuers: Vec<String>,
    pub ocsp: Vec<String>,
}

impl ProfileUrls {
    /// The CRL, CA-issuers and OCSP URLs a certificate itself carries.
    pub fn of_certificate(der: &[u8]) -> Result<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
            IssuanceError::BadCertificate {
                reason: e.to_string(),
            }
        })?;
        let mut urls = Self::default();
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(points) => {
                    for point in points.iter() {
                        if let Some(DistributionPointName::FullName(names)) =
                            &point.distribution_point
                        {
                            urls.crl.extend(names.iter().filter_map(uri));
                        }
                    }
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for d in &aia.accessdescs {
                        let Some(u) = uri(&d.access_location) else {
                            continue;
                        };
                        match d.access_method.to_id_string().as_str() {
                            "1.3.6.1.5.5.7.48.2" => urls.ca_issuers.push(u),
                            "1.3.6.1.5.5.7.48.1" => urls.ocsp.push(u),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(urls)
    }
}

fn uri(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    }
}

/// The extensions of the built-in profile for `subject` with `key`.
pub fn google_smime_profile<K: HasPublic>(
    subject: &SubjectName,
    key: &PKeyRef<K>,
    urls: &ProfileUrls,
) -> ExtensionSpec {
    let key_usage: BTreeSet<KeyUsageBit> = match key.id() {
        Id::EC => [KeyUsageBit::DigitalSignature, KeyUsageBit::KeyAgreement].into(),
        _ => [KeyUsageBit::DigitalSignature, KeyUsageBit::KeyEncipherment].into(),
    };
    let mut aia: Vec<(AccessMethod, String)> = urls
        .ca_issuers
        .iter()
        .map(|u| (AccessMethod::CaIssuers, u.clone()))
        .collect();
    aia.extend(urls.ocsp.iter().map(|u| (AccessMethod::Ocsp, u.clone())));
    ExtensionSpec {
        order: Vec::new(),
        basic_constraints: Some(Critical {
            critical: true,
            value: BasicConstraints {
                ca: false,
                path_len: None,
            },
        }),
        key_usage: Some(Critical {
            critical: true,
            value: key_usage,
        }),
        extended_key_usage: Some(Critical {
            critical: false,
            value: vec![ExtendedKeyUsage::EmailProtection],
        }),
        subject_key_identifier: true,
        authority_key_identifier: Some(AkiSpec {
            keyid: Some(false),
            issuer: None,
            derive: true,
        }),
        subject_alt_name: Some(Critical {
            critical: false,
            value: vec![SanEntry::EmailCopy],
        }),
        crl_distribution_points: (!urls.crl.is_empty()).then(|| Critical {
            critical: false,
            value: urls.crl.clone(),
        }),
        authority_info_access: (!aia.is_empty()).then_some(aia),
        certificate_policies: Some(Critical {
            critical: false,
            value: vec![Policy {
                oid: smime_policy_oid(subject.validation_type()),
                cps: Vec::new(),
            }],
        }),
    }
}
