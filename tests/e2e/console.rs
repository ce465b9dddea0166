//! The web console in a real browser (headless Chromium over WebDriver): sign-in through a
//! local OIDC provider with PKCE, the pages, a revocation with its confirmation, the audit
//! page, isolation between users, escaping, CSRF and CSP, and axe-core's accessibility rules.
//! Screenshots of every page land in `target/console-screenshots/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailpki_test_support::{ServerProcess, TestEnv, http1, s};
use serde_json::{Value, json};

use crate::browser::{Browser, chromedriver};
use crate::{Idp, env_with_pki};

const CLIENT_ID: &str = "mailpki-console";

/// What `/authorize` was asked, kept until the code is traded.
struct Grant {
    challenge: String,
    nonce: String,
    redirect_uri: String,
    user: String,
}

/// A local OpenID provider over HTTP: discovery, an authorization endpoint that signs in
/// whoever `user` names without asking, a token endpoint that checks the PKCE verifier, and
/// the JWKS.
struct IdpServer {
    url: String,
    user: Arc<Mutex<String>>,
    /// Every `/authorize` query and `/token` form, for the test to inspect.
    seen: Arc<Mutex<Vec<String>>>,
}

fn form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl IdpServer {
    fn start() -> Self {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let idp = Arc::new(Idp::with_issuer("console-idp", &url, CLIENT_ID));
        let user = Arc::new(Mutex::new("alice".to_owned()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let grants: Arc<Mutex<HashMap<String, Grant>>> = Arc::default();
        let (issuer, who, log) = (url.clone(), Arc::clone(&user), Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (idp, issuer, who, log, grants) = (
                    Arc::clone(&idp),
                    issuer.clone(),
                    Arc::clone(&who),
                    Arc::clone(&log),
                    Arc::clone(&grants),
                );
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let body = String::from_utf8_lossy(&body).into_owned();
                    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                    let (status, headers, reply) = match path {
                        "/.well-known/openid-configuration" => (
                            "200 OK",
                            "Content-Type: application/json\r\n".to_owned(),
                            json!({
                                "issuer": issuer,
                                "authorization_endpoint": format!("{issuer}/authorize"),
                                "token_endpoint": format!("{issuer}/token"),
                                "jwks_uri": format!("{issuer}/jwks"),
                                "response_types_supported": ["code"],
                                "code_challenge_methods_supported": ["S256"],
                            })
                            .to_string(),
                        ),
                        "/jwks" => (
                            "200 OK",
                            "Content-Type: application/json\r\n".to_owned(),
                            idp.jwks().to_string(),
                        ),
                        "/authorize" => {
                            log.lock().unwrap().push(format!("authorize {query}"));
                            let q = form(query);
                            let code =
                                URL_SAFE_NO_PAD.encode(openssl::sha::sha256(query.as_bytes()));
                            let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
                            grants.lock().unwrap().insert(
                                code.clone(),
                                Grant {
                                    challenge: q.get("code_challenge").cloned().unwrap_or_default(),
                                    nonce: q.get("nonce").cloned().unwrap_or_default(),
                                    redirect_uri: redirect.clone(),
                                    user: who.lock().unwrap().clone(),
                                },
                            );
                            let state = q.get("state").cloned().unwrap_or_default();
                            (
                                "302 Found",
                                format!("Location: {redirect}?code={code}&state={state}\r\n"),
                                String::new(),
                            )
                        }
                        "/token" => {
                            log.lock().unwrap().push(format!("token {body}"));
                            let f = form(&body);
                            let grant =
                                f.get("code").and_then(|c| grants.lock().unwrap().remove(c));
                            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
                            match grant {
                                Some(g)
                                    if URL_SAFE_NO_PAD
                                        .encode(openssl::sha::sha256(verifier.as_bytes()))
                                        == g.challenge
                                        && f.get("redirect_uri") == Some(&g.redirect_uri)
                                        && f.get("client_id").map(String::as_str)
                                            == Some(CLIENT_ID) =>
                                {
                                    let claims = idp.claims_with(
                                        &g.user,
                                        &json!({"nonce": g.nonce, "sub": g.user, "email_verified": true}),
                                    );
                                    (
                                        "200 OK",
                                        "Content-Type: application/json\r\n".to_owned(),
                                        json!({"id_token": idp.token(&claims), "token_type": "Bearer",
                                               "access_token": "unused", "expires_in": 300})
                                        .to_string(),
                                    )
                                }
                                _ => (
                                    "400 Bad Request",
                                    "Content-Type: application/json\r\n".to_owned(),
                                    json!({"error": "invalid_grant"}).to_string(),
                                ),
                            }
                        }
                        _ => ("404 Not Found", String::new(), String::new()),
                    };
                    let mut stream = reader.into_inner();
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                });
            }
        });
        Self { url, user, seen }
    }

    fn sign_in_as(&self, user: &str) {
        user.clone_into(&mut self.user.lock().unwrap());
    }

    /// `[server.oidc]` trusting this provider.
    fn config(&self) -> String {
        format!(
            "[server.oidc]\nissuer = \"{0}\"\naudience = \"{CLIENT_ID}\"\njwks_url = \"{0}/jwks\"\n",
            self.url
        )
    }
}

