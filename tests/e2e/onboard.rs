//! `google onboard`: a CSV of users onboarded to CSE against the emulator, with faults,
//! users not ready yet, and runs killed mid-way and resumed — every user ends with exactly one
//! key pair and one identity.

use std::collections::BTreeMap;

use mailpki_test_support::{EmulatorProcess, ServerProcess, TestEnv, TestPki, s};
use serde_json::json;

use crate::{env_with_pki, issuer_key};

struct Org {
    env: TestEnv,
    _pki: TestPki,
    emulator: EmulatorProcess,
    issuer_key: String,
    csv: std::path::PathBuf,
    server: Option<ServerProcess>,
}

fn user(i: usize) -> String {
    format!("user{i}@example.com")
}

/// `count` users in the emulator and in a CSV (plus `extra` CSV lines).
fn org(count: usize, extra: &str) -> Org {
    org_with(count, extra, false)
}

/// The same, with the store behind `mailpki server` (alice holds an API token).
fn org_on_server(count: usize) -> Org {
    org_with(count, "", true)
}

fn org_with(count: usize, extra: &str, on_server: bool) -> Org {
    let (env, pki) = env_with_pki();
    let server = on_server.then(|| {
        let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), "");
        env.use_server(&server, &["alice"]);
        server
    });
    let issuer_key = issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    let users: Vec<String> = (0..count).map(user).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let emulator = env.start_emulator(&refs, &pki.path("root.pem"));
    let csv = env.path("users.csv");
    std::fs::write(
        &csv,
        format!("email,subject\n{}\n{extra}", users.join("\n")),
    )
    .unwrap();
    Org {
        env,
        _pki: pki,
        emulator,
        issuer_key,
        csv,
        server,
    }
}

impl Org {
    fn onboard(&self) -> mailpki_test_support::Run {
        self.onboard_reporting_to("report.json")
    }

    fn onboard_reporting_to(&self, report: &str) -> mailpki_test_support::Run {
        self.emulator
            .run(&self.env, "--json google onboard --concurrency 4 --cse-key-id cse_key --kacls-url https://k.example.com -i")
            .arg(&self.issuer_key)
            .then("--csv")
            .arg(&self.csv)
            .then("--report")
            .arg(self.env.path(report))
    }

    fn in_gmail(&self) -> BTreeMap<String, (usize, usize)> {
        self.emulator.in_gmail()
    }

    fn assert_each_user_once(&self, count: usize) {
        let gmail = self.in_gmail();
        for i in 0..count {
            assert_eq!(gmail.get(&user(i)), Some(&(1, 1)), "{}: {gmail:?}", user(i));
        }
    }
}

/// A dry run checks every user against Gmail and says what it would do, changing nothing.
#[test]
fn a_dry_run_says_what_onboarding_would_do_and_changes_nothing() {
    let o = org(3, "ghost@example.com\n");
    let out = o
        .onboard_reporting_to("dry.json")
        .then("--dry-run")
        .fails(1)
        .json();
    assert_eq!(
        (out["done"].as_u64(), out["failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert!(
        o.in_gmail()
            .values()
            .all(|&(pairs, ids)| pairs == 0 && ids == 0)
    );
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(o.env.path("dry.json")).unwrap()).unwrap();
    let first = &rows[0]["detail"]["action"];
    assert!(
        first
            .as_str()
            .is_some_and(|a| a.starts_with("would mint a certificate for")
                && a.ends_with("upload its key pair, then insert the identity")),
        "{rows}"
    );
    // Nothing journaled: the real run does everything.
    let real = o.onboard().fails(1).json();
    assert_eq!(real["done"], 3);
    o.assert_each_user_once(3);
}

#[test]
fn a_csv_is_onboarded_through_faults_with_a_report() {
    let o = org(8, "not-an-address\nuser1@example.com\nghost@example.com\n");
    o.emulator.admin(
        "POST",
        "/admin/faults",
        &json!({"fail_next": [503, 429, 503, 503, 429]}),
    );
    let out = o.onboard().fails(1).json();
    assert_eq!(out["done"], 8);
    assert_eq!(out["failed"], 3);
    o.assert_each_user_once(8);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(o.env.path("report.json")).unwrap()).unwrap();
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), 11);
    let row = |u: &str| rows.iter().find(|r| r["user"] == u).unwrap().clone();
    assert!(row(&user(0))["detail"]["key_pair_id"].is_string());
    assert_eq!(row("not-an-address")["outcome"], "failed");
    assert!(
        row("ghost@example.com")["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("Invalid email or User ID")
    );
    // The single command's hint, in the batch's row too.
    assert!(
        row("ghost@example.com")["detail"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("does not exist in the domain")),
        "{}",
        row("ghost@example.com")
    );
    // Rows in the CSV's order, whatever order the users finished in.
    let lines: Vec<u64> = rows.iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
    assert!(rows.iter().any(|r| {
        r["detail"]["reason"]
            .as_str()
            .is_some_and(|m| m.contains("duplicate row"))
    }));
    let retried = o
        .emulator
        .requests()
        .iter()
        .filter(|(_, _, st)| *st == 503 || *st == 429)
        .count();
    assert_eq!(retried, 5, "every injected fault was retried");

    // A re-run skips everyone: nothing is uploaded twice. Its CSV report is flat, one column
    // per fact, for a spreadsheet.
    let again = o.onboard_reporting_to("report.csv").fails(1).json();
    assert_eq!(again["skipped"], 8);
    o.assert_each_user_once(8);
    let csv = std::fs::read_to_string(o.env.path("report.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "line,user,outcome,certificate_id,key_pair_id,smime_id,send_as,serial_number,not_after,action,reason,hint"
        )
    );
    let ghost = lines
        .clone()
        .find(|l| l.contains("ghost@example.com"))
        .unwrap();
    assert!(
        ghost.contains(",failed,") && ghost.contains("does not exist in the domain"),
        "{ghost}"
    );
    assert!(!csv.contains('{'), "no JSON inside a cell: {csv}");
    assert_eq!(lines.count(), 11);
}

