//! `mailpki google offboard`: [`mailpki_workflows::offboard`] over a CSV or one user, with
//! progress, Ctrl-C and the report, then a new CRL when an issuer key is given.

use anyhow::Result;

use super::client;
use crate::args::OffboardArgs;
use crate::bulk;
use crate::commands::{Ctx, block_on, write_crl};

pub(crate) fn run(ctx: &Ctx, args: &OffboardArgs) -> Result<()> {
    let gmail = client(ctx, &args.bulk.google)?;
    let kms = ctx.kms()?;
    let batch = match (&args.batch_id, &args.csv, &args.user) {
        (Some(name), _, _) => name.clone(),
        (None, Some(csv), _) => std::fs::canonicalize(csv)?.display().to_string(),
        (None, None, user) => user.clone().unwrap_or_default(),
    };
    let plan = mailpki_workflows::offboard::Plan {
        reason: args.reason.clone(),
        obliterate: args.obliterate,
        batch,
        concurrency: args.bulk.concurrency,
        dry_run: args.dry_run,
    };
    let (rows, mut progress) = match (&args.csv, &args.user) {
        (Some(csv), _) => bulk::open(ctx.printer, csv, "offboard")?,
        (None, user) => bulk::one(ctx.printer, user.as_deref().unwrap_or_default(), "offboard"),
    };
    let tally = block_on(mailpki_workflows::offboard::run(
        kms,
        gmail,
        plan,
        rows,
        &mut progress,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
    ))??;
    progress.finish();
    if let (Some(key), false) = (&args.crl_issuer, args.dry_run) {
        let (reply, out) = write_crl(ctx, key, 7, args.crl_out.as_deref(), false)?;
        ctx.printer.info(&format!(
            "CRL #{} of `{}` ({} revoked) written to {}: publish it at your CRL URL",
            reply.crl_number,
            reply.issuer,
            reply.revoked,
            out.display()
        ));
    }
    let label = if args.dry_run {
        "offboard (dry run)"
    } else {
        "offboard"
    };
    bulk::finish(ctx.printer, label, &tally)
}
