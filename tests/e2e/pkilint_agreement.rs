//! Our linter against PyPI's pkilint, the S/MIME BR linter nobody here wrote: for every kind
//! of certificate the suite mints (the built-in profile for each subject kind, RSA and EC, the
//! openssl extension-file recipes) and every kind it breaks on purpose (made both by
//! `openssl x509 -req` and by us from the same request), each ERROR or FATAL pkilint reports
//! has an error of ours: the rule that says the same thing where one does, else some error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mailpki_test_support::{TestEnv, TestPki, pkilint_findings};
use serde_json::Value;

use crate::{env_with_pki, issuer_key};

/// What pkilint's error codes mean in our rules: for each code, the rules of ours of which one
/// must be an error. A code not listed fails the test until it is placed here. (pkilint also
/// judges the issuer name inside an authority key identifier as if it were a subject, hence
/// the AKI rule beside the subject ones.)
const SAME_MEANING: &[(&str, &[&str])] = &[
    ("cabf.aia_ca_issuers_has_no_http_uri", &["sbr.aia.http"]),
    (
        "cabf.authority_key_identifier_has_issuer_cert",
        &["sbr.aki.keyid_only"],
    ),
    (
        "cabf.no_http_crldp_uri",
        &["sbr.crl_distribution_points.http"],
    ),
    ("cabf.rsa_modulus_invalid_length", &["google.key.rsa_size"]),
    (
        "cabf.smime.certificate_policies_extension_missing",
        &["sbr.policy.missing"],
    ),
    (
        "cabf.smime.certificate_validity_period_exceeds_825_days",
        &["google.validity.max_825_days"],
    ),
    (
        "cabf.smime.common_name_value_unknown_source",
        &["sbr.subject.common_name", "sbr.aki.keyid_only"],
    ),
    (
        "cabf.smime.crldp_fullname_prohibited_uri_scheme",
        &["sbr.crl_distribution_points.http"],
    ),
    (
        "cabf.smime.email_address_in_attribute_not_in_san",
        &["google.san.subject_email", "google.san.missing"],
    ),
    (
        "cabf.smime.emailprotection_eku_missing",
        &["google.eku.email_protection"],
    ),
    (
        "cabf.smime.extended_key_usage_extension_missing",
        &["google.eku.missing"],
    ),
    (
        "cabf.smime.is_ca_certificate",
        &["google.basic_constraints.ca"],
    ),
    (
        "cabf.smime.key_usage_extension_missing",
        &["google.key_usage.missing"],
    ),
    (
        "cabf.smime.legacy_generation_certificate_issued_after_prohibition",
        &["sbr.policy.missing"],
    ),
    (
        "cabf.smime.missing_required_attribute",
        &[
            "sbr.subject.organization_identifier",
            "sbr.subject.organization_name",
            "sbr.subject.personal_name",
        ],
    ),
    (
        "cabf.smime.prohibited_attribute",
        &["sbr.subject.mailbox_attributes", "sbr.aki.keyid_only"],
    ),
    (
        "cabf.smime.prohibited_eku_present",
        &["google.eku.forbidden", "sbr.eku.strict"],
    ),
    (
        "cabf.smime.prohibited_generalname_type_present",
        &["sbr.san.only_email"],
    ),
    (
        "cabf.smime.prohibited_ku_present",
        &[
            "sbr.key_usage.data_encipherment",
            "sbr.key_usage.encipher_decipher_only",
            "google.key_usage.ca_bits",
            "google.key_usage.ec",
        ],
    ),
    (
        "cabf.smime.prohibited_signature_algorithm_encoding",
        &["google.signature.algorithm"],
    ),
    ("cabf.smime.san_extension_missing", &["google.san.missing"]),
    (
        "pkix.authority_key_identifier_extension_absent",
        &["sbr.aki.missing"],
    ),
    (
        "pkix.ca_certificate_keycertsign_keyusage_not_set",
        &["google.basic_constraints.ca"],
    ),
    (
        "pkix.ee_certificate_keycertsign_keyusage_set",
        &["google.key_usage.ca_bits"],
    ),
    (
        "pkix.key_usage_value_prohibited_for_ec",
        &["google.key_usage.ec"],
    ),
    (
        "pkix.subject_email_address_not_in_san",
        &["google.san.subject_email", "google.san.missing"],
    ),
];

