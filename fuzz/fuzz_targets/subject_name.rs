//! Subject names as users type them (`--subject-name`, CSV columns): parsing never panics,
//! and a parsed name prints as text that parses back to the same name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_issuance::SubjectName;

fuzz_target!(|text: &str| {
    if let Ok(name) = text.parse::<SubjectName>() {
        let printed = name.to_string();
        let again: SubjectName = printed
            .parse()
            .unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
        assert_eq!(again.to_string(), printed);
        let _ = name.to_der();
    }
});
