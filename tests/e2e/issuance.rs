//! `kms certificates certify`, `lint` and the PKCS#7 export: every way of minting produces
//! certificates that the openssl CLI accepts for S/MIME and that pkilint finds no error in;
//! deliberately bad certificates are caught for the right reason, as pkilint catches them.

use mailpki_test_support::{TestEnv, TestPki, openssl, pkilint_errors, s};
use serde_json::Value;

use crate::{attributes, env_with_pki, issuer_key};

const MAILBOX: &str = "CN=jane@example.com, emailAddress=jane@example.com";
const SEED_SUBJECT: &str = "C=FR, ST=IdF, L=Paris, O=ORGANIZATION, OU=DEPARTMENT, \
    CN=user@organization.com, emailAddress=user@organization.com";

/// The repository's example `config/user.ext`, copied into the test's folder.
fn example_user_ext(env: &TestEnv) -> std::path::PathBuf {
    let ext = env.path("user.ext");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/user.ext"),
        &ext,
    )
    .unwrap();
    ext
}

fn certify(env: &TestEnv, key: &str, subject: &str, extra: &str) -> Value {
    env.run("--json kms certificates certify -k")
        .arg(key)
        .then("--subject-name")
        .arg(subject)
        .then(extra)
        .ok()
        .json()
}

/// Exports `id` to `<id>.pem` and checks it with openssl for both S/MIME purposes.
pub(crate) fn openssl_accepts(
    env: &TestEnv,
    pki: &TestPki,
    id: &str,
    purposes: &[&str],
) -> std::path::PathBuf {
    let pem = env.path(&format!("{id}.pem"));
    env.run("kms certificates export -c").arg(id).arg(&pem).ok();
    for purpose in purposes {
        let out = openssl(
            &pki.dir,
            [
                "verify",
                "-purpose",
                purpose,
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuing.pem",
                &s(&pem),
            ],
        );
        assert!(
            String::from_utf8_lossy(&out).contains(": OK"),
            "{id} {purpose}"
        );
    }
    pem
}

pub(crate) fn assert_pkilint_clean(pem: &std::path::Path) {
    if let Some(errors) = pkilint_errors(pem) {
        assert!(
            errors.is_empty(),
            "pkilint errors for {}: {errors:?}",
            pem.display()
        );
    }
}

#[test]
fn built_in_profile_passes_openssl_and_pkilint() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let out = certify(
        &env,
        &key,
        MAILBOX,
        "-g --certificate-id jane --crl-url http://pki.example.com/i.crl --ca-issuers-url http://pki.example.com/i.crt",
    );
    assert_eq!(out["unique_identifier"], "jane");
    assert_eq!(out["profile"]["validation"], "mailbox");
    assert_eq!(out["profile"]["generation"], "strict");
    let pem = openssl_accepts(&env, &pki, "jane", &["smimesign", "smimeencrypt"]);
    assert_pkilint_clean(&pem);

    // Stored with its key, linked to its issuer; serial ≥ 64 bits and positive.
    let attrs = attributes(&env, "jane");
    assert_eq!(attrs["CertificateLink"], "ca");
    assert_eq!(attrs["PrivateKeyLink"], out["private_key"]);
    assert!(attrs["certificate_serial_number"].as_str().unwrap().len() >= 16);
    let text = String::from_utf8(openssl(
        &pki.dir,
        ["x509", "-in", &s(&pem), "-noout", "-text"],
    ))
    .unwrap();
    for expected in [
        "Policy: 2.23.140.1.5.1.3",
        "E-mail Protection",
        "email:jane@example.com",
        "Digital Signature, Key Encipherment",
        "URI:http://pki.example.com/i.crl",
        "CA Issuers - URI:http://pki.example.com/i.crt",
        "sha256WithRSAEncryption",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn mailbox_extension_file_passes_openssl_and_pkilint() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let ext = example_user_ext(&env);
    env.run("kms certificates certify -g --certificate-id u -k")
        .arg(&key)
        .then("--subject-name")
        .arg("CN=u@example.com, emailAddress=u@example.com")
        .then("-e")
        .arg(&ext)
        .ok();
    let pem = openssl_accepts(&env, &pki, "u", &["smimesign", "smimeencrypt"]);
    assert_pkilint_clean(&pem);
}

