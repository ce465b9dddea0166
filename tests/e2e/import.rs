//! `kms certificates import` and `kms attributes get`: every format, link following, bad input.

use mailpki_test_support::{TestPki, openssl};
use serde_json::Value;

use crate::{attributes, certificate_count, env, env_with_pki, import_issuer};

#[test]
fn pkcs12_import_splits_and_links_the_issuer_ca() {
    let (env, pki) = env_with_pki();
    let report = import_issuer(&env, &pki, "issuer_ca_certificate");
    assert_eq!(report["certificate"], "issuer_ca_certificate");
    let private_id = report["private_key"].as_str().unwrap();
    let public_id = report["public_key"].as_str().unwrap();
    let chain = report["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 1, "the root travels in the PKCS#12");

    let cert = attributes(&env, "issuer_ca_certificate");
    assert_eq!(cert["object_type"], "Certificate");
    assert_eq!(cert["PrivateKeyLink"], private_id);
    assert_eq!(cert["PublicKeyLink"], public_id);
    assert_eq!(cert["CertificateLink"], chain[0]);
    assert_eq!(
        cert["certificate_subject"],
        "C=FR, O=Test Org, CN=Test Issuing CA"
    );
    assert_eq!(cert["certificate_is_ca"], true);
    assert_eq!(cert["cryptographic_algorithm"], "RSA");
    assert_eq!(cert["cryptographic_length"], 2048);
    assert_eq!(cert["owner"], "alice");

    // Links lead back: key ↔ key, keys → certificate, root has no issuer link.
    let private = attributes(&env, private_id);
    assert_eq!(private["object_type"], "PrivateKey");
    assert_eq!(private["PublicKeyLink"], public_id);
    assert_eq!(private["CertificateLink"], "issuer_ca_certificate");
    let public = attributes(&env, public_id);
    assert_eq!(public["object_type"], "PublicKey");
    assert_eq!(public["PrivateKeyLink"], private_id);
    let root = attributes(&env, chain[0].as_str().unwrap());
    assert_eq!(
        root["certificate_subject"],
        "C=FR, O=Test Org, CN=Test Root CA"
    );
    assert!(root.get("CertificateLink").is_none(), "{root}");

    // The fingerprint is the one openssl computes.
    let fp = openssl(
        &pki.dir,
        [
            "x509",
            "-in",
            "issuing.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    let fp = String::from_utf8(fp)
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(cert["certificate_sha256_fingerprint"], fp.as_str());
}

#[test]
fn attributes_can_be_picked_and_written_to_a_file() {
    let (env, pki) = env_with_pki();
    let report = import_issuer(&env, &pki, "ca");
    let picked = env
        .run("kms attributes get -i ca -a PrivateKeyLink -a state")
        .ok()
        .json();
    assert_eq!(
        picked,
        serde_json::json!({"PrivateKeyLink": report["private_key"], "state": "Active"})
    );
    env.run("kms attributes get -i ca -a colour")
        .fails(1)
        .stderr_has("unknown attribute `colour`");
    let out = env.path("attrs.json");
    env.run("kms attributes get -i ca -o").arg(&out).ok();
    let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(written["unique_identifier"], "ca");
}

#[test]
fn legacy_and_3des_pkcs12_files_import() {
    let (env, pki) = env_with_pki();
    for profile in ["legacy", "3des"] {
        let p12 = pki.pkcs12(&format!("{profile}.p12"), profile);
        let report = env
            .run("--json kms certificates import -f pkcs12")
            .arg(&p12)
            .then("-p")
            .arg(TestPki::PASSWORD)
            .arg(profile)
            .ok()
            .json();
        assert_eq!(report["certificate"], profile);
        assert!(report["private_key"].is_string(), "{profile}: {report}");
    }
    // Both imports reuse one stored copy of the root.
    let legacy = attributes(&env, "legacy");
    let des = attributes(&env, "3des");
    assert_eq!(legacy["CertificateLink"], des["CertificateLink"]);
    assert_eq!(certificate_count(&env), 3);
}

#[test]
fn wrong_password_says_so_and_stores_nothing() {
    let (env, pki) = env_with_pki();
    let p12 = pki.pkcs12("ca.p12", "modern");
    env.run("kms certificates import -f pkcs12")
        .arg(&p12)
        .then("-p wrong ca")
        .fails(1)
        .stderr_has("password is wrong");
    assert_eq!(certificate_count(&env), 0);
    env.run("kms attributes get -i ca")
        .fails(1)
        .stderr_has("no object with ID `ca`");
}

/// Without `-p` and without a terminal to ask on, the file needs a password: not "wrong".
#[test]
fn a_protected_pkcs12_without_a_password_asks_for_one() {
    let (env, pki) = env_with_pki();
    let p12 = pki.pkcs12("ca.p12", "modern");
    env.run("kms certificates import -f pkcs12")
        .arg(&p12)
        .then("ca")
        .fails(1)
        .stderr_has("is protected by a password: give it with -p");
    assert_eq!(certificate_count(&env), 0);
}

#[test]
fn password_comes_from_a_file_or_the_environment() {
    let (env, pki) = env_with_pki();
    let p12 = pki.pkcs12("ca.p12", "modern");
    let pw = env.path("pw.txt");
    std::fs::write(&pw, format!("{}\n", TestPki::PASSWORD)).unwrap();
    env.run("kms certificates import -f pkcs12")
        .arg(&p12)
        .then("--password-file")
        .arg(&pw)
        .then("a")
        .ok();
    env.run("kms certificates import -f pkcs12")
        .arg(&p12)
        .then("b")
        .env("MAILPKI_PKCS12_PASSWORD", TestPki::PASSWORD)
        .ok();
}

#[test]
fn truncated_garbage_and_missing_files_are_refused_cleanly() {
    let (env, pki) = env_with_pki();
    let p12 = pki.pkcs12("ca.p12", "modern");
    let bytes = std::fs::read(&p12).unwrap();
    let truncated = env.path("truncated.p12");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    env.run("kms certificates import -f pkcs12")
        .arg(&truncated)
        .then("-p")
        .arg(TestPki::PASSWORD)
        .fails(1)
        .stderr_has("not a valid PKCS#12 file");
    // A PEM given as PKCS#12.
    env.run("kms certificates import -f pkcs12")
        .arg(pki.path("issuing.pem"))
        .fails(1)
        .stderr_has("not a valid PKCS#12 file")
        .stderr_has("hint: is it a PEM or DER file?");
    // A truncated PEM.
    let pem = std::fs::read_to_string(pki.path("issuing.pem")).unwrap();
    let cut = env.path("cut.pem");
    std::fs::write(&cut, &pem[..pem.len() / 2]).unwrap();
    env.run("kms certificates import")
        .arg(&cut)
        .fails(1)
        .stderr_has("truncated");
    env.run("kms certificates import no-such-file.p12")
        .fails(1)
        .stderr_has("cannot read no-such-file.p12");
    env.run("kms certificates import -f jks x.jks").fails(2);
    // Random bytes as DER.
    let junk = env.path("junk.der");
    std::fs::write(&junk, [0x30, 0x82, 0x01, 0x00, 0xff, 0xee]).unwrap();
    env.run("kms certificates import -f der")
        .arg(&junk)
        .fails(1)
        .stderr_has("not a DER certificate or key");
    assert_eq!(certificate_count(&env), 0);
}

#[test]
fn duplicate_ids_are_refused_unless_replaced() {
    let (env, pki) = env_with_pki();
    let first = import_issuer(&env, &pki, "ca");
    let p12 = pki.pkcs12("again.p12", "modern");
    let args = |extra: &[&str]| {
        let mut a: Vec<std::ffi::OsString> =
            ["--json", "kms", "certificates", "import", "-f", "pkcs12"]
                .iter()
                .map(Into::into)
                .collect();
        a.push(p12.clone().into());
        a.extend(["-p", TestPki::PASSWORD, "ca"].iter().map(Into::into));
        a.extend(extra.iter().map(Into::into));
        a
    };
    env.mailpki(args(&[]))
        .fails(1)
        .stderr_has("an object with ID `ca` already exists")
        .stderr_has("--replace");
    let second = env.mailpki(args(&["--replace"])).ok().json();
    assert_eq!(second["certificate"], "ca");
    assert_ne!(second["private_key"], first["private_key"]);
    // The keys of the replaced import are gone; the shared root stays.
    env.run("kms attributes get -i")
        .arg(first["private_key"].as_str().unwrap())
        .fails(1);
    assert_eq!(second["chain"], first["chain"]);
    assert_eq!(
        attributes(&env, "ca")["PrivateKeyLink"],
        second["private_key"]
    );
}

#[test]
fn pem_chain_then_keys_in_every_encoding_link_up() {
    let (env, pki) = env_with_pki();
    let report = env
        .run("--json kms certificates import")
        .arg(pki.path("chain.pem"))
        .then("ca")
        .ok()
        .json();
    assert_eq!(report["chain"].as_array().unwrap().len(), 1);
    assert!(report.get("private_key").is_none());

    // The same key as PKCS#1, PKCS#8 and encrypted PKCS#8: each import pairs with the cert.
    openssl(
        &pki.dir,
        [
            "rsa",
            "-in",
            "issuing.key",
            "-traditional",
            "-out",
            "issuing.pkcs1.pem",
        ],
    );
    openssl(
        &pki.dir,
        [
            "pkcs8",
            "-topk8",
            "-in",
            "issuing.key",
            "-out",
            "issuing.enc.pem",
            "-passout",
            "pass:keypass",
        ],
    );
    let key1 = env
        .run("--json kms certificates import")
        .arg(pki.path("issuing.pkcs1.pem"))
        .then("key1")
        .ok()
        .json();
    assert_eq!(key1["private_key"], "key1");
    let key1_attrs = attributes(&env, "key1");
    assert_eq!(key1_attrs["object_type"], "PrivateKey");
    assert_eq!(key1_attrs["CertificateLink"], "ca");
    assert_eq!(attributes(&env, "ca")["PrivateKeyLink"], "key1");

    env.run("kms certificates import")
        .arg(pki.path("issuing.enc.pem"))
        .then("key2")
        .fails(1)
        .stderr_has("password is required");
    env.run("kms certificates import")
        .arg(pki.path("issuing.enc.pem"))
        .then("-p nope key2")
        .fails(1)
        .stderr_has("password is wrong");
    env.run("kms certificates import")
        .arg(pki.path("issuing.enc.pem"))
        .then("-p keypass key2")
        .ok();
    assert_eq!(attributes(&env, "key2")["CertificateLink"], "ca");
    assert_eq!(attributes(&env, "key2")["cryptographic_length"], 2048);
}

#[test]
fn key_first_then_certificate_links_both_ways() {
    let (env, pki) = env_with_pki();
    env.run("kms certificates import")
        .arg(pki.path("issuing.key"))
        .then("the-key")
        .ok();
    // The root first, then the issuing CA as DER: it finds both its issuer and its key.
    env.run("kms certificates import")
        .arg(pki.path("root.pem"))
        .then("root")
        .ok();
    openssl(
        &pki.dir,
        [
            "x509",
            "-in",
            "issuing.pem",
            "-outform",
            "DER",
            "-out",
            "issuing.der",
        ],
    );
    env.run("kms certificates import -f der")
        .arg(pki.path("issuing.der"))
        .then("ca")
        .ok();
    let ca = attributes(&env, "ca");
    assert_eq!(ca["CertificateLink"], "root");
    assert_eq!(ca["PrivateKeyLink"], "the-key");
    assert_eq!(attributes(&env, "the-key")["CertificateLink"], "ca");
}

#[test]
fn ec_hierarchies_import_too() {
    let env = env();
    let pki = TestPki::create_with(&env.path("pki"), "ec");
    import_issuer(&env, &pki, "ec-ca");
    let ca = attributes(&env, "ec-ca");
    assert_eq!(ca["cryptographic_algorithm"], "EC");
    assert_eq!(ca["cryptographic_length"], 256);
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let (env, pki) = env_with_pki();
    let mut mixed = std::fs::read(pki.path("issuing.pem")).unwrap();
    mixed.extend(std::fs::read(pki.path("root.key")).unwrap());
    let path = env.path("mixed.pem");
    std::fs::write(&path, mixed).unwrap();
    env.run("kms certificates import")
        .arg(&path)
        .fails(1)
        .stderr_has("does not match");
    assert_eq!(certificate_count(&env), 0);
}

#[test]
fn list_filters_by_tag_subject_and_expiry() {
    let (env, pki) = env_with_pki();
    let p12 = pki.pkcs12("ca.p12", "modern");
    env.run("kms certificates import -f pkcs12")
        .arg(&p12)
        .then("-p")
        .arg(TestPki::PASSWORD)
        .then("ca -t smime")
        .ok();
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--json", "kms", "certificates", "list"];
        all.extend(args);
        env.mailpki(all)
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["unique_identifier"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&["-t", "smime"]), ["ca"]);
    // Pages: the root came with the issuing CA; one per page, then nothing.
    let all = ids(&[]);
    assert_eq!(all.len(), 2);
    let first = ids(&["--limit", "1"]);
    let second = ids(&["--limit", "1", "--after", &first[0]]);
    assert_eq!(
        [first[0].clone(), second[0].clone()],
        [all[0].clone(), all[1].clone()]
    );
    assert!(ids(&["--limit", "1", "--after", &second[0]]).is_empty());
    env.run("kms certificates list --limit 1")
        .ok()
        .stderr_has(&format!("more may follow: --after {}", first[0]));
    assert_eq!(ids(&["--subject", "issuing"]), ["ca"]);
    assert!(ids(&["--email", "nobody@example.com"]).is_empty());
    assert_eq!(ids(&["--subject", "root"]).len(), 1);
    assert!(ids(&["--expires-within", "30"]).is_empty());
    assert_eq!(
        ids(&["--expires-within", "2000"]),
        ["ca"],
        "issuing CA expires in 5 years"
    );
    // Tags select objects for other commands too: the certificate and its two keys carry it.
    env.run("kms attributes get -t smime")
        .fails(1)
        .stderr_has("3 objects carry the tags");
}

/// Windows and some tools export with an empty password, without a MAC, or unencrypted.
#[test]
fn pkcs12_without_password_or_mac_imports() {
    let (env, pki) = env_with_pki();
    let variants: [(&str, &[&str]); 3] = [
        ("empty", &[]),
        ("nomac", &["-nomac"]),
        ("plain", &["-keypbe", "NONE", "-certpbe", "NONE", "-nomac"]),
    ];
    for (name, extra) in variants {
        let file = pki.pkcs12_with(&format!("{name}.p12"), "", extra);
        let report = env
            .run("--json kms certificates import -f pkcs12")
            .arg(&file)
            .arg(name)
            .ok()
            .json();
        assert!(report["private_key"].is_string(), "{name}: {report}");
    }
}
