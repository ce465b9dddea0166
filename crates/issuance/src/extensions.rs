//! X.509 v3 extensions: a typed description ([`ExtensionSpec`]), read from OpenSSL-style
//! extension files (`openssl x509 -extfile`, Cosmian's `--certificate-extensions`) or made by
//! the built-in profile, and encoded to DER. Unknown keys and values are errors that name the
//! line: an extension silently dropped is a certificate Google rejects later.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;

use crate::error::{IssuanceError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyUsageBit {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    KeyCertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
}

impl KeyUsageBit {
    const ALL: &'static [(Self, &'static [&'static str])] = &[
        (Self::DigitalSignature, &["digitalSignature"]),
        (
            Self::NonRepudiation,
            &["nonRepudiation", "contentCommitment"],
        ),
        (Self::KeyEncipherment, &["keyEncipherment"]),
        (Self::DataEncipherment, &["dataEncipherment"]),
        (Self::KeyAgreement, &["keyAgreement"]),
        (Self::KeyCertSign, &["keyCertSign"]),
        (Self::CrlSign, &["cRLSign"]),
        (Self::EncipherOnly, &["encipherOnly"]),
        (Self::DecipherOnly, &["decipherOnly"]),
    ];

    /// The bit's position in the KeyUsage BIT STRING.
    #[must_use]
    pub fn bit(self) -> usize {
        self as usize
    }

    fn parse(word: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(word)))
            .map(|(b, _)| *b)
    }
}

/// Extended key usages by name, or any OID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ExtendedKeyUsage {
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    TimeStamping,
    OcspSigning,
    Any,
    Oid(String),
}

impl ExtendedKeyUsage {
    #[must_use]
    pub fn oid(&self) -> &str {
        match self {
            Self::ServerAuth => "1.3.6.1.5.5.7.3.1",
            Self::ClientAuth => "1.3.6.1.5.5.7.3.2",
            Self::CodeSigning => "1.3.6.1.5.5.7.3.3",
            Self::EmailProtection => "1.3.6.1.5.5.7.3.4",
            Self::TimeStamping => "1.3.6.1.5.5.7.3.8",
            Self::OcspSigning => "1.3.6.1.5.5.7.3.9",
            Self::Any => "2.5.29.37.0",
            Self::Oid(oid) => oid,
        }
    }

