//! `mailpki google identities ...`.

use anyhow::Result;
use mailpki_gmail::types::{CseIdentity, SignAndEncryptKeyPairs};

use super::client;
use crate::args::{IdentityArgs, IdentityEmailArgs, UserArgs};
use crate::commands::Ctx;
use crate::commands::block_on;

fn describe(identity: &CseIdentity) -> String {
    let email = identity.email_address.as_deref().unwrap_or("?");
    match (
        &identity.primary_key_pair_id,
        &identity.sign_and_encrypt_key_pairs,
    ) {
        (Some(id), _) => format!("{email}  key pair {id}"),
        (None, Some(p)) => format!(
            "{email}  signing {}  encryption {}",
            p.signing_key_pair_id, p.encryption_key_pair_id
        ),
        (None, None) => email.to_owned(),
    }
}

/// `insert` (or `patch`, which points an existing identity at other key pairs).
pub(crate) fn insert(ctx: &Ctx, args: &IdentityArgs, patch: bool) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let identity = CseIdentity {
        email_address: Some(args.user_id.clone()),
        primary_key_pair_id: args.key_pair_id.clone(),
        sign_and_encrypt_key_pairs: match (&args.signing_key_pair_id, &args.encryption_key_pair_id)
        {
            (Some(s), Some(e)) => Some(SignAndEncryptKeyPairs {
                signing_key_pair_id: s.clone(),
                encryption_key_pair_id: e.clone(),
            }),
            _ => None,
        },
    };
    let result = block_on(async {
        if patch {
            gmail
                .patch_identity(&args.user_id, &args.user_id, &identity)
                .await
        } else {
            gmail.create_identity(&args.user_id, &identity).await
        }
    })??;
    ctx.printer.print(describe(&result), &result)
}

pub(crate) fn get(ctx: &Ctx, args: &IdentityEmailArgs) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let email = args.email.as_deref().unwrap_or(&args.user_id);
    let identity = block_on(gmail.get_identity(&args.user_id, email))??;
    ctx.printer.print(describe(&identity), &identity)
}

pub(crate) fn delete(ctx: &Ctx, args: &IdentityEmailArgs) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let email = args.email.as_deref().unwrap_or(&args.user_id);
    block_on(gmail.delete_identity(&args.user_id, email))??;
    ctx.printer.print(
        format!("deleted the identity of {email}"),
        &serde_json::json!({"emailAddress": email, "outcome": "deleted"}),
    )
}

pub(crate) fn list(ctx: &Ctx, args: &UserArgs) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let identities = block_on(gmail.list_identities(&args.user_id, args.page_size))??;
    let human: Vec<String> = identities.iter().map(describe).collect();
    ctx.printer.lines(
        &human,
        &format!("no identities visible to {}", args.user_id),
        &identities,
    )
}
