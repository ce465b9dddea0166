//! `google key-pairs` and `google identities` through the real binary against the real
//! emulator over HTTP.

use mailpki_test_support::{EmulatorProcess, TestEnv, TestPki, openssl, s};
use serde_json::json;

use crate::{attributes, env_with_pki, issuer_key};

const JANE: &str = "jane@example.com";
const KACLS: &str = "https://kacls.example.com/google_cse";

struct Tenant {
    env: TestEnv,
    pki: TestPki,
    emulator: EmulatorProcess,
    issuer_key: String,
}

/// A store with the issuing CA and a CSE key, and an emulator with `users`.
fn tenant(users: &[&str]) -> Tenant {
    let (env, pki) = env_with_pki();
    let issuer_key = issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    let emulator = env.start_emulator(users, &pki.path("root.pem"));
    Tenant {
        env,
        pki,
        emulator,
        issuer_key,
    }
}

impl Tenant {
    fn run(&self, words: &str) -> mailpki_test_support::Run {
        self.emulator.run(&self.env, words)
    }

    /// `google key-pairs create` for `user`, minting; returns the key pair ID.
    fn create_key_pair(&self, user: &str) -> String {
        let out = self
            .run("--json google key-pairs create --cse-key-id cse_key --kacls-url")
            .arg(KACLS)
            .then("-i")
            .arg(&self.issuer_key)
            .arg(user)
            .ok()
            .json();
        out["keyPairId"].as_str().unwrap().to_owned()
    }

    /// Requests the emulator saw with `method` (any when empty) and a path containing `part`.
    fn count(&self, method: &str, part: &str) -> usize {
        self.emulator
            .requests()
            .iter()
            .filter(|(m, p, _)| (method.is_empty() || m == method) && p.contains(part))
            .count()
    }
}

#[test]
fn onboarding_a_user_creates_a_key_pair_and_an_identity() {
    let t = tenant(&[JANE]);
    let out = t
        .run("--json google key-pairs create --cse-key-id cse_key --kacls-url")
        .arg(KACLS)
        .then("--subject-name")
        .arg("CN=jane@example.com, emailAddress=jane@example.com")
        .then("-i")
        .arg(&t.issuer_key)
        .arg(JANE)
        .ok()
        .json();
    let id = out["keyPairId"].as_str().unwrap();
    assert_eq!(out["enablementState"], "enabled");
    assert_eq!(out["subjectEmailAddresses"], json!([JANE]));
    assert_eq!(
        out["privateKeyMetadata"][0]["kaclsKeyMetadata"]["kaclsUri"],
        KACLS
    );
    assert!(out["pem"].as_str().unwrap().contains("BEGIN CERTIFICATE"));

    t.run("google identities insert --user-id")
        .arg(JANE)
        .arg(id)
        .ok();
    let identity = t
        .run("--json google identities get --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(
        identity,
        json!({"emailAddress": JANE, "primaryKeyPairId": id})
    );
    let listed = t
        .run("--json google identities list --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // The minted leaf is in the store, recorded with its key pair.
    let certs = t
        .env
        .run("--json kms certificates list -t")
        .arg(format!("gmail:keypair={id}"))
        .ok()
        .json();
    assert_eq!(certs.as_array().unwrap().len(), 1, "{certs}");
    let leaf = &certs[0];
    assert_eq!(leaf["CertificateLink"], "ca");
    assert!(
        leaf["tags"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("mailpki:cse-user={JANE}")))
    );

    // The token was fetched once per command, not once per call.
    let tokens = t.count("POST", "/token");
    let api_calls = t.count("", "/gmail/");
    assert!(
        api_calls >= 4 && tokens <= 4,
        "tokens {tokens}, calls {api_calls}"
    );
}

