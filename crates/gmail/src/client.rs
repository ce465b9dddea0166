//! The Gmail API client: typed methods over one request path that authenticates, retries
//! throttling and server faults with exponential backoff and jitter (honouring `Retry-After`),
//! never retries other client errors, and turns Google's error bodies into [`GmailError`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::TokenSource;
use crate::error::{GmailError, Result};
use crate::types::{
    CseIdentity, CseKeyPair, ErrorResponse, ListCseIdentitiesResponse, ListCseKeyPairsResponse,
    ListSendAsResponse, ListSmimeInfoResponse, SendAs, SmimeInfo,
};

pub const DEFAULT_API_URL: &str = "https://gmail.googleapis.com";
/// Manage the primary address's settings, CSE included.
pub const SCOPE_SETTINGS_BASIC: &str = "https://www.googleapis.com/auth/gmail.settings.basic";
/// Manage settings of custom "send as" aliases.
pub const SCOPE_SETTINGS_SHARING: &str = "https://www.googleapis.com/auth/gmail.settings.sharing";

/// How throttled and failed requests are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(32),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter, or what `Retry-After` asks (capped).
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let mut byte = [0u8; 2];
        let _ = openssl::rand::rand_bytes(&mut byte);
        let fraction = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
        ceiling.mul_f64(0.5 + fraction / 2.0)
    }
}

/// Percent-encodes a path segment (addresses and IDs).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@+".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[derive(Clone, Debug)]
pub struct GmailClient {
    http: reqwest::Client,
    base_url: String,
    tokens: Arc<TokenSource>,
    retry: RetryPolicy,
}

