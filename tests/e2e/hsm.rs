//! Issuer and CSE keys in an HSM (SoftHSM2 over PKCS#11): an openssl-made issuing CA key goes
//! into the token (or is found there, put in by the token's own tool), leaves minted through
//! it pass openssl and pkilint, CRLs verify, the key is never exported, a token pulled out
//! stops minting with a clear error and nothing written, and the key service opens key pairs
//! wrapped by an AES key that lives in the token.

use mailpki_test_support::{SoftHsm, TestEnv, TestPki, openssl, s};

use crate::issuance::{assert_pkilint_clean, openssl_accepts};
use crate::{attributes, certificate_count, env_with_pki};

const JANE: &str = "CN=jane@example.com, emailAddress=jane@example.com";

/// A test home with a CA hierarchy and a SoftHSM token its `mailpki` uses.
fn env_with_token() -> Option<(TestEnv, TestPki, SoftHsm)> {
    let (env, pki) = env_with_pki();
    let hsm = SoftHsm::create(&env.path("hsm"), "mailpki-ca")?;
    hsm.attach(&env);
    Some((env, pki, hsm))
}

fn mint(env: &TestEnv, key: &str, id: &str) -> mailpki_test_support::Run {
    env.run("--json kms certificates certify -g -k")
        .arg(key)
        .then("--subject-name")
        .arg(JANE.replace("jane", id))
        .then("--certificate-id")
        .arg(id)
        .then(
            "--crl-url http://pki.example.com/i.crl --ca-issuers-url http://pki.example.com/i.crt",
        )
}

/// `kms certificates import --hsm` of the issuing CA as `ca`: its private key's ID.
fn import_into_token(env: &TestEnv, pki: &TestPki) -> String {
    env.run("--json kms certificates import -f pkcs12 --hsm")
        .arg(pki.pkcs12("issuing.p12", "modern"))
        .then("-p")
        .arg(TestPki::PASSWORD)
        .arg("ca")
        .ok()
        .json()["private_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn an_issuer_key_put_into_the_token_mints_what_openssl_and_pkilint_accept() {
    let Some((env, pki, _hsm)) = env_with_token() else {
        return;
    };
    let key = import_into_token(&env, &pki);
    let attrs = attributes(&env, &key);
    assert_eq!(attrs["key_location"], "hsm");
    assert_eq!(attrs["hsm_token"], "mailpki-ca");
    assert_eq!(attrs["CertificateLink"], "ca");
    assert_eq!(attributes(&env, "ca")["PrivateKeyLink"], key.as_str());

    // Nothing of the key in the store: not even sealed.
    let prime = pki.issuing_key_prime();
    let database = std::fs::read(env.data_dir().join("kms.sqlite")).unwrap();
    assert!(!mailpki_test_support::contains_bytes(&database, &prime));

    mint(&env, &key, "jane").ok();
    let pem = openssl_accepts(&env, &pki, "jane", &["smimesign", "smimeencrypt"]);
    assert_pkilint_clean(&pem);

    // A batch through the token: every file verifies.
    let csv = env.path("users.csv");
    std::fs::write(
        &csv,
        "email,subject,pkcs12_password\na@example.com,,pa\nb@example.com,,pb\nc@example.com,,pc\n",
    )
    .unwrap();
    env.run("--json kms certificates certify-batch -a p256 -k")
        .arg(&key)
        .then("--csv")
        .arg(&csv)
        .then("--out-dir")
        .arg(env.path("out"))
        .then("--crl-url http://pki.example.com/i.crl")
        .ok();
    for (user, password) in [("a", "pa"), ("b", "pb"), ("c", "pc")] {
        let p12 = env.path(&format!("out/{user}@example.com.p12"));
        let leaf = env.path(&format!("{user}.pem"));
        openssl(
            &pki.dir,
            [
                "pkcs12",
                "-in",
                &s(&p12),
                "-passin",
                &format!("pass:{password}"),
                "-clcerts",
                "-nokeys",
                "-out",
                &s(&leaf),
            ],
        );
        let out = openssl(
            &pki.dir,
            [
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuing.pem",
                &s(&leaf),
            ],
        );
        assert!(String::from_utf8_lossy(&out).contains(": OK"), "{user}");
    }

    // The CRL, signed through the token, verifies against the issuer.
    env.run("kms certificates revoke superseded -c jane").ok();
    let crl = env.path("ca.crl");
    env.run("kms crl create -k")
        .arg(&key)
        .then("--out")
        .arg(&crl)
        .ok();
    let text = openssl(
        &pki.dir,
        [
            "crl",
            "-inform",
            "DER",
            "-in",
            &s(&crl),
            "-CAfile",
            "issuing.pem",
            "-noout",
            "-text",
        ],
    );
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("Revoked Certificates"), "{text}");

    // The key never leaves: no PKCS#12 of the CA, no CSE wrapping of it.
    env.run("kms certificates export -c ca -f pkcs12 -p pw")
        .arg(env.path("ca-out.p12"))
        .fails(1)
        .stderr_has("never leaves the token");
    assert!(!env.path("ca-out.p12").exists());
}

