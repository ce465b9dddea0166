//! Hosted S/MIME (`users.settings.sendAs.smimeInfo`): checking a PKCS#12 as Gmail will,
//! uploading it once, and the two CSV workflows, import and rotation. Gmail is the source of
//! truth: a certificate Gmail already holds for the address is not uploaded again, so both
//! can be re-run after an interruption.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use mailpki_gmail::GmailClient;
use mailpki_gmail::types::SmimeInfo;
use mailpki_issuance::{EmailAddress, IssuanceError, LintOptions, SubjectName, lint};
use mailpki_kms::api::{CertifyBody, ExportBody, KeySource};
use mailpki_kms::{Kms, MintProfile};
use mailpki_store::{ImportFormat, parse_bundle};
use openssl::x509::X509;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use zeroize::Zeroizing;

use crate::batch::{self, FirstNotes, Observer, Outcome, Tally};
use crate::error::{Result, WorkflowError};
use crate::rows::{ReportRow, UserRow};

/// Checks a PKCS#12 for `address` the way Gmail will, and returns the request body.
pub fn smime_request(
    pkcs12: &[u8],
    password: &SecretString,
    address: &EmailAddress,
) -> Result<SmimeInfo> {
    let bundle = parse_bundle(ImportFormat::Pkcs12, pkcs12, Some(password))?;
    let mut certs = bundle.certificates.into_iter();
    let leaf = certs
        .next()
        .ok_or_else(|| WorkflowError::Input("the PKCS#12 holds no certificate".to_owned()))?;
    bundle.private_key.ok_or_else(|| {
        WorkflowError::Input(
            "the PKCS#12 holds no private key: Gmail needs it for hosted S/MIME".to_owned(),
        )
    })?;
    let chain = certs.map(|c| c.to_der()).collect::<Result<Vec<_>, _>>()?;
    let report = lint(
        &leaf.to_der()?,
        &chain,
        &LintOptions {
            expected_email: Some(address.clone()),
            at: None,
        },
    )?;
    if !report.accepted_by_google() {
        return Err(WorkflowError::WouldReject {
            address: address.to_string(),
            source: IssuanceError::NonCompliant {
                findings: report.rejections().cloned().collect(),
            },
        });
    }
    Ok(SmimeInfo {
        pkcs12: Some(URL_SAFE.encode(pkcs12)),
        encrypted_key_password: Some(password.expose_secret().to_owned()),
        ..SmimeInfo::default()
    })
}

/// Uploads, then makes it the default when asked.
pub async fn upload(
    gmail: &GmailClient,
    user: &str,
    address: &str,
    request: &SmimeInfo,
    default: bool,
) -> mailpki_gmail::Result<SmimeInfo> {
    let mut info = gmail.insert_smime(user, address, request).await?;
    if default && let Some(id) = &info.id {
        gmail.set_default_smime(user, address, id).await?;
        info.is_default = Some(true);
    }
    Ok(info)
}

/// A password for one upload's PKCS#12 only.
pub fn one_time_password() -> Result<SecretString> {
    let mut raw = [0u8; 18];
    openssl::rand::rand_bytes(&mut raw)?;
    Ok(SecretString::from(URL_SAFE.encode(raw)))
}

/// The stored certificate `id` with its key and chain as a PKCS#12 under a one-time password.
pub fn exported_pkcs12(kms: &Kms, id: &str) -> Result<(Zeroizing<Vec<u8>>, SecretString)> {
    let password = one_time_password()?;
    let pkcs12 = kms.export(
        id,
        &ExportBody {
            format: mailpki_kms::api::ExportFormat::Pkcs12,
            password: Some(mailpki_kms::api::secret(password.expose_secret())),
            legacy: false,
        },
    )?;
    Ok((pkcs12, password))
}

/// The leaf of a PEM chain, in DER.
fn first_der(pem: Option<&str>) -> Option<Vec<u8>> {
    X509::from_pem(pem?.as_bytes()).ok()?.to_der().ok()
}

fn leaf_der_of_request(request: &SmimeInfo, password: &SecretString) -> Option<Vec<u8>> {
    let der = URL_SAFE.decode(request.pkcs12.as_deref()?).ok()?;
    let bundle = parse_bundle(ImportFormat::Pkcs12, &der, Some(password)).ok()?;
    bundle.certificates.first()?.to_der().ok()
}

