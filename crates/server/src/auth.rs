//! Who is calling. Every `/v1` request but the health check and the API document carries
//! `Authorization: Bearer T`, where T is either an API token (`mpk_...`, looked up by hash in
//! the store) or an ID token from the configured OIDC issuer, checked against the issuer's
//! JWKS: signature (asymmetric algorithms only), `iss`, `aud`, `exp`, and the user claim
//! (default `email`; an `email_verified` of false is refused). The JWKS is cached, refreshed
//! after `jwks_refresh_seconds`, and fetched again (at most every 30 seconds) when a token
//! names a key it does not hold, so a key rotation at the issuer needs no restart.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mailpki_store::{API_TOKEN_PREFIX, Actor};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::AppState;
use crate::error::ApiError;

const MIN_REFETCH: Duration = Duration::from_secs(30);

/// `[server.oidc]`: the identity provider whose ID tokens the server accepts.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` the tokens must carry.
    pub issuer: String,
    /// The `aud` the tokens must carry (the client ID registered for mailpki).
    pub audience: String,
    /// Where the issuer publishes its keys; or `jwks_file` for an offline copy.
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// The claim naming the user [default: email].
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default = "default_refresh")]
    pub jwks_refresh_seconds: u64,
}

fn default_user_claim() -> String {
    "email".to_owned()
}

fn default_refresh() -> u64 {
    600
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

pub(crate) struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
}

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Oidc,
    ApiToken,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::ApiToken => "api-token",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub(crate) actor: Actor,
    pub(crate) admin: bool,
    pub(crate) method: Method,
}

pub(crate) struct Authenticator {
    pub(crate) oidc: Option<Oidc>,
    pub(crate) admins: HashSet<String>,
}

impl Oidc {
    pub(crate) fn new(config: OidcConfig) -> Self {
        Self {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(None),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let text = if let Some(path) = &self.config.jwks_file {
            tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        } else if let Some(url) = &self.config.jwks_url {
            self.http
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("cannot fetch {url}: {e}"))?
                .text()
                .await
                .map_err(|e| format!("cannot read {url}: {e}"))?
        } else {
            return Err("[server.oidc] needs jwks_url or jwks_file".to_owned());
        };
        serde_json::from_str(&text).map_err(|e| format!("not a JWKS: {e}"))
    }

    /// The key `kid` names, fetching the JWKS when it is stale or lacks the key.
    async fn key(&self, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, String> {
        let refresh = Duration::from_secs(self.config.jwks_refresh_seconds);
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        {
            let keys = self.keys.read().await;
            if let Some(keys) = keys.as_ref()
                && keys.fetched.elapsed() < refresh
                && let Some(key) = find(&keys.set)
            {
                return Ok(key);
            }
        }
        let mut keys = self.keys.write().await;
        let stale = keys
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() >= MIN_REFETCH);
        if stale {
            match self.fetch().await {
                Ok(set) => {
                    *keys = Some(Keys {
                        set,
                        fetched: Instant::now(),
                    });
                }
                // Keep the keys we have: the issuer being briefly away should not lock out
                // everyone whose token is signed by a key we already know.
                Err(e) => tracing::warn!(error = %e, "JWKS refresh failed"),
            }
        }
        keys.as_ref()
            .and_then(|k| find(&k.set))
            .ok_or_else(|| "the token's signing key is not in the issuer's JWKS".to_owned())
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<String, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
        ) {
            return Err(format!("algorithm {:?} is not accepted", header.alg));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable JWKS key: {e}"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 60;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| format!("invalid token: {e}"))?;
        let claims = data.claims;
        if claims.get("email_verified") == Some(&serde_json::Value::Bool(false)) {
            return Err("the token's email is not verified".to_owned());
        }
        claims
            .get(&self.config.user_claim)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the token has no `{}` claim", self.config.user_claim))
    }
}

impl Authenticator {
    pub(crate) async fn authenticate(
        &self,
        state: &AppState,
        header: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("missing bearer token"))?;
        let (user, method) = if token.starts_with(API_TOKEN_PREFIX) {
            let token = token.to_owned();
            // A database that is away is a 503 here too, not a reason to turn the caller away.
            let found = state
                .blocking(move |store| Ok(store.authenticate_api_token(&token)?))
                .await?
                .ok_or_else(|| {
                    ApiError::unauthenticated("unknown, revoked or expired API token")
                })?;
            (found.user, Method::ApiToken)
        } else if let Some(oidc) = &self.oidc {
            (
                oidc.verify(token)
                    .await
                    .map_err(ApiError::unauthenticated)?,
                Method::Oidc,
            )
        } else {
            return Err(ApiError::unauthenticated(
                "not an API token, and no OIDC issuer is configured",
            ));
        };
        let actor = Actor::new(user).map_err(|e| ApiError::unauthenticated(e.to_string()))?;
        Ok(Caller {
            admin: self.admins.contains(actor.as_str()),
            actor,
            method,
        })
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let result = state.auth.authenticate(state, header).await;
        if let Err(e) = &result
            && e.status == axum::http::StatusCode::UNAUTHORIZED
        {
            // The reason names what was wrong with the token, never the token itself.
            tracing::warn!(path = %parts.uri.path(), reason = %e.message, "unauthenticated request");
        }
        result
    }
}
