//! Users from a CSV, as the bulk commands read them: the first column is the user; a header
//! (`email`/`user`), `#` comments and empty rows are skipped; a UTF-8 byte order mark is
//! dropped; malformed and duplicate rows come out as failed report rows with their line. And
//! the other way: cells written so that a spreadsheet shows them as text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Result, WorkflowError};

/// One CSV row for one user.
#[derive(Clone, Debug)]
pub struct UserRow {
    pub line: u64,
    pub user: String,
    /// The columns after the user.
    pub fields: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    pub line: u64,
    pub user: String,
    pub outcome: &'static str,
    pub detail: Value,
}

/// Reads the CSV lazily: the first column is the user; a header (`email`/`user`) and `#`
/// comments are skipped; malformed and duplicate rows come out as errors with their line.
pub fn read_rows(path: &Path) -> Result<impl Iterator<Item = Result<UserRow, ReportRow>>> {
    let file = std::fs::File::open(path).map_err(|source| WorkflowError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(rows_of(file))
}

/// The rows of a CSV read from `input`.
pub fn rows_of<R: std::io::Read>(input: R) -> impl Iterator<Item = Result<UserRow, ReportRow>> {
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

/// How many rows [`read_rows`] yields (users and bad rows), for a progress bar's length.
pub fn count_rows(path: &Path) -> Result<u64> {
    Ok(read_rows(path)?.count() as u64)
}

/// Spreadsheets save CSV with a UTF-8 byte order mark before the first field.
#[must_use]
pub fn strip_bom(field: &str) -> &str {
    field.strip_prefix('\u{feff}').unwrap_or(field).trim()
}

/// Whether a spreadsheet would run `field` as a formula.
fn starts_formula(field: &str) -> bool {
    field.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// `field` as a CSV cell a spreadsheet shows as text: a leading `'` before a formula start.
#[must_use]
pub fn csv_safe(field: &str) -> Cow<'_, str> {
    if starts_formula(field) {
        Cow::Owned(format!("'{field}"))
    } else {
        Cow::Borrowed(field)
    }
}

/// The field [`csv_safe`] wrote, as it was.
#[must_use]
pub fn csv_unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if starts_formula(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_written_as_text_and_read_back() {
        for field in [
            "=HYPERLINK(\"x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "plain",
            "'quoted",
        ] {
            assert_eq!(csv_unescape(&csv_safe(field)), field);
        }
        assert_eq!(csv_safe("=1+1"), "'=1+1");
        assert_eq!(csv_safe("jane@example.com"), "jane@example.com");
    }
}
