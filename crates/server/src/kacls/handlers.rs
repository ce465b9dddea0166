//! The endpoints: each refuses early what it can, authorizes, opens the key on the blocking
//! pool, records the outcome, and answers in Google's shapes.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_store::{Operation, excerpt};
use openssl::pkey::{Id, PKey};
use serde_json::json;
use zeroize::Zeroizing;

use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::ApiError;

use super::authz::{Decision, Kacls, Refusal};
use super::config::{MAX_DIGEST, MAX_ENCRYPTED_DEK, MAX_REASON, MAX_WRAPPED_KEY, OPERATIONS};
use super::crypto::{OpenedKey, check_spki, decrypt, sign};
use super::error::{KaclsError, KaclsJson, check_len, decode};
use super::wire::{
    CheckRequest, DecryptReply, DecryptRequest, SignReply, SignRequest, WrapReply, WrapRequest,
};
use mailpki_kms::api::KACLS_CHECK_PREFIX as CHECK_PREFIX;

/// Decodes a request body as the endpoint named `operation` does, and reads the issuer its
/// tokens claim: the parsing a caller controls, for the fuzz targets.
pub(crate) fn decode_for_fuzzing(operation: &str, body: &[u8]) {
    let tokens: Vec<String> = match operation {
        "privatekeysign" => serde_json::from_slice::<SignRequest>(body)
            .map(|r| vec![r.authentication, r.authorization])
            .unwrap_or_default(),
        "privatekeydecrypt" | "privilegedprivatekeydecrypt" => {
            serde_json::from_slice::<DecryptRequest>(body)
                .map(|r| vec![r.authentication, r.authorization])
                .unwrap_or_default()
        }
        "wrapprivatekey" => serde_json::from_slice::<WrapRequest>(body)
            .map(|r| vec![r.authentication])
            .unwrap_or_default(),
        _ => serde_json::from_slice::<CheckRequest>(body)
            .map(|r| vec![r.wrapped_private_key])
            .unwrap_or_default(),
    };
    for token in tokens {
        let _ = crate::jwt::claimed_issuer(&token);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = crate::jwt::claimed_issuer(text);
    }
}

pub(super) fn service(app: &AppState) -> Result<Arc<Kacls>, KaclsError> {
    app.kacls
        .clone()
        .ok_or_else(|| KaclsError::new(StatusCode::NOT_FOUND, "no key service here"))
}

/// Runs `f` with the key `wrapped` opens. A key already open is used on the calling worker:
/// what is left is one RSA operation, no I/O, and handing it to the blocking pool costs a
/// tenth of it in thread wake-ups. Opening a key reads the store, so that goes to the pool.
async fn with_key<T: Send + 'static>(
    store: Arc<mailpki_store::Store>,
    kacls: Arc<Kacls>,
    wrapped: String,
    f: impl FnOnce(&OpenedKey) -> Result<T, KaclsError> + Send + 'static,
) -> Result<T, KaclsError> {
    if let Some(key) = kacls.opened(&wrapped) {
        return f(&key);
    }
    blocking(move || f(&*kacls.open(&store, &wrapped)?)).await
}

/// Runs the crypto (and the store) on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KaclsError> + Send + 'static,
) -> Result<T, KaclsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| KaclsError::internal("the operation failed"))?
}

/// Answers a refusal: one before anyone was identified goes to a bounded, rate-limited log
/// line and counts against the client's address (it never reaches the audit table, which an
/// anonymous caller could otherwise fill); one after goes on record under the caller's name.
pub(super) async fn refuse(
    app: &AppState,
    addr: Option<std::net::IpAddr>,
    operation: &'static str,
    refusal: Refusal,
) -> KaclsError {
    match refusal {
        Refusal::Anonymous(e) => {
            count(app, operation, false);
            app.failures.failed(addr);
            app.log_unauthenticated(operation, &e.message);
            e
        }
        Refusal::Known(email, e) => {
            record(app, &email, operation, None, Err(&e)).await;
            e
        }
    }
}