/// Uploads unless Gmail already holds this certificate for the address; returns its ID and
/// whether it was uploaded now.
async fn upload_once(
    gmail: &GmailClient,
    user: &str,
    address: &str,
    request: &SmimeInfo,
    password: &SecretString,
    default: bool,
) -> Result<(String, bool)> {
    let wanted = leaf_der_of_request(request, password);
    let existing = gmail.list_smime(user, address).await?.smime_info;
    if let Some(found) = existing
        .iter()
        .find(|i| wanted.is_some() && first_der(i.pem.as_deref()) == wanted)
    {
        let id = found.id.clone().unwrap_or_default();
        if default && found.is_default != Some(true) {
            gmail.set_default_smime(user, address, &id).await?;
        }
        return Ok((id, false));
    }
    let info = upload(gmail, user, address, request, default).await?;
    Ok((info.id.unwrap_or_default(), true))
}

/// `user,p12path,password[,alias]` → (address, file, password). Relative paths are read from
/// the CSV's folder when not found from the current one.
fn file_columns(
    row: &UserRow,
    csv: &Path,
) -> Result<(EmailAddress, Option<(PathBuf, SecretString)>)> {
    let alias = row
        .fields
        .get(2)
        .filter(|a| !a.is_empty())
        .map_or(row.user.as_str(), String::as_str);
    let address: EmailAddress = alias.parse().map_err(|source| WorkflowError::Invalid {
        what: "address",
        value: alias.to_owned(),
        source,
    })?;
    let file = match row.fields.first().filter(|f| !f.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            let path = if path.is_relative() && !path.exists() {
                csv.parent().map_or(path.clone(), |dir| dir.join(&path))
            } else {
                path
            };
            let password = SecretString::from(row.fields.get(1).cloned().unwrap_or_default());
            Some((path, password))
        }
        None => None,
    };
    Ok((address, file))
}

/// The CSV workflows' common settings.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The CSV, whose folder relative file paths are read from.
    pub csv: PathBuf,
    /// Users in flight at once.
    pub concurrency: usize,
}

/// `import-csv`: each row's PKCS#12 uploaded for its address, unless Gmail holds it already.
pub async fn import(
    gmail: GmailClient,
    batch: Batch,
    set_default: bool,
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    observer: &mut dyn Observer,
    report: Option<&Path>,
    stop: impl Future<Output = ()>,
) -> Result<Tally> {
    let csv = Arc::new(batch.csv);
    batch::run(rows, batch.concurrency, observer, report, stop, |row| {
        let (gmail, csv) = (gmail.clone(), Arc::clone(&csv));
        async move {
            let work = async {
                let (address, file) = file_columns(&row, &csv)?;
                let (path, password) = file
                    .ok_or_else(|| WorkflowError::Input("no PKCS#12 file in the row".to_owned()))?;
                let data = crate::input::read(&path)?;
                let request = smime_request(&data, &password, &address)?;
                let (id, uploaded) = upload_once(
                    &gmail,
                    &row.user,
                    address.as_str(),
                    &request,
                    &password,
                    set_default,
                )
                .await?;
                Ok::<_, WorkflowError>(if uploaded {
                    Outcome::Done(json!({"send_as": address.as_str(), "smime_id": id}))
                } else {
                    Outcome::Skipped(format!("Gmail already has this certificate ({id})"))
                })
            };
            work.await.unwrap_or_else(|e| Outcome::from_error(&e))
        }
    })
    .await
}

/// What rotation does for one address.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Keep(String),
    SetDefault(String),
    Upload,
}

/// Google's sample logic: keep a default valid beyond the threshold; else make the valid
/// certificate with the furthest expiration the default; else upload a new one.
fn plan(infos: &[SmimeInfo], now_ms: i64, threshold_ms: i64) -> Step {
    let expiry = |i: &SmimeInfo| {
        i.expiration
            .as_deref()
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or(0)
    };
    if let Some(default) = infos.iter().find(|i| i.is_default == Some(true))
        && expiry(default) > now_ms + threshold_ms
    {
        return Step::Keep(default.id.clone().unwrap_or_default());
    }
    match infos
        .iter()
        .filter(|i| expiry(i) > now_ms + threshold_ms)
        .max_by_key(|i| expiry(i))
    {
        Some(best) => Step::SetDefault(best.id.clone().unwrap_or_default()),
        None => Step::Upload,
    }
}

