//! The client's wire types against golden JSON from Google's reference: every golden document
//! parses into the type and serializes back to the same JSON.

// Fixture helpers outside #[test] functions unwrap: a broken golden file should fail loudly.
#![allow(clippy::unwrap_used)]

use mailpki_gmail::types::{
    CseIdentity, CseKeyPair, ErrorResponse, ListCseIdentitiesResponse, ListCseKeyPairsResponse,
    ListSendAsResponse, SmimeInfo,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn golden(name: &str) -> Value {
    let path = format!("{}/../../tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let expected = golden(name);
    let parsed: T =
        serde_json::from_value(expected.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(serde_json::to_value(&parsed).unwrap(), expected, "{name}");
    parsed
}

#[test]
fn cse_key_pairs_match_googles_shape() {
    let kp: CseKeyPair = round_trip("cse_key_pair.json");
    assert_eq!(
        kp.enablement_state,
        Some(mailpki_gmail::types::EnablementState::Disabled)
    );
    let create: CseKeyPair = round_trip("cse_key_pair_create.json");
    assert!(create.key_pair_id.is_none());
    let list: ListCseKeyPairsResponse = round_trip("cse_key_pairs_list.json");
    assert_eq!(list.next_page_token.as_deref(), Some("b2Zmc2V0OjIw"));
}

#[test]
fn cse_identities_match_googles_shape() {
    let identity: CseIdentity = round_trip("cse_identity.json");
    assert!(identity.sign_and_encrypt_key_pairs.is_some());
    let _: ListCseIdentitiesResponse = round_trip("cse_identities_list.json");
}

#[test]
fn smime_and_send_as_match_googles_shape() {
    let info: SmimeInfo = round_trip("smime_info.json");
    assert_eq!(
        info.expiration.as_deref(),
        Some("1798761600000"),
        "int64 travels as a string"
    );
    let _: ListSendAsResponse = round_trip("send_as_list.json");
}

#[test]
fn errors_match_googles_shape() {
    let e: ErrorResponse = round_trip("error.json");
    assert_eq!(e.error.errors[0].reason, "failedPrecondition");
}

/// Google's discovery document marks every field optional: replies that leave some out (a
/// hardware key without a description, a key-service entry without its URI, a send-as without
/// its address, an identity's pair half-filled) still read.
#[test]
fn replies_missing_optional_fields_still_read() {
    let pairs: ListCseKeyPairsResponse = serde_json::from_value(serde_json::json!({
        "cseKeyPairs": [
            {"keyPairId": "a", "privateKeyMetadata": [{"hardwareKeyMetadata": {}}]},
            {"keyPairId": "b", "privateKeyMetadata": [{"kaclsKeyMetadata": {"kaclsData": "x"}}]},
        ]
    }))
    .unwrap();
    assert_eq!(pairs.cse_key_pairs.len(), 2);
    let send_as: ListSendAsResponse =
        serde_json::from_value(serde_json::json!({"sendAs": [{"displayName": "Jane"}]})).unwrap();
    assert_eq!(send_as.send_as[0].send_as_email, "");
    let identity: CseIdentity = serde_json::from_value(serde_json::json!({
        "emailAddress": "jane@example.com",
        "signAndEncryptKeyPairs": {"signingKeyPairId": "s"},
    }))
    .unwrap();
    assert!(identity.sign_and_encrypt_key_pairs.is_some());
}