#[test]
fn rsa_sizes_and_ec_keys_mint() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    for (alg, bits, id) in [
        ("rsa3072", 3072, "r3"),
        ("p256", 256, "e256"),
        ("p384", 384, "e384"),
    ] {
        certify(
            &env,
            &key,
            MAILBOX,
            &format!("-g -a {alg} --certificate-id {id} --crl-url http://x.example.com/c.crl"),
        );
        let attrs = attributes(&env, id);
        assert_eq!(attrs["cryptographic_length"], bits);
        // openssl's smimeencrypt purpose demands keyEncipherment, which EC keys must not
        // carry (they agree keys instead): EC leaves are checked for signing only.
        let purposes: &[&str] = if id.starts_with('e') {
            &["smimesign"]
        } else {
            &["smimesign", "smimeencrypt"]
        };
        let pem = openssl_accepts(&env, &pki, id, purposes);
        assert_pkilint_clean(&pem);
    }
}

#[test]
fn an_ec_issuer_signs_with_ecdsa() {
    let env = crate::env();
    let pki = TestPki::create_with(&env.path("pki"), "ec");
    let key = issuer_key(&env, &pki);
    certify(
        &env,
        &key,
        MAILBOX,
        "-g --certificate-id j --crl-url http://x.example.com/c.crl",
    );
    let pem = openssl_accepts(&env, &pki, "j", &["smimesign", "smimeencrypt"]);
    let text = String::from_utf8(openssl(
        &pki.dir,
        ["x509", "-in", &s(&pem), "-noout", "-text"],
    ))
    .unwrap();
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    assert_pkilint_clean(&pem);
}

#[test]
fn existing_keys_and_csrs_are_certified() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    // A stored key pair.
    openssl(
        &pki.dir,
        [
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "user.key",
        ],
    );
    let imported = env
        .run("--json kms certificates import")
        .arg(pki.path("user.key"))
        .then("user-key")
        .ok()
        .json();
    let public_id = imported["public_key"].as_str().unwrap().to_owned();
    let out = certify(
        &env,
        &key,
        MAILBOX,
        &format!("--public-key-id-to-certify {public_id} --certificate-id from-key"),
    );
    assert!(out["private_key"].is_null(), "no new key: {out}");
    assert_eq!(attributes(&env, "from-key")["PrivateKeyLink"], "user-key");
    openssl_accepts(&env, &pki, "from-key", &["smimesign", "smimeencrypt"]);

    // A CSR: its subject is used when none is given.
    openssl(
        &pki.dir,
        [
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "csr.key",
            "-out",
            "user.csr",
            "-subj",
            "/CN=bob@example.com/emailAddress=bob@example.com",
        ],
    );
    env.run("kms certificates certify --certificate-id from-csr -k")
        .arg(&key)
        .then("--certificate-signing-request")
        .arg(pki.path("user.csr"))
        .ok();
    assert_eq!(
        attributes(&env, "from-csr")["certificate_subject"],
        "CN=bob@example.com, emailAddress=bob@example.com"
    );
    let pem = openssl_accepts(&env, &pki, "from-csr", &["smimesign", "smimeencrypt"]);
    assert_pkilint_clean(&pem);
    // A tampered CSR is refused.
    let mut csr = std::fs::read_to_string(pki.path("user.csr")).unwrap();
    let mid = csr.len() / 2;
    csr.replace_range(mid..=mid, if &csr[mid..=mid] == "A" { "B" } else { "A" });
    std::fs::write(env.path("bad.csr"), csr).unwrap();
    env.run("kms certificates certify -k")
        .arg(&key)
        .then("--certificate-signing-request")
        .arg(env.path("bad.csr"))
        .fails(1);
}

