//! X.509 v3 extensions: a typed description ([`ExtensionSpec`]), read from OpenSSL-style
//! extension files (`openssl x509 -extfile`, Cosmian's `--certificate-extensions`) or made by
//! the built-in profile, and encoded to DER. Unknown keys and values are errors that name the
//! line: an extension silently dropped is a certificate Google rejects later.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;

use crate::error::{IssuanceError, Result};
use crate::subject::EmailAddress;

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

const EXTENSION_KEYS: &[&str] = &[
    "basicConstraints",
    "keyUsage",
    "extendedKeyUsage",
    "subjectKeyIdentifier",
    "authorityKeyIdentifier",
    "subjectAltName",
    "crlDistributionPoints",
    "authorityInfoAccess",
    "certificatePolicies",
];

/// One `key = value` line.
#[derive(Debug)]
struct Line<'a> {
    number: usize,
    key: &'a str,
    value: &'a str,
}

#[derive(Debug)]
struct Section<'a> {
    name: &'a str,
    lines: Vec<Line<'a>>,
}

fn is_oid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn strip_comment(line: &str) -> &str {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' => escaped = !escaped,
            '#' if !escaped => return &line[..i],
            _ => escaped = false,
        }
    }
    line
}

fn sections(text: &str) -> Result<Vec<Section<'_>>> {
    let mut sections = vec![Section {
        name: "",
        lines: Vec::new(),
    }];
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| IssuanceError::ExtensionFile {
                    line: number,
                    reason: "a section header needs a closing `]`".to_owned(),
                })?
                .trim();
            if name.is_empty() {
                return Err(IssuanceError::ExtensionFile {
                    line: number,
                    reason: "empty section name".to_owned(),
                });
            }
            sections.push(Section {
                name,
                lines: Vec::new(),
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| IssuanceError::ExtensionFile {
                line: number,
                reason: format!("expected `name = value`, found `{line}`"),
            })?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(IssuanceError::ExtensionFile {
                line: number,
                reason: "a name is missing before `=`".to_owned(),
            });
        }
        if let Some(section) = sections.last_mut() {
            section.lines.push(Line { number, key, value });
        }
    }
    Ok(sections)
}

/// Splits a value on commas outside double quotes and trims the items.
fn items(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

/// Splits `TYPE:rest` case-insensitively.
fn typed<'a>(item: &'a str, kind: &str) -> Option<&'a str> {
    let (k, v) = item.split_once(':')?;
    k.trim().eq_ignore_ascii_case(kind).then(|| v.trim())
}

fn check_http_uri(uri: &str, line: usize) -> Result<String> {
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("ldap://"))
        || uri.chars().any(char::is_whitespace)
        || !uri.is_ascii()
    {
        return Err(IssuanceError::ExtensionFile {
            line,
            reason: format!("`{uri}` is not an http(s) or ldap URI"),
        });
    }
    Ok(uri.to_owned())
}

struct Parser<'a> {
    sections: Vec<Section<'a>>,
}

