//! Who may call: the service's state, and the authentication and authorization tokens
//! checked against their issuers, the roles, this service's URL, the perimeter and the key.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use mailpki_store::{Actor, Store, StoreError, excerpt};
use openssl::pkey::{Id, PKey};

use crate::jwt::{Claims, JwtIssuer, verify_with};

use super::cache::TimedCache;
use super::config::{KaclsConfig, MAX_WRAPPED_KEY, check_origin};
use super::crypto::OpenedKey;
use super::error::{KaclsError, check_len};

pub(crate) struct Kacls {
    pub(super) config: KaclsConfig,
    pub(super) idps: Vec<JwtIssuer>,
    pub(super) authz: Vec<JwtIssuer>,
    pub(super) actor: Actor,
    pub(super) cache: TimedCache<Arc<OpenedKey>>,
    pub(super) sessions: TimedCache<String>,
    /// This service's URL, as authorization tokens must name it.
    pub(crate) url: String,
    /// `allowed_origins`, checked, as CORS answers them.
    pub(super) origins: Vec<axum::http::HeaderValue>,
    /// Calls allowed and refused per minute, for the console.
    pub(crate) activity: super::activity::Activity,
}

/// Why a call was refused: before anyone was identified (logged, bounded, never audited), or
/// once the caller's identity token checked out (audited under their name).
pub(super) enum Refusal {
    Anonymous(KaclsError),
    Known(String, KaclsError),
}

/// Who asked, for the log and the audit trail.
pub(super) struct Decision {
    pub(super) email: String,
    pub(super) resource: Option<String>,
    pub(super) spki_hash: Option<String>,
}

pub(super) fn claim<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(serde_json::Value::as_str)
}

impl Kacls {
    /// `server_url` is where the server listens, for a configuration without `url`.
    pub(crate) fn new(config: KaclsConfig, server_url: &str) -> Result<Self, String> {
        if config.cse_keys.is_empty() {
            return Err("[server.kacls] cse_keys names no CSE key".to_owned());
        }
        if config.identity_providers.is_empty() || config.authorization_issuers.is_empty() {
            return Err(
                "[server.kacls] needs identity_providers and authorization_issuers".to_owned(),
            );
        }
        for issuer in config
            .identity_providers
            .iter()
            .chain(&config.authorization_issuers)
        {
            if issuer.jwks_url.is_none() && issuer.jwks_file.is_none() {
                return Err(format!("no jwks_url or jwks_file for {}", issuer.issuer));
            }
        }
        let origins = config
            .allowed_origins
            .iter()
            .map(|o| check_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        let actor = Actor::new(config.actor.clone()).map_err(|e| e.to_string())?;
        Ok(Self {
            idps: config
                .identity_providers
                .iter()
                .cloned()
                .map(JwtIssuer::new)
                .collect(),
            authz: config
                .authorization_issuers
                .iter()
                .cloned()
                .map(JwtIssuer::new)
                .collect(),
            actor,
            cache: TimedCache::new(
                Duration::from_secs(config.key_cache_seconds),
                config.key_cache_entries,
            ),
            sessions: TimedCache::new(
                Duration::from_secs(config.key_cache_seconds),
                config.key_cache_entries,
            ),
            url: config.url.as_deref().map_or_else(
                || format!("{server_url}{}", config.prefix),
                |u| u.trim_end_matches('/').to_owned(),
            ),
            origins,
            activity: super::activity::Activity::default(),
            config,
        })
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// Forgets expired keys and sessions every few seconds, for as long as the service runs.
    pub(crate) fn spawn_sweeper(self: &Arc<Self>) {
        let service = Arc::downgrade(self);
        let every = (self.cache.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(service) = service.upgrade() else {
                    return;
                };
                service.cache.sweep();
                service.sessions.sweep();
            }
        });
    }

    /// The user the authentication token names (`google_email` when present). A user's
    /// client sends the same identity token with every call of a session, so a token that
    /// checked out is remembered (by its hash) until it expires, at most `key_cache_seconds`.
    pub(super) async fn authenticate(&self, token: &str) -> Result<String, KaclsError> {
        let id = openssl::sha::sha256(token.as_bytes());
        if let Some(email) = self.sessions.get(&id) {
            return Ok(email);
        }
        let claims = verify_with(&self.idps, token)
            .await
            .map_err(|e| KaclsError::unauthenticated(format!("authentication token: {e}")))?;
        let email = claim(&claims, "google_email")
            .or_else(|| claim(&claims, "email"))
            .filter(|e| !e.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| KaclsError::unauthenticated("the authentication token has no email"))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let left = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .map_or(0, |exp| exp - now);
        if left > 0 {
            let ttl = Duration::from_secs(left.unsigned_abs()).min(self.cache.ttl);
            self.sessions.insert(id, email.clone(), ttl);
        }
        Ok(email)
    }

