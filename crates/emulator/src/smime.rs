//! `users.settings.sendAs.smimeInfo`: hosted S/MIME certificates per send-as address. Insert
//! takes only `pkcs12` (base64url) and `encryptedKeyPassword`, checks the certificate as Gmail
//! does (address, validity, chain to a trusted root through an intermediate, Gmail's rules) and
//! answers a bare `invalidArgument` when it refuses, as Google does.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::authorize;
use crate::cse::{parse_body, rejected, verify_chain, x509_not_after};
use crate::errors::ApiError;
use crate::state::{Shared, SmimeEntry};

const BASIC: &str = "https://www.googleapis.com/auth/gmail.settings.basic";
const SHARING: &str = "https://www.googleapis.com/auth/gmail.settings.sharing";

fn entry_json(e: &SmimeEntry) -> Value {
    json!({
        "id": e.id,
        "issuerCn": e.issuer_cn,
        "isDefault": e.is_default,
        "expiration": e.expiration_ms.to_string(),
        "pem": e.pem,
    })
}

/// The user and the send-as address, after the checks every smimeInfo call makes: the
/// address is the user's primary or one of its aliases; aliases need the sharing scope.
fn open(
    shared: &mut Shared,
    headers: &HeaderMap,
    user: &str,
    send_as: &str,
) -> Result<(String, String), ApiError> {
    // `me` is the token's user (Google resolves it before anything else), so its primary
    // address needs only the basic scope, as the address spelled out does.
    let owner = if user == "me" {
        crate::auth::token_user(shared, headers)?
    } else {
        user.to_owned()
    };
    let primary = shared
        .user(&owner)
        .map(|u| u.primary.clone())
        .unwrap_or_default();
    let scopes: &[&str] = if send_as.eq_ignore_ascii_case(&primary) || send_as == "me" {
        &[BASIC, SHARING]
    } else {
        &[SHARING]
    };
    let user = authorize(shared, headers, user, scopes)?;
    let u = shared.user(&user).ok_or_else(ApiError::not_found)?;
    let known = u.primary.eq_ignore_ascii_case(send_as)
        || u.aliases.iter().any(|a| a.eq_ignore_ascii_case(send_as));
    if !known {
        return Err(ApiError::not_found());
    }
    Ok((user, send_as.to_ascii_lowercase()))
}

fn decode_pkcs12(text: &str) -> Option<Vec<u8>> {
    let trimmed = text.trim();
    URL_SAFE
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .or_else(|_| STANDARD.decode(trimmed))
        .ok()
}

/// `POST .../sendAs/{sendAs}/smimeInfo`.
pub(crate) async fn insert(
    State(app): State<AppState>,
    Path((user, send_as)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let (user, send_as) = open(&mut shared, &headers, &user, &send_as)?;
    let body = parse_body(&body)?;
    if let Some(extra) = body.as_object().and_then(|o| {
        o.keys()
            .find(|k| *k != "pkcs12" && *k != "encryptedKeyPassword")
    }) {
        return Err(ApiError::invalid_argument(format!(
            "Invalid field {extra}: only pkcs12 and encryptedKeyPassword may be set."
        )));
    }
    let der = body["pkcs12"]
        .as_str()
        .and_then(decode_pkcs12)
        .ok_or_else(|| rejected("pkcs12 is missing or not base64url"))?;
    let password = body["encryptedKeyPassword"].as_str().unwrap_or_default();
    let parsed = Pkcs12::from_der(&der)
        .and_then(|p| p.parse2(password))
        .map_err(|_| rejected("the PKCS#12 does not open with that password"))?;
    let (Some(leaf), Some(_key)) = (parsed.cert, parsed.pkey) else {
        return Err(rejected(
            "the PKCS#12 needs a certificate and its private key",
        ));
    };
    let chain: Vec<openssl::x509::X509> = parsed
        .ca
        .map(|s| s.into_iter().collect())
        .unwrap_or_default();
    let leaf_der = leaf
        .to_der()
        .map_err(|_| rejected("unreadable certificate"))?;
    let chain_der: Vec<Vec<u8>> = chain.iter().filter_map(|c| c.to_der().ok()).collect();
    let report = mailpki_issuance::lint(
        &leaf_der,
        &chain_der,
        &mailpki_issuance::LintOptions {
            expected_email: send_as.parse().ok(),
            at: Some(shared.now()),
        },
    )
    .map_err(|e| rejected(&e.to_string()))?;
    if let Some(f) = report.rejections().next() {
        return Err(rejected(&format!("[{}] {}", f.rule, f.message)));
    }
    verify_chain(&shared, &leaf, &chain)?;
    let issuer_cn = leaf
        .issuer_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default();
    let mut pem = String::from_utf8_lossy(&leaf.to_pem().unwrap_or_default()).into_owned();
    for c in &chain {
        pem.push_str(&String::from_utf8_lossy(&c.to_pem().unwrap_or_default()));
    }
    let entry = SmimeEntry {
        id: shared.new_id("sm"),
        issuer_cn,
        expiration_ms: x509_not_after(&leaf_der) * 1000,
        pem,
        is_default: false,
    };
    let reply = entry_json(&entry);
    if let Some(u) = shared.user_mut(&user) {
        u.smime.entry(send_as).or_default().push(entry);
    }
    shared.save();
    Ok(Json(reply).into_response())
}

/// `GET .../sendAs/{sendAs}/smimeInfo`.
pub(crate) async fn list(
    State(app): State<AppState>,
    Path((user, send_as)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let (user, send_as) = open(&mut shared, &headers, &user, &send_as)?;
    let entries = shared
        .user(&user)
        .and_then(|u| u.smime.get(&send_as))
        .cloned()
        .unwrap_or_default();
    Ok(
        Json(json!({"smimeInfo": entries.iter().map(entry_json).collect::<Vec<_>>()}))
            .into_response(),
    )
}

/// `GET .../smimeInfo/{id}`.
pub(crate) async fn get(
    State(app): State<AppState>,
    Path((user, send_as, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let (user, send_as) = open(&mut shared, &headers, &user, &send_as)?;
    let entry = shared
        .user(&user)
        .and_then(|u| u.smime.get(&send_as))
        .and_then(|list| list.iter().find(|e| e.id == id))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(entry_json(entry)).into_response())
}

/// The certificates of one address, for changing.
fn entries_mut<'a>(
    shared: &'a mut Shared,
    user: &str,
    send_as: &str,
) -> Result<&'a mut Vec<SmimeEntry>, ApiError> {
    shared
        .user_mut(user)
        .and_then(|u| u.smime.get_mut(send_as))
        .ok_or_else(ApiError::not_found)
}

/// `DELETE .../smimeInfo/{id}`.
pub(crate) async fn delete(
    State(app): State<AppState>,
    Path((user, send_as, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let (user, send_as) = open(&mut shared, &headers, &user, &send_as)?;
    let list = entries_mut(&mut shared, &user, &send_as)?;
    let before = list.len();
    list.retain(|e| e.id != id);
    if list.len() == before {
        return Err(ApiError::not_found());
    }
    shared.save();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST .../smimeInfo/{id}/setDefault`.
pub(crate) async fn set_default(
    State(app): State<AppState>,
    Path((user, send_as, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let (user, send_as) = open(&mut shared, &headers, &user, &send_as)?;
    let list = entries_mut(&mut shared, &user, &send_as)?;
    if !list.iter().any(|e| e.id == id) {
        return Err(ApiError::not_found());
    }
    for e in list.iter_mut() {
        e.is_default = e.id == id;
    }
    shared.save();
    Ok(StatusCode::NO_CONTENT.into_response())
}
