//! The bulk engine behind `google onboard` and the other CSV commands: rows stream from the
//! CSV, at most `concurrency` users are in flight (Google's quotas are per user, so the work is
//! spread across users), each user's outcome lands in a report, and Ctrl-C stops new users
//! while those in flight finish. Each command's per-user work records its steps in the store's
//! journal, so a re-run resumes where it stopped.

use std::future::Future;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::output::Printer;
use crate::progress::{Progress, Tick};
pub(crate) use crate::rows::{ReportRow, UserRow, read_rows, strip_bom};

/// How one user's work ended.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    Done(Value),
    Skipped(String),
    /// Google is not ready for the user yet (CSE still propagating): not a failure.
    RetryLater(String),
    Failed(String),
}

impl Outcome {
    /// Gmail's "not ready yet" becomes retry-later; anything else a failure.
    pub(crate) fn from_error(error: &anyhow::Error) -> Self {
        let not_ready = error
            .chain()
            .find_map(|e| e.downcast_ref::<mailpki_gmail::GmailError>())
            .is_some_and(mailpki_gmail::GmailError::is_not_ready);
        if not_ready {
            Self::RetryLater(format!("{error:#}"))
        } else {
            Self::Failed(format!("{error:#}"))
        }
    }
}

fn row_of(row: &UserRow, outcome: Outcome) -> (ReportRow, Tick) {
    let (name, detail, tick) = match outcome {
        Outcome::Done(v) => ("done", v, Tick::Done),
        Outcome::Skipped(r) => ("skipped", json!({"reason": r}), Tick::Done),
        Outcome::RetryLater(r) => ("retry-later", json!({"reason": r}), Tick::RetryLater),
        Outcome::Failed(r) => ("failed", json!({"reason": r}), Tick::Failed),
    };
    (
        ReportRow {
            line: row.line,
            user: row.user.clone(),
            outcome: name,
            detail,
        },
        tick,
    )
}

/// Counts of outcomes, and the rows that need attention (failed, retry later).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) done: u64,
    pub(crate) skipped: u64,
    pub(crate) retry_later: u64,
    pub(crate) failed: u64,
    pub(crate) problems: Vec<ReportRow>,
}

impl Tally {
    fn add(&mut self, row: ReportRow) {
        match row.outcome {
            "done" => self.done += 1,
            "skipped" => self.skipped += 1,
            "retry-later" => self.retry_later += 1,
            _ => self.failed += 1,
        }
        if matches!(row.outcome, "failed" | "retry-later") {
            self.problems.push(row);
        }
    }
}

/// Where report rows go as users finish: a JSON array or CSV, written row by row.
enum Sink {
    None,
    Csv(Box<csv::Writer<std::fs::File>>),
    Json { file: std::fs::File, rows: u64 },
}

impl Sink {
    fn open(path: Option<&Path>) -> Result<Self> {
        use std::io::Write;
        let Some(path) = path else {
            return Ok(Self::None);
        };
        mailpki_store::replace_private_file(path, b"")?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "json") {
            let mut file = file;
            file.write_all(b"[")?;
            Ok(Self::Json { file, rows: 0 })
        } else {
            let mut writer = csv::Writer::from_writer(file);
            writer.write_record(["line", "user", "outcome", "detail"])?;
            Ok(Self::Csv(Box::new(writer)))
        }
    }

    fn write(&mut self, row: &ReportRow) -> Result<()> {
        use std::io::Write;
        match self {
            Self::None => {}
            Self::Csv(writer) => {
                let detail = row.detail["reason"]
                    .as_str()
                    .map_or_else(|| row.detail.to_string(), str::to_owned);
                writer.write_record([
                    row.line.to_string(),
                    crate::files::csv_safe(&row.user).into_owned(),
                    row.outcome.to_owned(),
                    crate::files::csv_safe(&detail).into_owned(),
                ])?;
                writer.flush()?;
            }
            Self::Json { file, rows } => {
                let separator = if *rows == 0 { "\n" } else { ",\n" };
                file.write_all(format!("{separator}{}", serde_json::to_string(row)?).as_bytes())?;
                *rows += 1;
            }
        }
        Ok(())
    }

    fn close(self) -> Result<()> {
        use std::io::Write;
        match self {
            Self::None => {}
            Self::Csv(mut writer) => writer.flush()?,
            Self::Json { mut file, .. } => file.write_all(b"\n]\n")?,
        }
        Ok(())
    }
}

/// Runs `work` for every row, `concurrency` users at a time, writing each user's outcome to
/// `report` as it comes.
pub(crate) async fn run<F, Fut>(
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    concurrency: usize,
    progress: &mut Progress,
    printer: Printer,
    report: Option<&Path>,
    work: F,
) -> Result<Tally>
where
    F: Fn(UserRow) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let mut sink = Sink::open(report)?;
    let mut tally = Tally::default();
    let mut in_flight: JoinSet<(UserRow, Outcome)> = JoinSet::new();
    let mut rows = rows.peekable();
    let mut stopping = false;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        while !stopping && in_flight.len() < concurrency.max(1) {
            match rows.next() {
                Some(Ok(row)) => {
                    let task = work(row.clone());
                    in_flight.spawn(async move { (row, task.await) });
                }
                Some(Err(bad)) => {
                    progress.tick(Tick::Failed);
                    sink.write(&bad)?;
                    tally.add(bad);
                }
                None => break,
            }
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            joined = in_flight.join_next() => {
                if let Some(Ok((row, outcome))) = joined {
                    let (entry, tick) = row_of(&row, outcome);
                    progress.tick(tick);
                    sink.write(&entry)?;
                    tally.add(entry);
                }
            }
            _ = &mut interrupt, if !stopping => {
                stopping = true;
                printer.warn("interrupted: finishing the users in flight; run the same command again to resume");
            }
        }
    }
    sink.close()?;
    tally.problems.sort_by_key(|r| r.line);
    Ok(tally)
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