    /// Both tokens checked for `role`, as Google's CSE reference asks.
    pub(super) async fn authorize(
        &self,
        authentication: &str,
        authorization: &str,
        role: &str,
    ) -> Result<Decision, Refusal> {
        let email = self
            .authenticate(authentication)
            .await
            .map_err(Refusal::Anonymous)?;
        self.check_authorization(&email, authorization, role)
            .await
            .map_err(|e| Refusal::Known(email, e))
    }

    pub(super) async fn check_authorization(
        &self,
        email: &str,
        authorization: &str,
        role: &str,
    ) -> Result<Decision, KaclsError> {
        let claims = verify_with(&self.authz, authorization)
            .await
            .map_err(|e| KaclsError::unauthenticated(format!("authorization token: {e}")))?;
        if claim(&claims, "role") != Some(role) {
            return Err(KaclsError::forbidden(format!(
                "the authorization's role is `{}`, this operation needs `{role}`",
                excerpt(claim(&claims, "role").unwrap_or("none"), 40)
            )));
        }
        let authorized = claim(&claims, "email").unwrap_or_default();
        if authorized.trim().is_empty() || !authorized.eq_ignore_ascii_case(email) {
            return Err(KaclsError::forbidden(
                "the authentication and authorization tokens name different users",
            ));
        }
        let url = &self.url;
        if claim(&claims, "kacls_url").map(|u| u.trim_end_matches('/')) != Some(url.as_str()) {
            return Err(KaclsError::forbidden(format!(
                "the authorization is for another key service (kacls_url is not {url})"
            )));
        }
        if let Some(perimeter) = claim(&claims, "perimeter_id")
            && !perimeter.is_empty()
            && !self.config.perimeters.is_empty()
            && !self.config.perimeters.iter().any(|p| p == perimeter)
        {
            return Err(KaclsError::forbidden(format!(
                "perimeter `{}` is not allowed here",
                excerpt(perimeter, 80)
            )));
        }
        let spki_hash = claim(&claims, "spki_hash")
            .filter(|h| !h.is_empty())
            .map(str::to_owned);
        if spki_hash.is_none() && self.config.require_spki_hash {
            return Err(KaclsError::forbidden(
                "the authorization names no key (spki_hash): a wrapped key opens only for the user it was made for",
            ));
        }
        Ok(Decision {
            email: email.to_owned(),
            resource: claim(&claims, "resource_name").map(str::to_owned),
            spki_hash,
        })
    }

    /// The private key inside `wrapped`, from the cache or opened with a CSE key.
    /// The key `wrapped` opens, if it is open already (no store read).
    pub(super) fn opened(&self, wrapped: &str) -> Option<Arc<OpenedKey>> {
        self.cache
            .get(&openssl::sha::sha256(wrapped.trim().as_bytes()))
    }

    pub(super) fn open(&self, store: &Store, wrapped: &str) -> Result<Arc<OpenedKey>, KaclsError> {
        check_len("wrapped_private_key", wrapped, MAX_WRAPPED_KEY)?;
        let id: [u8; 32] = openssl::sha::sha256(wrapped.trim().as_bytes());
        if let Some(key) = self.cache.get(&id) {
            return Ok(key);
        }
        for cse_key in &self.config.cse_keys {
            let opened = store
                .cse_unwrap(&self.actor, cse_key, wrapped)
                .map_err(|e| cse_key_failure(&e, cse_key))?;
            if let Some(pkcs8) = opened {
                let key = PKey::private_key_from_pkcs8(&pkcs8)
                    .map_err(|_| KaclsError::bad("the wrapped key holds no private key"))?;
                if key.id() != Id::RSA {
                    return Err(KaclsError::bad("the wrapped key is not an RSA key"));
                }
                let key = Arc::new(OpenedKey::new(key)?);
                self.cache.insert(id, Arc::clone(&key), self.cache.ttl);
                return Ok(key);
            }
        }
        Err(KaclsError::bad(
            "the wrapped key was not made by this key service, or was altered",
        ))
    }
}

/// What the caller hears when the key service's CSE key cannot be used: 503 when the store or
/// the HSM holding the key is unavailable (worth retrying), else 500; the cause goes to the log.
pub(super) fn cse_key_failure(e: &StoreError, cse_key: &str) -> KaclsError {
    tracing::error!(error = %e, cse_key, "the key service cannot use its CSE key");
    match e {
        StoreError::Unavailable { .. } => KaclsError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the key store is unavailable",
        ),
        StoreError::Hsm(h) if h.is_unavailable() => {
            KaclsError::new(StatusCode::SERVICE_UNAVAILABLE, "the HSM is unavailable")
        }
        _ => KaclsError::internal("the key service cannot use its CSE key"),
    }
}