/// Refuses a client address that used up its failed authentications.
pub(super) fn not_blocked(
    app: &AppState,
    addr: Option<std::net::IpAddr>,
) -> Result<(), KaclsError> {
    if app.failures.blocked(addr) {
        Err(ApiError::too_many_failures().into())
    } else {
        Ok(())
    }
}

/// Counts a decision for `/metrics` and the console's per-minute activity.
fn count(app: &AppState, operation: &'static str, allowed: bool) {
    if let Some(metrics) = &app.metrics {
        metrics.decision(operation, allowed);
    }
    if let Some(kacls) = &app.kacls {
        kacls.activity.record(allowed);
    }
}

/// Logs the decision and records it in the audit log.
pub(super) async fn record(
    app: &AppState,
    who: &str,
    operation: &'static str,
    object: Option<String>,
    result: Result<(), &KaclsError>,
) {
    let (who_shown, object_shown) = (
        excerpt(who, 256),
        object.as_deref().map(|o| excerpt(o, 256)),
    );
    match result {
        Ok(()) => {
            tracing::info!(user = %who_shown, operation, object = ?object_shown, "kacls allowed");
        }
        Err(e) => {
            tracing::warn!(user = %who_shown, operation, object = ?object_shown, status = e.status.as_u16(), reason = %excerpt(&e.message, 240), "kacls refused");
        }
    }
    count(app, operation, result.is_ok());
    let outcome = result.map_err(|e| ApiError::key_service(e.status, e.message.clone()));
    app.audit(who, operation, object.as_deref(), outcome.as_ref().copied())
        .await;
}

pub(super) async fn status(State(app): State<AppState>) -> Result<Response, KaclsError> {
    let kacls = service(&app)?;
    Ok(Json(json!({
        "server_type": "KACLS",
        "vendor_id": "mailpki",
        "version": env!("CARGO_PKG_VERSION"),
        "name": kacls.config.name.clone().unwrap_or_else(|| "mailpki".to_owned()),
        "kacls_url": kacls.url,
        "operations_supported": OPERATIONS,
    }))
    .into_response())
}

pub(super) async fn private_key_sign(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    KaclsJson(req): KaclsJson<SignRequest>,
) -> Result<Response, KaclsError> {
    let kacls = service(&app)?;
    not_blocked(&app, addr)?;
    check_len("reason", &req.reason, MAX_REASON)?;
    check_len("digest", &req.digest, MAX_DIGEST * 2)?;
    let decision = match kacls
        .authorize(&req.authentication, &req.authorization, "signer")
        .await
    {
        Ok(d) => d,
        Err(refusal) => return Err(refuse(&app, addr, "kacls.privatekeysign", refusal).await),
    };
    let digest = decode("digest", &req.digest)?;
    if digest.len() > MAX_DIGEST {
        return Err(KaclsError::bad("`digest` is larger than 128 bytes"));
    }
    let spki = decision.spki_hash.clone();
    let (algorithm, salt) = (req.algorithm, req.rsa_pss_salt_length);
    let result = with_key(
        Arc::clone(&app.store),
        Arc::clone(&kacls),
        req.wrapped_private_key,
        move |key| {
            check_spki(key, spki.as_deref())?;
            sign(key, &algorithm, &digest, salt)
        },
    )
    .await;
    record(
        &app,
        &decision.email,
        "kacls.privatekeysign",
        decision.resource,
        result.as_ref().map(|_| ()),
    )
    .await;
    Ok(Json(SignReply {
        signature: STANDARD.encode(result?),
        algorithm: None,
    })
    .into_response())
}

