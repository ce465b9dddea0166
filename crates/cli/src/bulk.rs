//! The CLI's side of the batch engine ([`mailpki_workflows::batch`]): progress on stderr,
//! Ctrl-C as the stop signal, and the summary and exit status at the end.

use std::path::Path;

use anyhow::Result;
use mailpki_workflows::batch::Tally;
use mailpki_workflows::rows::{ReportRow, UserRow};
use serde_json::json;

use crate::output::Printer;
use crate::progress::Progress;

/// The rows of a batch, and the progress (labelled `label`) that watches its users.
pub(crate) type Rows = Box<dyn Iterator<Item = Result<UserRow, ReportRow>>>;

/// The rows of a batch's CSV, and its progress.
pub(crate) fn open(printer: Printer, csv: &Path, label: &'static str) -> Result<(Rows, Progress)> {
    let total = mailpki_workflows::rows::count_rows(csv)?;
    let rows = mailpki_workflows::rows::read_rows(csv)?;
    Ok((Box::new(rows), Progress::new(label, total, printer)))
}

/// A batch of one user named on the command line, read as a one-line CSV would be.
pub(crate) fn one(printer: Printer, user: &str, label: &'static str) -> (Rows, Progress) {
    let line = format!("{}\n", user.replace(['\n', '\r'], " "));
    let rows: Rows = match mailpki_workflows::rows::rows_of(std::io::Cursor::new(line.into_bytes()))
    {
        Ok(rows) => Box::new(rows),
        Err(_) => Box::new(std::iter::empty()),
    };
    (rows, Progress::new(label, 1, printer))
}

/// Completes on Ctrl-C (never, when the signal cannot be watched).
pub(crate) async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Exit status for bulk commands whose users must be tried again later (sysexits' TEMPFAIL).
#[derive(Debug, thiserror::Error)]
#[error("some users are not ready yet")]
pub(crate) struct RetryLater;

/// Says what went wrong with one user, and the hint when there is one.
pub(crate) fn warn_row(printer: Printer, row: &ReportRow, outcome: Option<&str>) {
    let reason = row.detail["reason"].as_str().unwrap_or_default();
    let outcome = outcome.map(|o| format!("{o}: ")).unwrap_or_default();
    let hint = row.detail["hint"]
        .as_str()
        .map(|h| format!("\n  hint: {h}"))
        .unwrap_or_default();
    printer.warn(&format!(
        "line {} ({}): {outcome}{reason}{hint}",
        row.line, row.user
    ));
}

/// Says how many rows needing attention were not listed (the report has them all).
pub(crate) fn left_out(printer: Printer, tally: &Tally) {
    if tally.problems_left_out > 0 {
        printer.warn(&format!(
            "… and {} more rows needing attention: the report (--report) lists every row",
            tally.problems_left_out
        ));
    }
}

/// Prints the summary and the rows that need attention; fails when any user did.
pub(crate) fn finish(printer: Printer, label: &str, tally: &Tally) -> Result<()> {
    for r in &tally.problems {
        warn_row(printer, r, Some(r.outcome));
    }
    left_out(printer, tally);
    printer.print(
        format!(
            "{label}: {} done, {} skipped, {} retry later, {} failed",
            tally.done, tally.skipped, tally.retry_later, tally.failed
        ),
        &json!({
            "done": tally.done,
            "skipped": tally.skipped,
            "retry_later": tally.retry_later,
            "failed": tally.failed,
            "problems": tally.problems,
            "problems_left_out": tally.problems_left_out,
        }),
    )?;
    if tally.failed > 0 {
        Err(crate::Rejected.into())
    } else if tally.retry_later > 0 {
        Err(RetryLater.into())
    } else {
        Ok(())
    }
}
