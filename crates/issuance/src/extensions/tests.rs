use super::*;

const USER_EXT: &str = include_str!("../../../../config/user.ext");

#[test]
fn the_example_user_ext_parses() {
    let spec = ExtensionSpec::parse(USER_EXT, None).unwrap();
    assert!(!spec.basic_constraints.as_ref().unwrap().value.ca);
    assert!(spec.key_usage.as_ref().unwrap().critical);
    assert_eq!(
        spec.extended_key_usage.as_ref().unwrap().value,
        [ExtendedKeyUsage::EmailProtection]
    );
    assert_eq!(
        spec.subject_alt_name.as_ref().unwrap().value,
        [SanEntry::EmailCopy]
    );
    assert_eq!(
        spec.certificate_policies.as_ref().unwrap().value[0].oid,
        "2.23.140.1.5.1.3"
    );
    assert!(spec.subject_key_identifier);
}

#[test]
fn identifiers_default_as_openssl_adds_them_and_the_file_order_is_kept() {
    let spec = ExtensionSpec::parse(
        "extendedKeyUsage=emailProtection\nkeyUsage=critical,digitalSignature\n",
        None,
    )
    .unwrap();
    assert_eq!(spec.order, ["extendedKeyUsage", "keyUsage"]);
    assert!(spec.subject_key_identifier);
    let aki = spec.authority_key_identifier.unwrap();
    assert_eq!((aki.keyid, aki.issuer), (Some(false), Some(false)));
    let none = ExtensionSpec::parse(
        "keyUsage=digitalSignature\nsubjectKeyIdentifier=none\nauthorityKeyIdentifier=none\n",
        None,
    )
    .unwrap();
    assert!(!none.subject_key_identifier);
    assert!(none.authority_key_identifier.is_none());
}

#[test]
fn cosmian_style_file_with_sections_and_references() {
    let text = "\
# Cosmian's example
[ v3_ca ]
keyUsage=nonRepudiation,digitalSignature,dataEncipherment,keyEncipherment
extendedKeyUsage=emailProtection
crlDistributionPoints=URI:http://crl.example.com/ca.crl
subjectAltName = critical, @alt
certificatePolicies = @pol

[alt]
email.1 = copy
email.2 = other@example.com
URI.1 = https://example.com/me

[pol]
policyIdentifier = 2.23.140.1.5.2.3
CPS.1 = \"http://example.com/cps\"
";
    let spec = ExtensionSpec::parse(text, None).unwrap();
    let san = spec.subject_alt_name.unwrap();
    assert!(san.critical);
    assert_eq!(san.value.len(), 3);
    let pol = &spec.certificate_policies.unwrap().value[0];
    assert_eq!(pol.cps, ["http://example.com/cps"]);
    assert_eq!(spec.key_usage.unwrap().value.len(), 4);
}

#[test]
fn whitespace_case_and_flat_lines_are_tolerated() {
    let spec = ExtensionSpec::parse(
        "  KEYUSAGE =   Critical ,DigitalSignature  # trailing comment\nbasicconstraints=ca:false\n",
        None,
    )
    .unwrap();
    assert!(spec.key_usage.unwrap().critical);
    assert!(!spec.basic_constraints.unwrap().value.ca);
}

#[test]
fn errors_name_the_line() {
    let cases = [
        (
            "keyUsage = digitalSignature\nfooBar = 1\n",
            2,
            "unknown extension `fooBar`",
        ),
        (
            "keyUsage = digitalSignatur\n",
            1,
            "unknown keyUsage value `digitalSignatur`",
        ),
        (
            "\n\nextendedKeyUsage = emailProtection, sneaky\n",
            3,
            "unknown extendedKeyUsage value",
        ),
        ("basicConstraints = CA:maybe\n", 1, "expected TRUE or FALSE"),
        ("subjectAltName = email:not-an-address\n", 1, "has no `@`"),
        ("subjectAltName = @missing\n", 1, "not defined"),
        (
            "crlDistributionPoints = URI:file:///etc/passwd\n",
            1,
            "not an http(s) or ldap URI",
        ),
        (
            "authorityInfoAccess = caIssuers:http://x\n",
            1,
            "expected caIssuers;URI",
        ),
        (
            "keyUsage = digitalSignature\nkeyUsage = keyEncipherment\n",
            2,
            "already set on line 1",
        ),
        ("nsCertType = email\n", 1, "Netscape"),
        ("certificatePolicies = hello\n", 1, "expected an OID"),
        ("keyUsage digitalSignature\n", 1, "expected `name = value`"),
    ];
    for (text, line, expected) in cases {
        match ExtensionSpec::parse(text, None) {
            Err(IssuanceError::ExtensionFile { line: l, reason }) => {
                assert_eq!(l, line, "{text:?}: {reason}");
                assert!(reason.contains(expected), "{text:?}: {reason}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn sections_can_be_chosen() {
    let text = "[a]\nkeyUsage = digitalSignature\n[b]\nkeyUsage = keyEncipherment\n";
    let b = ExtensionSpec::parse(text, Some("b")).unwrap();
    assert!(
        b.key_usage
            .unwrap()
            .value
            .contains(&KeyUsageBit::KeyEncipherment)
    );
    let err = ExtensionSpec::parse(text, Some("c"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no section `[c]` (sections: a, b)"), "{err}");
    assert!(ExtensionSpec::parse("# nothing\n", None).is_err());
}

#[test]
fn netscape_extensions_are_refused_by_name() {
    for key in ["nsComment", "nsCertType"] {
        let err = ExtensionSpec::parse(&format!("keyUsage = digitalSignature\n{key} = x\n"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{key} is a Netscape extension")),
            "{err}"
        );
    }
}
