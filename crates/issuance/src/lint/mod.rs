//! The compliance linter: judges a certificate (and its chain) against the rules Gmail
//! enforces and the essentials of the CA/Browser Forum S/MIME Baseline Requirements, and
//! returns every violation with the rule it breaks. It is the one place these rules live: the
//! CLI refuses to mint or upload what it reports as an error.
//!
//! Severities agree with pkilint's wherever it has an opinion: `error` — Gmail rejects the
//! certificate (a `google.*` rule) or the S/MIME BR forbid it and pkilint reports an ERROR (an
//! `sbr.*` rule); `warning` — discouraged; `notice` — advice. Only what Gmail rejects stops a
//! minting or an upload: Gmail takes a BR error from the organization's own CA, and the admin
//! is told.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::public_key::PublicKey;

use crate::error::{IssuanceError, Result};
use crate::issue::MAX_VALIDITY_DAYS;
use crate::subject::{EmailAddress, ValidationType};

mod chain;
mod subject;

use chain::lint_chain;
use subject::{check_addresses, check_common_name, check_profile, declared_profile};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Notice,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `google.eku.email_protection`.
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    /// An error Gmail rejects the certificate for (not only the S/MIME BR).
    pub gmail_rejects: bool,
}

/// The CA/B Forum S/MIME generation named by the policy OID's last arc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    Legacy,
    Multipurpose,
    Strict,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SmimeProfile {
    pub validation: ValidationType,
    pub generation: Generation,
}

#[derive(Clone, Debug, Serialize)]
pub struct LintReport {
    /// The S/MIME BR profile named by the policy OID, if any.
    pub profile: Option<SmimeProfile>,
    /// The profile the subject's attributes fit.
    pub subject_fits: ValidationType,
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Nothing Gmail rejects: Gmail should accept it.
    #[must_use]
    pub fn accepted_by_google(&self) -> bool {
        self.rejections().next().is_none()
    }

    /// The errors Gmail rejects the certificate for.
    pub fn rejections(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.gmail_rejects)
    }

    /// Every error: Gmail's and the S/MIME BR's.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    #[must_use]
    pub fn has(&self, rule: &str) -> bool {
        self.findings.iter().any(|f| f.rule == rule)
    }
}

#[derive(Clone, Debug, Default)]
pub struct LintOptions {
    /// The address the certificate must serve (the user or alias it is uploaded for).
    pub expected_email: Option<EmailAddress>,
    /// Unix seconds to judge validity at; now when absent.
    pub at: Option<i64>,
}

const OID_EMAIL: &str = "1.2.840.113549.1.9.1";
const OID_CN: &str = "2.5.4.3";
const OID_ORG_ID: &str = "2.5.4.97";
const OID_O: &str = "2.5.4.10";
const OID_OU: &str = "2.5.4.11";
const OID_GN: &str = "2.5.4.42";
const OID_SN: &str = "2.5.4.4";
const OID_PSEUDONYM: &str = "2.5.4.65";
const OID_SERIAL_NUMBER: &str = "2.5.4.5";
const OID_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";
const OID_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// Signature algorithms Gmail accepts, by OID; RSA PKCS#1 ones need NULL parameters.
const GOOD_SIGNATURES: &[(&str, &str, bool)] = &[
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption", true),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption", true),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption", true),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256", false),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384", false),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512", false),
];

struct Linter {
    findings: Vec<Finding>,
}

/// Whether `rule` is one of Gmail's (`google.*`), whose errors Gmail rejects the certificate
/// for, rather than the S/MIME BR's (`sbr.*`).
#[must_use]
pub fn is_gmail_rule(rule: &str) -> bool {
    rule.starts_with("google.")
}

impl Linter {
    fn push(&mut self, rule: &'static str, severity: Severity, message: impl Into<String>) {
        self.findings.push(Finding {
            rule,
            severity,
            message: message.into(),
            gmail_rejects: severity == Severity::Error && is_gmail_rule(rule),
        });
    }

    fn error(&mut self, rule: &'static str, message: impl Into<String>) {
        self.push(rule, Severity::Error, message);
    }

    fn warning(&mut self, rule: &'static str, message: impl Into<String>) {
        self.push(rule, Severity::Warning, message);
    }

    fn notice(&mut self, rule: &'static str, message: impl Into<String>) {
        self.push(rule, Severity::Notice, message);
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| IssuanceError::BadCertificate {
            reason: e.to_string(),
        })
}

