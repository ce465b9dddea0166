//! Offboarding: for every user of a CSV, take away what lets their keys be used through Gmail
//! and revoke their certificates, on the batch engine. Per user, in order: delete the CSE
//! identity, disable the CSE key pairs (obliterate them, with the flag, once Gmail's grace
//! period allows), delete the hosted S/MIME certificates of every send-as address, and revoke
//! in the KMS the certificates mailpki made for the user (tagged `mailpki:cse-user=`,
//! `mailpki:smime-user=`, `mailpki:email=`).
//!
//! Every step is idempotent (what is already gone is not an error) and journaled in the
//! store, so a re-run after a crash or Ctrl-C completes partial users and asks Gmail nothing
//! for finished ones.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use mailpki_gmail::types::EnablementState;
use mailpki_gmail::{GmailClient, GmailError, KeyPairAction};
use mailpki_issuance::EmailAddress;
use mailpki_kms::Kms;
use mailpki_kms::api::{RevokeBody, SearchBody};
use mailpki_store::{ObjectType, RevocationReason, State, StoreError};
use serde_json::{Value, json};

use crate::batch::{self, Observer, Outcome, Tally, blocking};
use crate::error::{Result, WorkflowError};
use crate::rows::{ReportRow, UserRow};

/// What an offboarding does for each user.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The revocation reason of the users' certificates (RFC 5280's; a note may follow a
    /// colon).
    pub reason: String,
    /// Also obliterate the disabled key pairs (Gmail allows it 30 days after disabling).
    pub obliterate: bool,
    /// The batch's name: a run with the same name resumes.
    pub batch: String,
    pub concurrency: usize,
    /// Say what would be done for each user, changing nothing.
    pub dry_run: bool,
}

struct Shared {
    kms: Kms,
    gmail: GmailClient,
    plan: Plan,
}

/// The tags under which mailpki keeps a user's certificates.
fn user_tags(user: &EmailAddress) -> [String; 3] {
    let canonical = user.canonical();
    [
        format!("mailpki:cse-user={canonical}"),
        format!("mailpki:smime-user={canonical}"),
        format!("mailpki:email={canonical}"),
    ]
}

/// Offboards every user of `rows`; see the module's description.
pub async fn run(
    kms: Kms,
    gmail: GmailClient,
    plan: Plan,
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    observer: &mut dyn Observer,
    report: Option<&Path>,
    stop: impl Future<Output = ()>,
) -> Result<Tally> {
    if RevocationReason::parse_with_note(&plan.reason).is_none() {
        return Err(WorkflowError::Store(StoreError::UnknownRevocationReason {
            given: plan.reason.clone(),
        }));
    }
    let concurrency = plan.concurrency;
    let shared = Arc::new(Shared { kms, gmail, plan });
    batch::run(rows, concurrency, observer, report, stop, |row| {
        let shared = Arc::clone(&shared);
        async move {
            match offboard_user(&shared, &row).await {
                Ok(outcome) => outcome,
                Err(e) => Outcome::from_error(&e),
            }
        }
    })
    .await
}

fn journal(s: &Shared) -> String {
    format!("offboard:{}", s.plan.batch)
}

fn gone(error: &GmailError) -> bool {
    error.status() == Some(404)
}

