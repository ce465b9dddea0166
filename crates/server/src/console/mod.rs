//! The web console under `/console` on the main listener (never the publish listener): pages
//! rendered on the server from templates compiled into the binary, no script at all, every
//! value escaped by the template engine. Off unless `[server.console]` is configured.
//!
//! Sign-in is OIDC's authorization code flow with PKCE against `[server.oidc]`'s issuer, or an
//! API token for a break-glass admin ([`login`]). A session is a random cookie (`HttpOnly`,
//! `Secure`, `SameSite=Strict`, path `/console`) naming an entry in this instance's memory, so
//! behind a load balancer sessions need sticky routing. Every state change is a POST carrying
//! the session's CSRF token; every page answers with a Content-Security-Policy that allows
//! nothing but this server's own stylesheet. What a page shows and does is decided by the
//! store, as for `/v1`: the console acts as the signed-in user.

mod batches;
mod chart;
mod login;
mod pages;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mailpki_store::Actor;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{Caller, Method};

/// Where the console lives.
pub(crate) const PREFIX: &str = "/console";
const SESSION_COOKIE: &str = "mailpki_session";
/// At most this many live sessions per instance; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// `[server.console]`: the web console. Present means on. Its OIDC client ID is
/// `[server.oidc]`'s `audience`, which the ID tokens must carry.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A file holding the client secret, for an IdP that does not take public clients (PKCE
    /// is used either way).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The server's URL as browsers reach it; the IdP sends them back to
    /// `{url}/console/callback` [default: the address the server listens on].
    #[serde(default)]
    pub url: Option<String>,
    /// The IdP's endpoints [default: from `{issuer}/.well-known/openid-configuration`].
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The service account's JSON key file: with it, server admins run onboarding batches
    /// from the console against Gmail.
    #[serde(default)]
    pub service_account_key: Option<PathBuf>,
    /// The Gmail API base URL [default: https://gmail.googleapis.com].
    #[serde(default)]
    pub gmail_api_url: Option<String>,
    /// The key service URL written into key pairs [default: this server's `[server.kacls]`].
    #[serde(default)]
    pub kacls_url: Option<String>,
    /// Where batches' uploaded CSVs and reports are kept [default:
    /// `$HOME/.local/state/mailpki/console-batches`].
    #[serde(default)]
    pub batch_dir: Option<PathBuf>,
    /// How long a session lasts without being used [default: 60].
    #[serde(default = "default_idle")]
    pub idle_minutes: u64,
    /// How long a session lasts at most [default: 600].
    #[serde(default = "default_session")]
    pub session_minutes: u64,
}

fn default_idle() -> u64 {
    60
}

fn default_session() -> u64 {
    600
}

/// A signed-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) actor: Actor,
    pub(crate) admin: bool,
    pub(crate) method: Method,
    pub(crate) via: Option<String>,
    /// Every form carries it; a POST without it changes nothing.
    pub(crate) csrf: String,
    started: Instant,
    used: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("actor", &self.actor)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn caller(&self) -> Caller {
        Caller {
            actor: self.actor.clone(),
            admin: self.admin,
            method: self.method,
            via: self.via.clone(),
        }
    }
}

