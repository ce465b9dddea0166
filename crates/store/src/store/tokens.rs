//! The audit log, the server's API tokens, and wrapping a stored key for the CSE key service.

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::codec;
use crate::error::{Result, StoreError};
use crate::model::{Actor, ApiToken, AuditEntry, AuditFilter, Operation};

use super::{Store, new_uid, now};

/// What an API token starts with, so that leaked ones are easy to spot and scan for.
pub const API_TOKEN_PREFIX: &str = "mpk_";

fn token_hash(secret: &str) -> Result<String> {
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), secret.as_bytes())
        .map_err(StoreError::crypto("hashing an API token"))?;
    Ok(codec::hex(&digest))
}

/// The audit log and the server's API tokens. The server authenticates callers before it
/// gets here, so these take no actor; the CLI offers them only to server admins.
impl Store {
    /// Appends lines to the audit log in one transaction (a server commits a group at once).
    pub fn audit(&self, entries: &[AuditEntry]) -> Result<()> {
        self.backend.audit_append(entries)
    }

    /// Copies SQLite's write-ahead log into the database from the caller's thread (a
    /// server's, every fraction of a second), so that the commit reaching SQLite's own
    /// checkpoint threshold finds little left to copy and sync. False for PostgreSQL: nothing
    /// to do, ever.
    pub fn checkpoint(&self) -> Result<bool> {
        self.backend.checkpoint()
    }

    pub fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.backend.audit_list(filter)
    }

    /// Makes a token that acts as `user`; the secret is returned once and only its hash kept.
    pub fn create_api_token(
        &self,
        user: &Actor,
        created_by: &Actor,
        expires: Option<i64>,
    ) -> Result<(ApiToken, SecretString)> {
        let mut random = Zeroizing::new([0u8; 32]);
        openssl::rand::rand_bytes(random.as_mut())
            .map_err(StoreError::crypto("drawing an API token"))?;
        let secret = Zeroizing::new(format!(
            "{API_TOKEN_PREFIX}{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                random.as_ref()
            )
        ));
        let token = ApiToken {
            id: format!("tok-{}", &new_uid()[..8]),
            user: user.to_string(),
            created: now(),
            created_by: created_by.to_string(),
            expires,
            revoked: None,
        };
        self.backend.token_insert(&token, &token_hash(&secret)?)?;
        Ok((token, SecretString::from(secret.as_str().to_owned())))
    }

    /// The live token whose secret is `secret`: not revoked, not expired.
    pub fn authenticate_api_token(&self, secret: &str) -> Result<Option<ApiToken>> {
        if !secret.starts_with(API_TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(self
            .backend
            .token_by_hash(&token_hash(secret)?)?
            .filter(|t| t.is_live(now())))
    }

    /// Live tokens that act as `user` but someone else made: who else can act as them.
    pub fn api_tokens_made_for(&self, user: &Actor) -> Result<Vec<ApiToken>> {
        let now = now();
        Ok(self
            .backend
            .token_list()?
            .into_iter()
            .filter(|t| t.user == user.as_str() && t.created_by != t.user && t.is_live(now))
            .collect())
    }

    /// Revokes a token by ID; `false` when no live token has that ID.
    pub fn revoke_api_token(&self, id: &str) -> Result<bool> {
        self.backend.token_revoke(id, now())
    }

    pub fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.backend.token_list()
    }

    /// The private key `key_uid` wrapped under the CSE key `cse_key_uid`, as Gmail's
    /// `kaclsData` carries it. The key leaves the store only in that wrapped form.
    pub fn cse_wrap_private_key(
        &self,
        actor: &Actor,
        key_uid: &str,
        cse_key_uid: &str,
    ) -> Result<String> {
        self.check_cse_key(actor, cse_key_uid, Operation::Encrypt)?;
        let key = self.private_key(actor, key_uid, Operation::Export)?;
        let pkcs8 = Zeroizing::new(
            key.private_key_to_pkcs8()
                .map_err(StoreError::crypto("encoding the private key"))?,
        );
        self.cse_wrap(actor, cse_key_uid, &pkcs8)
    }
}