#[test]
fn users_not_ready_are_reported_as_retry_later() {
    let o = org(3, "");
    o.emulator.admin(
        "POST",
        "/admin/users",
        &json!({"email": user(1), "cse_enabled": false}),
    );
    let out = o.onboard().fails(75).json();
    assert_eq!(out["done"], 2);
    assert_eq!(out["retry_later"], 1);
    // Once Google is ready, the same command finishes the job, reusing the minted leaf.
    let certs_before = o
        .env
        .run("--json kms certificates list")
        .ok()
        .json()
        .as_array()
        .unwrap()
        .len();
    o.emulator.admin(
        "POST",
        "/admin/users",
        &json!({"email": user(1), "cse_enabled": true}),
    );
    let out = o.onboard().ok().json();
    assert_eq!(out["done"], 1);
    assert_eq!(out["skipped"], 2);
    assert_eq!(
        o.env
            .run("--json kms certificates list")
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        certs_before
    );
    o.assert_each_user_once(3);
}

/// A crash right after a key pair is uploaded, before the journal records it: the re-run
/// finds the key pair in Gmail and does not upload another.
#[test]
fn a_crash_after_upload_resumes_without_duplicates() {
    let o = org(6, "");
    let crashed = o
        .onboard()
        .env("MAILPKI_FAILPOINT", "onboard-after-upload:3")
        .output();
    assert!(!crashed.output.status.success());
    o.onboard().ok();
    o.assert_each_user_once(6);
}

/// Killed at an arbitrary moment, then re-run.
#[cfg(unix)]
#[test]
fn a_killed_onboarding_resumes_without_duplicates() {
    let o = org(12, "");
    let mut child = o
        .env
        .command()
        .env("MAILPKI_USER", "alice")
        .env("MAILPKI_GMAIL_API_URL", &o.emulator.url)
        .env("MAILPKI_SERVICE_ACCOUNT_KEY", &o.emulator.key_file)
        .args([
            "google",
            "onboard",
            "--concurrency",
            "4",
            "--cse-key-id",
            "cse_key",
            "--kacls-url",
            "https://k.example.com",
        ])
        .args(["-i", &o.issuer_key, "--csv", &s(&o.csv)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while o.in_gmail().values().filter(|(k, _)| *k > 0).count() < 3 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    o.onboard().ok();
    o.assert_each_user_once(12);
}

/// Through `mailpki server`: the server mints, keeps the keys and the journal, and wraps each
/// key under the CSE key; a crash after an upload still leaves every user onboarded once.
#[test]
fn onboarding_runs_through_the_server_and_resumes() {
    let o = org_on_server(6);
    let crashed = o
        .onboard()
        .env("MAILPKI_FAILPOINT", "onboard-after-upload:3")
        .output();
    assert!(!crashed.output.status.success());
    let out = o.onboard().ok().json();
    assert_eq!(
        out["done"].as_u64().unwrap() + out["skipped"].as_u64().unwrap(),
        6
    );
    o.assert_each_user_once(6);
    let again = o.onboard().ok().json();
    assert_eq!(again["skipped"], 6);
    o.assert_each_user_once(6);
    // The keys stayed on the server: its audit log has one wrap per uploaded key pair.
    let server = o.server.as_ref().unwrap();
    let audit = server
        .on_host(&o.env, "--json server audit --actor alice --limit 1000")
        .ok()
        .json();
    let wraps = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["operation"] == "cse_wrap" && e["outcome"] == "ok")
        .count();
    assert!((6..=7).contains(&wraps), "{wraps} wraps");
    assert!(
        !o.env.data_dir().join("kms.sqlite").exists(),
        "no local store was made beside the server"
    );
}
