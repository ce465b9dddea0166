//! Reading OpenSSL extension files: sections, `@section` references, `key = value` lines and
//! each extension's values, with errors that name the line.

use crate::error::{IssuanceError, Result};
use crate::subject::EmailAddress;
use std::collections::BTreeSet;

use super::{
    AccessMethod, AkiSpec, BasicConstraints, Critical, ExtendedKeyUsage, KeyUsageBit, Policy,
    SanEntry,
};

pub(super) const EXTENSION_KEYS: &[&str] = &[
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
pub(super) struct Line<'a> {
    pub(super) number: usize,
    pub(super) key: &'a str,
    pub(super) value: &'a str,
}

#[derive(Debug)]
pub(super) struct Section<'a> {
    pub(super) name: &'a str,
    pub(super) lines: Vec<Line<'a>>,
}

pub(super) fn is_oid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn strip_comment(line: &str) -> &str {
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

pub(super) fn sections(text: &str) -> Result<Vec<Section<'_>>> {
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
pub(super) fn items(value: &str) -> Vec<&str> {
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

pub(super) fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

/// Splits `TYPE:rest` case-insensitively.
pub(super) fn typed<'a>(item: &'a str, kind: &str) -> Option<&'a str> {
    let (k, v) = item.split_once(':')?;
    k.trim().eq_ignore_ascii_case(kind).then(|| v.trim())
}

pub(super) fn check_http_uri(uri: &str, line: usize) -> Result<String> {
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

pub(super) struct Parser<'a> {
    pub(super) sections: Vec<Section<'a>>,
}

impl<'a> Parser<'a> {
    pub(super) fn section(&self, name: &str, line: usize) -> Result<&Section<'a>> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| IssuanceError::ExtensionFile {
                line,
                reason: format!("section `[{name}]` is referenced but not defined"),
            })
    }

    pub(super) fn err(line: usize, reason: impl Into<String>) -> IssuanceError {
        IssuanceError::ExtensionFile {
            line,
            reason: reason.into(),
        }
    }

    pub(super) fn basic_constraints(line: &Line<'_>) -> Result<Critical<BasicConstraints>> {
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

    pub(super) fn key_usage(line: &Line<'_>) -> Result<Critical<BTreeSet<KeyUsageBit>>> {
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

    pub(super) fn extended_key_usage(line: &Line<'_>) -> Result<Critical<Vec<ExtendedKeyUsage>>> {
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

    pub(super) fn subject_key_identifier(line: &Line<'_>) -> Result<bool> {
        match line.value.to_ascii_lowercase().as_str() {
            "hash" => Ok(true),
            "none" => Ok(false),
            other => Err(Self::err(
                line.number,
                format!("subjectKeyIdentifier `{other}`: expected `hash` or `none`"),
            )),
        }
    }

    pub(super) fn authority_key_identifier(line: &Line<'_>) -> Result<Option<AkiSpec>> {
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

    pub(super) fn san_entry(
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

    pub(super) fn subject_alt_name(&self, line: &Line<'_>) -> Result<Critical<Vec<SanEntry>>> {
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

    pub(super) fn crl_distribution_points(&self, line: &Line<'_>) -> Result<Critical<Vec<String>>> {
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

    pub(super) fn authority_info_access(line: &Line<'_>) -> Result<Vec<(AccessMethod, String)>> {
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

    pub(super) fn certificate_policies(&self, line: &Line<'_>) -> Result<Critical<Vec<Policy>>> {
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

pub(super) fn check_uri(uri: &str, line: usize) -> Result<String> {
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
