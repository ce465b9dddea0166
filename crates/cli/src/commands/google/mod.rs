//! `mailpki google ...`: Gmail CSE key pairs and identities.

mod identities;
pub(crate) mod key_pairs;
mod offboard;
mod onboard;
mod smime;
mod smime_bulk;

use std::sync::Arc;

use anyhow::Result;
use mailpki_gmail::{DEFAULT_API_URL, GmailClient, ServiceAccountKey, TokenSource};

use super::Ctx;
use crate::args::{
    GoogleArgs, GoogleCommand, IdentitiesCommand, KeyPairsCommand, SendAsCommand, SmimeCommand,
};

pub(crate) fn run(ctx: &Ctx, command: GoogleCommand) -> Result<()> {
    match command {
        GoogleCommand::KeyPairs(c) => match *c {
            KeyPairsCommand::Create(args) => key_pairs::create(ctx, &args),
            KeyPairsCommand::Rotate(args) => key_pairs::rotate(ctx, &args),
            KeyPairsCommand::Get(args) => key_pairs::get(ctx, &args),
            KeyPairsCommand::List(args) => key_pairs::list(ctx, &args),
            KeyPairsCommand::Enable(args) => {
                key_pairs::action(ctx, &args, mailpki_gmail::KeyPairAction::Enable)
            }
            KeyPairsCommand::Disable(args) => {
                key_pairs::action(ctx, &args, mailpki_gmail::KeyPairAction::Disable)
            }
            KeyPairsCommand::Obliterate(args) => {
                key_pairs::action(ctx, &args, mailpki_gmail::KeyPairAction::Obliterate)
            }
        },
        GoogleCommand::Identities(c) => match c {
            IdentitiesCommand::Insert(args) => identities::insert(ctx, &args, false),
            IdentitiesCommand::Patch(args) => identities::insert(ctx, &args, true),
            IdentitiesCommand::Get(args) => identities::get(ctx, &args),
            IdentitiesCommand::Delete(args) => identities::delete(ctx, &args),
            IdentitiesCommand::List(args) => identities::list(ctx, &args),
        },
        GoogleCommand::Smime(c) => match c {
            SmimeCommand::Insert(args) => smime::insert(ctx, &args),
            SmimeCommand::List(args) => smime::list(ctx, &args),
            SmimeCommand::Get(args) => smime::get(ctx, &args),
            SmimeCommand::Delete(args) => smime::delete(ctx, &args),
            SmimeCommand::SetDefault(args) => smime::set_default(ctx, &args),
            SmimeCommand::ImportCsv(args) => smime_bulk::import_csv(ctx, &args),
            SmimeCommand::Rotate(args) => smime_bulk::rotate(ctx, &args),
        },
        GoogleCommand::SendAs(SendAsCommand::List(args)) => smime::send_as_list(ctx, &args),
        GoogleCommand::Onboard(args) => onboard::run(ctx, &args),
        GoogleCommand::Offboard(args) => offboard::run(ctx, &args),
    }
}

/// The Gmail client: key file from the flag, environment or `[google] service_account_key`;
/// API URL from the flag, `MAILPKI_GMAIL_API_URL` or `[google] api_url`.
pub(crate) fn client(ctx: &Ctx, args: &GoogleArgs) -> Result<GmailClient> {
    let settings = &ctx.settings.google;
    let key_path = match (&args.service_account_key, &settings.service_account_key) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => crate::config::expand(path)?,
        (None, None) => anyhow::bail!(
            "no service account key: pass --service-account-key, set MAILPKI_SERVICE_ACCOUNT_KEY or [google] service_account_key"
        ),
    };
    let key = ServiceAccountKey::from_file(&key_path)?;
    let http = GmailClient::http_client()?;
    let tokens = Arc::new(TokenSource::new(key, http.clone())?);
    let url = args
        .api_url
        .clone()
        .or_else(|| settings.api_url.clone())
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    Ok(GmailClient::new(&url, tokens, http))
}