#[test]
fn organization_subjects_mint_and_the_linter_names_the_profile_they_need() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    // The seed's subject with Cosmian-style extensions (mailbox policy OID): mints, passes
    // openssl; the linter says it fits the organization profile and lacks organizationIdentifier.
    let ext = example_user_ext(&env);
    let out = env
        .run("--json kms certificates certify -g --certificate-id org -k")
        .arg(&key)
        .then("--subject-name")
        .arg(SEED_SUBJECT)
        .then("-e")
        .arg(&ext)
        .ok();
    assert!(
        out.stderr()
            .contains("fits the organization-validated profile"),
        "{}",
        out.stderr()
    );
    assert!(
        out.stderr().contains("organizationIdentifier"),
        "{}",
        out.stderr()
    );
    let pem = openssl_accepts(&env, &pki, "org", &["smimesign", "smimeencrypt"]);
    let lint = env
        .run("--json kms certificates lint")
        .arg(&pem)
        .ok()
        .json();
    assert_eq!(lint["subject_fits"], "organization");
    let rules: Vec<&str> = lint["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"sbr.subject.mailbox_attributes"),
        "{rules:?}"
    );
    if let Some(errors) = pkilint_errors(&pem) {
        assert!(
            errors
                .iter()
                .any(|c| c == "cabf.smime.prohibited_attribute"),
            "{errors:?}"
        );
    }

    // The built-in profile picks the organization policy and reports what is missing.
    let out = certify(&env, &key, SEED_SUBJECT, "-g --certificate-id org2");
    assert_eq!(out["profile"]["validation"], "organization");
    let findings = out["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "sbr.subject.organization_identifier"),
        "{findings:?}"
    );
    openssl_accepts(&env, &pki, "org2", &["smimesign", "smimeencrypt"]);
}

#[test]
fn pkcs7_export_holds_the_chain_leaf_first() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    certify(&env, &key, MAILBOX, "-g --certificate-id jane");
    let p7 = env.path("jane.p7b");
    env.run("kms certificates export -f pkcs7 -c jane")
        .arg(&p7)
        .ok();
    let text = std::fs::read_to_string(&p7).unwrap();
    assert!(text.starts_with("-----BEGIN PKCS7-----"), "{text}");
    let printed = String::from_utf8(openssl(
        &pki.dir,
        ["pkcs7", "-in", &s(&p7), "-print_certs", "-noout"],
    ))
    .unwrap();
    let subjects: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("subject="))
        .collect();
    assert_eq!(subjects.len(), 3, "{printed}");
    assert!(subjects[0].contains("jane@example.com"));
    assert!(subjects[1].contains("Test Issuing CA"));
    assert!(subjects[2].contains("Test Root CA"));
}

/// One deliberately bad certificate and the rule that must catch it.
struct Case {
    name: &'static str,
    ext: String,
    key_args: &'static [&'static str],
    extra: &'static [&'static str],
    rule: &'static str,
    /// pkilint sees one certificate and cannot know the issuer's end.
    pkilint_knows: bool,
}

