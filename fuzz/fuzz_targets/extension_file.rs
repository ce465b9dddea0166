//! OpenSSL extension files (`-e`, `--leaf-certificate-extensions`): parsing never panics,
//! whatever the section asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_issuance::ExtensionSpec;

fuzz_target!(|input: (&str, Option<&str>)| {
    let (text, section) = input;
    let _ = ExtensionSpec::parse(text, section);
});
