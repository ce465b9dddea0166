//! `google smime ...` and `google send-as list` against the emulator.

use mailpki_test_support::{EmulatorProcess, TestEnv, TestPki};
use serde_json::json;

use crate::{env_with_pki, import_issuer};

const JANE: &str = "jane@example.com";
const ALIAS: &str = "sales@example.com";

fn setup() -> (TestEnv, TestPki, EmulatorProcess, String) {
    let (env, pki) = env_with_pki();
    let key = import_issuer(&env, &pki, "ca")["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
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