/// Deliberately bad certificates, made with the openssl CLI: the linter flags each for the
/// right rule, and pkilint reports an error for each too.
#[test]
fn bad_certificates_are_caught_for_the_right_reason() {
    let (env, pki) = env_with_pki();
    let good = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                extendedKeyUsage=emailProtection\nsubjectAltName=email:copy\nsubjectKeyIdentifier=hash\n\
                authorityKeyIdentifier=keyid\ncertificatePolicies=2.23.140.1.5.1.3\n\
                crlDistributionPoints=URI:http://x.example.com/c.crl\nauthorityInfoAccess=caIssuers;URI:http://x.example.com/c.crt\n";
    let subject = "/CN=bad@example.com/emailAddress=bad@example.com";
    let case = |name, ext: String, rule| Case {
        name,
        ext,
        key_args: &["-newkey", "rsa:2048"],
        extra: &[],
        rule,
        pkilint_knows: true,
    };
    let cases = [
        case(
            "wrong-eku",
            good.replace("emailProtection", "serverAuth"),
            "google.eku.forbidden",
        ),
        case(
            "no-san",
            good.replace("subjectAltName=email:copy\n", ""),
            "google.san.missing",
        ),
        case(
            "san-mismatch",
            good.replace("email:copy", "email:other@example.com"),
            "google.san.subject_email",
        ),
        case(
            "ca-true",
            good.replace("CA:FALSE", "CA:TRUE"),
            "google.basic_constraints.ca",
        ),
        Case {
            extra: &["-sha1"],
            ..case("sha1", good.to_owned(), "google.signature.algorithm")
        },
        Case {
            key_args: &["-newkey", "rsa:1024"],
            ..case("rsa1024", good.to_owned(), "google.key.rsa_size")
        },
        case(
            "aki-with-issuer",
            good.replace(
                "authorityKeyIdentifier=keyid",
                "authorityKeyIdentifier=keyid,issuer:always",
            ),
            "sbr.aki.keyid_only",
        ),
        Case {
            extra: &["-days", "2500"],
            pkilint_knows: false,
            ..case(
                "beyond-issuer",
                good.to_owned(),
                "google.validity.beyond_issuer",
            )
        },
    ];
    for c in cases {
        let pem = pki.openssl_leaf(c.name, subject, &c.ext, c.key_args, c.extra);
        let out = env
            .run("--json kms certificates lint --strict --chain")
            .arg(pki.path("chain.pem"))
            .arg(&pem)
            .fails(1);
        let report = out.json();
        assert_eq!(report["smime_br_compliant"], false, "{}", c.name);
        // Gmail takes a BR error from the organization's own CA; not its own rules' errors.
        assert_eq!(
            report["accepted_by_google"],
            !c.rule.starts_with("google."),
            "{}",
            c.name
        );
        let rules: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap())
            .collect();
        assert!(rules.contains(&c.rule), "{}: {rules:?}", c.name);
        if c.pkilint_knows
            && let Some(errors) = pkilint_errors(&pem)
        {
            assert!(
                !errors.is_empty(),
                "pkilint found nothing wrong with {}",
                c.name
            );
        }
    }
    // Without --strict, only what Gmail rejects fails the lint; a BR error is said, not fatal.
    let said = env
        .run("kms certificates lint --chain")
        .arg(pki.path("chain.pem"))
        .arg(pki.path("aki-with-issuer.pem"))
        .ok();
    assert!(
        said.stdout().contains("breaks the S/MIME BR"),
        "{}",
        said.stdout()
    );
    // And a good one made the same way passes both.
    let pem = pki.openssl_leaf("fine", subject, good, &["-newkey", "rsa:2048"], &[]);
    env.run("kms certificates lint --chain")
        .arg(pki.path("chain.pem"))
        .arg(&pem)
        .ok();
    assert_pkilint_clean(&pem);
    // The file `export --chain` writes (leaf first) serves as the chain of its own leaf.
    env.run("kms certificates import")
        .arg(&pem)
        .arg("fine")
        .ok();
    let exported = env.path("fine-chain.pem");
    env.run("kms certificates export -c fine --chain")
        .arg(&exported)
        .ok();
    env.run("kms certificates lint --chain")
        .arg(&exported)
        .arg(&exported)
        .ok();
}

