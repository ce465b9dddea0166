//! Gmail's side of a CSE key pair: the `keypairs.create` body from the parts the KMS built,
//! and finding a key pair Gmail already holds for a certificate.

use mailpki_gmail::GmailClient;
use mailpki_gmail::types::{CseKeyPair, CsePrivateKeyMetadata, KaclsKeyMetadata};
use mailpki_kms::api::CseKeyPairReply;
use openssl::x509::X509;

use crate::error::Result;

/// The `keypairs.create` body from the parts the KMS built and the key service's URL.
#[must_use]
pub fn key_pair_request(parts: &CseKeyPairReply, kacls_uri: &str) -> CseKeyPair {
    CseKeyPair {
        pkcs7: Some(parts.pkcs7.clone()),
        private_key_metadata: vec![CsePrivateKeyMetadata {
            kacls_key_metadata: Some(KaclsKeyMetadata {
                kacls_uri: kacls_uri.to_owned(),
                kacls_data: parts.kacls_data.clone(),
            }),
            ..CsePrivateKeyMetadata::default()
        }],
        ..CseKeyPair::default()
    }
}

/// The key pair of `user` in Gmail whose certificate is `leaf`, if any.
pub async fn find_key_pair(gmail: &GmailClient, user: &str, leaf: &X509) -> Result<Option<String>> {
    let leaf_der = leaf.to_der()?;
    for kp in gmail.list_key_pairs(user, Some(100)).await? {
        let first = kp
            .pem
            .as_deref()
            .and_then(|pem| X509::from_pem(pem.as_bytes()).ok());
        if first.and_then(|c| c.to_der().ok()).as_deref() == Some(leaf_der.as_slice()) {
            return Ok(kp.key_pair_id);
        }
    }
    Ok(None)
}