/// Where the screenshots go: `target/console-screenshots/`, kept after the run.
fn screenshots() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
}

/// axe-core's `axe.min.js` (`MAILPKI_AXE`, or where `.ci/run` puts it); required in CI.
fn axe() -> Option<String> {
    let path = std::env::var_os("MAILPKI_AXE").map_or_else(
        || {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/mailpki-ci/axe/package/axe.min.js")
        },
        std::path::PathBuf::from,
    );
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!(
                "axe-core is required in CI: {}: {e} (npm pack axe-core)",
                path.display()
            )
        }
        Err(_not_installed) => {
            mailpki_test_support::skipped(
                "the accessibility checks",
                "run .ci/run once for axe-core",
            );
            None
        }
    }
}

/// Serious and critical accessibility violations axe-core finds on the page.
fn violations(browser: &Browser, axe: &str) -> Vec<Value> {
    browser.execute(axe, &[]);
    let found = browser.execute_async(
        "const done = arguments[arguments.length - 1];\
         axe.run(document, {resultTypes: ['violations']})\
           .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,\
                                                   nodes: v.nodes.map(n => n.html).slice(0, 3)}))))\
           .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
        &[],
    );
    found
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect()
}

/// A server with the console and metrics on, an issuing CA and certificates owned by alice:
/// jane (expires in 20 days), joe (200 days), and one whose subject carries markup.
struct Console {
    env: TestEnv,
    server: ServerProcess,
    /// The publish listener's URL (CRLs, OCSP).
    publish: String,
    idp: IdpServer,
    jane: String,
    markup: String,
}

fn console() -> Console {
    let (env, pki) = env_with_pki();
    let idp = IdpServer::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        &format!(
            "metrics = true\ncounts_refresh_seconds = 0\n{}[server.console]\n\
             [server.publish]\nlisten = \"127.0.0.1:{port}\"\nactor = \"alice\"\n",
            idp.config()
        ),
    );
    let publish = format!("http://127.0.0.1:{port}");
    env.use_server(&server, &["alice", "admin"]);
    let key = crate::issuer_key(&env, &pki);
    let mint = |id: &str, subject: &str, days: &str| {
        env.run("kms certificates certify -g -k")
            .arg(&key)
            .then("--subject-name")
            .arg(subject)
            .then("--days")
            .arg(days)
            .then("--certificate-id")
            .arg(id)
            .then("--crl-url http://pki.example.com/i.crl")
            .ok();
        id.to_owned()
    };
    let jane = mint(
        "jane-cert",
        "CN=Jane Doe, emailAddress=jane@example.com",
        "20",
    );
    mint(
        "joe-cert",
        "CN=Joe Bloggs, emailAddress=joe@example.com",
        "200",
    );
    let markup = mint(
        "markup-cert",
        "CN=<script>alert(1)</script>, emailAddress=mallory@example.com",
        "100",
    );
    Console {
        env,
        server,
        publish,
        idp,
        jane,
        markup,
    }
}

impl Console {
    fn page(&self, path: &str) -> String {
        format!("{}/console{path}", self.server.url)
    }
}

