//! Files handed to `kms certificates import`: PKCS#12 (with and without a password), PEM and
//! DER. The first byte picks the format; parsing never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_store::{ImportFormat, parse_bundle};
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let password = SecretString::from("fuzz".to_owned());
    let format = match pick % 3 {
        0 => ImportFormat::Pkcs12,
        1 => ImportFormat::Pem,
        _ => ImportFormat::Der,
    };
    let _ = parse_bundle(format, rest, None);
    let _ = parse_bundle(format, rest, Some(&password));
});
