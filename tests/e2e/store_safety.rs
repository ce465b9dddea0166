//! What protects the store: sealed key material, the master key, foreign files, concurrent
//! processes.

use mailpki_test_support::{TestPki, contains_bytes, files_below, s};

use crate::{certificate_count, env, env_with_pki, import_issuer};

#[test]
fn private_key_bytes_appear_nowhere_in_the_store() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    // A second process with the store still open would keep a WAL; read every file there.
    let prime = pki.issuing_key_prime();
    assert!(prime.len() >= 120, "a 1024-bit prime of a 2048-bit key");
    let files = files_below(&env.data_dir());
    assert!(files.iter().any(|f| f.ends_with("kms.sqlite")), "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains_bytes(&bytes, &prime),
            "{} holds the private key",
            file.display()
        );
        assert!(
            !contains_bytes(&bytes, &prime[..32]),
            "{} holds part of the key",
            file.display()
        );
    }
}

#[test]
fn store_files_are_private() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&env.data_dir()), 0o700);
        assert_eq!(mode(&env.data_dir().join("kms.sqlite")), 0o600);
        assert_eq!(mode(&env.data_dir().join("master.key")), 0o600);
    }
}

#[test]
fn another_master_key_cannot_open_the_store() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    let db = env.data_dir().join("kms.sqlite");
    let before = std::fs::read(&db).unwrap();
    env.run("kms certificates list")
        .env(
            "MAILPKI_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .fails(1)
        .stderr_has("the master key does not open this store");
    env.run("kms certificates list")
        .env("MAILPKI_MASTER_KEY", "c2hvcnQ=")
        .fails(1)
        .stderr_has("exactly 32 bytes");
    std::fs::rename(env.data_dir().join("master.key"), env.path("moved.key")).unwrap();
    env.run("kms certificates list")
        .fails(1)
        .stderr_has("master key file")
        .stderr_has("is missing");
    assert!(
        !env.data_dir().join("master.key").exists(),
        "no new key was made"
    );
    env.run("kms certificates list --master-key-file")
        .arg(env.path("moved.key"))
        .ok();
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the store is untouched"
    );
}

#[test]
fn a_passphrase_can_be_the_master_key() {
    let (env, pki) = env_with_pki();
    let db = s(&env.path("team.sqlite"));
    let p12 = s(&pki.pkcs12("ca.p12", "modern"));
    env.run("--database")
        .arg(&db)
        .then("kms certificates import -f pkcs12")
        .arg(&p12)
        .then("-p")
        .arg(TestPki::PASSWORD)
        .then("ca")
        .env("MAILPKI_MASTER_PASSPHRASE", "long team passphrase")
        .ok();
    assert!(
        !env.path("master.key").exists(),
        "no key file in passphrase mode"
    );
    let out = s(&env.path("ca.p12.out"));
    env.run("--database")
        .arg(&db)
        .then("kms certificates export -c ca -f pkcs12 -p x")
        .arg(&out)
        .env("MAILPKI_MASTER_PASSPHRASE", "long team passphrase")
        .ok();
    env.run("--database")
        .arg(&db)
        .then("kms certificates list")
        .env("MAILPKI_MASTER_PASSPHRASE", "wrong passphrase")
        .fails(1)
        .stderr_has("does not open this store");
}

#[test]
fn foreign_files_are_refused_and_left_alone() {
    let env = env();
    let notes = env.path("notes.txt");
    std::fs::write(&notes, "not a database, but precious\n".repeat(200)).unwrap();
    env.run("--database")
        .arg(&notes)
        .then("kms certificates list")
        .fails(1)
        .stderr_has("is not a mailpki store");
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "not a database, but precious\n".repeat(200)
    );
}