#[test]
fn an_admin_signs_in_finds_a_certificate_revokes_it_and_sees_it_in_the_audit_log() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let c = console();
    let shots = screenshots();
    let axe = axe();
    let browser = Browser::start(&driver);
    let check = |name: &str| {
        browser.screenshot(&shots.join(format!("{name}.png")));
        if let Some(axe) = &axe {
            let found = violations(&browser, axe);
            assert!(found.is_empty(), "axe-core on {name}: {found:#?}");
        }
    };

    // Signed out, the console sends the browser to its sign-in page.
    browser.open(&c.page("/certificates"));
    assert!(
        browser.current_url().ends_with("/console/login"),
        "{}",
        browser.current_url()
    );
    check("login");
    // Through the IdP and back, with PKCE.
    browser.click("a[href='/console/login/oidc']");
    browser.wait_until("the overview", |b| b.title() == "Overview · mailpki");
    assert!(browser.text("header").contains("alice"));
    let seen = c.idp.seen.lock().unwrap().clone();
    assert!(
        seen[0].contains("code_challenge_method=S256") && seen[0].contains("nonce="),
        "{seen:?}"
    );
    assert!(seen[1].contains("code_verifier="), "{seen:?}");

    // The expiry timeline: 52 weekly bars; jane's 20-day certificate is "next month".
    assert_eq!(browser.find_all("svg rect.bar").len(), 52);
    assert!(
        browser
            .text(".lead")
            .starts_with("1 certificate expires in the next 30 days"),
        "{}",
        browser.text(".lead")
    );
    check("overview");
    browser.follow(".lead a");
    assert!(browser.text("main").contains("jane@example.com"));
    assert!(!browser.text("main").contains("joe@example.com"));

    // Find a certificate by email.
    browser.open(&c.page("/certificates"));
    check("certificates");
    browser.type_into("#q", "jane@example.com");
    browser.follow(".search button");
    let rows = browser.find_all("tbody tr");
    assert_eq!(rows.len(), 1, "{}", browser.text("main"));
    browser.follow("tbody tr a");
    assert!(
        browser
            .current_url()
            .ends_with(&format!("/certificates/{}", c.jane))
    );
    check("certificate");

    // Revoke, confirmed.
    browser.follow("a.danger");
    check("revoke");
    browser.click("#reason");
    browser.click("option:nth-child(5)"); // superseded
    browser.click("input[name=confirm]");
    browser.follow("button.danger");
    assert_eq!(browser.text("p.notice"), "The certificate is revoked.");
    assert!(
        browser.text("table.fields").contains("Deactivated"),
        "{}",
        browser.text("table.fields")
    );
    assert!(
        browser.find_all("a.danger").is_empty(),
        "no second revocation offered"
    );
    let state = crate::attributes(&c.env, &c.jane);
    assert_eq!(state["state"], "Deactivated");
    assert_eq!(state["revocation_reason"], "superseded");

    // The audit page shows it.
    browser.follow("a[href^='/console/audit?object=']");
    check("audit");
    let audit = browser.text("tbody");
    assert!(
        audit.contains("revoke") && audit.contains(&c.jane),
        "{audit}"
    );

    // Markup in a subject is text.
    browser.open(&c.page(&format!("/certificates/{}", c.markup)));
    assert!(
        browser
            .text(".subject")
            .contains("<script>alert(1)</script>")
    );
    assert_eq!(
        browser.execute(
            "return document.querySelectorAll('main script').length",
            &[]
        ),
        0
    );
    assert!(browser.source().contains("&lt;script&gt;"));

    // Issuers, and what one issued.
    browser.open(&c.page("/issuers"));
    check("issuers");
    assert!(
        browser.text("tbody").contains("store"),
        "{}",
        browser.text("tbody")
    );
    assert_eq!(browser.find_all("tbody a[href*='issuer=']").len(), 2);
    browser.open(&c.page("/certificates?issuer=ca"));
    assert_eq!(
        browser.find_all("tbody tr").len(),
        3,
        "the issuing CA's three leaves: {}",
        browser.text("main")
    );

    // The user page: jane's certificates by her address.
    browser.open(&c.page("/users?email=jane%40example.com"));
    check("user");
    assert!(
        browser.text("tbody").contains("Jane Doe"),
        "{}",
        browser.text("main")
    );

    // Alice grants bob a right on joe's certificate, confirmed; it shows in the table.
    browser.open(&c.page("/certificates/joe-cert"));
    browser.type_into("#grant-user", "bob@example.com");
    browser.click("#grant-operation");
    browser.click("#grant-operation option:nth-child(2)"); // get_attributes
    browser.click("#grant input[name=confirm]");
    browser.follow("#grant button");
    assert_eq!(browser.text("p.notice"), "Access rights changed.");
    let rights = browser.text("main table:not(.fields)");
    assert!(
        rights.contains("bob@example.com") && rights.contains("get_attributes"),
        "{rights}"
    );

    // A phone's width.
    browser.resize(390, 844);
    browser.open(&c.page("/certificates"));
    check("certificates-phone");
    let overflow = browser.execute(
        "return document.documentElement.scrollWidth > window.innerWidth + 1",
        &[],
    );
    assert_eq!(overflow, false, "the page scrolls sideways at 390 px");
    browser.resize(1280, 900);

    // Sign out: the session is gone.
    browser.follow(".signout button");
    browser.open(&c.page(""));
    assert!(browser.current_url().ends_with("/console/login"));

    // Bob, signed in by the same IdP, sees only what alice granted him: joe's certificate.
    c.idp.sign_in_as("bob@example.com");
    browser.click("a[href='/console/login/oidc']");
    browser.wait_until("the overview", |b| b.title() == "Overview · mailpki");
    assert!(browser.text("header").contains("bob@example.com"));
    assert!(browser.text(".lead").starts_with("0 certificates"));
    browser.open(&c.page("/certificates"));
    let listed = browser.text("tbody");
    assert!(listed.contains("Joe Bloggs"), "{listed}");
    assert_eq!(browser.find_all("tbody tr").len(), 1, "{listed}");
    browser.open(&c.page(&format!("/certificates/{}", c.jane)));
    assert!(
        browser.title().starts_with("Error 40"),
        "{}",
        browser.title()
    );
    browser.open(&c.page("/audit"));
    let audit = browser.text("main");
    assert!(audit.contains("You see your own entries"));
    assert!(!audit.contains("alice"), "{audit}");
}

