//! Revocation: RFC 5280 reasons and dates recorded on revoke, and CRLs that `openssl`,
//! `openssl verify -crl_check` and pkilint's CRL linter accept.

use std::process::Command;

use mailpki_test_support::{TestEnv, TestPki, openssl, pkilint_crl_errors, s};

use crate::{attributes, env_with_pki, issuer_key};

/// Mints a leaf for `user` with the built-in profile and writes its PEM; returns its ID.
pub(crate) fn leaf(env: &TestEnv, key: &str, user: &str) -> String {
    let id = user.split('@').next().unwrap().to_owned();
    env.run("kms certificates certify -g -k")
        .arg(key)
        .then("--subject-name")
        .arg(format!("CN={user}, emailAddress={user}"))
        .then("--crl-url http://pki.example.com/issuing.crl --certificate-id")
        .arg(&id)
        .ok();
    env.run("kms certificates export -c")
        .arg(&id)
        .arg(env.path(&format!("{id}.pem")))
        .ok();
    id
}

/// `openssl verify -crl_check` of a leaf against the test hierarchy and `crl`: its output.
pub(crate) fn verify_with_crl(
    env: &TestEnv,
    pki: &TestPki,
    id: &str,
    crl: &std::path::Path,
) -> String {
    verify_with_crls(env, pki, id, "-crl_check", &[crl])
}

/// `openssl verify` of a leaf with `check` (`-crl_check`, `-crl_check_all`) and `crls`.
fn verify_with_crls(
    env: &TestEnv,
    pki: &TestPki,
    id: &str,
    check: &str,
    crls: &[&std::path::Path],
) -> String {
    let mut command = Command::new("openssl");
    command.current_dir(&pki.dir).args([
        "verify",
        check,
        "-CAfile",
        "root.pem",
        "-untrusted",
        "issuing.pem",
    ]);
    for crl in crls {
        command.arg("-CRLfile").arg(crl);
    }
    let out = command
        .arg(env.path(&format!("{id}.pem")))
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_crl_lists_revoked_certificates_with_reasons_and_openssl_enforces_it() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let [jane, john, kim] =
        ["jane@example.com", "john@example.com", "kim@example.com"].map(|u| leaf(&env, &key, u));
    let for_jane = env
        .run("--json kms certificates list --email JANE@Example.com")
        .ok()
        .json();
    assert_eq!(for_jane.as_array().unwrap().len(), 1, "{for_jane}");
    assert_eq!(for_jane[0]["unique_identifier"], jane.as_str());

    env.run("kms certificates revoke")
        .arg("keyCompromise: laptop stolen")
        .then("-c")
        .arg(&jane)
        .ok();
    let revoked = attributes(&env, &jane);
    assert_eq!(revoked["state"], "Compromised");
    assert_eq!(revoked["revocation_reason"], "keyCompromise: laptop stolen");
    assert!(revoked["revocation_date"].is_string(), "{revoked}");
    env.run("kms certificates revoke Superseded -c")
        .arg(&john)
        .ok();

    // Bad input changes nothing.
    env.run("kms certificates revoke")
        .arg("left the company")
        .then("-c")
        .arg(&kim)
        .fails(1)
        .stderr_has("unknown revocation reason `left the company`");
    env.run("kms certificates revoke superseded -c")
        .arg(&john)
        .fails(1)
        .stderr_has("already revoked (superseded)");
    assert_eq!(attributes(&env, &kim)["state"], "Active");

    let crl = env.path("issuing.crl");
    let out = env
        .run("--json kms crl create --days 3 -k")
        .arg(&key)
        .then("--out")
        .arg(&crl)
        .ok()
        .json();
    assert_eq!(
        (out["crl_number"].as_i64(), out["revoked"].as_u64()),
        (Some(1), Some(2))
    );

    let text = String::from_utf8(openssl(
        &pki.dir,
        [
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-CAfile",
            "issuing.pem",
            "-in",
            &s(&crl),
        ],
    ))
    .unwrap();
    assert!(text.contains("X509v3 CRL Number"), "{text}");
    assert!(
        text.contains("Key Compromise") && text.contains("Superseded"),
        "{text}"
    );
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    let verified = Command::new("openssl")
        .current_dir(&pki.dir)
        .args([
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-CAfile",
            "issuing.pem",
            "-in",
        ])
        .arg(&crl)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&verified.stderr).contains("verify OK"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The same CRL in PEM, for openssl verify: revoked leaves fail, the others pass.
    let pem = env.path("issuing.crl.pem");
    let again = env
        .run("--json kms crl create --pem -k")
        .arg(&key)
        .then("--out")
        .arg(&pem)
        .ok()
        .json();
    assert_eq!(again["crl_number"], 2, "CRL numbers only grow");
    for (id, revoked) in [(&jane, true), (&john, true), (&kim, false)] {
        let verdict = verify_with_crl(&env, &pki, id, &pem);
        if revoked {
            assert!(verdict.contains("certificate revoked"), "{id}: {verdict}");
        } else {
            assert!(verdict.contains(": OK"), "{id}: {verdict}");
        }
    }

    if let Some(errors) = pkilint_crl_errors(&crl, "BR") {
        assert!(errors.is_empty(), "pkilint: {errors:?}");
    }
}

