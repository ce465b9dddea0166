//! Service-account authentication with domain-wide delegation: an RS256 JWT signed with the
//! key file's private key, `sub` the impersonated user, exchanged at the key file's `token_uri`
//! for an access token. One token per (user, scopes) is cached until shortly before it expires.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::{GmailError, Result};

/// Tokens are renewed this long before Google says they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(120);
/// Cached tokens at most: a bulk run over ten thousand users needs each token only briefly.
const CACHE_LIMIT: usize = 1024;

/// Google's JSON key file for a service account (the fields used here).
#[derive(Deserialize)]
pub struct ServiceAccountKey {
    #[serde(rename = "type")]
    pub key_type: String,
    #[serde(default)]
    pub project_id: Option<String>,
    pub private_key_id: String,
    private_key: SecretString,
    pub client_email: String,
    #[serde(default)]
    pub client_id: Option<String>,
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    pub fn from_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| GmailError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let key: Self = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a service account key file ({e})")))?;
        if key.key_type != "service_account" {
            return Err(bad(format!(
                "its type is `{}`, not `service_account`",
                key.key_type
            )));
        }
        if !(key.token_uri.starts_with("https://") || key.token_uri.starts_with("http://")) {
            return Err(bad(format!("token_uri `{}` is not a URL", key.token_uri)));
        }
        key.signing_key()
            .map_err(|_| bad("private_key is not a PEM private key".to_owned()))?;
        Ok(key)
    }

    fn signing_key(&self) -> Result<PKey<Private>> {
        PKey::private_key_from_pem(self.private_key.expose_secret().as_bytes()).map_err(|source| {
            GmailError::Crypto {
                context: "reading the service account key",
                source,
            }
        })
    }
}

struct Cached {
    token: SecretString,
    renew_at: Instant,
}

/// Tries of the token endpoint before a 429, a 5xx or a connection failure is final.
const TOKEN_ATTEMPTS: u32 = 3;

/// Signs JWTs and caches access tokens.
pub struct TokenSource {
    key: ServiceAccountKey,
    signing_key: PKey<Private>,
    http: reqwest::Client,
    cache: Mutex<HashMap<(String, String), Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: SecretString,
    #[serde(default = "default_expiry")]
    expires_in: u64,
}

fn default_expiry() -> u64 {
    3599
}

#[derive(Deserialize, Default)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenSource {
    pub fn new(key: ServiceAccountKey, http: reqwest::Client) -> Result<Self> {
        let signing_key = key.signing_key()?;
        Ok(Self {
            key,
            signing_key,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    #[must_use]
    pub fn client_email(&self) -> &str {
        &self.key.client_email
    }

    /// The signed assertion for `user` and `scopes`.
    fn assertion(&self, user: &str, scopes: &str) -> Result<String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let header =
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.key.private_key_id});
        let claims = serde_json::json!({
            "iss": self.key.client_email,
            "sub": user,
            "scope": scopes,
            "aud": self.key.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let crypto = |source| GmailError::Crypto {
            context: "signing the token request",
            source,
        };
        let mut signer = Signer::new(MessageDigest::sha256(), &self.signing_key).map_err(crypto)?;
        signer.update(signing_input.as_bytes()).map_err(crypto)?;
        let signature = signer.sign_to_vec().map_err(crypto)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// An access token for `user` with `scopes`, from the cache or from Google.
    pub async fn token(&self, user: &str, scopes: &[&str]) -> Result<SecretString> {
        let scopes = scopes.join(" ");
        let cache_key = (user.to_owned(), scopes.clone());
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.get(&cache_key)
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        let assertion = self.assertion(user, &scopes)?;
        let url = &self.key.token_uri;
        // As google-auth does: a token endpoint that is busy (429), failing (5xx) or out of
        // reach is tried again a few times, with backoff, before the call fails.
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let sent = self
                .http
                .post(url)
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ])
                .send()
                .await;
            let retry = match &sent {
                Ok(r) => r.status().as_u16() == 429 || r.status().is_server_error(),
                Err(e) => e.is_connect() || e.is_timeout(),
            };
            if retry && attempt < TOKEN_ATTEMPTS {
                tracing::info!(attempt, url, "token endpoint unavailable; retrying");
                tokio::time::sleep(crate::client::RetryPolicy::default().delay(attempt, None))
                    .await;
                continue;
            }
            break sent.map_err(|source| GmailError::Unreachable {
                url: url.clone(),
                source,
            })?;
        };
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|source| GmailError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            let err: TokenError = serde_json::from_slice(&body).unwrap_or_default();
            return Err(GmailError::Token {
                status: status.as_u16(),
                error: if err.error.is_empty() {
                    status.to_string()
                } else {
                    err.error
                },
                description: err.error_description,
            });
        }
        let reply: TokenReply =
            serde_json::from_slice(&body).map_err(|e| GmailError::InvalidResponse {
                url: url.clone(),
                reason: format!("no access token in the reply ({e})"),
            })?;
        let lifetime = Duration::from_secs(reply.expires_in).saturating_sub(EXPIRY_MARGIN);
        tracing::debug!(user, scopes, "new access token");
        if cache.len() >= CACHE_LIMIT {
            let now = Instant::now();
            cache.retain(|_, c| c.renew_at > now);
            if cache.len() >= CACHE_LIMIT {
                // Still full of live tokens: drop them all; a user still at work fetches anew.
                cache.clear();
            }
        }
        cache.insert(
            cache_key,
            Cached {
                token: reply.access_token.clone(),
                renew_at: Instant::now() + lifetime,
            },
        );
        Ok(reply.access_token)
    }
}
