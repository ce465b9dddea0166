//! `mailpki google onboard`: [`mailpki_workflows::onboard`] over the users of a CSV, with
//! progress, Ctrl-C and the report.

use std::sync::Arc;

use anyhow::Result;

use super::client;
use crate::args::OnboardArgs;
use crate::bulk;
use crate::commands::Ctx;
use crate::commands::block_on;

pub(crate) fn run(ctx: &Ctx, args: &OnboardArgs) -> Result<()> {
    let kacls_uri = ctx.kacls_url(args.kacls_url.as_ref())?;
    let gmail = client(ctx, &args.bulk.google)?;
    let kms = ctx.kms()?;
    let plan = mailpki_workflows::onboard::Plan {
        issuer: args.issuer_private_key_id.clone(),
        profile: crate::mint::mint_profile(&crate::mint::google_profile(
            args.leaf_certificate_extensions.clone(),
            args.days,
            None,
        ))?,
        cse_key_id: args.cse_key_id.clone(),
        kacls_uri,
        batch: match &args.batch_id {
            Some(name) => name.clone(),
            None => std::fs::canonicalize(&args.csv)?.display().to_string(),
        },
        concurrency: args.bulk.concurrency,
        after_upload: Some(Arc::new(|| crate::failpoint::hit("onboard-after-upload"))),
        dry_run: args.dry_run,
    };
    let (rows, mut progress) = bulk::open(ctx.printer, &args.csv, "onboard")?;
    let tally = block_on(mailpki_workflows::onboard::run(
        kms,
        gmail,
        plan,
        rows,
        &mut progress,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
    ))??;
    progress.finish();
    let label = if args.dry_run {
        "onboard (dry run)"
    } else {
        "onboard"
    };
    bulk::finish(ctx.printer, label, &tally)
}
