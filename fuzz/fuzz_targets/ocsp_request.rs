//! OCSP requests as the publication listener reads them from anyone on the internet: any bytes
//! give a request or `None` (malformedRequest), never a panic; a parsed request asks about at
//! least one certificate, with a serial the store could hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_issuance::ocsp;

fuzz_target!(|data: &[u8]| {
    if let Some(request) = ocsp::parse_request(data) {
        assert!(!request.ids.is_empty());
        for id in &request.ids {
            assert!(id.serial_hex.len() <= 40, "{}", id.serial_hex);
        }
    }
});