#[test]
fn lists_follow_pagination_and_key_pairs_go_through_their_lifecycle() {
    let t = tenant(&[JANE]);
    let ids: Vec<String> = (0..3).map(|_| t.create_key_pair(JANE)).collect();
    let listed = t
        .run("--json google key-pairs list --page-size 2 --user-id")
        .arg(JANE)
        .ok()
        .json();
    let got: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["keyPairId"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let list_calls = t
        .emulator
        .requests()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with("/cse/keypairs"))
        .count();
    assert_eq!(list_calls, 2, "two pages");

    let id = &ids[0];
    // Obliterate needs 30 days disabled.
    t.run("google key-pairs obliterate --user-id")
        .arg(JANE)
        .arg(id)
        .fails(1)
        .stderr_has("30 days");
    let disabled = t
        .run("--json google key-pairs disable --user-id")
        .arg(JANE)
        .arg(id)
        .ok()
        .json();
    assert_eq!(disabled["enablementState"], "disabled");
    assert!(disabled["disableTime"].is_string());
    t.run("google key-pairs obliterate --user-id")
        .arg(JANE)
        .arg(id)
        .fails(1);
    t.emulator.admin(
        "POST",
        "/admin/clock",
        &json!({"advance_seconds": 31 * 86_400}),
    );
    t.run("google key-pairs obliterate --user-id")
        .arg(JANE)
        .arg(id)
        .ok();
    t.run("google key-pairs get --user-id")
        .arg(JANE)
        .arg(id)
        .fails(1)
        .stderr_has("404")
        .stderr_has("hint:");

    let enabled = t
        .run("--json google key-pairs enable --user-id")
        .arg(JANE)
        .arg(&ids[1])
        .ok()
        .json();
    assert_eq!(enabled["enablementState"], "enabled");
}

#[test]
fn identities_patch_delete_and_reject_what_google_rejects() {
    let t = tenant(&[JANE, "bob@example.com"]);
    let first = t.create_key_pair(JANE);
    let second = t.create_key_pair(JANE);
    let bobs = t.create_key_pair("bob@example.com");
    t.run("google identities insert --user-id")
        .arg(JANE)
        .arg(&first)
        .ok();
    t.run("google identities insert --user-id")
        .arg(JANE)
        .arg(&first)
        .fails(1)
        .stderr_has("409");
    t.run("google identities patch --user-id")
        .arg(JANE)
        .then("--signing-key-pair-id")
        .arg(&first)
        .then("--encryption-key-pair-id")
        .arg(&second)
        .ok();
    let identity = t
        .run("--json google identities get --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(
        identity["signAndEncryptKeyPairs"],
        json!({"signingKeyPairId": first, "encryptionKeyPairId": second})
    );
    // Another user's key pair, and a disabled one, are refused.
    t.run("google identities patch --user-id")
        .arg(JANE)
        .arg(&bobs)
        .fails(1)
        .stderr_has("400");
    t.run("google key-pairs disable --user-id")
        .arg(JANE)
        .arg(&second)
        .ok();
    t.run("google identities patch --user-id")
        .arg(JANE)
        .arg(&second)
        .fails(1)
        .stderr_has("not enabled");
    t.run("google identities delete --user-id").arg(JANE).ok();
    t.run("google identities get --user-id")
        .arg(JANE)
        .fails(1)
        .stderr_has("404");
}

