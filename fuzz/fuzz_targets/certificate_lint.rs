//! The linter on any bytes as a certificate (what `kms certificates lint` and the Gmail
//! emulator read from files and uploads), with the second half as its issuer; and the same
//! bytes as a certificate signing request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_issuance::{LintOptions, lint, parse_csr};

fuzz_target!(|data: &[u8]| {
    let (leaf, issuer) = data.split_at(data.len() / 2);
    let options = LintOptions {
        expected_email: "a@example.com".parse().ok(),
        at: None,
    };
    let _ = lint(data, &[], &options);
    let _ = lint(leaf, &[issuer.to_vec()], &options);
    let _ = parse_csr(data);
});
