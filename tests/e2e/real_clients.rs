//! What clients nobody here wrote do to the emulator, done by hand until those clients run in
//! the suite: google-auth's token audience, `userId=me` with the basic scope, and Google's
//! front end refusing a POST that gives no length.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailpki_test_support::EmulatorProcess;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use serde_json::{Value, json};

use crate::{env_with_pki, now};

const JANE: &str = "jane@example.com";
const BASIC: &str = "https://www.googleapis.com/auth/gmail.settings.basic";
/// Where google-auth addresses every service-account assertion, whatever `token_uri` says.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Exchanges a service-account assertion addressed to `aud` for an access token, as
/// google-auth does; returns the status and the reply.
fn exchange(emulator: &EmulatorProcess, aud: &str, scope: &str) -> (u16, Value) {
    let key: Value =
        serde_json::from_str(&std::fs::read_to_string(&emulator.key_file).unwrap()).unwrap();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key["private_key_id"]});
    let claims = json!({
        "iss": key["client_email"], "sub": JANE, "scope": scope, "aud": aud,
        "iat": now(), "exp": now() + 3600,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let private =
        PKey::private_key_from_pem(key["private_key"].as_str().unwrap().as_bytes()).unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &private).unwrap();
    signer.update(input.as_bytes()).unwrap();
    let assertion = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().unwrap())
    );
    let form = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    );
    let (status, body) = emulator.request(
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// google-auth's audience is accepted beside the emulator's own URL, any other refused; a
/// token with only `gmail.settings.basic` reads smimeInfo for `userId=me` at the primary
/// address, as Google allows.
#[test]
fn googles_client_library_gets_a_token_and_me_needs_only_the_basic_scope() {
    let (env, pki) = env_with_pki();
    let emulator = env.start_emulator(&[JANE], &pki.path("root.pem"));
    let (status, reply) = exchange(&emulator, "https://elsewhere.example.com/token", BASIC);
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "invalid_grant");
    let (status, reply) = exchange(&emulator, GOOGLE_TOKEN_URI, BASIC);
    assert_eq!(status, 200, "{reply}");
    let token = format!("Bearer {}", reply["access_token"].as_str().unwrap());
    for user in ["me", JANE] {
        let (status, body) = emulator.request(
            "GET",
            &format!("/gmail/v1/users/{user}/settings/sendAs/{JANE}/smimeInfo"),
            &[("Authorization", &token)],
            None,
        );
        assert_eq!(status, 200, "userId={user}: {body}");
    }
    // sendAs.get, as the client library calls it.
    let (status, body) = emulator.request(
        "GET",
        &format!("/gmail/v1/users/me/settings/sendAs/{JANE}"),
        &[("Authorization", &token)],
        None,
    );
    assert_eq!(status, 200, "{body}");
    let send_as: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(send_as["sendAsEmail"], JANE);
    assert_eq!(send_as["isPrimary"], true);
    let (status, _) = emulator.request(
        "GET",
        "/gmail/v1/users/me/settings/sendAs/nobody@example.com",
        &[("Authorization", &token)],
        None,
    );
    assert_eq!(status, 404);
}

/// A POST with neither `Content-Length` nor chunking gets Google's 411 before any API logic;
/// the same POST with `Content-Length: 0` reaches the API (and our client sends that: the
/// hosted S/MIME tests set defaults through the emulator).
#[test]
fn a_post_without_a_length_is_refused_as_google_refuses_it() {
    let (env, pki) = env_with_pki();
    let emulator = env.start_emulator(&[JANE], &pki.path("root.pem"));
    let (_, reply) = exchange(&emulator, GOOGLE_TOKEN_URI, BASIC);
    let token = format!("Bearer {}", reply["access_token"].as_str().unwrap());
    let path = format!("/gmail/v1/users/me/settings/sendAs/{JANE}/smimeInfo/nothing/setDefault");
    let (status, body) = emulator.request("POST", &path, &[("Authorization", &token)], None);
    assert_eq!(status, 411, "{body}");
    assert!(body.contains("Content-length"), "{body}");
    let (status, body) = emulator.request("POST", &path, &[("Authorization", &token)], Some(b""));
    assert_eq!(
        status, 404,
        "the API answers once the length is given: {body}"
    );
}

