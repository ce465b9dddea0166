//! The `/v1` routes. Each handler authenticates (the [`Caller`] extractor), runs one
//! [`mailpki_kms::ops`] call on the blocking pool as the caller, and records the outcome in the
//! audit log. Reads of attributes and lists are audited only when they fail; everything that
//! changes the store or hands out key material (exports, CSE wrapping) is always audited.

use std::collections::BTreeMap;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_kms::api::{
    AccessBody, CertifyBody, CrlBody, CseCertificate, CseKeyPairBody, CseKeyPairReply, DestroyBody,
    ErrorCode, ExportBody, ExportReply, HsmKeyBody, IdReply, ImportBody, JournalBody, RevokeBody,
    SearchBody, SymmetricKeyBody, TagsBody, TokenBody, WhoAmI, WrapBody, WrapReply, routes,
};
use mailpki_kms::{KmsError, ops};
use mailpki_store::{Actor, AuditFilter, Store};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// A JSON body whose rejections (malformed, too large, wrong type) answer in the API's error
/// format rather than axum's plain text.
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
                    _ if status == StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
                    _ => ErrorCode::InvalidRequest,
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

/// The body, or its rejection (malformed, too large, wrong type) on record: an authenticated
/// caller's bad request is audited like any other failure.
async fn accept<T>(
    app: &AppState,
    caller: &Caller,
    operation: &'static str,
    object: Option<&str>,
    body: Result<Body<T>, ApiError>,
) -> Result<T, ApiError> {
    match body {
        Ok(Body(value)) => Ok(value),
        Err(e) => {
            audit(app, caller, operation, object, Err(&e)).await;
            Err(e)
        }
    }
}

/// One line in the audit log for what `caller` did, naming the token's creator when it was
/// someone else.
pub(crate) async fn audit(
    app: &AppState,
    caller: &Caller,
    operation: &str,
    object: Option<&str>,
    outcome: Result<(), &ApiError>,
) {
    app.audit_via(
        caller.actor.as_str(),
        caller.via.as_deref(),
        operation,
        object,
        outcome,
    )
    .await;
}

/// How a handler's outcome reaches the audit log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audit {
    Always,
    OnFailure,
}

/// Runs `f` as the caller on the blocking pool and audits the outcome.
pub(crate) async fn run<T: Send + 'static>(
    app: &AppState,
    caller: &Caller,
    operation: &'static str,
    object: Option<String>,
    when: Audit,
    f: impl FnOnce(&Store, &Actor) -> Result<T, KmsError> + Send + 'static,
) -> Result<T, ApiError> {
    let actor = caller.actor.clone();
    let result = app.blocking(move |store| f(store, &actor)).await;
    if when == Audit::Always || result.is_err() {
        audit(
            app,
            caller,
            operation,
            object.as_deref(),
            result.as_ref().map(|_| ()),
        )
        .await;
    }
    result
}

/// Admin endpoints refuse everyone else, on record.
async fn admin_only(app: &AppState, caller: &Caller, operation: &str) -> Result<(), ApiError> {
    if caller.admin {
        return Ok(());
    }
    let e = ApiError::forbidden(format!(
        "user `{}` is not a server admin ([server] admins)",
        caller.actor
    ));
    audit(app, caller, operation, None, Err(&e)).await;
    Err(e)
}

async fn health(State(app): State<AppState>) -> Response {
    // A load balancer takes an instance out when its database is away.
    match app.blocking(|store| Ok(store.ping()?)).await {
        Ok(()) => Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::OPENAPI,
    )
        .into_response()
}

async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        user: caller.actor.to_string(),
        admin: caller.admin,
        method: caller.method.as_str().to_owned(),
    })
}