fn subject_values(cert: &X509Certificate<'_>, oid: &str) -> Vec<String> {
    cert.subject()
        .iter_attributes()
        .filter(|a| a.attr_type().to_id_string() == oid)
        .map(|a| {
            a.as_str()
                .map_or_else(|_| String::from("<unreadable>"), str::to_owned)
        })
        .collect()
}

fn uri_of(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::URI(u) => Some((*u).to_owned()),
        _ => None,
    }
}

fn is_http(uri: &str) -> bool {
    uri.to_ascii_lowercase().starts_with("http://")
}

/// The extensions of a certificate, as the checks need them.
#[derive(Default)]
struct Extensions {
    basic_ca: Option<bool>,
    key_usage: Option<(x509_parser::extensions::KeyUsage, bool)>,
    eku: Option<ExtendedKeyUsageView>,
    san_present: bool,
    san_emails: Vec<String>,
    san_other: usize,
    crl_uris: Option<Vec<String>>,
    aia: Option<Vec<(String, String)>>,
    policies: Option<Vec<String>>,
    aki_keyid: Option<bool>,
    ski_present: bool,
}

struct ExtendedKeyUsageView {
    email_protection: bool,
    client_auth_or_other: bool,
    forbidden: Vec<&'static str>,
}

fn collect_extensions(l: &mut Linter, cert: &X509Certificate<'_>) -> Extensions {
    let mut x = Extensions::default();
    let mut seen = BTreeSet::new();
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if !seen.insert(oid.clone()) {
            l.error(
                "google.extension.duplicate",
                format!("extension {oid} appears twice"),
            );
        }
        match ext.parsed_extension() {
            ParsedExtension::BasicConstraints(bc) => x.basic_ca = Some(bc.ca),
            ParsedExtension::KeyUsage(ku) => x.key_usage = Some((*ku, ext.critical)),
            ParsedExtension::ExtendedKeyUsage(e) => {
                let mut forbidden = Vec::new();
                for (set, name) in [
                    (e.server_auth, "serverAuth"),
                    (e.code_signing, "codeSigning"),
                    (e.time_stamping, "timeStamping"),
                    (e.ocsp_signing, "OCSPSigning"),
                    (e.any, "anyExtendedKeyUsage"),
                ] {
                    if set {
                        forbidden.push(name);
                    }
                }
                x.eku = Some(ExtendedKeyUsageView {
                    email_protection: e.email_protection,
                    client_auth_or_other: e.client_auth || !e.other.is_empty(),
                    forbidden,
                });
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                x.san_present = true;
                for name in &san.general_names {
                    match name {
                        GeneralName::RFC822Name(e) => x.san_emails.push((*e).to_owned()),
                        _ => x.san_other += 1,
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                x.crl_uris = Some(
                    points
                        .iter()
                        .filter_map(|p| match &p.distribution_point {
                            Some(DistributionPointName::FullName(names)) => {
                                Some(names.iter().filter_map(uri_of))
                            }
                            _ => None,
                        })
                        .flatten()
                        .collect(),
                );
            }
            ParsedExtension::AuthorityInfoAccess(a) => {
                x.aia = Some(
                    a.accessdescs
                        .iter()
                        .filter_map(|d| {
                            uri_of(&d.access_location).map(|u| (d.access_method.to_id_string(), u))
                        })
                        .collect(),
                );
            }
            ParsedExtension::CertificatePolicies(p) => {
                x.policies = Some(p.iter().map(|pi| pi.policy_id.to_id_string()).collect());
            }
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                x.aki_keyid = Some(aki.key_identifier.is_some());
                // pkilint: cabf.authority_key_identifier_has_issuer_cert, an error.
                if aki.authority_cert_issuer.is_some() || aki.authority_cert_serial.is_some() {
                    l.error(
                        "sbr.aki.keyid_only",
                        "authorityKeyIdentifier must hold only the keyIdentifier",
                    );
                }
            }
            ParsedExtension::SubjectKeyIdentifier(_) => x.ski_present = true,
            ParsedExtension::NSCertType(_) | ParsedExtension::NsCertComment(_) => {
                l.error(
                    "google.netscape_cert_type",
                    "Netscape extensions (nsCertType, nsComment) are not allowed",
                );
            }
            ParsedExtension::ParseError { error } => {
                l.error(
                    "google.extension.malformed",
                    format!("extension {oid} cannot be parsed: {error}"),
                );
            }
            _ if ext.critical => {
                l.error(
                    "google.extension.unknown_critical",
                    format!("unknown critical extension {oid}"),
                );
            }
            _ => {}
        }
    }
    x
}

