//! `google smime import-csv` and `google smime rotate`: [`mailpki_workflows::smime`] over the
//! rows of a CSV, with progress, Ctrl-C and the report.

use anyhow::Result;
use mailpki_workflows::smime::{self, Batch, Issuing, Rotation};

use super::client;
use crate::args::{SmimeImportArgs, SmimeRotateArgs};
use crate::bulk;
use crate::commands::Ctx;
use crate::commands::block_on;

pub(crate) fn import_csv(ctx: &Ctx, args: &SmimeImportArgs) -> Result<()> {
    let gmail = client(ctx, &args.bulk.google)?;
    let (rows, mut progress) = bulk::open(ctx.printer, &args.csv, "import-csv")?;
    let batch = Batch {
        csv: args.csv.clone(),
        concurrency: args.bulk.concurrency,
    };
    let tally = block_on(smime::import(
        gmail,
        batch,
        args.set_default,
        rows,
        &mut progress,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
    ))??;
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
    let (rows, mut progress) = bulk::open(ctx.printer, &args.csv, "rotate")?;
    let tally = block_on(smime::rotate(
        gmail,
        batch,
        rotation,
        rows,
        &mut progress,
        args.bulk.report.as_deref(),
        bulk::interrupted(),
    ))??;
    progress.finish();
    let label = if args.dry_run {
        "rotate (dry run)"
    } else {
        "rotate"
    };
    bulk::finish(ctx.printer, label, &tally)
}
