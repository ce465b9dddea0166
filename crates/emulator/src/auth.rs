//! Google's token endpoint and bearer-token checks. A service account's RS256 assertion is
//! verified against the public key registered with the emulator, with Google's checks and its
//! error replies: signature, audience, lifetime, delegated scopes, the impersonated user.

use axum::Json;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Verifier;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::errors::{ApiError, token_error};
use crate::state::{Grant, Shared};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    assertion: String,
}

/// The parsing of a token request a caller controls, for the fuzz targets: the form and the
/// JWT's header and claims.
pub(crate) fn read_for_fuzzing(body: &[u8]) {
    if let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(body) {
        for part in form.assertion.split('.') {
            let _ = decode_part(part);
        }
    }
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The checked claims of a token request, or Google's error reply.
fn verify_assertion(
    shared: &Shared,
    token_uri: &str,
    form: &TokenForm,
) -> Result<Value, Box<Response>> {
    let fail = |status, error, description| Err(Box::new(token_error(status, error, description)));
    if form.grant_type != JWT_BEARER {
        return fail(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type.",
        );
    }
    let parts: Vec<&str> = form.assertion.split('.').collect();
    let (Some(header), Some(claims), Some(signature)) = (
        parts.first().and_then(|p| decode_part(p)),
        parts.get(1).and_then(|p| decode_part(p)),
        parts.get(2).and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()),
    ) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: malformed assertion.",
        );
    };
    if parts.len() != 3 || header["alg"] != "RS256" {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: only RS256 is accepted.",
        );
    }
    let iss = claims["iss"].as_str().unwrap_or_default();
    let Some(account) = shared.tenant.service_accounts.get(iss) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        );
    };
    let verified = PKey::public_key_from_pem(account.public_key_pem.as_bytes())
        .and_then(|key| {
            let mut v = Verifier::new(MessageDigest::sha256(), &key)?;
            v.update(format!("{}.{}", parts[0], parts[1]).as_bytes())?;
            v.verify(&signature)
        })
        .unwrap_or(false);
    if !verified {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        );
    }
    // Google's own libraries (google-auth, and so GAM and google-api-python-client) always
    // address the assertion to Google's token URL, whatever `token_uri` says; Google accepts
    // that, so the emulator does too, beside its own URL.
    let audience = claims["aud"].as_str();
    if audience != Some(token_uri) && audience != Some(GOOGLE_TOKEN_URI) {
        return fail(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: audience does not match the token URI.",
        );
    }
    let now = Shared::real_now();
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return fail(StatusCode::BAD_REQUEST, "invalid_grant", SHORT_LIVED);
    };
    if exp <= now || iat > now + 300 || exp - iat > 3600 || exp <= iat {
        return fail(StatusCode::BAD_REQUEST, "invalid_grant", SHORT_LIVED);
    }
    let scopes = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace();
    if scopes.clone().next().is_none()
        || scopes
            .clone()
            .any(|s| !account.scopes.iter().any(|a| a == s))
    {
        return fail(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    Ok(claims)
}

/// `POST /token`.
pub(crate) async fn token(State(app): State<AppState>, Form(form): Form<TokenForm>) -> Response {
    let mut shared = app.shared.lock().await;
    let claims = match verify_assertion(&shared, &app.token_uri, &form) {
        Ok(claims) => claims,
        Err(reply) => return *reply,
    };
    let scopes: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let user = match claims["sub"].as_str() {
        Some(sub) => match shared.user(sub) {
            Some(u) => Some(u.primary.clone()),
            None => {
                return token_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid email or User ID",
                );
            }
        },
        None => None,
    };
    let mut raw = [0u8; 24];
    let _ = openssl::rand::rand_bytes(&mut raw);
    let access_token = format!("ya29.emu-{}", URL_SAFE_NO_PAD.encode(raw));
    let expires = Shared::real_now() + 3599;
    shared.tokens.insert(
        access_token.clone(),
        Grant {
            user,
            scopes,
            expires,
        },
    );
    Json(json!({"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

/// The audience Google's client libraries put in every service-account assertion.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The user the bearer token acts for, as Google resolves `userId=me`: before any decision
/// that depends on who the user is (which scope an address needs, say).
pub(crate) fn token_user(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(token_grant(shared, headers)?.0)
}

fn token_grant(shared: &Shared, headers: &HeaderMap) -> Result<(String, Vec<String>), ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthenticated)?;
    let now = Shared::real_now();
    let grant = shared
        .tokens
        .get(token)
        .filter(|g| g.expires > now)
        .cloned()
        .ok_or_else(ApiError::unauthenticated)?;
    // Without `sub` the service account acts as itself, which has no mailbox.
    let Some(user) = grant.user else {
        return Err(ApiError::failed_precondition("Precondition check failed."));
    };
    Ok((user, grant.scopes))
}

/// The user a Gmail call acts for, after checking the bearer token, the path's user ID, the
/// scopes and the user's quota.
pub(crate) fn authorize(
    shared: &mut Shared,
    headers: &HeaderMap,
    path_user: &str,
    scopes: &[&str],
) -> Result<String, ApiError> {
    let (user, granted) = token_grant(shared, headers)?;
    if path_user != "me" && !path_user.eq_ignore_ascii_case(&user) {
        return Err(ApiError::permission_denied(format!(
            "Delegation denied for {user}"
        )));
    }
    if !scopes.iter().any(|s| granted.iter().any(|g| g == s)) {
        return Err(ApiError::insufficient_scopes());
    }
    if !shared.take_quota(&user) {
        return Err(ApiError::rate_limited());
    }
    Ok(user)
}
