//! `mailpki server` end to end: the seed's team scenario through the server (with Gmail CSE
//! against the emulator), authentication (API tokens and OIDC ID tokens from a local identity
//! provider), bad requests, TLS, a database that goes away, and two instances on one
//! PostgreSQL under concurrent admins.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailpki_test_support::{Run, TestDatabase, TestPki, openssl, s};
use serde_json::{Value, json};

use crate::{Idp, env, env_with_pki, import_issuer, issuer_key, now, teams};

const JANE: &str = "jane@example.com";
const KACLS: &str = "https://kacls.example.com/google_cse";

#[test]
fn the_seed_scenario_runs_through_the_server() {
    for team in teams(&["alice", "bob", "carol"]) {
        if team.server.is_none() {
            continue; // The embedded half is tests/e2e/google.rs and access_rights.rs.
        }
        eprintln!("deployment: {}", team.mode);
        let (env, pki) = (&team.env, &team.pki);
        // Admin A imports the issuing CA and grants admin B what minting needs.
        let report = import_issuer(env, pki, "issuer_ca_certificate");
        let private_id = report["private_key"].as_str().unwrap().to_owned();
        let public_id = report["public_key"].as_str().unwrap();
        for (id, ops) in [
            ("issuer_ca_certificate", "get get_attributes"),
            (private_id.as_str(), "certify get_attributes"),
            (public_id, "get get_attributes"),
        ] {
            env.run("kms access-rights grant bob -i")
                .arg(id)
                .then(ops)
                .ok();
        }
        // B makes the CSE key and onboards Jane: the server mints and wraps.
        env.run_as("bob", "kms sym keys create cse_key").ok();
        let emulator = env.start_emulator(&[JANE], &pki.path("root.pem"));
        let gmail = |user: &str, words: &str| {
            env.run_as(user, words)
                .env("MAILPKI_GMAIL_API_URL", &emulator.url)
                .env("MAILPKI_SERVICE_ACCOUNT_KEY", &emulator.key_file)
        };
        let created = gmail(
            "bob",
            "--json google key-pairs create --cse-key-id cse_key --kacls-url",
        )
        .arg(KACLS)
        .then("--subject-name")
        .arg(format!("C=FR, O=Example, CN={JANE}, emailAddress={JANE}"))
        .then("-i")
        .arg(&private_id)
        .arg(JANE)
        .ok()
        .json();
        let key_pair = created["keyPairId"].as_str().unwrap();
        assert_eq!(created["subjectEmailAddresses"], json!([JANE]));
        gmail("bob", "google identities insert --user-id")
            .arg(JANE)
            .arg(key_pair)
            .ok();
        // The minted certificate is Bob's, on the server, tagged with the Gmail key pair.
        let mine = env
            .run_as("bob", "--json kms certificates list")
            .ok()
            .json();
        let mine: Vec<&Value> = mine
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["owner"] == "bob")
            .collect();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["owner"], "bob");
        assert!(
            mine[0]["tags"]
                .as_array()
                .unwrap()
                .contains(&json!(format!("gmail:keypair={key_pair}")))
        );
        // C, without grants, is refused at the issuer and cannot take its key.
        gmail(
            "carol",
            "google key-pairs create --cse-key-id cse_key --kacls-url",
        )
        .arg(KACLS)
        .then("-i")
        .arg(&private_id)
        .arg(JANE)
        .fails(1)
        .stderr_has("no object with ID");
        env.run_as(
            "carol",
            "kms certificates certify --generate-key-pair --subject-name CN=x@example.com -k",
        )
        .arg(&private_id)
        .fails(1)
        .stderr_has("no object with ID");
        env.run_as(
            "bob",
            "kms certificates export -c issuer_ca_certificate -f pkcs12 -p x",
        )
        .arg(s(&env.path("stolen.p12")))
        .fails(1)
        .stderr_has("may not export");
        // The audit log has who did what, and the refusals.
        let server = team.server.as_ref().unwrap();
        let audit = server
            .on_host(env, "--json server audit --actor carol")
            .ok()
            .json();
        let audit = audit.as_array().unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e["operation"] == "certify" && e["outcome"] == "denied"),
            "{audit:?}"
        );
        let bob = server
            .on_host(env, "--json server audit --actor bob")
            .ok()
            .json();
        let ops: Vec<&str> = bob
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["operation"].as_str().unwrap())
            .collect();
        for op in ["create_symmetric_key", "certify", "cse_wrap", "add_tags"] {
            assert!(ops.contains(&op), "{op} missing from {ops:?}");
        }
        assert!(
            !serde_json::to_string(&bob)
                .unwrap()
                .contains(TestPki::PASSWORD),
            "no secret in the audit log"
        );
    }
}

