//! `mailpki kms crl create`: a signed CRL of a stored issuer, written to a file.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_kms::api::CrlBody;

use crate::args::CrlCreateArgs;
use crate::commands::Ctx;

pub(crate) fn create(ctx: &Ctx, args: &CrlCreateArgs) -> Result<()> {
    let reply = ctx
        .kms()?
        .crl(&CrlBody {
            issuer_private_key_id: args.issuer_private_key_id.clone(),
            days: Some(args.days),
        })
        .context("cannot make the CRL")?;
    let der = STANDARD
        .decode(&reply.crl)
        .context("the CRL is not base64")?;
    let data = if args.pem {
        openssl::x509::X509Crl::from_der(&der)?.to_pem()?
    } else {
        der
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| format!("{}.crl", reply.issuer).into());
    // Public material: written as a normal file, replaced whole.
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, &data)
        .and_then(|()| std::fs::rename(&tmp, &out))
        .with_context(|| format!("cannot write {}", out.display()))?;
    ctx.printer.print(
        format!(
            "CRL #{} of `{}`: {} revoked, next update {}; written to {}",
            reply.crl_number,
            reply.issuer,
            reply.revoked,
            reply.next_update,
            out.display()
        ),
        &serde_json::json!({
            "crl_number": reply.crl_number,
            "issuer": reply.issuer,
            "revoked": reply.revoked,
            "this_update": reply.this_update,
            "next_update": reply.next_update,
            "file": out,
        }),
    )
}
