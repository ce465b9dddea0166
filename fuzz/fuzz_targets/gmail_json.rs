//! Gmail's answers as the client reads them: every reply type, and error bodies, from any
//! bytes a server (or something in between) might send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_gmail::types::{
    CseIdentity, CseKeyPair, ErrorResponse, ListCseIdentitiesResponse, ListCseKeyPairsResponse,
    ListSendAsResponse, ListSmimeInfoResponse, SmimeInfo,
};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<CseKeyPair>(data);
    let _ = serde_json::from_slice::<CseIdentity>(data);
    let _ = serde_json::from_slice::<ListCseKeyPairsResponse>(data);
    let _ = serde_json::from_slice::<ListCseIdentitiesResponse>(data);
    let _ = serde_json::from_slice::<SmimeInfo>(data);
    let _ = serde_json::from_slice::<ListSmimeInfoResponse>(data);
    let _ = serde_json::from_slice::<ListSendAsResponse>(data);
    let _ = serde_json::from_slice::<ErrorResponse>(data);
});
