//! The key access control list service (KACLS) of Google Workspace CSE, on the server under
//! `[server.kacls] prefix` (default `/google_cse`): the endpoints Gmail calls when a user signs
//! or decrypts with a key pair whose private key we wrapped (`privatekeysign`,
//! `privatekeydecrypt`), the privileged decrypt for exports, `wrapprivatekey` and `status`.
//!
//! Every call carries two JWTs: `authentication`, from one of the organization's identity
//! providers, and `authorization`, from Google. Both are checked against their issuer's JWKS;
//! the authorization token must carry the role the operation needs, this service's URL and
//! (when configured) an allowed perimeter, and both must name the same user. Only then is the
//! wrapped key opened with the store's CSE key (acting as `[server.kacls] actor`, who needs
//! `decrypt` on it). Opened keys are cached for `key_cache_seconds`; OpenSSL clears an RSA
//! key's private numbers when the last reference is dropped. Errors follow Google's structured
//! reply, `{"code", "message", "details"}`; decryption failures all read alike.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_store::{Actor, Operation, Store, StoreError, cse_unwrap, cse_wrap, excerpt};
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::ApiError;
use crate::jwt::{Claims, IssuerConfig, JwtIssuer, verify_with};
use crate::routes::Body;

use mailpki_kms::api::KACLS_CHECK_PREFIX as CHECK_PREFIX;

/// `[server.kacls]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KaclsConfig {
    /// Where the endpoints live on this server [default: /google_cse].
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The key service's public URL, as in `[google] kacls_url` and the authorization
    /// tokens' `kacls_url` claim. Unset, the server's own listen address and `prefix` (right
    /// only when clients reach the server directly); never a request's Host header.
    #[serde(default)]
    pub url: Option<String>,
    /// Whether `privatekeysign` and `privatekeydecrypt` need an authorization naming the key
    /// (`spki_hash`), which binds a wrapped key to its user. Gmail always sends it; turn this
    /// off only for other clients [default: true].
    #[serde(default = "crate::yes")]
    pub require_spki_hash: bool,
    /// Web origins whose pages may call the key service from a browser (CORS): Gmail on the
    /// web is `https://client-side-encryption.google.com`. Never `*` [default: that one].
    #[serde(default = "gmail_origins")]
    pub allowed_origins: Vec<String>,
    /// Store IDs of the CSE keys; the first wraps, each is tried to unwrap (key rotation).
    pub cse_keys: Vec<String>,
    /// The store user the service acts as; it needs `decrypt` (and `encrypt`, for
    /// `wrapprivatekey`) on the CSE keys [default: kacls].
    #[serde(default = "default_actor")]
    pub actor: String,
    /// The organization's identity providers (authentication tokens).
    pub identity_providers: Vec<IssuerConfig>,
    /// Google's CSE authorization token issuers (authorization tokens) [default: Gmail's,
    /// `gsuitecse-tokenissuer-gmail@system.gserviceaccount.com`, audience `cse-authorization`,
    /// keys from its published JWKS].
    #[serde(default = "gmail_authorization_issuers")]
    pub authorization_issuers: Vec<IssuerConfig>,
    /// Allowed `perimeter_id`s; empty: any.
    #[serde(default)]
    pub perimeters: Vec<String>,
    /// Users who may call `privilegedprivatekeydecrypt` and `wrapprivatekey`.
    #[serde(default)]
    pub privileged_users: Vec<String>,
    #[serde(default = "default_cache_seconds")]
    pub key_cache_seconds: u64,
    #[serde(default = "default_cache_entries")]
    pub key_cache_entries: usize,
    /// Instance name for `status`.
    #[serde(default)]
    pub name: Option<String>,
}

/// The origin Gmail on the web calls the key service from.
const GMAIL_ORIGIN: &str = "https://client-side-encryption.google.com";

fn gmail_origins() -> Vec<String> {
    vec![GMAIL_ORIGIN.to_owned()]
}

/// A web origin as CORS compares it: `scheme://host[:port]`, nothing after.
fn check_origin(origin: &str) -> Result<axum::http::HeaderValue, String> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '*', ' ', '?', '#']) => {
            axum::http::HeaderValue::from_str(origin).map_err(|e| e.to_string())
        }
        _ => Err(format!(
            "allowed_origins: `{origin}` is not an origin (scheme://host[:port], no path, no `*`)"
        )),
    }
}

