//! Wire types mirroring Google's Gmail API resources (`users.settings.cse.*`,
//! `users.settings.sendAs.*`), field for field. Output-only fields are optional so the same type
//! serves requests and replies. Checked against golden JSON from Google's reference.

use serde::{Deserialize, Serialize};

/// `users.settings.cse.keypairs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CseKeyPair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pair_id: Option<String>,
    /// Input: the leaf and its chain as a PEM PKCS#7.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs7: Option<String>,
    /// Output: the certificate chain in PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_email_addresses: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enablement_state: Option<EnablementState>,
    /// RFC 3339, when disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_key_metadata: Vec<CsePrivateKeyMetadata>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnablementState {
    StateUnspecified,
    Enabled,
    Disabled,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CsePrivateKeyMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_metadata_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kacls_key_metadata: Option<KaclsKeyMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hardware_key_metadata: Option<HardwareKeyMetadata>,
}

// Every field Google's discovery document lists is optional: a reply missing one still reads.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KaclsKeyMetadata {
    pub kacls_uri: String,
    /// The user's private key, wrapped by the organization's key service: opaque to Google.
    pub kacls_data: String,
}

impl std::fmt::Debug for KaclsKeyMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KaclsKeyMetadata")
            .field("kacls_uri", &self.kacls_uri)
            .field(
                "kacls_data",
                &format_args!("[{} bytes, wrapped]", self.kacls_data.len()),
            )
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HardwareKeyMetadata {
    pub description: String,
}

/// `users.settings.cse.identities`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CseIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_key_pair_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_and_encrypt_key_pairs: Option<SignAndEncryptKeyPairs>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignAndEncryptKeyPairs {
    pub signing_key_pair_id: String,
    pub encryption_key_pair_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCseKeyPairsResponse {
    #[serde(default)]
    pub cse_key_pairs: Vec<CseKeyPair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListCseIdentitiesResponse {
    #[serde(default)]
    pub cse_identities: Vec<CseIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `users.settings.sendAs.smimeInfo`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmimeInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_cn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    /// Milliseconds since the epoch, as a JSON string (int64 in Google's discovery document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// Input only: base64url of the PKCS#12.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_key_password: Option<String>,
}

impl std::fmt::Debug for SmimeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmimeInfo")
            .field("id", &self.id)
            .field("issuer_cn", &self.issuer_cn)
            .field("is_default", &self.is_default)
            .field("expiration", &self.expiration)
            .field("pkcs12", &self.pkcs12.as_ref().map(|_| "[REDACTED]"))
            .field(
                "encrypted_key_password",
                &self.encrypted_key_password.as_ref().map(|_| "[REDACTED]"),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSmimeInfoResponse {
    #[serde(default)]
    pub smime_info: Vec<SmimeInfo>,
}

/// `users.settings.sendAs` (the fields mailpki reads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendAs {
    pub send_as_email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_primary: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub treat_as_alias: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSendAsResponse {
    #[serde(default)]
    pub send_as: Vec<SendAs>,
}

/// Google's error body: `{"error": {...}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u16,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}