#[test]
fn a_key_the_token_already_holds_is_recorded_and_signs() {
    let Some((env, pki, hsm)) = env_with_token() else {
        return;
    };
    // The token's administrators put the key in with the token's own tool.
    let pkcs8 = env.path("issuing.pk8");
    openssl(
        &pki.dir,
        [
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "issuing.key",
            "-out",
            &s(&pkcs8),
        ],
    );
    hsm.util(&[
        "--import",
        &s(&pkcs8),
        "--token",
        &hsm.token,
        "--label",
        "issuing-2027",
        "--id",
        "a1b2c3",
        "--pin",
        &hsm.pin,
    ]);
    // The root first, so the issuing CA chains to it.
    env.run("kms certificates import")
        .arg(pki.path("root.pem"))
        .arg("root")
        .ok();
    // The wrong certificate is refused: the token's key does not sign for it.
    env.run("kms keys import-hsm --label issuing-2027 --certificate")
        .arg(pki.path("root.pem"))
        .arg("wrong")
        .fails(1)
        .stderr_has("does not match");
    let report = env
        .run("--json kms keys import-hsm --label issuing-2027 --certificate")
        .arg(pki.path("issuing.pem"))
        .arg("ca")
        .ok()
        .json();
    assert_eq!(report["certificate"], "ca");
    let key = report["private_key"].as_str().unwrap().to_owned();
    let attrs = attributes(&env, &key);
    assert_eq!(attrs["hsm_key_id"], "a1b2c3");
    assert_eq!(attrs["hsm_key_label"], "issuing-2027");
    assert_eq!(attributes(&env, "ca")["CertificateLink"], "root");

    mint(&env, &key, "jane").ok();
    let pem = openssl_accepts(&env, &pki, "jane", &["smimesign"]);
    assert_pkilint_clean(&pem);
    // By ID too; an unknown label says what it looked for.
    env.run("kms keys import-hsm --hsm-id 00ff --certificate")
        .arg(pki.path("issuing.pem"))
        .fails(1)
        .stderr_has("the ID 00ff");
}

#[test]
fn a_token_that_is_gone_stops_minting_clearly_and_writes_nothing() {
    let Some((env, pki, hsm)) = env_with_token() else {
        return;
    };
    let key = import_into_token(&env, &pki);
    let p12 = pki.path("issuing.p12");
    let before = certificate_count(&env);
    {
        let _pulled = hsm.pull_out();
        mint(&env, &key, "jane")
            .fails(75)
            .stderr_has("no token labelled `mailpki-ca`");
        assert_eq!(certificate_count(&env), before);
        // An import into the missing token stores nothing either.
        env.run("kms certificates import -f pkcs12 --hsm")
            .arg(&p12)
            .then("-p")
            .arg(TestPki::PASSWORD)
            .arg("ca2")
            .fails(75);
        assert_eq!(certificate_count(&env), before);
    }
    // The PIN is read when the token is used: without it, what needs no HSM key still works.
    std::fs::remove_file(&hsm.pin_file).unwrap();
    env.run("kms certificates list").ok();
    mint(&env, &key, "jane")
        .fails(1)
        .stderr_has("the HSM PIN cannot be read");
    // A wrong PIN is said as such.
    std::fs::write(&hsm.pin_file, "0000\n").unwrap();
    mint(&env, &key, "jane")
        .fails(1)
        .stderr_has("the PIN is wrong");
    std::fs::write(&hsm.pin_file, format!("{}\n", hsm.pin)).unwrap();
    // Back in: minting works again.
    mint(&env, &key, "jane").ok();
    assert_eq!(certificate_count(&env), before + 1);

    // A module that cannot be loaded names itself.
    let config = env.home().join(".config/mailpki/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(&s(&hsm.module), "/nonexistent/libpkcs11.so"),
    )
    .unwrap();
    mint(&env, &key, "john")
        .fails(75)
        .stderr_has("cannot load the PKCS#11 module /nonexistent/libpkcs11.so");
}