/// The issuer of the authorization tokens Gmail sends, from Google's CSE reference.
const GMAIL_AUTHORIZATION_ISSUER: &str = "gsuitecse-tokenissuer-gmail@system.gserviceaccount.com";

fn gmail_authorization_issuers() -> Vec<IssuerConfig> {
    vec![IssuerConfig {
        issuer: GMAIL_AUTHORIZATION_ISSUER.to_owned(),
        audience: "cse-authorization".to_owned(),
        jwks_url: Some(format!(
            "https://www.googleapis.com/service_accounts/v1/jwk/{GMAIL_AUTHORIZATION_ISSUER}"
        )),
        jwks_file: None,
        jwks_refresh_seconds: crate::jwt::default_refresh(),
    }]
}

fn default_prefix() -> String {
    "/google_cse".to_owned()
}

fn default_actor() -> String {
    "kacls".to_owned()
}

fn default_cache_seconds() -> u64 {
    300
}

fn default_cache_entries() -> usize {
    10_000
}

/// Google's limits on the fields (CSE API reference), checked before any work.
const MAX_WRAPPED_KEY: usize = 8 * 1024;
const MAX_DIGEST: usize = 128;
const MAX_ENCRYPTED_DEK: usize = 1024;
const MAX_REASON: usize = 1024;

const OPERATIONS: &[&str] = &[
    "privatekeysign",
    "privatekeydecrypt",
    "privilegedprivatekeydecrypt",
    "wrapprivatekey",
    "status",
];

/// A failure as Google's structured error reply.
#[derive(Debug)]
pub(crate) struct KaclsError {
    status: StatusCode,
    message: String,
}

impl KaclsError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<ApiError> for KaclsError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

impl IntoResponse for KaclsError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.status.as_u16(), "message": self.message, "details": ""});
        (self.status, Json(body)).into_response()
    }
}

/// A JSON body whose rejections answer in Google's error format.
pub(crate) struct KaclsJson<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for KaclsJson<T> {
    type Rejection = KaclsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, KaclsError> {
        let Body(value) = Body::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// Values with their expiry time, and the order they came in.
type Entries<V> = (HashMap<[u8; 32], (V, Instant)>, VecDeque<[u8; 32]>);

/// Values by a SHA-256, each for a bounded time, at most `capacity` of them: opened keys by
/// their wrapped form, users by their authentication token.
struct TimedCache<V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Entries<V>>,
}

impl<V: Clone> TimedCache<V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn get(&self, id: &[u8; 32]) -> Option<V> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match inner.0.get(id) {
            Some((value, until)) if Instant::now() < *until => Some(value.clone()),
            Some(_) => {
                inner.0.remove(id);
                None
            }
            None => None,
        }
    }

    /// Drops every expired entry (an opened key's memory is cleared as it goes), so that a
    /// key is not kept past its time when no request comes to push it out.
    fn sweep(&self) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (map, order) = &mut *inner;
        map.retain(|_, (_, until)| *until > now);
        order.retain(|id| map.contains_key(id));
    }

    fn insert(&self, id: [u8; 32], value: V, ttl: Duration) {
        if self.capacity == 0 || ttl.is_zero() {
            return;
        }
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (map, order) = &mut *inner;
        // Oldest first out; entries already expired or replaced leave stale IDs behind, which
        // are skipped here.
        while map.len() >= self.capacity {
            let Some(old) = order.pop_front() else { break };
            map.remove(&old);
        }
        if map.insert(id, (value, Instant::now() + ttl)).is_none() {
            order.push_back(id);
        }
    }
}

pub(crate) struct Kacls {
    config: KaclsConfig,
    idps: Vec<JwtIssuer>,
    authz: Vec<JwtIssuer>,
    actor: Actor,
    cache: TimedCache<Arc<OpenedKey>>,
    sessions: TimedCache<String>,
    /// This service's URL, as authorization tokens must name it.
    url: String,
    /// `allowed_origins`, checked, as CORS answers them.
    origins: Vec<axum::http::HeaderValue>,
}

/// Why a call was refused: before anyone was identified (logged, bounded, never audited), or
/// once the caller's identity token checked out (audited under their name).
enum Refusal {
    Anonymous(KaclsError),
    Known(String, KaclsError),
}

