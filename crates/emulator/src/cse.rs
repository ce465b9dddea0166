//! `users.settings.cse`: key pairs and identities, validated the way Gmail does before it
//! stores them, with Google's status codes. Like Google, a rejected certificate gets a terse
//! `invalidArgument`; the emulator logs the precise reason for whoever runs it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::pkcs7::Pkcs7;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::authorize;
use crate::errors::ApiError;
use crate::state::{Identity, KeyPair, Shared};

const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/gmail.settings.basic",
    "https://www.googleapis.com/auth/gmail.settings.sharing",
];
/// Google's limit on `kaclsData`.
const MAX_KACLS_DATA: usize = 8 * 1024;
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 100;
const OBLITERATE_AFTER_SECS: i64 = 30 * 86_400;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateQuery {
    chain_validation: Option<String>,
}

pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")))
}

/// The parsing of a key-pair upload a caller controls, for the fuzz targets: the body, its
/// PKCS#7, and the linter on the certificates inside.
pub(crate) fn read_for_fuzzing(body: &[u8]) {
    let Ok(value) = parse_body(&Bytes::copy_from_slice(body)) else {
        return;
    };
    let Some(pkcs7) = value["pkcs7"].as_str() else {
        return;
    };
    let Ok(p7) = Pkcs7::from_pem(pkcs7.as_bytes()) else {
        return;
    };
    let certs: Vec<Vec<u8>> = p7
        .signed()
        .and_then(|s| s.certificates())
        .map(|stack| stack.iter().filter_map(|c| c.to_der().ok()).collect())
        .unwrap_or_default();
    if let Some((leaf, chain)) = certs.split_first() {
        let _ = mailpki_issuance::lint(leaf, chain, &mailpki_issuance::LintOptions::default());
        let _ = x509_not_after(leaf);
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn key_pair_json(kp: &KeyPair) -> Value {
    let mut v = json!({
        "keyPairId": kp.id,
        "pem": kp.pem,
        "subjectEmailAddresses": kp.subject_emails,
        "enablementState": if kp.enabled { "enabled" } else { "disabled" },
        "privateKeyMetadata": [{
            "privateKeyMetadataId": kp.metadata_id,
            "kaclsKeyMetadata": {"kaclsUri": kp.kacls_uri, "kaclsData": kp.kacls_data},
        }],
    });
    if let Some(t) = kp.disable_time {
        v["disableTime"] = json!(rfc3339(t));
    }
    v
}

fn identity_json(i: &Identity) -> Value {
    let mut v = json!({"emailAddress": i.email});
    if let Some(p) = &i.primary_key_pair_id {
        v["primaryKeyPairId"] = json!(p);
    }
    if let (Some(s), Some(e)) = (&i.signing_key_pair_id, &i.encryption_key_pair_id) {
        v["signAndEncryptKeyPairs"] = json!({"signingKeyPairId": s, "encryptionKeyPairId": e});
    }
    v
}

/// A list reply: one page of `items` under `field`, and `nextPageToken` when more remain.
fn page_reply<T: Clone>(
    items: &[T],
    query: &ListQuery,
    field: &str,
    to_json: fn(&T) -> Value,
) -> Result<Response, ApiError> {
    let (page_items, next) = page(items, query)?;
    let mut reply = json!({ field: page_items.iter().map(to_json).collect::<Vec<_>>() });
    if let Some(next) = next {
        reply["nextPageToken"] = json!(next);
    }
    Ok(Json(reply).into_response())
}

/// One page of `items` and the token of the next.
fn page<T: Clone>(items: &[T], query: &ListQuery) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = query
        .page_size
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let start = match &query.page_token {
        None => 0,
        Some(t) if t.is_empty() => 0,
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .filter(|n| *n <= items.len())
            .ok_or_else(|| ApiError::invalid_argument("Invalid page token."))?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| URL_SAFE_NO_PAD.encode(format!("offset:{end}")));
    Ok((items[start..end].to_vec(), next))
}

pub(crate) fn rejected(reason: &str) -> ApiError {
    // Google says no more than this; the reason goes to the emulator's log.
    tracing::warn!(reason, "key pair rejected");
    ApiError::invalid_argument("Invalid certificate.")
}

/// Checks an uploaded PKCS#7 as Gmail would; returns the chain PEM, the leaf's fingerprint,
/// its addresses, its end, and whether its chain verified. Without `check_chain` a chain that
/// does not verify is kept (`chainValidation=none`), marked so no identity can use it.
fn validate_pkcs7(
    shared: &Shared,
    user: &str,
    pkcs7: &str,
    check_chain: bool,
) -> Result<(String, String, Vec<String>, i64, bool), ApiError> {
    let p7 =
        Pkcs7::from_pem(pkcs7.as_bytes()).map_err(|_| rejected("pkcs7 is not a PEM PKCS#7"))?;
    let certs: Vec<X509> = p7
        .signed()
        .and_then(|s| s.certificates())
        .map(|stack| stack.iter().map(ToOwned::to_owned).collect())
        .unwrap_or_default();
    let leaf = certs
        .first()
        .ok_or_else(|| rejected("the PKCS#7 holds no certificate"))?;
    let leaf_der = leaf
        .to_der()
        .map_err(|_| rejected("unreadable certificate"))?;
    let chain_der: Vec<Vec<u8>> = certs[1..].iter().filter_map(|c| c.to_der().ok()).collect();
    let report = mailpki_issuance::lint(
        &leaf_der,
        &chain_der,
        &mailpki_issuance::LintOptions {
            expected_email: user.parse().ok(),
            at: Some(shared.now()),
        },
    )
    .map_err(|e| rejected(&e.to_string()))?;
    if let Some(f) = report.rejections().next() {
        return Err(rejected(&format!("[{}] {}", f.rule, f.message)));
    }
    let chain_valid = match verify_chain(shared, leaf, &certs[1..]) {
        Ok(()) => true,
        Err(refusal) if check_chain => return Err(refusal),
        Err(_) => false,
    };
    let mut pem = String::new();
    for c in &certs {
        pem.push_str(&String::from_utf8_lossy(&c.to_pem().unwrap_or_default()));
    }
    let fingerprint = leaf
        .digest(openssl::hash::MessageDigest::sha256())
        .map(|d| crate::state::hex(&d))
        .unwrap_or_default();
    let emails = leaf
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.email().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let der_end = x509_not_after(&leaf_der);
    Ok((pem, fingerprint, emails, der_end, chain_valid))
}

pub(crate) fn x509_not_after(der: &[u8]) -> i64 {
    openssl::x509::X509::from_der(der)
        .ok()
        .and_then(|c| {
            let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
            let d = epoch.diff(c.not_after()).ok()?;
            Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
        })
        .unwrap_or(0)
}

/// The chain must lead to a trusted root through at least one intermediate.
pub(crate) fn verify_chain(shared: &Shared, leaf: &X509, rest: &[X509]) -> Result<(), ApiError> {
    let mut builder = X509StoreBuilder::new().map_err(|_| rejected("store"))?;
    for pem in &shared.tenant.trusted_roots {
        if let Ok(root) = X509::from_pem(pem.as_bytes()) {
            let _ = builder.add_cert(root);
        }
    }
    // Judge validity at the emulator's clock, which tests move forward.
    let mut param =
        openssl::x509::verify::X509VerifyParam::new().map_err(|_| rejected("params"))?;
    param.set_time(shared.now());
    builder.set_param(&param).map_err(|_| rejected("params"))?;
    let store = builder.build();
    let mut untrusted = Stack::new().map_err(|_| rejected("stack"))?;
    for c in rest {
        let _ = untrusted.push(c.clone());
    }
    let mut ctx = X509StoreContext::new().map_err(|_| rejected("context"))?;
    let outcome = ctx
        .init(&store, leaf, &untrusted, |c| {
            let ok = c.verify_cert()?;
            let depth = c.chain().map_or(0, openssl::stack::StackRef::len);
            Ok((ok, depth, c.error().to_string()))
        })
        .map_err(|_| rejected("verification failed to run"))?;
    match outcome {
        (true, depth, _) if depth >= 3 => Ok(()),
        (true, _, _) => Err(rejected(
            "a root signed the certificate directly: an intermediate is required",
        )),
        (false, _, error) => Err(rejected(&format!(
            "the chain does not lead to a trusted root: {error}"
        ))),
    }
}

/// `POST .../cse/keypairs`.
pub(crate) async fn create_key_pair(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<CreateQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let body = parse_body(&body)?;
    if !shared.user(&user).is_some_and(|u| u.cse_enabled) {
        return Err(ApiError::failed_precondition("Precondition check failed."));
    }
    let pkcs7 = body["pkcs7"]
        .as_str()
        .ok_or_else(|| ApiError::invalid_argument("pkcs7 is required."))?;
    let metadata = body["privateKeyMetadata"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let [entry] = metadata.as_slice() else {
        return Err(ApiError::invalid_argument(
            "Exactly one privateKeyMetadata is required.",
        ));
    };
    let kacls = &entry["kaclsKeyMetadata"];
    let (Some(uri), Some(data)) = (kacls["kaclsUri"].as_str(), kacls["kaclsData"].as_str()) else {
        return Err(ApiError::invalid_argument(
            "kaclsKeyMetadata needs kaclsUri and kaclsData.",
        ));
    };
    if data.is_empty() || data.len() > MAX_KACLS_DATA {
        return Err(ApiError::invalid_argument(
            "kaclsData must hold 1 to 8192 bytes.",
        ));
    }
    if !(uri.starts_with("https://") || uri.starts_with("http://")) {
        return Err(ApiError::invalid_argument("kaclsUri must be a URL."));
    }
    let check_chain = match query.chain_validation.as_deref() {
        None | Some("all") => true,
        Some("none") => false,
        Some(other) => {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value at 'chain_validation', \"{other}\"; expected all or none."
            )));
        }
    };
    let (pem, fingerprint, emails, not_after, chain_valid) =
        validate_pkcs7(&shared, &user, pkcs7, check_chain)?;
    if shared
        .user(&user)
        .is_some_and(|u| u.key_pairs.iter().any(|k| k.fingerprint == fingerprint))
    {
        return Err(ApiError::already_exists(
            "A key pair with this certificate already exists.",
        ));
    }
    let key_pair = KeyPair {
        id: shared.new_id("kp"),
        metadata_id: shared.new_id("pkm"),
        pem,
        fingerprint,
        subject_emails: emails,
        not_after,
        enabled: true,
        disable_time: None,
        kacls_uri: uri.to_owned(),
        kacls_data: data.to_owned(),
        chain_valid,
    };
    let reply = key_pair_json(&key_pair);
    if let Some(u) = shared.user_mut(&user) {
        u.key_pairs.push(key_pair);
    }
    shared.save();
    Ok(Json(reply).into_response())
}

