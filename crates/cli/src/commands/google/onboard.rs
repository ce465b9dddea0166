//! `mailpki google onboard`: CSE for every user of a CSV — mint, key pair, identity — on the
//! bulk engine. Each step is journaled in the store; a re-run skips finished users, completes
//! partial ones, and before uploading looks in Gmail for a key pair with the same certificate,
//! so a crash between upload and journal never uploads twice.
//!
//! Minting, wrapping and journaling go through [`Kms`], so with a KMS server the server mints,
//! keeps the keys, journals and wraps them under the CSE key, and embedded the store does; the
//! steps are the same. Store and server calls block, so they run in `block_in_place` and other
//! users' network calls proceed meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use mailpki_gmail::types::CseIdentity;
use mailpki_gmail::{ChainValidation, GmailClient};
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::api::{CseCertificate, CseKeyPairBody};
use mailpki_kms::{Kms, MintProfile, cse};
use openssl::x509::X509;
use serde_json::json;
use tokio::sync::Semaphore;

use super::{block_on, client};
use crate::args::OnboardArgs;
use crate::bulk::{self, Outcome, UserRow};
use crate::commands::Ctx;
use crate::commands::google::key_pairs::key_pair_request;
use crate::output::Printer;
use crate::progress::Progress;

/// What every user's task shares.
struct Shared {
    kms: Kms,
    gmail: GmailClient,
    printer: Printer,
    issuer: String,
    profile: MintProfile,
    cse_key_id: String,
    kacls_uri: String,
    batch: String,
    /// Key generation runs on the blocking pool, one per core.
    cpu: Semaphore,
    /// The minting's notes (a fallback CRL URL, say) are the same for everyone: said once.
    noted: AtomicBool,
}

/// Runs a blocking store or server call without holding up the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

pub(crate) fn run(ctx: &Ctx, args: &OnboardArgs) -> Result<()> {
    let kacls_uri = args
        .kacls_url
        .clone()
        .or_else(|| ctx.settings.google.kacls_url.clone())
        .context("no key service URL: pass --kacls-url or set [google] kacls_url")?;
    let total = crate::commands::kms::count_csv_rows(&args.csv)?;
    let gmail = client(ctx, &args.google)?;
    let kms = ctx.kms()?;
    let batch_name = match &args.batch_id {
        Some(name) => name.clone(),
        None => std::fs::canonicalize(&args.csv)?.display().to_string(),
    };
    // Fail once, before the first user, when the issuer or the CSE key is not ours to use.
    for (id, what) in [
        (&args.issuer_private_key_id, "the issuer key"),
        (&args.cse_key_id, "the CSE key"),
    ] {
        kms.attributes(id)
            .with_context(|| format!("cannot use `{id}` as {what}"))?;
    }
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let shared = Arc::new(Shared {
        // The store keys the journal by user too.
        batch: format!("onboard:{batch_name}"),
        kms,
        gmail,
        printer: ctx.printer,
        issuer: args.issuer_private_key_id.clone(),
        profile: crate::mint::mint_profile(&crate::mint::google_profile(
            args.leaf_certificate_extensions.clone(),
            args.days,
            None,
        ))?,
        cse_key_id: args.cse_key_id.clone(),
        kacls_uri,
        cpu: Semaphore::new(cores),
        noted: AtomicBool::new(false),
    });
    let rows = bulk::read_rows(&args.csv)?;
    let mut progress = Progress::new("onboard", total, ctx.printer);
    let tally = block_on(bulk::run(
        rows,
        args.concurrency,
        &mut progress,
        ctx.printer,
        args.report.as_deref(),
        |row| {
            let shared = Arc::clone(&shared);
            async move {
                match onboard_user(&shared, &row).await {
                    Ok(outcome) => outcome,
                    Err(e) => Outcome::from_error(&e),
                }
            }
        },
    ))??;
    progress.finish();
    bulk::finish(ctx.printer, "onboard", &tally)
}

/// The key pair of `user` in Gmail whose certificate is `leaf`, if any.
async fn find_key_pair(gmail: &GmailClient, user: &str, leaf: &X509) -> Result<Option<String>> {
    let leaf_der = leaf.to_der()?;
    for kp in gmail.list_key_pairs(user, Some(100)).await? {
        let first = kp
            .pem
            .as_deref()
            .and_then(|pem| X509::from_pem(pem.as_bytes()).ok());
        if first.and_then(|c| c.to_der().ok()).as_deref() == Some(leaf_der.as_slice()) {
            return Ok(kp.key_pair_id);
        }
    }
    Ok(None)
}

