//! `google smime import-csv` and `google smime rotate`: [`mailpki_workflows::smime`] over the
//! rows of a CSV, with progress, Ctrl-C and the report.

use anyhow::Result;
use mailpki_workflows::smime::{self, Batch, Issuing, Rotation};

use super::{block_on, client};
use crate::args::{SmimeImportArgs, SmimeRotateArgs};
use crate::bulk::{self, Watch};
use crate::commands::Ctx;
use crate::progress::Progress;

pub(crate) fn import_csv(ctx: &Ctx, args: &SmimeImportArgs) -> Result<()> {
    let gmail = client(ctx, &args.bulk.google)?;
    let total = crate::commands::kms::count_csv_rows(&args.csv)?;
    let rows = bulk::read_rows(&args.csv).map_err(bulk::workflow_error)?;
    let mut progress = Progress::new("import-csv", total, ctx.printer);
    let mut watch = Watch {
        progress: &mut progress,
        printer: ctx.printer,
    };
    let batch = Batch {
        csv: args.csv.clone(),
        concurrency: args.bulk.concurrency,
    };
    let tally = block_on(smime::import(
        gmail,
        batch,
        args.set_default,
        rows,
        &mut watch,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
    ))?
    .map_err(bulk::workflow_error)?;
    progress.finish();
    bulk::finish(ctx.printer, "import-csv", &tally)
}

pub(crate) fn rotate(ctx: &Ctx, args: &SmimeRotateArgs) -> Result<()> {
    let gmail = client(ctx, &args.bulk.google)?;
    let issuing = match &args.issuer_private_key_id {
        Some(key) => Some(Issuing {
            kms: ctx.kms()?,
            issuer: key.clone(),
            profile: crate::mint::mint_profile(&crate::mint::google_profile(
                None, args.days, None,
            ))?,
        }),
        None => None,
    };
    let rotation = Rotation {
        issuing,
        threshold_days: args.threshold_days,
        dry_run: args.dry_run,
    };
    let batch = Batch {
        csv: args.csv.clone(),
        concurrency: args.bulk.concurrency,
    };
    let total = crate::commands::kms::count_csv_rows(&args.csv)?;
    let rows = bulk::read_rows(&args.csv).map_err(bulk::workflow_error)?;
    let mut progress = Progress::new("rotate", total, ctx.printer);
    let mut watch = Watch {
        progress: &mut progress,
        printer: ctx.printer,
    };
    let tally = block_on(smime::rotate(
        gmail,
        batch,
        rotation,
        rows,
        &mut watch,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
    ))?
    .map_err(bulk::workflow_error)?;
    progress.finish();
    let label = if args.dry_run {
        "rotate (dry run)"
    } else {
        "rotate"
    };
    bulk::finish(ctx.printer, label, &tally)
}
