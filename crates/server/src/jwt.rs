//! Checking JWTs against an issuer's published keys (JWKS): the server's OIDC logins and the
//! key service's authentication and authorization tokens. Only asymmetric algorithms are
//! accepted (a JWKS cannot vouch for an HMAC secret, and `none` is never a signature). The
//! JWKS is cached, refreshed after `jwks_refresh_seconds`, and fetched again (at most every
//! 30 seconds) when a token names a key it does not hold, so key rotations need no restart;
//! when the issuer is away, the keys already known keep working.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Tokens larger than this are refused before any parsing.
pub(crate) const MAX_TOKEN: usize = 16 * 1024;

pub(crate) type Claims = serde_json::Map<String, serde_json::Value>;

/// One trusted token issuer: its `iss`, the `aud` its tokens must carry, and its keys.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    pub issuer: String,
    pub audience: String,
    /// Where the issuer publishes its keys; or `jwks_file` for an offline copy.
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    #[serde(default = "default_refresh")]
    pub jwks_refresh_seconds: u64,
}

pub(crate) fn default_refresh() -> u64 {
    600
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

pub(crate) struct JwtIssuer {
    pub(crate) config: IssuerConfig,
    http: reqwest::Client,
    keys: RwLock<Option<Keys>>,
}

/// The `iss` a token claims, read without checking anything: only to pick which issuer's
/// keys to check it with.
pub(crate) fn claimed_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

impl JwtIssuer {
    pub(crate) fn new(config: IssuerConfig) -> Self {
        Self {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            keys: RwLock::new(None),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let text = if let Some(path) = &self.config.jwks_file {
            tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        } else if let Some(url) = &self.config.jwks_url {
            self.http
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("cannot fetch {url}: {e}"))?
                .text()
                .await
                .map_err(|e| format!("cannot read {url}: {e}"))?
        } else {
            return Err(format!(
                "no jwks_url or jwks_file for {}",
                self.config.issuer
            ));
        };
        serde_json::from_str(&text).map_err(|e| format!("not a JWKS: {e}"))
    }

    /// The key `kid` names, fetching the JWKS when it is stale or lacks the key.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, String> {
        let refresh = Duration::from_secs(self.config.jwks_refresh_seconds);
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        {
            let keys = self.keys.read().await;
            if let Some(keys) = keys.as_ref()
                && keys.fetched.elapsed() < refresh
                && let Some(key) = find(&keys.set)
            {
                return Ok(key);
            }
        }
        let mut keys = self.keys.write().await;
        let stale = keys
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() >= MIN_REFETCH);
        if stale {
            match self.fetch().await {
                Ok(set) => {
                    *keys = Some(Keys {
                        set,
                        fetched: Instant::now(),
                    });
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS refresh failed");
                }
            }
        }
        keys.as_ref()
            .and_then(|k| find(&k.set))
            .ok_or_else(|| "the token's signing key is not in the issuer's JWKS".to_owned())
    }

    /// The token's claims once its signature, `iss`, `aud` and `exp` (60 s leeway) check out.
    pub(crate) async fn verify(&self, token: &str) -> Result<Claims, String> {
        if token.len() > MAX_TOKEN {
            return Err("the token is too large".to_owned());
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if !matches!(
            header.alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
        ) {
            return Err(format!("algorithm {:?} is not accepted", header.alg));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        // A key published for one algorithm signs with that one only (RFC 7517 `alg`).
        if let Some(published) = jwk.common.key_algorithm
            && format!("{published:?}") != format!("{:?}", header.alg)
        {
            return Err(format!(
                "the token is signed with {:?}, its key is published for {published:?}",
                header.alg
            ));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("unusable JWKS key: {e}"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 60;
        validation.validate_nbf = true;
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("invalid token: {e}"))
    }
}

/// Checks a token with whichever of `issuers` it claims to come from.
pub(crate) async fn verify_with(issuers: &[JwtIssuer], token: &str) -> Result<Claims, String> {
    if token.len() > MAX_TOKEN {
        return Err("the token is too large".to_owned());
    }
    let claimed = claimed_issuer(token).ok_or("malformed token: no issuer")?;
    let issuer = issuers
        .iter()
        .find(|i| i.config.issuer == claimed)
        .ok_or_else(|| {
            format!(
                "tokens from `{}` are not trusted here",
                mailpki_store::excerpt(&claimed, 80)
            )
        })?;
    issuer.verify(token).await
}
