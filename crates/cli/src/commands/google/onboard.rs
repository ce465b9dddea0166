//! `mailpki google onboard`: [`mailpki_workflows::onboard`] over the users of a CSV, with
//! progress, Ctrl-C and the report.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::{block_on, client};
use crate::args::OnboardArgs;
use crate::bulk::{self, Watch};
use crate::commands::Ctx;
use crate::progress::Progress;

pub(crate) fn run(ctx: &Ctx, args: &OnboardArgs) -> Result<()> {
    let kacls_uri = args
        .kacls_url
        .clone()
        .or_else(|| ctx.settings.google.kacls_url.clone())
        .context("no key service URL: pass --kacls-url or set [google] kacls_url")?;
    let total = crate::commands::kms::count_csv_rows(&args.csv)?;
    let gmail = client(ctx, &args.google)?;
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
        concurrency: args.concurrency,
        after_upload: Some(Arc::new(|| crate::failpoint::hit("onboard-after-upload"))),
    };
    let rows = bulk::read_rows(&args.csv).map_err(bulk::workflow_error)?;
    let mut progress = Progress::new("onboard", total, ctx.printer);
    let mut watch = Watch {
        progress: &mut progress,
        printer: ctx.printer,
    };
    let tally = block_on(mailpki_workflows::onboard::run(
        kms,
        gmail,
        plan,
        rows,
        &mut watch,
        args.report.as_deref(),
        bulk::interrupted(),
    ))?
    .map_err(bulk::workflow_error)?;
    progress.finish();
    bulk::finish(ctx.printer, "onboard", &tally)
}
