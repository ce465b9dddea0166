//! Users from a CSV, as every bulk command reads them (`certify-batch`, `onboard`,
//! `import-csv`, `rotate`): the first column is the user. Files as spreadsheets save them are
//! read as they are: a UTF-8 byte order mark is dropped, the delimiter is `,`, `;` (European
//! Excel) or a tab, whichever the first line uses, a header row is recognised by its words
//! (`Email Address`, `Primary Email`, `User`, in any case), and line numbers count physical
//! lines whether they end in LF or CRLF. `#` comments and empty rows are skipped; malformed and
//! duplicate rows come out as failed report rows with their line. And the other way: cells
//! written so that a spreadsheet shows them as text.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
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

/// Reads the CSV lazily; see the module's description.
pub fn read_rows(path: &Path) -> Result<impl Iterator<Item = Result<UserRow, ReportRow>> + use<>> {
    let file = std::fs::File::open(path).map_err(|source| WorkflowError::Read {
        path: path.to_owned(),
        source,
    })?;
    rows_of(file).map_err(|source| WorkflowError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The rows of a CSV read from `input`.
pub fn rows_of<R: Read>(
    mut input: R,
) -> std::io::Result<impl Iterator<Item = Result<UserRow, ReportRow>>> {
    let head = read_head(&mut input)?;
    let delimiter = sniff_delimiter(&head);
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(delimiter)
        .from_reader(LineCounter {
            inner: std::io::Cursor::new(head).chain(input),
            read: 0,
            newlines: VecDeque::new(),
        });
    Ok(Rows {
        reader,
        record: csv::StringRecord::new(),
        index: 0,
        ended: false,
        lines_before: 0,
        seen: HashMap::new(),
        hasher: std::collections::hash_map::RandomState::new(),
    })
}

/// The start of the input, up to its first line break (at most 64 KiB), to choose the
/// delimiter from.
fn read_head(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while head.len() < 64 * 1024 && !head.contains(&b'\n') {
        let n = input.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(head)
}

/// `;` or a tab when the first line that is not a comment uses more of it than of `,`.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let text = String::from_utf8_lossy(head);
    let Some(line) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return b',';
    };
    // Outside quotes only: a quoted subject holds commas.
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    match counts {
        [comma, semi, _] if semi > comma && semi > 0 => b';',
        [comma, semi, tab] if tab > comma && tab > semi => b'\t',
        _ => b',',
    }
}

/// Counts the line breaks the CSV reader consumes, so that a record's byte offset becomes its
/// physical line (the reader's own count goes wrong on CRLF).
struct LineCounter<R> {
    inner: R,
    read: u64,
    /// Offsets of line breaks read but not yet passed by a record.
    newlines: VecDeque<u64>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                self.newlines.push_back(self.read + i as u64);
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

struct Rows<R> {
    reader: csv::Reader<LineCounter<R>>,
    record: csv::StringRecord,
    index: usize,
    ended: bool,
    /// Line breaks before the last record's start.
    lines_before: u64,
    /// Hashes of the rows' keys, not the keys, so memory stays small however long the CSV.
    seen: HashMap<u64, u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl<R: Read> Rows<R> {
    /// The physical line (from 1) where the record just read begins. The reader's own count
    /// goes wrong on CRLF, comments and empty lines, so the line is counted back from where the
    /// record ends: the line breaks before its end, less the terminator it consumed (LF; of a
    /// CRLF the reader stops before the LF), less the line breaks inside its quoted fields.
    fn line_of_record(&mut self, embedded: u64) -> u64 {
        let end = self.reader.position().byte();
        let newlines = &mut self.reader.get_mut().newlines;
        let mut terminated = false;
        while let Some(&at) = newlines.front().filter(|&&at| at < end) {
            newlines.pop_front();
            self.lines_before += 1;
            terminated = at + 1 == end;
        }
        (self.lines_before + 1)
            .saturating_sub(u64::from(terminated))
            .saturating_sub(embedded)
            .max(1)
    }

    fn failed(line: u64, user: &str, reason: &str) -> ReportRow {
        ReportRow {
            line,
            user: user.to_owned(),
            outcome: "failed",
            detail: json!({"reason": reason}),
        }
    }
}

impl<R: Read> Iterator for Rows<R> {
    type Item = Result<UserRow, ReportRow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.ended {
                return None;
            }
            let index = self.index;
            self.index += 1;
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Err(e) => {
                    let line = self.line_of_record(0);
                    let failed = Self::failed(line, "", &format!("malformed CSV: {e}"));
                    // An I/O error does not go away: end after reporting it.
                    self.ended = matches!(e.kind(), csv::ErrorKind::Io(_));
                    return Some(Err(failed));
                }
                Ok(true) => {}
            }
            let embedded = self
                .record
                .iter()
                .map(|f| f.bytes().filter(|&b| b == b'\n').count() as u64)
                .sum();
            let line = self.line_of_record(embedded);
            let user = strip_bom(self.record.get(0).unwrap_or_default()).to_owned();
            if user.is_empty() || (index == 0 && is_header(&user)) {
                continue;
            }
            let fields: Vec<String> = self
                .record
                .iter()
                .skip(1)
                .map(|f| f.trim().to_owned())
                .collect();
            // Rows are keyed by user and address (the alias column, else the user); the same
            // key twice is a mistake in the CSV, not a second job.
            let address = fields.get(2).filter(|a| !a.is_empty()).unwrap_or(&user);
            let key = format!(
                "{}|{}",
                user.to_ascii_lowercase(),
                address.to_ascii_lowercase()
            );
            let hashed = std::hash::BuildHasher::hash_one(&self.hasher, &key);
            if let Some(first) = self.seen.insert(hashed, line) {
                return Some(Err(Self::failed(
                    line,
                    &user,
                    &format!("duplicate row: already on line {first}"),
                )));
            }
            return Some(Ok(UserRow { line, user, fields }));
        }
    }
}

