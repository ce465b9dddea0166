//! Request bodies of the Gmail emulator as its handlers read them: key-pair uploads (the JSON,
//! the PKCS#7, the linter on the certificates inside) and token requests (the form, the JWT).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailpki_emulator::fuzz_request_body(data);
});