#[test]
fn the_console_refuses_forged_forms_and_sends_its_security_headers() {
    let c = console();
    let url = &c.server.url;
    // Headers on every page, the sign-in page included.
    let login = http1(url, "GET", "/console/login", &[], None);
    assert_eq!(login.status, 200);
    let csp = login.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(login.header("x-frame-options"), Some("DENY"));
    assert_eq!(login.header("cache-control"), Some("no-store"));

    // Break-glass sign-in with an API token: the cookie's flags.
    let sign_in = |user: &str| {
        let token = c.env.token_of(user);
        let body = format!("token={token}");
        let signed = http1(
            url,
            "POST",
            "/console/login/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(body.as_bytes()),
        );
        assert_eq!(signed.status, 200, "{}", signed.body);
        assert!(!signed.body.contains(&token), "the token is not echoed");
        let cookie = signed
            .head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, value)| value.trim())
            .find(|c| c.starts_with("mailpki_session="))
            .expect("a session cookie")
            .to_owned();
        for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
            assert!(cookie.contains(flag), "{flag} missing from {cookie}");
        }
        cookie.split(';').next().unwrap().to_owned()
    };
    let admin = sign_in("admin");
    let session = sign_in("alice");

    // The admin sees everyone's audit lines; a wrong token is refused on the page.
    let audit = http1(url, "GET", "/console/audit", &[("Cookie", &admin)], None);
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("console.sign_in") && audit.body.contains("alice"));
    let wrong = http1(
        url,
        "POST",
        "/console/login/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b"token=mpk_not-a-real-token"),
    );
    assert_eq!(wrong.status, 401);
    assert!(!wrong.head.to_ascii_lowercase().contains("mailpki_session="));

    // A revocation without the CSRF token, or from another site, changes nothing.
    let path = format!("/console/certificates/{}/revoke", c.jane);
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", session.as_str()),
    ];
    let forged = http1(
        url,
        "POST",
        &path,
        &form,
        Some(b"csrf=guess&reason=superseded&confirm=yes"),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let page = http1(
        url,
        "GET",
        &format!("/console/certificates/{}/revoke", c.jane),
        &[("Cookie", &session)],
        None,
    );
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let mut cross = form.to_vec();
    cross.push(("Origin", "https://evil.example"));
    let body = format!("csrf={csrf}&reason=superseded&confirm=yes");
    let other_site = http1(url, "POST", &path, &cross, Some(body.as_bytes()));
    assert_eq!(other_site.status, 403);
    assert_eq!(crate::attributes(&c.env, &c.jane)["state"], "Active");
    // The admin holds no right on alice's certificate: the store says no, whatever the form.
    let page = http1(url, "GET", "/console", &[("Cookie", &admin)], None);
    let admin_csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let as_admin = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", admin.as_str()),
    ];
    let body = format!("csrf={admin_csrf}&reason=superseded&confirm=yes");
    let refused = http1(url, "POST", &path, &as_admin, Some(body.as_bytes()));
    assert!(matches!(refused.status, 403 | 404), "{}", refused.body);
    assert_eq!(crate::attributes(&c.env, &c.jane)["state"], "Active");

    // Without a session, a page is a redirect to the sign-in page, never content.
    let anonymous = http1(url, "GET", "/console/certificates", &[], None);
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.header("location"), Some("/console/login"));

    // The publish listener never serves the console; the issuers page shows the nextUpdate
    // of the CRL it serves, once one was asked for.
    assert_eq!(
        http1(&c.publish, "GET", "/console/login", &[], None).status,
        404
    );
    let issuers = || {
        http1(
            url,
            "GET",
            "/console/issuers",
            &[("Cookie", &session)],
            None,
        )
        .body
    };
    assert!(issuers().contains("not asked for yet"));
    assert_eq!(
        http1(&c.publish, "GET", "/crl/ca.crl", &[], None).status,
        200
    );
    let in_a_week = time::OffsetDateTime::now_utc() + time::Duration::days(7);
    assert!(
        issuers().contains(&in_a_week.date().to_string()),
        "{}",
        issuers()
    );

    // A server without [server.console] has none.
    let other = crate::env();
    let plain = other.start_server(&s(&other.path("server-data/kms.sqlite")), "");
    assert_eq!(
        http1(&plain.url, "GET", "/console/login", &[], None).status,
        404
    );
    assert_eq!(http1(&plain.url, "GET", "/metrics", &[], None).status, 404);

    // /metrics: requests by route pattern, certificates by state (the two CAs and three
    // leaves) and by days left.
    let metrics = http1(url, "GET", "/metrics", &[], None);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("mailpki_certificates{state=\"Active\"} 5"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("route=\"/console/certificates/{id}/revoke\""),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("mailpki_http_request_duration_seconds_bucket")
    );
    assert!(
        metrics
            .body
            .contains("mailpki_certificates_expiring{within=\"30\"} 1"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.trim_end().ends_with("# EOF"));
    assert!(
        !metrics.body.contains("jane"),
        "no subject or ID in the metrics"
    );
}