pub(super) async fn decrypt_common(
    app: &AppState,
    kacls: Arc<Kacls>,
    decision: Decision,
    operation: &'static str,
    req: DecryptRequest,
) -> Result<Response, KaclsError> {
    check_len("reason", &req.reason, MAX_REASON)?;
    check_len(
        "encrypted_data_encryption_key",
        &req.encrypted_data_encryption_key,
        MAX_ENCRYPTED_DEK * 2,
    )?;
    let ciphertext = decode(
        "encrypted_data_encryption_key",
        &req.encrypted_data_encryption_key,
    )?;
    if ciphertext.len() > MAX_ENCRYPTED_DEK {
        return Err(KaclsError::bad(
            "`encrypted_data_encryption_key` is larger than 1 KB",
        ));
    }
    let label = match &req.rsa_oaep_label {
        Some(l) if !l.is_empty() => Some(decode("rsa_oaep_label", l)?),
        _ => None,
    };
    let spki = decision.spki_hash.clone();
    let algorithm = req.algorithm;
    let result = with_key(
        Arc::clone(&app.store),
        kacls,
        req.wrapped_private_key,
        move |key| {
            check_spki(key, spki.as_deref())?;
            decrypt(key, &algorithm, &ciphertext, label.as_deref())
        },
    )
    .await;
    record(
        app,
        &decision.email,
        operation,
        decision.resource,
        result.as_ref().map(|_| ()),
    )
    .await;
    let dek = result?;
    Ok(Json(DecryptReply {
        data_encryption_key: STANDARD.encode(dek.as_slice()),
    })
    .into_response())
}

pub(super) async fn private_key_decrypt(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    KaclsJson(req): KaclsJson<DecryptRequest>,
) -> Result<Response, KaclsError> {
    let kacls = service(&app)?;
    not_blocked(&app, addr)?;
    let decision = match kacls
        .authorize(&req.authentication, &req.authorization, "decrypter")
        .await
    {
        Ok(d) => d,
        Err(refusal) => {
            return Err(refuse(&app, addr, "kacls.privatekeydecrypt", refusal).await);
        }
    };
    decrypt_common(&app, kacls, decision, "kacls.privatekeydecrypt", req).await
}

/// The caller must be a privileged user of the key service.
pub(super) async fn privileged(kacls: &Kacls, authentication: &str) -> Result<String, Refusal> {
    let email = kacls
        .authenticate(authentication)
        .await
        .map_err(Refusal::Anonymous)?;
    if !kacls
        .config
        .privileged_users
        .iter()
        .any(|u| u.eq_ignore_ascii_case(&email))
    {
        let e = KaclsError::forbidden(format!(
            "`{}` is not a privileged user of this key service",
            excerpt(&email, 256)
        ));
        return Err(Refusal::Known(email, e));
    }
    Ok(email)
}

pub(super) async fn privileged_private_key_decrypt(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    KaclsJson(req): KaclsJson<DecryptRequest>,
) -> Result<Response, KaclsError> {
    let kacls = service(&app)?;
    not_blocked(&app, addr)?;
    let email = match privileged(&kacls, &req.authentication).await {
        Ok(email) => email,
        Err(refusal) => {
            return Err(refuse(&app, addr, "kacls.privilegedprivatekeydecrypt", refusal).await);
        }
    };
    if let Some(alg) = &req.spki_hash_algorithm
        && !alg.eq_ignore_ascii_case("SHA-256")
    {
        return Err(KaclsError::bad(format!(
            "unsupported spki_hash_algorithm `{alg}` (SHA-256)"
        )));
    }
    let decision = Decision {
        email,
        resource: None,
        spki_hash: req.spki_hash.clone(),
    };
    decrypt_common(
        &app,
        kacls,
        decision,
        "kacls.privilegedprivatekeydecrypt",
        req,
    )
    .await
}

