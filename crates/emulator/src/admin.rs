//! Admin endpoints under `/admin` for tests and CI scripts: create users and aliases, toggle
//! CSE, register service accounts (returning a ready key file), trust roots, inject faults,
//! move the clock, set quotas, read the request log. Not part of Google's API.

use std::collections::VecDeque;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::state::{ServiceAccount, User};

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// A JSON body read whatever the `Content-Type` says (CI scripts post with `curl -d`, which
/// sends a form type); a body that is not the JSON asked for says exactly what is wrong. An
/// empty body reads as `null`, so `Option<T>` bodies may be left out.
pub(crate) struct AdminJson<T>(pub(crate) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S>
    for AdminJson<T>
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(Self)
            .map_err(|e| bad_request(&format!("the body must be JSON: {e}")))
    }
}

#[derive(Deserialize)]
pub(crate) struct NewUser {
    email: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default = "yes")]
    cse_enabled: bool,
}

fn yes() -> bool {
    true
}

/// `POST /admin/users`: creates or updates a user.
pub(crate) async fn put_user(
    State(app): State<AppState>,
    AdminJson(new): AdminJson<NewUser>,
) -> Response {
    if !new.email.contains('@') {
        return bad_request("email must be an address");
    }
    let mut shared = app.shared.lock().await;
    let key = new.email.to_ascii_lowercase();
    let user = shared.tenant.users.entry(key).or_insert_with(|| User {
        primary: new.email.clone(),
        ..User::default()
    });
    user.aliases = new.aliases;
    user.cse_enabled = new.cse_enabled;
    shared.save();
    Json(json!({"email": new.email, "cse_enabled": new.cse_enabled})).into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct NewServiceAccount {
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// `POST /admin/service-accounts`: registers a new service account authorized for the given
/// scopes (default: the Gmail settings scopes) and returns its key file.
pub(crate) async fn new_service_account(
    State(app): State<AppState>,
    AdminJson(body): AdminJson<Option<NewServiceAccount>>,
) -> Response {
    let scopes = body
        .and_then(|b| b.scopes)
        .unwrap_or_else(crate::default_scopes);
    match app.create_service_account(scopes).await {
        Ok(key_file) => Json(key_file).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `POST /admin/trusted-roots`: trusts a root certificate (PEM body).
pub(crate) async fn add_root(State(app): State<AppState>, body: String) -> Response {
    if openssl::x509::X509::from_pem(body.as_bytes()).is_err() {
        return bad_request("the body is not a PEM certificate");
    }
    let mut shared = app.shared.lock().await;
    shared.tenant.trusted_roots.push(body);
    shared.save();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
pub(crate) struct FaultSpec {
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    fail_next: Vec<u16>,
    #[serde(default)]
    error_rate: f64,
    #[serde(default)]
    token_fail_next: Vec<u16>,
}

/// `POST /admin/faults`: latency for every Gmail call, statuses for the next calls, a random
/// 503 rate.
pub(crate) async fn set_faults(
    State(app): State<AppState>,
    AdminJson(spec): AdminJson<FaultSpec>,
) -> Response {
    if !(0.0..=1.0).contains(&spec.error_rate) {
        return bad_request("error_rate is between 0 and 1");
    }
    let mut shared = app.shared.lock().await;
    shared.faults.latency_ms = spec.latency_ms;
    shared.faults.fail_next = VecDeque::from(spec.fail_next);
    shared.faults.error_rate = spec.error_rate;
    shared.faults.token_fail_next = VecDeque::from(spec.token_fail_next);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
pub(crate) struct ClockSpec {
    advance_seconds: i64,
}

/// `POST /admin/clock`: moves the emulator's clock forward.
pub(crate) async fn advance_clock(
    State(app): State<AppState>,
    AdminJson(spec): AdminJson<ClockSpec>,
) -> Response {
    let mut shared = app.shared.lock().await;
    shared.tenant.clock_offset_secs += spec.advance_seconds;
    shared.save();
    Json(json!({"now": shared.now()})).into_response()
}

#[derive(Deserialize)]
pub(crate) struct QuotaSpec {
    per_user_per_second: f64,
}

/// `POST /admin/quota`: calls per second per user before 429 (0: unlimited).
pub(crate) async fn set_quota(
    State(app): State<AppState>,
    AdminJson(spec): AdminJson<QuotaSpec>,
) -> Response {
    let mut shared = app.shared.lock().await;
    shared.user_rate = spec.per_user_per_second.max(0.0);
    shared.buckets.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /admin/requests`: every request so far (method, path, status).
pub(crate) async fn requests(State(app): State<AppState>) -> Json<Value> {
    let shared = app.shared.lock().await;
    Json(json!(shared.log))
}

/// `GET /admin/state`: the tenant, for inspection.
pub(crate) async fn state(State(app): State<AppState>) -> Json<Value> {
    let shared = app.shared.lock().await;
    Json(serde_json::to_value(&shared.tenant).unwrap_or_default())
}

impl From<(String, String, String, Vec<String>)> for ServiceAccount {
    fn from(
        (client_email, client_id, public_key_pem, scopes): (String, String, String, Vec<String>),
    ) -> Self {
        Self {
            client_email,
            client_id,
            public_key_pem,
            scopes,
        }
    }
}
