//! `mailpki kacls ...`: the key service seen from outside, as Gmail sees it (`status`,
//! `selftest`), through [`crate::kacls_client`].

use anyhow::{Context, Result};
use openssl::x509::X509;
use serde_json::{Value, json};

use super::Ctx;
use crate::args::{KaclsCommand, KaclsSelftestArgs};
use crate::kacls_client::{self, call};

pub(crate) fn run(ctx: &Ctx, command: KaclsCommand) -> Result<()> {
    match command {
        KaclsCommand::Status { kacls_url } => status(ctx, kacls_url.as_ref()),
        KaclsCommand::Selftest(args) => selftest(ctx, &args),
    }
}

fn service_url(ctx: &Ctx, flag: Option<&String>) -> Result<String> {
    Ok(ctx.kacls_url(flag)?.trim_end_matches('/').to_owned())
}

fn status(ctx: &Ctx, flag: Option<&String>) -> Result<()> {
    let url = service_url(ctx, flag)?;
    let reply = call(&format!("{url}/status"), None::<&Value>, None)?;
    let human = format!(
        "{} {} ({}) at {}\noperations: {}",
        reply["vendor_id"].as_str().unwrap_or("?"),
        reply["version"].as_str().unwrap_or("?"),
        reply["server_type"].as_str().unwrap_or("?"),
        reply["kacls_url"].as_str().unwrap_or(&url),
        reply["operations_supported"]
            .as_array()
            .map(|ops| ops
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    ctx.printer.print(human, &reply)
}

fn read_trimmed(path: &std::path::Path) -> Result<String> {
    Ok(crate::files::read_text(path)?.trim().to_owned())
}

fn selftest(ctx: &Ctx, args: &KaclsSelftestArgs) -> Result<()> {
    let url = service_url(ctx, args.kacls_url.as_ref())?;
    let certificate = X509::from_pem(read_trimmed(&args.certificate)?.as_bytes())
        .with_context(|| format!("{} holds no PEM certificate", args.certificate.display()))?;
    let wrapped = read_trimmed(&args.wrapped_key)?;
    let authentication = read_trimmed(&args.authentication)?;

    let (signature_ok, decrypt_ok) = kacls_client::round_trip(
        &url,
        &certificate,
        &wrapped,
        &authentication,
        &read_trimmed(&args.signer_authorization)?,
        &read_trimmed(&args.decrypter_authorization)?,
    )?;

    let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
    ctx.printer.print(
        format!(
            "sign:    {} (signature checked with the certificate)\ndecrypt: {} (key encrypted to the certificate came back)",
            verdict(signature_ok),
            verdict(decrypt_ok)
        ),
        &json!({"sign": signature_ok, "decrypt": decrypt_ok, "kacls_url": url}),
    )?;
    if signature_ok && decrypt_ok {
        Ok(())
    } else {
        Err(crate::Rejected.into())
    }
}
