//! The batch engine behind `google onboard` and the other CSV workflows: rows stream from the
//! CSV, at most `concurrency` users are in flight (Google's quotas are per user, so the work is
//! spread across users), each user's outcome lands in a report, and a stop signal (Ctrl-C in
//! the CLI) stops new users while those in flight finish. Each workflow's per-user work records
//! its steps in the store's journal, so a re-run resumes where it stopped.

use std::collections::BTreeMap;
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

/// Who watches a batch: progress as users finish, and warnings. `Send`: a server runs batches
/// on its runtime.
pub trait Observer: Send {
    fn finished(&mut self, tick: Tick);
    fn warn(&self, message: &str);
}

/// Runs a blocking store or server call without holding up the runtime's other tasks (the
/// runtime must be multi-threaded).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Fails once, before the first user, when `id` is not the caller's to use as `what` (the
/// issuer key, the CSE key), rather than once for every user.
pub(crate) fn check_usable(kms: &Kms, id: &str, what: &'static str) -> Result<()> {
    blocking(|| kms.attributes(id)).map_err(|source| WorkflowError::Unusable {
        id: id.to_owned(),
        what,
        source,
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
    RetryLater(Problem),
    Failed(Problem),
}

/// Why a user's work did not finish, and what to do about it.
#[derive(Clone, Debug)]
pub struct Problem {
    pub reason: String,
    pub hint: Option<String>,
}

impl Problem {
    #[must_use]
    pub fn of(error: &WorkflowError) -> Self {
        Self {
            reason: describe(error),
            hint: crate::hints::in_chain(error),
        }
    }
}

impl From<String> for Problem {
    fn from(reason: String) -> Self {
        Self { reason, hint: None }
    }
}

impl Outcome {
    /// Gmail's "not ready yet" becomes retry-later; anything else a failure.
    #[must_use]
    pub fn from_error(error: &WorkflowError) -> Self {
        if error.is_not_ready() {
            Self::RetryLater(Problem::of(error))
        } else {
            Self::Failed(Problem::of(error))
        }
    }
}

fn problem(p: Problem) -> Value {
    match p.hint {
        Some(hint) => json!({"reason": p.reason, "hint": hint}),
        None => json!({"reason": p.reason}),
    }
}

fn row_of(row: &UserRow, outcome: Outcome) -> (ReportRow, Tick) {
    let (name, detail, tick) = match outcome {
        Outcome::Done(v) => ("done", v, Tick::Done),
        Outcome::Skipped(r) => ("skipped", json!({"reason": r}), Tick::Done),
        Outcome::RetryLater(p) => ("retry-later", problem(p), Tick::RetryLater),
        Outcome::Failed(p) => ("failed", problem(p), Tick::Failed),
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

/// Counts of outcomes, and the rows that need attention (failed, retry later): the first
/// [`Tally::KEPT_PROBLEMS`] of them, so that a batch of 100,000 rows that all fail holds no
/// more in memory than one that fails a thousand (the report file has every row).
#[derive(Debug, Default)]
pub struct Tally {
    pub done: u64,
    pub skipped: u64,
    pub retry_later: u64,
    pub failed: u64,
    pub problems: Vec<ReportRow>,
    /// Rows needing attention beyond those kept in `problems`.
    pub problems_left_out: u64,
}

impl Tally {
    pub const KEPT_PROBLEMS: usize = 1000;

    fn add(&mut self, row: ReportRow) {
        match row.outcome {
            "done" => self.done += 1,
            "skipped" => self.skipped += 1,
            "retry-later" => self.retry_later += 1,
            _ => self.failed += 1,
        }
        if matches!(row.outcome, "failed" | "retry-later") {
            if self.problems.len() < Self::KEPT_PROBLEMS {
                self.problems.push(row);
            } else {
                self.problems_left_out += 1;
            }
        }
    }
}

/// The CSV report's columns: what every workflow's detail may hold, flat, so a spreadsheet
/// filters on them. The JSON report keeps each row's detail whole.
const CSV_COLUMNS: [&str; 12] = [
    "line",
    "user",
    "outcome",
    "certificate_id",
    "key_pair_id",
    "smime_id",
    "send_as",
    "serial_number",
    "not_after",
    "action",
    "reason",
    "hint",
];

/// Where report rows go: a JSON array or CSV, written in the CSV's order as soon as every
/// earlier row is known (users finish out of order; the rows wait in `pending` meanwhile).
struct Sink {
    format: Format,
    next: u64,
    pending: BTreeMap<u64, ReportRow>,
}

enum Format {
    None,
    Csv(Box<csv::Writer<std::fs::File>>),
    Json { file: std::fs::File, rows: u64 },
}

impl Sink {
    fn open(path: Option<&Path>) -> Result<Self> {
        use std::io::Write;
        let format = match path {
            None => Format::None,
            Some(path) => {
                mailpki_store::replace_private_file(path, b"")?;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(WorkflowError::Report)?;
                if path.extension().is_some_and(|e| e == "json") {
                    file.write_all(b"[").map_err(WorkflowError::Report)?;
                    Format::Json { file, rows: 0 }
                } else {
                    let mut writer = csv::Writer::from_writer(file);
                    writer.write_record(CSV_COLUMNS)?;
                    Format::Csv(Box::new(writer))
                }
            }
        };
        Ok(Self {
            format,
            next: 0,
            pending: BTreeMap::new(),
        })
    }

    /// Takes the row at position `seq` of the CSV; writes it and any rows it was holding up.
    fn add(&mut self, seq: u64, row: &ReportRow) -> Result<()> {
        if matches!(self.format, Format::None) {
            return Ok(());
        }
        self.pending.insert(seq, row.clone());
        while let Some(row) = self.pending.remove(&self.next) {
            self.write(&row)?;
            self.next += 1;
        }
        Ok(())
    }

    fn write(&mut self, row: &ReportRow) -> Result<()> {
        use std::io::Write;
        match &mut self.format {
            Format::None => {}
            Format::Csv(writer) => {
                let cell = |column: &str| match column {
                    "line" => row.line.to_string(),
                    "user" => csv_safe(&row.user).into_owned(),
                    "outcome" => row.outcome.to_owned(),
                    key => match &row.detail[key] {
                        Value::Null => String::new(),
                        Value::String(text) => csv_safe(text).into_owned(),
                        other => csv_safe(&other.to_string()).into_owned(),
                    },
                };
                writer.write_record(CSV_COLUMNS.map(cell))?;
                writer.flush().map_err(WorkflowError::Report)?;
            }
            Format::Json { file, rows } => {
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

    /// Writes what is still held (rows after a user that never finished: interrupted), then
    /// ends the file.
    fn close(mut self) -> Result<()> {
        use std::io::Write;
        for row in std::mem::take(&mut self.pending).into_values() {
            self.write(&row)?;
        }
        match self.format {
            Format::None => {}
            Format::Csv(mut writer) => writer.flush().map_err(WorkflowError::Report)?,
            Format::Json { mut file, .. } => {
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
    let mut in_flight: JoinSet<(u64, UserRow, Outcome)> = JoinSet::new();
    let mut rows = rows.peekable();
    let mut seq = 0u64;
    let mut stopping = false;
    tokio::pin!(stop);
    loop {
        while !stopping && in_flight.len() < concurrency.max(1) {
            let this = seq;
            match rows.next() {
                Some(Ok(row)) => {
                    let task = work(row.clone());
                    in_flight.spawn(async move { (this, row, task.await) });
                }
                Some(Err(bad)) => {
                    observer.finished(Tick::Failed);
                    sink.add(this, &bad)?;
                    tally.add(bad);
                }
                None => break,
            }
            seq += 1;
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            joined = in_flight.join_next() => {
                if let Some(Ok((this, row, outcome))) = joined {
                    let (entry, tick) = row_of(&row, outcome);
                    observer.finished(tick);
                    sink.add(this, &entry)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_keeps_the_first_problems_and_counts_the_rest() {
        let mut tally = Tally::default();
        let rows = Tally::KEPT_PROBLEMS as u64 + 500;
        for line in 1..=rows {
            tally.add(ReportRow {
                line,
                user: format!("user{line}@example.com"),
                outcome: if line % 2 == 0 {
                    "failed"
                } else {
                    "retry-later"
                },
                detail: json!({}),
            });
        }
        tally.add(ReportRow {
            line: rows + 1,
            user: "done@example.com".to_owned(),
            outcome: "done",
            detail: json!({}),
        });
        assert_eq!(tally.problems.len(), Tally::KEPT_PROBLEMS);
        assert_eq!(tally.problems_left_out, 500);
        assert_eq!((tally.failed + tally.retry_later, tally.done), (rows, 1));
    }
}
