//! `kms certificates certify-batch`: bulk minting, bad rows, and resuming after a crash
//! without minting anyone twice.

use std::collections::HashMap;

use mailpki_test_support::{TestEnv, TestPki, openssl, s};

use crate::{env_with_pki, issuer_key};

fn users_csv(env: &TestEnv, count: usize, extra: &[u8]) -> std::path::PathBuf {
    let mut text = b"email,subject,pkcs12_password\n".to_vec();
    for i in 0..count {
        text.extend(format!("user{i}@example.com,,pw{i}\n").bytes());
    }
    text.extend(extra);
    let path = env.path("users.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn batch(env: &TestEnv, key: &str, csv: &std::path::Path) -> mailpki_test_support::Run {
    env.run("--json kms certificates certify-batch -k")
        .arg(key)
        .then("--csv")
        .arg(csv)
        .then("--out-dir")
        .arg(env.path("out"))
        .then("--crl-url http://pki.example.com/i.crl")
}

/// Manifest rows by email.
fn manifest(env: &TestEnv) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(env.path("out/manifest.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// Certificates in the store per email address, counted by the batch's email tags.
fn stored_per_user(env: &TestEnv) -> HashMap<String, usize> {
    let list = env.run("--json kms certificates list").ok().json();
    let mut counts = HashMap::new();
    for cert in list.as_array().unwrap() {
        for tag in cert["tags"].as_array().unwrap() {
            if let Some(email) = tag.as_str().unwrap().strip_prefix("mailpki:email=") {
                *counts.entry(email.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn assert_each_user_once(env: &TestEnv, pki: &TestPki, users: usize) {
    let rows = manifest(env);
    assert_eq!(rows.len(), users, "{rows:?}");
    let stored = stored_per_user(env);
    assert_eq!(stored.len(), users);
    assert!(stored.values().all(|n| *n == 1), "minted twice: {stored:?}");
    for row in &rows {
        let i: usize = row[0]
            .trim_start_matches("user")
            .split('@')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let p12 = env.path(&format!("out/{}", row[5]));
        let dump = openssl(
            &pki.dir,
            [
                "pkcs12",
                "-in",
                &s(&p12),
                "-passin",
                &format!("pass:pw{i}"),
                "-nokeys",
            ],
        );
        let dump = String::from_utf8(dump).unwrap();
        assert!(dump.contains(&format!("user{i}@example.com")), "{}", row[5]);
        assert_eq!(
            dump.matches("BEGIN CERTIFICATE").count(),
            3,
            "leaf, issuing CA, root"
        );
    }
}

#[test]
fn a_batch_mints_everyone_and_reports_bad_rows() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let csv = users_csv(
        &env,
        12,
        b"not-an-email,,x\nuser3@example.com,,again\nuser12@example.com,\"CN=x, XX=1\",p\nuser13@example.com\nuser14@example.com,,\xff\xfe\n",
    );
    let out = batch(&env, &key, &csv).fails(1);
    let report = out.json();
    assert_eq!(report["minted"], 12);
    let failed: Vec<(u64, String)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reason_on = |line: u64| {
        failed
            .iter()
            .find(|(l, _)| *l == line)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(
        reason_on(14).contains("not a usable email address"),
        "{failed:?}"
    );
    assert!(reason_on(15).contains("duplicate row"), "{failed:?}");
    assert!(
        failed
            .iter()
            .any(|(_, r)| r.contains("malformed CSV") || r.contains("unknown attribute")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|(_, r)| r.contains("no PKCS#12 password")),
        "{failed:?}"
    );
    assert_each_user_once(&env, &pki, 12);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&env.path("out")), 0o700);
        assert_eq!(mode(&env.path("out/user0@example.com.p12")), 0o600);
        assert_eq!(mode(&env.path("out/manifest.csv")), 0o600);
    }
    // A re-run mints nobody again.
    let again = batch(&env, &key, &csv).fails(1).json();
    assert_eq!(again["minted"], 0);
    assert_eq!(again["already_done"], 12);
    assert_each_user_once(&env, &pki, 12);
}

/// A crash right after a user's certificate is committed, before its manifest line: the
/// re-run writes that user's file from the store instead of minting again; embedded, and
/// through a server, where requests of the dead run may still be served while the re-run
/// starts (the server makes one certificate per user and batch all the same).
#[test]
fn a_crash_between_store_and_manifest_resumes_without_duplicates() {
    let (env, pki) = env_with_pki();
    crash_and_resume(&env, &pki, true);
    let (env, pki) = env_with_pki();
    let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), "");
    env.use_server(&server, &["alice"]);
    crash_and_resume(&env, &pki, false);
}

/// With `exact`, one user was committed and not written; through a server, requests in
/// flight when the client died may have been committed too (by the server, after the crash).
fn crash_and_resume(env: &TestEnv, pki: &TestPki, exact: bool) {
    let key = issuer_key(env, pki);
    let csv = users_csv(env, 10, b"");
    let crashed = batch(env, &key, &csv)
        .env("MAILPKI_FAILPOINT", "certify-batch-after-commit:4")
        .output();
    assert!(!crashed.output.status.success(), "the failpoint aborts");
    assert_eq!(
        manifest(env).len(),
        3,
        "three users finished before the crash"
    );
    if exact {
        assert_eq!(stored_per_user(env).len(), 4, "the fourth was committed");
    }
    let resumed = batch(env, &key, &csv).ok().json();
    let recovered = resumed["recovered"].as_u64().unwrap();
    assert!(recovered >= 1, "{resumed}");
    assert!(!exact || recovered == 1, "{resumed}");
    assert_eq!(resumed["already_done"], 3);
    assert_eq!(
        resumed["minted"].as_u64().unwrap() + recovered,
        7,
        "{resumed}"
    );
    assert_each_user_once(env, pki, 10);
}

/// Killed at an arbitrary moment (SIGKILL once some users are done), then re-run.
#[cfg(unix)]
#[test]
fn a_killed_batch_resumes_without_duplicates() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let csv = users_csv(&env, 30, b"");
    let mut child = env
        .command()
        .env("MAILPKI_USER", "alice")
        .args([
            "kms",
            "certificates",
            "certify-batch",
            "-k",
            &key,
            "--csv",
            &s(&csv),
            "--out-dir",
            &s(&env.path("out")),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until a few users are in the manifest, then kill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(env.path("out/manifest.csv")).map_or(0, |t| t.lines().count()) < 4
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the batch made no progress"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    batch(&env, &key, &csv).ok();
    assert_each_user_once(&env, &pki, 30);
}

/// Spreadsheets put a byte order mark before the header: it is not a user.
#[test]
fn a_csv_saved_by_a_spreadsheet_works() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let path = env.path("users.csv");
    std::fs::write(&path, "\u{feff}email,subject,pkcs12_password\r\nuser0@example.com,,pw0\r\nuser1@example.com,,pw1\r\n").unwrap();
    let report = batch(&env, &key, &path).ok().json();
    assert_eq!(report["minted"], 2);
    assert_eq!(report["failed"].as_array().unwrap().len(), 0);

    // European Excel: semicolons, the header's own words, CRLF; a bad row names its line.
    let path = env.path("excel.csv");
    std::fs::write(
        &path,
        "\u{feff}Email Address;Subject;Password\r\nuser5@example.com;\"CN=Five, O=Org\";pw5\r\n\r\nnot-an-address;;pw\r\nuser6@example.com;;pw6\r\n",
    )
    .unwrap();
    let report = batch(&env, &key, &path).fails(1).json();
    assert_eq!(report["minted"], 2, "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["line"], 4, "{report}");
}
