//! The batch engine behind `google onboard` and the other CSV workflows: rows stream from the
//! CSV, at most `concurrency` users are in flight (Google's quotas are per user, so the work is
//! spread across users), each user's outcome lands in a report, and a stop signal (Ctrl-C in
//! the CLI) stops new users while those in flight finish. Each workflow's per-user work records
//! its steps in the store's journal, so a re-run resumes where it stopped.

use std::future::Future;
use std::path::Path;
use std::sync::Mutex;

use mailpki_kms::Kms;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::error::{Result, WorkflowError, describe};
use crate::rows::{ReportRow, UserRow, csv_safe};

/// How one user's work ended, as progress counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    Done,
    Failed,
    RetryLater,
}

/// Who watches a batch: progress as users finish, and warnings.
pub trait Observer {
    fn finished(&mut self, tick: Tick);
    fn warn(&self, message: &str);
}

/// Fails once, before the first user, when `id` is not the caller's to use as `what` (the
/// issuer key, the CSE key), rather than once for every user.
pub(crate) fn check_usable(kms: &Kms, id: &str, what: &'static str) -> Result<()> {
    tokio::task::block_in_place(|| kms.attributes(id)).map_err(|source| {
        WorkflowError::Unusable {
            id: id.to_owned(),
            what,
            source,
        }
    })?;
    Ok(())
}

/// The notes of a batch's first minting (a fallback CRL URL, say): the same for every user,
/// so they are kept once and said once, at the end.
#[derive(Default)]
pub(crate) struct FirstNotes(Mutex<Option<Vec<String>>>);

impl FirstNotes {
    pub(crate) fn keep(&self, notes: Vec<String>) {
        if let Ok(mut kept) = self.0.lock() {
            kept.get_or_insert(notes);
        }
    }

    pub(crate) fn say(&self, observer: &dyn Observer) {
        let notes = self.0.lock().ok().and_then(|mut n| n.take());
        for note in notes.unwrap_or_default() {
            observer.warn(&note);
        }
    }
}

/// How one user's work ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Done(Value),
    Skipped(String),
    /// Google is not ready for the user yet (CSE still propagating): not a failure.
    RetryLater(String),
    Failed(String),
}

impl Outcome {
    /// Gmail's "not ready yet" becomes retry-later; anything else a failure.
    #[must_use]
    pub fn from_error(error: &WorkflowError) -> Self {
        if error.is_not_ready() {
            Self::RetryLater(describe(error))
        } else {
            Self::Failed(describe(error))
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
pub struct Tally {
    pub done: u64,
    pub skipped: u64,
    pub retry_later: u64,
    pub failed: u64,
    pub problems: Vec<ReportRow>,
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
            .map_err(WorkflowError::Report)?;
        if path.extension().is_some_and(|e| e == "json") {
            let mut file = file;
            file.write_all(b"[").map_err(WorkflowError::Report)?;
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
                    csv_safe(&row.user).into_owned(),
                    row.outcome.to_owned(),
                    csv_safe(&detail).into_owned(),
                ])?;
                writer.flush().map_err(WorkflowError::Report)?;
            }
            Self::Json { file, rows } => {
                let separator = if *rows == 0 { "\n" } else { ",\n" };
                let json =
                    serde_json::to_string(row).map_err(|e| WorkflowError::Report(e.into()))?;
                file.write_all(format!("{separator}{json}").as_bytes())
                    .map_err(WorkflowError::Report)?;
                *rows += 1;
            }
        }
        Ok(())
    }

    fn close(self) -> Result<()> {
        use std::io::Write;
        match self {
            Self::None => {}
            Self::Csv(mut writer) => writer.flush().map_err(WorkflowError::Report)?,
            Self::Json { mut file, .. } => {
                file.write_all(b"\n]\n").map_err(WorkflowError::Report)?;
            }
        }
        Ok(())
    }
}

/// Runs `work` for every row, `concurrency` users at a time, writing each user's outcome to
/// `report` as it comes; once `stop` completes no new user starts.
pub async fn run<F, Fut>(
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    concurrency: usize,
    observer: &mut dyn Observer,
    report: Option<&Path>,
    stop: impl Future<Output = ()>,
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
    tokio::pin!(stop);
    loop {
        while !stopping && in_flight.len() < concurrency.max(1) {
            match rows.next() {
                Some(Ok(row)) => {
                    let task = work(row.clone());
                    in_flight.spawn(async move { (row, task.await) });
                }
                Some(Err(bad)) => {
                    observer.finished(Tick::Failed);
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
                    observer.finished(tick);
                    sink.write(&entry)?;
                    tally.add(entry);
                }
            }
            () = &mut stop, if !stopping => {
                stopping = true;
                observer.warn("interrupted: finishing the users in flight; run the same command again to resume");
            }
        }
    }
    sink.close()?;
    tally.problems.sort_by_key(|r| r.line);
    Ok(tally)
}
