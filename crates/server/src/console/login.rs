//! Signing in and out. OIDC's authorization code flow with PKCE (S256) against the
//! `[server.oidc]` issuer: `state` ties the answer to the browser that asked (a `SameSite=Lax`
//! cookie, as the IdP's redirect back is a cross-site navigation), `nonce` ties the ID token to
//! this login, and the token is checked like any `/v1` OIDC token (signature, `iss`, `aud`,
//! `exp`, the user claim). An API token may be used instead, for a break-glass admin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{ConsoleConfig, PREFIX, PageError, Signed, console, cookie, random_token};
use crate::AppState;
use crate::auth::{Caller, ClientAddr, Method};

const LOGIN_COOKIE: &str = "mailpki_login";
/// A login must come back from the IdP within this time.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// At most this many logins under way per instance.
const MAX_PENDING: usize = 10_000;

struct Pending {
    verifier: String,
    nonce: String,
    started: Instant,
}

/// The IdP's endpoints, from configuration or its discovery document.
#[derive(Clone, Debug, Deserialize)]
struct Endpoints {
    authorization_endpoint: String,
    token_endpoint: String,
}

pub(crate) struct Login {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<std::path::PathBuf>,
    configured: Option<Endpoints>,
    discovered: OnceCell<Endpoints>,
    redirect_uri: String,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Login {
    pub(crate) fn new(config: &ConsoleConfig, oidc: Option<&crate::OidcConfig>, url: &str) -> Self {
        let configured = match (&config.authorization_endpoint, &config.token_endpoint) {
            (Some(a), Some(t)) => Some(Endpoints {
                authorization_endpoint: a.clone(),
                token_endpoint: t.clone(),
            }),
            _ => None,
        };
        Self {
            issuer: oidc.map(|o| o.issuer.clone()),
            client_id: oidc.map(|o| o.audience.clone()),
            client_secret_file: config.client_secret_file.clone(),
            configured,
            discovered: OnceCell::new(),
            redirect_uri: format!("{url}{PREFIX}/callback"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn endpoints(&self) -> Result<Endpoints, PageError> {
        if let Some(e) = &self.configured {
            return Ok(e.clone());
        }
        let issuer = self.issuer.as_deref().ok_or_else(no_oidc)?;
        self.discovered
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let found = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                let document = match found {
                    Ok(reply) => reply.json::<Endpoints>().await,
                    Err(e) => Err(e),
                };
                document.map_err(|e| {
                    tracing::warn!(url = %url, error = %e, "OIDC discovery failed");
                    PageError::new(
                        StatusCode::BAD_GATEWAY,
                        format!(
                            "the identity provider's discovery document ({url}) cannot be read"
                        ),
                    )
                })
            })
            .await
            .cloned()
    }

    fn client_secret(&self) -> Result<Option<SecretString>, PageError> {
        let Some(path) = &self.client_secret_file else {
            return Ok(None);
        };
        std::fs::read_to_string(path)
            .map(|s| Some(SecretString::from(s.trim().to_owned())))
            .map_err(|e| {
                tracing::error!(path = %path.display(), error = %e, "cannot read the console's client secret");
                PageError::internal()
            })
    }
}

fn no_oidc() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "no identity provider is configured ([server.oidc]); sign in with an API token",
    )
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    issuer: Option<&'a str>,
    message: Option<&'a str>,
}

fn login_page(app: &AppState, status: StatusCode, message: Option<&str>) -> Response {
    let issuer = app.console.as_ref().and_then(|c| c.login.issuer.as_deref());
    match (LoginPage { issuer, message }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

async fn show(State(app): State<AppState>) -> Response {
    login_page(&app, StatusCode::OK, None)
}

/// Sends the browser to the IdP with a fresh `state`, `nonce` and PKCE challenge.
async fn start(State(app): State<AppState>) -> Result<Response, PageError> {
    let console = console(&app)?;
    let login = &console.login;
    let client_id = login.client_id.as_deref().ok_or_else(no_oidc)?;
    let endpoints = login.endpoints().await?;
    let (state, nonce, verifier) = (random_token()?, random_token()?, random_token()?);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    {
        let mut pending = login.pending();
        pending.retain(|_, p| p.started.elapsed() < LOGIN_TTL);
        if pending.len() >= MAX_PENDING {
            return Err(PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many sign-ins under way: try again in a few minutes",
            ));
        }
        pending.insert(
            state.clone(),
            Pending {
                verifier,
                nonce: nonce.clone(),
                started: Instant::now(),
            },
        );
    }
    let mut target = reqwest::Url::parse(&endpoints.authorization_endpoint).map_err(|_| {
        PageError::new(
            StatusCode::BAD_GATEWAY,
            "the identity provider's authorization endpoint is not a URL",
        )
    })?;
    target
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &login.redirect_uri)
        .append_pair("scope", "openid email")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let secure = if console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{LOGIN_COOKIE}={state}; Path={PREFIX}; HttpOnly{secure}; SameSite=Lax; Max-Age={}",
        LOGIN_TTL.as_secs()
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(target.as_str()),
    )
        .into_response())
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct TokenReply {
    id_token: String,
}

