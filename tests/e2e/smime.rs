//! `google smime ...` and `google send-as list` against the emulator.

use mailpki_test_support::{EmulatorProcess, TestEnv, TestPki, s};
use serde_json::json;

use crate::{env_with_pki, issuer_key};

const JANE: &str = "jane@example.com";
const ALIAS: &str = "sales@example.com";

fn setup() -> (TestEnv, TestPki, EmulatorProcess, String) {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let emulator = env.start_emulator(&[JANE], &pki.path("root.pem"));
    emulator.admin(
        "POST",
        "/admin/users",
        &json!({"email": JANE, "aliases": [ALIAS]}),
    );
    (env, pki, emulator, key)
}

fn mint(env: &TestEnv, key: &str, id: &str, email: &str) {
    env.run("kms certificates certify -g --certificate-id")
        .arg(id)
        .then("-k")
        .arg(key)
        .then("--subject-name")
        .arg(format!("CN={email}, emailAddress={email}"))
        .ok();
}

#[test]
fn certificates_are_uploaded_listed_made_default_and_deleted() {
    let (env, _pki, emu, key) = setup();
    let aliases = emu
        .run(&env, "--json google send-as list --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(aliases.as_array().unwrap().len(), 2);

    mint(&env, &key, "jane1", JANE);
    mint(&env, &key, "jane2", JANE);
    let first = emu
        .run(
            &env,
            "--json google smime insert --certificate-id jane1 --user-id",
        )
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(first["isDefault"], false);
    assert_eq!(first["issuerCn"], "Test Issuing CA");
    assert!(
        first["expiration"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 1_700_000_000_000
    );
    assert!(first.get("pkcs12").is_none(), "never returned");
    // From a PKCS#12 file, made default on upload.
    let p12 = env.path("jane2.p12");
    env.run("kms certificates export -c jane2 -f pkcs12 -p pw")
        .arg(&p12)
        .ok();
    let second = emu
        .run(
            &env,
            "--json google smime insert --set-default --pkcs12-password pw --user-id",
        )
        .arg(JANE)
        .then("--pkcs12-file")
        .arg(&p12)
        .ok()
        .json();
    assert_eq!(second["isDefault"], true);
    let first_id = first["id"].as_str().unwrap();
    emu.run(&env, "google smime set-default --user-id")
        .arg(JANE)
        .arg(first_id)
        .ok();
    let listed = emu
        .run(&env, "--json google smime list --user-id")
        .arg(JANE)
        .ok()
        .json();
    let defaults: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["isDefault"] == true)
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, [first_id]);
    emu.run(&env, "google smime delete --user-id")
        .arg(JANE)
        .arg(first_id)
        .ok();
    emu.run(&env, "google smime get --user-id")
        .arg(JANE)
        .arg(first_id)
        .fails(1)
        .stderr_has("404");
    // Only pkcs12 and encryptedKeyPassword travel; the scope for the primary address is basic.
    let uploads: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/smimeInfo"))
        .collect();
    assert_eq!(uploads.len(), 2);
}