/// The key service takes the algorithm spellings Google's reference and other vendors use,
/// and a private key to wrap as PEM text, as Google's example sends it.
#[test]
fn the_key_service_takes_googles_spellings_and_pem_keys() {
    use base64::engine::general_purpose::STANDARD;
    use openssl::rsa::{Padding, Rsa};

    let svc = crate::kacls::service("");
    let (status, reply) = svc.sign(&openssl::sha::sha256(b"x"), "sha256WithRSA");
    assert_eq!(status, 200, "{reply}");
    let rsa = svc.public_key().rsa().unwrap();
    let mut encrypted = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&[7u8; 32], &mut encrypted, Padding::PKCS1_OAEP)
        .unwrap();
    encrypted.truncate(n);
    let (status, reply) = svc.decrypt(&encrypted, "RSA/ECB/OAEPwithSHA-1andMGF1Padding", None);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        STANDARD
            .decode(reply["data_encryption_key"].as_str().unwrap())
            .unwrap(),
        [7u8; 32]
    );

    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let (status, reply) = svc.call(
        "wrapprivatekey",
        &json!({"authentication": svc.authentication("admin@example.com"), "private_key": pem}),
    );
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = svc.sign_key(
        reply["wrapped_private_key"].as_str().unwrap(),
        &crate::kacls::spki_of(&key),
        &openssl::sha::sha256(b"y"),
        "SHA256withRSA",
    );
    assert_eq!(status, 200, "{reply}");
}

