//! Who is calling. Every `/v1` request but the health check and the API document carries
//! `Authorization: Bearer T`, where T is either an API token (`mpk_...`, looked up by hash in
//! the store) or an ID token from the configured OIDC issuer, checked against the issuer's
//! JWKS: signature (asymmetric algorithms only), `iss`, `aud`, `exp`, `nbf`, and the user
//! claim (default `email`; an `email_verified` other than true is refused). JWKS handling is
//! [`crate::jwt`]. Failed attempts are counted per client address ([`crate::limits`]) and
//! logged a few at a time, never with the token.

use std::collections::HashSet;
use std::path::PathBuf;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use mailpki_store::{API_TOKEN_PREFIX, Actor};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;
use crate::jwt::{IssuerConfig, JwtIssuer, default_refresh};

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

pub(crate) struct Oidc {
    user_claim: String,
    issuer: JwtIssuer,
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
    /// For an API token made by someone other than its user: `api token ID made by USER`,
    /// on every audit line the token writes.
    pub(crate) via: Option<String>,
}

pub(crate) struct Authenticator {
    pub(crate) oidc: Option<Oidc>,
    pub(crate) admins: HashSet<String>,
}

impl Oidc {
    pub(crate) fn new(config: OidcConfig) -> Self {
        Self {
            user_claim: config.user_claim.clone(),
            issuer: JwtIssuer::new(IssuerConfig {
                issuer: config.issuer,
                audience: config.audience,
                jwks_url: config.jwks_url,
                jwks_file: config.jwks_file,
                jwks_refresh_seconds: config.jwks_refresh_seconds,
            }),
        }
    }

    pub(crate) async fn verify(&self, token: &str) -> Result<String, String> {
        let claims = self.issuer.verify(token).await?;
        self.user(&claims)
    }

    /// The user an ID token from a console sign-in names, once it checks out like any other
    /// and carries the `nonce` that sign-in was started with.
    pub(crate) async fn verify_login(&self, token: &str, nonce: &str) -> Result<String, String> {
        let claims = self.issuer.verify(token).await?;
        match claims.get("nonce").and_then(serde_json::Value::as_str) {
            Some(n)
                if n.len() == nonce.len()
                    && openssl::memcmp::eq(n.as_bytes(), nonce.as_bytes()) =>
            {
                self.user(&claims)
            }
            _ => Err("the ID token's nonce is not this sign-in's".to_owned()),
        }
    }

    fn user(&self, claims: &crate::jwt::Claims) -> Result<String, String> {
        // Absent is fine (many IdPs only vouch for addresses they verified); present, it must
        // say true: `"false"`, `0` or `null` are not a verification.
        match claims.get("email_verified") {
            None | Some(serde_json::Value::Bool(true)) => {}
            Some(serde_json::Value::String(s)) if s == "true" => {}
            Some(_) => return Err("the token's email is not verified".to_owned()),
        }
        claims
            .get(&self.user_claim)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the token has no `{}` claim", self.user_claim))
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
        let (user, method, via) = if token.starts_with(API_TOKEN_PREFIX) {
            let token = token.to_owned();
            // A database that is away is a 503 here too, not a reason to turn the caller away.
            let found = state
                .blocking(move |store| Ok(store.authenticate_api_token(&token)?))
                .await?
                .ok_or_else(|| {
                    ApiError::unauthenticated("unknown, revoked or expired API token")
                })?;
            let via = (found.created_by != found.user)
                .then(|| format!("api token {} made by {}", found.id, found.created_by));
            (found.user, Method::ApiToken, via)
        } else if let Some(oidc) = &self.oidc {
            (
                oidc.verify(token)
                    .await
                    .map_err(ApiError::unauthenticated)?,
                Method::Oidc,
                None,
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
            via,
        })
    }
}

/// The peer's address, when the server was started with connection info.
pub(crate) fn client_address(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address, for counting failed authentications; never refuses.
pub(crate) struct ClientAddr(pub(crate) Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_address(parts)))
    }
}

impl AppState {
    /// A bounded, rate-limited log line for a request refused before anyone was identified:
    /// the path and reason cut short and escaped, then only a count while a flood lasts.
    pub(crate) fn log_unauthenticated(&self, path: &str, reason: &str) {
        if let Some(held) = self.unauthenticated_log.admit() {
            tracing::warn!(
                path = %mailpki_store::excerpt(path, 80),
                reason = %mailpki_store::excerpt(reason, 160),
                not_logged_before = held,
                "unauthenticated request"
            );
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let addr = client_address(parts);
        if state.failures.blocked(addr) {
            return Err(ApiError::too_many_failures());
        }
        let result = state.auth.authenticate(state, header).await;
        if let Err(e) = &result
            && e.status == axum::http::StatusCode::UNAUTHORIZED
        {
            state.failures.failed(addr);
            // The reason names what was wrong with the token, never the token itself.
            state.log_unauthenticated(parts.uri.path(), &e.message);
        }
        result
    }
}