#[test]
fn aliases_need_their_own_certificate() {
    let (env, _pki, emu, key) = setup();
    mint(&env, &key, "sales", ALIAS);
    mint(&env, &key, "jane", JANE);
    emu.run(&env, "google smime insert --certificate-id sales --user-id")
        .arg(JANE)
        .then("--send-as")
        .arg(ALIAS)
        .ok();
    // Jane's certificate for the alias: refused locally, with the rule, before any upload.
    emu.run(&env, "google smime insert --certificate-id jane --user-id")
        .arg(JANE)
        .then("--send-as")
        .arg(ALIAS)
        .fails(1)
        .stderr_has("google.san.user");
    // An address that is not one of the user's: Google's 404.
    mint(&env, &key, "other", "other@example.com");
    emu.run(&env, "google smime insert --certificate-id other --user-id")
        .arg(JANE)
        .then("--send-as other@example.com")
        .fails(1)
        .stderr_has("404");
    let listed = emu
        .run(&env, "--json google smime list --user-id")
        .arg(JANE)
        .then("--send-as")
        .arg(ALIAS)
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

/// Mints a certificate for `email` valid `days` and exports it as `<id>.p12` (password `pw`).
pub(crate) fn p12(
    env: &TestEnv,
    key: &str,
    id: &str,
    email: &str,
    days: u32,
) -> std::path::PathBuf {
    env.run("kms certificates certify -g --certificate-id")
        .arg(id)
        .then("-k")
        .arg(key)
        .then("-d")
        .arg(days.to_string())
        .then("--subject-name")
        .arg(format!("CN={email}, emailAddress={email}"))
        .ok();
    let path = env.path(&format!("{id}.p12"));
    env.run("kms certificates export -f pkcs12 -p pw -c")
        .arg(id)
        .arg(&path)
        .ok();
    path
}

#[test]
fn import_csv_uploads_googles_sample_format_row_by_row() {
    let (env, _pki, emu, key) = setup();
    let jane = p12(&env, &key, "jane", JANE, 365);
    let sales = p12(&env, &key, "sales", ALIAS, 365);
    let ghost = p12(&env, &key, "ghost", "ghost@example.com", 365);
    let csv = env.path("certificates.csv");
    std::fs::write(
        &csv,
        format!(
            "{JANE},{},pw\n{JANE},{},pw,{ALIAS}\n{JANE},missing.p12,pw,x@example.com\n{JANE},{},wrong,y@example.com\n{JANE},{},pw,{JANE}\nghost@example.com,{},pw\n",
            s(&jane),
            s(&sales),
            s(&jane),
            s(&sales),
            s(&ghost)
        ),
    )
    .unwrap();
    let out = emu
        .run(&env, "--json google smime import-csv --set-default")
        .arg(&csv)
        .fails(1)
        .json();
    assert_eq!(out["done"], 2, "{out}");
    let reasons: Vec<String> = out["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "failed")
        .map(|r| r["detail"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("cannot read")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("password is wrong")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("duplicate row")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Invalid email or User ID")),
        "{reasons:?}"
    );
    let listed = emu
        .run(&env, "--json google smime list --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(listed[0]["isDefault"], true);
    // Re-running uploads nothing again.
    let again = emu
        .run(&env, "--json google smime import-csv")
        .arg(&csv)
        .fails(1)
        .json();
    assert_eq!(again["done"], 0);
    assert_eq!(again["skipped"], 2);
}

#[test]
fn rotation_keeps_valid_defaults_and_replaces_the_rest() {
    let (env, _pki, emu, key) = setup();
    for u in [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ] {
        emu.admin("POST", "/admin/users", &json!({"email": u}));
    }
    let upload = |id: &str, email: &str, days: u32, default: bool| {
        let path = p12(&env, &key, id, email, days);
        let mut run = emu
            .run(
                &env,
                "--json google smime insert --pkcs12-password pw --user-id",
            )
            .arg(email)
            .then("--pkcs12-file")
            .arg(&path);
        if default {
            run = run.then("--set-default");
        }
        run.ok().json()["id"].as_str().unwrap().to_owned()
    };
    // a: nothing yet. b: two valid, no default. c: a long-valid default. d: a default about to expire.
    upload("b1", "b@example.com", 100, false);
    let b2 = upload("b2", "b@example.com", 300, false);
    let c1 = upload("c1", "c@example.com", 365, true);
    let d1 = upload("d1", "d@example.com", 10, true);
    let csv = env.path("users.csv");
    std::fs::write(
        &csv,
        "user\na@example.com\nb@example.com\nc@example.com\nd@example.com\n",
    )
    .unwrap();
    let count = |u: &str| {
        emu.run(&env, "--json google smime list --user-id")
            .arg(u)
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
    };

    let dry_report = env.path("dry.json");
    let dry = emu
        .run(&env, "--json google smime rotate --dry-run -i")
        .arg(&key)
        .then("--csv")
        .arg(&csv)
        .then("--report")
        .arg(&dry_report)
        .ok()
        .json();
    assert_eq!(dry["done"], 3);
    // Each user's row says what would be uploaded, and why.
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&dry_report).unwrap()).unwrap();
    let a = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"] == "a@example.com")
        .unwrap();
    let action = a["detail"]["action"].as_str().unwrap();
    assert!(
        action.starts_with("would mint a certificate for a@example.com with issuer key")
            && action.contains("upload it as the default ("),
        "{action}"
    );
    assert_eq!(
        (count("a@example.com"), count("d@example.com")),
        (0, 1),
        "a dry run changes nothing"
    );

    let report_file = env.path("rotate.json");
    let out = emu
        .run(&env, "--json google smime rotate --threshold-days 30 -i")
        .arg(&key)
        .then("--csv")
        .arg(&csv)
        .then("--report")
        .arg(&report_file)
        .ok()
        .json();
    assert_eq!(
        (out["done"].as_u64(), out["skipped"].as_u64()),
        (Some(3), Some(1))
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    let by_user = |u: &str| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["user"] == u)
            .unwrap()
            .clone()
    };
    assert_eq!(
        by_user("a@example.com")["detail"]["action"],
        "uploaded and set default"
    );
    assert_eq!(
        by_user("b@example.com")["detail"],
        json!({"send_as": "b@example.com", "action": "set default", "smime_id": b2})
    );
    assert_eq!(by_user("c@example.com")["outcome"], "skipped");
    assert_eq!(
        by_user("d@example.com")["detail"]["action"],
        "uploaded and set default"
    );
    let default_of = |u: &str| {
        let listed = emu
            .run(&env, "--json google smime list --user-id")
            .arg(u)
            .ok()
            .json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["isDefault"] == true)
            .map(|i| i["id"].as_str().unwrap().to_owned())
    };
    assert_eq!(default_of("c@example.com"), Some(c1));
    assert_ne!(default_of("d@example.com"), Some(d1));
    assert_eq!(
        (
            count("a@example.com"),
            count("b@example.com"),
            count("d@example.com")
        ),
        (1, 2, 2)
    );
    // Rotation is idempotent.
    let again = emu
        .run(&env, "--json google smime rotate -i")
        .arg(&key)
        .then("--csv")
        .arg(&csv)
        .ok()
        .json();
    assert_eq!(again["skipped"], 4);
}
