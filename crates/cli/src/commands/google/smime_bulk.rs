//! `google smime import-csv` and `google smime rotate` on the bulk engine. Gmail is the source
//! of truth: a certificate Gmail already holds for the address is not uploaded again, so both
//! commands can be re-run after an interruption.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use mailpki_gmail::GmailClient;
use mailpki_gmail::types::SmimeInfo;
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::Kms;
use mailpki_kms::api::{CertifyBody, ExportBody, KeySource};
use mailpki_store::{Pkcs12Profile, build_pkcs12};
use openssl::x509::X509;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::smime::{smime_request, upload};
use super::{block_on, client};
use crate::args::{SmimeImportArgs, SmimeRotateArgs};
use crate::bulk::{self, Outcome, UserRow};
use crate::commands::Ctx;
use crate::mint::{KeyChoice, Minter};
use crate::progress::Progress;

/// `user,p12path,password[,alias]` → (address, file, password).
fn file_columns(
    row: &UserRow,
    csv: &Path,
) -> Result<(EmailAddress, Option<(PathBuf, SecretString)>)> {
    let alias = row
        .fields
        .get(2)
        .filter(|a| !a.is_empty())
        .map_or(row.user.as_str(), String::as_str);
    let address: EmailAddress = alias.parse()?;
    let file = match row.fields.first().filter(|f| !f.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            // Relative paths are read from the CSV's folder when not found from here.
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

/// The leaf of a PEM chain, in DER.
fn first_der(pem: Option<&str>) -> Option<Vec<u8>> {
    X509::from_pem(pem?.as_bytes()).ok()?.to_der().ok()
}

fn leaf_der_of_request(request: &SmimeInfo, password: &SecretString) -> Option<Vec<u8>> {
    let der = URL_SAFE.decode(request.pkcs12.as_deref()?).ok()?;
    let bundle =
        mailpki_store::parse_bundle(mailpki_store::ImportFormat::Pkcs12, &der, Some(password))
            .ok()?;
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

pub(crate) fn import_csv(ctx: &Ctx, args: &SmimeImportArgs) -> Result<()> {
    let gmail = client(ctx, &args.bulk.google)?;
    let total = crate::commands::kms::count_csv_rows(&args.csv)?;
    let rows = bulk::read_rows(&args.csv).map_err(bulk::workflow_error)?;
    let mut progress = Progress::new("import-csv", total, ctx.printer);
    let csv = Arc::new(args.csv.clone());
    let set_default = args.set_default;
    let mut watch = bulk::Watch {
        progress: &mut progress,
        printer: ctx.printer,
    };
    let tally = block_on(bulk::run(
        rows,
        args.bulk.concurrency,
        &mut watch,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
        |row| {
            let (gmail, csv) = (gmail.clone(), Arc::clone(&csv));
            async move {
                let work = async {
                    let (address, file) = file_columns(&row, &csv)?;
                    let (path, password) = file.context("no PKCS#12 file in the row")?;
                    let data = crate::files::read(&path)?;
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
                    Ok::<_, anyhow::Error>(if uploaded {
                        Outcome::Done(json!({"send_as": address.as_str(), "smime_id": id}))
                    } else {
                        Outcome::Skipped(format!("Gmail already has this certificate ({id})"))
                    })
                };
                work.await.unwrap_or_else(|e| bulk::outcome_of(&e))
            }
        },
    ))?
    .map_err(bulk::workflow_error)?;
    progress.finish();
    bulk::finish(ctx.printer, "import-csv", &tally)
}

/// What rotation does for one address.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    Keep(String),
    SetDefault(String),
    Upload,
}

/// Google's sample logic: keep a default valid beyond the threshold; else make the valid
/// certificate with the furthest expiration the default; else upload a new one.
fn plan(infos: &[SmimeInfo], now_ms: i64, threshold_ms: i64) -> Plan {
    let expiry = |i: &SmimeInfo| {
        i.expiration
            .as_deref()
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or(0)
    };
    if let Some(default) = infos.iter().find(|i| i.is_default == Some(true))
        && expiry(default) > now_ms + threshold_ms
    {
        return Plan::Keep(default.id.clone().unwrap_or_default());
    }
    match infos
        .iter()
        .filter(|i| expiry(i) > now_ms + threshold_ms)
        .max_by_key(|i| expiry(i))
    {
        Some(best) => Plan::SetDefault(best.id.clone().unwrap_or_default()),
        None => Plan::Upload,
    }
}

/// Who mints rotated certificates.
enum Issuing {
    /// In this process, with the embedded store's issuer.
    Local(Box<Minter>),
    /// The KMS server, which keeps the new certificate and key.
    Remote {
        kms: Kms,
        issuer: String,
        days: Option<u32>,
    },
}

struct RotateShared {
    gmail: GmailClient,
    minter: Option<Issuing>,
    csv: PathBuf,
    threshold_ms: i64,
    dry_run: bool,
}

/// A fresh certificate for `address`: minted with the issuer, or the row's PKCS#12.
fn new_certificate(
    s: &RotateShared,
    row: &UserRow,
    address: &EmailAddress,
) -> Result<(SmimeInfo, SecretString)> {
    if let Some(Issuing::Remote { kms, issuer, days }) = &s.minter {
        let subject = SubjectName::mailbox(address);
        let reply = kms.certify(&CertifyBody {
            issuer: mailpki_kms::IssuerRef {
                private_key_id: Some(issuer.clone()),
                certificate_id: None,
            },
            profile: crate::mint::mint_profile(&crate::mint::google_profile(None, *days, None))?,
            subject: Some(subject.to_string()),
            email: Some(address.to_string()),
            key: KeySource::Generate,
            id: None,
            tags: vec![format!("mailpki:smime-user={}", address.normalized())],
        })?;
        let password = one_time_password()?;
        let p12 = kms.export(
            &reply.unique_identifier,
            &ExportBody {
                format: "pkcs12".to_owned(),
                password: Some(mailpki_kms::api::secret(password.expose_secret())),
                legacy: false,
            },
        )?;
        return Ok((smime_request(&p12, &password, address)?, password));
    }
    if let Some(Issuing::Local(minter)) = &s.minter {
        let minted = minter.mint(
            &SubjectName::mailbox(address),
            KeyChoice::Generate,
            Some(address),
        )?;
        let key = minted.key.as_ref().context("no key was generated")?;
        let mut chain = vec![minter.issuer().certificate.clone()];
        chain.extend(minter.issuer().chain.iter().cloned());
        let password = one_time_password()?;
        let p12 = build_pkcs12(
            &minted.certificate,
            key,
            &chain,
            &password,
            Pkcs12Profile::Modern,
            address.as_str(),
        )?;
        return Ok((smime_request(&p12, &password, address)?, password));
    }
    let (_, file) = file_columns(row, &s.csv)?;
    let Some((path, password)) = file else {
        bail!("a new certificate is needed: give -i/--issuer-private-key-id or a PKCS#12 column");
    };
    let data = crate::files::read(&path)?;
    Ok((smime_request(&data, &password, address)?, password))
}

/// A password for one upload's PKCS#12 only.
fn one_time_password() -> Result<SecretString> {
    let mut raw = [0u8; 18];
    openssl::rand::rand_bytes(&mut raw)?;
    Ok(SecretString::from(URL_SAFE.encode(raw)))
}

async fn rotate_one(s: &RotateShared, row: &UserRow) -> Result<Outcome> {
    let (address, _) = file_columns(row, &s.csv)?;
    let infos = s
        .gmail
        .list_smime(&row.user, address.as_str())
        .await?
        .smime_info;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let plan = plan(&infos, now_ms, s.threshold_ms);
    let detail = |action: &str, id: &str| json!({"send_as": address.as_str(), "action": action, "smime_id": id});
    match plan {
        Plan::Keep(id) => Ok(Outcome::Skipped(format!(
            "the default {id} is valid beyond the threshold"
        ))),
        Plan::SetDefault(id) => {
            if !s.dry_run {
                s.gmail
                    .set_default_smime(&row.user, address.as_str(), &id)
                    .await?;
            }
            Ok(Outcome::Done(detail(
                if s.dry_run {
                    "would set default"
                } else {
                    "set default"
                },
                &id,
            )))
        }
        Plan::Upload if s.dry_run => {
            Ok(Outcome::Done(detail("would upload a new certificate", "")))
        }
        Plan::Upload => {
            let (request, password) =
                tokio::task::block_in_place(|| new_certificate(s, row, &address))?;
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
            let chosen = match plan_after_upload(&infos, now_ms, s.threshold_ms) {
                Some(best) => best,
                None => id.clone(),
            };
            s.gmail
                .set_default_smime(&row.user, address.as_str(), &chosen)
                .await?;
            Ok(Outcome::Done(detail("uploaded and set default", &chosen)))
        }
    }
}

fn plan_after_upload(infos: &[SmimeInfo], now_ms: i64, threshold_ms: i64) -> Option<String> {
    match plan(infos, now_ms, threshold_ms) {
        Plan::SetDefault(id) | Plan::Keep(id) => Some(id),
        Plan::Upload => None,
    }
}

pub(crate) fn rotate(ctx: &Ctx, args: &SmimeRotateArgs) -> Result<()> {
    let gmail = client(ctx, &args.bulk.google)?;
    let minter = match &args.issuer_private_key_id {
        Some(key) => match ctx.kms()? {
            Kms::Embedded(e) => Some(Issuing::Local(Box::new(
                crate::mint::minter_for_issuer_key(
                    &e.store,
                    &e.actor,
                    key,
                    None,
                    args.days,
                    None,
                    &ctx.settings.issuance,
                    ctx.printer,
                )?,
            ))),
            kms @ Kms::Remote(_) => {
                kms.attributes(key)
                    .with_context(|| format!("cannot use `{key}` as the issuer"))?;
                Some(Issuing::Remote {
                    kms,
                    issuer: key.clone(),
                    days: args.days,
                })
            }
        },
        None => None,
    };
    let shared = Arc::new(RotateShared {
        gmail,
        minter,
        csv: args.csv.clone(),
        threshold_ms: i64::from(args.threshold_days) * 86_400_000,
        dry_run: args.dry_run,
    });
    let total = crate::commands::kms::count_csv_rows(&args.csv)?;
    let rows = bulk::read_rows(&args.csv).map_err(bulk::workflow_error)?;
    let mut progress = Progress::new("rotate", total, ctx.printer);
    let mut watch = bulk::Watch {
        progress: &mut progress,
        printer: ctx.printer,
    };
    let tally = block_on(bulk::run(
        rows,
        args.bulk.concurrency,
        &mut watch,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
        |row| {
            let shared = Arc::clone(&shared);
            async move {
                rotate_one(&shared, &row)
                    .await
                    .unwrap_or_else(|e| bulk::outcome_of(&e))
            }
        },
    ))?
    .map_err(bulk::workflow_error)?;
    progress.finish();
    bulk::finish(
        ctx.printer,
        if args.dry_run {
            "rotate (dry run)"
        } else {
            "rotate"
        },
        &tally,
    )
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
            Plan::Keep("a".into())
        );
        // No default: the furthest valid one becomes it.
        assert_eq!(
            plan(
                &[info("a", 100, false), info("b", 200, false)],
                0,
                threshold
            ),
            Plan::SetDefault("b".into())
        );
        // The default expires within the threshold and nothing better exists: upload.
        assert_eq!(plan(&[info("a", 10, true)], 0, threshold), Plan::Upload);
        // An expired default with a valid other: switch.
        assert_eq!(
            plan(&[info("a", -1, true), info("b", 90, false)], 0, threshold),
            Plan::SetDefault("b".into())
        );
        assert_eq!(plan(&[], 0, threshold), Plan::Upload);
    }
}
