//! `kms certificates export`: PEM, DER, PKCS#12 (modern and legacy), judged by openssl.

use mailpki_test_support::{TestPki, openssl, s};

use crate::{env_with_pki, import_issuer};

#[test]
fn pem_and_der_exports_match_the_original() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    let pem = env.path("out.pem");
    env.run("kms certificates export -c ca").arg(&pem).ok();
    assert_eq!(
        std::fs::read(&pem).unwrap(),
        std::fs::read(pki.path("issuing.pem")).unwrap()
    );
    let der = env.path("out.der");
    env.run("kms certificates export -i ca -f der")
        .arg(&der)
        .ok();
    let expected = openssl(&pki.dir, ["x509", "-in", "issuing.pem", "-outform", "DER"]);
    assert_eq!(std::fs::read(&der).unwrap(), expected);
    // An existing file is kept unless --force.
    env.run("kms certificates export -c ca")
        .arg(&pem)
        .fails(1)
        .stderr_has("already exists");
    env.run("kms certificates export -c ca --force")
        .arg(&pem)
        .ok();
}

#[test]
fn pem_chain_export_verifies_with_openssl() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    let chain = env.path("chain.pem");
    env.run("kms certificates export -c ca --chain")
        .arg(&chain)
        .ok();
    let text = std::fs::read_to_string(&chain).unwrap();
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 2);
    openssl(&pki.dir, ["verify", "-CAfile", "root.pem", &s(&chain)]);
}

#[test]
fn pkcs12_export_round_trips_through_openssl_and_is_private() {
    let (env, pki) = env_with_pki();
    import_issuer(&env, &pki, "ca");
    for (name, extra) in [("modern.p12", None), ("legacy.p12", Some("--legacy"))] {
        let out = env.path(name);
        let mut args = vec![
            "kms",
            "certificates",
            "export",
            "-c",
            "ca",
            "-f",
            "pkcs12",
            "-p",
            "exportpw",
        ];
        args.extend(extra);
        let out_s = s(&out);
        args.push(&out_s);
        env.mailpki(args).ok();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        // openssl reads it: the key, the leaf and the root are inside, and the key matches.
        let dump = openssl(
            &pki.dir,
            [
                "pkcs12",
                "-in",
                &out_s,
                "-passin",
                "pass:exportpw",
                "-nodes",
            ],
        );
        let dump = String::from_utf8(dump).unwrap();
        assert_eq!(dump.matches("BEGIN CERTIFICATE").count(), 2, "{name}");
        assert!(dump.contains("BEGIN PRIVATE KEY"), "{name}");
        let info = openssl(
            &pki.dir,
            [
                "pkcs12",
                "-in",
                &out_s,
                "-passin",
                "pass:exportpw",
                "-info",
                "-noout",
            ],
        );
        let info = String::from_utf8(info).unwrap();
        let _ = info; // openssl prints the PBE details on stderr; success is the check here.
    }
    // And mailpki reads its own export back.
    env.run("kms certificates import -f pkcs12")
        .arg(env.path("legacy.p12"))
        .then("-p exportpw again")
        .ok();
}

#[test]
fn pkcs12_export_needs_a_password_and_a_key() {
    let (env, pki) = env_with_pki();
    env.run("kms certificates import")
        .arg(pki.path("root.pem"))
        .then("root")
        .ok();
    let out = s(&env.path("x.p12"));
    env.run("kms certificates export -c root -f pkcs12")
        .arg(&out)
        .fails(1)
        .stderr_has("needs a password");
    env.run("kms certificates export -c root -f pkcs12 -p pw")
        .arg(&out)
        .fails(1)
        .stderr_has("has no PrivateKeyLink");
    assert!(!env.path("x.p12").exists());
    let _ = TestPki::PASSWORD;
}