/// Who asked, for the log and the audit trail.
struct Decision {
    email: String,
    resource: Option<String>,
    spki_hash: Option<String>,
}

fn claim<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(serde_json::Value::as_str)
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), KaclsError> {
    if value.len() > max {
        return Err(KaclsError::bad(format!(
            "`{field}` is larger than {max} bytes"
        )));
    }
    Ok(())
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, KaclsError> {
    STANDARD
        .decode(value.trim())
        .map_err(|_| KaclsError::bad(format!("`{field}` is not base64")))
}

/// `SHA-256` of the key's SubjectPublicKeyInfo, base64, as the `spki_hash` claim carries it.
fn spki_hash(key: &PKey<Private>) -> Result<String, KaclsError> {
    let der = key
        .public_key_to_der()
        .map_err(|_| KaclsError::internal("cannot encode the public key"))?;
    let digest = openssl::hash::hash(MessageDigest::sha256(), &der)
        .map_err(|_| KaclsError::internal("cannot hash the public key"))?;
    Ok(STANDARD.encode(digest))
}

/// A key taken out of its wrapping, with the hash authorizations name it by: computed once,
/// as encoding a public key costs OpenSSL 3 more than the signature it is checked for.
pub(crate) struct OpenedKey {
    key: PKey<Private>,
    spki_hash: String,
}

fn check_spki(opened: &OpenedKey, wanted: Option<&str>) -> Result<(), KaclsError> {
    match wanted {
        Some(wanted) if wanted != opened.spki_hash => Err(KaclsError::forbidden(
            "the wrapped key is not the key the authorization names (spki_hash)",
        )),
        _ => Ok(()),
    }
}

impl Kacls {
    /// `server_url` is where the server listens, for a configuration without `url`.
    pub(crate) fn new(config: KaclsConfig, server_url: &str) -> Result<Self, String> {
        if config.cse_keys.is_empty() {
            return Err("[server.kacls] cse_keys names no CSE key".to_owned());
        }
        if config.identity_providers.is_empty() || config.authorization_issuers.is_empty() {
            return Err(
                "[server.kacls] needs identity_providers and authorization_issuers".to_owned(),
            );
        }
        for issuer in config
            .identity_providers
            .iter()
            .chain(&config.authorization_issuers)
        {
            if issuer.jwks_url.is_none() && issuer.jwks_file.is_none() {
                return Err(format!("no jwks_url or jwks_file for {}", issuer.issuer));
            }
        }
        let origins = config
            .allowed_origins
            .iter()
            .map(|o| check_origin(o))
            .collect::<Result<Vec<_>, _>>()?;
        let actor = Actor::new(config.actor.clone()).map_err(|e| e.to_string())?;
        Ok(Self {
            idps: config
                .identity_providers
                .iter()
                .cloned()
                .map(JwtIssuer::new)
                .collect(),
            authz: config
                .authorization_issuers
                .iter()
                .cloned()
                .map(JwtIssuer::new)
                .collect(),
            actor,
            cache: TimedCache::new(
                Duration::from_secs(config.key_cache_seconds),
                config.key_cache_entries,
            ),
            sessions: TimedCache::new(
                Duration::from_secs(config.key_cache_seconds),
                config.key_cache_entries,
            ),
            url: config.url.as_deref().map_or_else(
                || format!("{server_url}{}", config.prefix),
                |u| u.trim_end_matches('/').to_owned(),
            ),
            origins,
            config,
        })
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// Forgets expired keys and sessions every few seconds, for as long as the service runs.
    pub(crate) fn spawn_sweeper(self: &Arc<Self>) {
        let service = Arc::downgrade(self);
        let every = (self.cache.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(service) = service.upgrade() else {
                    return;
                };
                service.cache.sweep();
                service.sessions.sweep();
            }
        });
    }

    /// The user the authentication token names (`google_email` when present). A user's
    /// client sends the same identity token with every call of a session, so a token that
    /// checked out is remembered (by its hash) until it expires, at most `key_cache_seconds`.
    async fn authenticate(&self, token: &str) -> Result<String, KaclsError> {
        let id = openssl::sha::sha256(token.as_bytes());
        if let Some(email) = self.sessions.get(&id) {
            return Ok(email);
        }
        let claims = verify_with(&self.idps, token)
            .await
            .map_err(|e| KaclsError::unauthenticated(format!("authentication token: {e}")))?;
        let email = claim(&claims, "google_email")
            .or_else(|| claim(&claims, "email"))
            .filter(|e| !e.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| KaclsError::unauthenticated("the authentication token has no email"))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let left = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .map_or(0, |exp| exp - now);
        if left > 0 {
            let ttl = Duration::from_secs(left.unsigned_abs()).min(self.cache.ttl);
            self.sessions.insert(id, email.clone(), ttl);
        }
        Ok(email)
    }

    /// Both tokens checked for `role`, as Google's CSE reference asks.
    async fn authorize(
        &self,
        authentication: &str,
        authorization: &str,
        role: &str,
    ) -> Result<Decision, Refusal> {
        let email = self
            .authenticate(authentication)
            .await
            .map_err(Refusal::Anonymous)?;
        self.check_authorization(&email, authorization, role)
            .await
            .map_err(|e| Refusal::Known(email, e))
    }

    async fn check_authorization(
        &self,
        email: &str,
        authorization: &str,
        role: &str,
    ) -> Result<Decision, KaclsError> {
        let claims = verify_with(&self.authz, authorization)
            .await
            .map_err(|e| KaclsError::unauthenticated(format!("authorization token: {e}")))?;
        if claim(&claims, "role") != Some(role) {
            return Err(KaclsError::forbidden(format!(
                "the authorization's role is `{}`, this operation needs `{role}`",
                excerpt(claim(&claims, "role").unwrap_or("none"), 40)
            )));
        }
        let authorized = claim(&claims, "email").unwrap_or_default();
        if authorized.trim().is_empty() || !authorized.eq_ignore_ascii_case(email) {
            return Err(KaclsError::forbidden(
                "the authentication and authorization tokens name different users",
            ));
        }
        let url = &self.url;
        if claim(&claims, "kacls_url").map(|u| u.trim_end_matches('/')) != Some(url.as_str()) {
            return Err(KaclsError::forbidden(format!(
                "the authorization is for another key service (kacls_url is not {url})"
            )));
        }
        if let Some(perimeter) = claim(&claims, "perimeter_id")
            && !perimeter.is_empty()
            && !self.config.perimeters.is_empty()
            && !self.config.perimeters.iter().any(|p| p == perimeter)
        {
            return Err(KaclsError::forbidden(format!(
                "perimeter `{}` is not allowed here",
                excerpt(perimeter, 80)
            )));
        }
        let spki_hash = claim(&claims, "spki_hash")
            .filter(|h| !h.is_empty())
            .map(str::to_owned);
        if spki_hash.is_none() && self.config.require_spki_hash {
            return Err(KaclsError::forbidden(
                "the authorization names no key (spki_hash): a wrapped key opens only for the user it was made for",
            ));
        }
        Ok(Decision {
            email: email.to_owned(),
            resource: claim(&claims, "resource_name").map(str::to_owned),
            spki_hash,
        })
    }

    /// The private key inside `wrapped`, from the cache or opened with a CSE key.
    fn open(&self, store: &Store, wrapped: &str) -> Result<Arc<OpenedKey>, KaclsError> {
        check_len("wrapped_private_key", wrapped, MAX_WRAPPED_KEY)?;
        let id: [u8; 32] = openssl::sha::sha256(wrapped.trim().as_bytes());
        if let Some(key) = self.cache.get(&id) {
            return Ok(key);
        }
        for cse_key in &self.config.cse_keys {
            let wrapping = store
                .symmetric_key(&self.actor, cse_key, Operation::Decrypt)
                .map_err(|e| {
                    tracing::error!(error = %e, cse_key, "the key service cannot use its CSE key");
                    match e {
                        StoreError::Unavailable { .. } => KaclsError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the key store is unavailable",
                        ),
                        _ => KaclsError::internal("the key service cannot use its CSE key"),
                    }
                })?;
            let opened = cse_unwrap(&wrapping, wrapped)
                .map_err(|_| KaclsError::internal("the key service cannot use its CSE key"))?;
            if let Some(pkcs8) = opened {
                let key = PKey::private_key_from_pkcs8(&pkcs8)
                    .map_err(|_| KaclsError::bad("the wrapped key holds no private key"))?;
                if key.id() != Id::RSA {
                    return Err(KaclsError::bad("the wrapped key is not an RSA key"));
                }
                let key = Arc::new(OpenedKey {
                    spki_hash: spki_hash(&key)?,
                    key,
                });
                self.cache.insert(id, Arc::clone(&key), self.cache.ttl);
                return Ok(key);
            }
        }
        Err(KaclsError::bad(
            "the wrapped key was not made by this key service, or was altered",
        ))
    }
}

