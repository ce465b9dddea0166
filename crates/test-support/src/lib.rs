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

    /// A bare command with the test HOME and a scrubbed environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        for var in SCRUBBED {
            command.env_remove(var);
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

/// A two-level CA made with the openssl CLI: root → issuing intermediate, the way an
/// organization sets up its S/MIME PKI. File names are relative to `dir`.
pub struct TestPki {
    pub dir: PathBuf,
}

impl TestPki {
    pub const PASSWORD: &'static str = "correct horse battery staple";

    /// Makes `root.pem`/`root.key`, `issuing.pem`/`issuing.key` (PKCS#8 PEM) and `chain.pem`
    /// (issuing then root) in `dir`, with RSA keys of `algorithm` (`rsa` or `ec`).
    pub fn create(dir: &Path) -> Self {
        Self::create_with(dir, "rsa")
    }

    pub fn create_with(dir: &Path, algorithm: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let keyopt: &[&str] = match algorithm {
            "ec" => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => &["-newkey", "rsa:2048"],
        };
        let run = |args: &[&str]| openssl(dir, args);
        run(&[
            &["req", "-x509", "-nodes"][..],
            keyopt,
            &[
                "-keyout",
                "root.key",
                "-out",
                "root.pem",
                "-days",
                "3650",
                "-subj",
                "/C=FR/O=Test Org/CN=Test Root CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        run(&[
            &["req", "-nodes"][..],
            keyopt,
            &[
                "-keyout",
                "issuing.key",
                "-out",
                "issuing.csr",
                "-subj",
                "/C=FR/O=Test Org/CN=Test Issuing CA",
            ],
        ]
        .concat());
        std::fs::write(
            dir.join("issuing.ext"),
            "basicConstraints=critical,CA:TRUE,pathlen:0\n\
             keyUsage=critical,keyCertSign,cRLSign\n\
             extendedKeyUsage=emailProtection\n\
             subjectKeyIdentifier=hash\n\
             authorityKeyIdentifier=keyid\n\
             crlDistributionPoints=URI:http://pki.example.com/root.crl\n",
        )
        .unwrap();
        let pki = Self {
            dir: dir.to_owned(),
        };
        pki.sign_issuing("issuing.pem", 1825);
        let mut chain = std::fs::read(dir.join("issuing.pem")).unwrap();
        chain.extend(std::fs::read(dir.join("root.pem")).unwrap());
        std::fs::write(dir.join("chain.pem"), chain).unwrap();
        pki
    }

    /// (Re-)signs the issuing CA's request with the root into `out`, valid for `days`.
    pub fn sign_issuing(&self, out: &str, days: u32) {
        let days = days.to_string();
        openssl(
            &self.dir,
            [
                "x509",
                "-req",
                "-in",
                "issuing.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-out",
                out,
                "-days",
                &days,
                "-extfile",
                "issuing.ext",
            ],
        );
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Exports the issuing CA (key, certificate, root) as PKCS#12. `profile` is `modern`
    /// (OpenSSL 3's AES-256/PBKDF2), `legacy` (RC2-40 + 3DES, as old OpenSSL and Windows
    /// write) or `3des` (3DES for both, SHA-1 MAC). Returns the file's path.
    pub fn pkcs12(&self, name: &str, profile: &str) -> PathBuf {
        let extra: &[&str] = match profile {
            "legacy" => &["-legacy"],
            "3des" => &[
                "-keypbe",
                "PBE-SHA1-3DES",
                "-certpbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ],
            _ => &[],
        };
        self.pkcs12_with(name, Self::PASSWORD, extra)
    }

    /// Exports the issuing CA as PKCS#12 with `password` and more `openssl pkcs12` options.
    pub fn pkcs12_with(&self, name: &str, password: &str, extra: &[&str]) -> PathBuf {
        let pass = format!("pass:{password}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "issuing.key",
            "-in",
            "issuing.pem",
            "-certfile",
            "root.pem",
            "-name",
            "Test Issuing CA",
            "-out",
            name,
            "-passout",
            &pass,
        ];
        args.extend(extra);
        openssl(&self.dir, &args);
        self.path(name)
    }

    /// Signs a leaf for `subject` with the issuing CA using the openssl CLI (to make the
    /// deliberately bad certificates the linter must catch). `ext` is an extension file body;
    /// `key_args` the `req` key options; `extra` more `x509 -req` options. Returns the PEM path.
    pub fn openssl_leaf(
        &self,
        name: &str,
        subject: &str,
        ext: &str,
        key_args: &[&str],
        extra: &[&str],
    ) -> PathBuf {
        let ext_file = format!("{name}.ext");
        std::fs::write(self.dir.join(&ext_file), ext).unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let mut req = vec![
            "req", "-new", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ];
        req.extend(key_args);
        openssl(&self.dir, &req);
        let mut x509 = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "issuing.pem",
            "-CAkey",
            "issuing.key",
            "-CAcreateserial",
            "-extfile",
            &ext_file,
            "-out",
            &pem,
        ];
        if !extra.contains(&"-days") {
            x509.extend(["-days", "365"]);
        }
        x509.extend(extra);
        openssl(&self.dir, &x509);
        self.path(&pem)
    }

    /// The issuing key's first RSA prime as raw bytes: any encoding of the key contains it.
    pub fn issuing_key_prime(&self) -> Vec<u8> {
        let text = openssl(&self.dir, ["rsa", "-in", "issuing.key", "-noout", "-text"]);
        let text = String::from_utf8(text).unwrap();
        let start = text.find("prime1:").expect("an RSA key") + "prime1:".len();
        let end = start + text[start..].find("prime2:").unwrap();
        let hex: String = text[start..end]
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        // openssl prints a leading 00 when the top bit is set; the raw integer lacks it.
        bytes.into_iter().skip_while(|b| *b == 0).collect()
    }
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

/// PyPI's pkilint S/MIME linter: `$MAILPKI_PKILINT`, else `lint_cabf_smime_cert` on PATH.
/// Absent on a developer machine, tests that need it skip with a note; CI installs it and
/// sets `CI`, where its absence fails the test.
pub fn pkilint() -> Option<PathBuf> {
    let candidate = std::env::var_os("MAILPKI_PKILINT")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join("lint_cabf_smime_cert"))
                    .find(|p| p.is_file())
            })
        });
    match candidate {
        Some(path) if path.is_file() => Some(path),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "pkilint is required in CI: set MAILPKI_PKILINT or put lint_cabf_smime_cert on PATH"
            )
        }
        _ => {
            eprintln!("note: pkilint not installed; its half of this test is skipped");
            None
        }
    }
}