/// certify-batch through the server writes the same PKCS#12 files and manifest, and a re-run
/// mints nothing again.
#[test]
fn certify_batch_runs_through_the_server() {
    let (env, pki) = env_with_pki();
    let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), "");
    env.use_server(&server, &["alice"]);
    let key = issuer_key(&env, &pki);
    let csv = env.path("users.csv");
    std::fs::write(
        &csv,
        "email\nu1@example.com\nu2@example.com\nnot-an-address\nu3@example.com\n",
    )
    .unwrap();
    let batch = |expect_ok: bool| {
        let run = env
            .run("--json kms certificates certify-batch --csv")
            .arg(&csv)
            .then("-k")
            .arg(&key)
            .then("--out-dir")
            .arg(env.path("out"))
            .then("--pkcs12-password s3cret");
        if expect_ok { run.ok() } else { run.fails(1) }.json()
    };
    let first = batch(false);
    assert_eq!(first["minted"], 3);
    assert_eq!(first["failed"].as_array().unwrap().len(), 1);
    let again = batch(false);
    assert_eq!(again["minted"], 0);
    assert_eq!(again["already_done"], 3);
    let p12 = env.path("out/u2@example.com.p12");
    let text = openssl(
        env.root(),
        [
            "pkcs12",
            "-in",
            &s(&p12),
            "-passin",
            "pass:s3cret",
            "-nokeys",
        ],
    );
    assert!(String::from_utf8_lossy(&text).contains("u2@example.com"));
    let certificates = env.run("--json kms certificates list").ok().json();
    assert_eq!(
        certificates.as_array().unwrap().len(),
        3 + 2,
        "3 users, CA and root"
    );
}

#[test]
fn oidc_id_tokens_are_checked_before_anything_is_served() {
    let env = env();
    let idp = Idp::new("k1");
    let jwks = env.path("jwks.json");
    std::fs::write(&jwks, idp.jwks().to_string()).unwrap();
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        &format!(
            "[server.oidc]\nissuer = \"{}\"\naudience = \"{}\"\njwks_file = \"{}\"\n",
            Idp::ISSUER,
            Idp::AUDIENCE,
            jwks.display()
        ),
    );
    let whoami =
        |token: &str| server.http("GET", "/v1/whoami", Some(token), "application/json", b"");

    let (status, body) = whoami(&idp.token(&Idp::claims("alice@example.com")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "alice@example.com");
    assert_eq!(body["method"], "oidc");

    let mut expired = Idp::claims("alice@example.com");
    expired["exp"] = json!(now() - 3600);
    let mut wrong_audience = Idp::claims("alice@example.com");
    wrong_audience["aud"] = json!("someone-else");
    let mut wrong_issuer = Idp::claims("alice@example.com");
    wrong_issuer["iss"] = json!("https://evil.example.com");
    let mut unverified = Idp::claims("alice@example.com");
    unverified["email_verified"] = json!(false);
    let impostor = Idp::new("k1"); // Same key ID, another key.
    let hs256 = {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string()),
            URL_SAFE_NO_PAD.encode(Idp::claims("alice@example.com").to_string())
        );
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(b"not a real mac"))
    };
    let mut no_email = Idp::claims("x");
    no_email.as_object_mut().unwrap().remove("email");
    for (case, token) in [
        ("expired", idp.token(&expired)),
        ("wrong audience", idp.token(&wrong_audience)),
        ("unknown issuer", idp.token(&wrong_issuer)),
        ("email not verified", idp.token(&unverified)),
        (
            "wrongly signed",
            impostor.token(&Idp::claims("alice@example.com")),
        ),
        ("symmetric algorithm", hs256),
        ("no user claim", idp.token(&no_email)),
        ("garbage", "not.a.jwt".to_owned()),
        ("unknown API token", "mpk_AAAA".to_owned()),
    ] {
        let (status, body) = whoami(&token);
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"]["code"], "unauthenticated", "{case}");
    }
    let (status, _) = server.http("GET", "/v1/whoami", None, "application/json", b"");
    assert_eq!(status, 401, "no token");
    // Unauthenticated requests get no data, even a list.
    let (status, body) = server.http(
        "POST",
        "/v1/objects/search",
        Some("mpk_AAAA"),
        "application/json",
        b"{}",
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    // The CLI with an ID token from a token command works like with an API token.
    let token_file = env.path("id-token");
    std::fs::write(&token_file, idp.token(&Idp::claims("alice@example.com"))).unwrap();
    let client = env.path("client.toml");
    std::fs::write(
        &client,
        format!(
            "[kms]\nurl = \"{}\"\ntoken_command = \"cat {}\"\n",
            server.url,
            token_file.display()
        ),
    )
    .unwrap();
    env.run("--config")
        .arg(&client)
        .then("kms sym keys create oidc_key")
        .ok();
    let owned = env
        .run("--json --config")
        .arg(&client)
        .then("kms access-rights owned")
        .ok()
        .json();
    assert_eq!(owned[0]["owner"], "alice@example.com");
}