async fn import(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<ImportBody>, ApiError>,
) -> Result<Response, ApiError> {
    let body = accept(&app, &caller, "import", None, body).await?;
    let object = body.id.clone();
    let report = run(
        &app,
        &caller,
        "import",
        object,
        Audit::Always,
        move |s, a| ops::import(s, a, &body),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

async fn search(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<SearchBody>, ApiError>,
) -> Result<Response, ApiError> {
    let body = accept(&app, &caller, "list", None, body).await?;
    let found = run(
        &app,
        &caller,
        "list",
        None,
        Audit::OnFailure,
        move |s, a| ops::search(s, a, &body),
    )
    .await?;
    Ok(Json(found).into_response())
}

async fn attributes(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let object = Some(id.clone());
    let attrs = run(
        &app,
        &caller,
        "get_attributes",
        object,
        Audit::OnFailure,
        move |s, a| Ok(s.attributes(a, &id)?),
    )
    .await?;
    Ok(Json(attrs).into_response())
}

async fn export(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Body<ExportBody>, ApiError>,
) -> Result<Json<ExportReply>, ApiError> {
    let body = accept(&app, &caller, "export", Some(id.as_str()), body).await?;
    let object = Some(id.clone());
    let data = run(
        &app,
        &caller,
        "export",
        object,
        Audit::Always,
        move |s, a| ops::export(s, a, &id, &body),
    )
    .await?;
    Ok(Json(ExportReply {
        data: zeroize::Zeroizing::new(STANDARD.encode(data.as_slice())),
    }))
}

async fn access_list(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let object = Some(id.clone());
    let list = run(
        &app,
        &caller,
        "list_access",
        object,
        Audit::OnFailure,
        move |s, a| ops::access_list(s, a, &id),
    )
    .await?;
    Ok(Json(list).into_response())
}

async fn grant(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Body<AccessBody>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let body = accept(&app, &caller, "grant", Some(id.as_str()), body).await?;
    if body.user == Actor::EVERYONE && !app.allow_wildcard_grants {
        let e = ApiError::forbidden("grants to `*` are disabled on this server");
        audit(&app, &caller, "grant", Some(&id), Err(&e)).await;
        return Err(e);
    }
    let object = Some(id.clone());
    run(
        &app,
        &caller,
        "grant",
        object,
        Audit::Always,
        move |s, a| ops::grant(s, a, &id, &body),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke_access(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Body<AccessBody>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let body = accept(&app, &caller, "revoke_access", Some(id.as_str()), body).await?;
    let object = Some(id.clone());
    run(
        &app,
        &caller,
        "revoke_access",
        object,
        Audit::Always,
        move |s, a| ops::revoke_access(s, a, &id, &body),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Body<RevokeBody>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let body = accept(&app, &caller, "revoke", Some(id.as_str()), body).await?;
    let object = Some(id.clone());
    run(
        &app,
        &caller,
        "revoke",
        object,
        Audit::Always,
        move |s, a| ops::revoke(s, a, &id, &body),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn destroy(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Body<DestroyBody>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let body = accept(&app, &caller, "destroy", Some(id.as_str()), body).await?;
    let object = Some(id.clone());
    run(
        &app,
        &caller,
        "destroy",
        object,
        Audit::Always,
        move |s, a| ops::destroy(s, a, &id, &body),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_tags(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Body<TagsBody>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let body = accept(&app, &caller, "add_tags", Some(id.as_str()), body).await?;
    let object = Some(id.clone());
    run(
        &app,
        &caller,
        "add_tags",
        object,
        Audit::Always,
        move |s, a| Ok(s.add_tags(a, &id, &body.tags)?),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn owned(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let list = run(&app, &caller, "owned", None, Audit::OnFailure, |s, a| {
        ops::owned(s, a)
    })
    .await?;
    Ok(Json(list).into_response())
}

async fn obtained(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let list = run(&app, &caller, "obtained", None, Audit::OnFailure, |s, a| {
        ops::obtained(s, a)
    })
    .await?;
    Ok(Json(list).into_response())
}

/// Live API tokens that act as the caller but were made by someone else (an admin): the
/// caller should know that someone else can act as them.
async fn tokens_for_me(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let tokens = run(
        &app,
        &caller,
        "tokens_for_me",
        None,
        Audit::OnFailure,
        ops::tokens_for,
    )
    .await?;
    Ok(Json(tokens).into_response())
}

async fn register_hsm_key(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<HsmKeyBody>, ApiError>,
) -> Result<Response, ApiError> {
    let body = accept(&app, &caller, "register_hsm_key", None, body).await?;
    let object = body.id.clone();
    let report = run(
        &app,
        &caller,
        "register_hsm_key",
        object,
        Audit::Always,
        move |s, a| ops::register_hsm_key(s, a, &body),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

async fn create_symmetric_key(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<SymmetricKeyBody>, ApiError>,
) -> Result<Response, ApiError> {
    let body = accept(&app, &caller, "create_symmetric_key", None, body).await?;
    let object = body.id.clone();
    let id = run(
        &app,
        &caller,
        "create_symmetric_key",
        object,
        Audit::Always,
        move |s, a| ops::create_symmetric_key(s, a, &body),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(IdReply {
            unique_identifier: id,
        }),
    )
        .into_response())
}

async fn certify(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<CertifyBody>, ApiError>,
) -> Result<Response, ApiError> {
    let body = accept(&app, &caller, "certify", None, body).await?;
    let issuer = body
        .issuer
        .private_key_id
        .clone()
        .or_else(|| body.issuer.certificate_id.clone());
    let defaults = std::sync::Arc::clone(&app.defaults);
    let reply = run(
        &app,
        &caller,
        "certify",
        issuer.clone(),
        Audit::OnFailure,
        move |s, a| ops::certify(s, a, &defaults, &body),
    )
    .await?;
    // A CA certificate is on record as such: it is a different power from minting for users.
    let operation = if reply.certificate_authority {
        "certify_ca"
    } else {
        "certify"
    };
    audit(&app, &caller, operation, issuer.as_deref(), Ok(())).await;
    // The PKCS#12 that came back is an export of the new key, and on record as one.
    if reply.pkcs12.is_some() {
        audit(
            &app,
            &caller,
            "export",
            Some(reply.unique_identifier.as_str()),
            Ok(()),
        )
        .await;
    }
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

/// Signing a CRL uses the issuer's key: audited every time, on the key.
async fn crl(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<CrlBody>, ApiError>,
) -> Result<Response, ApiError> {
    let body = accept(&app, &caller, "crl", None, body).await?;
    let object = Some(body.issuer_private_key_id.clone());
    let reply = run(&app, &caller, "crl", object, Audit::Always, move |s, a| {
        ops::crl(s, a, &body)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

async fn cse_wrap(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<WrapBody>, ApiError>,
) -> Result<Json<WrapReply>, ApiError> {
    let body = accept(&app, &caller, "cse_wrap", None, body).await?;
    let object = Some(body.private_key_id.clone());
    let kacls_data = run(
        &app,
        &caller,
        "cse_wrap",
        object,
        Audit::Always,
        move |s, a| Ok(s.cse_wrap_private_key(a, &body.private_key_id, &body.cse_key_id)?),
    )
    .await?;
    Ok(Json(WrapReply { kacls_data }))
}

/// Audited as what it does: `certify` on the issuer when it mints (and stores), and `cse_wrap`
/// of the certificate's key, as the separate calls were.
async fn cse_key_pair(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<CseKeyPairBody>, ApiError>,
) -> Result<Json<CseKeyPairReply>, ApiError> {
    let body = accept(&app, &caller, "cse_key_pair", None, body).await?;
    let defaults = std::sync::Arc::clone(&app.defaults);
    let minted_with = match &body.certificate {
        CseCertificate::Mint(certify) if !body.dry_run => certify.issuer.private_key_id.clone(),
        _ => None,
    };
    let object = match &body.certificate {
        CseCertificate::Stored(id) => Some(id.clone()),
        _ => Some(body.user.clone()),
    };
    let reply = run(
        &app,
        &caller,
        "cse_key_pair",
        object,
        Audit::OnFailure,
        move |s, a| mailpki_kms::cse::key_pair(s, a, &defaults, &body),
    )
    .await?;
    if let Some(issuer) = minted_with {
        audit(&app, &caller, "certify", Some(&issuer), Ok(())).await;
    }
    let wrapped = reply.certificate_id.as_deref();
    audit(&app, &caller, "cse_wrap", wrapped, Ok(())).await;
    Ok(Json(reply))
}

async fn journal_get(
    State(app): State<AppState>,
    caller: Caller,
    Path((batch, subject)): Path<(String, String)>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let steps = run(
        &app,
        &caller,
        "journal_get",
        None,
        Audit::OnFailure,
        move |s, a| Ok(s.journal_steps(a, &batch, &subject)?),
    )
    .await?;
    Ok(Json(steps))
}

async fn journal_set(
    State(app): State<AppState>,
    caller: Caller,
    Path((batch, subject)): Path<(String, String)>,
    body: Result<Body<JournalBody>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let body = accept(&app, &caller, "journal_set", None, body).await?;
    run(
        &app,
        &caller,
        "journal_set",
        None,
        Audit::OnFailure,
        move |s, a| Ok(s.journal_record(a, &batch, &subject, &body.step, &body.value)?),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn token_create(
    State(app): State<AppState>,
    caller: Caller,
    body: Result<Body<TokenBody>, ApiError>,
) -> Result<Response, ApiError> {
    let body = accept(&app, &caller, "token_create", None, body).await?;
    admin_only(&app, &caller, "token_create").await?;
    let user = Actor::new(body.user.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if user != caller.actor && !app.admin_tokens_for_others {
        let e = ApiError::forbidden(
            "admins may not create API tokens for other users here ([server] admin_tokens_for_others)",
        );
        audit(
            &app,
            &caller,
            "token_create",
            Some(&format!("user:{user}")),
            Err(&e),
        )
        .await;
        return Err(e);
    }
    let object = Some(format!("user:{user}"));
    let reply = run(
        &app,
        &caller,
        "token_create",
        object,
        Audit::Always,
        move |s, a| ops::create_api_token(s, a, &body),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

async fn token_list(State(app): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    admin_only(&app, &caller, "token_list").await?;
    let tokens = run(
        &app,
        &caller,
        "token_list",
        None,
        Audit::OnFailure,
        |s, _| Ok(s.api_tokens()?),
    )
    .await?;
    Ok(Json(tokens).into_response())
}

async fn token_revoke(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin_only(&app, &caller, "token_revoke").await?;
    let object = Some(id.clone());
    let found = run(
        &app,
        &caller,
        "token_revoke",
        object,
        Audit::Always,
        move |s, _| Ok(s.revoke_api_token(&id)?),
    )
    .await?;
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no live API token with that ID",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    actor: Option<String>,
    object: Option<String>,
    operation: Option<String>,
    /// Unix seconds: lines at or after.
    since: Option<i64>,
    /// Unix seconds: lines before.
    until: Option<i64>,
    limit: Option<usize>,
}

async fn audit_log(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    admin_only(&app, &caller, "audit_read").await?;
    let filter = AuditFilter {
        actor: query.actor,
        object: query.object,
        operation: query.operation,
        since: query.since,
        until: query.until,
        limit: query.limit.unwrap_or(100).min(10_000),
    };
    let entries = run(
        &app,
        &caller,
        "audit_read",
        None,
        Audit::OnFailure,
        move |s, _| Ok(s.audit_log(&filter)?),
    )
    .await?;
    Ok(Json(entries).into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint",
    )
}

pub(crate) fn router(state: AppState, max_body: usize) -> Router {
    let kacls = state
        .kacls
        .as_ref()
        .map(|k| (k.prefix().to_owned(), crate::kacls::router(k)));
    let router = Router::new()
        .route(routes::HEALTH, get(health))
        .route(routes::OPENAPI, get(openapi))
        .route(routes::WHOAMI, get(whoami))
        .route(routes::IMPORT, post(import))
        .route(routes::SEARCH, post(search))
        .route(routes::ATTRIBUTES, get(attributes))
        .route(routes::EXPORT, post(export))
        .route(routes::ACCESS, get(access_list))
        .route(routes::GRANT, post(grant))
        .route(routes::REVOKE_ACCESS, post(revoke_access))
        .route(routes::REVOKE, post(revoke))
        .route(routes::DESTROY, post(destroy))
        .route(routes::TAGS, post(add_tags))
        .route(routes::OWNED, get(owned))
        .route(routes::OBTAINED, get(obtained))
        .route(routes::TOKENS_FOR_ME, get(tokens_for_me))
        .route(routes::SYMMETRIC_KEYS, post(create_symmetric_key))
        .route(routes::HSM_KEYS, post(register_hsm_key))
        .route(routes::CERTIFY, post(certify))
        .route(routes::CSE_WRAP, post(cse_wrap))
        .route(routes::CSE_KEY_PAIRS, post(cse_key_pair))
        .route(routes::CRL, post(crl))
        .route(routes::JOURNAL, get(journal_get).post(journal_set))
        .route(routes::ADMIN_TOKENS, get(token_list).post(token_create))
        .route(routes::ADMIN_TOKEN, axum::routing::delete(token_revoke))
        .route(routes::ADMIN_AUDIT, get(audit_log))
        .route("/metrics", get(crate::metrics::serve));
    let router = match kacls {
        Some((prefix, service)) => router.nest(&prefix, service),
        None => router,
    };
    let router = if state.console.is_some() {
        router
            .nest(crate::console::PREFIX, crate::console::router())
            .route(
                "/console/",
                get(|| async { axum::response::Redirect::to(crate::console::PREFIX) }),
            )
    } else {
        router
    };
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use mailpki_kms::api::routes::TABLE as ROUTES;

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} is missing from openapi.json"
            );
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(
            documented,
            ROUTES.len(),
            "openapi.json documents routes that do not exist"
        );
    }

    #[test]
    fn the_openapi_document_lists_every_error_code() {
        let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI).unwrap();
        let listed = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
            ["enum"];
        let sent: Vec<&str> = mailpki_kms::api::ErrorCode::SENT
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(listed, &serde_json::json!(sent));
    }
}
