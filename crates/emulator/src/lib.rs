//! `mailpki-emulator` is a local stand-in for the parts of the Gmail API mailpki uses and for
//! Google's OAuth token endpoint. It validates like Google (JWT signature, audience, lifetime,
//! delegated scopes; certificate chains to trusted roots through an intermediate, Gmail's
//! certificate rules, `kaclsData` size, identities on the primary address and enabled key
//! pairs, 30 days before obliteration), answers with Google's status codes and error bodies,
//! paginates, enforces per-user quotas, and injects latency and faults on request. Admin
//! endpoints under `/admin` seed users and service accounts.

mod admin;
mod auth;
mod cse;
mod errors;
mod smime;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::errors::ApiError;
use crate::state::{LoggedRequest, ServiceAccount, Shared, Tenant, User};

/// Reads a request body as the emulator's handlers do: the JSON, the PKCS#7 of a key-pair
/// upload with its certificates linted as Gmail would, and a token request's JWT parts. A
/// seam for the fuzz targets, not an API.
#[doc(hidden)]
pub fn fuzz_request_body(body: &[u8]) {
    cse::read_for_fuzzing(body);
    auth::read_for_fuzzing(body);
}

/// Scopes a new service account is authorized for unless told otherwise.
#[must_use]
pub fn default_scopes() -> Vec<String> {
    [
        "https://www.googleapis.com/auth/gmail.settings.basic",
        "https://www.googleapis.com/auth/gmail.settings.sharing",
        "https://www.googleapis.com/auth/gmail.readonly",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an emulator state file: {reason}")]
    BadState { path: PathBuf, reason: String },
    #[error("{path} is not a PEM certificate")]
    BadRoot { path: PathBuf },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cryptographic operation failed")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// How to start the emulator.
#[derive(Debug, Default)]
pub struct Config {
    /// Where the tenant is loaded from and saved to.
    pub state_file: Option<PathBuf>,
    /// Root certificates (PEM files) trusted for S/MIME.
    pub trusted_roots: Vec<PathBuf>,
    /// Users to create, CSE enabled.
    pub users: Vec<String>,
    /// Calls per second per user before 429 (0: unlimited).
    pub user_rate: f64,
}

#[derive(Clone)]
pub struct AppState {
    shared: Arc<Mutex<Shared>>,
    token_uri: String,
}

impl AppState {
    /// Registers a service account authorized for `scopes`; returns Google's key file JSON
    /// for it, with `token_uri` pointing at this emulator.
    pub async fn create_service_account(
        &self,
        scopes: Vec<String>,
    ) -> Result<Value, EmulatorError> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let private_pem = String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned();
        let public_pem = String::from_utf8_lossy(&key.public_key_to_pem()?).into_owned();
        let mut shared = self.shared.lock().await;
        let n = shared.tenant.service_accounts.len() + 1;
        let client_email = format!("mailpki-{n}@emulator.iam.gserviceaccount.com");
        let client_id = format!("1000000000000000000{n:02}");
        let private_key_id = shared.new_id("");
        shared.tenant.service_accounts.insert(
            client_email.clone(),
            ServiceAccount::from((client_email.clone(), client_id.clone(), public_pem, scopes)),
        );
        shared.save();
        Ok(json!({
            "type": "service_account",
            "project_id": "mailpki-emulator",
            "private_key_id": private_key_id,
            "private_key": private_pem,
            "client_email": client_email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "universe_domain": "googleapis.com",
        }))
    }
}

/// Applies injected latency and faults to Gmail calls and logs every request.
async fn faults_and_log(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let gmail = path.starts_with("/gmail/");
    let (latency, injected) = {
        let mut shared = app.shared.lock().await;
        let latency = shared.faults.latency_ms;
        let mut injected = if gmail {
            shared.faults.fail_next.pop_front()
        } else if path == "/token" {
            shared.faults.token_fail_next.pop_front()
        } else {
            None
        };
        if gmail && injected.is_none() && shared.faults.error_rate > 0.0 {
            let mut b = [0u8; 4];
            let _ = openssl::rand::rand_bytes(&mut b);
            if f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX) < shared.faults.error_rate {
                injected = Some(503);
            }
        }
        (if gmail { latency } else { 0 }, injected)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let response = match injected {
        Some(status) => ApiError::injected(status).into_response(),
        None => next.run(request).await,
    };
    if !path.starts_with("/admin/") {
        let mut shared = app.shared.lock().await;
        if shared.log.len() < 100_000 {
            shared.log.push(LoggedRequest {
                method,
                path,
                status: response.status().as_u16(),
            });
        }
    }
    response
}

async fn unknown_route() -> Response {
    ApiError::method_not_found().into_response()
}

fn router(app: AppState) -> Router {
    let base = "/gmail/v1/users/{user}/settings";
    Router::new()
        .route("/token", post(auth::token))
        .route(
            &format!("{base}/cse/keypairs"),
            post(cse::create_key_pair).get(cse::list_key_pairs),
        )
        .route(
            &format!("{base}/cse/keypairs/{{id}}"),
            get(cse::get_key_pair).post(cse::key_pair_action),
        )
        .route(
            &format!("{base}/cse/identities"),
            post(cse::create_identity).get(cse::list_identities),
        )
        .route(
            &format!("{base}/cse/identities/{{email}}"),
            get(cse::get_identity)
                .patch(cse::patch_identity)
                .delete(cse::delete_identity),
        )
        .route(&format!("{base}/sendAs"), get(cse::list_send_as))
        .route(&format!("{base}/sendAs/{{send_as}}"), get(cse::get_send_as))
        .route(
            &format!("{base}/sendAs/{{send_as}}/smimeInfo"),
            post(smime::insert).get(smime::list),
        )
        .route(
            &format!("{base}/sendAs/{{send_as}}/smimeInfo/{{id}}"),
            get(smime::get).delete(smime::delete),
        )
        .route(
            &format!("{base}/sendAs/{{send_as}}/smimeInfo/{{id}}/setDefault"),
            post(smime::set_default),
        )
        .route("/admin/users", post(admin::put_user))
        .route("/admin/service-accounts", post(admin::new_service_account))
        .route("/admin/trusted-roots", post(admin::add_root))
        .route("/admin/faults", post(admin::set_faults))
        .route("/admin/clock", post(admin::advance_clock))
        .route("/admin/quota", post(admin::set_quota))
        .route("/admin/requests", get(admin::requests))
        .route("/admin/state", get(admin::state))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .layer(middleware::from_fn_with_state(app.clone(), faults_and_log))
        .layer(middleware::from_fn(length_required))
        .with_state(app)
}

/// Google's front end refuses an HTTP/1.1 POST, PUT or PATCH that says neither how long its
/// body is nor that it is chunked: 411 and an HTML page, before any API logic. A client that
/// sends `setDefault` with no body must still send `Content-Length: 0`.
async fn length_required(request: Request, next: Next) -> Response {
    use axum::http::{Method, header};
    let needs_length = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    );
    let headers = request.headers();
    if needs_length
        && request.version() <= axum::http::Version::HTTP_11
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
    {
        return (
            axum::http::StatusCode::LENGTH_REQUIRED,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            "<!DOCTYPE html>\n<html lang=en><title>Error 411 (Length Required)!!1</title>\n\
             <p><b>411.</b> <ins>That\u{2019}s an error.</ins>\n\
             <p>POST requests require a <code>Content-length</code> header.  \
             <ins>That\u{2019}s all we know.</ins>\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// A bound emulator, ready to serve.
pub struct Emulator {
    listener: TcpListener,
    app: AppState,
    url: String,
}

impl Emulator {
    /// Binds `addr` (port 0 picks a free one) and loads the tenant.
    pub async fn bind(addr: &str, config: Config) -> Result<Self, EmulatorError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let local: SocketAddr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: addr.to_owned(),
                source,
            })?;
        let url = format!("http://{local}");
        let mut tenant = match &config.state_file {
            Some(path) if path.exists() => {
                let bytes = std::fs::read(path).map_err(|source| EmulatorError::Io {
                    path: path.clone(),
                    source,
                })?;
                serde_json::from_slice::<Tenant>(&bytes).map_err(|e| EmulatorError::BadState {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            _ => Tenant::default(),
        };
        for path in &config.trusted_roots {
            let pem = std::fs::read_to_string(path).map_err(|source| EmulatorError::Io {
                path: path.clone(),
                source,
            })?;
            let certs = openssl::x509::X509::stack_from_pem(pem.as_bytes())
                .map_err(|_| EmulatorError::BadRoot { path: path.clone() })?;
            if certs.is_empty() {
                return Err(EmulatorError::BadRoot { path: path.clone() });
            }
            for cert in certs {
                let text = String::from_utf8_lossy(&cert.to_pem()?).into_owned();
                if !tenant.trusted_roots.contains(&text) {
                    tenant.trusted_roots.push(text);
                }
            }
        }
        for email in &config.users {
            tenant
                .users
                .entry(email.to_ascii_lowercase())
                .or_insert_with(|| User {
                    primary: email.clone(),
                    cse_enabled: true,
                    ..User::default()
                });
        }
        let shared = Shared {
            tenant,
            user_rate: config.user_rate,
            state_file: config.state_file,
            ..Shared::default()
        };
        shared.save();
        let app = AppState {
            shared: Arc::new(Mutex::new(shared)),
            token_uri: format!("{url}/token"),
        };
        Ok(Self { listener, app, url })
    }

    /// The base URL (`http://127.0.0.1:PORT`): the Gmail API and `/token` live under it.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    #[must_use]
    pub fn state(&self) -> AppState {
        self.app.clone()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), EmulatorError> {
        let addr = self.url.clone();
        axum::serve(self.listener, router(self.app))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|source| EmulatorError::Bind { addr, source })
    }
}
