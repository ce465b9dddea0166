//! The client of a `mailpki server`: blocking, so that it slots in where the embedded store's
//! calls are (plain threads, no runtime). Bearer token on every request; the server's error
//! replies come back as [`KmsError::Remote`] with its code and message. Replies the server marks
//! as retryable (503, 429) are tried again a few times with a growing pause: the server answers
//! 503 only when nothing was written.

use std::fmt::Write as _;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ErrorReply;
use crate::error::{KmsError, Result};

const ATTEMPTS: u32 = 4;
/// Replies larger than this are refused: nothing the API returns comes near it.
const MAX_REPLY: u64 = 64 * 1024 * 1024;

pub struct RemoteKms {
    base: String,
    agent: ureq::Agent,
    token: SecretString,
}

impl std::fmt::Debug for RemoteKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKms")
            .field("url", &self.base)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes one path segment (IDs and e-mail addresses travel in paths).
#[must_use]
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl RemoteKms {
    /// A client for the server at `url` (`https://host:port`), authenticating with `token`
    /// (an API token or an OIDC ID token). `ca_pem` adds a trusted root for a private CA.
    pub fn new(url: &str, token: SecretString, ca_pem: Option<&[u8]>) -> Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(KmsError::invalid(format!(
                "the KMS server URL `{base}` must start with https:// (or http:// on loopback)"
            )));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .user_agent(concat!("mailpki/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(KmsError::invalid(
                    "the server CA file holds no PEM certificate",
                ));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Self {
            base,
            agent: config.build().into(),
            token,
        })
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.base
    }

    fn unreachable(&self, e: &ureq::Error) -> KmsError {
        KmsError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    /// One request; `body` is sent as JSON when given.
    pub fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<R> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token.expose_secret());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = match (method, body) {
                ("GET", _) => self.agent.get(&url).header("authorization", &auth).call(),
                ("DELETE", _) => self
                    .agent
                    .delete(&url)
                    .header("authorization", &auth)
                    .call(),
                (_, Some(body)) => self
                    .agent
                    .post(&url)
                    .header("authorization", &auth)
                    .send_json(body),
                (_, None) => self
                    .agent
                    .post(&url)
                    .header("authorization", &auth)
                    .send_empty(),
            };
            let mut response = match sent {
                Ok(r) => r,
                // A GET may be retried after a transport error; a POST may have been applied.
                Err(e) if method == "GET" && attempt < ATTEMPTS => {
                    tracing::debug!(%url, error = %e, attempt, "retrying");
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                    continue;
                }
                Err(e) => return Err(self.unreachable(&e)),
            };
            let status = response.status().as_u16();
            let text = response
                .body_mut()
                .with_config()
                .limit(MAX_REPLY)
                .read_to_string()
                .map_err(|e| self.unreachable(&e))?;
            if (200..300).contains(&status) {
                let text = if text.is_empty() { "null" } else { &text };
                return serde_json::from_str(text).map_err(|e| KmsError::Protocol {
                    reason: format!("{method} {path}: {e}"),
                });
            }
            if (status == 503 || status == 429) && attempt < ATTEMPTS {
                tracing::debug!(%url, status, attempt, "server busy; retrying");
                std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
                continue;
            }
            return Err(match serde_json::from_str::<ErrorReply>(&text) {
                Ok(reply) => KmsError::Remote {
                    status,
                    code: reply.error.code,
                    message: reply.error.message,
                },
                Err(_) => KmsError::Remote {
                    status,
                    code: crate::api::ErrorCode::Other,
                    message: format!("the KMS server answered HTTP {status}"),
                },
            });
        }
    }

    pub fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R> {
        self.call::<(), R>("GET", path, None)
    }

    pub fn post<B: Serialize, R: DeserializeOwned>(&self, path: &str, body: &B) -> Result<R> {
        self.call("POST", path, Some(body))
    }
}
