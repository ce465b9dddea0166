//! A PostgreSQL database of its own per test, when `$MAILPKI_TEST_POSTGRES` names a server.

/// A fresh, empty PostgreSQL database for one test, on the server named by
/// `$MAILPKI_TEST_POSTGRES` (a URL with rights to create databases; `.ci/run` starts one).
/// Unset on a developer machine, the PostgreSQL half of a test is skipped with a note; in CI
/// (`CI` set) its absence fails the test. The database is dropped with the value.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("MAILPKI_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required in CI: set MAILPKI_TEST_POSTGRES"
            );
            crate::skipped(
                "the PostgreSQL halves",
                "set MAILPKI_TEST_POSTGRES to a server URL",
            );
            return None;
        };
        let name = format!("mailpki_test_{}", uuid_like());
        let mut client = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach MAILPKI_TEST_POSTGRES: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl TestDatabase {
    fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach MAILPKI_TEST_POSTGRES: {e}"))
    }

    /// The database goes away: new connections are refused and open ones are cut.
    pub fn cut_off(&self) {
        self.admin()
            .batch_execute(&format!(
                "ALTER DATABASE {0} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = '{0}' AND pid <> pg_backend_pid();",
                self.name
            ))
            .unwrap();
    }

    /// The database is back.
    pub fn restore(&self) {
        self.admin()
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                self.name
            ))
            .unwrap();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A random number: unique enough for names of test databases run in parallel.
fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap_or_else(|e| panic!("cannot read /dev/urandom: {e}"));
    u64::from_le_bytes(bytes).to_string()
}
