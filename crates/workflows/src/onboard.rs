//! Onboarding to CSE: for every user of a CSV, mint, key pair, identity, on the batch engine.
//! Each step is journaled in the store; a re-run skips finished users, completes partial ones,
//! and before uploading looks in Gmail for a key pair with the same certificate, so a crash
//! between upload and journal never uploads twice.
//!
//! Minting, wrapping and journaling go through [`Kms`], so with a KMS server the server mints,
//! keeps the keys, journals and wraps them under the CSE key, and embedded the store does; the
//! steps are the same. Store and server calls block, so they run in `block_in_place` and other
//! users' network calls proceed meanwhile (the runtime must be multi-threaded).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use mailpki_gmail::types::CseIdentity;
use mailpki_gmail::{ChainValidation, GmailClient, GmailError};
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::api::{CseCertificate, CseKeyPairBody};
use mailpki_kms::{Kms, MintProfile, cse};
use openssl::x509::X509;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::batch::{self, FirstNotes, Observer, Outcome, Tally, blocking};
use crate::cse::{find_key_pair, key_pair_request};
use crate::error::{Result, WorkflowError};
use crate::rows::{ReportRow, UserRow};

/// What an onboarding does for each user.
#[derive(Clone)]
pub struct Plan {
    /// The issuer's private key ID in the KMS.
    pub issuer: String,
    /// How certificates are minted (RSA-2048 unless the profile says otherwise).
    pub profile: MintProfile,
    /// The symmetric key the users' private keys are wrapped under for the key service.
    pub cse_key_id: String,
    /// The key service's URL, written into each key pair.
    pub kacls_uri: String,
    /// The batch's name: a run with the same name resumes (the CLI uses the CSV's path).
    pub batch: String,
    /// Users in flight at once.
    pub concurrency: usize,
    /// Run right after each key-pair upload (the CLI's crash test hook).
    pub after_upload: Option<AfterUpload>,
    /// Check each user (Gmail access, what is done already) and say what would be done,
    /// changing nothing.
    pub dry_run: bool,
}

/// A test hook: a callback run right after each key-pair upload (the CLI's failpoint).
pub type AfterUpload = Arc<dyn Fn() + Send + Sync>;

/// What every user's task shares.
struct Shared {
    kms: Kms,
    gmail: GmailClient,
    plan: Plan,
    /// Key generation runs on the blocking pool, one per core.
    cpu: Semaphore,
    notes: FirstNotes,
}

/// Onboards every user of `rows`: the [`Plan`]'s steps for each, on the batch engine, with
/// each outcome written to `report` and seen by `observer`. Stops taking new users once
/// `stop` completes.
pub async fn run(
    kms: Kms,
    gmail: GmailClient,
    plan: Plan,
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    observer: &mut dyn Observer,
    report: Option<&Path>,
    stop: impl Future<Output = ()>,
) -> Result<Tally> {
    batch::check_usable(&kms, &plan.issuer, "the issuer key")?;
    batch::check_usable(&kms, &plan.cse_key_id, "the CSE key")?;
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let concurrency = plan.concurrency;
    let shared = Arc::new(Shared {
        kms,
        gmail,
        plan,
        cpu: Semaphore::new(cores),
        notes: FirstNotes::default(),
    });
    let tally = batch::run(rows, concurrency, observer, report, stop, |row| {
        let shared = Arc::clone(&shared);
        async move {
            match onboard_user(&shared, &row).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::from_error(&e),
            }
        }
    })
    .await?;
    shared.notes.say(observer);
    Ok(tally)
}

fn is_status(error: &GmailError, wanted: u16) -> bool {
    error.status() == Some(wanted)
}

/// The journal's batch name: the store keys it by user as well.
fn journal(s: &Shared) -> String {
    format!("onboard:{}", s.plan.batch)
}

/// Step 1: the user's certificate, minted once and journaled.
async fn mint_for(s: &Shared, user: &EmailAddress, subject: &SubjectName) -> Result<String> {
    let permit = s
        .cpu
        .acquire()
        .await
        .map_err(|_| WorkflowError::Inconsistent("the batch is shutting down".to_owned()))?;
    let body = cse::certify_body(
        &s.plan.issuer,
        subject.to_string(),
        user,
        s.plan.profile.clone(),
    );
    let reply = blocking(|| s.kms.certify(&body))?;
    drop(permit);
    s.notes.keep(reply.notes);
    let id = reply.unique_identifier;
    blocking(|| {
        s.kms
            .journal_record(&journal(s), user.as_str(), "minted", &id)
    })?;
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
                cse_key_id: s.plan.cse_key_id.clone(),
                dry_run: false,
            })
        })?;
        let request = key_pair_request(&parts, &s.plan.kacls_uri);
        match s
            .gmail
            .create_key_pair(user.as_str(), &request, ChainValidation::All)
            .await
        {
            Ok(created) => {
                if let Some(hook) = &s.plan.after_upload {
                    hook();
                }
                created.key_pair_id.unwrap_or_default()
            }
            Err(e) if is_status(&e, 409) => find_key_pair(&s.gmail, user.as_str(), certificate)
                .await?
                .ok_or_else(|| {
                    WorkflowError::Inconsistent(
                        "Gmail says the key pair exists but does not list it".to_owned(),
                    )
                })?,
            Err(e) => return Err(e.into()),
        }
    };
    blocking(|| {
        s.kms
            .journal_record(&journal(s), user.as_str(), "keypair", &id)
    })?;
    let _ = blocking(|| s.kms.add_tags(certificate_id, &[cse::key_pair_tag(&id)]));
    Ok(id)
}

async fn onboard_user(s: &Shared, row: &UserRow) -> Result<Outcome> {
    let user: EmailAddress = row.user.parse().map_err(|source| WorkflowError::Invalid {
        what: "user",
        value: row.user.clone(),
        source,
    })?;
    let subject = match row.fields.first().filter(|f| !f.is_empty()) {
        Some(text) => text
            .parse::<SubjectName>()
            .map_err(|source| WorkflowError::Invalid {
                what: "subject",
                value: text.clone(),
                source,
            })?,
        None => SubjectName::mailbox(&user),
    };
    let steps = blocking(|| s.kms.journal_steps(&journal(s), user.as_str()))?;
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

    if s.plan.dry_run {
        let mut todo = Vec::new();
        if !steps.contains_key("minted") {
            todo.push(format!("mint a certificate for {subject}"));
        }
        if !steps.contains_key("keypair") {
            todo.push("upload its key pair".to_owned());
        }
        todo.push("insert the identity".to_owned());
        return Ok(Outcome::Done(
            json!({"action": format!("would {}", todo.join(", then "))}),
        ));
    }

    let certificate_id = if let Some(id) = steps.get("minted") {
        id.clone()
    } else {
        mint_for(s, &user, &subject).await?
    };
    let certificate = blocking(|| s.kms.certificate_chain(&certificate_id))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            WorkflowError::Inconsistent(format!("certificate `{certificate_id}` is missing"))
        })?;
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
            .journal_record(&journal(s), user.as_str(), "identity", &key_pair_id)
    })?;
    Ok(Outcome::Done(
        json!({"certificate_id": certificate_id, "key_pair_id": key_pair_id}),
    ))
}
