//! The expiry report: every end-entity certificate the KMS holds, per issuer and user, as
//! expired, expiring within a window, revoked or valid; and, with Gmail, where each one is (a
//! CSE key pair, a hosted S/MIME certificate, or not in Gmail), plus the certificates Gmail
//! holds for those users that the KMS does not.

use std::collections::{BTreeMap, BTreeSet};

use mailpki_gmail::GmailClient;
use mailpki_kms::Kms;
use mailpki_kms::api::SearchBody;
use mailpki_store::{Attributes, CertificateInfo, ObjectType, State};
use openssl::x509::X509;
use serde::Serialize;

use crate::error::Result;

/// One certificate's line.
#[derive(Clone, Debug, Serialize)]
pub struct ExpiryRow {
    /// The issuer's subject.
    pub issuer: String,
    /// The address the certificate is for.
    pub user: String,
    /// Its ID in the KMS; `None` for a certificate only Gmail holds.
    pub certificate_id: Option<String>,
    /// Upper-case hex.
    pub serial_number: String,
    pub not_after: String,
    /// `expired`, `expiring`, `revoked` or `valid`.
    pub status: &'static str,
    /// `cse key pair`, `hosted s/mime`, `not in gmail`, `gmail only`, or `unchecked` without
    /// Gmail.
    pub gmail: String,
}

/// The report; `gmail` adds where each certificate is for the users found (and `extra_users`).
pub async fn report(
    kms: &Kms,
    gmail: Option<&GmailClient>,
    extra_users: &[String],
    within_days: u32,
) -> Result<Vec<ExpiryRow>> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let soon = now + i64::from(within_days) * 86_400;
    let certificates = crate::batch::blocking(|| {
        kms.search(&SearchBody {
            object_type: Some(ObjectType::Certificate),
            ..SearchBody::default()
        })
    })?;
    let mut rows: Vec<ExpiryRow> = certificates
        .iter()
        .filter(|a| a.certificate_is_ca != Some(true))
        .map(|a| ExpiryRow {
            issuer: a.certificate_issuer.clone().unwrap_or_default(),
            user: user_of(a),
            certificate_id: Some(a.unique_identifier.clone()),
            serial_number: a.certificate_serial_number.clone().unwrap_or_default(),
            not_after: a.certificate_not_after.clone().unwrap_or_default(),
            status: status(a.state, unix(a.certificate_not_after.as_deref()), now, soon),
            gmail: "unchecked".to_owned(),
        })
        .collect();
    if let Some(gmail) = gmail {
        let users: BTreeSet<String> = rows
            .iter()
            .map(|r| r.user.clone())
            .filter(|u| u.contains('@'))
            .chain(extra_users.iter().map(|u| u.to_ascii_lowercase()))
            .collect();
        for user in users {
            let held = gmail_certificates(gmail, &user).await?;
            let mut known = BTreeSet::new();
            for row in rows.iter_mut().filter(|r| r.user == user) {
                known.insert(row.serial_number.clone());
                row.gmail = held
                    .get(&row.serial_number)
                    .map_or("not in gmail", |(w, _)| *w)
                    .to_owned();
            }
            for (serial, (where_, info)) in held {
                if known.contains(&serial) {
                    continue;
                }
                rows.push(ExpiryRow {
                    issuer: info.issuer,
                    user: user.clone(),
                    certificate_id: None,
                    serial_number: serial,
                    status: status(State::Active, Some(info.not_after), now, soon),
                    not_after: mailpki_store::rfc3339(info.not_after),
                    gmail: format!("gmail only ({where_})"),
                });
            }
        }
    }
    rows.sort_by(|a, b| {
        (&a.issuer, &a.user, &a.not_after).cmp(&(&b.issuer, &b.user, &b.not_after))
    });
    Ok(rows)
}

fn status(state: State, not_after: Option<i64>, now: i64, soon: i64) -> &'static str {
    match (state, not_after) {
        (State::Deactivated | State::Compromised | State::Destroyed, _) => "revoked",
        (_, Some(t)) if t <= now => "expired",
        (_, Some(t)) if t <= soon => "expiring",
        _ => "valid",
    }
}

/// The user a certificate is for: its subject's address, else the user tag mailpki put on it.
fn user_of(a: &Attributes) -> String {
    let from_subject = a.certificate_subject.as_deref().and_then(|subject| {
        subject.split([',', '/', '+']).find_map(|part| {
            let (key, value) = part.trim().split_once('=')?;
            let value = value.trim();
            (matches!(key.trim(), "emailAddress" | "E" | "CN") && value.contains('@'))
                .then(|| value.to_ascii_lowercase())
        })
    });
    from_subject
        .or_else(|| {
            a.tags.iter().find_map(|t| {
                ["mailpki:cse-user=", "mailpki:smime-user=", "mailpki:email="]
                    .iter()
                    .find_map(|p| t.strip_prefix(p))
                    .map(str::to_owned)
            })
        })
        .unwrap_or_default()
}

fn unix(rfc3339: Option<&str>) -> Option<i64> {
    let text = rfc3339?;
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// The leaf of a PEM chain Gmail returns, read as the store reads certificates.
fn leaf(pem: Option<&str>) -> Option<CertificateInfo> {
    let cert = X509::stack_from_pem(pem?.as_bytes())
        .ok()?
        .into_iter()
        .next()?;
    mailpki_store::certificate_info(&cert).ok()
}

/// Gmail's certificates for `user` by serial: CSE key pairs, then hosted S/MIME.
async fn gmail_certificates(
    gmail: &GmailClient,
    user: &str,
) -> Result<BTreeMap<String, (&'static str, CertificateInfo)>> {
    let mut out = BTreeMap::new();
    for pair in gmail.list_key_pairs(user, None).await? {
        if let Some(info) = leaf(pair.pem.as_deref()) {
            out.insert(info.serial.clone(), ("cse key pair", info));
        }
    }
    for smime in gmail.list_smime(user, user).await?.smime_info {
        if let Some(info) = leaf(smime.pem.as_deref()) {
            out.entry(info.serial.clone())
                .or_insert(("hosted s/mime", info));
        }
    }
    Ok(out)
}
