//! The bulk engine behind `google onboard` and the other CSV commands: rows stream from the
//! CSV, at most `concurrency` users are in flight (Google's quotas are per user, so the work is
//! spread across users), each user's outcome lands in a report, and Ctrl-C stops new users
//! while those in flight finish. Each command's per-user work records its steps in the store's
//! journal, so a re-run resumes where it stopped.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::output::Printer;
use crate::progress::{Progress, Tick};

/// One CSV row for one user.
#[derive(Clone, Debug)]
pub(crate) struct UserRow {
    pub(crate) line: u64,
    pub(crate) user: String,
    /// The columns after the user.
    pub(crate) fields: Vec<String>,
}

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

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReportRow {
    pub(crate) line: u64,
    pub(crate) user: String,
    pub(crate) outcome: &'static str,
    pub(crate) detail: Value,
}

/// Reads the CSV lazily: the first column is the user; a header (`email`/`user`) and `#`
/// comments are skipped; malformed and duplicate rows come out as errors with their line.
pub(crate) fn read_rows(path: &Path) -> Result<impl Iterator<Item = Result<UserRow, ReportRow>>> {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    Ok(reader
        .into_records()
        .enumerate()
        .filter_map(move |(index, record)| {
            let failed = |line: u64, user: &str, reason: String| ReportRow {
                line,
                user: user.to_owned(),
                outcome: "failed",
                detail: json!({"reason": reason}),
            };
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(index as u64 + 1, csv::Position::line);
                    return Some(Err(failed(line, "", format!("malformed CSV: {e}"))));
                }
            };
            let line = record
                .position()
                .map_or(index as u64 + 1, csv::Position::line);
            let user = record.get(0).unwrap_or_default().to_owned();
            if user.is_empty()
                || (index == 0
                    && (user.eq_ignore_ascii_case("email") || user.eq_ignore_ascii_case("user")))
            {
                return None;
            }
            let fields: Vec<String> = record.iter().skip(1).map(str::to_owned).collect();
            // Rows are keyed by user and address (the alias column, else the user); the same
            // key twice is a mistake in the CSV, not a second job.
            let address = fields.get(2).filter(|a| !a.is_empty()).unwrap_or(&user);
            let key = format!(
                "{}|{}",
                user.to_ascii_lowercase(),
                address.to_ascii_lowercase()
            );
            if let Some(first) = seen.insert(key, line) {
                return Some(Err(failed(
                    line,
                    &user,
                    format!("duplicate row: already on line {first}"),
                )));
            }
            Some(Ok(UserRow { line, user, fields }))
        }))
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

/// Runs `work` for every row, `concurrency` users at a time.
pub(crate) async fn run<F, Fut>(
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    concurrency: usize,
    progress: &mut Progress,
    printer: Printer,
    work: F,
) -> Vec<ReportRow>
where
    F: Fn(UserRow) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let mut report = Vec::new();
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
                    report.push(bad);
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
                    report.push(entry);
                }
            }
            _ = &mut interrupt, if !stopping => {
                stopping = true;
                printer.warn("interrupted: finishing the users in flight; run the same command again to resume");
            }
        }
    }
    report.sort_by_key(|r| r.line);
    report
}

/// Exit status for bulk commands whose users must be tried again later (sysexits' TEMPFAIL).
#[derive(Debug, thiserror::Error)]
#[error("some users are not ready yet")]
pub(crate) struct RetryLater;

/// Writes the report (`.json`, else CSV), prints the summary, and fails when any user did.
pub(crate) fn finish(
    printer: Printer,
    label: &str,
    report: &[ReportRow],
    report_file: Option<&Path>,
) -> Result<()> {
    if let Some(path) = report_file {
        write_report(path, report)?;
    }
    let count = |o: &str| report.iter().filter(|r| r.outcome == o).count();
    let (done, skipped, later, failed) = (
        count("done"),
        count("skipped"),
        count("retry-later"),
        count("failed"),
    );
    for r in report
        .iter()
        .filter(|r| r.outcome == "failed" || r.outcome == "retry-later")
    {
        let reason = r.detail["reason"].as_str().unwrap_or_default();
        printer.warn(&format!(
            "line {} ({}): {}: {reason}",
            r.line, r.user, r.outcome
        ));
    }
    printer.print(
        format!("{label}: {done} done, {skipped} skipped, {later} retry later, {failed} failed"),
        &json!({"done": done, "skipped": skipped, "retry_later": later, "failed": failed, "users": report}),
    )?;
    if failed > 0 {
        Err(crate::Rejected.into())
    } else if later > 0 {
        Err(RetryLater.into())
    } else {
        Ok(())
    }
}

fn write_report(path: &Path, report: &[ReportRow]) -> Result<()> {
    let data = if path.extension().is_some_and(|e| e == "json") {
        serde_json::to_vec_pretty(report)?
    } else {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(["line", "user", "outcome", "detail"])?;
        for r in report {
            let detail = r.detail["reason"]
                .as_str()
                .map_or_else(|| r.detail.to_string(), str::to_owned);
            writer.write_record([
                r.line.to_string(),
                r.user.clone(),
                r.outcome.to_owned(),
                detail,
            ])?;
        }
        writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the report: {e}"))?
    };
    if path.exists() {
        std::fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    mailpki_store::write_private_file(path, &data)?;
    Ok(())
}
