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

    /// Prints JSON in both modes (for commands whose output is a JSON document).
    // A method rather than a free function so that every stdout write goes through here.
    #[allow(clippy::unused_self)]
    pub(crate) fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }

    /// A warning for people, on stderr (never mixed into data on stdout).
    #[allow(clippy::unused_self)]
    pub(crate) fn warn(self, text: &str) {
        eprintln!("warning: {}", for_terminal(text));
    }

    /// Progress for people, on stderr.
    #[allow(clippy::unused_self)]
    pub(crate) fn info(self, text: &str) {
        eprintln!("{}", for_terminal(text));
    }
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