fn sign(
    key: &PKey<Private>,
    algorithm: &str,
    digest: &[u8],
    salt: Option<i32>,
) -> Result<Vec<u8>, KaclsError> {
    let unsupported = || {
        KaclsError::bad(format!(
            "unsupported signing algorithm `{}` (SHA1withRSA, SHA256withRSA, SHA384withRSA, SHA512withRSA, their /PSS forms, RSASSA-PSS)",
            excerpt(algorithm, 64)
        ))
    };
    // Google's and other vendors' spellings differ in case (`SHA256withRSA`, `SHA256WithRSA`).
    let lower = algorithm.to_ascii_lowercase();
    let (name, pss) = match lower
        .strip_suffix("/pss")
        .or_else(|| lower.strip_suffix("andmgf1"))
    {
        Some(name) => (name, true),
        None => (lower.as_str(), lower == "rsassa-pss"),
    };
    let md = match name {
        "sha1withrsa" if !pss => Md::sha1(),
        "sha256withrsa" => Md::sha256(),
        "sha384withrsa" => Md::sha384(),
        "sha512withrsa" => Md::sha512(),
        // The hash is the one whose size the digest has.
        "rsassa-pss" => match digest.len() {
            48 => Md::sha384(),
            64 => Md::sha512(),
            _ => Md::sha256(),
        },
        _ => return Err(unsupported()),
    };
    if md.size() != digest.len() {
        return Err(KaclsError::bad(format!(
            "a {}-byte digest does not fit {}",
            digest.len(),
            excerpt(algorithm, 64)
        )));
    }
    let failed = |_| KaclsError::internal("signing failed");
    // RFC 8017: the salt fits beside the hash and two bytes in the key's size; OpenSSL would
    // fail later with an error that reads as ours.
    let salt = salt.unwrap_or(md.size() as i32);
    let max_salt = i32::try_from(key.size()).unwrap_or(i32::MAX) - md.size() as i32 - 2;
    if pss && !(0..=max_salt).contains(&salt) {
        return Err(KaclsError::bad(format!(
            "rsa_pss_salt_length {salt} does not fit this key and digest (0 to {max_salt})"
        )));
    }
    let mut ctx = PkeyCtx::new(key).map_err(failed)?;
    ctx.sign_init().map_err(failed)?;
    ctx.set_signature_md(md).map_err(failed)?;
    if pss {
        ctx.set_rsa_padding(Padding::PKCS1_PSS).map_err(failed)?;
        ctx.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(salt))
            .map_err(failed)?;
    } else {
        ctx.set_rsa_padding(Padding::PKCS1).map_err(failed)?;
    }
    let mut signature = Vec::new();
    ctx.sign_to_vec(digest, &mut signature).map_err(failed)?;
    Ok(signature)
}