/// Gmail on the web calls the key service from the browser: the preflight and the call from
/// Gmail's origin get CORS headers; another origin, and every other part of the server, get
/// none, and `*` is never the answer.
#[test]
fn the_key_service_answers_gmails_origin_across_origins_and_no_other() {
    use base64::engine::general_purpose::STANDARD;
    use mailpki_test_support::http1;

    const GMAIL: &str = "https://client-side-encryption.google.com";
    let svc = crate::kacls::service("");
    let preflight = |path: &str, origin: &str| {
        http1(
            &svc.server.url,
            "OPTIONS",
            path,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            None,
        )
    };
    let allowed = preflight("/google_cse/privatekeysign", GMAIL);
    assert!(allowed.status < 300, "{}", allowed.head);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(GMAIL));
    assert!(
        allowed
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST")),
        "{}",
        allowed.head
    );
    assert!(
        allowed
            .header("access-control-allow-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("content-type"))
    );
    assert_eq!(allowed.header("access-control-allow-credentials"), None);
    for (path, origin) in [
        ("/google_cse/privatekeysign", "https://evil.example.com"),
        ("/v1/certify", GMAIL),
    ] {
        let refused = preflight(path, origin);
        assert_eq!(
            refused.header("access-control-allow-origin"),
            None,
            "{path} from {origin}: {}",
            refused.head
        );
    }
    let body = json!({
        "authentication": svc.authentication(JANE),
        "authorization": svc.authorization(JANE, "signer"),
        "algorithm": "SHA256withRSA",
        "digest": STANDARD.encode(openssl::sha::sha256(b"web")),
        "wrapped_private_key": svc.wrapped,
    })
    .to_string();
    let call = http1(
        &svc.server.url,
        "POST",
        "/google_cse/privatekeysign",
        &[("Origin", GMAIL), ("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(call.status, 200, "{}", call.body);
    assert_eq!(call.header("access-control-allow-origin"), Some(GMAIL));
}

/// A 401 carries Google's challenge, a wrong verb Google's JSON error; the admin API takes JSON whatever the Content-Type (as
/// `curl -d` sends it) and says what it needs when the body is not JSON.
#[test]
fn the_emulator_challenges_like_google_and_its_admin_api_is_easy_to_script() {
    use mailpki_test_support::http1;

    let (env, pki) = env_with_pki();
    let emulator = env.start_emulator(&[JANE], &pki.path("root.pem"));
    let denied = http1(
        &emulator.url,
        "GET",
        &format!("/gmail/v1/users/me/settings/sendAs/{JANE}/smimeInfo"),
        &[],
        None,
    );
    assert_eq!(denied.status, 401);
    assert!(
        denied
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer ") && c.contains("invalid_token")),
        "{}",
        denied.head
    );
    // A verb no method has on a path that exists: Google's JSON error, not an empty 405.
    let wrong_verb = http1(
        &emulator.url,
        "PUT",
        &format!("/gmail/v1/users/me/settings/sendAs/{JANE}/smimeInfo"),
        &[("Content-Length", "0")],
        None,
    );
    assert_eq!(wrong_verb.status, 404, "{}", wrong_verb.head);
    let error: Value = serde_json::from_str(&wrong_verb.body).unwrap();
    assert_eq!(error["error"]["message"], "Method not found.");
    assert_eq!(error["error"]["status"], "NOT_FOUND");
    assert_eq!(error["error"]["errors"][0]["reason"], "notFound");
    let user = br#"{"email": "bob@example.com"}"#;
    for content_type in [None, Some("application/x-www-form-urlencoded")] {
        let headers: Vec<(&str, &str)> = content_type
            .map(|t| vec![("Content-Type", t)])
            .unwrap_or_default();
        let created = http1(&emulator.url, "POST", "/admin/users", &headers, Some(user));
        assert_eq!(created.status, 200, "{}", created.body);
    }
    let bad = http1(
        &emulator.url,
        "POST",
        "/admin/users",
        &[],
        Some(b"email=bob"),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("must be JSON"), "{}", bad.body);
    assert!(emulator.in_gmail().contains_key("bob@example.com"));
}

/// Google's own client library, unpatched, runs what another team's CI would against the
/// emulator: sendAs list/get, smimeInfo insert/list/get/setDefault/delete, CSE key pairs
/// create/get/list page by page/disable/enable/obliterate, identities create/get/list/patch/
/// delete, and a Google error as the library parses it.
#[test]
fn googles_python_client_runs_against_the_emulator() {
    let Some(python) = mailpki_test_support::google_python() else {
        return;
    };
    let (env, pki) = env_with_pki();
    let key = crate::issuer_key(&env, &pki);
    env.run("kms sym keys create cse_key").ok();
    let emulator = env.start_emulator(&[JANE], &pki.path("root.pem"));
    let kacls = "https://kacls.example.com/google_cse";
    // One key pair through our client, one request for Google's.
    emulator
        .run(
            &env,
            "google key-pairs create --cse-key-id cse_key --kacls-url",
        )
        .arg(kacls)
        .then("-i")
        .arg(&key)
        .arg(JANE)
        .ok();
    let request = emulator
        .run(
            &env,
            "--json google key-pairs create --dry-run --cse-key-id cse_key --kacls-url",
        )
        .arg(kacls)
        .then("-i")
        .arg(&key)
        .then("--output-dir")
        .arg(env.path("dry"))
        .arg(JANE)
        .ok()
        .json()["request"]
        .clone();
    let request_file = env.path("keypair-request.json");
    std::fs::write(&request_file, request.to_string()).unwrap();
    let p12 = crate::smime::p12(&env, &key, "hosted", JANE, 365);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/clients/gmail_python_client.py"
    );
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(&emulator.url)
        .arg(&emulator.key_file)
        .arg(JANE)
        .arg(&p12)
        .arg("pw")
        .arg(&request_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["send_as"], json!([JANE]));
    assert_eq!(out["send_as_get"], JANE);
    assert_eq!(out["smime_list"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["smime_get"], out["smime_list"][0]);
    assert_eq!(out["smime_default"], true);
    assert_eq!(out["smime_after_delete"], 0);
    let created = out["keypair_created"].as_str().unwrap();
    assert_eq!(out["keypair_get"], created);
    let pages = out["keypair_pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2, "one key pair a page: {out}");
    assert!(pages.iter().all(|p| p.as_array().unwrap().len() == 1));
    assert_eq!(out["identity_get"]["primaryKeyPairId"], created);
    assert_eq!(out["identity_list"], json!([JANE]));
    assert_eq!(out["identity_patched"], created);
    assert_eq!(out["disabled"], "disabled");
    assert_eq!(out["enabled"], "enabled");
    assert_eq!(out["obliterate_too_soon"], 400, "{out}");
    assert_eq!(out["obliterated"], true);
    assert_eq!(out["error"]["status"], 404, "{out}");
}

/// A real browser: a page on an allowed origin signs through the key service across origins;
/// the same page from an origin that is not allowed is blocked by the browser itself.
#[test]
fn a_browser_page_on_an_allowed_origin_signs_through_the_key_service() {
    use base64::engine::general_purpose::STANDARD;

    let Some(chromedriver) = crate::browser::chromedriver() else {
        return;
    };
    let port = crate::browser::page_server("<!DOCTYPE html><title>Gmail stand-in</title><p>mail");
    let allowed = format!("http://localhost:{port}");
    let svc = crate::kacls::service(&format!("allowed_origins = [\"{allowed}\"]"));
    let body = json!({
        "authentication": svc.authentication(JANE),
        "authorization": svc.authorization(JANE, "signer"),
        "algorithm": "SHA256withRSA",
        "digest": STANDARD.encode(openssl::sha::sha256(b"from the browser")),
        "wrapped_private_key": svc.wrapped,
    })
    .to_string();
    let endpoint = format!("{}/privatekeysign", svc.url());
    let browser = crate::browser::Browser::start(&chromedriver);
    browser.open(&format!("{allowed}/"));
    let signed = browser.fetch(&endpoint, &body);
    assert_eq!(signed["ok"], true, "{signed}");
    assert!(
        signed["body"]["signature"]
            .as_str()
            .is_some_and(|s| s.len() > 300),
        "{signed}"
    );
    // 127.0.0.1 is another origin than localhost, and not an allowed one.
    browser.open(&format!("http://127.0.0.1:{port}/"));
    let blocked = browser.fetch(&endpoint, &body);
    assert_eq!(blocked["ok"], false, "{blocked}");
    assert!(
        blocked["error"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "the browser itself refused: {blocked}"
    );
}
