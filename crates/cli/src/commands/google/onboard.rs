//! `mailpki google onboard`: CSE for every user of a CSV — mint, key pair, identity — on the
//! bulk engine. Each step is journaled in the store; a re-run skips finished users, completes
//! partial ones, and before uploading looks in Gmail for a key pair with the same certificate,
//! so a crash between upload and journal never uploads twice.

use std::sync::Arc;

use anyhow::{Context, Result};
use mailpki_gmail::GmailClient;
use mailpki_gmail::types::CseIdentity;
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_store::{Actor, Operation, Store};
use openssl::x509::X509;
use serde_json::json;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{block_on, client};
use crate::args::OnboardArgs;
use crate::bulk::{self, Outcome, UserRow};
use crate::commands::Ctx;
use crate::commands::google::key_pairs::build_request;
use crate::mint::{KeyChoice, Minter, store_minted};
use crate::progress::Progress;

/// What every user's task shares.
struct Shared {
    store: Store,
    actor: Actor,
    minter: Minter,
    gmail: GmailClient,
    wrapping_key: Zeroizing<Vec<u8>>,
    kacls_uri: String,
    batch: String,
    /// Key generation runs on the blocking pool, one per core.
    cpu: Semaphore,
}

pub(crate) fn run(ctx: &Ctx, args: &OnboardArgs) -> Result<()> {
    let kacls_uri = args
        .kacls_url
        .clone()
        .or_else(|| ctx.settings.google.kacls_url.clone())
        .context("no key service URL: pass --kacls-url or set [google] kacls_url")?;
    let total = crate::commands::kms::count_csv_rows(&args.csv)?;
    let gmail = client(ctx, &args.google)?;
    let (store, actor) = ctx.open_store()?;
    let wrapping_key = store
        .symmetric_key(&actor, &args.cse_key_id, Operation::Encrypt)
        .with_context(|| format!("cannot use `{}` as the CSE key", args.cse_key_id))?;
    // The key service signs and decrypts with RSA.
    let minter = crate::mint::minter_for_issuer_key(
        &store,
        &actor,
        &args.issuer_private_key_id,
        args.leaf_certificate_extensions.clone(),
        args.days,
        Some("rsa2048"),
        &ctx.settings.issuance,
        ctx.printer,
    )?;
    let batch_name = match &args.batch_id {
        Some(name) => name.clone(),
        None => std::fs::canonicalize(&args.csv)?.display().to_string(),
    };
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let shared = Arc::new(Shared {
        batch: format!("onboard:{actor}:{batch_name}"),
        store,
        actor,
        minter,
        gmail,
        wrapping_key,
        kacls_uri,
        cpu: Semaphore::new(cores),
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
    let minted =
        tokio::task::block_in_place(|| s.minter.mint(subject, KeyChoice::Generate, Some(user)))?;
    drop(permit);
    let tags = [format!("mailpki:cse-user={}", user.normalized())];
    let report = store_minted(&s.store, &s.actor, &minted, None, &tags)?;
    let id = report
        .certificate
        .context("the minted certificate was not stored")?;
    s.store
        .journal_record(&s.batch, user.as_str(), "minted", &id)?;
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
        let key_id = s.store.private_key_id_of(&s.actor, certificate_id)?;
        let key = s.store.private_key(&s.actor, &key_id, Operation::Export)?;
        let chain = s.store.chain(&s.actor, certificate_id)?;
        let request = build_request(
            certificate,
            &chain,
            &key,
            user,
            &s.wrapping_key,
            &s.kacls_uri,
        )?;
        match s.gmail.create_key_pair(user.as_str(), &request).await {
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
    s.store
        .journal_record(&s.batch, user.as_str(), "keypair", &id)?;
    let _ = s
        .store
        .add_tags(&s.actor, certificate_id, &[format!("gmail:keypair={id}")]);
    Ok(id)
}

async fn onboard_user(s: &Shared, row: &UserRow) -> Result<Outcome> {
    let user: EmailAddress = row.user.parse()?;
    let subject = match row.fields.first().filter(|f| !f.is_empty()) {
        Some(text) => text.parse::<SubjectName>()?,
        None => SubjectName::mailbox(&user),
    };
    let steps = s.store.journal_steps(&s.batch, user.as_str())?;
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
    let certificate = s
        .store
        .certificate(&s.actor, &certificate_id, Operation::Get)?;
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
    s.store
        .journal_record(&s.batch, user.as_str(), "identity", &key_pair_id)?;
    Ok(Outcome::Done(
        json!({"certificate_id": certificate_id, "key_pair_id": key_pair_id}),
    ))
}