fn decrypt(
    key: &PKey<Private>,
    algorithm: &str,
    ciphertext: &[u8],
    label: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, KaclsError> {
    // Google writes `OAEPwithSHA-1andMGF1Padding`, Java and Cosmian `OAEPWithSHA-1AndMGF1Padding`.
    let (padding, oaep_md) = match algorithm.to_ascii_lowercase().as_str() {
        "rsa/ecb/pkcs1padding" | "rsaes-pkcs1-v1_5" => (Padding::PKCS1, None),
        "rsa/ecb/oaepwithsha-1andmgf1padding" | "rsaes-oaep" => {
            (Padding::PKCS1_OAEP, Some(Md::sha1()))
        }
        "rsa/ecb/oaepwithsha-256andmgf1padding" => (Padding::PKCS1_OAEP, Some(Md::sha256())),
        _ => {
            return Err(KaclsError::bad(format!(
                "unsupported decryption algorithm `{}` (RSA/ECB/PKCS1Padding, RSA/ECB/OAEPWithSHA-1AndMGF1Padding, RSA/ECB/OAEPWithSHA-256AndMGF1Padding)",
                excerpt(algorithm, 64)
            )));
        }
    };
    // One message for every way decryption can fail: a padding oracle must learn nothing.
    let failed = |_| KaclsError::bad("decryption failed");
    let mut ctx = PkeyCtx::new(key).map_err(failed)?;
    ctx.decrypt_init().map_err(failed)?;
    ctx.set_rsa_padding(padding).map_err(failed)?;
    if let Some(md) = oaep_md {
        ctx.set_rsa_oaep_md(md).map_err(failed)?;
        ctx.set_rsa_mgf1_md(md).map_err(failed)?;
        if let Some(label) = label.filter(|l| !l.is_empty()) {
            ctx.set_rsa_oaep_label(label).map_err(failed)?;
        }
    }
    let mut plain = Zeroizing::new(Vec::new());
    ctx.decrypt_to_vec(ciphertext, &mut plain).map_err(failed)?;
    Ok(plain)
}

#[derive(Deserialize)]
struct SignRequest {
    authentication: String,
    authorization: String,
    algorithm: String,
    digest: String,
    #[serde(default)]
    rsa_pss_salt_length: Option<i32>,
    #[serde(default)]
    reason: String,
    wrapped_private_key: String,
}

#[derive(Deserialize)]
struct DecryptRequest {
    authentication: String,
    #[serde(default)]
    authorization: String,
    algorithm: String,
    encrypted_data_encryption_key: String,
    #[serde(default)]
    rsa_oaep_label: Option<String>,
    #[serde(default)]
    reason: String,
    wrapped_private_key: String,
    /// Privileged decrypt only: the key the caller expects.
    #[serde(default)]
    spki_hash: Option<String>,
    #[serde(default)]
    spki_hash_algorithm: Option<String>,
}

#[derive(Deserialize)]
struct WrapRequest {
    authentication: String,
    #[serde(default)]
    perimeter_id: String,
    private_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckRequest {
    wrapped_private_key: String,
    /// Base64, at most 64 bytes.
    nonce: String,
}

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

fn service(app: &AppState) -> Result<Arc<Kacls>, KaclsError> {
    app.kacls
        .clone()
        .ok_or_else(|| KaclsError::new(StatusCode::NOT_FOUND, "no key service here"))
}

/// Runs the crypto (and the store) on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KaclsError> + Send + 'static,
) -> Result<T, KaclsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| KaclsError::internal("the operation failed"))?
}

