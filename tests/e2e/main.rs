//! End-to-end tests: the real `mailpki` binary on a temporary HOME, with certificates made
//! by the `openssl` command line at test time. One test binary, one module per area.

// Scenario tests read top to bottom as a story; splitting them would hide the plot.
#![allow(clippy::too_many_lines)]
// Helpers outside #[test] functions unwrap too: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]
// A scenario run over several deployments says which one it is on, for the failure's reader.
#![allow(clippy::print_stderr)]

mod access_rights;
mod attacks;
mod batch;
mod browser;
mod console;
mod crash;
mod export;
mod first_hour;
mod google;
mod hsm;
mod import;
mod issuance;
mod kacls;
mod lifecycle;
mod offboard;
mod onboard;
mod pkilint_agreement;
mod real_clients;
mod revocation;
mod server;
mod smime;
mod store_safety;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailpki_test_support::{ServerProcess, TestDatabase, TestEnv, TestPki, s};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{Value, json};

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

/// Imports the issuing CA as `ca` and returns its private key's ID (what `-i`/`-k` take).
pub(crate) fn issuer_key(env: &TestEnv, pki: &TestPki) -> String {
    import_issuer(env, pki, "ca")["private_key"]
        .as_str()
        .unwrap()
        .to_owned()
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

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A local identity provider: an RSA key, its JWKS, and ID tokens signed with it.
pub(crate) struct Idp {
    key: PKey<Private>,
    kid: String,
    pub(crate) issuer: String,
    pub(crate) audience: String,
}

impl Idp {
    pub(crate) const ISSUER: &'static str = "https://idp.example.com";
    pub(crate) const AUDIENCE: &'static str = "mailpki";

    pub(crate) fn new(kid: &str) -> Self {
        Self::with_issuer(kid, Self::ISSUER, Self::AUDIENCE)
    }

    pub(crate) fn with_issuer(kid: &str, issuer: &str, audience: &str) -> Self {
        Self {
            key: PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Writes the JWKS to `path` and returns the TOML of an issuer entry trusting it.
    pub(crate) fn trusted_at(&self, path: &std::path::Path) -> String {
        std::fs::write(path, self.jwks().to_string()).unwrap();
        format!(
            "issuer = \"{}\"\naudience = \"{}\"\njwks_file = \"{}\"\n",
            self.issuer,
            self.audience,
            path.display()
        )
    }

    /// Standard claims from this issuer for `email`, valid ten minutes, plus `extra`.
    pub(crate) fn claims_with(&self, email: &str, extra: &Value) -> Value {
        let mut claims = json!({
            "iss": self.issuer, "aud": self.audience, "email": email,
            "iat": now(), "exp": now() + 600,
        });
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        claims
    }

    pub(crate) fn jwks(&self) -> Value {
        let rsa = self.key.rsa().unwrap();
        json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        }]})
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        signer.update(input.as_bytes()).unwrap();
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
        )
    }

    /// A PS256 (RSASSA-PSS) token from this issuer's key, whose JWK says RS256.
    pub(crate) fn token_ps256(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD
                .encode(json!({"alg": "PS256", "typ": "JWT", "kid": self.kid}).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        signer
            .set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
            .unwrap();
        signer
            .set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH)
            .unwrap();
        signer.update(input.as_bytes()).unwrap();
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
        )
    }

    pub(crate) fn token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    pub(crate) fn claims(email: &str) -> Value {
        json!({
            "iss": Self::ISSUER, "aud": Self::AUDIENCE, "sub": "1234",
            "email": email, "email_verified": true,
            "iat": now(), "exp": now() + 600,
        })
    }
}
