//! The one place that writes to stdout: data for people, or JSON with `--json`. Logs,
//! progress and errors go to stderr.

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
                println!("{}", text.trim_end());
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
        eprintln!("warning: {text}");
    }

    /// Progress for people, on stderr.
    #[allow(clippy::unused_self)]
    pub(crate) fn info(self, text: &str) {
        eprintln!("{text}");
    }
}
