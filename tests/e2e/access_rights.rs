//! Access rights between administrators sharing one store: the seed's scenario where admin A
//! imports the issuer CA and grants admin B what B needs to mint user certificates. The
//! scenarios run the same on the embedded store and through `mailpki server`.

use mailpki_test_support::{TestEnv, TestPki, s};

use crate::{env_with_pki, import_issuer, teams};

#[test]
fn grants_are_enforced_between_two_users() {
    for team in teams(&["alice", "bob", "carol"]) {
        eprintln!("deployment: {}", team.mode);
        grants_are_enforced_on(&team.env, &team.pki);
    }
}

fn grants_are_enforced_on(env: &TestEnv, pki: &TestPki) {
    let report = import_issuer(env, pki, "issuer_ca_certificate");
    let private_id = report["private_key"].as_str().unwrap();
    let public_id = report["public_key"].as_str().unwrap();

    // Bob sees nothing of Alice's store, not even that the ID exists.
    env.run_as("bob", "kms attributes get -i issuer_ca_certificate")
        .fails(1)
        .stderr_has("no object with ID `issuer_ca_certificate`")
        .stderr_has("access-rights obtained");
    let bob_list = env
        .run_as("bob", "--json kms certificates list")
        .ok()
        .json();
    assert_eq!(bob_list.as_array().unwrap().len(), 0);

    // Only the owner grants (and to Bob, holding nothing, the object is not there at all).
    env.run_as(
        "bob",
        "kms access-rights grant bob -i issuer_ca_certificate get",
    )
    .fails(1)
    .stderr_has("no object with ID");

    for id in ["issuer_ca_certificate", private_id, public_id] {
        env.run("kms access-rights grant bob -i")
            .arg(id)
            .then("get get_attributes certify")
            .ok();
    }
    let attrs = env
        .run_as("bob", "kms attributes get -i issuer_ca_certificate")
        .ok()
        .json();
    assert_eq!(attrs["PrivateKeyLink"], private_id);
    assert_eq!(attrs["owner"], "alice");

    // get is not export: Bob cannot take the CA key out.
    let out = s(&env.path("stolen.p12"));
    env.run_as(
        "bob",
        "kms certificates export -c issuer_ca_certificate -f pkcs12 -p x",
    )
    .arg(&out)
    .fails(1)
    .stderr_has("may not export");
    assert!(!env.path("stolen.p12").exists());

    // Obtained / owned / list.
    let obtained = env
        .run_as("bob", "--json kms access-rights obtained")
        .ok()
        .json();
    let obtained = obtained.as_array().unwrap();
    assert_eq!(obtained.len(), 3);
    assert!(obtained.iter().all(|o| o["owner"] == "alice"));
    assert_eq!(obtained[0]["operations"].as_array().unwrap().len(), 3);
    let owned = env.run("--json kms access-rights owned").ok().json();
    assert_eq!(
        owned.as_array().unwrap().len(),
        4,
        "certificate, two keys, root"
    );
    let acl = env
        .run("--json kms access-rights list issuer_ca_certificate")
        .ok()
        .json();
    assert_eq!(acl[0]["user"], "bob");
    env.run_as("bob", "kms access-rights list issuer_ca_certificate")
        .fails(1)
        .stderr_has("only the owner");

    // Revoking takes effect at once.
    env.run("kms access-rights revoke bob -i issuer_ca_certificate get_attributes")
        .ok();
    env.run_as("bob", "kms attributes get -i issuer_ca_certificate")
        .fails(1);

    // Carol, with no grant at all, is refused; a grant to everyone lets her read.
    env.run_as("carol", "kms attributes get -i")
        .arg(public_id)
        .fails(1);
    env.run("kms access-rights grant * -i")
        .arg(public_id)
        .then("get_attributes")
        .ok();
    env.run_as("carol", "kms attributes get -i")
        .arg(public_id)
        .ok();
}

#[test]
fn export_grants_on_certificate_and_key_allow_a_pkcs12_export() {
    for team in teams(&["alice", "bob"]) {
        eprintln!("deployment: {}", team.mode);
        export_grants_on(&team.env, &team.pki);
    }
}

fn export_grants_on(env: &TestEnv, pki: &TestPki) {
    let report = import_issuer(env, pki, "ca");
    let private_id = report["private_key"].as_str().unwrap();
    let out = s(&env.path("bob.p12"));
    env.run("kms access-rights grant bob -i ca export").ok();
    // The certificate alone is not enough: the key needs its own grant.
    env.run_as("bob", "kms certificates export -c ca -f pkcs12 -p x")
        .arg(&out)
        .fails(1)
        .stderr_has(&format!("no object with ID `{private_id}`"));
    env.run("kms access-rights grant bob -i")
        .arg(private_id)
        .then("export")
        .ok();
    env.run_as("bob", "kms certificates export -c ca -f pkcs12 -p x")
        .arg(&out)
        .ok();
}

#[test]
fn unknown_operations_are_usage_errors() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    env.run("kms access-rights grant bob -i ca fly")
        .fails(2)
        .stderr_has("unknown value `fly`");
}

/// Regression: `grant USER` once shared its argument ID with the global `--user`, so the
/// grantee silently became the acting user.
#[test]
fn the_grantee_never_becomes_the_acting_user() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    env.run("kms access-rights grant mallory -i ca get_attributes")
        .ok();
    let acl = env.run("--json kms access-rights list ca").ok().json();
    assert_eq!(acl[0]["user"], "mallory");
    // And an explicit --user still names who acts.
    env.run("--user mallory kms access-rights grant eve -i ca get")
        .fails(1)
        .stderr_has("only the owner");
}