fn is_status(error: &mailpki_gmail::GmailError, wanted: u16) -> bool {
    error.status() == Some(wanted)
}

/// Step 1: the user's certificate, minted once and journaled.
async fn mint_for(s: &Shared, user: &EmailAddress, subject: &SubjectName) -> Result<String> {
    let permit = s.cpu.acquire().await?;
    let body = cse::certify_body(&s.issuer, subject.to_string(), user, s.profile.clone());
    let reply = blocking(|| s.kms.certify(&body))?;
    drop(permit);
    if !s.noted.swap(true, Ordering::Relaxed) {
        for note in &reply.notes {
            s.printer.warn(note);
        }
    }
    let id = reply.unique_identifier;
    blocking(|| s.kms.journal_record(&s.batch, user.as_str(), "minted", &id))?;
    Ok(id)
}

/// Step 2: the key pair, found in Gmail (an earlier run uploaded it) or uploaded, journaled.
/// Only a certificate from an earlier run (`from_journal`) can be in Gmail already.
async fn upload_key_pair(
    s: &Shared,
    user: &EmailAddress,
    certificate_id: &str,
    certificate: &X509,
    from_journal: bool,
) -> Result<String> {
    let earlier = if from_journal {
        find_key_pair(&s.gmail, user.as_str(), certificate).await?
    } else {
        None
    };
    let id = if let Some(id) = earlier {
        id
    } else {
        let parts = blocking(|| {
            s.kms.cse_key_pair(&CseKeyPairBody {
                certificate: CseCertificate::Stored(certificate_id.to_owned()),
                user: user.to_string(),
                cse_key_id: s.cse_key_id.clone(),
                dry_run: false,
            })
        })?;
        let request = key_pair_request(&parts, &s.kacls_uri);
        match s
            .gmail
            .create_key_pair(user.as_str(), &request, ChainValidation::All)
            .await
        {
            Ok(created) => {
                crate::failpoint::hit("onboard-after-upload");
                created.key_pair_id.unwrap_or_default()
            }
            Err(e) if is_status(&e, 409) => find_key_pair(&s.gmail, user.as_str(), certificate)
                .await?
                .context("Gmail says the key pair exists but does not list it")?,
            Err(e) => return Err(e.into()),
        }
    };
    blocking(|| {
        s.kms
            .journal_record(&s.batch, user.as_str(), "keypair", &id)
    })?;
    let _ = blocking(|| s.kms.add_tags(certificate_id, &[cse::key_pair_tag(&id)]));
    Ok(id)
}

async fn onboard_user(s: &Shared, row: &UserRow) -> Result<Outcome> {
    let user: EmailAddress = row.user.parse()?;
    let subject = match row.fields.first().filter(|f| !f.is_empty()) {
        Some(text) => text.parse::<SubjectName>()?,
        None => SubjectName::mailbox(&user),
    };
    let steps = blocking(|| s.kms.journal_steps(&s.batch, user.as_str()))?;
    if steps.contains_key("identity") {
        return Ok(Outcome::Skipped("onboarded by an earlier run".to_owned()));
    }
    // Someone onboarded this user already (another tool, by hand): leave it alone.
    if steps.is_empty() {
        match s.gmail.get_identity(user.as_str(), user.as_str()).await {
            Ok(identity) => {
                return Ok(Outcome::Skipped(format!(
                    "already has an identity (key pair {})",
                    identity.primary_key_pair_id.unwrap_or_default()
                )));
            }
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let certificate_id = if let Some(id) = steps.get("minted") {
        id.clone()
    } else {
        mint_for(s, &user, &subject).await?
    };
    let certificate = blocking(|| s.kms.certificate_chain(&certificate_id))?.remove(0);
    let key_pair_id = if let Some(id) = steps.get("keypair") {
        id.clone()
    } else {
        let from_journal = steps.contains_key("minted");
        upload_key_pair(s, &user, &certificate_id, &certificate, from_journal).await?
    };

    // 3. The identity.
    let identity = CseIdentity {
        email_address: Some(user.to_string()),
        primary_key_pair_id: Some(key_pair_id.clone()),
        sign_and_encrypt_key_pairs: None,
    };
    match s.gmail.create_identity(user.as_str(), &identity).await {
        Ok(_) => {}
        Err(e) if is_status(&e, 409) => {}
        Err(e) => return Err(e.into()),
    }
    blocking(|| {
        s.kms
            .journal_record(&s.batch, user.as_str(), "identity", &key_pair_id)
    })?;
    Ok(Outcome::Done(
        json!({"certificate_id": certificate_id, "key_pair_id": key_pair_id}),
    ))
}
