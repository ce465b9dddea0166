//! Request bodies of the server's `/v1` API as it decodes them, from any bytes a client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_kms::api::{
    AccessBody, CertifyBody, DestroyBody, ExportBody, ImportBody, JournalBody, RevokeBody,
    SearchBody, SymmetricKeyBody, TagsBody, TokenBody, WrapBody,
};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ImportBody>(data);
    let _ = serde_json::from_slice::<ExportBody>(data);
    let _ = serde_json::from_slice::<SearchBody>(data);
    let _ = serde_json::from_slice::<AccessBody>(data);
    let _ = serde_json::from_slice::<RevokeBody>(data);
    let _ = serde_json::from_slice::<DestroyBody>(data);
    let _ = serde_json::from_slice::<TagsBody>(data);
    let _ = serde_json::from_slice::<SymmetricKeyBody>(data);
    let _ = serde_json::from_slice::<CertifyBody>(data);
    let _ = serde_json::from_slice::<WrapBody>(data);
    let _ = serde_json::from_slice::<JournalBody>(data);
    let _ = serde_json::from_slice::<TokenBody>(data);
});