#[test]
fn api_tokens_are_admin_business_and_revocable() {
    let env = env();
    let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), "");
    env.use_server(&server, &["admin", "alice"]);
    // Admins manage tokens through the API too; others may not.
    let made = env
        .run_as(
            "admin",
            "--json server token create ci-bot --expires-in-days 30",
        )
        .ok()
        .json();
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mpk_"));
    env.run_as("alice", "server token create mallory")
        .fails(1)
        .stderr_has("not a server admin");
    env.run_as("alice", "server audit").fails(1);
    let (status, body) = server.http("GET", "/v1/whoami", Some(&secret), "application/json", b"");
    assert_eq!((status, body["user"].as_str()), (200, Some("ci-bot")));
    let list = env.run_as("admin", "--json server token list").ok().json();
    assert!(
        !list.to_string().contains(&secret),
        "the secret is never listed"
    );
    let id = made["id"].as_str().unwrap();
    env.run_as("admin", "server token revoke").arg(id).ok();
    let (status, _) = server.http("GET", "/v1/whoami", Some(&secret), "application/json", b"");
    assert_eq!(status, 401, "a revoked token is refused at once");
    env.run_as("admin", "server token revoke")
        .arg(id)
        .fails(1)
        .stderr_has("no live API token");
    // A token that expired is refused; so is the CLI with a wrong token.
    let expired = server
        .on_host(&env, "--json server token create alice --expires-in-days 0")
        .ok()
        .json();
    let (status, _) = server.http(
        "GET",
        "/v1/whoami",
        expired["secret"].as_str(),
        "application/json",
        b"",
    );
    assert_eq!(status, 401);
    env.run_as("alice", "kms access-rights owned")
        .env("MAILPKI_KMS_TOKEN", "mpk_wrong")
        .fails(1)
        .stderr_has("unknown, revoked or expired API token")
        .stderr_has("MAILPKI_KMS_TOKEN");
    // Only a hash is stored: the secret appears nowhere in the database file.
    let db = std::fs::read(env.path("server-data/kms.sqlite")).unwrap();
    assert!(!mailpki_test_support::contains_bytes(
        &db,
        secret.as_bytes()
    ));
}

#[test]
fn bad_requests_get_json_errors_and_change_nothing() {
    let env = env();
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        "max_body_bytes = 65536",
    );
    env.use_server(&server, &["alice"]);
    let token = env.token_of("alice");
    let post =
        |path: &str, ct: &str, body: &[u8]| server.http("POST", path, Some(&token), ct, body);

    let cases: Vec<(&str, (u16, Value), u16, &str)> = vec![
        (
            "malformed JSON",
            post(
                "/v1/symmetric-keys",
                "application/json",
                b"{\"algorithm\": ",
            ),
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            post(
                "/v1/symmetric-keys",
                "application/json",
                br#"{"algorithm":"AES","length":256,"lenght":1}"#,
            ),
            422,
            "invalid_request",
        ),
        (
            "wrong content type",
            post("/v1/symmetric-keys", "text/plain", b"{}"),
            415,
            "unsupported_media_type",
        ),
        (
            "oversized body",
            post(
                "/v1/objects/import",
                "application/json",
                format!(
                    "{{\"format\":\"pem\",\"data\":\"{}\"}}",
                    "A".repeat(100_000)
                )
                .as_bytes(),
            ),
            413,
            "too_large",
        ),
        (
            "bad base64",
            post(
                "/v1/objects/import",
                "application/json",
                br#"{"format":"pem","data":"@@@"}"#,
            ),
            400,
            "invalid_request",
        ),
        (
            // Operations are typed in the body: an unknown one is refused as the body's shape.
            "unknown operation",
            post(
                "/v1/objects/nothing/grant",
                "application/json",
                br#"{"user":"bob","operations":["fly"]}"#,
            ),
            422,
            "invalid_request",
        ),
        (
            "unknown object",
            server.http(
                "GET",
                "/v1/objects/nothing/attributes",
                Some(&token),
                "application/json",
                b"",
            ),
            404,
            "not_found",
        ),
        (
            "unknown route",
            server.http("GET", "/v1/nothing", Some(&token), "application/json", b""),
            404,
            "not_found",
        ),
    ];
    for (case, (status, body), want_status, want_code) in cases {
        assert_eq!(status, want_status, "{case}: {body}");
        assert_eq!(body["error"]["code"], want_code, "{case}: {body}");
        assert!(body["error"]["message"].as_str().is_some(), "{case}");
    }
    // Nothing was created by any of them.
    let owned = env.run("--json kms access-rights owned").ok().json();
    assert_eq!(owned.as_array().unwrap().len(), 0);
    // The health check and the API document need no token.
    let (status, _) = server.http("GET", "/v1/health", None, "application/json", b"");
    assert_eq!(status, 200);
    let (status, doc) = server.http("GET", "/v1/openapi.json", None, "application/json", b"");
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.0.3")));
}

