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
mod kacls_client;
mod mint;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;
use mailpki_kms::KmsError;
use mailpki_store::StoreError;
use mailpki_workflows::{WorkflowError, hints};
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

fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    if error.downcast_ref::<Rejected>().is_some() {
        return ExitCode::from(1);
    }
    if error.downcast_ref::<bulk::RetryLater>().is_some() {
        return ExitCode::from(75);
    }
    let store = store_error(error);
    let kms = kms_error(error);
    if kms.is_some_and(KmsError::is_transient) || store.is_some_and(StoreError::is_unavailable) {
        let message = format!("{error:#}");
        let hint = causes(error).find_map(hints::hint);
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
    let hint = causes(error).find_map(hints::hint);
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
