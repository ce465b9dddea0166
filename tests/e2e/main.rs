//! End-to-end tests: the real `mailpki` binary on a temporary HOME, with certificates made
//! by the `openssl` command line at test time. One test binary, one module per area.

// Scenario tests read top to bottom as a story; splitting them would hide the plot.
#![allow(clippy::too_many_lines)]
// Helpers outside #[test] functions unwrap too: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]

mod access_rights;
mod batch;
mod export;
mod google;
mod import;
mod issuance;
mod lifecycle;
mod onboard;
mod smime;
mod store_safety;

use mailpki_test_support::{TestEnv, TestPki};

pub(crate) fn env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_mailpki"))
}

/// A test home with a CA hierarchy in `pki/`.
pub(crate) fn env_with_pki() -> (TestEnv, TestPki) {
    let env = env();
    let pki = TestPki::create(&env.path("pki"));
    (env, pki)
}

/// Imports the issuing CA as PKCS#12 under `id` and returns the import's JSON report.
pub(crate) fn import_issuer(env: &TestEnv, pki: &TestPki, id: &str) -> serde_json::Value {
    let p12 = pki.pkcs12(&format!("{id}.p12"), "modern");
    env.run("--json kms certificates import -f pkcs12")
        .arg(&p12)
        .then("-p")
        .arg(TestPki::PASSWORD)
        .arg(id)
        .ok()
        .json()
}

pub(crate) fn attributes(env: &TestEnv, id: &str) -> serde_json::Value {
    env.run("kms attributes get -i").arg(id).ok().json()
}

/// Number of certificates `alice` sees.
pub(crate) fn certificate_count(env: &TestEnv) -> usize {
    env.run("--json kms certificates list")
        .ok()
        .json()
        .as_array()
        .map_or(0, Vec::len)
}