impl<'a> Parser<'a> {
    fn section(&self, name: &str, line: usize) -> Result<&Section<'a>> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| IssuanceError::ExtensionFile {
                line,
                reason: format!("section `[{name}]` is referenced but not defined"),
            })
    }

    fn err(line: usize, reason: impl Into<String>) -> IssuanceError {
        IssuanceError::ExtensionFile {
            line,
            reason: reason.into(),
        }
    }

    fn basic_constraints(line: &Line<'_>) -> Result<Critical<BasicConstraints>> {
        let mut critical = false;
        let mut ca = None;
        let mut path_len = None;
        for item in items(line.value) {
            if item.eq_ignore_ascii_case("critical") {
                critical = true;
            } else if let Some(v) = typed(item, "CA") {
                ca = Some(match v.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "y" => true,
                    "false" | "no" | "n" => false,
                    _ => {
                        return Err(Self::err(
                            line.number,
                            format!("`CA:{v}`: expected TRUE or FALSE"),
                        ));
                    }
                });
            } else if let Some(v) = typed(item, "pathlen") {
                path_len = Some(v.parse().map_err(|_| {
                    Self::err(line.number, format!("`pathlen:{v}`: expected a number"))
                })?);
            } else {
                return Err(Self::err(
                    line.number,
                    format!("unknown basicConstraints value `{item}`"),
                ));
            }
        }
        let ca =
            ca.ok_or_else(|| Self::err(line.number, "basicConstraints needs CA:TRUE or CA:FALSE"))?;
        if path_len.is_some() && !ca {
            return Err(Self::err(
                line.number,
                "pathlen only makes sense with CA:TRUE",
            ));
        }
        Ok(Critical {
            critical,
            value: BasicConstraints { ca, path_len },
        })
    }

    fn key_usage(line: &Line<'_>) -> Result<Critical<BTreeSet<KeyUsageBit>>> {
        let mut critical = false;
        let mut bits = BTreeSet::new();
        for item in items(line.value) {
            if item.eq_ignore_ascii_case("critical") {
                critical = true;
            } else {
                bits.insert(KeyUsageBit::parse(item).ok_or_else(|| {
                    Self::err(line.number, format!("unknown keyUsage value `{item}`"))
                })?);
            }
        }
        if bits.is_empty() {
            return Err(Self::err(line.number, "keyUsage lists no usage"));
        }
        Ok(Critical {
            critical,
            value: bits,
        })
    }

    fn extended_key_usage(line: &Line<'_>) -> Result<Critical<Vec<ExtendedKeyUsage>>> {
        let mut critical = false;
        let mut usages = Vec::new();
        for item in items(line.value) {
            if item.eq_ignore_ascii_case("critical") {
                critical = true;
            } else {
                let usage = ExtendedKeyUsage::parse(item).ok_or_else(|| {
                    Self::err(
                        line.number,
                        format!("unknown extendedKeyUsage value `{item}`"),
                    )
                })?;
                if !usages.contains(&usage) {
                    usages.push(usage);
                }
            }
        }
        if usages.is_empty() {
            return Err(Self::err(line.number, "extendedKeyUsage lists no usage"));
        }
        Ok(Critical {
            critical,
            value: usages,
        })
    }

    fn subject_key_identifier(line: &Line<'_>) -> Result<bool> {
        match line.value.to_ascii_lowercase().as_str() {
            "hash" => Ok(true),
            "none" => Ok(false),
            other => Err(Self::err(
                line.number,
                format!("subjectKeyIdentifier `{other}`: expected `hash` or `none`"),
            )),
        }
    }

    fn authority_key_identifier(line: &Line<'_>) -> Result<Option<AkiSpec>> {
        let mut spec = AkiSpec {
            keyid: None,
            issuer: None,
            derive: false,
        };
        for item in items(line.value) {
            match item.to_ascii_lowercase().as_str() {
                "none" => return Ok(None),
                "keyid" => spec.keyid = Some(false),
                "keyid:always" => spec.keyid = Some(true),
                "issuer" => spec.issuer = Some(false),
                "issuer:always" => spec.issuer = Some(true),
                _ => {
                    return Err(Self::err(
                        line.number,
                        format!("unknown authorityKeyIdentifier value `{item}`"),
                    ));
                }
            }
        }
        Ok(Some(spec))
    }

    fn san_entry(
        &self,
        kind: &str,
        value: &str,
        line: usize,
        out: &mut Vec<SanEntry>,
    ) -> Result<()> {
        let value = unquote(value.trim());
        let entry = match kind.to_ascii_lowercase().as_str() {
            "email" if value.eq_ignore_ascii_case("copy") => SanEntry::EmailCopy,
            "email" if value.eq_ignore_ascii_case("move") => {
                return Err(Self::err(
                    line,
                    "`email:move` is not supported: the address must stay in the subject for Gmail; use `email:copy`",
                ));
            }
            "email" => SanEntry::Email(
                value
                    .parse::<EmailAddress>()
                    .map_err(|e| Self::err(line, e.to_string()))?
                    .to_string(),
            ),
            "uri" => SanEntry::Uri(check_uri(value, line)?),
            "dns" => {
                if value.is_empty() || !value.is_ascii() || value.contains(char::is_whitespace) {
                    return Err(Self::err(line, format!("`DNS:{value}` is not a host name")));
                }
                SanEntry::Dns(value.to_owned())
            }
            "ip" => SanEntry::Ip(
                value
                    .parse()
                    .map_err(|_| Self::err(line, format!("`IP:{value}` is not an IP address")))?,
            ),
            "dirname" | "othername" | "rid" => {
                return Err(Self::err(
                    line,
                    format!("subjectAltName `{kind}` entries are not supported"),
                ));
            }
            _ => {
                return Err(Self::err(
                    line,
                    format!("unknown subjectAltName type `{kind}`"),
                ));
            }
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
        let _ = self;
        Ok(())
    }

    fn subject_alt_name(&self, line: &Line<'_>) -> Result<Critical<Vec<SanEntry>>> {
        let mut critical = false;
        let mut entries = Vec::new();
        for item in items(line.value) {
            if item.eq_ignore_ascii_case("critical") {
                critical = true;
            } else if let Some(name) = item.strip_prefix('@') {
                for l in &self.section(name.trim(), line.number)?.lines {
                    // `email.1 = a@b`, `URI.2 = ...`: the suffix only keeps keys unique.
                    let kind = l.key.split('.').next().unwrap_or(l.key);
                    self.san_entry(kind, l.value, l.number, &mut entries)?;
                }
            } else {
                let (kind, value) = item.split_once(':').ok_or_else(|| {
                    Self::err(
                        line.number,
                        format!("subjectAltName item `{item}`: expected TYPE:value"),
                    )
                })?;
                self.san_entry(kind.trim(), value, line.number, &mut entries)?;
            }
        }
        if entries.is_empty() {
            return Err(Self::err(line.number, "subjectAltName lists no name"));
        }
        Ok(Critical {
            critical,
            value: entries,
        })
    }

    fn crl_distribution_points(&self, line: &Line<'_>) -> Result<Critical<Vec<String>>> {
        let mut critical = false;
        let mut uris = Vec::new();
        for item in items(line.value) {
            if item.eq_ignore_ascii_case("critical") {
                critical = true;
            } else if let Some(name) = item.strip_prefix('@') {
                for l in &self.section(name.trim(), line.number)?.lines {
                    if !l.key.eq_ignore_ascii_case("fullname") {
                        return Err(Self::err(
                            l.number,
                            format!("unknown distribution point field `{}`", l.key),
                        ));
                    }
                    let uri = typed(l.value, "URI").ok_or_else(|| {
                        Self::err(l.number, "expected `fullname = URI:http://...`")
                    })?;
                    uris.push(check_http_uri(uri, l.number)?);
                }
            } else {
                let uri = typed(item, "URI").ok_or_else(|| {
                    Self::err(
                        line.number,
                        format!("crlDistributionPoints item `{item}`: expected URI:http://..."),
                    )
                })?;
                uris.push(check_http_uri(uri, line.number)?);
            }
        }
        if uris.is_empty() {
            return Err(Self::err(line.number, "crlDistributionPoints lists no URI"));
        }
        Ok(Critical {
            critical,
            value: uris,
        })
    }

    fn authority_info_access(line: &Line<'_>) -> Result<Vec<(AccessMethod, String)>> {
        let mut out = Vec::new();
        for item in items(line.value) {
            let (method, location) = item.split_once(';').ok_or_else(|| {
                Self::err(line.number, format!("authorityInfoAccess item `{item}`: expected caIssuers;URI:... or OCSP;URI:..."))
            })?;
            let method = match method.trim().to_ascii_lowercase().as_str() {
                "caissuers" => AccessMethod::CaIssuers,
                "ocsp" => AccessMethod::Ocsp,
                other => {
                    return Err(Self::err(
                        line.number,
                        format!("unknown access method `{other}`"),
                    ));
                }
            };
            let uri = typed(location.trim(), "URI").ok_or_else(|| {
                Self::err(
                    line.number,
                    format!("`{location}`: expected URI:http://..."),
                )
            })?;
            out.push((method, check_http_uri(uri, line.number)?));
        }
        if out.is_empty() {
            return Err(Self::err(line.number, "authorityInfoAccess lists nothing"));
        }
        Ok(out)
    }

    fn certificate_policies(&self, line: &Line<'_>) -> Result<Critical<Vec<Policy>>> {
        let mut critical = false;
        let mut policies = Vec::new();
        for item in items(line.value) {
            if item.eq_ignore_ascii_case("critical") {
                critical = true;
            } else if item.eq_ignore_ascii_case("ia5org") {
                // An OpenSSL encoding switch for user notices, which are not supported anyway.
            } else if let Some(name) = item.strip_prefix('@') {
                let section = self.section(name.trim(), line.number)?;
                let mut oid = None;
                let mut cps = Vec::new();
                for l in &section.lines {
                    let key = l.key.split('.').next().unwrap_or(l.key);
                    if key.eq_ignore_ascii_case("policyIdentifier") {
                        if !is_oid(l.value) {
                            return Err(Self::err(
                                l.number,
                                format!("`{}` is not an OID", l.value),
                            ));
                        }
                        oid = Some(l.value.to_owned());
                    } else if key.eq_ignore_ascii_case("CPS") {
                        cps.push(check_http_uri(unquote(l.value), l.number)?);
                    } else {
                        return Err(Self::err(
                            l.number,
                            format!(
                                "unsupported policy field `{}` (policyIdentifier and CPS are)",
                                l.key
                            ),
                        ));
                    }
                }
                let oid = oid.ok_or_else(|| {
                    Self::err(
                        line.number,
                        format!("section `[{name}]` has no policyIdentifier"),
                    )
                })?;
                policies.push(Policy { oid, cps });
            } else if is_oid(item) {
                policies.push(Policy {
                    oid: item.to_owned(),
                    cps: Vec::new(),
                });
            } else {
                return Err(Self::err(
                    line.number,
                    format!("certificatePolicies item `{item}`: expected an OID or @section"),
                ));
            }
        }
        if policies.is_empty() {
            return Err(Self::err(
                line.number,
                "certificatePolicies lists no policy",
            ));
        }
        Ok(Critical {
            critical,
            value: policies,
        })
    }
}

