//! Symmetric keys, revoke and destroy.

use mailpki_test_support::s;

use crate::{attributes, env, env_with_pki, import_issuer};

#[test]
fn symmetric_keys_are_created_with_the_asked_length() {
    let env = env();
    let id = env
        .run("kms sym keys create --algorithm aes --length 256 cse-key")
        .ok()
        .stdout();
    assert_eq!(id.trim(), "cse-key");
    let attrs = attributes(&env, "cse-key");
    assert_eq!(attrs["object_type"], "SymmetricKey");
    assert_eq!(attrs["cryptographic_algorithm"], "AES");
    assert_eq!(attrs["cryptographic_length"], 256);
    let generated = env
        .run("--json kms sym keys create --number-of-bits 128")
        .ok()
        .json();
    let uid = generated["unique_identifier"].as_str().unwrap();
    assert_eq!(uid.len(), 36, "a UUID: {uid}");
    env.run("kms sym keys create --length 100")
        .fails(1)
        .stderr_has("unsupported key length 100");
    env.run("kms sym keys create cse-key")
        .fails(1)
        .stderr_has("already exists");
    env.run("kms sym keys destroy -k cse-key").ok();
    assert_eq!(attributes(&env, "cse-key")["state"], "Destroyed");
}

#[test]
fn an_issuer_with_live_children_is_not_destroyed_unless_forced() {
    let (env, pki) = env_with_pki();
    let report = import_issuer(&env, &pki, "ca");
    let root = report["chain"][0].as_str().unwrap();
    let private_id = report["private_key"].as_str().unwrap();
    env.run("kms certificates destroy -c")
        .arg(root)
        .fails(1)
        .stderr_has("still needed by [\"ca\"]");
    // The leaf's own key is not held back by its certificate.
    env.run("kms keys destroy -k").arg(private_id).ok();
    assert_eq!(attributes(&env, private_id)["state"], "Destroyed");
    let out = s(&env.path("x.p12"));
    env.run("kms certificates export -c ca -f pkcs12 -p x")
        .arg(&out)
        .fails(1)
        .stderr_has("has been destroyed");
    // With the child gone, the root goes too; --remove deletes it outright.
    env.run("kms certificates destroy -c ca").ok();
    env.run("kms certificates destroy -c")
        .arg(root)
        .then("--remove")
        .ok();
    env.run("kms attributes get -i")
        .arg(root)
        .fails(1)
        .stderr_has("no object");
    assert!(
        attributes(&env, "ca").get("CertificateLink").is_none(),
        "links to removed objects go"
    );
}

#[test]
fn forced_destroy_and_revoke() {
    let (env, pki) = env_with_pki();
    let report = import_issuer(&env, &pki, "ca");
    let root = report["chain"][0].as_str().unwrap();
    env.run("kms certificates destroy -c")
        .arg(root)
        .then("--force")
        .ok();
    env.run("kms certificates revoke superseded -c ca").ok();
    let attrs = attributes(&env, "ca");
    assert_eq!(attrs["state"], "Deactivated");
    assert_eq!(attrs["revocation_reason"], "superseded");
    env.run("kms certificates revoke")
        .arg("key stolen")
        .then("-c ca --compromised")
        .ok();
    assert_eq!(attributes(&env, "ca")["state"], "Compromised");
    env.run("kms certificates revoke superseded -c")
        .arg(root)
        .fails(1)
        .stderr_has("destroyed");
}
