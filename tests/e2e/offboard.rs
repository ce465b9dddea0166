//! `google offboard` against the emulator: a dry run that changes nothing, then every user
//! left with no identity, disabled key pairs, no hosted certificate and revoked certificates,
//! each step done once however often it runs, and a CRL that lists them.

use mailpki_test_support::{openssl, s};

use crate::{attributes, env_with_pki, issuer_key};

const USERS: [&str; 2] = ["ann@example.com", "bob@example.com"];

#[test]
fn offboarding_takes_everything_away_once() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    let emulator = env.start_emulator(&USERS, &pki.path("root.pem"));
    let csv = env.path("users.csv");
    std::fs::write(&csv, format!("email\n{}\n", USERS.join("\n"))).unwrap();
    emulator
        .run(
            &env,
            "--json google onboard --cse-key-id cse_key --kacls-url https://k.example.com -i",
        )
        .arg(&key)
        .then("--csv")
        .arg(&csv)
        .ok();
    // Ann also has a hosted S/MIME certificate, minted by hand.
    env.run("kms certificates certify -g --certificate-id ann-smime -k")
        .arg(&key)
        .then("--subject-name")
        .arg("CN=ann@example.com, emailAddress=ann@example.com")
        .ok();
    emulator
        .run(
            &env,
            "google smime insert --certificate-id ann-smime --user-id",
        )
        .arg(USERS[0])
        .ok();
    assert_eq!(emulator.in_gmail().get(USERS[0]), Some(&(1, 1)));

    let offboard = |extra: &str| {
        emulator
            .run(&env, "--json google offboard --csv")
            .arg(&csv)
            .then(extra)
    };
    let dry = offboard("--dry-run --report dry.json").ok().json();
    assert_eq!(dry["done"], 2);
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("dry.json")).unwrap()).unwrap();
    let ann = rows[0]["detail"]["action"].as_str().unwrap();
    assert!(
        ann.contains("delete the CSE identity")
            && ann.contains("disable 1 key pair(s)")
            && ann.contains("delete 1 S/MIME certificate(s)")
            && ann.contains("revoke 2 certificate(s) (affiliationChanged)"),
        "{ann}"
    );
    assert_eq!(
        emulator.in_gmail().get(USERS[0]),
        Some(&(1, 1)),
        "a dry run changes nothing"
    );

    let crl = env.path("issuing.crl");
    let done = offboard("-k")
        .arg(&key)
        .then("--crl-out")
        .arg(&crl)
        .ok()
        .json();
    assert_eq!(done["done"], 2);
    for user in USERS {
        let pairs = emulator
            .run(&env, "--json google key-pairs list --user-id")
            .arg(user)
            .ok()
            .json();
        assert!(
            pairs
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["enablementState"] == "disabled"),
            "{user}: {pairs}"
        );
        emulator
            .run(&env, "google identities get --user-id")
            .arg(user)
            .fails(1);
        let smime = emulator
            .run(&env, "--json google smime list --user-id")
            .arg(user)
            .ok()
            .json();
        assert_eq!(smime.as_array().unwrap().len(), 0, "{user}");
    }
    let revoked = attributes(&env, "ann-smime");
    assert_eq!(
        (
            revoked["state"].as_str(),
            revoked["revocation_reason"].as_str()
        ),
        (Some("Deactivated"), Some("affiliationChanged"))
    );
    let text = String::from_utf8(openssl(
        &pki.dir,
        ["crl", "-inform", "DER", "-noout", "-text", "-in", &s(&crl)],
    ))
    .unwrap();
    assert_eq!(text.matches("Affiliation Changed").count(), 3, "{text}");

    // Again (the journal skips everyone), and for one user by name (another batch: it
    // checks Gmail again and finds nothing left to do): nothing is done twice.
    let calls = |what: &str| {
        emulator
            .requests()
            .iter()
            .filter(|(method, path, status)| {
                method != "GET" && path.contains(what) && (200..300).contains(status)
            })
            .count()
    };
    let before = (
        calls(":disable"),
        calls("/cse/identities/"),
        calls("/smimeInfo/"),
    );
    let again = offboard("").ok().json();
    assert_eq!(again["skipped"], 2);
    emulator
        .run(&env, "--json google offboard")
        .arg(USERS[1])
        .ok();
    assert_eq!(
        before,
        (
            calls(":disable"),
            calls("/cse/identities/"),
            calls("/smimeInfo/")
        ),
        "each step once"
    );
    assert_eq!(before.0, 2);
}

#[test]
fn offboarding_refuses_an_unknown_reason_before_touching_gmail() {
    let (env, pki) = env_with_pki();
    let emulator = env.start_emulator(&USERS, &pki.path("root.pem"));
    emulator
        .run(&env, "google offboard --reason fired")
        .arg(USERS[0])
        .fails(1)
        .stderr_has("unknown revocation reason `fired`");
    assert!(
        !emulator
            .requests()
            .iter()
            .any(|(_, path, _)| path.contains("/users/")),
        "Gmail was asked nothing"
    );
}

/// Killed (SIGKILL) after the n-th Gmail call, at three points, then run again: every user
/// ends offboarded, and each key pair was disabled exactly once.
#[cfg(unix)]
#[test]
fn offboarding_killed_mid_way_resumes_and_ends_once() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    let runs = [3u64, 8, 14];
    let user = |run: usize, i: usize| format!("r{run}u{i}@example.com");
    let users: Vec<String> = (0..runs.len())
        .flat_map(|run| (0..3).map(move |i| user(run, i)))
        .collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let emulator = env.start_emulator(&refs, &pki.path("root.pem"));
    let all = env.path("all.csv");
    std::fs::write(&all, format!("email\n{}\n", users.join("\n"))).unwrap();
    emulator
        .run(
            &env,
            "google onboard --cse-key-id cse_key --kacls-url https://k.example.com -i",
        )
        .arg(&key)
        .then("--csv")
        .arg(&all)
        .ok();

    let disables = || {
        emulator
            .requests()
            .iter()
            .filter(|(m, p, st)| m == "POST" && p.ends_with(":disable") && *st == 200)
            .count()
    };
    for (run, kill_after) in runs.into_iter().enumerate() {
        let csv = env.path(&format!("run{run}.csv"));
        let rows: Vec<String> = (0..3).map(|i| user(run, i)).collect();
        std::fs::write(&csv, format!("email\n{}\n", rows.join("\n"))).unwrap();
        let offboard = || {
            let mut command = env.command();
            command
                .env("MAILPKI_GMAIL_API_URL", &emulator.url)
                .env("MAILPKI_USER", "alice")
                .env("MAILPKI_SERVICE_ACCOUNT_KEY", &emulator.key_file)
                .args([
                    "--json",
                    "google",
                    "offboard",
                    "--concurrency",
                    "2",
                    "--csv",
                ])
                .arg(&csv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            command
        };
        let before = emulator.requests().len() as u64;
        let mut child = offboard().spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if emulator.requests().len() as u64 - before >= kill_after {
                let _ = child.kill();
                break;
            }
            assert!(Instant::now() < deadline, "run {run}: no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.wait();
        assert!(
            offboard().status().unwrap().success(),
            "run {run}: the re-run failed"
        );
        let gmail = emulator.in_gmail();
        for row in &rows {
            assert_eq!(
                gmail.get(row).map(|c| c.1),
                Some(0),
                "run {run}: {row} keeps an identity"
            );
        }
    }
    assert_eq!(
        disables(),
        users.len(),
        "each key pair disabled exactly once"
    );
}