#[test]
fn config_file_and_defaults_resolve() {
    let env = env();
    let shown = env.run("--json config").ok().json();
    assert_eq!(shown["config_file"], "none (embedded defaults)");
    assert!(
        shown["kms"]["database"]
            .as_str()
            .unwrap()
            .ends_with(".local/share/mailpki/kms.sqlite")
    );
    let config = env.path("config.toml");
    std::fs::write(
        &config,
        "[kms]\ndatabase = \"~/elsewhere/kms.sqlite\"\nuser = \"dora\"\n",
    )
    .unwrap();
    let shown = env
        .run("--json --config")
        .arg(&config)
        .then("config")
        .ok()
        .json();
    assert_eq!(
        shown["kms"]["user"], "alice",
        "MAILPKI_USER wins over the file"
    );
    assert!(
        shown["kms"]["database"]
            .as_str()
            .unwrap()
            .ends_with("home/elsewhere/kms.sqlite")
    );
    assert!(
        shown["kms"]["master_key"]
            .as_str()
            .unwrap()
            .ends_with("elsewhere/master.key")
    );
    std::fs::write(&config, "[kms]\ndatabse = 1\n").unwrap();
    env.run("--config")
        .arg(&config)
        .then("config")
        .fails(1)
        .stderr_has("unknown field `databse`");
    env.run("--config")
        .arg(env.path("absent.toml"))
        .then("config")
        .fails(1)
        .stderr_has("cannot read the configuration file");
    env.run("--json config")
        .env(
            "MAILPKI_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .ok()
        .stdout()
        .contains("hidden")
        .then_some(())
        .expect("the master key is masked");
}

#[test]
fn concurrent_processes_share_one_store() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    let p12 = s(&pki.pkcs12("more.p12", "modern"));
    let children: Vec<_> = (0..6)
        .map(|i| {
            let mut command = env.command();
            command
                .env("MAILPKI_USER", "alice")
                .args([
                    "kms",
                    "certificates",
                    "import",
                    "-f",
                    "pkcs12",
                    &p12,
                    "-p",
                    TestPki::PASSWORD,
                ])
                .arg(format!("copy-{i}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Six copies of the issuing CA and one shared root.
    assert_eq!(certificate_count(&env), 8);
}

#[test]
fn json_errors_for_scripts() {
    let env = env();
    let out = env.run("--json kms attributes get -i nope").fails(1);
    let err: serde_json::Value = serde_json::from_str(out.stderr().trim()).unwrap();
    assert_eq!(err["exit_code"], 1);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("no object with ID `nope`")
    );
}

/// With every log on (RUST_LOG=trace), no password, private key or access token reaches
/// stdout or stderr, through import, minting, export and a Gmail upload.
#[test]
fn secrets_stay_out_of_output_even_at_trace() {
    let (env, pki) = env_with_pki();
    let p12 = s(&pki.pkcs12("ca.p12", "modern"));
    let prime = pki.issuing_key_prime();
    let prime_hex = mailpki_test_support::hex(&prime);
    let mut outputs = Vec::new();
    let mut record = |out: mailpki_test_support::Outcome| {
        outputs.push(format!("{}{}", out.stdout(), out.stderr()));
        out
    };
    let report = record(
        env.run("--json kms certificates import -f pkcs12")
            .arg(&p12)
            .then("-p")
            .arg(TestPki::PASSWORD)
            .arg("ca")
            .env("RUST_LOG", "trace")
            .ok(),
    )
    .json();
    let key = report["private_key"].as_str().unwrap().to_owned();
    env.run("kms sym keys create cse_key").ok();
    let emulator = env.start_emulator(&["jane@example.com"], &pki.path("root.pem"));
    record(
        emulator
            .run(
                &env,
                "google key-pairs create --cse-key-id cse_key --kacls-url https://k.example.com -i",
            )
            .arg(&key)
            .arg("jane@example.com")
            .env("RUST_LOG", "trace")
            .ok(),
    );
    record(
        env.run("kms certificates export -c ca -f pkcs12 -p export-secret-pw")
            .arg(env.path("out.p12"))
            .env("RUST_LOG", "trace")
            .ok(),
    );
    let sa_key_line = emulator.service_account_key_line();
    let all = outputs.join("\n");
    assert!(all.len() > 1000, "trace logging produced output");
    for (what, secret) in [
        ("the PKCS#12 password", TestPki::PASSWORD),
        ("the export password", "export-secret-pw"),
        ("the CA key (hex)", &prime_hex[..32]),
        ("the service account key", &sa_key_line),
        ("an access token", "ya29.emu-"),
    ] {
        assert!(!all.contains(secret), "{what} appears in the output");
    }
}

#[test]
fn the_master_key_rotates_and_the_old_one_stops_opening_the_store() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    env.run("kms sym keys create cse_key").ok();
    let new_key = env.path("keys/master-2026.key");
    let out = env
        .run("--json kms master-key rotate --new-key-file")
        .arg(&new_key)
        .ok();
    assert_eq!(out.json()["resealed"], 2, "the CA's key and the CSE key");
    out.stderr_has("opens only with");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    env.run("kms attributes get -i ca")
        .fails(1)
        .stderr_has("the master key does not open this store");
    let exported = env.path("ca-after.p12");
    env.run("--master-key-file")
        .arg(&new_key)
        .then("kms certificates export -c ca -f pkcs12 -p pw")
        .arg(&exported)
        .ok();
    assert!(exported.exists());
}

/// The same check across the commands that handle secrets, with the master key itself in the
/// environment: minting, batch minting (per-row PKCS#12 passwords), onboarding, hosted S/MIME,
/// access rights, lifecycle, the configuration and a master key rotation. The master key, the
/// passwords, the CA key, the service-account key and access tokens appear in no output.
#[test]
fn no_command_prints_a_secret_at_trace() {
    let (env, pki) = env_with_pki();
    let master = "c2VjcmV0LW1hc3Rlci1rZXktZm9yLXRoZS10ZXN0cy0=";
    let run = |words: &str| {
        env.run(words)
            .env("RUST_LOG", "trace")
            .env("MAILPKI_MASTER_KEY", master)
    };
    let mut outputs = Vec::new();
    let mut keep = |out: mailpki_test_support::Outcome| {
        outputs.push(format!("{}{}", out.stdout(), out.stderr()));
        out
    };
    let p12 = s(&pki.pkcs12("ca.p12", "modern"));
    let key = keep(
        run("--json kms certificates import -f pkcs12")
            .arg(&p12)
            .then("-p")
            .arg(TestPki::PASSWORD)
            .arg("ca")
            .ok(),
    )
    .json()["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    keep(run("kms sym keys create cse_key").ok());
    keep(
        run("kms certificates certify -g --subject-name CN=u@example.com -k")
            .arg(&key)
            .ok(),
    );
    let csv = env.path("users.csv");
    std::fs::write(&csv, "a@example.com,,row-secret-pw\nb@example.com\n").unwrap();
    keep(
        run("kms certificates certify-batch --pkcs12-password default-secret-pw --csv")
            .arg(&csv)
            .then("-k")
            .arg(&key)
            .then("--out-dir")
            .arg(env.path("out"))
            .ok(),
    );
    keep(run("kms access-rights grant bob -i ca get").ok());
    keep(run("config").ok());
    let emulator = env.start_emulator(
        &["jane@example.com", "joe@example.com"],
        &pki.path("root.pem"),
    );
    let gmail = |words: &str| {
        run(words)
            .env("MAILPKI_GMAIL_API_URL", &emulator.url)
            .env("MAILPKI_SERVICE_ACCOUNT_KEY", &emulator.key_file)
    };
    let users = env.path("onboard.csv");
    std::fs::write(&users, "email\njane@example.com\n").unwrap();
    keep(
        gmail("google onboard --cse-key-id cse_key --kacls-url https://k.example.com -i")
            .arg(&key)
            .then("--csv")
            .arg(&users)
            .ok(),
    );
    keep(
        gmail("google smime insert --user-id joe@example.com --pkcs12-file")
            .arg(env.path("out/b@example.com.p12"))
            .then("--pkcs12-password default-secret-pw")
            .output(),
    );
    keep(run("kms certificates revoke superseded -c ca").ok());
    keep(
        env.run("kms master-key rotate --new-key-file")
            .arg(env.path("new.key"))
            .env("RUST_LOG", "trace")
            .env("MAILPKI_MASTER_KEY", master)
            .ok(),
    );
    let new_key = std::fs::read_to_string(env.path("new.key")).unwrap();
    let sa_line = emulator.service_account_key_line();
    let prime_hex = mailpki_test_support::hex(&pki.issuing_key_prime());
    let all = outputs.join("\n");
    assert!(all.len() > 1000, "trace logging produced output");
    for (what, secret) in [
        ("the master key", master),
        ("the new master key", new_key.trim()),
        ("the PKCS#12 password", TestPki::PASSWORD),
        ("a CSV row's password", "row-secret-pw"),
        ("the default PKCS#12 password", "default-secret-pw"),
        ("the CA key (hex)", &prime_hex[..32]),
        ("the service account key", &sa_line),
        ("an access token", "ya29.emu-"),
    ] {
        assert!(!all.contains(secret), "{what} appears in the output");
    }
}
