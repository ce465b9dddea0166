//! Helpers for mailpki's tests: a private temporary HOME per test, the `mailpki` binary run
//! in it, and certificate authorities made at run time with the `openssl` command line, so
//! no private key is ever checked in.

#![allow(
    clippy::missing_panics_doc,
    clippy::must_use_candidate,
    clippy::return_self_not_must_use
)]
// Test helpers fail loudly: a broken fixture should stop the test with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Notes to the developer running the tests go to stderr, as cargo test shows them.
#![allow(clippy::print_stderr)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

mod emulator;
mod http;
mod oracles;
mod pki;
mod postgres;
mod server;
mod softhsm;

pub use emulator::EmulatorProcess;
pub use http::{Reply, http1};
pub use oracles::{
    gmail_discovery_document, google_python, pkilint, pkilint_crl_errors, pkilint_errors,
    pkilint_findings, pkilint_ocsp_errors, skipped,
};
pub use pki::TestPki;
pub use postgres::TestDatabase;
pub use server::ServerProcess;
pub use softhsm::{Pulled, SoftHsm};

/// Environment variables that would leak the developer's setup into a test.
const SCRUBBED: &[&str] = &[
    "MAILPKI_CONFIG",
    "MAILPKI_DATABASE",
    "MAILPKI_MASTER_KEY_FILE",
    "MAILPKI_MASTER_KEY",
    "MAILPKI_MASTER_PASSPHRASE",
    "MAILPKI_USER",
    "MAILPKI_PKCS12_PASSWORD",
    "MAILPKI_GMAIL_API_URL",
    "MAILPKI_KMS_URL",
    "MAILPKI_KMS_TOKEN",
    "MAILPKI_KACLS_URL",
    "MAILPKI_HSM_PIN",
    "SOFTHSM2_CONF",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "RUST_LOG",
];

/// A temporary HOME with the `mailpki` binary run inside it.
pub struct TestEnv {
    dir: TempDir,
    bin: PathBuf,
    /// When set, `mailpki` runs as a client of this KMS server: URL and token per user.
    server: std::cell::RefCell<Option<(String, std::collections::HashMap<String, String>)>>,
    /// Variables every process of this test gets (never the test process's own).
    vars: std::cell::RefCell<Vec<(String, std::ffi::OsString)>>,
}

impl TestEnv {
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mailpki-test")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Self {
            dir,
            bin: bin.into(),
            server: std::cell::RefCell::new(None),
            vars: std::cell::RefCell::default(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Where the embedded defaults put the store.
    pub fn data_dir(&self) -> PathBuf {
        self.home().join(".local/share/mailpki")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `mailpki WORDS` as user `alice`; `words` is split on white space (add paths and
    /// arguments with spaces through [`Run::arg`]).
    pub fn run(&self, words: &str) -> Run {
        self.run_as("alice", words)
    }

    /// `mailpki WORDS` as `user`.
    pub fn run_as(&self, user: &str, words: &str) -> Run {
        self.mailpki_as(user, words.split_whitespace())
    }

    /// `mailpki ARGS` as user `alice`.
    pub fn mailpki<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.mailpki_as("alice", args)
    }

    pub fn mailpki_as<I, S>(&self, user: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command();
        command.env("MAILPKI_USER", user).args(args);
        if let Some((url, tokens)) = self.server.borrow().as_ref() {
            // A user without a token gets one the server does not know.
            let token = tokens.get(user).map_or("mpk_not-a-token", String::as_str);
            command
                .env("MAILPKI_KMS_URL", url)
                .env("MAILPKI_KMS_TOKEN", token);
        }
        Run::new(command)
    }

    /// Sets `key` for every process this environment runs from now on.
    pub fn set_env(&self, key: &str, value: impl AsRef<OsStr>) {
        self.vars
            .borrow_mut()
            .push((key.to_owned(), value.as_ref().to_owned()));
    }

    /// A bare command with the test HOME and a scrubbed environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        for var in SCRUBBED {
            command.env_remove(var);
        }
        for (key, value) in self.vars.borrow().iter() {
            command.env(key, value);
        }
        command
            .env("HOME", self.home())
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }
}

/// A command ready to run, with assertions on its outcome.
pub struct Run {
    command: Command,
}

impl Run {
    fn new(command: Command) -> Self {
        Self { command }
    }

    /// Appends one argument, as is.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Appends arguments, each as is.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Appends white-space separated words.
    pub fn then(mut self, words: &str) -> Self {
        self.command.args(words.split_whitespace());
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn output(mut self) -> Outcome {
        let output = self.command.output().expect("the mailpki binary runs");
        Outcome {
            description: format!("{:?}", self.command),
            output,
        }
    }

    /// Runs and asserts exit code 0.
    pub fn ok(self) -> Outcome {
        self.output().code(0)
    }

    /// Runs and asserts exit code `code`.
    pub fn fails(self, code: i32) -> Outcome {
        self.output().code(code)
    }
}

pub struct Outcome {
    description: String,
    pub output: Output,
}

impl Outcome {
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.output.status.code(),
            Some(expected),
            "{}\nstdout:\n{}\nstderr:\n{}",
            self.description,
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.output.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout()))
    }

    /// Asserts stderr contains `needle` (case-insensitive).
    pub fn stderr_has(self, needle: &str) -> Self {
        let stderr = self.stderr();
        assert!(
            stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?}:\n{stderr}"
        );
        self
    }
}

/// Runs `openssl ARGS` in `dir`, panicking with its stderr on failure.
pub fn openssl<I, S>(dir: &Path, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("openssl");
    command.current_dir(dir).args(args).stdin(Stdio::null());
    let output = command
        .output()
        .expect("the openssl command line is installed");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// A path as a command-line argument (test paths are always UTF-8).
pub fn s(path: &Path) -> String {
    path.to_str().expect("test paths are UTF-8").to_owned()
}

/// Lower-case hex, to look for binary secrets in text.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