impl GmailClient {
    pub fn new(base_url: &str, tokens: Arc<TokenSource>, http: reqwest::Client) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            tokens,
            retry: RetryPolicy::default(),
        }
    }

    /// An HTTP client with the timeouts mailpki uses.
    pub fn http_client() -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("mailpki/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| GmailError::Unreachable {
                url: "(client setup)".to_owned(),
                source,
            })
    }

    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Gets (and caches) a token for `user`: token errors surface before any other work.
    pub async fn preflight(&self, user: &str) -> Result<()> {
        self.tokens
            .token(user, &[SCOPE_SETTINGS_BASIC])
            .await
            .map(|_| ())
    }

    fn users_url(&self, user: &str, rest: &str) -> String {
        format!(
            "{}/gmail/v1/users/{}/settings/{rest}",
            self.base_url,
            segment(user)
        )
    }

    /// Sends one API call as `user`, retrying what may succeed later. Returns the body text.
    async fn call<B: Serialize + ?Sized>(
        &self,
        user: &str,
        scopes: &[&str],
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<String> {
        let mut attempt = 0;
        loop {
            let token = self.tokens.token(user, scopes).await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(token.expose_secret())
                .query(query);
            if let Some(body) = body {
                request = request.json(body);
            } else if method != Method::GET && method != Method::DELETE {
                // Without a body hyper sends no length at all, and Google's front end answers
                // 411 Length Required (setDefault, enable, disable, obliterate).
                request = request
                    .header(reqwest::header::CONTENT_LENGTH, "0")
                    .body(Vec::new());
            }
            let response = request
                .send()
                .await
                .map_err(|source| GmailError::Unreachable {
                    url: url.to_owned(),
                    source,
                })?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response
                .text()
                .await
                .map_err(|source| GmailError::Unreachable {
                    url: url.to_owned(),
                    source,
                })?;
            if status.is_success() {
                return Ok(text);
            }
            let error = api_error(status, &text);
            attempt += 1;
            if !error.is_retryable() || attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let delay = self.retry.delay(attempt, retry_after);
            tracing::info!(%status, attempt, ?delay, url, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        user: &str,
        scopes: &[&str],
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T> {
        let text = self.call(user, scopes, method, url, query, body).await?;
        serde_json::from_str(&text).map_err(|e| GmailError::InvalidResponse {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    /// A GET as `user`, its reply read as `T`.
    async fn get<T: DeserializeOwned>(
        &self,
        user: &str,
        scopes: &[&str],
        url: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        self.json::<T, ()>(user, scopes, Method::GET, url, query, None)
            .await
    }

    // ----- CSE key pairs -------------------------------------------------------------------

    /// `keypairs.create`. With [`ChainValidation::None`] Gmail keeps a chain it cannot verify
    /// (to decrypt old mail); such a key pair cannot back an identity.
    pub async fn create_key_pair(
        &self,
        user: &str,
        key_pair: &CseKeyPair,
        validation: ChainValidation,
    ) -> Result<CseKeyPair> {
        let url = self.users_url(user, "cse/keypairs");
        let query = match validation {
            ChainValidation::All => Vec::new(),
            ChainValidation::None => vec![("chainValidation", "none".to_owned())],
        };
        self.json(
            user,
            &[SCOPE_SETTINGS_BASIC],
            Method::POST,
            &url,
            &query,
            Some(key_pair),
        )
        .await
    }

    pub async fn get_key_pair(&self, user: &str, id: &str) -> Result<CseKeyPair> {
        let url = self.users_url(user, &format!("cse/keypairs/{}", segment(id)));
        self.get(user, &[SCOPE_SETTINGS_BASIC], &url, &[]).await
    }

    pub async fn list_key_pairs_page(
        &self,
        user: &str,
        page_size: Option<u32>,
        page_token: Option<&str>,
    ) -> Result<ListCseKeyPairsResponse> {
        let url = self.users_url(user, "cse/keypairs");
        let query = page_query(page_size, page_token);
        self.get(user, &[SCOPE_SETTINGS_BASIC], &url, &query).await
    }

    /// Every key pair of `user`, following pagination.
    pub async fn list_key_pairs(
        &self,
        user: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<CseKeyPair>> {
        all_pages(|token| async move {
            let page = self
                .list_key_pairs_page(user, page_size, token.as_deref())
                .await?;
            Ok((page.cse_key_pairs, page.next_page_token))
        })
        .await
    }

    /// `enable`, `disable` or `obliterate`.
    pub async fn key_pair_action(
        &self,
        user: &str,
        id: &str,
        action: KeyPairAction,
    ) -> Result<CseKeyPair> {
        let url = self.users_url(
            user,
            &format!("cse/keypairs/{}:{}", segment(id), action.verb()),
        );
        let text = self
            .call(
                user,
                &[SCOPE_SETTINGS_BASIC],
                Method::POST,
                &url,
                &[],
                Some(&serde_json::json!({})),
            )
            .await?;
        // Obliterate answers with an empty body.
        if text.trim().is_empty() || text.trim() == "{}" {
            return Ok(CseKeyPair {
                key_pair_id: Some(id.to_owned()),
                ..CseKeyPair::default()
            });
        }
        serde_json::from_str(&text).map_err(|e| GmailError::InvalidResponse {
            url,
            reason: e.to_string(),
        })
    }

    // ----- CSE identities ------------------------------------------------------------------

    pub async fn create_identity(&self, user: &str, identity: &CseIdentity) -> Result<CseIdentity> {
        let url = self.users_url(user, "cse/identities");
        self.json(
            user,
            &[SCOPE_SETTINGS_BASIC],
            Method::POST,
            &url,
            &[],
            Some(identity),
        )
        .await
    }

    pub async fn get_identity(&self, user: &str, email: &str) -> Result<CseIdentity> {
        let url = self.users_url(user, &format!("cse/identities/{}", segment(email)));
        self.get(user, &[SCOPE_SETTINGS_BASIC], &url, &[]).await
    }

    pub async fn patch_identity(
        &self,
        user: &str,
        email: &str,
        identity: &CseIdentity,
    ) -> Result<CseIdentity> {
        let url = self.users_url(user, &format!("cse/identities/{}", segment(email)));
        self.json(
            user,
            &[SCOPE_SETTINGS_BASIC],
            Method::PATCH,
            &url,
            &[],
            Some(identity),
        )
        .await
    }

    pub async fn delete_identity(&self, user: &str, email: &str) -> Result<()> {
        let url = self.users_url(user, &format!("cse/identities/{}", segment(email)));
        self.call::<()>(
            user,
            &[SCOPE_SETTINGS_BASIC],
            Method::DELETE,
            &url,
            &[],
            None,
        )
        .await?;
        Ok(())
    }

    pub async fn list_identities_page(
        &self,
        user: &str,
        page_size: Option<u32>,
        page_token: Option<&str>,
    ) -> Result<ListCseIdentitiesResponse> {
        let url = self.users_url(user, "cse/identities");
        let query = page_query(page_size, page_token);
        self.get(user, &[SCOPE_SETTINGS_BASIC], &url, &query).await
    }

    /// Every identity of `user`'s domain visible to the caller, following pagination.
    pub async fn list_identities(
        &self,
        user: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<CseIdentity>> {
        all_pages(|token| async move {
            let page = self
                .list_identities_page(user, page_size, token.as_deref())
                .await?;
            Ok((page.cse_identities, page.next_page_token))
        })
        .await
    }

    // ----- send-as and hosted S/MIME -------------------------------------------------------

    pub async fn list_send_as(&self, user: &str) -> Result<ListSendAsResponse> {
        let url = self.users_url(user, "sendAs");
        self.get(user, &[SCOPE_SETTINGS_BASIC], &url, &[]).await
    }

    /// `users.settings.sendAs.get`: one send-as address of the user.
    pub async fn get_send_as(&self, user: &str, send_as: &str) -> Result<SendAs> {
        let url = self.users_url(user, &format!("sendAs/{}", segment(send_as)));
        self.get(user, &[SCOPE_SETTINGS_BASIC], &url, &[]).await
    }

    fn smime_scopes(user: &str, send_as: &str) -> &'static [&'static str] {
        if user.eq_ignore_ascii_case(send_as) {
            &[SCOPE_SETTINGS_BASIC]
        } else {
            &[SCOPE_SETTINGS_BASIC, SCOPE_SETTINGS_SHARING]
        }
    }

    fn smime_url(&self, user: &str, send_as: &str, rest: &str) -> String {
        self.users_url(
            user,
            &format!("sendAs/{}/smimeInfo{rest}", segment(send_as)),
        )
    }

    pub async fn insert_smime(
        &self,
        user: &str,
        send_as: &str,
        info: &SmimeInfo,
    ) -> Result<SmimeInfo> {
        let url = self.smime_url(user, send_as, "");
        self.json(
            user,
            Self::smime_scopes(user, send_as),
            Method::POST,
            &url,
            &[],
            Some(info),
        )
        .await
    }

    pub async fn list_smime(&self, user: &str, send_as: &str) -> Result<ListSmimeInfoResponse> {
        let url = self.smime_url(user, send_as, "");
        self.get(user, Self::smime_scopes(user, send_as), &url, &[])
            .await
    }

    pub async fn get_smime(&self, user: &str, send_as: &str, id: &str) -> Result<SmimeInfo> {
        let url = self.smime_url(user, send_as, &format!("/{}", segment(id)));
        self.get(user, Self::smime_scopes(user, send_as), &url, &[])
            .await
    }

    pub async fn delete_smime(&self, user: &str, send_as: &str, id: &str) -> Result<()> {
        let url = self.smime_url(user, send_as, &format!("/{}", segment(id)));
        self.call::<()>(
            user,
            Self::smime_scopes(user, send_as),
            Method::DELETE,
            &url,
            &[],
            None,
        )
        .await?;
        Ok(())
    }

    pub async fn set_default_smime(&self, user: &str, send_as: &str, id: &str) -> Result<()> {
        let url = self.smime_url(user, send_as, &format!("/{}/setDefault", segment(id)));
        self.call::<()>(
            user,
            Self::smime_scopes(user, send_as),
            Method::POST,
            &url,
            &[],
            None,
        )
        .await?;
        Ok(())
    }
}

/// `chainValidation` on `keypairs.create`: what Gmail checks of the uploaded chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChainValidation {
    /// Chain and revocation checks (Google's default).
    #[default]
    All,
    /// No checks: for key pairs kept only to decrypt historical mail.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPairAction {
    Enable,
    Disable,
    Obliterate,
}

impl KeyPairAction {
    fn verb(self) -> &'static str {
        match self {
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::Obliterate => "obliterate",
        }
    }
}

/// Fetches pages until one has no next-page token.
async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = fetch(token.take()).await?;
        all.extend(items);
        match next.filter(|t| !t.is_empty()) {
            Some(next) => token = Some(next),
            None => return Ok(all),
        }
    }
}

fn page_query(page_size: Option<u32>, page_token: Option<&str>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(size) = page_size {
        query.push(("pageSize", size.to_string()));
    }
    if let Some(token) = page_token {
        query.push(("pageToken", token.to_owned()));
    }
    query
}

/// Google's error body, or the bare status when the body is not one.
fn api_error(status: StatusCode, body: &str) -> GmailError {
    match serde_json::from_str::<ErrorResponse>(body) {
        Ok(parsed) => {
            let e = parsed.error;
            GmailError::Api {
                status: status.as_u16(),
                status_text: e.status.unwrap_or_default(),
                reason: e
                    .errors
                    .first()
                    .map(|i| i.reason.clone())
                    .unwrap_or_default(),
                message: e.message,
            }
        }
        Err(_) => GmailError::Api {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_owned(),
            reason: String::new(),
            message: body.chars().take(200).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 1..6 {
            let d = p.delay(attempt, None);
            let ceiling = p.base_delay * (1 << attempt);
            assert!(d <= ceiling && d >= ceiling / 2, "{attempt}: {d:?}");
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(999))), p.max_delay);
    }

    #[test]
    fn google_error_bodies_become_typed_errors() {
        let body = r#"{"error":{"code":400,"message":"Precondition check failed.","status":"FAILED_PRECONDITION","errors":[{"message":"Precondition check failed.","domain":"global","reason":"failedPrecondition"}]}}"#;
        let e = api_error(StatusCode::BAD_REQUEST, body);
        assert!(e.is_not_ready());
        assert!(!e.is_retryable());
        let throttled = api_error(
            StatusCode::FORBIDDEN,
            r#"{"error":{"code":403,"message":"x","errors":[{"reason":"userRateLimitExceeded"}]}}"#,
        );
        assert!(throttled.is_retryable());
        assert!(api_error(StatusCode::SERVICE_UNAVAILABLE, "<html>").is_retryable());
        assert!(!api_error(StatusCode::NOT_FOUND, "").is_retryable());
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("a+b@example.com"), "a+b@example.com");
        assert_eq!(segment("x/y z"), "x%2Fy%20z");
    }
}