fn check_uri(uri: &str, line: usize) -> Result<String> {
    if uri.is_empty()
        || !uri.contains(':')
        || uri.chars().any(char::is_whitespace)
        || !uri.is_ascii()
    {
        return Err(IssuanceError::ExtensionFile {
            line,
            reason: format!("`{uri}` is not a URI"),
        });
    }
    Ok(uri.to_owned())
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
                    ": Netscape extensions are refused (Gmail rejects nsCertType)"
                } else {
                    ""
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

#[cfg(test)]
mod tests {
    use super::*;

    const USER_EXT: &str = include_str!("../../../config/user.ext");

    #[test]
    fn the_example_user_ext_parses() {
        let spec = ExtensionSpec::parse(USER_EXT, None).unwrap();
        assert!(!spec.basic_constraints.as_ref().unwrap().value.ca);
        assert!(spec.key_usage.as_ref().unwrap().critical);
        assert_eq!(
            spec.extended_key_usage.as_ref().unwrap().value,
            [ExtendedKeyUsage::EmailProtection]
        );
        assert_eq!(
            spec.subject_alt_name.as_ref().unwrap().value,
            [SanEntry::EmailCopy]
        );
        assert_eq!(
            spec.certificate_policies.as_ref().unwrap().value[0].oid,
            "2.23.140.1.5.1.3"
        );
        assert!(spec.subject_key_identifier);
    }

    #[test]
    fn identifiers_default_as_openssl_adds_them_and_the_file_order_is_kept() {
        let spec = ExtensionSpec::parse(
            "extendedKeyUsage=emailProtection\nkeyUsage=critical,digitalSignature\n",
            None,
        )
        .unwrap();
        assert_eq!(spec.order, ["extendedKeyUsage", "keyUsage"]);
        assert!(spec.subject_key_identifier);
        let aki = spec.authority_key_identifier.unwrap();
        assert_eq!((aki.keyid, aki.issuer), (Some(false), Some(false)));
        let none = ExtensionSpec::parse(
            "keyUsage=digitalSignature\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n",
            None,
        )
        .unwrap();
        assert!(!none.subject_key_identifier);
        assert!(none.authority_key_identifier.is_none());
    }

    #[test]
    fn cosmian_style_file_with_sections_and_references() {
        let text = "\
# Cosmian's example
[ v3_ca ]
keyUsage=nonRepudiation,digitalSignature,dataEncipherment,keyEncipherment
extendedKeyUsage=emailProtection
crlDistributionPoints=URI:http://crl.example.com/ca.crl
subjectAltName = critical, @alt
certificatePolicies = @pol

[alt]
email.1 = copy
email.2 = other@example.com
URI.1 = https://example.com/me

[pol]
policyIdentifier = 2.23.140.1.5.2.3
CPS.1 = \"http://example.com/cps\"
";
        let spec = ExtensionSpec::parse(text, None).unwrap();
        let san = spec.subject_alt_name.unwrap();
        assert!(san.critical);
        assert_eq!(san.value.len(), 3);
        let pol = &spec.certificate_policies.unwrap().value[0];
        assert_eq!(pol.cps, ["http://example.com/cps"]);
        assert_eq!(spec.key_usage.unwrap().value.len(), 4);
    }

    #[test]
    fn whitespace_case_and_flat_lines_are_tolerated() {
        let spec = ExtensionSpec::parse(
            "  KEYUSAGE =   Critical ,DigitalSignature  # trailing comment\nbasicconstraints=ca:false\n",
            None,
        )
        .unwrap();
        assert!(spec.key_usage.unwrap().critical);
        assert!(!spec.basic_constraints.unwrap().value.ca);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "keyUsage = digitalSignature\nfooBar = 1\n",
                2,
                "unknown extension `fooBar`",
            ),
            (
                "keyUsage = digitalSignatur\n",
                1,
                "unknown keyUsage value `digitalSignatur`",
            ),
            (
                "\n\nextendedKeyUsage = emailProtection, sneaky\n",
                3,
                "unknown extendedKeyUsage value",
            ),
            ("basicConstraints = CA:maybe\n", 1, "expected TRUE or FALSE"),
            ("subjectAltName = email:not-an-address\n", 1, "has no `@`"),
            ("subjectAltName = @missing\n", 1, "not defined"),
            (
                "crlDistributionPoints = URI:file:///etc/passwd\n",
                1,
                "not an http(s) or ldap URI",
            ),
            (
                "authorityInfoAccess = caIssuers:http://x\n",
                1,
                "expected caIssuers;URI",
            ),
            (
                "keyUsage = digitalSignature\nkeyUsage = keyEncipherment\n",
                2,
                "already set on line 1",
            ),
            ("nsCertType = email\n", 1, "Netscape"),
            ("certificatePolicies = hello\n", 1, "expected an OID"),
            ("keyUsage digitalSignature\n", 1, "expected `name = value`"),
        ];
        for (text, line, expected) in cases {
            match ExtensionSpec::parse(text, None) {
                Err(IssuanceError::ExtensionFile { line: l, reason }) => {
                    assert_eq!(l, line, "{text:?}: {reason}");
                    assert!(reason.contains(expected), "{text:?}: {reason}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn sections_can_be_chosen() {
        let text = "[a]\nkeyUsage = digitalSignature\n[b]\nkeyUsage = keyEncipherment\n";
        let b = ExtensionSpec::parse(text, Some("b")).unwrap();
        assert!(
            b.key_usage
                .unwrap()
                .value
                .contains(&KeyUsageBit::KeyEncipherment)
        );
        let err = ExtensionSpec::parse(text, Some("c"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no section `[c]` (sections: a, b)"), "{err}");
        assert!(ExtensionSpec::parse("# nothing\n", None).is_err());
    }
}
