//! Who the certificate is for: its addresses against the subject and the SAN, the S/MIME BR
//! profile its policy declares, the subject's attributes that profile needs, and the
//! commonName's source.

use crate::subject::{EmailAddress, ValidationType};
use x509_parser::certificate::X509Certificate;

use super::{
    Extensions, Generation, Linter, OID_CN, OID_EMAIL, OID_GN, OID_O, OID_ORG_ID, OID_OU,
    OID_PSEUDONYM, OID_SERIAL_NUMBER, OID_SN, SmimeProfile, subject_values,
};

pub(super) fn check_addresses(
    l: &mut Linter,
    cert: &X509Certificate<'_>,
    x: &Extensions,
    expected: Option<&EmailAddress>,
    strict: bool,
) {
    let subject_emails: Vec<String> = subject_values(cert, OID_EMAIL)
        .into_iter()
        .chain(
            subject_values(cert, OID_CN)
                .into_iter()
                .filter(|v| v.contains('@')),
        )
        .collect();
    let in_san = |e: &str| x.san_emails.iter().any(|s| s.eq_ignore_ascii_case(e));
    if !x.san_present {
        l.error(
            "google.san.missing",
            "subjectAltName is missing; Gmail matches the address there",
        );
        return;
    }
    if x.san_emails.is_empty() {
        l.error(
            "google.san.no_email",
            "subjectAltName holds no email address (rfc822Name)",
        );
    }
    for e in &subject_emails {
        if !in_san(e) {
            l.error(
                "google.san.subject_email",
                format!("the subject's address {e} is not in subjectAltName"),
            );
        }
    }
    for e in &x.san_emails {
        if e.parse::<EmailAddress>().is_err() {
            l.error(
                "google.san.invalid_email",
                format!("`{e}` in subjectAltName is not a valid address"),
            );
        }
    }
    if let Some(expected) = expected
        && !in_san(expected.as_str())
    {
        l.error(
            "google.san.user",
            format!(
                "the certificate is not for {expected}: subjectAltName has {}",
                x.san_emails.join(", ")
            ),
        );
    }
    if x.san_other > 0 {
        let message = "subjectAltName may hold only email addresses in the strict profile";
        if strict {
            l.error("sbr.san.only_email", message);
        } else {
            l.notice("sbr.san.only_email", message);
        }
    }
}

pub(super) fn declared_profile(policies: Option<&Vec<String>>) -> Option<SmimeProfile> {
    policies?.iter().find_map(|oid| {
        let arcs: Vec<u64> = oid.split('.').filter_map(|a| a.parse().ok()).collect();
        match arcs.as_slice() {
            [2, 23, 140, 1, 5, v, g] => Some(SmimeProfile {
                validation: ValidationType::from_policy_arc(*v)?,
                generation: match g {
                    1 => Generation::Legacy,
                    2 => Generation::Multipurpose,
                    3 => Generation::Strict,
                    _ => return None,
                },
            }),
            _ => None,
        }
    })
}

/// Checks the subject against the declared S/MIME BR profile; returns the profile the
/// subject's attributes fit.
pub(super) fn check_profile(
    l: &mut Linter,
    cert: &X509Certificate<'_>,
    profile: Option<SmimeProfile>,
) -> ValidationType {
    let has = |oid| !subject_values(cert, oid).is_empty();
    let only_mailbox = cert.subject().iter_attributes().all(|a| {
        let o = a.attr_type().to_id_string();
        o == OID_CN || o == OID_EMAIL || o == OID_SERIAL_NUMBER
    });
    let personal = has(OID_GN) || has(OID_SN) || has(OID_PSEUDONYM);
    let subject_fits = ValidationType::classify(only_mailbox, has(OID_O) || has(OID_OU), personal);
    // What each profile requires of the subject, beyond its allowed attributes.
    let missing_for = |v: ValidationType| -> Vec<&'static str> {
        let mut missing = Vec::new();
        if matches!(v, ValidationType::Organization | ValidationType::Sponsor) {
            if !has(OID_O) {
                missing.push("organizationName");
            }
            if !has(OID_ORG_ID) {
                missing.push("organizationIdentifier");
            }
        }
        if matches!(v, ValidationType::Sponsor | ValidationType::Individual) && !personal {
            missing.push("givenName and surname, or pseudonym");
        }
        missing
    };
    let mut fits_hint = format!(
        "this subject fits the {subject_fits} profile (2.23.140.1.5.{}.3)",
        subject_fits.policy_arc()
    );
    let missing = missing_for(subject_fits);
    if !missing.is_empty() {
        fits_hint = format!("{fits_hint}, which also needs {}", missing.join(", "));
    }
    match profile {
        None => l.error(
            "sbr.policy.missing",
            format!("no CA/B Forum S/MIME policy OID; {fits_hint}"),
        ),
        Some(p) => {
            if p.validation == ValidationType::Mailbox && !only_mailbox {
                l.error(
                    "sbr.subject.mailbox_attributes",
                    format!("the mailbox-validated profile allows only CN, emailAddress and serialNumber in the subject; {fits_hint}"),
                );
            }
            for attribute in missing_for(p.validation) {
                let rule = match attribute {
                    "organizationName" => "sbr.subject.organization_name",
                    "organizationIdentifier" => "sbr.subject.organization_identifier",
                    _ => "sbr.subject.personal_name",
                };
                l.error(
                    rule,
                    format!(
                        "the {} profile needs {attribute} in the subject",
                        p.validation
                    ),
                );
            }
        }
    }
    subject_fits
}

/// The S/MIME BR say where a commonName may come from: a mailbox address in subjectAltName;
/// for an organization its name; for a person a pseudonym or the personal name (the legacy
/// generation takes any personal name).
pub(super) fn check_common_name(
    l: &mut Linter,
    cert: &X509Certificate<'_>,
    x: &Extensions,
    validation: ValidationType,
    legacy: bool,
) {
    let has = |oid| !subject_values(cert, oid).is_empty();
    let pseudonyms = subject_values(cert, OID_PSEUDONYM);
    let organizations = subject_values(cert, OID_O);
    for cn in subject_values(cert, OID_CN) {
        let known = x.san_emails.contains(&cn)
            || match validation {
                ValidationType::Sponsor | ValidationType::Individual => {
                    (legacy && pseudonyms.is_empty())
                        || pseudonyms.contains(&cn)
                        || has(OID_GN)
                        || has(OID_SN)
                }
                ValidationType::Organization => organizations.contains(&cn),
                ValidationType::Mailbox => false,
            };
        if !known {
            l.error(
                "sbr.subject.common_name",
                format!(
                    "commonName `{cn}` must be a mailbox address in subjectAltName{}",
                    match validation {
                        ValidationType::Organization => " or the organizationName",
                        ValidationType::Sponsor | ValidationType::Individual =>
                            ", a pseudonym or the personal name",
                        ValidationType::Mailbox => "",
                    }
                ),
            );
        }
    }
}
