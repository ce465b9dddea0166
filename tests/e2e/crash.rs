//! Crash safety, by brute force: bulk onboarding killed with SIGKILL at 20 points chosen by
//! seeded random numbers (after the n-th request Gmail saw, n anywhere in the run), then run
//! again; every user must end with exactly one key pair and one identity, and a third run must
//! find the journal complete (everyone skipped). And the store under two processes writing at
//! once: imports and a certify-batch side by side lose and duplicate nothing.

use std::process::Stdio;
use std::time::{Duration, Instant};

use mailpki_test_support::{EmulatorProcess, TestEnv};

use crate::{env_with_pki, issuer_key};

const RUNS: u64 = 20;
const USERS: usize = 4;

/// A small deterministic generator (SplitMix64): the kill points are the same on every run.
fn split_mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn user(run: u64, i: usize) -> String {
    format!("r{run}u{i}@example.com")
}

fn onboard(
    env: &TestEnv,
    emulator: &EmulatorProcess,
    key: &str,
    csv: &std::path::Path,
) -> std::process::Command {
    let mut command = env.command();
    command
        .env("MAILPKI_USER", "alice")
        .env("MAILPKI_GMAIL_API_URL", &emulator.url)
        .env("MAILPKI_SERVICE_ACCOUNT_KEY", &emulator.key_file)
        .args([
            "--json",
            "google",
            "onboard",
            "--concurrency",
            "3",
            "--cse-key-id",
            "cse_key",
            "--kacls-url",
            "https://k.example.com",
            "-i",
            key,
            "--csv",
        ])
        .arg(csv)
        .stdin(Stdio::null());
    command
}

#[cfg(unix)]
#[test]
fn onboarding_killed_at_twenty_seeded_points_ends_exactly_once() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    let users: Vec<String> = (0..RUNS)
        .flat_map(|run| (0..USERS).map(move |i| user(run, i)))
        .collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let emulator = env.start_emulator(&refs, &pki.path("root.pem"));
    // A whole user is about five Gmail calls (identity check, token, key pair, identity...).
    let calls_per_run = USERS as u64 * 5;
    let mut killed = 0;
    for run in 0..RUNS {
        let csv = env.path(&format!("run{run}.csv"));
        let rows: Vec<String> = (0..USERS).map(|i| user(run, i)).collect();
        std::fs::write(&csv, format!("email\n{}\n", rows.join("\n"))).unwrap();
        let kill_after = 1 + split_mix(run) % calls_per_run;
        let before = emulator.requests().len() as u64;
        let mut child = onboard(&env, &emulator, &key, &csv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the chosen point (or the end of the run), then SIGKILL.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if emulator.requests().len() as u64 - before >= kill_after {
                let _ = child.kill();
                killed += 1;
                break;
            }
            assert!(Instant::now() < deadline, "run {run}: no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.wait();
        let resumed = onboard(&env, &emulator, &key, &csv).output().unwrap();
        assert!(
            resumed.status.success(),
            "run {run}: the re-run failed:\n{}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let gmail = emulator.in_gmail();
        for row in &rows {
            assert_eq!(
                gmail.get(row),
                Some(&(1, 1)),
                "run {run} (killed after {kill_after} calls): {row}"
            );
        }
        let third: serde_json::Value = serde_json::from_slice(
            &onboard(&env, &emulator, &key, &csv)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(
            third["skipped"], USERS,
            "run {run}: the journal is complete"
        );
    }
    assert!(
        killed >= RUNS / 2,
        "most runs were killed mid-way ({killed})"
    );
}

/// Two processes write the store at once: one imports PKCS#12 files one by one, the other
/// mints a batch. Nothing is refused as busy, lost or stored twice.
#[test]
fn two_processes_writing_one_store_lose_nothing() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let imports = 8;
    // Certificates and keys made with the openssl CLI, one PEM bundle each.
    let files: Vec<std::path::PathBuf> = (0..imports)
        .map(|i| {
            let name = format!("imp{i}");
            let pem = pki.openssl_leaf(
                &name,
                &format!("/CN=imp{i}@example.com"),
                "basicConstraints=CA:FALSE\n",
                &["-newkey", "rsa:2048"],
                &[],
            );
            let mut bundle = std::fs::read(&pem).unwrap();
            bundle.extend(std::fs::read(pki.path(&format!("{name}.key"))).unwrap());
            let path = env.path(&format!("{name}.bundle.pem"));
            std::fs::write(&path, bundle).unwrap();
            path
        })
        .collect();
    let csv = env.path("batch.csv");
    let rows: Vec<String> = (0..8).map(|i| format!("batch{i}@example.com")).collect();
    std::fs::write(&csv, format!("email\n{}\n", rows.join("\n"))).unwrap();
    let mut batch = env
        .command()
        .env("MAILPKI_USER", "alice")
        .args(["kms", "certificates", "certify-batch", "--csv"])
        .arg(&csv)
        .args(["-k", &key, "--out-dir"])
        .arg(env.path("out"))
        .args(["--pkcs12-password", "pw", "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for (i, file) in files.iter().enumerate() {
        env.run("kms certificates import -f pem")
            .arg(file)
            .arg(format!("imported{i}"))
            .ok();
    }
    let status = batch.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(batch.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    let list = env.run("--json kms certificates list").ok().json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["unique_identifier"].as_str().unwrap())
        .collect();
    for i in 0..imports {
        assert!(
            ids.contains(&format!("imported{i}").as_str()),
            "imported{i} is missing"
        );
    }
    let minted = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["certificate_subject"]
                .as_str()
                .is_some_and(|s| s.contains("batch"))
        })
        .count();
    assert_eq!(minted, rows.len(), "each batch user once");
    assert_eq!(
        std::fs::read_to_string(env.path("out/manifest.csv"))
            .unwrap()
            .lines()
            .count(),
        rows.len() + 1
    );
}