/// The console's state: configuration, the IdP's endpoints, sessions and logins under way.
pub(crate) struct Console {
    pub(crate) config: ConsoleConfig,
    /// `scheme://host[:port]` of that URL: what browsers send as `Origin` with its forms.
    pub(crate) origin: String,
    pub(crate) secure_cookies: bool,
    pub(crate) login: login::Login,
    pub(crate) batches: batches::Batches,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

/// A random value for a cookie, a CSRF token, a PKCE verifier or a `state`: 32 bytes, base64url.
pub(crate) fn random_token() -> Result<String, PageError> {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).map_err(|_| PageError::internal())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn key(cookie: &str) -> [u8; 32] {
    openssl::sha::sha256(cookie.as_bytes())
}

impl Console {
    pub(crate) fn new(
        config: ConsoleConfig,
        server_url: &str,
        oidc: Option<&crate::OidcConfig>,
        kacls_url: Option<String>,
    ) -> Result<Self, String> {
        let google = match &config.service_account_key {
            Some(path) => {
                let key =
                    mailpki_gmail::ServiceAccountKey::from_file(path).map_err(|e| e.to_string())?;
                let http = mailpki_gmail::GmailClient::http_client().map_err(|e| e.to_string())?;
                let tokens = Arc::new(
                    mailpki_gmail::TokenSource::new(key, http.clone())
                        .map_err(|e| e.to_string())?,
                );
                let api = config
                    .gmail_api_url
                    .clone()
                    .unwrap_or_else(|| mailpki_gmail::DEFAULT_API_URL.to_owned());
                Some(batches::Google {
                    gmail: mailpki_gmail::GmailClient::new(&api, tokens, http),
                    kacls_url: config.kacls_url.clone().or(kacls_url),
                })
            }
            None => None,
        };
        let batch_dir = config.batch_dir.clone().unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".local/state/mailpki/console-batches")
        });
        let url = config
            .url
            .clone()
            .unwrap_or_else(|| server_url.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let origin = reqwest::Url::parse(&url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        Ok(Self {
            origin,
            secure_cookies: true,
            login: login::Login::new(&config, oidc, &url),
            batches: batches::Batches::new(google, batch_dir),
            config,
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session; the value to set as the cookie.
    pub(crate) fn start(&self, caller: &Caller) -> Result<String, PageError> {
        let cookie = random_token()?;
        let now = Instant::now();
        let session = Session {
            actor: caller.actor.clone(),
            admin: caller.admin,
            method: caller.method,
            via: caller.via.clone(),
            csrf: random_token()?,
            started: now,
            used: now,
        };
        let mut sessions = self.sessions();
        if sessions.len() >= MAX_SESSIONS {
            let (idle, max) = self.lifetimes();
            sessions.retain(|_, s| s.used.elapsed() < idle && s.started.elapsed() < max);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(key(&cookie), session);
        Ok(cookie)
    }

    fn lifetimes(&self) -> (Duration, Duration) {
        (
            Duration::from_secs(self.config.idle_minutes.max(1) * 60),
            Duration::from_secs(self.config.session_minutes.max(1) * 60),
        )
    }

    /// The live session `cookie` names, marked as used now.
    fn session(&self, cookie: &str) -> Option<Session> {
        let (idle, max) = self.lifetimes();
        let mut sessions = self.sessions();
        let id = key(cookie);
        let live = sessions
            .get(&id)
            .is_some_and(|s| s.used.elapsed() < idle && s.started.elapsed() < max);
        if !live {
            sessions.remove(&id);
            return None;
        }
        let session = sessions.get_mut(&id)?;
        session.used = Instant::now();
        Some(session.clone())
    }

    pub(crate) fn end(&self, cookie: &str) {
        self.sessions().remove(&key(cookie));
    }

    /// `Set-Cookie` for a session (or, with an empty value, its removal).
    pub(crate) fn session_cookie(&self, value: &str) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let age = if value.is_empty() {
            0
        } else {
            self.config.session_minutes.max(1) * 60
        };
        format!(
            "{SESSION_COOKIE}={value}; Path={PREFIX}; HttpOnly{secure}; SameSite=Strict; Max-Age={age}"
        )
    }
}

/// The console of a server that has one.
pub(crate) fn console(app: &AppState) -> Result<&Console, PageError> {
    app.console
        .as_deref()
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no console here"))
}

/// The value of cookie `name` in the request.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A page error: the status and a message shown as text.
#[derive(Debug)]
pub(crate) struct PageError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl PageError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<crate::error::ApiError> for PageError {
    fn from(e: crate::error::ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "a console page failed to render");
        Self::internal()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        pages::error_page(self.status, &self.message)
    }
}

/// The signed-in user of a page; a browser without a session is sent to the sign-in page.
pub(crate) struct Signed(pub(crate) Session);

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let console = app
            .console
            .as_ref()
            .ok_or_else(|| StatusCode::NOT_FOUND.into_response())?;
        cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|c| console.session(c))
            .map(Self)
            .ok_or_else(|| Redirect::to(&format!("{PREFIX}/login")).into_response())
    }
}

impl Signed {
    /// Refuses a state change another site sent (`Origin`) or whose CSRF token is not the
    /// session's: every POST of a signed-in page goes through here.
    pub(crate) fn check_form(
        &self,
        app: &AppState,
        headers: &axum::http::HeaderMap,
        csrf: &str,
    ) -> Result<(), PageError> {
        login::same_origin(console(app)?, headers)?;
        self.check_csrf(csrf)
    }

    fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        // `memcmp::eq` takes equal lengths only.
        if sent.len() == self.0.csrf.len()
            && openssl::memcmp::eq(sent.as_bytes(), self.0.csrf.as_bytes())
        {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                "this form has expired or was not sent from this console: reload the page and try again",
            ))
        }
    }
}

/// Headers on every console answer: nothing runs but what this server serves, no framing, no
/// caching of pages that show what the user may see.
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The console's routes, nested under [`PREFIX`].
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(login::routes())
        .merge(pages::routes())
        .merge(pages::batch_routes())
        .merge(pages::more_routes())
        .layer(axum::middleware::from_fn(security_headers))
}
