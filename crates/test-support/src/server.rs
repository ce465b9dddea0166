//! `mailpki server` as a child process for a test.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::{Run, TestEnv, http1};

/// A `mailpki server serve` child process, killed on drop.
pub struct ServerProcess {
    child: std::process::Child,
    pub url: String,
    /// The server's configuration file (store location, master key, `[server]`).
    pub config: PathBuf,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestEnv {
    /// Starts `mailpki server serve` on a free loopback port over `database` (a SQLite path
    /// or a PostgreSQL URL), with `admin` as server admin and `extra` appended to `[server]`.
    /// Every server of one env shares one configuration and master key, as instances of one
    /// deployment do.
    pub fn start_server(&self, database: &str, extra: &str) -> ServerProcess {
        self.start_server_logging(database, extra, None)
    }

    /// The same, with every log on (`RUST_LOG=trace`) written to `log` when given.
    pub fn start_server_logging(
        &self,
        database: &str,
        extra: &str,
        log: Option<&Path>,
    ) -> ServerProcess {
        use std::io::BufRead;
        let config = self.path("server.toml");
        if !config.exists() {
            let text = format!(
                "[kms]\ndatabase = \"{database}\"\nmaster_key_file = \"{}\"\nuser = \"admin\"\n\n\
                 [server]\nlisten = \"127.0.0.1:0\"\nadmins = [\"admin\"]\n{extra}\n",
                self.path("server-data/master.key").display()
            );
            std::fs::write(&config, text).unwrap();
        }
        let mut command = self.command();
        command
            .arg("--config")
            .arg(&config)
            .args(["server", "serve"])
            .stdout(Stdio::piped());
        match log {
            Some(path) => {
                command
                    .env("RUST_LOG", "trace")
                    .stderr(std::fs::File::create(path).unwrap());
            }
            None => {
                command.stderr(Stdio::null());
            }
        }
        let mut child = command.spawn().expect("the server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its URL");
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "unexpected first line {url:?}"
        );
        ServerProcess { child, url, config }
    }

    /// Makes every later `mailpki` run a client of `server`, each user with their own API
    /// token (created on the server's host).
    pub fn use_server(&self, server: &ServerProcess, users: &[&str]) {
        let tokens = users
            .iter()
            .map(|u| ((*u).to_owned(), server.create_token(self, u)))
            .collect();
        *self.server.borrow_mut() = Some((server.url.clone(), tokens));
    }

    /// The API token `use_server` made for `user`.
    pub fn token_of(&self, user: &str) -> String {
        self.server
            .borrow()
            .as_ref()
            .and_then(|(_, tokens)| tokens.get(user).cloned())
            .expect("use_server made a token for this user")
    }
}

impl ServerProcess {
    /// `mailpki --config <server config> WORDS` on the server's host, straight on its store.
    pub fn on_host(&self, env: &TestEnv, words: &str) -> Run {
        let mut command = env.command();
        command
            .arg("--config")
            .arg(&self.config)
            .args(words.split_whitespace());
        Run::new(command)
    }

    /// A new API token for `user`, made on the host.
    pub fn create_token(&self, env: &TestEnv, user: &str) -> String {
        let reply = self
            .on_host(env, "--json server token create")
            .arg(user)
            .ok()
            .json();
        reply["secret"].as_str().unwrap().to_owned()
    }

    /// One raw HTTP/1.1 request (loopback, plain HTTP); returns the status and the JSON body
    /// (`null` when empty or not JSON).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let host = self.url.trim_start_matches("http://");
        self.http_to_host(host, method, path, token, content_type, body)
    }

    /// The same, with a `Host` header of the caller's choosing (as a client of another name
    /// would send it).
    pub fn http_to_host(
        &self,
        host: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, serde_json::Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Host", host), ("Content-Type", content_type)];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        let reply = http1(&self.url, method, path, &headers, Some(body));
        (
            reply.status,
            serde_json::from_str(&reply.body).unwrap_or(serde_json::Value::Null),
        )
    }
}
