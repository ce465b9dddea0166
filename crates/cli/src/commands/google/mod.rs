//! `mailpki google ...`: Gmail CSE key pairs and identities.

mod identities;
mod key_pairs;
mod offboard;
mod onboard;
mod smime;
mod smime_bulk;

use anyhow::Result;

use super::Ctx;
pub(crate) use super::gmail_client as client;
use crate::args::{GoogleCommand, IdentitiesCommand, KeyPairsCommand, SendAsCommand, SmimeCommand};

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