/// The Python interpreter of a virtual environment holding google-api-python-client and
/// google-auth (`$MAILPKI_GOOGLE_PYTHON`, set by .ci/run); required in CI, else skipped.
pub fn google_python() -> Option<PathBuf> {
    match std::env::var_os("MAILPKI_GOOGLE_PYTHON").map(PathBuf::from) {
        Some(path) if path.is_file() => Some(path),
        _ if std::env::var_os("CI").is_some() => {
            panic!("Google's Python client is required in CI: set MAILPKI_GOOGLE_PYTHON")
        }
        _ => {
            eprintln!("note: MAILPKI_GOOGLE_PYTHON not set; Google's Python client is not run");
            None
        }
    }
}

/// The Gmail discovery document google-api-python-client ships and builds its requests
/// from, parsed; `None` where that library is not installed (see [`google_python`]).
pub fn gmail_discovery_document() -> Option<serde_json::Value> {
    let python = google_python()?;
    let output = Command::new(python)
        .args([
            "-c",
            "import googleapiclient, os; print(os.path.join(os.path.dirname(googleapiclient.__file__), \
             'discovery_cache', 'documents', 'gmail.v1.json'))",
        ])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Some(serde_json::from_str(&text).expect("the discovery document is JSON"))
}

/// The codes of pkilint's ERROR and FATAL findings for a PEM certificate (profile detected
/// from its policy OID), or `None` when pkilint is not installed.
pub fn pkilint_errors(cert_pem: &Path) -> Option<Vec<String>> {
    let bin = pkilint()?;
    let output = Command::new(bin)
        .args(["lint", "-d", "-f", "JSON"])
        .arg(cert_pem)
        .output()
        .expect("pkilint runs");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "pkilint gave no JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let mut codes = Vec::new();
    for result in report["results"].as_array().into_iter().flatten() {
        for finding in result["finding_descriptions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if matches!(finding["severity"].as_str(), Some("ERROR" | "FATAL")) {
                codes.push(finding["code"].as_str().unwrap_or("?").to_owned());
            }
        }
    }
    Some(codes)
}

