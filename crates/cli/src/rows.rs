//! Users from a CSV, as the bulk commands read them: the first column is the user; a header
//! (`email`/`user`), `#` comments and empty rows are skipped; a UTF-8 byte order mark is
//! dropped; malformed and duplicate rows come out as failed report rows with their line.
//! Self-contained (the fuzz target `csv_rows` compiles this very file).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

/// One CSV row for one user.
#[derive(Clone, Debug)]
pub(crate) struct UserRow {
    pub(crate) line: u64,
    pub(crate) user: String,
    /// The columns after the user.
    pub(crate) fields: Vec<String>,
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
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(rows_of(file))
}

/// The rows of a CSV read from `input`.
pub(crate) fn rows_of<R: std::io::Read>(
    input: R,
) -> impl Iterator<Item = Result<UserRow, ReportRow>> {
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(input);
    // Hashes, not the keys themselves, so memory stays small however long the CSV.
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let hasher = std::collections::hash_map::RandomState::new();
    reader
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
            let user = strip_bom(record.get(0).unwrap_or_default()).to_owned();
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
            let hashed = std::hash::BuildHasher::hash_one(&hasher, &key);
            if let Some(first) = seen.insert(hashed, line) {
                return Some(Err(failed(
                    line,
                    &user,
                    format!("duplicate row: already on line {first}"),
                )));
            }
            Some(Ok(UserRow { line, user, fields }))
        })
}

/// Spreadsheets save CSV with a UTF-8 byte order mark before the first field.
pub(crate) fn strip_bom(field: &str) -> &str {
    field.strip_prefix('\u{feff}').unwrap_or(field).trim()
}