/// Where rotation's new certificates come from.
pub struct Issuing {
    pub kms: Kms,
    /// The issuer's private key ID.
    pub issuer: String,
    pub profile: MintProfile,
}

/// How `rotate` runs.
pub struct Rotation {
    /// Mint replacements with this issuer; without, each row's PKCS#12 column is used.
    pub issuing: Option<Issuing>,
    /// Certificates expiring within this many days are replaced.
    pub threshold_days: u32,
    /// Say what would be done, change nothing.
    pub dry_run: bool,
}

struct RotateShared {
    gmail: GmailClient,
    rotation: Rotation,
    csv: PathBuf,
    notes: FirstNotes,
}

/// `rotate`: every address keeps a valid default certificate (see [`plan`]); replacements
/// are minted with the issuer (and kept in the KMS) or taken from the row's PKCS#12.
pub async fn rotate(
    gmail: GmailClient,
    batch: Batch,
    rotation: Rotation,
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    observer: &mut dyn Observer,
    report: Option<&Path>,
    stop: impl Future<Output = ()>,
) -> Result<Tally> {
    if let Some(issuing) = &rotation.issuing {
        batch::check_usable(&issuing.kms, &issuing.issuer, "the issuer")?;
    }
    let shared = Arc::new(RotateShared {
        gmail,
        rotation,
        csv: batch.csv,
        notes: FirstNotes::default(),
    });
    let tally = batch::run(rows, batch.concurrency, observer, report, stop, |row| {
        let shared = Arc::clone(&shared);
        async move {
            rotate_one(&shared, &row)
                .await
                .unwrap_or_else(|e| Outcome::from_error(&e))
        }
    })
    .await?;
    shared.notes.say(observer);
    Ok(tally)
}

/// A fresh certificate for `address`: minted with the issuer, or the row's PKCS#12.
fn new_certificate(
    s: &RotateShared,
    row: &UserRow,
    address: &EmailAddress,
) -> Result<(SmimeInfo, SecretString)> {
    if let Some(issuing) = &s.rotation.issuing {
        let reply = issuing.kms.certify(&CertifyBody {
            issuer: mailpki_kms::IssuerRef {
                private_key_id: Some(issuing.issuer.clone()),
                certificate_id: None,
            },
            profile: issuing.profile.clone(),
            subject: Some(SubjectName::mailbox(address).to_string()),
            email: Some(address.to_string()),
            key: KeySource::Generate,
            id: None,
            tags: vec![format!("mailpki:smime-user={}", address.canonical())],
            pkcs12: None,
            once: false,
        })?;
        s.notes.keep(reply.notes);
        let (p12, password) = exported_pkcs12(&issuing.kms, &reply.unique_identifier)?;
        return Ok((smime_request(&p12, &password, address)?, password));
    }
    let (_, password, data) = row_pkcs12(s, row)?;
    Ok((smime_request(&data, &password, address)?, password))
}

/// The row's PKCS#12 (path, password, contents), when no issuer mints replacements.
fn row_pkcs12(
    s: &RotateShared,
    row: &UserRow,
) -> Result<(
    std::path::PathBuf,
    SecretString,
    zeroize::Zeroizing<Vec<u8>>,
)> {
    let (_, file) = file_columns(row, &s.csv)?;
    let Some((path, password)) = file else {
        return Err(WorkflowError::Input(
            "a new certificate is needed: give -i/--issuer-private-key-id or a PKCS#12 column"
                .to_owned(),
        ));
    };
    let data = crate::input::read(&path)?;
    Ok((path, password, data))
}

/// What a rotation would upload for `address`, checked as far as it can be without uploading:
/// the row's PKCS#12 is opened and matched to the address.
fn would_upload(s: &RotateShared, row: &UserRow, address: &EmailAddress) -> Result<String> {
    if let Some(issuing) = &s.rotation.issuing {
        let days = issuing.profile.days.unwrap_or(365);
        return Ok(format!(
            "mint a certificate for {address} with issuer key {} ({days} days) and upload it as the default",
            issuing.issuer
        ));
    }
    let (path, password, data) = row_pkcs12(s, row)?;
    smime_request(&data, &password, address)?;
    Ok(format!("upload {} as the default", path.display()))
}

