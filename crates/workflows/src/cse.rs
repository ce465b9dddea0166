//! Gmail's side of a CSE key pair: the `keypairs.create` body from the parts the KMS built,
//! finding a key pair Gmail already holds for a certificate, a certificate minted for a user
//! and never uploaded, and pointing a user's identity at a new key pair (rotation).

use mailpki_gmail::types::{
    CseIdentity, CseKeyPair, CsePrivateKeyMetadata, EnablementState, KaclsKeyMetadata,
};
use mailpki_gmail::{GmailClient, KeyPairAction};
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::Kms;
use mailpki_kms::api::{CseKeyPairReply, SearchBody};
use mailpki_store::{ObjectType, State};
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

/// A live certificate minted for `user` with `subject` (and valid for a day more) that was
/// never uploaded to Gmail: an earlier attempt Gmail refused (CSE not active yet, say) left
/// it, and it is used rather than minting another.
pub fn unuploaded_leaf(
    kms: &Kms,
    user: &EmailAddress,
    subject: &SubjectName,
) -> Result<Option<String>> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    let filter = SearchBody {
        object_type: Some(ObjectType::Certificate),
        tags: vec![mailpki_kms::cse::user_tag(user)],
        ..SearchBody::default()
    };
    let wanted = subject.to_string();
    let uploaded = mailpki_kms::cse::key_pair_tag("");
    Ok(kms
        .search(&filter)?
        .into_iter()
        .filter(|c| c.state == State::Active)
        .filter(|c| !c.tags.iter().any(|t| t.starts_with(&uploaded)))
        .filter(|c| c.certificate_subject.as_deref() == Some(wanted.as_str()))
        .filter(|c| {
            c.certificate_not_after
                .as_deref()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .is_some_and(|t| t.unix_timestamp() > now)
        })
        .map(|c| c.unique_identifier)
        .next())
}

/// What [`switch_identity`] did.
#[derive(Debug)]
pub struct Switched {
    pub identity: CseIdentity,
    /// The user's other key pairs, disabled now.
    pub disabled: Vec<String>,
}

/// Points `user`'s identity at `key_pair_id` (made if there is none) and disables the user's
/// other enabled key pairs: the end of a rotation, since Gmail cannot re-wrap a key pair.
pub async fn switch_identity(
    gmail: &GmailClient,
    user: &EmailAddress,
    key_pair_id: &str,
) -> Result<Switched> {
    let identity = CseIdentity {
        email_address: Some(user.to_string()),
        primary_key_pair_id: Some(key_pair_id.to_owned()),
        sign_and_encrypt_key_pairs: None,
    };
    let identity = match gmail.get_identity(user.as_str(), user.as_str()).await {
        Ok(_) => {
            gmail
                .patch_identity(user.as_str(), user.as_str(), &identity)
                .await?
        }
        Err(e) if e.status() == Some(404) => {
            gmail.create_identity(user.as_str(), &identity).await?
        }
        Err(e) => return Err(e.into()),
    };
    let mut disabled = Vec::new();
    for kp in gmail.list_key_pairs(user.as_str(), Some(100)).await? {
        let id = kp.key_pair_id.clone().unwrap_or_default();
        if id != key_pair_id && kp.enablement_state == Some(EnablementState::Enabled) {
            gmail
                .key_pair_action(user.as_str(), &id, KeyPairAction::Disable)
                .await?;
            disabled.push(id);
        }
    }
    Ok(Switched { identity, disabled })
}