#[test]
fn existing_leaves_by_id_and_by_pkcs12() {
    let t = tenant(&[JANE]);
    let minted = t
        .env
        .run("--json kms certificates certify -g --certificate-id jane-leaf -k")
        .arg(&t.issuer_key)
        .then("--subject-name")
        .arg("CN=jane@example.com, emailAddress=jane@example.com")
        .ok()
        .json();
    assert_eq!(minted["unique_identifier"], "jane-leaf");
    let by_id = t
        .run("--json google key-pairs create --cse-key-id cse_key --leaf-certificate-id jane-leaf --kacls-url")
        .arg(KACLS)
        .arg(JANE)
        .ok()
        .json();
    assert!(by_id["keyPairId"].is_string());
    // The same certificate again: Google already has it.
    t.run(
        "google key-pairs create --cse-key-id cse_key --leaf-certificate-id jane-leaf --kacls-url",
    )
    .arg(KACLS)
    .arg(JANE)
    .fails(1)
    .stderr_has("409");

    let p12 = t.env.path("jane2.p12");
    t.env
        .run("kms certificates certify -g --certificate-id jane2 -k")
        .arg(&t.issuer_key)
        .then("--subject-name")
        .arg("CN=jane@example.com, emailAddress=jane@example.com")
        .ok();
    t.env
        .run("kms certificates export -c jane2 -f pkcs12 -p pw")
        .arg(&p12)
        .ok();
    t.run("google key-pairs create --cse-key-id cse_key --leaf-certificate-pkcs12-file")
        .arg(&p12)
        .then("--leaf-certificate-pkcs12-password pw --kacls-url")
        .arg(KACLS)
        .arg(JANE)
        .ok();
    let pairs = t
        .run("--json google key-pairs list --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(pairs.as_array().unwrap().len(), 2);
}

#[test]
fn a_dry_run_writes_the_request_and_uploads_nothing() {
    let t = tenant(&[JANE]);
    let before = t
        .env
        .run("--json kms certificates list")
        .ok()
        .json()
        .as_array()
        .unwrap()
        .len();
    let out_dir = t.env.path("dry");
    let out = t
        .run("--json google key-pairs create --dry-run --cse-key-id cse_key --kacls-url")
        .arg(KACLS)
        .then("-i")
        .arg(&t.issuer_key)
        .then("--output-dir")
        .arg(&out_dir)
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(out["dry_run"], true);
    let p7 = out_dir.join(format!("{JANE}.pkcs7.pem"));
    let printed = String::from_utf8(openssl(
        &t.pki.dir,
        ["pkcs7", "-in", &s(&p7), "-print_certs", "-noout"],
    ))
    .unwrap();
    assert_eq!(
        printed.matches("subject=").count(),
        3,
        "leaf, issuing CA, root: {printed}"
    );
    let wrapped = std::fs::read_to_string(out_dir.join(format!("{JANE}.wrapped-key"))).unwrap();
    assert!(wrapped.len() > 1000, "a wrapped RSA-2048 PKCS#8");
    assert_eq!(
        out["request"]["privateKeyMetadata"][0]["kaclsKeyMetadata"]["kaclsData"],
        wrapped.as_str()
    );
    assert_eq!(t.count("POST", "/cse/keypairs"), 0);
    assert_eq!(
        t.env
            .run("--json kms certificates list")
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        before
    );
}

#[test]
fn throttling_and_server_faults_are_retried() {
    let t = tenant(&[JANE]);
    let id = t.create_key_pair(JANE);
    t.emulator.admin(
        "POST",
        "/admin/faults",
        &json!({"fail_next": [503, 429, 503]}),
    );
    t.run("google key-pairs get --user-id")
        .arg(JANE)
        .arg(&id)
        .ok();
    let statuses: Vec<u16> = t
        .emulator
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&id))
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(statuses, [503, 429, 503, 200]);
    // Other client errors are not retried.
    let before = t.count("GET", "/cse/keypairs/nope");
    t.run("google key-pairs get --user-id")
        .arg(JANE)
        .arg("nope")
        .fails(1);
    assert_eq!(t.count("GET", "/cse/keypairs/nope") - before, 1);
    // The token endpoint is tried again too, as google-auth does.
    t.emulator.admin(
        "POST",
        "/admin/faults",
        &json!({"token_fail_next": [503, 429]}),
    );
    t.run("google key-pairs get --user-id")
        .arg(JANE)
        .arg(&id)
        .ok();
    let tokens: Vec<u16> = t
        .emulator
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p == "/token")
        .map(|(_, _, s)| s)
        .collect();
    assert!(tokens.ends_with(&[503, 429, 200]), "{tokens:?}");
}