/// The whole chain checked (`-crl_check_all`): the root's key signs the CRL that covers the
/// issuing CA, the issuing CA's the one that covers its leaves; revoking the issuing CA at the
/// root takes every leaf with it.
#[test]
fn crls_for_every_level_satisfy_crl_check_all() {
    let (env, pki) = env_with_pki();
    openssl(
        &pki.dir,
        [
            "pkcs12",
            "-export",
            "-inkey",
            "root.key",
            "-in",
            "root.pem",
            "-out",
            "root.p12",
            "-passout",
            &format!("pass:{}", TestPki::PASSWORD),
        ],
    );
    let root_key = env
        .run("--json kms certificates import -f pkcs12")
        .arg(pki.path("root.p12"))
        .then("-p")
        .arg(TestPki::PASSWORD)
        .arg("root")
        .ok()
        .json()["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = issuer_key(&env, &pki);
    let [jane, kim] = ["jane@example.com", "kim@example.com"].map(|u| leaf(&env, &key, u));
    env.run("kms certificates revoke keyCompromise -c")
        .arg(&jane)
        .ok();
    let crl = |key: &str, name: &str| {
        let path = env.path(name);
        env.run("kms crl create --pem -k")
            .arg(key)
            .then("--out")
            .arg(&path)
            .ok();
        path
    };
    let (issuing_crl, root_crl) = (crl(&key, "issuing.crl.pem"), crl(&root_key, "root.crl.pem"));
    let both = [issuing_crl.as_path(), root_crl.as_path()];
    let kim_verdict = verify_with_crls(&env, &pki, &kim, "-crl_check_all", &both);
    assert!(kim_verdict.contains(": OK"), "{kim_verdict}");
    let jane_verdict = verify_with_crls(&env, &pki, &jane, "-crl_check_all", &both);
    assert!(
        jane_verdict.contains("certificate revoked"),
        "{jane_verdict}"
    );
    let without_root = verify_with_crls(&env, &pki, &kim, "-crl_check_all", &both[..1]);
    assert!(
        without_root.contains("unable to get certificate CRL"),
        "the root's CRL is what covers the issuing CA: {without_root}"
    );

    env.run("kms certificates revoke cACompromise -c ca").ok();
    let root_crl = crl(&root_key, "root.crl.pem");
    let text = String::from_utf8(openssl(
        &pki.dir,
        ["crl", "-noout", "-text", "-in", &s(&root_crl)],
    ))
    .unwrap();
    assert!(text.contains("CA Compromise"), "{text}");
    let kim_verdict = verify_with_crls(
        &env,
        &pki,
        &kim,
        "-crl_check_all",
        &[issuing_crl.as_path(), root_crl.as_path()],
    );
    assert!(
        kim_verdict.contains("certificate revoked"),
        "the issuing CA is revoked: {kim_verdict}"
    );
}

#[test]
fn a_crl_needs_a_ca_key() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let jane = leaf(&env, &key, "jane@example.com");
    let jane_key = attributes(&env, &jane)["PrivateKeyLink"]
        .as_str()
        .unwrap()
        .to_owned();
    env.run("kms crl create -k")
        .arg(&jane_key)
        .fails(1)
        .stderr_has("cannot use");
}

/// Through `mailpki server`: the same revocation and CRL, the issuer key staying there, the
/// CRL signing audited on the key.
#[test]
fn a_crl_is_signed_by_the_server() {
    let (env, pki) = env_with_pki();
    let server = env.start_server(&s(&env.path("server-data/kms.sqlite")), "");
    env.use_server(&server, &["alice"]);
    let key = issuer_key(&env, &pki);
    let jane = leaf(&env, &key, "jane@example.com");
    env.run("kms certificates revoke privilegeWithdrawn -c")
        .arg(&jane)
        .ok();
    let pem = env.path("issuing.crl.pem");
    env.run("kms crl create --pem -k")
        .arg(&key)
        .then("--out")
        .arg(&pem)
        .ok();
    assert!(verify_with_crl(&env, &pki, &jane, &pem).contains("certificate revoked"));
    let audit = server
        .on_host(&env, "--json server audit --actor alice")
        .ok()
        .json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "crl" && e["object"] == key.as_str()),
        "{audit}"
    );
}