const GOOD: &str = "basicConstraints=critical,CA:FALSE\n\
    keyUsage=critical,digitalSignature,keyEncipherment\n\
    extendedKeyUsage=emailProtection\n\
    subjectAltName=email:copy\n\
    subjectKeyIdentifier=hash\n\
    authorityKeyIdentifier=keyid\n\
    certificatePolicies=2.23.140.1.5.1.3\n\
    crlDistributionPoints=URI:http://x.example.com/c.crl\n\
    authorityInfoAccess=caIssuers;URI:http://x.example.com/c.crt\n";
const MAILBOX: &str = "/CN=bad@example.com/emailAddress=bad@example.com";
const RSA: &[&str] = &["-newkey", "rsa:2048"];
const EC: &[&str] = &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// One certificate made badly on purpose, by openssl and by us from openssl's request.
struct Broken {
    name: &'static str,
    ext: String,
    subject: &'static str,
    key_args: &'static [&'static str],
    extra: &'static [&'static str],
}

fn broken(name: &'static str, ext: String) -> Broken {
    Broken {
        name,
        ext,
        subject: MAILBOX,
        key_args: RSA,
        extra: &[],
    }
}

fn breakages() -> Vec<Broken> {
    let without = |line: &str| GOOD.replace(&format!("{line}\n"), "");
    let swap = |from: &str, to: &str| GOOD.replace(from, to);
    vec![
        broken("eku-server", swap("emailProtection", "serverAuth")),
        broken(
            "eku-extra",
            swap("emailProtection", "emailProtection,clientAuth"),
        ),
        broken("eku-missing", without("extendedKeyUsage=emailProtection")),
        broken("san-missing", without("subjectAltName=email:copy")),
        broken("san-other", swap("email:copy", "email:other@example.com")),
        broken(
            "san-dns",
            swap("email:copy", "email:copy,DNS:host.example.com"),
        ),
        broken("ca-true", swap("CA:FALSE", "CA:TRUE")),
        broken("bc-missing", without("basicConstraints=critical,CA:FALSE")),
        broken(
            "ku-missing",
            without("keyUsage=critical,digitalSignature,keyEncipherment"),
        ),
        broken(
            "ku-not-critical",
            swap("critical,digitalSignature", "digitalSignature"),
        ),
        broken(
            "ku-data",
            swap("keyEncipherment", "keyEncipherment,dataEncipherment"),
        ),
        broken(
            "ku-cert-sign",
            swap("keyEncipherment", "keyEncipherment,keyCertSign"),
        ),
        broken(
            "aki-issuer",
            swap(
                "authorityKeyIdentifier=keyid",
                "authorityKeyIdentifier=keyid,issuer:always",
            ),
        ),
        // Left out, OpenSSL and we add both identifiers; `none` leaves them out.
        broken("aki-default", without("authorityKeyIdentifier=keyid")),
        broken(
            "aki-none",
            swap(
                "authorityKeyIdentifier=keyid",
                "authorityKeyIdentifier=none",
            ),
        ),
        broken("ski-default", without("subjectKeyIdentifier=hash")),
        broken(
            "ski-none",
            swap("subjectKeyIdentifier=hash", "subjectKeyIdentifier=none"),
        ),
        broken(
            "policy-missing",
            without("certificatePolicies=2.23.140.1.5.1.3"),
        ),
        broken(
            "crldp-missing",
            without("crlDistributionPoints=URI:http://x.example.com/c.crl"),
        ),
        broken(
            "crldp-ldap",
            swap(
                "URI:http://x.example.com/c.crl",
                "URI:ldap://x.example.com/cn=c",
            ),
        ),
        broken(
            "aia-missing",
            without("authorityInfoAccess=caIssuers;URI:http://x.example.com/c.crt"),
        ),
        broken(
            "aia-ldap",
            swap(
                "URI:http://x.example.com/c.crt",
                "URI:ldap://x.example.com/cn=c",
            ),
        ),
        Broken {
            subject: "/OU=Sales/CN=bad@example.com/emailAddress=bad@example.com",
            ..broken("subject-ou", GOOD.to_owned())
        },
        Broken {
            subject: "/CN=Jane Doe/emailAddress=bad@example.com",
            ..broken("subject-cn-name", GOOD.to_owned())
        },
        Broken {
            extra: &["-days", "900"],
            ..broken("validity-900", GOOD.to_owned())
        },
        Broken {
            extra: &["-sha1"],
            ..broken("sha1", GOOD.to_owned())
        },
        Broken {
            key_args: &["-newkey", "rsa:1024"],
            ..broken("rsa1024", GOOD.to_owned())
        },
        Broken {
            key_args: EC,
            ..broken("ec-key-encipherment", GOOD.to_owned())
        },
    ]
}