#[test]
fn bad_requests_fail_with_the_admins_fix_and_change_nothing() {
    let t = tenant(&[JANE]);
    let count = || {
        t.env
            .run("--json kms certificates list")
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    // A user Google does not know.
    t.run("google key-pairs create --cse-key-id cse_key --kacls-url")
        .arg(KACLS)
        .then("-i")
        .arg(&t.issuer_key)
        .arg("ghost@example.com")
        .fails(1)
        .stderr_has("Invalid email or User ID")
        .stderr_has("does not exist in the domain");
    // CSE not enabled (yet) for the user.
    t.emulator.admin(
        "POST",
        "/admin/users",
        &json!({"email": "late@example.com", "cse_enabled": false}),
    );
    t.run("google key-pairs create --cse-key-id cse_key --kacls-url")
        .arg(KACLS)
        .then("-i")
        .arg(&t.issuer_key)
        .arg("late@example.com")
        .fails(1)
        .stderr_has("failedPrecondition")
        .stderr_has("24 hours");
    let late = t
        .env
        .run("--json kms certificates list -t mailpki:cse-user=late@example.com")
        .ok()
        .json();
    assert_eq!(late.as_array().unwrap().len(), 1);
    assert!(!late[0]["tags"].to_string().contains("gmail:keypair="));
    // Once CSE is active, the same command uploads that certificate instead of minting again.
    t.emulator.admin(
        "POST",
        "/admin/users",
        &json!({"email": "late@example.com", "cse_enabled": true}),
    );
    t.run("google key-pairs create --cse-key-id cse_key --kacls-url")
        .arg(KACLS)
        .then("-i")
        .arg(&t.issuer_key)
        .arg("late@example.com")
        .ok()
        .stderr_has("minted earlier for late@example.com and never uploaded");
    let late_again = t
        .env
        .run("--json kms certificates list -t mailpki:cse-user=late@example.com")
        .ok()
        .json();
    assert_eq!(
        late_again.as_array().unwrap().len(),
        1,
        "no second certificate"
    );
    assert!(late_again[0]["tags"].to_string().contains("gmail:keypair="));
    let uploads = t.count("POST", "/cse/keypairs");
    // A non-compliant leaf is refused before any upload.
    let ext = t.env.path("server.ext");
    std::fs::write(&ext, "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=email:copy\n").unwrap();
    t.run("google key-pairs create --cse-key-id cse_key --kacls-url")
        .arg(KACLS)
        .then("-i")
        .arg(&t.issuer_key)
        .then("--leaf-certificate-extensions")
        .arg(&ext)
        .arg(JANE)
        .fails(1)
        .stderr_has("google.eku.email_protection");
    assert_eq!(t.count("POST", "/cse/keypairs"), uploads);
    // Not a CSE key, no key file, unreachable API, undelegated scopes.
    t.run("google key-pairs create --cse-key-id ca --kacls-url")
        .arg(KACLS)
        .then("-i")
        .arg(&t.issuer_key)
        .arg(JANE)
        .fails(1)
        .stderr_has("not a SymmetricKey");
    t.env
        .run("google key-pairs list --user-id")
        .arg(JANE)
        .env("MAILPKI_GMAIL_API_URL", &t.emulator.url)
        .fails(1)
        .stderr_has("no service account key");
    t.env
        .run("google key-pairs list --user-id")
        .arg(JANE)
        .env("MAILPKI_SERVICE_ACCOUNT_KEY", &t.emulator.key_file)
        .env("MAILPKI_GMAIL_API_URL", "http://127.0.0.1:9")
        .fails(1)
        .stderr_has("hint: check the API URL");
    let narrow = t.emulator.admin(
        "POST",
        "/admin/service-accounts",
        &json!({"scopes": ["https://www.googleapis.com/auth/gmail.readonly"]}),
    );
    let narrow_file = t.env.path("narrow.json");
    std::fs::write(&narrow_file, narrow.to_string()).unwrap();
    t.env
        .run("google key-pairs list --user-id")
        .arg(JANE)
        .env("MAILPKI_SERVICE_ACCOUNT_KEY", &narrow_file)
        .env("MAILPKI_GMAIL_API_URL", &t.emulator.url)
        .fails(1)
        .stderr_has("unauthorized_client")
        .stderr_has("Domain-wide delegation");
    assert_eq!(count(), before + 1, "only the late user's leaf was stored");
    let _ = attributes;
}

#[test]
fn per_user_quotas_answer_429_and_the_client_waits() {
    let t = tenant(&[JANE]);
    for _ in 0..3 {
        t.create_key_pair(JANE);
    }
    t.emulator
        .admin("POST", "/admin/quota", &json!({"per_user_per_second": 1.0}));
    let listed = t
        .run("--json google key-pairs list --page-size 1 --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let throttled = t
        .emulator
        .requests()
        .iter()
        .filter(|(_, _, status)| *status == 429)
        .count();
    assert!(throttled >= 1, "the quota bit");
}

#[test]
fn the_emulator_keeps_its_tenant_in_a_state_file() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    let state = env.path("tenant.json");
    let start =
        || env.start_emulator_with(&[JANE], &pki.path("root.pem"), &["--state", &s(&state)]);
    let id = {
        let emulator = start();
        let out = emulator
            .run(
                &env,
                "--json google key-pairs create --cse-key-id cse_key --kacls-url",
            )
            .arg(KACLS)
            .then("-i")
            .arg(&key)
            .arg(JANE)
            .ok()
            .json();
        out["keyPairId"].as_str().unwrap().to_owned()
    };
    let emulator = start();
    let got = emulator
        .run(&env, "--json google key-pairs get --user-id")
        .arg(JANE)
        .arg(&id)
        .ok()
        .json();
    assert_eq!(got["keyPairId"], id.as_str());
}

#[test]
fn unreadable_key_files_are_named() {
    let t = tenant(&[JANE]);
    let bad = t.env.path("bad.json");
    std::fs::write(&bad, "{\"type\": \"service_account\"").unwrap();
    t.env
        .run("google key-pairs list --user-id")
        .arg(JANE)
        .env("MAILPKI_SERVICE_ACCOUNT_KEY", &bad)
        .fails(1)
        .stderr_has("not a service account key file")
        .stderr_has("bad.json");
    t.env
        .run("google key-pairs list --user-id")
        .arg(JANE)
        .env("MAILPKI_SERVICE_ACCOUNT_KEY", t.env.path("missing.json"))
        .fails(1)
        .stderr_has("missing.json");
}

/// `--chain-validation none` keeps a key pair whose chain Gmail cannot verify (to decrypt old
/// mail); such a key pair cannot back an identity. The default checks the chain.
#[test]
fn chain_validation_none_keeps_an_unverifiable_key_pair_for_decryption_only() {
    let (env, pki) = env_with_pki();
    let issuer_key = issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    // Gmail trusts another organization's root, not ours.
    let other = TestPki::create(&env.path("other-pki"));
    let emulator = env.start_emulator(&[JANE], &other.path("root.pem"));
    let create = |extra: &[&str]| {
        emulator
            .run(
                &env,
                "--json google key-pairs create --cse-key-id cse_key --kacls-url",
            )
            .arg(KACLS)
            .then("-i")
            .arg(&issuer_key)
            .then(&extra.join(" "))
            .arg(JANE)
    };
    // Gmail names no reason for a chain it cannot verify.
    create(&[]).fails(1).stderr_has("Invalid certificate");
    create(&["--chain-validation", "bogus"]).fails(2);
    let kept = create(&["--chain-validation", "none"]).ok().json();
    let id = kept["keyPairId"].as_str().unwrap();
    emulator
        .run(&env, "google identities insert --user-id")
        .arg(JANE)
        .arg(id)
        .fails(1)
        .stderr_has("did not validate; it can only decrypt");
    let requests = emulator.requests();
    assert!(
        requests
            .iter()
            .any(|(m, p, status)| m == "POST" && p.ends_with("/cse/keypairs") && *status == 200)
    );
}