#[test]
fn https_with_a_private_ca_and_no_plain_http_off_loopback() {
    let env = env();
    // A private CA and a server certificate it signed, as an organization would run.
    for args in [
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=Private-CA -keyout tls-ca.key -out tls-ca.pem",
        "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout tls.key -out tls.csr",
    ] {
        openssl(env.root(), args.split_whitespace());
    }
    std::fs::write(
        env.path("tls.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        env.root(),
        "x509 -req -in tls.csr -CA tls-ca.pem -CAkey tls-ca.key -CAcreateserial -days 2 -extfile tls.ext -out tls.pem"
            .split_whitespace(),
    );
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        &format!(
            "tls_certificate = \"{}\"\ntls_private_key = \"{}\"",
            env.path("tls.pem").display(),
            env.path("tls.key").display()
        ),
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    env.use_server(&server, &["alice"]);
    // Without the CA the certificate is not trusted.
    env.run("kms access-rights owned")
        .fails(75)
        .stderr_has("cannot reach the KMS server");
    let client = env.path("client.toml");
    std::fs::write(
        &client,
        format!(
            "[kms]\nserver_ca = \"{}\"\n",
            env.path("tls-ca.pem").display()
        ),
    )
    .unwrap();
    env.run("--config")
        .arg(&client)
        .then("kms sym keys create over_tls")
        .ok();

    // Plain HTTP on an address others can reach is refused at start.
    let other = crate::env();
    let other_server = other.path("server.toml");
    std::fs::write(
        &other_server,
        format!(
            "[kms]\ndatabase = \"{}\"\n[server]\nlisten = \"0.0.0.0:0\"\n",
            other.path("kms.sqlite").display()
        ),
    )
    .unwrap();
    other
        .run("--config")
        .arg(&other_server)
        .then("server serve")
        .fails(1)
        .stderr_has("refusing plain HTTP");
}

#[test]
fn a_database_that_goes_away_gets_503_and_no_partial_write() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let env = env();
    let server = env.start_server(&database.url, "database_timeout_seconds = 1");
    env.use_server(&server, &["alice"]);
    env.run("kms sym keys create before").ok();
    database.cut_off();
    let (status, body) = server.http(
        "POST",
        "/v1/symmetric-keys",
        Some(&env.token_of("alice")),
        "application/json",
        br#"{"id":"during","algorithm":"AES","length":256}"#,
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    env.run("kms sym keys create during2")
        .fails(75)
        .stderr_has("unavailable");
    let (status, _) = server.http("GET", "/v1/health", None, "application/json", b"");
    assert_eq!(status, 503, "the load balancer sees it");
    database.restore();
    // Back: the earlier object is there, the refused ones are not.
    env.run("kms attributes get -i before").ok();
    env.run("kms attributes get -i during").fails(1);
    env.run("kms sym keys create during").ok();
}

#[test]
fn two_instances_on_one_postgres_keep_every_invariant() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let (env, pki) = env_with_pki();
    let one = env.start_server(&database.url, "");
    let two = env.start_server(&database.url, "");
    env.use_server(&one, &["alice", "bob", "carol"]);
    let via = |server: &mailpki_test_support::ServerProcess, user: &str, words: &str| -> Run {
        env.run_as(user, words).env("MAILPKI_KMS_URL", &server.url)
    };
    let key = issuer_key(&env, &pki);
    via(&two, "alice", "kms access-rights grant bob -i")
        .arg(&key)
        .then("certify")
        .ok();
    via(&one, "alice", "kms access-rights grant bob -i ca get").ok();

    // Concurrent admins on both instances: own keys, one contested ID, certificates.
    let mut runs: Vec<(String, Run)> = Vec::new();
    for i in 0..8 {
        let server = if i % 2 == 0 { &one } else { &two };
        let user = if i % 4 < 2 { "alice" } else { "bob" };
        runs.push((
            format!("own{i}"),
            via(server, user, "kms sym keys create").arg(format!("k{i}")),
        ));
        runs.push((
            format!("dup{i}"),
            via(server, user, "kms sym keys create contested"),
        ));
        runs.push((
            format!("cert{i}"),
            via(
                server,
                user,
                "kms certificates certify --generate-key-pair -k",
            )
            .arg(&key)
            .then("--subject-name")
            .arg(format!(
                "CN=u{i}@example.com, emailAddress=u{i}@example.com"
            ))
            .then("-t concurrent"),
        ));
    }
    let outcomes: Vec<(String, i32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|(name, run)| {
                scope.spawn(move || {
                    let outcome = run.output();
                    eprintln!("{name}: {}", outcome.stderr().trim());
                    (name, outcome.output.status.code().unwrap_or(-1))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, code) in &outcomes {
        if !name.starts_with("dup") {
            assert_eq!(*code, 0, "{name}");
        }
    }
    let winners = outcomes
        .iter()
        .filter(|(n, c)| n.starts_with("dup") && *c == 0)
        .count();
    assert_eq!(winners, 1, "exactly one `contested` key: {outcomes:?}");
    let losers = outcomes
        .iter()
        .filter(|(n, c)| n.starts_with("dup") && *c == 1)
        .count();
    assert_eq!(losers, 7, "the others are told it exists: {outcomes:?}");
    // Every certificate is there once, whichever instance minted it.
    let certified: usize = ["alice", "bob"]
        .iter()
        .map(|u| {
            via(&one, u, "--json kms certificates list -t concurrent")
                .ok()
                .json()
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(certified, 8);

    // A grant on one instance counts on the other at once, and so does taking it back.
    via(&two, "carol", "kms attributes get -i k0").fails(1);
    via(
        &one,
        "alice",
        "kms access-rights grant carol -i k0 get_attributes",
    )
    .ok();
    via(&two, "carol", "kms attributes get -i k0").ok();
    via(
        &two,
        "alice",
        "kms access-rights revoke carol -i k0 get_attributes",
    )
    .ok();
    via(&one, "carol", "kms attributes get -i k0").fails(1);
}

/// `certify` with `once` through two instances at the same time: each instance serializes its
/// own requests, and the database's key makes one certificate of all of them, whichever
/// instance stored it; the others answer with it.
#[test]
fn once_makes_one_certificate_across_instances() {
    let Some(database) = TestDatabase::create() else {
        return;
    };
    let (env, pki) = env_with_pki();
    let one = env.start_server(&database.url, "");
    let two = env.start_server(&database.url, "");
    env.use_server(&one, &["alice"]);
    let key = issuer_key(&env, &pki);
    let token = env.token_of("alice");
    let body = serde_json::json!({
        "issuer": {"private_key_id": key},
        "subject": "CN=once@example.com, emailAddress=once@example.com",
        "key": "generate",
        "tags": ["mailpki:batch=race", "mailpki:email=once@example.com"],
        "once": true,
    })
    .to_string();
    let replies: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (server, body, token) = (if i % 2 == 0 { &one } else { &two }, &body, &token);
                scope.spawn(move || {
                    server.http(
                        "POST",
                        "/v1/certify",
                        Some(token),
                        "application/json",
                        body.as_bytes(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ids: std::collections::BTreeSet<&str> = replies
        .iter()
        .map(|(status, reply)| {
            assert!(matches!(status, 200 | 201), "{status} {}", reply["error"]);
            reply["unique_identifier"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one certificate for all, not {ids:?}");
    let minted = replies
        .iter()
        .filter(|(_, r)| r["already_minted"] != true)
        .count();
    assert_eq!(minted, 1, "minted once, found seven times");
    let tagged = env
        .run("--json kms certificates list -t mailpki:batch=race")
        .ok()
        .json();
    assert_eq!(tagged.as_array().map(Vec::len), Some(1), "{tagged}");
}
