//! The `mailpki` binary. This file turns errors into messages, hints and exit codes; the
//! commands themselves live in [`commands`].
//!
//! Exit codes: 0 success, 1 the request failed (bad input, missing object, no right, a user of
//! a batch failed), 2 usage error or internal failure, 75 try again later (a batch left users
//! to retry, or the KMS server or its database is unavailable).

#![allow(clippy::print_stderr)]

mod args;
mod bulk;
mod commands;
mod config;
mod failpoint;
mod files;
mod mint;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;
use mailpki_kms::KmsError;
use mailpki_store::StoreError;
use mailpki_workflows::WorkflowError;
use tracing_subscriber::EnvFilter;

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .try_init();
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    init_logging(cli.global.verbose);
    let json = cli.global.json;
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error, json),
    }
}

/// A check whose verdict was already printed (lint): fail with exit code 1, no message.
#[derive(Debug, thiserror::Error)]
#[error("rejected")]
pub(crate) struct Rejected;

/// Every error in the chain, and inside a workflow's error the library error it carries
/// whole: what the exit code and the hint are chosen by.
fn causes(error: &anyhow::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    error.chain().flat_map(|e| {
        let e: &(dyn std::error::Error + 'static) = e;
        std::iter::once(e).chain(
            e.downcast_ref::<WorkflowError>()
                .and_then(WorkflowError::passed_through),
        )
    })
}

fn store_error(error: &anyhow::Error) -> Option<&StoreError> {
    causes(error).find_map(|e| {
        e.downcast_ref::<StoreError>()
            .or_else(|| match e.downcast_ref::<KmsError>() {
                Some(KmsError::Store(s)) => Some(s),
                _ => None,
            })
    })
}

fn kms_error(error: &anyhow::Error) -> Option<&KmsError> {
    causes(error).find_map(|e| e.downcast_ref::<KmsError>())
}

/// The fix for what a KMS server said.
fn kms_hint(error: &KmsError) -> Option<String> {
    Some(match error {
        KmsError::Remote { code, .. } if code == "unauthenticated" => {
            "check the token: MAILPKI_KMS_TOKEN, [kms] token_file or [kms] token_command \
             (an admin makes API tokens with `mailpki server token create USER`)"
                .to_owned()
        }
        KmsError::Remote { code, .. } if code == "permission_denied" => {
            "the object's owner can grant the right with `mailpki kms access-rights grant`"
                .to_owned()
        }
        KmsError::Remote { code, .. } if code == "not_found" => {
            "`mailpki kms access-rights obtained` shows the objects shared with you".to_owned()
        }
        KmsError::Remote { code, .. } if code == "unavailable" => {
            "the server's database is unavailable; nothing was changed: retry later".to_owned()
        }
        KmsError::Unreachable { .. } => {
            "check [kms] url (or --kms-url, MAILPKI_KMS_URL), the network, and [kms] server_ca \
             for a private CA"
                .to_owned()
        }
        _ => return None,
    })
}

/// A short suggestion for the errors that have an obvious fix.
fn hint(error: &StoreError) -> Option<String> {
    Some(match error {
        StoreError::NotFound { .. } | StoreError::Hidden { .. } => {
            "`mailpki kms certificates list` and `mailpki kms access-rights obtained` show the \
             objects you can see"
                .to_owned()
        }
        StoreError::AlreadyExists { .. } => {
            "pick another ID, or pass --replace to overwrite the object".to_owned()
        }
        StoreError::WrongPassword => {
            "give the password with -p, --password-file or MAILPKI_PKCS12_PASSWORD".to_owned()
        }
        StoreError::PasswordRequired { .. } => {
            "pass the password with -p or --password-file".to_owned()
        }
        StoreError::PermissionDenied {
            operation,
            uid,
            user,
            ..
        } => format!(
            "the owner can run `mailpki kms access-rights grant {user} -i {uid} {operation}`"
        ),
        StoreError::UnsupportedPkcs12 { .. } => {
            "re-export it with a modern profile: `openssl pkcs12 -legacy -in old.p12 -nodes | \
             openssl pkcs12 -export -out new.p12`"
                .to_owned()
        }
        StoreError::MalformedPkcs12 { .. } => {
            "is it a PEM or DER file? try -f pem or -f der".to_owned()
        }
        StoreError::MasterKeyMismatch | StoreError::MasterKeyMissing { .. } => {
            "the store was created with another master key: check --master-key-file, \
             MAILPKI_MASTER_KEY and MAILPKI_MASTER_PASSPHRASE"
                .to_owned()
        }
        StoreError::InUse { .. } => {
            "destroy the certificates issued by it first, or pass --force".to_owned()
        }
        StoreError::NotAStore { .. } => {
            "point --database (or [kms] database) at a mailpki store, or at a new file".to_owned()
        }
        _ => return None,
    })
}

/// The administrator's fix for the common Gmail errors.
fn gmail_hint(error: &mailpki_gmail::GmailError) -> Option<String> {
    use mailpki_gmail::GmailError as G;
    Some(match error {
        G::Token { error, description, .. } if error == "unauthorized_client" => {
            let _ = description;
            "in the Admin console (Security > API controls > Domain-wide delegation), authorize the \
             service account's client ID for https://www.googleapis.com/auth/gmail.settings.basic \
             (and gmail.settings.sharing for aliases)"
                .to_owned()
        }
        G::Token { description, .. } if description.contains("Invalid email or User ID") => {
            "the user does not exist in the domain (check the address, and that it is a primary address)".to_owned()
        }
        G::Token { description, .. } if description.contains("Signature") => {
            "the key file's key was deleted or replaced: download a new key for the service account".to_owned()
        }
        G::Token { description, .. } if description.contains("short-lived") => {
            "this machine's clock is off: fix the time (NTP) and retry".to_owned()
        }
        G::Api { reason, .. } if reason == "failedPrecondition" => {
            "CSE may not be active for this user yet (it can take up to 24 hours after enabling it); retry later".to_owned()
        }
        G::Api { status: 400, reason, .. } if reason == "invalidArgument" => {
            "Gmail gives no reason: run `mailpki kms certificates lint` on the certificate to see which rule it breaks".to_owned()
        }
        G::Api { status: 404, .. } => "check the user and the ID (`google key-pairs list --user-id USER`)".to_owned(),
        G::Api { status: 409, .. } => "it exists already: nothing to do, or use `patch`".to_owned(),
        G::Api { reason, .. } if reason == "insufficientPermissions" => {
            "authorize the missing scope for the service account's client ID (domain-wide delegation)".to_owned()
        }
        G::Unreachable { .. } => {
            "check the API URL (--api-url, MAILPKI_GMAIL_API_URL, [google] api_url) and the network".to_owned()
        }
        G::KeyFile { .. } => "download the service account's JSON key from the Google Cloud console".to_owned(),
        _ => return None,
    })
}

fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    if error.downcast_ref::<Rejected>().is_some() {
        return ExitCode::from(1);
    }
    if error.downcast_ref::<bulk::RetryLater>().is_some() {
        return ExitCode::from(75);
    }
    let store = store_error(error);
    let kms = kms_error(error);
    if kms.is_some_and(KmsError::is_transient)
        || store.is_some_and(|e| matches!(e, StoreError::Unavailable { .. }))
    {
        let message = format!("{error:#}");
        let hint = kms.and_then(kms_hint);
        print_error(&message, hint.as_deref(), 75, json);
        return ExitCode::from(75);
    }
    let internal = store.is_some_and(|e| !e.is_user_error())
        || kms.is_some_and(|e| !matches!(e, KmsError::Store(_)) && !e.is_user_error())
        || causes(error)
            .find_map(|e| e.downcast_ref::<mailpki_issuance::IssuanceError>())
            .is_some_and(|e| !e.is_user_error());
    let code = if internal { 2 } else { 1 };
    let message = format!("{error:#}");
    let hint = store
        .and_then(hint)
        .or_else(|| kms.and_then(kms_hint))
        .or_else(|| {
            causes(error)
                .find_map(|e| e.downcast_ref::<mailpki_gmail::GmailError>())
                .and_then(gmail_hint)
        });
    print_error(&message, hint.as_deref(), code, json);
    ExitCode::from(code)
}

fn print_error(message: &str, hint: Option<&str>, code: u8, json: bool) {
    if json {
        let value = serde_json::json!({ "error": message, "hint": hint, "exit_code": code });
        eprintln!("{value}");
    } else {
        // A message can quote a server's reply or a file's contents: no escapes reach the
        // terminal from it.
        eprintln!("error: {}", output::for_terminal(message));
        if let Some(hint) = hint {
            eprintln!("hint: {}", output::for_terminal(hint));
        }
    }
}
