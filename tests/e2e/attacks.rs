//! Attacks an outsider or a lesser-privileged user would try, each performed for real against
//! the binary and a server over SQLite (the key service with locally made IdP and Google
//! tokens): minting a CA with `certify`, flooding and forging the audit trail, replaying a
//! token meant for another key service, opening another user's wrapped key, impersonation by
//! an admin, relinking another owner's certificate, planted symbolic links, weak OIDC checks,
//! search past `get_attributes`, odd addresses and spreadsheet formulas, and the small ones
//! (memory, slow clients, brute force, PSS salts, destroyed bytes, token files, ID probing).

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mailpki_test_support::{ServerProcess, TestEnv, TestPki, contains_bytes, openssl, s};
use serde_json::{Value, json};

use crate::kacls::service;
use crate::{Idp, attributes, env, env_with_pki, issuer_key, now};

const JANE: &str = "jane@example.com";

/// A server over SQLite; alice, bob and carol hold API tokens and alice imported the issuing
/// CA as `ca`. Returns the CA's private key ID too.
fn team_server(extra: &str) -> (TestEnv, TestPki, ServerProcess, String) {
    let (env, pki) = env_with_pki();
    let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), extra);
    env.use_server(&server, &["alice", "bob", "carol"]);
    let key = issuer_key(&env, &pki);
    (env, pki, server, key)
}

fn audit(server: &ServerProcess, env: &TestEnv, actor: &str) -> Vec<Value> {
    server
        .on_host(env, "--json server audit --limit 100000 --actor")
        .arg(actor)
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

fn audit_rows(server: &ServerProcess, env: &TestEnv) -> usize {
    server
        .on_host(env, "--json server audit --limit 100000")
        .ok()
        .json()
        .as_array()
        .unwrap()
        .len()
}

fn has(entries: &[Value], operation: &str, outcome: &str) -> bool {
    entries
        .iter()
        .any(|e| e["operation"] == operation && e["outcome"] == outcome)
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// #1: `certify` mints end-entity S/MIME certificates only, whatever `allow_non_compliant`
/// says; a CA needs `certify_ca`, and is audited as such.
#[test]
fn certify_alone_never_mints_a_certificate_authority() {
    let (env, _pki, server, key) = team_server("");
    env.run("kms access-rights grant bob -i")
        .arg(&key)
        .then("certify get_attributes")
        .ok();
    env.run("kms access-rights grant bob -i ca get get_attributes")
        .ok();
    let bob = env.token_of("bob");
    let attempt = |extensions: &str, days: u32| {
        let body = json!({
            "issuer": {"private_key_id": key},
            "profile": {"extensions": extensions, "allow_non_compliant": true, "days": days},
            "subject": "CN=subca@example.com, emailAddress=subca@example.com",
            "key": "generate",
        });
        server.http(
            "POST",
            "/v1/certify",
            Some(&bob),
            "application/json",
            body.to_string().as_bytes(),
        )
    };
    let sub_ca = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                  subjectKeyIdentifier=hash\n";
    for (extensions, days, named) in [
        (sub_ca, 365, "CA:TRUE"),
        (
            "keyUsage=critical,digitalSignature,cRLSign\nextendedKeyUsage=emailProtection\n",
            365,
            "cRLSign",
        ),
        (
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection,serverAuth\n",
            365,
            "1.3.6.1.5.5.7.3.1",
        ),
        (
            "keyUsage=critical,digitalSignature\n",
            365,
            "no extendedKeyUsage",
        ),
        (
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n",
            3650,
            "3650 days",
        ),
    ] {
        let (status, body) = attempt(extensions, days);
        assert_eq!(status, 403, "{named}: {body}");
        let text = message(&body);
        assert!(
            text.contains(named) && text.contains("certify_ca"),
            "{text}"
        );
    }
    let mine = env
        .run_as("bob", "--json kms certificates list")
        .ok()
        .json();
    assert!(
        mine.as_array().unwrap().iter().all(|c| c["owner"] != "bob"),
        "nothing was minted for bob: {mine}"
    );
    // The owner grants the separate right; the sub-CA is then minted and recorded as a CA.
    env.run("kms access-rights grant bob -i")
        .arg(&key)
        .then("certify_ca")
        .ok();
    let (status, body) = attempt(sub_ca, 365);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["certificate_authority"], true);
    let entries = audit(&server, &env, "bob");
    assert!(has(&entries, "certify_ca", "ok"), "{entries:?}");
    assert!(has(&entries, "certify", "denied"), "{entries:?}");
}

/// A token whose claimed issuer is `iss`: it parses as far as the issuer lookup.
fn token_claiming(iss: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(json!({"iss": iss, "email": JANE}).to_string()),
        URL_SAFE_NO_PAD.encode(b"no signature")
    )
}

