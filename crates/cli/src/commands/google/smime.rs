//! `mailpki google smime ...` and `google send-as list`: hosted S/MIME.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use mailpki_gmail::GmailClient;
use mailpki_gmail::types::SmimeInfo;
use mailpki_issuance::{EmailAddress, LintOptions, lint};
use mailpki_store::{ImportFormat, parse_bundle};
use secrecy::{ExposeSecret, SecretString};

use super::{block_on, client};
use crate::args::{SmimeAddressArgs, SmimeIdArgs, SmimeInsertArgs, UserArgs};
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

/// Checks a PKCS#12 for `address` the way Gmail will, and returns the request body.
pub(crate) fn smime_request(
    pkcs12: &[u8],
    password: &SecretString,
    address: &EmailAddress,
) -> Result<SmimeInfo> {
    let bundle = parse_bundle(ImportFormat::Pkcs12, pkcs12, Some(password))?;
    let mut certs = bundle.certificates.into_iter();
    let leaf = certs.next().context("the PKCS#12 holds no certificate")?;
    bundle
        .private_key
        .context("the PKCS#12 holds no private key: Gmail needs it for hosted S/MIME")?;
    let chain = certs.map(|c| c.to_der()).collect::<Result<Vec<_>, _>>()?;
    let report = lint(
        &leaf.to_der()?,
        &chain,
        &LintOptions {
            expected_email: Some(address.clone()),
            at: None,
        },
    )?;
    if !report.accepted_by_google() {
        return Err(mailpki_issuance::IssuanceError::NonCompliant {
            findings: report.rejections().cloned().collect(),
        })
        .context(format!(
            "refusing to upload a certificate Gmail would reject for {address}"
        ));
    }
    Ok(SmimeInfo {
        pkcs12: Some(URL_SAFE.encode(pkcs12)),
        encrypted_key_password: Some(password.expose_secret().to_owned()),
        ..SmimeInfo::default()
    })
}

/// Uploads, then makes it the default when asked.
pub(crate) async fn upload(
    gmail: &GmailClient,
    user: &str,
    address: &str,
    request: &SmimeInfo,
    default: bool,
) -> mailpki_gmail::Result<SmimeInfo> {
    let mut info = gmail.insert_smime(user, address, request).await?;
    if default && let Some(id) = &info.id {
        gmail.set_default_smime(user, address, id).await?;
        info.is_default = Some(true);
    }
    Ok(info)
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
        // A one-time password for the upload only.
        let mut raw = [0u8; 18];
        openssl::rand::rand_bytes(&mut raw)?;
        let password = SecretString::from(URL_SAFE.encode(raw));
        let bytes = ctx.kms()?.export(
            id,
            &mailpki_kms::api::ExportBody {
                format: "pkcs12".to_owned(),
                password: Some(mailpki_kms::api::secret(password.expose_secret())),
                legacy: false,
            },
        )?;
        (bytes, password)
    };
    let request = smime_request(&pkcs12, &password, &address)?;
    let gmail = client(ctx, &args.address.google)?;
    let info = block_on(upload(
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
    ctx.printer.print(human.join("\n"), &infos)
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