async fn offboard_user(s: &Shared, row: &UserRow) -> Result<Outcome> {
    let user: EmailAddress = row.user.parse().map_err(|source| WorkflowError::Invalid {
        what: "user",
        value: row.user.clone(),
        source,
    })?;
    let steps = blocking(|| s.kms.journal_steps(&journal(s), user.as_str()))?;
    if steps.contains_key("revoked") && (!s.plan.obliterate || steps.contains_key("obliterated")) {
        return Ok(Outcome::Skipped("offboarded by an earlier run".to_owned()));
    }
    if s.plan.dry_run {
        return dry_run(s, &user).await;
    }
    let record = |step: &str, value: &str| {
        blocking(|| {
            s.kms
                .journal_record(&journal(s), user.as_str(), step, value)
        })
    };
    let mut detail = serde_json::Map::new();

    if !steps.contains_key("identity") {
        let deleted = match s.gmail.delete_identity(user.as_str(), user.as_str()).await {
            Ok(()) => true,
            Err(e) if gone(&e) => false,
            Err(e) => return Err(e.into()),
        };
        record("identity", if deleted { "deleted" } else { "none" })?;
        detail.insert("identity_deleted".into(), json!(deleted));
    }

    if !steps.contains_key("keypairs") {
        let mut disabled = Vec::new();
        for pair in s.gmail.list_key_pairs(user.as_str(), None).await? {
            let Some(id) = pair.key_pair_id else { continue };
            if pair.enablement_state != Some(EnablementState::Disabled) {
                s.gmail
                    .key_pair_action(user.as_str(), &id, KeyPairAction::Disable)
                    .await?;
                disabled.push(id);
            }
        }
        record("keypairs", &disabled.len().to_string())?;
        detail.insert("key_pairs_disabled".into(), json!(disabled));
    }

    if !steps.contains_key("smime") {
        let mut deleted = 0usize;
        let addresses = s.gmail.list_send_as(user.as_str()).await?.send_as;
        for address in addresses.iter().map(|a| a.send_as_email.as_str()) {
            let infos = match s.gmail.list_smime(user.as_str(), address).await {
                Ok(list) => list.smime_info,
                Err(e) if gone(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            for id in infos.iter().filter_map(|i| i.id.as_deref()) {
                match s.gmail.delete_smime(user.as_str(), address, id).await {
                    Ok(()) => deleted += 1,
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        record("smime", &deleted.to_string())?;
        detail.insert("smime_deleted".into(), json!(deleted));
    }

    if !steps.contains_key("revoked") {
        let revoked = blocking(|| revoke_certificates(s, &user))?;
        record("revoked", &revoked.len().to_string())?;
        detail.insert("certificates_revoked".into(), json!(revoked));
    }

    // Last: Gmail obliterates a key pair only 30 days after it was disabled.
    if s.plan.obliterate && !steps.contains_key("obliterated") {
        let mut waiting = 0usize;
        let mut obliterated = 0usize;
        for pair in s.gmail.list_key_pairs(user.as_str(), None).await? {
            let Some(id) = pair.key_pair_id else { continue };
            match s
                .gmail
                .key_pair_action(user.as_str(), &id, KeyPairAction::Obliterate)
                .await
            {
                Ok(_) => obliterated += 1,
                Err(e) if gone(&e) => {}
                Err(e) if e.is_not_ready() => waiting += 1,
                Err(e) => return Err(e.into()),
            }
        }
        if waiting > 0 {
            return Ok(Outcome::RetryLater(
                format!(
                    "{waiting} key pair(s) can be obliterated 30 days after they were disabled; \
                     everything else is done"
                )
                .into(),
            ));
        }
        record("obliterated", &obliterated.to_string())?;
        detail.insert("key_pairs_obliterated".into(), json!(obliterated));
    }
    Ok(Outcome::Done(Value::Object(detail)))
}

/// The user's live certificates in the KMS: those mailpki tagged as theirs, and any whose
/// subject names their address (minted or imported by hand).
fn live_certificates(s: &Shared, user: &EmailAddress) -> Result<Vec<String>> {
    let canonical = user.canonical();
    let names_user = |subject: &str| {
        subject
            .to_ascii_lowercase()
            .split([',', '/', '+'])
            .any(|part| {
                part.trim()
                    .split_once('=')
                    .is_some_and(|(_, v)| v.trim() == canonical)
            })
    };
    let mut found: Vec<mailpki_store::Attributes> = Vec::new();
    for tag in user_tags(user) {
        for id in s.kms.find_by_tags(&[tag])? {
            found.push(s.kms.attributes(&id)?);
        }
    }
    found.extend(
        s.kms
            .search(&SearchBody {
                object_type: Some(ObjectType::Certificate),
                subject_contains: Some(canonical.clone()),
                ..SearchBody::default()
            })?
            .into_iter()
            .filter(|a| a.certificate_subject.as_deref().is_some_and(names_user)),
    );
    let mut live: Vec<String> = found
        .into_iter()
        .filter(|a| a.object_type == ObjectType::Certificate && a.state == State::Active)
        .filter(|a| a.certificate_is_ca != Some(true))
        .map(|a| a.unique_identifier)
        .collect();
    live.sort();
    live.dedup();
    Ok(live)
}

/// Revokes the user's live certificates in the KMS; returns their IDs.
fn revoke_certificates(s: &Shared, user: &EmailAddress) -> Result<Vec<String>> {
    let live = live_certificates(s, user)?;
    for id in &live {
        s.kms.revoke(
            id,
            &RevokeBody {
                reason: s.plan.reason.clone(),
                compromised: false,
            },
        )?;
    }
    Ok(live)
}

/// What offboarding would do for `user`, from what Gmail and the KMS hold now.
async fn dry_run(s: &Shared, user: &EmailAddress) -> Result<Outcome> {
    let identity = match s.gmail.get_identity(user.as_str(), user.as_str()).await {
        Ok(_) => true,
        Err(e) if gone(&e) => false,
        Err(e) => return Err(e.into()),
    };
    let pairs = s.gmail.list_key_pairs(user.as_str(), None).await?;
    let enabled = pairs
        .iter()
        .filter(|p| p.enablement_state != Some(EnablementState::Disabled))
        .count();
    let mut smime = 0usize;
    for address in s.gmail.list_send_as(user.as_str()).await?.send_as {
        if let Ok(list) = s
            .gmail
            .list_smime(user.as_str(), &address.send_as_email)
            .await
        {
            smime += list.smime_info.len();
        }
    }
    let certificates = blocking(|| live_certificates(s, user))?.len();
    let mut todo = Vec::new();
    if identity {
        todo.push("delete the CSE identity".to_owned());
    }
    if enabled > 0 {
        todo.push(format!("disable {enabled} key pair(s)"));
    }
    if s.plan.obliterate && !pairs.is_empty() {
        todo.push(format!("obliterate {} key pair(s)", pairs.len()));
    }
    if smime > 0 {
        todo.push(format!("delete {smime} S/MIME certificate(s)"));
    }
    if certificates > 0 {
        todo.push(format!(
            "revoke {certificates} certificate(s) ({})",
            s.plan.reason
        ));
    }
    let action = if todo.is_empty() {
        "nothing to do".to_owned()
    } else {
        format!("would {}", todo.join(", "))
    };
    Ok(Outcome::Done(json!({ "action": action })))
}