/// Done means: an admin onboards five users from the browser, watches the batch finish
/// against the emulator, downloads the report, and finds the batch in the audit log.
#[test]
fn an_admin_onboards_five_users_from_an_uploaded_csv() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let (env, pki) = env_with_pki();
    let idp = IdpServer::start();
    let users: Vec<String> = (1..=5).map(|i| format!("user{i}@example.com")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let emulator = env.start_emulator(&names, &pki.path("root.pem"));
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        &format!(
            "metrics = true\n{}[server.console]\nservice_account_key = \"{}\"\ngmail_api_url = \"{}\"\n\
             kacls_url = \"https://kacls.example.com/google_cse\"\nbatch_dir = \"{}\"\n",
            idp.config(),
            emulator.key_file.display(),
            emulator.url,
            env.path("batches").display()
        ),
    );
    env.use_server(&server, &["admin"]);
    let issuer = env
        .run_as("admin", "--json kms certificates import -f pkcs12")
        .arg(pki.pkcs12("admin-ca.p12", "modern"))
        .then("-p")
        .arg(mailpki_test_support::TestPki::PASSWORD)
        .arg("admin-ca")
        .ok()
        .json()["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    env.run_as("admin", "kms sym keys create cse_key").ok();
    let csv = env.path("five users.csv");
    std::fs::write(&csv, format!("email\n{}\n", users.join("\n"))).unwrap();

    let shots = screenshots();
    let axe = axe();
    let browser = Browser::start(&driver);
    idp.sign_in_as("admin");
    browser.open(&format!("{}/console/batches", server.url));
    browser.click("a[href='/console/login/oidc']");
    browser.wait_until("the overview", |b| b.title() == "Overview · mailpki");
    browser.follow("a[href='/console/batches']");
    browser.type_into("#csv", &csv.display().to_string());
    browser.type_into("#issuer", &issuer);
    browser.type_into("#cse_key", "cse_key");
    browser.click("input[name=confirm]");
    browser.screenshot(&shots.join("batches.png"));
    if let Some(axe) = &axe {
        let found = violations(&browser, axe);
        assert!(found.is_empty(), "axe-core on batches: {found:#?}");
    }
    browser.follow(".stack button");
    assert!(
        browser.title().starts_with("Batch b-"),
        "{}",
        browser.text("main")
    );
    browser.wait_until("the batch to finish", |b| {
        b.text("#state").starts_with("finished")
    });
    assert_eq!(
        browser.text("#state"),
        "finished: 5 done, 0 skipped, 0 to retry later, 0 failed"
    );
    browser.screenshot(&shots.join("batch.png"));
    if let Some(axe) = &axe {
        let found = violations(&browser, axe);
        assert!(found.is_empty(), "axe-core on the batch: {found:#?}");
    }
    // The report, downloaded with the browser's session (a page may not fetch: the CSP).
    let session = browser.cookie("mailpki_session").expect("a session cookie");
    let link = browser.execute(
        "return document.querySelector('a[download]').getAttribute('href')",
        &[],
    );
    let download = http1(
        &server.url,
        "GET",
        link.as_str().unwrap(),
        &[("Cookie", &format!("mailpki_session={session}"))],
        None,
    );
    assert_eq!(download.status, 200);
    assert!(
        download
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    let report = download.body;
    for user in &users {
        assert!(
            report
                .lines()
                .any(|l| l.contains(user.as_str()) && l.contains(",done,")),
            "{user} in {report}"
        );
    }
    for user in &users {
        assert_eq!(emulator.in_gmail()[user.as_str()], (1, 1), "{user}");
    }
    // The user page shows what Gmail now holds for one of them.
    browser.open(&format!("{}/console/users?email={}", server.url, users[0]));
    let gmail = browser.text("main");
    assert!(gmail.contains("(identity)"), "{gmail}");
    browser.screenshot(&shots.join("user-gmail.png"));
    if let Some(axe) = &axe {
        let found = violations(&browser, axe);
        assert!(found.is_empty(), "axe-core on the user page: {found:#?}");
    }
    browser.open(&format!("{}/console/key-service", server.url));
    assert!(browser.text("main").contains("runs no key service"));
    // Batch progress in /metrics.
    let metrics = http1(&server.url, "GET", "/metrics", &[], None).body;
    assert!(
        metrics.contains("kind=\"onboard\",users=\"done\"} 5"),
        "{metrics}"
    );

    // Two of them leave: an offboarding batch from the same page.
    let leavers = env.path("leavers.csv");
    std::fs::write(&leavers, format!("email\n{}\n{}\n", users[0], users[1])).unwrap();
    browser.open(&format!("{}/console/batches", server.url));
    browser.click("#kind option[value=offboard]");
    browser.type_into("#csv", &leavers.display().to_string());
    browser.click("input[name=confirm]");
    browser.follow(".stack button");
    browser.wait_until("the offboarding to finish", |b| {
        b.text("#state").starts_with("finished")
    });
    assert_eq!(
        browser.text("#state"),
        "finished: 2 done, 0 skipped, 0 to retry later, 0 failed"
    );
    let in_gmail = emulator.in_gmail();
    assert_eq!(in_gmail[users[0].as_str()].1, 0, "no identity left");
    assert_eq!(in_gmail[users[2].as_str()], (1, 1), "the others stay");
    browser.open(&format!("{}/console/batches", server.url));
    assert_eq!(browser.find_all("tbody tr").len(), 2);

    browser.open(&format!(
        "{}/console/audit?operation=console.batch",
        server.url
    ));
    assert!(
        browser.text("tbody").contains("console.batch"),
        "{}",
        browser.text("main")
    );
}
