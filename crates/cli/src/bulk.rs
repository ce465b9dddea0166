//! The CLI's side of the batch engine ([`mailpki_workflows::batch`]): progress on stderr,
//! Ctrl-C as the stop signal, and the summary and exit status at the end.

use anyhow::Result;
use mailpki_workflows::WorkflowError;
use mailpki_workflows::batch::{Observer, Tally, Tick};
use serde_json::json;

pub(crate) use mailpki_workflows::rows::{read_rows, strip_bom};

use crate::output::Printer;
use crate::progress::Progress;

/// Progress bar and warnings for a batch.
pub(crate) struct Watch<'a> {
    pub(crate) progress: &'a mut Progress,
    pub(crate) printer: Printer,
}

impl Observer for Watch<'_> {
    fn finished(&mut self, tick: Tick) {
        self.progress.tick(tick);
    }

    fn warn(&self, message: &str) {
        self.printer.warn(message);
    }
}

/// A workflow's error as the CLI reports errors: the KMS's, Gmail's or the store's own error
/// comes out whole, so that its exit code and hint apply.
pub(crate) fn workflow_error(error: WorkflowError) -> anyhow::Error {
    match error {
        WorkflowError::Kms(e) => e.into(),
        WorkflowError::Gmail(e) => e.into(),
        WorkflowError::Store(e) => e.into(),
        WorkflowError::Issuance(e) => e.into(),
        other => other.into(),
    }
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

/// Prints the summary and the rows that need attention; fails when any user did.
pub(crate) fn finish(printer: Printer, label: &str, tally: &Tally) -> Result<()> {
    for r in &tally.problems {
        let reason = r.detail["reason"].as_str().unwrap_or_default();
        printer.warn(&format!(
            "line {} ({}): {}: {reason}",
            r.line, r.user, r.outcome
        ));
    }
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