/// Why a rotation uploads: the default's expiry, or that there is none.
fn why_upload(infos: &[SmimeInfo], now_ms: i64) -> String {
    let expiry = |i: &SmimeInfo| i.expiration.as_deref().and_then(|e| e.parse::<i64>().ok());
    match infos.iter().find(|i| i.is_default == Some(true)) {
        Some(default) => match expiry(default) {
            Some(at) if at <= now_ms => format!(
                "the default {} has expired",
                default.id.as_deref().unwrap_or_default()
            ),
            Some(at) => format!(
                "the default {} expires in {} days",
                default.id.as_deref().unwrap_or_default(),
                (at - now_ms) / 86_400_000
            ),
            None => "the default has no expiry Gmail can tell".to_owned(),
        },
        None => "no valid default certificate".to_owned(),
    }
}

async fn rotate_one(s: &RotateShared, row: &UserRow) -> Result<Outcome> {
    let (address, _) = file_columns(row, &s.csv)?;
    let infos = s
        .gmail
        .list_smime(&row.user, address.as_str())
        .await?
        .smime_info;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let threshold_ms = i64::from(s.rotation.threshold_days) * 86_400_000;
    let dry_run = s.rotation.dry_run;
    let detail = |action: &str, id: &str| json!({"send_as": address.as_str(), "action": action, "smime_id": id});
    match plan(&infos, now_ms, threshold_ms) {
        Step::Keep(id) => Ok(Outcome::Skipped(format!(
            "the default {id} is valid beyond the threshold"
        ))),
        Step::SetDefault(id) => {
            if !dry_run {
                s.gmail
                    .set_default_smime(&row.user, address.as_str(), &id)
                    .await?;
            }
            let action = if dry_run {
                "would set default"
            } else {
                "set default"
            };
            Ok(Outcome::Done(detail(action, &id)))
        }
        Step::Upload if dry_run => {
            let what = crate::batch::blocking(|| would_upload(s, row, &address))?;
            let why = why_upload(&infos, now_ms);
            Ok(Outcome::Done(detail(&format!("would {what} ({why})"), "")))
        }
        Step::Upload => {
            let (request, password) = crate::batch::blocking(|| new_certificate(s, row, &address))?;
            let (id, _) = upload_once(
                &s.gmail,
                &row.user,
                address.as_str(),
                &request,
                &password,
                false,
            )
            .await?;
            // The furthest-expiring valid certificate becomes the default: usually the new one.
            let infos = s
                .gmail
                .list_smime(&row.user, address.as_str())
                .await?
                .smime_info;
            let chosen = match plan(&infos, now_ms, threshold_ms) {
                Step::SetDefault(best) | Step::Keep(best) => best,
                Step::Upload => id,
            };
            s.gmail
                .set_default_smime(&row.user, address.as_str(), &chosen)
                .await?;
            Ok(Outcome::Done(detail("uploaded and set default", &chosen)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, days: i64, default: bool) -> SmimeInfo {
        SmimeInfo {
            id: Some(id.into()),
            expiration: Some((days * 86_400_000).to_string()),
            is_default: Some(default),
            ..SmimeInfo::default()
        }
    }

    #[test]
    fn rotation_follows_googles_sample() {
        let day = 86_400_000;
        let threshold = 30 * day;
        // A default valid well beyond the threshold is kept.
        assert_eq!(
            plan(&[info("a", 100, true)], 0, threshold),
            Step::Keep("a".into())
        );
        // No default: the furthest valid one becomes it.
        assert_eq!(
            plan(
                &[info("a", 100, false), info("b", 200, false)],
                0,
                threshold
            ),
            Step::SetDefault("b".into())
        );
        // The default expires within the threshold and nothing better exists: upload.
        assert_eq!(plan(&[info("a", 10, true)], 0, threshold), Step::Upload);
        // An expired default with a valid other: switch.
        assert_eq!(
            plan(&[info("a", -1, true), info("b", 90, false)], 0, threshold),
            Step::SetDefault("b".into())
        );
        assert_eq!(plan(&[], 0, threshold), Step::Upload);
    }
}