pub(super) async fn wrap_private_key(
    State(app): State<AppState>,
    ClientAddr(addr): ClientAddr,
    KaclsJson(req): KaclsJson<WrapRequest>,
) -> Result<Response, KaclsError> {
    let kacls = service(&app)?;
    not_blocked(&app, addr)?;
    let email = match privileged(&kacls, &req.authentication).await {
        Ok(email) => email,
        Err(refusal) => return Err(refuse(&app, addr, "kacls.wrapprivatekey", refusal).await),
    };
    if !req.perimeter_id.is_empty()
        && !kacls.config.perimeters.is_empty()
        && !kacls.config.perimeters.contains(&req.perimeter_id)
    {
        let e = KaclsError::forbidden(format!(
            "perimeter `{}` is not allowed here",
            excerpt(&req.perimeter_id, 80)
        ));
        record(&app, &email, "kacls.wrapprivatekey", None, Err(&e)).await;
        return Err(e);
    }
    check_len("private_key", &req.private_key, MAX_WRAPPED_KEY)?;
    // Google's example sends the key as PEM text; base64 DER is taken too.
    let pem = req.private_key.trim_start().starts_with("-----BEGIN");
    let data = if pem {
        Zeroizing::new(req.private_key.as_bytes().to_vec())
    } else {
        Zeroizing::new(decode("private_key", &req.private_key)?)
    };
    let (store, service) = (Arc::clone(&app.store), Arc::clone(&kacls));
    let result = blocking(move || {
        let parsed = if pem {
            PKey::private_key_from_pem(&data)
        } else {
            PKey::private_key_from_der(&data)
        };
        let key = parsed
            .map_err(|_| KaclsError::bad("`private_key` is not a PEM or base64 DER private key"))?;
        if key.id() != Id::RSA {
            return Err(KaclsError::bad(
                "only RSA keys can be wrapped for Gmail CSE",
            ));
        }
        let pkcs8 = Zeroizing::new(
            key.private_key_to_pkcs8()
                .map_err(|_| KaclsError::internal("cannot encode the key"))?,
        );
        let cse_key = &service.config.cse_keys[0];
        store
            .cse_wrap(&service.actor, cse_key, &pkcs8)
            .map_err(|e| super::authz::cse_key_failure(&e, cse_key))
    })
    .await;
    record(
        &app,
        &email,
        "kacls.wrapprivatekey",
        None,
        result.as_ref().map(|_| ()),
    )
    .await;
    Ok(Json(WrapReply {
        wrapped_private_key: result?,
    })
    .into_response())
}

/// A mailpki extension, not Google's: proves a wrapped key opens here by signing
/// `CHECK_PREFIX || nonce` (never a digest of the caller's choosing). The caller is a mailpki
/// user (bearer token) who holds `encrypt` on the CSE key, the right needed to wrap keys.
pub(super) async fn check(
    State(app): State<AppState>,
    caller: Caller,
    KaclsJson(req): KaclsJson<CheckRequest>,
) -> Result<Response, KaclsError> {
    let kacls = service(&app)?;
    let nonce = decode("nonce", &req.nonce)?;
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(KaclsError::bad("`nonce` must be 1 to 64 bytes"));
    }
    let (store, service) = (Arc::clone(&app.store), Arc::clone(&kacls));
    let actor = caller.actor.clone();
    let result = blocking(move || {
        store
            .check_cse_key(&actor, &service.config.cse_keys[0], Operation::Encrypt)
            .map_err(|e| KaclsError::forbidden(e.to_string()))?;
        let key = service.open(&store, &req.wrapped_private_key)?;
        let mut message = CHECK_PREFIX.to_vec();
        message.extend_from_slice(&nonce);
        let digest = openssl::sha::sha256(&message);
        sign(&key, "SHA256withRSA", &digest, None)
    })
    .await;
    record(
        &app,
        caller.actor.as_str(),
        "kacls.check",
        None,
        result.as_ref().map(|_| ()),
    )
    .await;
    Ok(Json(SignReply {
        signature: STANDARD.encode(result?),
        algorithm: Some("SHA256withRSA".to_owned()),
    })
    .into_response())
}

/// The key service's routes, answering CORS preflights and calls from `allowed_origins` only
/// (the rest of the server sends no CORS headers at all). Bodies carry the tokens, so no
/// credentials are allowed and only `Content-Type` may be set: a page cannot reach `/check`,
/// which takes a bearer token.
pub(crate) fn router(kacls: &Kacls) -> axum::Router<AppState> {
    use axum::http::{Method, header};
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(kacls.origins.clone()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600));
    axum::Router::new()
        .route("/status", get(status))
        .route("/privatekeysign", post(private_key_sign))
        .route("/privatekeydecrypt", post(private_key_decrypt))
        .route(
            "/privilegedprivatekeydecrypt",
            post(privileged_private_key_decrypt),
        )
        .route("/wrapprivatekey", post(wrap_private_key))
        .route("/check", post(check))
        .layer(cors)
}