/// Whether the first row's first cell names the column rather than a user: no address has no
/// `@`, and the words are the ones spreadsheets and admin consoles export (`email`, `Email
/// Address`, `Primary Email`, `User`, `Username`, `E-mail`, `login`...).
fn is_header(cell: &str) -> bool {
    if cell.contains('@') {
        return false;
    }
    let letters: String = cell
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "mail",
        "user",
        "address",
        "login",
        "account",
        "recipient",
        "upn",
        "principal",
    ]
    .iter()
    .any(|word| letters.contains(word))
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

    fn read(text: &[u8]) -> Vec<(u64, String, Vec<String>, bool)> {
        rows_of(text)
            .unwrap()
            .map(|row| match row {
                Ok(r) => (r.line, r.user, r.fields, true),
                Err(r) => (r.line, r.user, vec![r.detail["reason"].to_string()], false),
            })
            .collect()
    }

    #[test]
    fn crlf_files_count_physical_lines() {
        let crlf = read(
            b"email,subject\r\na@x.org\r\n\r\n# note\r\nb@x.org,\"CN=b,\r\n O=x\"\r\nc@x.org\r\n",
        );
        let lines: Vec<_> = crlf.iter().map(|r| (r.0, r.1.as_str())).collect();
        assert_eq!(lines, [(2, "a@x.org"), (5, "b@x.org"), (7, "c@x.org")]);
        let lf = read(b"a@x.org\nb@x.org\nc@x.org\n");
        let lines: Vec<_> = lf.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 2, 3]);
    }

    #[test]
    fn spreadsheet_headers_are_recognised_and_addresses_never_are() {
        for header in [
            "email",
            "Email Address",
            "Primary Email",
            "User",
            "USER EMAIL",
            "E-mail",
            "Username",
            "\u{feff}Email Address",
        ] {
            let rows = read(format!("{header},x\nuser@x.org,y\n").as_bytes());
            assert_eq!(rows.len(), 1, "{header}: {rows:?}");
            assert_eq!((rows[0].0, rows[0].1.as_str()), (2, "user@x.org"));
        }
        let rows = read(b"mail@user.org\nb@x.org\n");
        assert_eq!(rows.len(), 2, "an address is a user, whatever its words");
        let rows = read(b"jane.example.org\nb@x.org\n");
        assert_eq!(rows.len(), 2, "a first row without header words is a row");
    }

    #[test]
    fn the_delimiter_is_the_one_the_first_line_uses() {
        let rows = read(b"Email;Subject;Password\r\na@x.org;\"CN=a, O=x\";pw\r\n");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].2, ["CN=a, O=x", "pw"]);
        let rows = read(b"a@x.org\t\tpw\n");
        assert_eq!(rows[0].2, ["", "pw"]);
        let rows = read(b"a@x.org,\"CN=a; O=x\",pw\n");
        assert_eq!(
            rows[0].2,
            ["CN=a; O=x", "pw"],
            "quoted semicolons do not count"
        );
    }

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
