//! `mailpki kms certificates certify-batch`: [`mailpki_workflows::mint`] over the users of a
//! CSV, with progress, Ctrl-C and the summary.

use std::sync::Arc;

use anyhow::Result;
use mailpki_store::Pkcs12Profile;
use mailpki_workflows::mint::{self, MintBatch};
use serde_json::json;

use crate::args::CertifyBatchArgs;
use crate::bulk;
use crate::commands::{Ctx, block_on, read_password};
use crate::mint::{issuer_ref, mint_profile};

pub(crate) fn run(ctx: &Ctx, args: &CertifyBatchArgs) -> Result<()> {
    let batch = MintBatch {
        issuer: issuer_ref(&args.issuer),
        profile: mint_profile(&args.profile)?,
        out_dir: args.out_dir.clone(),
        batch_id: args.batch_id.clone(),
        tags: args.tags.clone(),
        default_password: read_password(&args.password)?,
        pkcs12: if args.legacy {
            Pkcs12Profile::Legacy
        } else {
            Pkcs12Profile::Modern
        },
        jobs: args.jobs,
        after_commit: Some(Arc::new(|| {
            crate::failpoint::hit("certify-batch-after-commit");
        })),
    };
    let kms = ctx.kms()?;
    let (rows, mut progress) = bulk::open(ctx.printer, &args.csv, "certify-batch")?;
    let summary = block_on(mint::run(
        kms,
        batch,
        rows,
        &mut progress,
        bulk::interrupted(),
    ))??;
    progress.finish();

    let failed = &summary.tally.problems;
    for r in failed {
        bulk::warn_row(ctx.printer, r, None);
    }
    bulk::left_out(ctx.printer, &summary.tally);
    let failed_count = summary.tally.failed + summary.tally.retry_later;
    ctx.printer.print(
        format!(
            "minted {}, recovered {}, already done {}, failed {}; manifest: {}",
            summary.minted,
            summary.recovered,
            summary.already_done,
            failed_count,
            summary.manifest.display()
        ),
        &json!({
            "batch_id": summary.batch_id,
            "minted": summary.minted,
            "recovered": summary.recovered,
            "already_done": summary.already_done,
            "failed": failed.iter().map(|r| json!({"line": r.line, "email": r.user, "reason": r.detail["reason"], "hint": r.detail["hint"]})).collect::<Vec<_>>(),
            "manifest": summary.manifest,
        }),
    )?;
    if failed_count == 0 {
        Ok(())
    } else {
        Err(crate::Rejected.into())
    }
}