#[test]
fn minting_refuses_what_gmail_would_reject_unless_overridden() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let ext = env.path("server.ext");
    std::fs::write(&ext, "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=email:copy\n").unwrap();
    env.run("kms certificates certify -g --certificate-id x -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .then("-e")
        .arg(&ext)
        .fails(1)
        .stderr_has("breaks rules Google enforces")
        .stderr_has("[google.eku.email_protection]")
        .stderr_has("--allow-non-compliant");
    env.run("kms attributes get -i x").fails(1);
    env.run("kms certificates certify -g --allow-non-compliant --certificate-id x -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .then("-e")
        .arg(&ext)
        .ok();

    // Beyond 825 days.
    env.run("kms certificates certify -g -d 900 -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .fails(1)
        .stderr_has("google.validity.max_825_days");
}

#[test]
fn validity_never_outlives_the_issuer() {
    let (env, pki) = env_with_pki();
    // Re-issue the issuing CA for ten days only.
    pki.sign_issuing("short.pem", 10);
    openssl(
        &pki.dir,
        [
            "pkcs12",
            "-export",
            "-inkey",
            "issuing.key",
            "-in",
            "short.pem",
            "-certfile",
            "root.pem",
            "-out",
            "short.p12",
            "-passout",
            "pass:pw",
        ],
    );
    let key = env
        .run("--json kms certificates import -f pkcs12")
        .arg(pki.path("short.p12"))
        .then("-p pw short")
        .ok()
        .json()["private_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env
        .run("--json kms certificates certify -g -d 365 --certificate-id j -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .ok();
    assert!(
        out.stderr()
            .contains("validity shortened from 365 days to the issuer's end"),
        "{}",
        out.stderr()
    );
    assert_eq!(
        attributes(&env, "j")["certificate_not_after"],
        attributes(&env, "short")["certificate_not_after"]
    );
    env.run("kms certificates lint -c j").ok();
}

#[test]
fn a_root_must_not_sign_users_directly() {
    let (env, pki) = env_with_pki();
    let mut both = std::fs::read(pki.path("root.pem")).unwrap();
    both.extend(std::fs::read(pki.path("root.key")).unwrap());
    std::fs::write(env.path("root-with-key.pem"), both).unwrap();
    let report = env
        .run("--json kms certificates import")
        .arg(env.path("root-with-key.pem"))
        .then("root")
        .ok()
        .json();
    let root_key = report["private_key"].as_str().unwrap();
    env.run("kms certificates certify -g -k")
        .arg(root_key)
        .then("--subject-name")
        .arg(MAILBOX)
        .fails(1)
        .stderr_has("google.chain.intermediate");
}

#[test]
fn bad_requests_change_nothing() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let count = || {
        env.run("--json kms certificates list")
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    env.run("kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name")
        .arg("CN=a, XX=b")
        .fails(1)
        .stderr_has("invalid --subject-name")
        .stderr_has("unknown attribute `XX`");
    let ext = env.path("typo.ext");
    std::fs::write(&ext, "keyUsage = digitalSignature\nextendedKeyUsage = emailProtection\nsubjectAltName = emial:copy\n").unwrap();
    env.run("kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .then("-e")
        .arg(&ext)
        .fails(1)
        .stderr_has("line 3")
        .stderr_has("unknown subjectAltName type `emial`");
    env.run("kms certificates certify -g -a rsa1024 -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .fails(1)
        .stderr_has("unknown key algorithm");
    // A key that is not a CA's.
    let leaf = certify(&env, &key, MAILBOX, "-g --certificate-id leaf");
    env.run("kms certificates certify -g -k")
        .arg(leaf["private_key"].as_str().unwrap())
        .then("--subject-name")
        .arg(MAILBOX)
        .fails(1)
        .stderr_has("not a CA");
    // Unknown issuer.
    env.run("kms certificates certify -g -k nope --subject-name")
        .arg(MAILBOX)
        .fails(1)
        .stderr_has("no object with ID `nope`");
    // A revoked issuer key.
    env.run("kms keys revoke rotated -k").arg(&key).ok();
    env.run("kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .fails(1)
        .stderr_has("only an active key can certify");
    assert_eq!(count(), before + 1, "only the `leaf` certificate was added");
}

/// The seed's scenario: admin A imports the issuer CA and grants admin B the rights on the
/// issuer certificate and private key; B mints; C, without grants, is refused.
#[test]
fn a_granted_administrator_mints_with_the_shared_issuer() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    env.run("kms access-rights grant bob -i ca get").ok();
    env.run("kms access-rights grant bob -i")
        .arg(&key)
        .then("certify")
        .ok();
    let out = env
        .run_as("bob", "--json kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .ok()
        .json();
    let id = out["unique_identifier"].as_str().unwrap();
    assert_eq!(
        env.run_as("bob", "kms attributes get -i")
            .arg(id)
            .ok()
            .json()["owner"],
        "bob"
    );
    env.run_as("carol", "kms certificates certify -g -k")
        .arg(&key)
        .then("--subject-name")
        .arg(MAILBOX)
        .fails(1)
        .stderr_has("no object with ID");
}

/// One request (made by `openssl req` for `subject`) certified with the extension file `ext`
/// by `openssl x509 -req -extfile` and by us with the same issuer: (ours, OpenSSL's) PEM files.
fn both_ways(
    env: &TestEnv,
    pki: &TestPki,
    key: &str,
    name: &str,
    subject: &str,
    ext: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let theirs = pki.openssl_leaf(name, subject, ext, &["-newkey", "rsa:2048"], &[]);
    let ext_file = env.path(&format!("{name}.ext"));
    std::fs::write(&ext_file, ext).unwrap();
    env.run("kms certificates certify --certificate-signing-request")
        .arg(pki.path(&format!("{name}.csr")))
        .then("-k")
        .arg(key)
        .then("-e")
        .arg(&ext_file)
        .then("--allow-non-compliant --certificate-id")
        .arg(name)
        .ok();
    let ours = env.path(&format!("{name}-ours.pem"));
    env.run("kms certificates export -c")
        .arg(name)
        .arg(&ours)
        .ok();
    (ours, theirs)
}

/// Extension files mean what they mean to OpenSSL: for each form of authorityKeyIdentifier,
/// the extension we encode is the one `openssl x509 -req -extfile` encodes for the same
/// request and issuer; and `keyid,issuer`, the line most recipes carry, mints a leaf pkilint
/// finds no error in.
#[test]
fn authority_key_identifier_lines_mean_what_openssl_makes_of_them() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let base = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                extendedKeyUsage=emailProtection\nsubjectAltName=email:copy\nsubjectKeyIdentifier=hash\n\
                certificatePolicies=2.23.140.1.5.1.3\ncrlDistributionPoints=URI:http://x.example.com/c.crl\n\
                authorityInfoAccess=caIssuers;URI:http://x.example.com/c.crt\n";
    let subject = "/CN=aki@example.com/emailAddress=aki@example.com";
    let aki_text = |pem: &std::path::Path| {
        String::from_utf8(openssl(
            env.root(),
            [
                "x509",
                "-in",
                &s(pem),
                "-noout",
                "-ext",
                "authorityKeyIdentifier",
            ],
        ))
        .unwrap()
    };
    for (i, form) in [
        "keyid",
        "keyid,issuer",
        "keyid:always",
        "issuer:always",
        "keyid,issuer:always",
        "keyid:always,issuer:always",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("aki{i}");
        let ext = format!("{base}authorityKeyIdentifier={form}\n");
        let (ours, theirs) = both_ways(&env, &pki, &key, &name, subject, &ext);
        assert_eq!(
            aki_text(&ours),
            aki_text(&theirs),
            "authorityKeyIdentifier={form}"
        );
        if *form == "keyid,issuer"
            && let Some(errors) = mailpki_test_support::pkilint_errors(&ours)
        {
            assert!(errors.is_empty(), "{errors:?}");
        }
    }
}

/// Every directive form the parser takes encodes as OpenSSL encodes it: for each extension
/// file of a corpus, the extensions of the certificate we mint from a request equal, byte for
/// byte and in order, those `openssl x509 -req -extfile` writes for the same request and
/// issuer (the file's order, then the identifiers OpenSSL adds by default).
#[test]
fn extension_files_encode_as_openssl_encodes_them() {
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let tail = "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";
    let corpus = [
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:copy\n",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,nonRepudiation\nextendedKeyUsage=critical,emailProtection,clientAuth\nsubjectAltName=email:copy,email:other@example.com\n",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=@alt\ncertificatePolicies=2.23.140.1.5.1.3\n[alt]\nemail.1=copy\nemail.2=alt@example.com\nURI.1=https://example.com/u\n",
        "keyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:copy\ncrlDistributionPoints=URI:http://pki.example.com/a.crl,URI:http://pki2.example.com/a.crl\nauthorityInfoAccess=caIssuers;URI:http://pki.example.com/a.crt,OCSP;URI:http://ocsp.example.com\n",
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=email:copy\ncertificatePolicies=@pol\n[pol]\npolicyIdentifier=2.23.140.1.5.1.3\nCPS.1=https://pki.example.com/cps\n",
    ];
    let subject = "/CN=diff@example.com/emailAddress=diff@example.com";
    // Every extension's OID, criticality and DER value, in the certificate's order.
    let extensions = |pem: &std::path::Path| {
        let der = openssl(env.root(), ["x509", "-in", &s(pem), "-outform", "DER"]);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.extensions()
            .iter()
            .map(|e| (e.oid.to_id_string(), e.critical, e.value.to_vec()))
            .collect::<Vec<_>>()
    };
    let mut files = Vec::new();
    for body in corpus {
        // Sections stay last: the extension lines go first.
        files.push(match body.split_once("\n[") {
            Some((lines, sections)) => format!("{lines}\n{tail}[{sections}"),
            None => format!("{body}{tail}"),
        });
        // Without identifier lines OpenSSL adds both after the file's extensions; `none`
        // leaves one out.
        files.push(body.to_owned());
    }
    files.push(format!("subjectKeyIdentifier=none\n{}", corpus[0]));
    files.push(format!("{}authorityKeyIdentifier=none\n", corpus[1]));
    files.push(format!(
        "authorityKeyIdentifier=keyid\n{}subjectKeyIdentifier=hash\n",
        corpus[0]
    ));
    for (i, ext) in files.iter().enumerate() {
        let name = format!("diff{i}");
        let (ours, theirs) = both_ways(&env, &pki, &key, &name, subject, ext);
        assert_eq!(
            extensions(&ours),
            extensions(&theirs),
            "extension file:\n{ext}"
        );
    }
}
