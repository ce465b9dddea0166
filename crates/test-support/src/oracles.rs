//! Outside judges the tests call: PyPI's pkilint and Google's Python client library (and the
//! Gmail discovery document it ships), found through the environment `.ci/run` sets.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Says, once per test binary, that a group of checks is skipped and how to run it. Written to
/// the process's stderr directly, past the test harness's capture (which only takes `eprint!`),
/// so a run without the oracle says so instead of passing in silence.
pub fn skipped(group: &'static str, how: &str) {
    static SAID: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let first = SAID.lock().is_ok_and(|mut said| said.insert(group));
    if first {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {group} ({how}; CI requires them)"
        );
    }
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
            skipped(
                "the pkilint checks",
                "install PyPI's pkilint and set MAILPKI_PKILINT",
            );
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
            skipped(
                "the checks with Google's Python client",
                "set MAILPKI_GOOGLE_PYTHON to a Python with google-api-python-client",
            );
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
    Some(error_codes(&output))
}

/// The codes of pkilint's ERROR and FATAL findings for a CRL (`lint_crl`, beside
/// `lint_cabf_smime_cert`) under `profile` (`PKIX` or `BR`), or `None` without pkilint.
pub fn pkilint_crl_errors(crl: &Path, profile: &str) -> Option<Vec<String>> {
    let bin = pkilint()?.with_file_name("lint_crl");
    let output = Command::new(&bin)
        .args(["lint", "-t", "CRL", "-p", profile, "-f", "JSON"])
        .arg(crl)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", bin.display()));
    Some(error_codes(&output))
}

/// The codes of pkilint's ERROR and FATAL findings for a DER OCSP response
/// (`lint_ocsp_response`), or `None` without pkilint.
pub fn pkilint_ocsp_errors(response: &Path) -> Option<Vec<String>> {
    let bin = pkilint()?.with_file_name("lint_ocsp_response");
    let output = Command::new(&bin)
        .args(["lint", "-f", "JSON"])
        .arg(response)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", bin.display()));
    Some(error_codes(&output))
}

/// The ERROR and FATAL finding codes of one pkilint run's JSON output.
fn error_codes(output: &std::process::Output) -> Vec<String> {
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
    codes
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
