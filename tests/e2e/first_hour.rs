//! The first hour of a new admin: Cosmian's Gmail CSE guide run line by line with `cosmian`
//! replaced by `mailpki` (the key service URL from `MAILPKI_KACLS_URL`), and the hints a
//! newcomer's usual mistakes get.

use mailpki_test_support::{TestPki, openssl, s};

use crate::env_with_pki;

const USER: &str = "user@example.com";

/// The guide's placeholders, filled: its two spellings of the user's address are one user.
fn fill(line: &str, issuer_key: &str, keypair: &str) -> String {
    line.replace("ORGANIZATION", "Example")
        .replace("DEPARTMENT", "IT")
        .replace("user@your_organization.com", USER)
        .replace("user@organization.com", USER)
        .replace("CSE_KEY_ID", "cse_key")
        .replace("ISSUER_PRIVATE_KEY_ID", issuer_key)
        .replace("CREATED_KEYPAIR_ID", keypair)
}

/// Splits a shell command line as `sh` would for these lines (double quotes only).
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn cosmians_gmail_cse_guide_runs_with_the_binary_renamed() {
    let (env, pki) = env_with_pki();
    let emulator = env.start_emulator(&[USER], &pki.path("root.pem"));
    let p12 = pki.pkcs12("issuer_ca_certificate.p12", "modern");
    std::fs::copy(&p12, env.path("issuer_ca_certificate.p12")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/user.ext"),
        env.path("user.ext"),
    )
    .unwrap();
    // The guide's second example takes the user's certificate from a PKCS#12 file.
    let leaf = pki.openssl_leaf(
        "guide-leaf",
        &format!("/CN={USER}/emailAddress={USER}"),
        &std::fs::read_to_string(env.path("user.ext")).unwrap(),
        &["-newkey", "rsa:2048"],
        &["-extensions", "v3_user"],
    );
    openssl(
        &pki.dir,
        [
            "pkcs12",
            "-export",
            "-inkey",
            "guide-leaf.key",
            "-in",
            &s(&leaf),
            "-certfile",
            "issuing.pem",
            "-passout",
            "pass:",
            "-out",
            &s(&env.path("cert.p12")),
        ],
    );
    env.run("kms sym keys create cse_key").ok();

    let run = |line: &str| {
        let line = line.strip_prefix("cosmian ").unwrap().replace("\\\n", " ");
        emulator
            .run(&env, "")
            .env("MAILPKI_KACLS_URL", "https://kms.example.com/google_cse")
            .args(words(&line))
    };
    let import = "cosmian kms certificates import -f pkcs12 issuer_ca_certificate.p12 -p \\\n    PASSWORD issuer_ca_certificate"
        .replace("PASSWORD", &format!("\"{}\"", TestPki::PASSWORD));
    run(&import).ok();
    let attributes = run("cosmian kms attributes get -i issuer_ca_certificate")
        .ok()
        .json();
    let issuer_key = attributes["PrivateKeyLink"].as_str().unwrap().to_owned();

    let create = fill(
        "cosmian kms google key-pairs create --cse-key-id CSE_KEY_ID \\\n    --subject-name \"C=FR, ST=IdF, L=Paris, O=ORGANIZATION, OU=DEPARTMENT, CN=user@organization.com, emailAddress=user@organization.com\" \\\n    -i ISSUER_PRIVATE_KEY_ID --leaf-certificate-extensions user.ext user@your_organization.com",
        &issuer_key,
        "",
    );
    let created = run(&create).ok();
    let keypair = created.stdout().trim().to_owned();
    assert!(!keypair.is_empty(), "{}", created.stderr());

    let existing = fill(
        "cosmian kms google key-pairs create --cse-key-id CSE_KEY_ID \\\n    --subject-name \"C=FR, ST=IdF, L=Paris, O=ORGANIZATION, OU=DEPARTMENT, CN=user@organization.com, emailAddress=user@organization.com\" \\\n    -i ISSUER_PRIVATE_KEY_ID --leaf-certificate-pkcs12-file /path/to/cert.p12 --leaf-certificate-pkcs12-password user@your_organization.com",
        &issuer_key,
        "",
    )
    .replace("/path/to/cert.p12", &s(&env.path("cert.p12")));
    run(&existing)
        .ok()
        .stderr_has("taking `user@example.com`")
        .stderr_has("-i/--issuer-private-key-id is not used");

    let insert = fill(
        "cosmian kms google identities insert \\\n    --user-id user@your_organization.com CREATED_KEYPAIR_ID",
        &issuer_key,
        &keypair,
    );
    run(&insert).ok();
    let identity = run(&format!(
        "cosmian --json kms google identities get --user-id {USER}"
    ))
    .ok()
    .json();
    assert_eq!(identity["primaryKeyPairId"], keypair.as_str());
    assert_eq!(emulator.in_gmail().get(USER), Some(&(2, 1)));
}

#[test]
fn a_certificate_given_as_the_issuer_key_points_at_its_private_key() {
    let (env, pki) = env_with_pki();
    crate::import_issuer(&env, &pki, "ca");
    env.run("kms certificates certify -g -k ca --subject-name")
        .arg("CN=a@example.com, emailAddress=a@example.com")
        .fails(1)
        .stderr_has("hint: `ca` is the CA's certificate")
        .stderr_has("--issuer-certificate-id ca");
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_itself() {
    let (env, _pki) = env_with_pki();
    for shell in ["bash", "zsh", "fish"] {
        let script = env.run("completions").arg(shell).ok().stdout();
        assert!(script.contains("certify-batch"), "{shell}");
    }
    let bash = env.run("completions bash").ok().stdout();
    std::fs::write(env.path("mailpki.bash"), bash).unwrap();
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(env.path("mailpki.bash"))
        .status()
        .unwrap();
    assert!(checked.success(), "bash -n rejects the script");

    let out = env
        .run("--json man --out-dir")
        .arg(env.path("man"))
        .ok()
        .json();
    assert!(out["man_pages"].as_u64().unwrap() > 50, "{out}");
    let page =
        std::fs::read_to_string(env.path("man/mailpki-kms-google-key-pairs-create.1")).unwrap();
    assert!(
        page.contains("leaf\\-certificate\\-pkcs12\\-file"),
        "{page}"
    );
}