fn check_serial(l: &mut Linter, cert: &X509Certificate<'_>) {
    let serial = cert.raw_serial();
    let value: Vec<u8> = serial.iter().copied().skip_while(|b| *b == 0).collect();
    if value.is_empty() || serial.first().is_some_and(|b| b & 0x80 != 0) {
        l.error(
            "google.serial.positive",
            "the serial number must be positive",
        );
    } else if serial.len() > 20 {
        l.error(
            "google.serial.length",
            format!(
                "the serial number is {} bytes; at most 20 are allowed",
                serial.len()
            ),
        );
    } else if value.len() < 8 {
        l.warning(
            "sbr.serial.entropy",
            format!(
                "the serial number has {} bytes; at least 64 random bits are required",
                value.len()
            ),
        );
    }
}

fn check_signature(l: &mut Linter, cert: &X509Certificate<'_>) {
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let Some((_, name, needs_null)) = GOOD_SIGNATURES.iter().find(|(o, _, _)| *o == sig_oid) else {
        let name = match sig_oid.as_str() {
            "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
            "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
            "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
            "1.2.840.113549.1.1.10" => "RSASSA-PSS",
            other => other,
        };
        l.error(
            "google.signature.algorithm",
            format!(
                "signed with {name}; Gmail needs SHA-256, SHA-384 or SHA-512 with RSA or ECDSA"
            ),
        );
        return;
    };
    let params_null = cert
        .signature_algorithm
        .parameters
        .as_ref()
        .is_some_and(|p| p.tag() == x509_parser::der_parser::asn1_rs::Tag::Null);
    if *needs_null && !params_null {
        l.error(
            "google.signature.null_params",
            format!("{name} must carry NULL parameters"),
        );
    }
}

/// Checks the key; returns (is RSA, is EC).
fn check_key(l: &mut Linter, cert: &X509Certificate<'_>) -> (bool, bool) {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if bits < 2048 {
                l.error(
                    "google.key.rsa_size",
                    format!("RSA-{bits} is too small; at least 2048 bits are required"),
                );
            } else if bits % 8 != 0 {
                l.error(
                    "google.key.rsa_size",
                    format!("the RSA modulus is {bits} bits, not a multiple of 8"),
                );
            }
            (true, false)
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if !matches!(
                curve.as_deref(),
                Some("1.2.840.10045.3.1.7" | "1.3.132.0.34")
            ) {
                l.error(
                    "google.key.ec_curve",
                    format!(
                        "EC curve {} is not P-256 or P-384",
                        curve.as_deref().unwrap_or("unknown")
                    ),
                );
            }
            (false, true)
        }
        _ => {
            l.error(
                "google.key.algorithm",
                format!(
                    "public key algorithm {} is not RSA or EC",
                    spki.algorithm.algorithm.to_id_string()
                ),
            );
            (false, false)
        }
    }
}

fn check_validity(l: &mut Linter, cert: &X509Certificate<'_>, now: i64) {
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if not_after <= now {
        l.error(
            "google.validity.expired",
            format!("the certificate expired on {}", cert.validity().not_after),
        );
    }
    if not_before > now {
        l.error(
            "google.validity.not_yet_valid",
            format!(
                "the certificate is not valid before {}",
                cert.validity().not_before
            ),
        );
    }
    let days = (not_after - not_before) / 86_400;
    if days > i64::from(MAX_VALIDITY_DAYS) {
        l.error(
            "google.validity.max_825_days",
            format!("the validity is {days} days; at most {MAX_VALIDITY_DAYS} are allowed"),
        );
    }
}