/// `GET .../cse/keypairs`.
pub(crate) async fn list_key_pairs(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let all = shared
        .user(&user)
        .map(|u| u.key_pairs.clone())
        .unwrap_or_default();
    page_reply(&all, &query, "cseKeyPairs", key_pair_json)
}

/// `GET .../cse/keypairs/{id}`.
pub(crate) async fn get_key_pair(
    State(app): State<AppState>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let kp = shared
        .user(&user)
        .and_then(|u| u.key_pairs.iter().find(|k| k.id == id))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(key_pair_json(kp)).into_response())
}

/// `POST .../cse/keypairs/{id}:enable|:disable|:obliterate`.
pub(crate) async fn key_pair_action(
    State(app): State<AppState>,
    Path((user, id_action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let (id, action) = id_action.rsplit_once(':').ok_or_else(ApiError::not_found)?;
    let now = shared.now();
    let u = shared.user_mut(&user).ok_or_else(ApiError::not_found)?;
    let index = u
        .key_pairs
        .iter()
        .position(|k| k.id == id)
        .ok_or_else(ApiError::not_found)?;
    let reply = match action {
        "enable" => {
            let kp = &mut u.key_pairs[index];
            kp.enabled = true;
            kp.disable_time = None;
            Json(key_pair_json(kp)).into_response()
        }
        "disable" => {
            let kp = &mut u.key_pairs[index];
            if kp.enabled {
                kp.enabled = false;
                kp.disable_time = Some(now);
            }
            Json(key_pair_json(kp)).into_response()
        }
        "obliterate" => {
            let kp = &u.key_pairs[index];
            match kp.disable_time {
                Some(t) if !kp.enabled && now - t > OBLITERATE_AFTER_SECS => {
                    u.key_pairs.remove(index);
                    (StatusCode::OK, Json(json!({}))).into_response()
                }
                _ => {
                    return Err(ApiError::failed_precondition(
                        "The key pair must be disabled for more than 30 days before it can be obliterated.",
                    ));
                }
            }
        }
        _ => return Err(ApiError::not_found()),
    };
    shared.save();
    Ok(reply)
}

/// Reads and checks an identity body for `user`.
fn identity_from(
    shared: &Shared,
    user: &str,
    body: &Value,
    email: &str,
) -> Result<Identity, ApiError> {
    let primary = body["primaryKeyPairId"].as_str().map(str::to_owned);
    let pair = &body["signAndEncryptKeyPairs"];
    let (signing, encryption) = (
        pair["signingKeyPairId"].as_str().map(str::to_owned),
        pair["encryptionKeyPairId"].as_str().map(str::to_owned),
    );
    let ids: Vec<&String> = match (&primary, &signing, &encryption) {
        (Some(p), None, None) => vec![p],
        (None, Some(s), Some(e)) => vec![s, e],
        _ => {
            return Err(ApiError::invalid_argument(
                "Exactly one of primaryKeyPairId or signAndEncryptKeyPairs (both ids) is required.",
            ));
        }
    };
    let u = shared.user(user).ok_or_else(ApiError::not_found)?;
    if !u.primary.eq_ignore_ascii_case(email) {
        return Err(ApiError::invalid_argument(
            "The identity must use the user's primary email address.",
        ));
    }
    let now = shared.now();
    for id in ids {
        let kp =
            u.key_pairs.iter().find(|k| &k.id == id).ok_or_else(|| {
                ApiError::invalid_argument(format!("Key pair {id} does not exist."))
            })?;
        if !kp.enabled {
            return Err(ApiError::failed_precondition(format!(
                "Key pair {id} is not enabled."
            )));
        }
        if kp.not_after <= now {
            return Err(ApiError::failed_precondition(format!(
                "The certificate of key pair {id} has expired."
            )));
        }
        if !kp.chain_valid {
            return Err(ApiError::failed_precondition(format!(
                "The certificate chain of key pair {id} did not validate; it can only decrypt."
            )));
        }
        if !kp
            .subject_emails
            .iter()
            .any(|e| e.eq_ignore_ascii_case(email))
        {
            return Err(ApiError::invalid_argument(format!(
                "Key pair {id} is not for {email}."
            )));
        }
    }
    Ok(Identity {
        email: u.primary.clone(),
        primary_key_pair_id: primary,
        signing_key_pair_id: signing,
        encryption_key_pair_id: encryption,
    })
}

/// `POST .../cse/identities`.
pub(crate) async fn create_identity(
    State(app): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let body = parse_body(&body)?;
    let email = body["emailAddress"].as_str().unwrap_or_default().to_owned();
    let identity = identity_from(&shared, &user, &body, &email)?;
    let key = identity.email.to_ascii_lowercase();
    let u = shared.user_mut(&user).ok_or_else(ApiError::not_found)?;
    if u.identities.contains_key(&key) {
        return Err(ApiError::already_exists("The identity already exists."));
    }
    let reply = identity_json(&identity);
    u.identities.insert(key, identity);
    shared.save();
    Ok(Json(reply).into_response())
}

/// `PATCH .../cse/identities/{email}`.
pub(crate) async fn patch_identity(
    State(app): State<AppState>,
    Path((user, email)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let body = parse_body(&body)?;
    if !shared
        .user(&user)
        .is_some_and(|u| u.identities.contains_key(&email.to_ascii_lowercase()))
    {
        return Err(ApiError::not_found());
    }
    let identity = identity_from(&shared, &user, &body, &email)?;
    let reply = identity_json(&identity);
    if let Some(u) = shared.user_mut(&user) {
        u.identities.insert(email.to_ascii_lowercase(), identity);
    }
    shared.save();
    Ok(Json(reply).into_response())
}

/// `GET .../cse/identities/{email}`.
pub(crate) async fn get_identity(
    State(app): State<AppState>,
    Path((user, email)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let identity = shared
        .user(&user)
        .and_then(|u| u.identities.get(&email.to_ascii_lowercase()))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(identity_json(identity)).into_response())
}

/// `DELETE .../cse/identities/{email}`.
pub(crate) async fn delete_identity(
    State(app): State<AppState>,
    Path((user, email)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let removed = shared
        .user_mut(&user)
        .and_then(|u| u.identities.remove(&email.to_ascii_lowercase()));
    if removed.is_none() {
        return Err(ApiError::not_found());
    }
    shared.save();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../cse/identities`.
pub(crate) async fn list_identities(
    State(app): State<AppState>,
    Path(user): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    let all: Vec<Identity> = shared
        .user(&user)
        .map(|u| u.identities.values().cloned().collect())
        .unwrap_or_default();
    page_reply(&all, &query, "cseIdentities", identity_json)
}

/// `GET .../settings/sendAs`.
pub(crate) async fn list_send_as(
    State(app): State<AppState>,
    Path(user): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    Ok(Json(json!({"sendAs": send_as_of(&shared, &user)?})).into_response())
}

/// The user's send-as addresses as Google lists them: the primary, then the aliases.
fn send_as_of(shared: &Shared, user: &str) -> Result<Vec<Value>, ApiError> {
    let u = shared.user(user).ok_or_else(ApiError::not_found)?;
    let mut send_as = vec![json!({
        "sendAsEmail": u.primary, "isPrimary": true, "isDefault": true, "treatAsAlias": false,
        "verificationStatus": "accepted",
    })];
    for alias in &u.aliases {
        send_as.push(
            json!({"sendAsEmail": alias, "treatAsAlias": true, "verificationStatus": "accepted"}),
        );
    }
    Ok(send_as)
}

/// `GET .../settings/sendAs/{sendAsEmail}`.
pub(crate) async fn get_send_as(
    State(app): State<AppState>,
    Path((user, address)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut shared = app.shared.lock().await;
    let user = authorize(&mut shared, &headers, &user, SCOPES)?;
    send_as_of(&shared, &user)?
        .into_iter()
        .find(|s| {
            s["sendAsEmail"]
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case(&address))
        })
        .map(|s| Json(s).into_response())
        .ok_or_else(ApiError::not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> Value {
        let path = format!("{}/../../tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every key of `ours` exists in `theirs` with a value of the same JSON type, recursively.
    fn assert_shape(ours: &Value, theirs: &Value, at: &str) {
        match (ours, theirs) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in a {
                    let other = b
                        .get(k)
                        .unwrap_or_else(|| panic!("{at}.{k} is not in Google's shape"));
                    assert_shape(v, other, &format!("{at}.{k}"));
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                if let (Some(x), Some(y)) = (a.first(), b.first()) {
                    assert_shape(x, y, &format!("{at}[]"));
                }
            }
            (a, b) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "{at}: {a} vs {b}"
            ),
        }
    }

    #[test]
    fn replies_use_googles_shapes() {
        let kp = KeyPair {
            id: "kp1".into(),
            pem: "PEM".into(),
            fingerprint: String::new(),
            subject_emails: vec!["jane@example.com".into()],
            not_after: 0,
            enabled: false,
            disable_time: Some(1_800_000_000),
            metadata_id: "m1".into(),
            kacls_uri: "https://k".into(),
            kacls_data: "d".into(),
            chain_valid: true,
        };
        let golden_kp = golden("cse_key_pair.json");
        assert_shape(&key_pair_json(&kp), &golden_kp, "CseKeyPair");
        assert_eq!(
            key_pair_json(&kp)
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            golden_kp.as_object().unwrap().keys().collect::<Vec<_>>(),
            "every field of a disabled key pair"
        );
        let identity = Identity {
            email: "jane@example.com".into(),
            primary_key_pair_id: None,
            signing_key_pair_id: Some("s".into()),
            encryption_key_pair_id: Some("e".into()),
        };
        assert_eq!(identity_json(&identity).as_object().unwrap().len(), 2);
        assert_shape(
            &identity_json(&identity),
            &golden("cse_identity.json"),
            "CseIdentity",
        );
        let error = crate::errors::ApiError::failed_precondition("Precondition check failed.");
        let response = axum::response::IntoResponse::into_response(error);
        assert_eq!(response.status().as_u16(), 400);
    }
}