    fn parse(word: &str) -> Option<Self> {
        let named = [
            ("serverAuth", Self::ServerAuth),
            ("clientAuth", Self::ClientAuth),
            ("codeSigning", Self::CodeSigning),
            ("emailProtection", Self::EmailProtection),
            ("timeStamping", Self::TimeStamping),
            ("OCSPSigning", Self::OcspSigning),
            ("anyExtendedKeyUsage", Self::Any),
        ];
        named
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(word))
            .map(|(_, e)| e)
            .or_else(|| is_oid(word).then(|| Self::Oid(word.to_owned())))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SanEntry {
    /// `email:copy`: the subject's addresses.
    EmailCopy,
    Email(String),
    Uri(String),
    Dns(String),
    Ip(IpAddr),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AccessMethod {
    CaIssuers,
    Ocsp,
}

impl AccessMethod {
    #[must_use]
    pub fn oid(self) -> &'static str {
        match self {
            Self::CaIssuers => "1.3.6.1.5.5.7.48.2",
            Self::Ocsp => "1.3.6.1.5.5.7.48.1",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub oid: String,
    /// CPS URIs (policy qualifiers).
    pub cps: Vec<String>,
}

/// How the authority key identifier is filled, with OpenSSL's meaning: `keyid` copies the
/// issuer's subject key identifier when it has one (`keyid:always` fails when it has none);
/// `issuer` adds the issuer's issuer name and serial only when no key identifier was found,
/// `issuer:always` adds them in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AkiSpec {
    /// `keyid` (false) or `keyid:always` (true).
    pub keyid: Option<bool>,
    /// `issuer` (false) or `issuer:always` (true).
    pub issuer: Option<bool>,
    /// Derive the key identifier from the issuer's public key when the issuer carries none
    /// (the built-in profile does; an OpenSSL extension file never does).
    pub derive: bool,
}

/// The extensions a certificate will carry, each with its criticality.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExtensionSpec {
    /// The order to write extensions in, by their extension-file names: a file's own order
    /// (as OpenSSL keeps it). Extensions not listed follow in the built-in order.
    pub order: Vec<&'static str>,
    pub basic_constraints: Option<Critical<BasicConstraints>>,
    pub key_usage: Option<Critical<BTreeSet<KeyUsageBit>>>,
    pub extended_key_usage: Option<Critical<Vec<ExtendedKeyUsage>>>,
    /// `subjectKeyIdentifier = hash`.
    pub subject_key_identifier: bool,
    pub authority_key_identifier: Option<AkiSpec>,
    pub subject_alt_name: Option<Critical<Vec<SanEntry>>>,
    pub crl_distribution_points: Option<Critical<Vec<String>>>,
    pub authority_info_access: Option<Vec<(AccessMethod, String)>>,
    pub certificate_policies: Option<Critical<Vec<Policy>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Critical<T> {
    pub critical: bool,
    pub value: T,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BasicConstraints {
    pub ca: bool,
    pub path_len: Option<u32>,
}

impl ExtensionSpec {
    /// What this spec would let the certificate do beyond an end-entity S/MIME certificate:
    /// act as a CA, sign certificates or CRLs, or serve a purpose other than email
    /// protection. Empty for the built-in profile and for any spec a plain `certify` right
    /// may mint.
    #[must_use]
    pub fn beyond_end_entity(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.basic_constraints.as_ref().is_some_and(|b| b.value.ca) {
            found.push("basicConstraints CA:TRUE".to_owned());
        }
        if let Some(usage) = &self.key_usage {
            for (bit, name) in [
                (KeyUsageBit::KeyCertSign, "keyUsage keyCertSign"),
                (KeyUsageBit::CrlSign, "keyUsage cRLSign"),
            ] {
                if usage.value.contains(&bit) {
                    found.push(name.to_owned());
                }
            }
        }
        match &self.extended_key_usage {
            None => found.push("no extendedKeyUsage (any purpose)".to_owned()),
            Some(eku) => {
                for usage in &eku.value {
                    if *usage != ExtendedKeyUsage::EmailProtection {
                        found.push(format!("extendedKeyUsage {}", usage.oid()));
                    }
                }
            }
        }
        found
    }

    /// Reads an OpenSSL-style extension file. With `section`, that section is used; without,
    /// the lines before any section header, else the first section holding extensions.
    pub fn parse(text: &str, section: Option<&str>) -> Result<Self> {
        let parser = Parser {
            sections: sections(text)?,
        };
        // Sections named by `@name` hold SAN entries or policies, not extensions.
        let referenced: Vec<&str> = parser
            .sections
            .iter()
            .flat_map(|s| s.lines.iter())
            .flat_map(|l| items(l.value))
            .filter_map(|item| item.strip_prefix('@').map(str::trim))
            .collect();
        let is_candidate = |s: &Section<'_>| !s.lines.is_empty() && !referenced.contains(&s.name);
        let target = match section {
            Some(name) => parser
                .sections
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| IssuanceError::ExtensionSection {
                    reason: format!(
                        "no section `[{name}]` (sections: {})",
                        parser
                            .sections
                            .iter()
                            .filter(|s| !s.name.is_empty())
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?,
            None => parser
                .sections
                .iter()
                .find(|s| is_candidate(s))
                .ok_or_else(|| IssuanceError::ExtensionSection {
                    reason: "the file defines no extension".to_owned(),
                })?,
        };
        let mut spec = Self::default();
        let mut seen: Vec<(String, usize)> = Vec::new();
        for line in &target.lines {
            let key = EXTENSION_KEYS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(line.key))
                .copied();
            let Some(key) = key else {
                let hint = if line.key.eq_ignore_ascii_case("nsCertType")
                    || line.key.eq_ignore_ascii_case("nsComment")
                {
                    format!(
                        ": {} is a Netscape extension, refused (Gmail rejects nsCertType, and the \
                         S/MIME Baseline Requirements allow no Netscape extension); delete the line",
                        line.key
                    )
                } else {
                    String::new()
                };
                return Err(Parser::err(
                    line.number,
                    format!(
                        "unknown extension `{}`{hint} (known: {})",
                        line.key,
                        EXTENSION_KEYS.join(", ")
                    ),
                ));
            };
            if let Some((_, first)) = seen.iter().find(|(k, _)| k == key) {
                return Err(Parser::err(
                    line.number,
                    format!("`{key}` is already set on line {first}"),
                ));
            }
            seen.push((key.to_owned(), line.number));
            match key {
                "basicConstraints" => {
                    spec.basic_constraints = Some(Parser::basic_constraints(line)?);
                }
                "keyUsage" => spec.key_usage = Some(Parser::key_usage(line)?),
                "extendedKeyUsage" => {
                    spec.extended_key_usage = Some(Parser::extended_key_usage(line)?);
                }
                "subjectKeyIdentifier" => {
                    spec.subject_key_identifier = Parser::subject_key_identifier(line)?;
                }
                "authorityKeyIdentifier" => {
                    spec.authority_key_identifier = Parser::authority_key_identifier(line)?;
                }
                "subjectAltName" => spec.subject_alt_name = Some(parser.subject_alt_name(line)?),
                "crlDistributionPoints" => {
                    spec.crl_distribution_points = Some(parser.crl_distribution_points(line)?);
                }
                "authorityInfoAccess" => {
                    spec.authority_info_access = Some(Parser::authority_info_access(line)?);
                }
                _ => spec.certificate_policies = Some(parser.certificate_policies(line)?),
            }
        }
        spec.follow_openssl(seen.iter().map(|(k, _)| k.as_str()));
        Ok(spec)
    }

    /// What `openssl x509 -req` (3.x) does with a file that names `keys`, in that order: it
    /// writes them in that order, then a subject key identifier and an authority key
    /// identifier from the issuer unless the file named them (`none` included).
    fn follow_openssl<'k>(&mut self, keys: impl Iterator<Item = &'k str>) {
        self.order = keys
            .filter_map(|k| EXTENSION_KEYS.iter().find(|known| **known == k).copied())
            .collect();
        if !self.order.contains(&"subjectKeyIdentifier") {
            self.subject_key_identifier = true;
        }
        if !self.order.contains(&"authorityKeyIdentifier") {
            self.authority_key_identifier = Some(AkiSpec {
                keyid: Some(false),
                issuer: Some(false),
                derive: false,
            });
        }
    }
}

mod parse;

use parse::{EXTENSION_KEYS, Parser, Section, is_oid, items, sections};

#[cfg(test)]
mod tests;
