//! The key service's request bodies, as Google documents them: the server decodes them, the
//! CLI's `kacls selftest` and `--verify-kacls` send them, the fuzz target feeds them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
pub struct SignRequest {
    pub authentication: String,
    pub authorization: String,
    pub algorithm: String,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa_pss_salt_length: Option<i32>,
    #[serde(default)]
    pub reason: String,
    pub wrapped_private_key: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct DecryptRequest {
    pub authentication: String,
    #[serde(default)]
    pub authorization: String,
    pub algorithm: String,
    pub encrypted_data_encryption_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa_oaep_label: Option<String>,
    #[serde(default)]
    pub reason: String,
    pub wrapped_private_key: String,
    /// Privileged decrypt only: the key the caller expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_hash_algorithm: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct WrapRequest {
    pub authentication: String,
    #[serde(default)]
    pub perimeter_id: String,
    pub private_key: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub wrapped_private_key: String,
    /// Base64, at most 64 bytes.
    pub nonce: String,
}

/// `privatekeysign`'s reply (and `check`'s, which names the algorithm too).
#[derive(Debug, Deserialize, Serialize)]
pub struct SignReply {
    /// Base64.
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
}

/// `privatekeydecrypt`'s and `privilegedprivatekeydecrypt`'s reply.
#[derive(Deserialize, Serialize)]
pub struct DecryptReply {
    /// Base64: the data encryption key, a secret.
    pub data_encryption_key: String,
}

/// `wrapprivatekey`'s reply.
#[derive(Debug, Deserialize, Serialize)]
pub struct WrapReply {
    pub wrapped_private_key: String,
}
