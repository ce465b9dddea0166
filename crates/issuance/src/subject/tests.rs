use super::*;

fn parse(s: &str) -> SubjectName {
    s.parse().unwrap()
}

#[test]
fn the_seed_subject_parses_in_written_order() {
    let s = parse(
        "C=FR, ST=IdF, L=Paris, O=ORGANIZATION, OU=DEPARTMENT, CN=user@organization.com, \
         emailAddress=user@organization.com",
    );
    assert_eq!(
        s.to_string(),
        "C=FR, ST=IdF, L=Paris, O=ORGANIZATION, OU=DEPARTMENT, CN=user@organization.com, \
         emailAddress=user@organization.com"
    );
    assert_eq!(s.emails().len(), 1);
    assert_eq!(s.validation_type(), ValidationType::Organization);
}

#[test]
fn addresses_with_a_second_at_or_odd_local_parts_are_refused() {
    for bad in [
        "x@x.com@y.com",
        "\"x@x.com\"@y.com",
        ".jane@example.com",
        "ja..ne@example.com",
        "ja,ne@example.com",
        "ja\\ne@example.com",
    ] {
        assert!(bad.parse::<EmailAddress>().is_err(), "{bad} was accepted");
    }
    for good in [
        "jane.doe+smime@example.com",
        "o'brien@example.com",
        "=x@example.com",
    ] {
        assert!(good.parse::<EmailAddress>().is_ok(), "{good} was refused");
    }
}

#[test]
fn slash_form_and_aliases() {
    let s = parse("/C=FR/O=Org/CN=Jane Doe/E=jane@org.com/");
    assert_eq!(
        s.to_string(),
        "C=FR, O=Org, CN=Jane Doe, emailAddress=jane@org.com"
    );
    assert_eq!(parse("/CN=a\\/b").to_string(), "CN=a/b");
}

#[test]
fn rfc4514_escapes_quotes_and_multivalued_rdns() {
    let s = parse(r#"CN=Doe\, Jane + serialNumber=42, O="ACME, Inc.", OU=R\2CD"#);
    let avas: Vec<&str> = s.avas().map(|a| a.value.as_str()).collect();
    assert_eq!(avas, ["Doe, Jane", "42", "ACME, Inc.", "R,D"]);
    assert_eq!(s.rdns[0].len(), 2);
    assert_eq!(parse(r"CN=caf\C3\A9").avas().next().unwrap().value, "café");
}

#[test]
fn mailbox_subjects_are_mailbox_validated() {
    let e: EmailAddress = "u@example.com".parse().unwrap();
    let s = SubjectName::mailbox(&e);
    assert_eq!(s.validation_type(), ValidationType::Mailbox);
    assert_eq!(
        s.to_string(),
        "CN=u@example.com, emailAddress=u@example.com"
    );
    assert_eq!(
        parse("GN=Jane, SN=Doe, O=Org, CN=Jane Doe").validation_type(),
        ValidationType::Sponsor
    );
    assert_eq!(
        parse("GN=Jane, SN=Doe, CN=Jane Doe").validation_type(),
        ValidationType::Individual
    );
}

#[test]
fn malformed_subjects_say_where_and_why() {
    let cases = [
        ("CN=a, , O=b", "empty name component"),
        ("CN", "has no `=`"),
        ("XX=1", "unknown attribute `XX`"),
        ("CN=", "empty value"),
        ("C=France", "two-letter"),
        ("emailAddress=not-an-email", "has no `@`"),
        ("emailAddress=a@localhost", "dotted host name"),
        ("CN=a\\", "lone backslash"),
        ("O=\"open", "not closed"),
        ("CN=#0403", "hex-encoded"),
        ("", "empty"),
    ];
    for (input, expected) in cases {
        let err = input.parse::<SubjectName>().unwrap_err().to_string();
        assert!(err.contains(expected), "{input:?}: {err}");
    }
    let err = "C=FR, XX=1".parse::<SubjectName>().unwrap_err();
    assert!(
        matches!(err, IssuanceError::InvalidSubject { position: 5, .. }),
        "{err:?}"
    );
}

#[test]
fn dotted_oids_are_accepted() {
    let s = parse("2.5.4.97=VATFR-123, CN=x");
    assert!(s.to_x509_name().is_ok());
}

/// Regression (found by fuzzing `subject_name`): a value ending in a space printed as
/// `\ ` and did not parse back.
#[test]
fn escaped_trailing_spaces_survive_a_round_trip() {
    for text in [r"CN=x\ , O=y", "CN=x\u{a0}, O=y"] {
        let printed = parse(text).to_string();
        assert_eq!(printed.parse::<SubjectName>().unwrap().to_string(), printed);
    }
}

/// Regression (found by fuzzing `subject_name`): an OID DER cannot encode (`5.2`, `1.40`)
/// passed the parser and made the encoder panic.
#[test]
fn oids_der_cannot_encode_are_refused() {
    for text in ["5.2=x", "1.40=x", "0.2.+3=x", "7=x"] {
        assert!(text.parse::<SubjectName>().is_err(), "{text}");
    }
    assert!("2.999.1=x".parse::<SubjectName>().is_ok());
}

#[test]
fn names_build_with_the_right_string_types() {
    let name = parse("C=FR, CN=u@example.com, emailAddress=u@example.com")
        .to_x509_name()
        .unwrap();
    let der = name.to_der().unwrap();
    // PrintableString (0x13) "FR", IA5String (0x16) for the address.
    assert!(der.windows(4).any(|w| w == [0x13, 0x02, b'F', b'R']));
    assert!(der.windows(2).any(|w| w == [0x16, 13]));
}
