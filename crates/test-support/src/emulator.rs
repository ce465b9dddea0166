//! `mailpki emulator serve` as a child process for a test.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::{Run, TestEnv, http1};

/// A `mailpki emulator serve` child on a free port, killed on drop.
pub struct EmulatorProcess {
    child: std::process::Child,
    pub url: String,
    /// The service account key file it wrote.
    pub key_file: PathBuf,
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestEnv {
    /// Starts the emulator with `users` (CSE enabled) and the test PKI's root trusted.
    pub fn start_emulator(&self, users: &[&str], trusted_root: &Path) -> EmulatorProcess {
        self.start_emulator_with(users, trusted_root, &[])
    }

    /// Same, with more `emulator serve` arguments.
    pub fn start_emulator_with(
        &self,
        users: &[&str],
        trusted_root: &Path,
        extra: &[&str],
    ) -> EmulatorProcess {
        use std::io::BufRead;
        let key_file = self.path("sa.json");
        let mut command = self.command();
        command
            .args([
                "emulator",
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--write-service-account",
            ])
            .arg(&key_file)
            .arg("--trusted-ca")
            .arg(trusted_root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for user in users {
            command.args(["--user-email", user]);
        }
        command.args(extra);
        let mut child = command.spawn().expect("the emulator starts");
        let stdout = child.stdout.take().expect("piped stdout");
        // The first line is the URL, printed once the port is bound and the key file written.
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the emulator prints its URL");
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line {url:?}"
        );
        EmulatorProcess {
            child,
            url,
            key_file,
        }
    }
}

impl EmulatorProcess {
    /// `mailpki WORDS` as alice, pointed at this emulator.
    pub fn run(&self, env: &TestEnv, words: &str) -> Run {
        env.run(words)
            .env("MAILPKI_GMAIL_API_URL", &self.url)
            .env("MAILPKI_SERVICE_ACCOUNT_KEY", &self.key_file)
    }

    /// One raw HTTP/1.1 request with `headers`; `body: None` sends no `Content-Length` at all
    /// (what a careless client does). Returns the status and the body text.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, String) {
        let reply = http1(&self.url, method, path, headers, body);
        (reply.status, reply.body)
    }

    /// Sends an admin request and returns the JSON reply (`null` when empty).
    pub fn admin(&self, method: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let payload = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, reply) = self.request(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(payload.as_bytes()),
        );
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status}\n{reply}"
        );
        serde_json::from_str(&reply).unwrap_or(serde_json::Value::Null)
    }

    /// The requests the emulator saw: (method, path, status).
    /// Key pairs and identities per user (by primary address), from the emulator's state.
    pub fn in_gmail(&self) -> std::collections::BTreeMap<String, (usize, usize)> {
        let state = self.admin("GET", "/admin/state", &serde_json::Value::Null);
        state["users"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, u)| {
                (
                    u["primary"].as_str().unwrap_or_default().to_owned(),
                    (
                        u["key_pairs"].as_array().map_or(0, Vec::len),
                        u["identities"].as_object().map_or(0, serde_json::Map::len),
                    ),
                )
            })
            .collect()
    }

    /// The service-account key's first base64 line, to look for it in output.
    pub fn service_account_key_line(&self) -> String {
        let sa: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.key_file).unwrap()).unwrap();
        sa["private_key"]
            .as_str()
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_owned()
    }

    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.admin("GET", "/admin/requests", &serde_json::Value::Null)
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or_default().to_owned(),
                    r["path"].as_str().unwrap_or_default().to_owned(),
                    r["status"].as_u64().unwrap_or_default() as u16,
                )
            })
            .collect()
    }
}