/// Mints with the built-in profile and exports; the certificate's path.
fn mint(env: &TestEnv, key: &str, id: &str, subject: &str, extra: &str) -> PathBuf {
    env.run("kms certificates certify -k")
        .arg(key)
        .then("--subject-name")
        .arg(subject)
        .then(extra)
        .then("--certificate-id")
        .arg(id)
        .ok();
    export(env, id)
}

fn export(env: &TestEnv, id: &str) -> PathBuf {
    let pem = env.path(&format!("{id}-ours.pem"));
    env.run("kms certificates export -c").arg(id).arg(&pem).ok();
    pem
}

/// `b` made by openssl, and by us from openssl's request when we agree to mint it at all.
fn both(env: &TestEnv, pki: &TestPki, key: &str, b: &Broken) -> Vec<PathBuf> {
    let theirs = pki.openssl_leaf(b.name, b.subject, &b.ext, b.key_args, b.extra);
    let ext_file = env.path(&format!("{}.ext", b.name));
    std::fs::write(&ext_file, &b.ext).unwrap();
    let days: Vec<&str> = b
        .extra
        .windows(2)
        .find(|w| w[0] == "-days")
        .map_or_else(Vec::new, |w| vec!["--days", w[1]]);
    let ours = env
        .run("kms certificates certify --certificate-signing-request")
        .arg(pki.path(&format!("{}.csr", b.name)))
        .then("-k")
        .arg(key)
        .then("-e")
        .arg(&ext_file)
        .then(&days.join(" "))
        .then("--allow-non-compliant --certificate-id")
        .arg(b.name)
        .output();
    if ours.output.status.success() {
        vec![theirs, export(env, b.name)]
    } else {
        vec![theirs]
    }
}

/// Our linter's error-level rules for `pem`, checked against the CA chain.
fn our_errors(env: &TestEnv, pki: &TestPki, pem: &PathBuf) -> Vec<String> {
    let out = env
        .run("--json kms certificates lint --chain")
        .arg(pki.path("chain.pem"))
        .arg(pem)
        .output();
    let report: Value = serde_json::from_str(&out.stdout())
        .unwrap_or_else(|e| panic!("{}: {e}: {}", pem.display(), out.stderr()));
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_pkilint_error_has_an_error_of_ours() {
    if mailpki_test_support::pkilint().is_none() {
        return;
    }
    let (env, pki) = env_with_pki();
    let key = issuer_key(&env, &pki);
    let mut corpus = vec![
        mint(
            &env,
            &key,
            "mailbox",
            "CN=jane@example.com, emailAddress=jane@example.com",
            "-g",
        ),
        mint(
            &env,
            &key,
            "individual",
            "GN=Jane, SN=Doe, CN=Jane Doe, emailAddress=jane@example.com",
            "-g",
        ),
        mint(
            &env,
            &key,
            "organization",
            "O=Example Org, C=FR, CN=jane@example.com, emailAddress=jane@example.com",
            "-g",
        ),
        mint(
            &env,
            &key,
            "mailbox-ec",
            "CN=ec@example.com, emailAddress=ec@example.com",
            "-g --algorithm p256",
        ),
    ];
    for b in breakages() {
        corpus.extend(both(&env, &pki, &key, &b));
    }
    let pkilint = pkilint_findings(&corpus).unwrap();
    let table: BTreeMap<&str, &[&str]> = SAME_MEANING.iter().copied().collect();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for pem in &corpus {
        let name = pem.file_name().unwrap().to_string_lossy().into_owned();
        let ours = our_errors(&env, &pki, pem);
        let theirs: Vec<&str> = pkilint[pem]
            .iter()
            .filter(|(severity, _)| severity == "ERROR" || severity == "FATAL")
            .map(|(_, code)| code.as_str())
            .collect();
        eprintln!("{name}: pkilint {theirs:?}, ours {ours:?}");
        for code in theirs {
            seen.insert(code);
            match table.get(code) {
                None => problems.push(format!(
                    "{name}: pkilint {code} is not in SAME_MEANING (ours: {ours:?})"
                )),
                Some(rules) if !rules.iter().any(|r| ours.iter().any(|o| o == r)) => problems.push(
                    format!("{name}: pkilint {code}; ours has none of {rules:?}: {ours:?}"),
                ),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every line of the table is earned by some certificate of the corpus.
    let unused: Vec<&str> = table
        .keys()
        .copied()
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(
        unused.is_empty(),
        "no certificate made pkilint say {unused:?}"
    );
}
