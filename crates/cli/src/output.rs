//! The one place that writes to stdout: data for people, or JSON with `--json`. Logs,
//! progress and errors go to stderr. Text for people is shown with its control, bidi and
//! zero-width characters escaped (line breaks and tabs aside): much of it came from someone
//! else (certificate subjects, IDs, audit lines), and none of it may drive the terminal.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Display;

use anyhow::Result;
use serde::Serialize;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Printer {
    pub(crate) json: bool,
}

impl Printer {
    /// Prints `human` for people or `value` as JSON.
    pub(crate) fn print<T: Serialize + ?Sized>(self, human: impl Display, value: &T) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            let text = human.to_string();
            if !text.is_empty() {
                println!("{}", for_terminal(text.trim_end()));
            }
        }
        Ok(())
    }

    /// Prints `rows` as aligned columns for people (or `empty` when there are none), or
    /// `value` as JSON.
    pub(crate) fn table<T: Serialize + ?Sized>(
        self,
        rows: &[Vec<String>],
        empty: &str,
        value: &T,
    ) -> Result<()> {
        self.print(table(rows, empty), value)
    }

    /// Prints one line per item for people (or `empty` when there are none), or `value` as
    /// JSON.
    pub(crate) fn lines<T: Serialize + ?Sized>(
        self,
        lines: &[String],
        empty: &str,
        value: &T,
    ) -> Result<()> {
        if lines.is_empty() {
            self.print(empty, value)
        } else {
            self.print(lines.join("\n"), value)
        }
    }

    /// Prints JSON in both modes (for commands whose output is a JSON document).
    // A method rather than a free function so that every stdout write goes through here.
    #[allow(clippy::unused_self)]
    pub(crate) fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }

    /// A warning on stderr (never mixed into data on stdout): for people, or one JSON object
    /// per line, `{"warning": ...}`, with `--json`.
    pub(crate) fn warn(self, text: &str) {
        if self.json {
            eprintln!("{}", serde_json::json!({ "warning": text }));
        } else {
            eprintln!("warning: {}", for_terminal(text));
        }
    }

    /// Progress for people, on stderr.
    #[allow(clippy::unused_self)]
    pub(crate) fn info(self, text: &str) {
        eprintln!("{}", for_terminal(text));
    }
}

/// Rows as columns padded to their widest cell (the last column is not padded), or `empty`.
pub(crate) fn table(rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return empty.to_owned();
    }
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[c] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `text` line by line through [`mailpki_store::escape`]: its own line breaks and tabs stay,
/// every other control, bidi or zero-width character is shown as an escape.
pub(crate) fn for_terminal(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|cell| mailpki_store::escape(cell).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn terminal_text_keeps_its_lines_and_loses_its_escapes() {
        assert_eq!(
            super::for_terminal("a\tb\nc\u{1b}[2J\u{202e}d"),
            "a\tb\nc\\u{1b}[2J\\u{202e}d"
        );
    }
}