/// pkilint's findings (`[severity, code]`) for many PEM certificates at once, by path, through
/// `tests/clients/pkilint_batch.py` in pkilint's own interpreter (one start instead of one per
/// certificate); `None` when pkilint is not installed.
pub fn pkilint_findings(
    certs: &[PathBuf],
) -> Option<std::collections::BTreeMap<PathBuf, Vec<(String, String)>>> {
    let bin = pkilint()?;
    let python = bin
        .parent()
        .map(|dir| dir.join("python3"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/clients/pkilint_batch.py"
    );
    let output = Command::new(python)
        .arg(script)
        .args(certs)
        .output()
        .expect("pkilint's python runs");
    assert!(
        output.status.success(),
        "pkilint_batch.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: std::collections::BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_slice(&output.stdout).expect("pkilint_batch.py prints JSON");
    Some(
        report
            .into_iter()
            .map(|(path, findings)| (PathBuf::from(path), findings))
            .collect(),
    )
}

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

/// A fresh, empty PostgreSQL database for one test, on the server named by
/// `$MAILPKI_TEST_POSTGRES` (a URL with rights to create databases; `.ci/run` starts one).
/// Unset on a developer machine, the PostgreSQL half of a test is skipped with a note; in CI
/// (`CI` set) its absence fails the test. The database is dropped with the value.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("MAILPKI_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required in CI: set MAILPKI_TEST_POSTGRES"
            );
            eprintln!("note: MAILPKI_TEST_POSTGRES not set; the PostgreSQL half is skipped");
            return None;
        };
        let name = format!("mailpki_test_{}", uuid_like());
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach MAILPKI_TEST_POSTGRES: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl TestDatabase {
    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach MAILPKI_TEST_POSTGRES: {e}"))
    }

    /// The database goes away: new connections are refused and open ones are cut.
    pub fn cut_off(&self) {
        self.admin()
            .batch_execute(&format!(
                "ALTER DATABASE {0} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = '{0}' AND pid <> pg_backend_pid();",
                self.name
            ))
            .unwrap();
    }

    /// The database is back.
    pub fn restore(&self) {
        self.admin()
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ))
            .unwrap();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A random number: unique enough for names of test databases run in parallel.
fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap_or_else(|e| panic!("cannot read /dev/urandom: {e}"));
    u64::from_le_bytes(bytes).to_string()
}

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

/// A raw HTTP/1.1 reply: status, header block and body text.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// The value of header `name`, if the reply has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection to `url` (plain HTTP on loopback), with
/// `headers` as given (a `Host` among them replaces the default) and `Content-Length` only when
/// there is a body: what a careless or hostile client can send.
pub fn http1(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    use std::fmt::Write as _;
    use std::io::{Read, Write as _};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("the server accepts connections");
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        let _ = write!(head, "Host: {addr}\r\n");
    }
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) and close before reading a large body.
    let _ = stream.write_all(body.unwrap_or_default());
    // Read the head, then as many bytes as it announces: some servers (chromedriver) keep the
    // connection open whatever `Connection: close` asked.
    let mut reader = std::io::BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut reader, &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    let head = head.trim_end().to_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let mut reply = Reply {
        status,
        head,
        body: String::new(),
    };
    let mut body = Vec::new();
    match reply
        .header("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(length) => {
            body.resize(length, 0);
            let _ = reader.read_exact(&mut body);
        }
        None => {
            let _ = reader.read_to_end(&mut body);
        }
    }
    reply.body = String::from_utf8_lossy(&body).into_owned();
    reply
}

/// Lower-case hex, to look for binary secrets in text.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