/// `strict`: the strict generation is declared (or none is, which is an error of its own).
fn check_usages(l: &mut Linter, x: &Extensions, is_rsa: bool, is_ec: bool, strict: bool) {
    if x.basic_ca == Some(true) {
        l.error(
            "google.basic_constraints.ca",
            "an end-entity certificate must not say CA:TRUE",
        );
    }
    match &x.key_usage {
        None => l.error("google.key_usage.missing", "keyUsage is missing"),
        Some((ku, critical)) => {
            if !critical {
                l.warning("sbr.key_usage.critical", "keyUsage must be critical");
            }
            if ku.key_cert_sign() || ku.crl_sign() {
                l.error(
                    "google.key_usage.ca_bits",
                    "keyCertSign and cRLSign belong to CA certificates",
                );
            }
            if is_rsa && !(ku.digital_signature() || ku.key_encipherment()) {
                l.error(
                    "google.key_usage.rsa",
                    "an RSA key needs digitalSignature and/or keyEncipherment",
                );
            }
            if is_ec && (ku.key_encipherment() || ku.data_encipherment()) {
                l.error(
                    "google.key_usage.ec",
                    "an EC key cannot do keyEncipherment or dataEncipherment; use keyAgreement",
                );
            }
            if is_ec && !(ku.digital_signature() || ku.key_agreement()) {
                l.error(
                    "google.key_usage.ec",
                    "an EC key needs digitalSignature and/or keyAgreement",
                );
            }
            if ku.data_encipherment() && strict {
                l.error(
                    "sbr.key_usage.data_encipherment",
                    "dataEncipherment is not allowed in the strict profile",
                );
            }
            if ku.encipher_only() || ku.decipher_only() {
                l.warning(
                    "sbr.key_usage.encipher_decipher_only",
                    "encipherOnly/decipherOnly are not allowed",
                );
            }
        }
    }
    match &x.eku {
        None => l.error(
            "google.eku.missing",
            "extendedKeyUsage is missing; Gmail needs emailProtection",
        ),
        Some(e) => {
            if !e.email_protection {
                l.error(
                    "google.eku.email_protection",
                    "extendedKeyUsage lacks emailProtection",
                );
            }
            if !e.forbidden.is_empty() {
                l.error(
                    "google.eku.forbidden",
                    format!(
                        "extendedKeyUsage must not contain {}",
                        e.forbidden.join(", ")
                    ),
                );
            }
            if e.client_auth_or_other && strict {
                l.error(
                    "sbr.eku.strict",
                    "the strict profile allows emailProtection only",
                );
            }
        }
    }
}

fn check_references(l: &mut Linter, x: &Extensions) {
    match &x.crl_uris {
        None => l.warning(
            "sbr.crl_distribution_points.missing",
            "crlDistributionPoints is missing; it must give an HTTP URL",
        ),
        Some(uris) if !uris.iter().any(|u| is_http(u)) => {
            l.error(
                "sbr.crl_distribution_points.http",
                "crlDistributionPoints must include an http:// URL",
            );
        }
        Some(_) => {}
    }
    match &x.aia {
        None => l.warning(
            "sbr.aia.missing",
            "authorityInfoAccess is missing; give caIssuers (and/or OCSP) HTTP URLs",
        ),
        Some(entries) => {
            for (method, uri) in entries {
                if (method == OID_CA_ISSUERS || method == OID_OCSP) && !is_http(uri) {
                    l.error(
                        "sbr.aia.http",
                        format!("authorityInfoAccess URL {uri} must use http://"),
                    );
                }
            }
        }
    }
    if x.aki_keyid != Some(true) {
        l.error(
            "sbr.aki.missing",
            "authorityKeyIdentifier with the issuer's key identifier is missing",
        );
    }
    if !x.ski_present {
        l.notice("google.ski.missing", "subjectKeyIdentifier is missing");
    }
}

/// Lints `leaf_der`; `chain_der` starts with the leaf's issuer.
pub fn lint(leaf_der: &[u8], chain_der: &[Vec<u8>], options: &LintOptions) -> Result<LintReport> {
    let cert = parse(leaf_der)?;
    let now = options
        .at
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
    let mut l = Linter {
        findings: Vec::new(),
    };
    if cert.version().0 != 2 {
        l.error("google.version", "the certificate is not X.509 version 3");
    }
    check_serial(&mut l, &cert);
    check_signature(&mut l, &cert);
    let (is_rsa, is_ec) = check_key(&mut l, &cert);
    check_validity(&mut l, &cert, now);
    let extensions = collect_extensions(&mut l, &cert);
    let profile = declared_profile(extensions.policies.as_ref());
    let strict = profile.is_none_or(|p| p.generation == Generation::Strict);
    check_usages(&mut l, &extensions, is_rsa, is_ec, strict);
    check_addresses(
        &mut l,
        &cert,
        &extensions,
        options.expected_email.as_ref(),
        strict,
    );
    let subject_fits = check_profile(&mut l, &cert, profile);
    check_common_name(
        &mut l,
        &cert,
        &extensions,
        profile.map_or(subject_fits, |p| p.validation),
        profile.is_some_and(|p| p.generation == Generation::Legacy),
    );
    check_references(&mut l, &extensions);
    lint_chain(
        &mut l,
        leaf_der,
        chain_der,
        cert.validity().not_after.timestamp(),
    )?;
    Ok(LintReport {
        profile,
        subject_fits,
        findings: l.findings,
    })
}
