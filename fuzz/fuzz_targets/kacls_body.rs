//! Request bodies of the key service (Gmail's calls), and the tokens inside them as the
//! service first reads them (to pick the issuer), from any bytes a caller sends.
#![no_main]

use libfuzzer_sys::fuzz_target;

const OPERATIONS: [&str; 5] = [
    "privatekeysign",
    "privatekeydecrypt",
    "privilegedprivatekeydecrypt",
    "wrapprivatekey",
    "check",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    mailpki_server::fuzz_kacls_body(OPERATIONS[usize::from(pick) % OPERATIONS.len()], body);
});
