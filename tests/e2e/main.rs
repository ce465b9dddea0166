//! End-to-end tests: the real `mailpki` binary on a temporary HOME, with certificates made
//! by the `openssl` command line at test time. One test binary, one module per area.

// Scenario tests read top to bottom as a story; splitting them would hide the plot.
#![allow(clippy::too_many_lines)]
// Helpers outside #[test] functions unwrap too: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]
// A scenario run over several deployments says which one it is on, for the failure's reader.
#![allow(clippy::print_stderr)]

mod access_rights;
mod batch;
mod export;
mod google;
mod import;
mod issuance;
mod lifecycle;
mod onboard;
mod server;
mod smime;
mod store_safety;

use mailpki_test_support::{ServerProcess, TestDatabase, TestEnv, TestPki, s};

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

/// A team's store for a scenario: embedded in each admin's CLI, or behind `mailpki server`
/// over SQLite, or over PostgreSQL (when `$MAILPKI_TEST_POSTGRES` names a server).
pub(crate) struct Team {
    pub(crate) env: TestEnv,
    pub(crate) pki: TestPki,
    pub(crate) mode: &'static str,
    pub(crate) server: Option<ServerProcess>,
    // Dropped after the server that uses it.
    _database: Option<TestDatabase>,
}

/// One team per deployment this run can reach; `users` get API tokens on the servers.
pub(crate) fn teams(users: &[&str]) -> Vec<Team> {
    let mut all = Vec::new();
    let (env, pki) = env_with_pki();
    all.push(Team {
        env,
        pki,
        mode: "embedded",
        server: None,
        _database: None,
    });
    let (env, pki) = env_with_pki();
    let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), "");
    env.use_server(&server, users);
    all.push(Team {
        env,
        pki,
        mode: "server over SQLite",
        server: Some(server),
        _database: None,
    });
    if let Some(database) = TestDatabase::create() {
        let (env, pki) = env_with_pki();
        let server = env.start_server(&database.url, "");
        env.use_server(&server, users);
        all.push(Team {
            env,
            pki,
            mode: "server over PostgreSQL",
            server: Some(server),
            _database: Some(database),
        });
    }
    all
}