#[test]
fn the_key_service_opens_key_pairs_wrapped_by_a_cse_key_in_the_token() {
    // Jane is onboarded with `--verify-kacls`: the server wrapped her key through the token
    // and the key service opened it there to prove it.
    let Some(svc) = crate::kacls::service_in_hsm() else {
        return;
    };
    let attrs = svc.env.run("kms attributes get -i cse_key").ok().json();
    assert_eq!(attrs["key_location"], "hsm");
    assert_eq!(attrs["hsm_token"], "mailpki-cse");
    // Gmail asks for a signature: it verifies with Jane's certificate.
    let digest = openssl::sha::sha256(b"a message Jane signs");
    let (status, reply) = svc.sign(&digest, "SHA256withRSA");
    assert_eq!(status, 200, "{reply}");
    let signature = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        reply["signature"].as_str().unwrap(),
    )
    .unwrap();
    let public = svc.public_key();
    let rsa = public.rsa().unwrap();
    let mut recovered = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_decrypt(&signature, &mut recovered, openssl::rsa::Padding::PKCS1)
        .unwrap();
    assert!(recovered[..n].ends_with(&digest));
    // Keys made in the token are AES-256, as Gmail CSE wrapping needs.
    svc.env
        .run("kms sym keys create --hsm -l 128 other")
        .fails(1)
        .stderr_has("AES-256");
}

/// The server holds the issuer in its token: a client imports the CA with `--hsm`, mints
/// through the server, revokes; the published CRL and the OCSP answers, signed through the
/// token, pass `openssl verify -crl_check` and `openssl ocsp`.
#[test]
fn a_server_signs_leaves_crls_and_ocsp_answers_through_its_token() {
    use crate::revocation::{leaf, publishing_server, verify_with_crl};
    let (env, pki) = env_with_pki();
    let Some(hsm) = SoftHsm::create(&env.path("hsm"), "server-ca") else {
        return;
    };
    env.set_env("SOFTHSM2_CONF", &hsm.conf);
    let (_server, publish) = publishing_server(&env, &hsm.config());
    let key = import_into_token(&env, &pki);
    assert_eq!(attributes(&env, &key)["key_location"], "hsm");
    let jane = leaf(&env, &key, "jane@example.com");
    let kim = leaf(&env, &key, "kim@example.com");
    env.run("kms certificates revoke keyCompromise -c")
        .arg(&jane)
        .ok();

    let reply = mailpki_test_support::http1(&publish, "GET", "/crl/ca.crl", &[], None);
    assert_eq!(reply.status, 200);
    let crl = env.path("published.crl.pem");
    let pem = openssl::x509::X509Crl::from_der(&reply.bytes)
        .unwrap()
        .to_pem()
        .unwrap();
    std::fs::write(&crl, pem).unwrap();
    assert!(verify_with_crl(&env, &pki, &jane, &crl).contains("certificate revoked"));
    assert!(verify_with_crl(&env, &pki, &kim, &crl).contains(": OK"));

    let out = std::process::Command::new("openssl")
        .current_dir(&pki.dir)
        .args(["ocsp", "-issuer", "issuing.pem", "-CAfile", "root.pem"])
        .args(["-verify_other", "issuing.pem", "-cert"])
        .arg(env.path(&format!("{jane}.pem")))
        .arg("-cert")
        .arg(env.path(&format!("{kim}.pem")))
        .args(["-url", &format!("{publish}/ocsp"), "-resp_text"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains(&format!("{jane}.pem: revoked")), "{text}");
    assert!(text.contains(&format!("{kim}.pem: good")), "{text}");
}
