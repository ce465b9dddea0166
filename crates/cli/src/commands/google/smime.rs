//! `mailpki google smime ...` and `google send-as list`: hosted S/MIME.

use anyhow::{Context, Result};
use mailpki_gmail::types::SmimeInfo;
use mailpki_issuance::EmailAddress;
use mailpki_workflows::smime;
use secrecy::SecretString;

use super::client;
use crate::args::{SmimeAddressArgs, SmimeIdArgs, SmimeInsertArgs, UserArgs};
use crate::commands::block_on;
use crate::commands::{Ctx, read_input};

fn send_as(args: &SmimeAddressArgs) -> &str {
    args.send_as.as_deref().unwrap_or(&args.user_id)
}

pub(crate) fn describe(info: &SmimeInfo) -> String {
    let expires = info
        .expiration
        .as_deref()
        .and_then(|ms| ms.parse::<i64>().ok())
        .map_or_else(|| "?".to_owned(), |ms| mailpki_store::rfc3339(ms / 1000));
    format!(
        "{}  {}  expires {expires}  issuer {}",
        info.id.as_deref().unwrap_or("?"),
        if info.is_default == Some(true) {
            "default"
        } else {
            "-"
        },
        info.issuer_cn.as_deref().unwrap_or("?")
    )
}

pub(crate) fn insert(ctx: &Ctx, args: &SmimeInsertArgs) -> Result<()> {
    let address: EmailAddress = send_as(&args.address)
        .parse()
        .context("invalid --send-as")?;
    let (pkcs12, password) = if let Some(path) = &args.pkcs12_file {
        let password = SecretString::from(args.pkcs12_password.clone().unwrap_or_default());
        (read_input(path)?, password)
    } else {
        let id = args
            .certificate_id
            .as_deref()
            .context("give --pkcs12-file or --certificate-id")?;
        smime::exported_pkcs12(&ctx.kms()?, id)?
    };
    let request = smime::smime_request(&pkcs12, &password, &address)?;
    let gmail = client(ctx, &args.address.google)?;
    let info = block_on(smime::upload(
        &gmail,
        &args.address.user_id,
        address.as_str(),
        &request,
        args.set_default,
    ))?
    .with_context(|| format!("Gmail refused the certificate for {address}"))?;
    ctx.printer
        .print(info.id.clone().unwrap_or_default(), &info)
}

pub(crate) fn list(ctx: &Ctx, args: &SmimeAddressArgs) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let infos = block_on(gmail.list_smime(&args.user_id, send_as(args)))??.smime_info;
    let human: Vec<String> = infos.iter().map(describe).collect();
    ctx.printer.lines(
        &human,
        &format!("no S/MIME certificates for {}", send_as(args)),
        &infos,
    )
}

pub(crate) fn get(ctx: &Ctx, args: &SmimeIdArgs) -> Result<()> {
    let gmail = client(ctx, &args.address.google)?;
    let info = block_on(gmail.get_smime(&args.address.user_id, send_as(&args.address), &args.id))??;
    ctx.printer.print(describe(&info), &info)
}

pub(crate) fn delete(ctx: &Ctx, args: &SmimeIdArgs) -> Result<()> {
    let gmail = client(ctx, &args.address.google)?;
    block_on(gmail.delete_smime(&args.address.user_id, send_as(&args.address), &args.id))??;
    ctx.printer.print(
        format!("deleted {}", args.id),
        &serde_json::json!({"id": args.id, "outcome": "deleted"}),
    )
}

pub(crate) fn set_default(ctx: &Ctx, args: &SmimeIdArgs) -> Result<()> {
    let gmail = client(ctx, &args.address.google)?;
    block_on(gmail.set_default_smime(&args.address.user_id, send_as(&args.address), &args.id))??;
    ctx.printer.print(
        format!("{} is now the default", args.id),
        &serde_json::json!({"id": args.id, "outcome": "default"}),
    )
}

pub(crate) fn send_as_list(ctx: &Ctx, args: &UserArgs) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let list = block_on(gmail.list_send_as(&args.user_id))??.send_as;
    let human: Vec<String> = list
        .iter()
        .map(|s| {
            format!(
                "{}{}",
                s.send_as_email,
                if s.is_primary == Some(true) {
                    "  (primary)"
                } else {
                    ""
                }
            )
        })
        .collect();
    ctx.printer.print(human.join("\n"), &list)
}