/// The IdP's answer: the code exchanged with the PKCE verifier, the ID token checked.
async fn callback(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Result<Response, PageError> {
    let console = console(&app)?;
    if let Some(error) = &answer.error {
        let detail = answer.error_description.as_deref().unwrap_or_default();
        let message = format!(
            "the identity provider refused the sign-in: {} {}",
            mailpki_store::excerpt(error, 80),
            mailpki_store::excerpt(detail, 200)
        );
        return Ok(login_page(
            &app,
            StatusCode::UNAUTHORIZED,
            Some(message.trim()),
        ));
    }
    let (Some(code), Some(state)) = (answer.code, answer.state) else {
        return Err(PageError::bad("the sign-in answer has no code or state"));
    };
    // The state must be the one this browser was given, and still waiting.
    let from_this_browser = cookie(&headers, LOGIN_COOKIE).is_some_and(|c| {
        c.len() == state.len() && openssl::memcmp::eq(c.as_bytes(), state.as_bytes())
    });
    let pending = if from_this_browser {
        console.login.pending().remove(&state)
    } else {
        None
    };
    let Some(pending) = pending.filter(|p| p.started.elapsed() < LOGIN_TTL) else {
        app.failures.failed(addr);
        return Ok(login_page(
            &app,
            StatusCode::BAD_REQUEST,
            Some("this sign-in was not started here, or took too long: sign in again"),
        ));
    };
    let user = match exchange(&app, console, &code, &pending).await {
        Ok(user) => user,
        Err(reason) => {
            app.failures.failed(addr);
            app.log_unauthenticated(&format!("{PREFIX}/callback"), &reason);
            return Ok(login_page(
                &app,
                StatusCode::UNAUTHORIZED,
                Some("the identity provider's answer could not be verified: sign in again"),
            ));
        }
    };
    signed_in(&app, user, Method::Oidc, None).await
}

/// Trades the code for an ID token and checks it; the user it names.
async fn exchange(
    app: &AppState,
    console: &super::Console,
    code: &str,
    pending: &Pending,
) -> Result<String, String> {
    let login = &console.login;
    let endpoints = login.endpoints().await.map_err(|e| e.message)?;
    let client_id = login.client_id.clone().unwrap_or_default();
    let secret = login.client_secret().map_err(|e| e.message)?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", login.redirect_uri.clone()),
        ("client_id", client_id),
        ("code_verifier", pending.verifier.clone()),
    ];
    if let Some(secret) = &secret {
        form.push(("client_secret", secret.expose_secret().to_owned()));
    }
    let reply = login
        .http
        .post(&endpoints.token_endpoint)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("the token endpoint cannot be reached: {e}"))?;
    if !reply.status().is_success() {
        return Err(format!("the token endpoint answered {}", reply.status()));
    }
    let token: TokenReply = reply
        .json()
        .await
        .map_err(|e| format!("the token endpoint's answer has no ID token: {e}"))?;
    let oidc = app
        .auth
        .oidc
        .as_ref()
        .ok_or("no OIDC issuer is configured")?;
    oidc.verify_login(&token.id_token, &pending.nonce).await
}

/// Starts the session; the page that sets the cookie moves on with a same-site navigation,
/// as a `SameSite=Strict` cookie is not sent on the rest of a redirect chain that began at the
/// IdP.
async fn signed_in(
    app: &AppState,
    user: String,
    method: Method,
    via: Option<String>,
) -> Result<Response, PageError> {
    let console = console(app)?;
    let actor = mailpki_store::Actor::new(user)
        .map_err(|e| PageError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let caller = Caller {
        admin: app.auth.admins.contains(actor.as_str()),
        actor,
        method,
        via,
    };
    let cookie = console.start(&caller)?;
    app.audit_via(
        caller.actor.as_str(),
        caller.via.as_deref(),
        "console.sign_in",
        None,
        Ok(()),
    )
    .await;
    let clear_login = format!("{LOGIN_COOKIE}=; Path={PREFIX}; HttpOnly; SameSite=Lax; Max-Age=0");
    let mut headers = HeaderMap::new();
    for value in [console.session_cookie(&cookie), clear_login] {
        if let Ok(v) = value.parse() {
            headers.append(header::SET_COOKIE, v);
        }
    }
    Ok((headers, Html(super::pages::moving_on(PREFIX)?)).into_response())
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

/// Break-glass sign-in with an API token.
async fn with_token(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Result<Response, PageError> {
    let console = console(&app)?;
    same_origin(console, &headers)?;
    if app.failures.blocked(addr) {
        return Err(PageError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins from this address: wait a minute",
        ));
    }
    let token = form.token.trim();
    if !token.starts_with(mailpki_store::API_TOKEN_PREFIX) {
        return Ok(login_page(
            &app,
            StatusCode::UNAUTHORIZED,
            Some("that is not an API token (they start with mpk_)"),
        ));
    }
    match app
        .auth
        .authenticate(&app, Some(&format!("Bearer {token}")))
        .await
    {
        Ok(caller) => signed_in(&app, caller.actor.to_string(), Method::ApiToken, caller.via).await,
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED {
                app.failures.failed(addr);
                app.log_unauthenticated(&format!("{PREFIX}/login/token"), &e.message);
            }
            Ok(login_page(&app, e.status, Some(&e.message)))
        }
    }
}

/// Refuses a form another site sent: browsers name the page's origin on every POST.
pub(crate) fn same_origin(console: &super::Console, headers: &HeaderMap) -> Result<(), PageError> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match origin {
        Some(o) if o != console.origin => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "this form was sent from another site",
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(app): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    let console = console(&app)?;
    signed.check_form(&app, &headers, &form.csrf)?;
    if let Some(c) = cookie(&headers, super::SESSION_COOKIE) {
        console.end(c);
    }
    app.audit_via(
        signed.0.actor.as_str(),
        signed.0.via.as_deref(),
        "console.sign_out",
        None,
        Ok(()),
    )
    .await;
    Ok((
        [(header::SET_COOKIE, console.session_cookie(""))],
        Redirect::to(&format!("{PREFIX}/login")),
    )
        .into_response())
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(show))
        .route("/login/oidc", get(start))
        .route("/login/token", post(with_token))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
}