/// Answers a refusal: one before anyone was identified goes to a bounded, rate-limited log
/// line and counts against the client's address (it never reaches the audit table, which an
/// anonymous caller could otherwise fill); one after goes on record under the caller's name.
async fn refuse(
    app: &AppState,
    addr: Option<std::net::IpAddr>,
    operation: &'static str,
    refusal: Refusal,
) -> KaclsError {
    match refusal {
        Refusal::Anonymous(e) => {
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
fn not_blocked(app: &AppState, addr: Option<std::net::IpAddr>) -> Result<(), KaclsError> {
    if app.failures.blocked(addr) {
        Err(ApiError::too_many_failures().into())
    } else {
        Ok(())
    }
}

/// Logs the decision and records it in the audit log.
async fn record(
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
    let outcome = result.map_err(|e| ApiError::new(e.status, "kacls", e.message.clone()));
    app.audit(who, operation, object.as_deref(), outcome.as_ref().copied())
        .await;
}

async fn status(State(app): State<AppState>) -> Result<Response, KaclsError> {
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

async fn private_key_sign(
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
    let (store, service) = (Arc::clone(&app.store), Arc::clone(&kacls));
    let spki = decision.spki_hash.clone();
    let result = blocking(move || {
        let key = service.open(&store, &req.wrapped_private_key)?;
        check_spki(&key, spki.as_deref())?;
        sign(&key.key, &req.algorithm, &digest, req.rsa_pss_salt_length)
    })
    .await;
    record(
        &app,
        &decision.email,
        "kacls.privatekeysign",
        decision.resource,
        result.as_ref().map(|_| ()),
    )
    .await;
    Ok(Json(json!({"signature": STANDARD.encode(result?)})).into_response())
}

async fn decrypt_common(
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
    let store = Arc::clone(&app.store);
    let spki = decision.spki_hash.clone();
    let result = blocking(move || {
        let key = kacls.open(&store, &req.wrapped_private_key)?;
        check_spki(&key, spki.as_deref())?;
        decrypt(&key.key, &req.algorithm, &ciphertext, label.as_deref())
    })
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
    Ok(Json(json!({"data_encryption_key": STANDARD.encode(dek.as_slice())})).into_response())
}

async fn private_key_decrypt(
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
async fn privileged(kacls: &Kacls, authentication: &str) -> Result<String, Refusal> {
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

async fn privileged_private_key_decrypt(
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

async fn wrap_private_key(
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
        let wrapping = store
            .symmetric_key(
                &service.actor,
                &service.config.cse_keys[0],
                Operation::Encrypt,
            )
            .map_err(|e| {
                tracing::error!(error = %e, "the key service cannot use its CSE key");
                KaclsError::internal("the key service cannot use its CSE key")
            })?;
        cse_wrap(&wrapping, &pkcs8).map_err(|_| KaclsError::internal("wrapping failed"))
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
    Ok(Json(json!({"wrapped_private_key": result?})).into_response())
}

/// A mailpki extension, not Google's: proves a wrapped key opens here by signing
/// `CHECK_PREFIX || nonce` (never a digest of the caller's choosing). The caller is a mailpki
/// user (bearer token) who holds `encrypt` on the CSE key, the right needed to wrap keys.
async fn check(
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
            .symmetric_key(&actor, &service.config.cse_keys[0], Operation::Encrypt)
            .map_err(|e| KaclsError::forbidden(e.to_string()))?;
        let key = service.open(&store, &req.wrapped_private_key)?;
        let mut message = CHECK_PREFIX.to_vec();
        message.extend_from_slice(&nonce);
        let digest = openssl::sha::sha256(&message);
        sign(&key.key, "SHA256withRSA", &digest, None)
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
    Ok(
        Json(json!({"signature": STANDARD.encode(result?), "algorithm": "SHA256withRSA"}))
            .into_response(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_origins_are_origins_and_never_a_wildcard() {
        for good in [GMAIL_ORIGIN, "http://localhost:8080"] {
            assert!(check_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "*",
            "https://*.google.com",
            "https://x.example.com/path",
            "x.example.com",
            "https://",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gmails_authorization_issuer_is_the_default() {
        let config: KaclsConfig = toml::from_str(
            "cse_keys = [\"cse_key\"]\n[[identity_providers]]\nissuer = \"https://idp\"\n\
             audience = \"kacls\"\njwks_file = \"idp.jwks\"\n",
        )
        .unwrap();
        let gmail = &config.authorization_issuers[0];
        assert_eq!(gmail.issuer, GMAIL_AUTHORIZATION_ISSUER);
        assert_eq!(gmail.audience, "cse-authorization");
        assert!(
            gmail
                .jwks_url
                .as_deref()
                .unwrap()
                .ends_with(GMAIL_AUTHORIZATION_ISSUER)
        );
        assert!(config.require_spki_hash);
        assert!(Kacls::new(config, "https://kms.example.com").is_ok());
    }

    #[test]
    fn cached_values_leave_when_their_time_is_up_or_room_is_needed() {
        let cache = TimedCache::new(Duration::from_secs(60), 2);
        cache.insert([1; 32], "a".to_owned(), Duration::from_secs(60));
        cache.insert([2; 32], "b".to_owned(), Duration::ZERO);
        assert_eq!(cache.get(&[1; 32]).as_deref(), Some("a"));
        assert_eq!(cache.get(&[2; 32]), None, "a zero lifetime is not cached");
        cache.insert([3; 32], "c".to_owned(), Duration::from_nanos(1));
        cache.insert([4; 32], "d".to_owned(), Duration::from_secs(60));
        assert_eq!(cache.get(&[1; 32]), None, "the oldest made room");
        cache.sweep();
        let inner = cache.inner.lock().unwrap();
        assert_eq!(
            inner.0.len(),
            1,
            "the expired one is gone without being asked for"
        );
        assert_eq!(inner.1.len(), 1);
    }
}
