//! `[server.kacls]`: the key service's settings and their defaults (Gmail's origin and
//! authorization issuer), and Google's limits on request fields.

use serde::{Deserialize, Serialize};

use crate::jwt::IssuerConfig;

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
pub(super) const GMAIL_ORIGIN: &str = "https://client-side-encryption.google.com";

pub(super) fn gmail_origins() -> Vec<String> {
    vec![GMAIL_ORIGIN.to_owned()]
}

/// A web origin as CORS compares it: `scheme://host[:port]`, nothing after.
pub(super) fn check_origin(origin: &str) -> Result<axum::http::HeaderValue, String> {
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
pub(super) const GMAIL_AUTHORIZATION_ISSUER: &str =
    "gsuitecse-tokenissuer-gmail@system.gserviceaccount.com";

pub(super) fn gmail_authorization_issuers() -> Vec<IssuerConfig> {
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

pub(super) fn default_prefix() -> String {
    "/google_cse".to_owned()
}

pub(super) fn default_actor() -> String {
    "kacls".to_owned()
}

pub(super) fn default_cache_seconds() -> u64 {
    300
}

pub(super) fn default_cache_entries() -> usize {
    10_000
}

/// Google's limits on the fields (CSE API reference), checked before any work.
pub(super) const MAX_WRAPPED_KEY: usize = 8 * 1024;
pub(super) const MAX_DIGEST: usize = 128;
pub(super) const MAX_ENCRYPTED_DEK: usize = 1024;
pub(super) const MAX_REASON: usize = 1024;

pub(super) const OPERATIONS: &[&str] = &[
    "privatekeysign",
    "privatekeydecrypt",
    "privilegedprivatekeydecrypt",
    "wrapprivatekey",
    "status",
];