/// #2 and the flood test: 2,000 unauthenticated key-service calls carrying 12 KB of text
/// with newlines and escape sequences each leave the audit table and the store as they were,
/// add a bounded amount of sanitized log, and the server keeps answering.
#[test]
fn anonymous_key_service_calls_cannot_fill_the_audit_table_or_the_log() {
    let svc = service("");
    let store_size = || -> u64 {
        ["kms.sqlite", "kms.sqlite-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(svc.env.path(&format!("server-data/{f}"))).ok())
            .map(|m| m.len())
            .sum()
    };
    let log = svc.env.path("server.log");
    let (rows, size, log_size) = (
        audit_rows(&svc.server, &svc.env),
        store_size(),
        std::fs::metadata(&log).unwrap().len(),
    );
    let junk = format!(
        "evil\nFORGED 2026-12-02T00:00:00Z ok admin export ca\u{1b}]0;pwned\u{7}{}",
        "A".repeat(12_000)
    );
    let token = token_claiming(&junk);
    let (mut unauthenticated, mut throttled) = (0, 0);
    for _ in 0..2000 {
        let (status, body) = svc.call(
            "privatekeysign",
            &json!({
                "authentication": token, "authorization": token,
                "algorithm": "SHA256withRSA", "digest": STANDARD.encode([0u8; 32]),
                "wrapped_private_key": svc.wrapped,
            }),
        );
        match status {
            401 => unauthenticated += 1,
            429 => throttled += 1,
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(body.to_string().len() < 1024, "the reply echoes the junk");
    }
    assert!(
        unauthenticated > 0 && throttled > 0,
        "{unauthenticated} / {throttled}"
    );
    assert_eq!(audit_rows(&svc.server, &svc.env), rows, "nothing audited");
    // The server copies the write-ahead log into the file every 200 ms, which can lengthen
    // the file by pages already written (the log keeps its length); the junk would be 24 MB.
    let grown = store_size().saturating_sub(size);
    assert!(grown < 1024 * 1024, "the store grew by {grown} bytes");
    let (status, _) = svc
        .server
        .http("GET", "/v1/health", None, "application/json", b"");
    assert_eq!(status, 200, "the server still answers");
    let text = std::fs::read(&log).unwrap();
    let grown = text.len() as u64 - log_size;
    assert!(grown < 64 * 1024, "the log grew by {grown} bytes");
    let text = String::from_utf8_lossy(&text);
    assert!(!text.contains('\u{1b}') && !text.contains("pwned\u{7}"));
    assert!(!text.lines().any(|l| l.starts_with("FORGED")));
    assert!(
        !text.contains(&"A".repeat(500)),
        "no long excerpt of the junk"
    );
}

/// #3: a token minted for another key service is refused whatever Host the request carries,
/// and `status` names the configured URL, not the Host.
#[test]
fn the_key_service_url_comes_from_configuration_not_the_host_header() {
    let svc = service("");
    let other_host = "other-kacls.example.com";
    let other = format!("http://{other_host}/google_cse");
    let authorization = svc.google.token(&svc.google.claims_with(
        JANE,
        &json!({"role": "signer", "kacls_url": other, "spki_hash": svc.spki()}),
    ));
    let body = json!({
        "authentication": svc.authentication(JANE), "authorization": authorization,
        "algorithm": "SHA256withRSA", "digest": STANDARD.encode([1u8; 32]),
        "wrapped_private_key": svc.wrapped,
    });
    let (status, reply) = svc.server.http_to_host(
        other_host,
        "POST",
        "/google_cse/privatekeysign",
        None,
        "application/json",
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 403, "{reply}");
    assert!(message(&reply).contains("another key service"), "{reply}");
    let (status, reply) = svc.server.http_to_host(
        "evil.example.com",
        "GET",
        "/google_cse/status",
        None,
        "application/json",
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(reply["kacls_url"], svc.url());
    assert!(!reply.to_string().contains("evil"));
}

/// #4, #8 (key service) and #13 (PSS salt): authorizations must name the key (`spki_hash`)
/// and a user; refusals after the identity token checked out keep the user; a salt that does
/// not fit is a 400.
#[test]
fn wrapped_keys_open_only_for_the_user_the_authorization_names() {
    let svc = service("");
    let sign = |authentication: String, authorization: String, salt: Option<i32>| {
        let mut body = json!({
            "authentication": authentication, "authorization": authorization,
            "algorithm": "SHA256withRSA/PSS", "digest": STANDARD.encode([2u8; 32]),
            "wrapped_private_key": svc.wrapped,
        });
        if let Some(salt) = salt {
            body["rsa_pss_salt_length"] = json!(salt);
        }
        svc.call("privatekeysign", &body)
    };
    let google = |email: &str, extra: &Value| {
        let mut claims = svc
            .google
            .claims_with(email, &json!({"role": "signer", "kacls_url": svc.url()}));
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        svc.google.token(&claims)
    };
    let (status, reply) = sign(svc.authentication(JANE), google(JANE, &json!({})), None);
    assert_eq!(status, 403, "{reply}");
    assert!(message(&reply).contains("spki_hash"), "{reply}");
    let (status, reply) = sign(
        svc.idp.token(&svc.idp.claims_with("", &json!({}))),
        google("", &json!({"spki_hash": svc.spki()})),
        None,
    );
    assert_eq!(status, 401, "an empty email is nobody: {reply}");
    let (status, reply) = sign(
        svc.authentication(JANE),
        google(JANE, &json!({"spki_hash": svc.spki(), "role": "decrypter"})),
        None,
    );
    assert_eq!(status, 403, "{reply}");
    let (status, reply) = sign(
        svc.authentication(JANE),
        svc.authorization(JANE, "signer"),
        Some(100_000),
    );
    assert_eq!(status, 400, "{reply}");
    assert!(message(&reply).contains("rsa_pss_salt_length"), "{reply}");
    let (status, reply) = sign(
        svc.authentication(JANE),
        svc.authorization(JANE, "signer"),
        Some(32),
    );
    assert_eq!(status, 200, "{reply}");
    let entries = audit(&svc.server, &svc.env, JANE);
    assert!(
        has(&entries, "kacls.privatekeysign", "denied"),
        "refusals keep the user: {entries:?}"
    );
    assert!(audit(&svc.server, &svc.env, "-").is_empty());
}

/// #5: IDs with control, bidi or zero-width characters are refused; look-alike IDs draw a
/// warning; client text in the audit log is escaped when printed.
#[test]
fn client_text_cannot_forge_audit_lines_or_reach_the_terminal() {
    let local = env();
    for id in [
        "evil\nline",
        "evil\u{1b}[2J",
        "evil\u{202e}gpj.exe",
        "ev\u{200b}il",
    ] {
        local
            .mailpki(["kms", "sym", "keys", "create", id])
            .fails(1)
            .stderr_has("invalid");
    }
    local
        .mailpki(["kms", "sym", "keys", "create", "cse_k\u{0435}y"])
        .ok()
        .stderr_has("look-alikes");
    // A certificate's subject is its maker's text: listed, it cannot drive the terminal.
    openssl(
        local.root(),
        [
            "req",
            "-x509",
            "-utf8",
            "-newkey",
            "ed25519",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=evil\u{1b}]0;pwned\u{7}\u{202e}x",
            "-keyout",
            "evil.key",
            "-out",
            "evil.pem",
        ],
    );
    local.run("kms certificates import evil.pem evil").ok();
    let listed = local.run("kms certificates list").ok().stdout();
    assert!(
        listed.contains("evil\\u{1b}]0;pwned\\u{7}\\u{202e}x"),
        "{listed}"
    );
    assert!(!listed.contains('\u{1b}') && !listed.contains('\u{202e}'));

    let (env, _pki, server, _key) = team_server("");
    let bob = env.token_of("bob");
    let forged = "x%0A2026-12-02T00:00:00Z%20ok%20alice%20export%20ca%1B%5D0%3Bpwned%07";
    let (status, _) = server.http(
        "GET",
        &format!("/v1/objects/{forged}/attributes"),
        Some(&bob),
        "application/json",
        b"",
    );
    assert_eq!(status, 404);
    let printed = server
        .on_host(&env, "server audit --actor bob")
        .ok()
        .stdout();
    assert!(!printed.contains('\u{1b}'), "{printed}");
    assert!(printed.contains("x\\u{a}2026-12-02T00:00:00Z"), "{printed}");
    assert!(
        !printed
            .lines()
            .any(|l| l.starts_with("2026-12-02T00:00:00Z")),
        "{printed}"
    );
}

/// #6: a token an admin makes for another user is on record on every line it writes, the
/// user is told, and a setting forbids it.
#[test]
fn an_admins_token_for_another_user_is_on_record_and_can_be_forbidden() {
    let (env, _pki, server, _key) = team_server("");
    let admin = server.create_token(&env, "admin");
    let (status, made) = server.http(
        "POST",
        "/v1/admin/tokens",
        Some(&admin),
        "application/json",
        json!({"user": "alice"}).to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{made}");
    let token_id = made["id"].as_str().unwrap();
    let (status, _) = server.http(
        "POST",
        "/v1/objects/ca/export",
        made["secret"].as_str(),
        "application/json",
        json!({"format": "pkcs12", "password": "x"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200);
    let entries = audit(&server, &env, "alice");
    let export = entries.iter().find(|e| e["operation"] == "export").unwrap();
    assert_eq!(
        export["via"],
        format!("api token {token_id} made by admin"),
        "{export}"
    );
    env.run("kms access-rights obtained")
        .ok()
        .stderr_has(&format!(
            "API token {token_id} acts as you; it was made by admin"
        ));

    let (env, _pki) = env_with_pki();
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        "admin_tokens_for_others = false",
    );
    let admin = server.create_token(&env, "admin");
    let create = |user: &str| {
        server
            .http(
                "POST",
                "/v1/admin/tokens",
                Some(&admin),
                "application/json",
                json!({ "user": user }).to_string().as_bytes(),
            )
            .0
    };
    assert_eq!(create("alice"), 403);
    assert_eq!(create("admin"), 201);
}

/// #7: holding `get` on a certificate is no right to change its links.
#[test]
fn a_reader_cannot_relink_the_owners_certificate() {
    let (env, pki, _server, _key) = team_server("");
    let before = attributes(&env, "ca");
    env.run("kms access-rights grant bob -i ca get get_attributes")
        .ok();
    let public = openssl(
        env.root(),
        [
            "x509",
            "-in",
            &s(&pki.path("issuing.pem")),
            "-pubkey",
            "-noout",
        ],
    );
    let path = env.path("ca-public.pem");
    std::fs::write(&path, public).unwrap();
    env.run_as("bob", "--json kms certificates import")
        .arg(&path)
        .then("bobs-copy")
        .ok();
    let after = attributes(&env, "ca");
    assert_eq!(after["PublicKeyLink"], before["PublicKeyLink"]);
    assert_eq!(after["PrivateKeyLink"], before["PrivateKeyLink"]);
}

/// #8: non-admins knocking on admin endpoints and authenticated bad bodies are on record.
#[test]
fn refusals_and_rejected_bodies_are_on_record() {
    let (env, _pki, server, _key) = team_server("");
    let bob = env.token_of("bob");
    let post = |content_type: &str, body: &[u8]| {
        server
            .http("POST", "/v1/objects/import", Some(&bob), content_type, body)
            .0
    };
    assert_eq!(
        server
            .http(
                "GET",
                "/v1/admin/audit",
                Some(&bob),
                "application/json",
                b""
            )
            .0,
        403
    );
    assert_eq!(post("application/json", b"{not json"), 400);
    assert_eq!(post("text/plain", b"{}"), 415);
    assert_eq!(post("application/json", br#"{"format": 12}"#), 422);
    assert_eq!(post("application/json", &vec![b' '; 2 << 20]), 413);
    let entries = audit(&server, &env, "bob");
    assert!(has(&entries, "audit_read", "denied"), "{entries:?}");
    let rejected = entries
        .iter()
        .filter(|e| e["operation"] == "import" && e["outcome"] == "failed")
        .count();
    assert_eq!(rejected, 4, "{entries:?}");
}

/// #9: a symbolic link planted as `manifest.csv` in the output folder is refused, and what it
/// points to is left alone.
#[test]
fn certify_batch_does_not_follow_a_planted_manifest_link() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let out = env.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let victim = env.path("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, out.join("manifest.csv")).unwrap();
    let csv = env.path("users.csv");
    std::fs::write(&csv, "email\nu1@example.com\n").unwrap();
    let run = env
        .run("kms certificates certify-batch --csv")
        .arg(&csv)
        .then("-k")
        .arg(&key)
        .then("--out-dir")
        .arg(&out)
        .then("--pkcs12-password s3cret")
        .output();
    assert_ne!(run.output.status.code(), Some(0));
    assert!(run.stderr().contains("symbolic link"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

/// #10: OIDC tokens not valid yet, with an email_verified that is not true, or signed with an
/// algorithm their key is not published for.
#[test]
fn oidc_tokens_not_yet_valid_unverified_or_with_another_algorithm_are_refused() {
    let env = env();
    let idp = Idp::new("k1");
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        &format!(
            "[server.oidc]\nissuer = \"{}\"\naudience = \"{}\"\njwks_file = \"{}\"\n",
            Idp::ISSUER,
            Idp::AUDIENCE,
            s(&env.path("jwks.json"))
        ),
    );
    std::fs::write(env.path("jwks.json"), idp.jwks().to_string()).unwrap();
    let whoami = |token: &str| {
        server
            .http("GET", "/v1/whoami", Some(token), "application/json", b"")
            .0
    };
    let with = |name: &str, value: Value| {
        let mut claims = Idp::claims("alice@example.com");
        claims[name] = value;
        claims
    };
    assert_eq!(whoami(&idp.token(&Idp::claims("alice@example.com"))), 200);
    assert_eq!(
        whoami(&idp.token(&with("email_verified", json!("true")))),
        200
    );
    for (case, token) in [
        ("not before", idp.token(&with("nbf", json!(now() + 3600)))),
        (
            "\"false\"",
            idp.token(&with("email_verified", json!("false"))),
        ),
        ("0", idp.token(&with("email_verified", json!(0)))),
        ("null", idp.token(&with("email_verified", Value::Null))),
        ("PS256", idp.token_ps256(&Idp::claims("alice@example.com"))),
    ] {
        assert_eq!(whoami(&token), 401, "{case}");
    }
}

/// #11 and #13 (probing): search shows attributes only to holders of `get_attributes`, and an
/// object a user holds no right on answers exactly as a missing one (on record as a denial).
#[test]
fn search_and_lookups_reveal_nothing_past_the_rights_held() {
    let (env, _pki, server, _key) = team_server("");
    let listed = |user: &str| {
        env.run_as(user, "--json kms certificates list")
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["unique_identifier"] == "ca")
    };
    env.run("kms access-rights grant bob -i ca get").ok();
    assert!(!listed("bob"), "get alone does not list attributes");
    env.run("kms access-rights grant bob -i ca get_attributes")
        .ok();
    assert!(listed("bob"));

    let carol = env.token_of("carol");
    let probe = |id: &str| {
        server.http(
            "GET",
            &format!("/v1/objects/{id}/attributes"),
            Some(&carol),
            "application/json",
            b"",
        )
    };
    let (exists, missing) = (probe("ca"), probe("no-such-object"));
    assert_eq!(exists.0, 404);
    assert_eq!(missing.0, 404);
    assert_eq!(
        message(&exists.1).replace("ca", "X"),
        message(&missing.1).replace("no-such-object", "X")
    );
    let entries = audit(&server, &env, "carol");
    assert!(has(&entries, "get_attributes", "denied"), "{entries:?}");
}

/// #12: an address with a second `@` is never minted; CSV cells that a spreadsheet would
/// run are written as text, and read back as they were on a re-run.
#[test]
fn odd_addresses_and_spreadsheet_formulas_do_not_get_through() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    env.run("kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name")
        .arg("CN=x@x.com@y.com, emailAddress=x@x.com@y.com")
        .fails(1);
    env.run("kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name CN=Jane --email")
        .arg("x@x.com@y.com")
        .fails(1)
        .stderr_has("more than one `@`");
    let csv = env.path("users.csv");
    std::fs::write(&csv, "email\n=2+5@example.com\n").unwrap();
    let batch = || {
        env.run("--json kms certificates certify-batch --csv")
            .arg(&csv)
            .then("-k")
            .arg(&key)
            .then("--out-dir")
            .arg(env.path("out"))
            .then("--pkcs12-password s3cret")
            .ok()
            .json()
    };
    assert_eq!(batch()["minted"], 1);
    let manifest = std::fs::read_to_string(env.path("out/manifest.csv")).unwrap();
    assert!(
        manifest
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("'=2+5@example.com,"),
        "{manifest}"
    );
    assert!(!manifest.lines().any(|l| l.starts_with('=')));
    assert_eq!(batch()["already_done"], 1, "the re-run reads the cell back");
}

/// #13: a refused passphrase writes nothing; a device as input is refused before memory
/// grows; a token file others can read draws a warning.
#[test]
fn refused_passphrases_endless_inputs_and_open_token_files() {
    let env = env();
    env.run("kms sym keys create k1").ok();
    let store = env.data_dir().join("kms.sqlite");
    env.run("kms sym keys create k2")
        .env("MAILPKI_MASTER_PASSPHRASE", "guess")
        .fails(1)
        .stderr_has("master key");
    for file in [store.clone(), store.with_extension("sqlite-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(!contains_bytes(&bytes, b"kdf_salt"), "{}", file.display());
        }
    }
    env.run("kms certificates import /dev/zero zero")
        .fails(1)
        .stderr_has("larger than");

    let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), "");
    let token = server.create_token(&env, "alice");
    let token_file = env.path("token");
    std::fs::write(&token_file, &token).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let config = env.path("client.toml");
    std::fs::write(
        &config,
        format!(
            "[kms]\nurl = \"{}\"\ntoken_file = \"{}\"\n",
            server.url,
            s(&token_file)
        ),
    )
    .unwrap();
    env.run("--config")
        .arg(&config)
        .then("kms access-rights owned")
        .ok()
        .stderr_has("readable by other users");
}

/// #13: a client that trickles its headers is cut off; after too many failed
/// authentications an address is answered 429, even with a good token.
#[test]
fn slow_clients_and_password_guessers_are_cut_off() {
    let env = env();
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        "header_read_timeout_seconds = 1\nauth_failures_per_minute = 5",
    );
    let good = server.create_token(&env, "alice");
    let addr = server.url.trim_start_matches("http://");
    let mut slow = std::net::TcpStream::connect(addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let closed = slow.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the server closed the connection instead of waiting: {closed:?}"
    );
    let whoami = |token: &str| {
        server
            .http("GET", "/v1/whoami", Some(token), "application/json", b"")
            .0
    };
    for _ in 0..5 {
        assert_eq!(whoami("mpk_guess"), 401);
    }
    assert_eq!(whoami("mpk_guess"), 429);
    assert_eq!(whoami(&good), 429, "not even a good guess gets through");
    assert_eq!(
        server
            .http("GET", "/v1/health", None, "application/json", b"")
            .0,
        200
    );
}
