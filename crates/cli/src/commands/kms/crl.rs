//! `mailpki kms crl create`: a signed CRL of a stored issuer, written to a file.

use anyhow::Result;

use crate::args::CrlCreateArgs;
use crate::commands::{Ctx, write_crl};

pub(crate) fn create(ctx: &Ctx, args: &CrlCreateArgs) -> Result<()> {
    let (reply, out) = write_crl(
        ctx,
        &args.issuer_private_key_id,
        args.days,
        args.out.as_deref(),
        args.pem,
    )?;
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