/// The expiry report: each user certificate's status, and with Gmail where it is and what
/// Gmail holds that the store does not.
#[test]
fn the_expiry_report_says_what_expires_is_revoked_and_where_it_is() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let users = ["ann@example.com", "bob@example.com"];
    let emulator = env.start_emulator(&users, &pki.path("root.pem"));
    let mint = |id: &str, user: &str, days: &str| {
        env.run("kms certificates certify -g -k")
            .arg(&key)
            .then("--subject-name")
            .arg(format!("CN={user}, emailAddress={user}"))
            .then("--days")
            .arg(days)
            .then("--certificate-id")
            .arg(id)
            .ok();
    };
    mint("ann-long", users[0], "365");
    mint("ann-short", users[0], "10");
    mint("bob-old", users[1], "365");
    env.run("kms certificates revoke superseded -c bob-old")
        .ok();
    emulator
        .run(
            &env,
            "google smime insert --certificate-id ann-short --user-id",
        )
        .arg(users[0])
        .ok();
    // A certificate Gmail has for Bob that the store never saw.
    let outside = pki.openssl_leaf(
        "bob-outside",
        "/CN=bob@example.com/emailAddress=bob@example.com",
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/user.ext"
        ))
        .unwrap(),
        &["-newkey", "rsa:2048"],
        &["-extensions", "v3_user"],
    );
    openssl(
        &pki.dir,
        [
            "pkcs12",
            "-export",
            "-inkey",
            "bob-outside.key",
            "-in",
            &s(&outside),
            "-certfile",
            "issuing.pem",
            "-passout",
            "pass:pw",
            "-out",
            "bob-outside.p12",
        ],
    );
    emulator
        .run(
            &env,
            "google smime insert --pkcs12-password pw --pkcs12-file",
        )
        .arg(pki.path("bob-outside.p12"))
        .then("--user-id")
        .arg(users[1])
        .ok();

    let rows = emulator
        .run(&env, "--json report expiry --within 30 --gmail")
        .ok()
        .json();
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| pred(r))
            .cloned()
            .unwrap_or_else(|| panic!("{rows}"))
    };
    let by_id = |id: &str| find(&|r| r["certificate_id"] == id);
    assert_eq!(
        (
            by_id("ann-long")["status"].as_str(),
            by_id("ann-long")["gmail"].as_str()
        ),
        (Some("valid"), Some("not in gmail"))
    );
    assert_eq!(
        (
            by_id("ann-short")["status"].as_str(),
            by_id("ann-short")["gmail"].as_str()
        ),
        (Some("expiring"), Some("hosted s/mime"))
    );
    assert_eq!(by_id("bob-old")["status"], "revoked");
    let only = find(&|r| r["certificate_id"].is_null());
    assert_eq!(
        (only["user"].as_str(), only["gmail"].as_str()),
        (Some("bob@example.com"), Some("gmail only (hosted s/mime)"))
    );

    let csv = env.run("report expiry --format csv").ok().stdout();
    assert!(
        csv.starts_with("issuer,user,status,not_after,gmail,certificate_id,serial_number"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
}

/// `mailpki server` for `alice` with `[server.publish]` on a free port, plus `extra` lines of
/// that section (`base_url = ` at the end of `extra` is completed with the listener's URL);
/// the server handle and the listener's URL.
pub(crate) fn publishing_server(
    env: &TestEnv,
    extra: &str,
) -> (mailpki_test_support::ServerProcess, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("http://127.0.0.1:{port}");
    let extra = match extra.strip_suffix("base_url = ") {
        Some(rest) => format!("{rest}base_url = \"{publish}/\"\n"),
        None => extra.to_owned(),
    };
    let server = env.start_server(
        &s(&env.path("server-data/kms.sqlite")),
        &format!("[server.publish]\nlisten = \"127.0.0.1:{port}\"\nactor = \"alice\"\n{extra}"),
    );
    env.use_server(&server, &["alice"]);
    (server, publish)
}

/// The publication listener of `mailpki server`: the CA certificate, a CRL that follows
/// revocations, and OCSP answers that `openssl ocsp` verifies (POST and GET), for good,
/// revoked and unknown certificates; pkilint's OCSP linter finds no error.
#[test]
fn the_server_publishes_crls_and_answers_ocsp() {
    use mailpki_test_support::{http1, pkilint_ocsp_errors};
    let (env, pki) = env_with_pki();
    let (_server, publish) = publishing_server(&env, "");
    let key = issuer_key(&env, &pki);
    let jane = leaf(&env, &key, "jane@example.com");
    let kim = leaf(&env, &key, "kim@example.com");
    // Made by the issuing CA outside mailpki: unknown to the responder.
    let stranger = pki.openssl_leaf(
        "stranger",
        "/CN=x@example.com/emailAddress=x@example.com",
        "basicConstraints=CA:FALSE\n",
        &["-newkey", "rsa:2048"],
        &[],
    );

    let ca = http1(&publish, "GET", "/ca/ca.crt", &[], None);
    assert_eq!(
        (ca.status, ca.header("content-type")),
        (200, Some("application/pkix-cert"))
    );
    assert_eq!(
        openssl::x509::X509::from_der(&ca.bytes)
            .unwrap()
            .to_pem()
            .unwrap(),
        openssl::x509::X509::from_pem(&std::fs::read(pki.path("issuing.pem")).unwrap())
            .unwrap()
            .to_pem()
            .unwrap()
    );
    assert_eq!(
        http1(&publish, "GET", &format!("/ca/{jane}.crt"), &[], None).status,
        404
    );
    assert_eq!(
        http1(&publish, "GET", "/v1/health", &[], None).status,
        404,
        "no API here"
    );

    let crl_now = || {
        let reply = http1(&publish, "GET", "/crl/ca.crl", &[], None);
        assert_eq!(reply.header("content-type"), Some("application/pkix-crl"));
        let path = env.path("published.crl.pem");
        std::fs::write(
            &path,
            openssl::x509::X509Crl::from_der(&reply.bytes)
                .unwrap()
                .to_pem()
                .unwrap(),
        )
        .unwrap();
        path
    };
    assert!(verify_with_crl(&env, &pki, &jane, &crl_now()).contains(": OK"));
    env.run("kms certificates revoke keyCompromise -c")
        .arg(&jane)
        .ok();
    assert!(
        verify_with_crl(&env, &pki, &jane, &crl_now()).contains("certificate revoked"),
        "the CRL follows the revocation at once"
    );

    // OCSP over POST, as openssl sends it, with a nonce and a verified signature.
    let out = Command::new("openssl")
        .current_dir(&pki.dir)
        .args([
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "issuing.pem",
        ])
        .arg("-cert")
        .arg(env.path(&format!("{jane}.pem")))
        .arg("-cert")
        .arg(env.path(&format!("{kim}.pem")))
        .arg("-cert")
        .arg(&stranger)
        .args([
            "-url",
            &format!("{publish}/ocsp"),
            "-resp_text",
            "-respout",
            "resp.der",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(!text.contains("WARNING"), "the nonce comes back: {text}");
    assert!(text.contains(&format!("{jane}.pem: revoked")), "{text}");
    assert!(text.contains("Reason: keyCompromise"), "{text}");
    assert!(text.contains(&format!("{kim}.pem: good")), "{text}");
    assert!(text.contains("stranger.pem: unknown"), "{text}");
    if let Some(errors) = pkilint_ocsp_errors(&pki.path("resp.der")) {
        assert!(errors.is_empty(), "pkilint: {errors:?}");
    }

    // GET, RFC 6960 appendix A.1.
    openssl(
        &pki.dir,
        [
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
            "-cert",
            &s(&env.path(&format!("{kim}.pem"))),
        ],
    );
    let request = std::fs::read(pki.path("req.der")).unwrap();
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &request);
    let reply = http1(&publish, "GET", &format!("/ocsp/{encoded}"), &[], None);
    assert_eq!(
        reply.header("content-type"),
        Some("application/ocsp-response")
    );
    std::fs::write(pki.path("get.der"), &reply.bytes).unwrap();
    let got = String::from_utf8(openssl(
        &pki.dir,
        ["ocsp", "-respin", "get.der", "-resp_text", "-noverify"],
    ))
    .unwrap();
    assert!(got.contains("Cert Status: good"), "{got}");

    // An issuer that is not ours is unauthorized; garbage is malformedRequest.
    openssl(
        &pki.dir,
        [
            "ocsp",
            "-issuer",
            "root.pem",
            "-cert",
            "issuing.pem",
            "-reqout",
            "root-req.der",
        ],
    );
    let foreign = std::fs::read(pki.path("root-req.der")).unwrap();
    let refused = http1(
        &publish,
        "POST",
        "/ocsp",
        &[("content-type", "application/ocsp-request")],
        Some(&foreign),
    );
    assert_eq!(refused.bytes, [0x30, 0x03, 0x0a, 0x01, 0x06]);
    let bad = http1(
        &publish,
        "POST",
        "/ocsp",
        &[("content-type", "application/ocsp-request")],
        Some(b"not der"),
    );
    assert_eq!(bad.bytes, [0x30, 0x03, 0x0a, 0x01, 0x01]);
}

/// With `base_url`, certificates minted with the built-in profile point at the listener, and
/// the URLs they carry are the ones that answer. A delegated responder signs the OCSP answers
/// (openssl checks it chains to the issuer and may sign them), and an answer kept for a
/// nonce-less request is replaced as soon as the certificate is revoked.
#[test]
fn certificates_point_at_the_listener_and_a_delegated_responder_answers() {
    use mailpki_test_support::{http1, pkilint_ocsp_errors};
    let (env, pki) = env_with_pki();
    let (_server, publish) = publishing_server(&env, "ocsp_signer = \"delegated\"\nbase_url = ");
    let key = issuer_key(&env, &pki);
    env.run("kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name")
        .arg("CN=jane@example.com, emailAddress=jane@example.com")
        .then("--certificate-id jane")
        .ok();
    env.run("kms certificates export -c jane")
        .arg(env.path("jane.pem"))
        .ok();
    let jane_pem = s(&env.path("jane.pem"));
    let text = String::from_utf8(openssl(
        &pki.dir,
        ["x509", "-noout", "-text", "-in", &jane_pem],
    ))
    .unwrap();
    for url in [
        format!("URI:{publish}/crl/ca.crl"),
        format!("CA Issuers - URI:{publish}/ca/ca.crt"),
        format!("OCSP - URI:{publish}/ocsp"),
    ] {
        assert!(text.contains(&url), "{url} missing: {text}");
    }
    let ocsp_url = String::from_utf8(openssl(
        &pki.dir,
        ["x509", "-noout", "-ocsp_uri", "-in", &jane_pem],
    ))
    .unwrap()
    .trim()
    .to_owned();
    assert_eq!(http1(&publish, "GET", "/crl/ca.crl", &[], None).status, 200);

    let ask = |nonce: bool| {
        let mut command = Command::new("openssl");
        command.current_dir(&pki.dir).args([
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-CAfile",
            "root.pem",
            "-verify_other",
            "issuing.pem",
            "-cert",
            &jane_pem,
            "-url",
            &ocsp_url,
            "-resp_text",
            "-respout",
            "delegated.der",
        ]);
        if !nonce {
            command.arg("-no_nonce");
        }
        let out = command.output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let good = ask(false);
    assert!(good.contains("Response verify OK"), "{good}");
    assert!(good.contains("jane.pem: good"), "{good}");
    assert!(
        good.contains("OCSP Signing"),
        "the responder's certificate: {good}"
    );
    assert!(good.contains("OCSP No Check"), "{good}");
    assert!(
        good.contains("Test Issuing CA OCSP Responder") || good.contains("OCSP Responder"),
        "{good}"
    );
    if let Some(errors) = pkilint_ocsp_errors(&pki.path("delegated.der")) {
        assert!(errors.is_empty(), "pkilint: {errors:?}");
    }
    assert!(ask(false).contains("jane.pem: good"), "kept");

    // Hashes the responder does not know, oversized bodies and garbage GETs change nothing.
    openssl(
        &pki.dir,
        [
            "ocsp",
            "-issuer",
            "issuing.pem",
            "-sha384",
            "-cert",
            &jane_pem,
            "-reqout",
            "sha384.der",
        ],
    );
    let sha384 = std::fs::read(pki.path("sha384.der")).unwrap();
    let post = |body: &[u8]| {
        http1(
            &publish,
            "POST",
            "/ocsp",
            &[("content-type", "application/ocsp-request")],
            Some(body),
        )
    };
    assert_eq!(post(&sha384).bytes, [0x30, 0x03, 0x0a, 0x01, 0x06]);
    assert_eq!(post(&vec![0x30; 64 * 1024]).status, 413);
    let garbage = http1(&publish, "GET", "/ocsp/%%%not-base64", &[], None);
    assert_eq!(garbage.bytes, [0x30, 0x03, 0x0a, 0x01, 0x01]);

    env.run("kms certificates revoke affiliationChanged -c jane")
        .ok();
    for nonce in [false, true] {
        let revoked = ask(nonce);
        assert!(revoked.contains("Response verify OK"), "{revoked}");
        assert!(
            revoked.contains("jane.pem: revoked") && revoked.contains("affiliationChanged"),
            "nonce {nonce}: {revoked}"
        );
    }
}
