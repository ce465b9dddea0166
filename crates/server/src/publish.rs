//! The publication listener (`[server.publish]`): plain HTTP, meant to face the internet, and
//! serving only public material, with no authentication: the CA certificates
//! (`GET /ca/<id>.crt`), their CRLs (`GET /crl/<id>.crl`), and an OCSP responder
//! (`POST /ocsp`, `GET /ocsp/<base64 request>`, RFC 6960). `<id>` is an issuer certificate's
//! ID in the store.
//!
//! The issuers are the CAs whose keys the configured `actor` may certify with; CRLs are signed
//! by the issuer's own key, OCSP answers by it or by a delegated responder certificate
//! (`ocsp_signer = "delegated"`). A CRL is kept until half its validity has passed or a
//! certificate is revoked (the store's revocation marker moves), then signed anew: a
//! background task watches the marker and the clock and re-signs the CRLs already asked for, so
//! a client never waits for one and none reaches its `nextUpdate`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use mailpki_kms::api::CrlBody;
use mailpki_kms::ocsp::{Responder, ResponderOptions};
use mailpki_store::{Actor, LinkType, Operation, Store};
use serde::{Deserialize, Serialize};

/// `[server.publish]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Address of the plain-HTTP listener (any interface: it serves public material only).
    pub listen: String,
    /// The user whose issuer keys sign the CRLs and OCSP answers.
    pub actor: String,
    /// Days from a CRL's `thisUpdate` to its `nextUpdate` [default: 7].
    #[serde(default = "default_crl_days")]
    pub crl_days: u32,
    /// Where clients reach this listener (e.g. `http://pki.example.com`): with it set, the
    /// built-in profile names `<base_url>/crl/<issuer>.crl`, `<base_url>/ca/<issuer>.crt` and
    /// `<base_url>/ocsp` in new certificates.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Who signs OCSP answers: `issuer` (its own key) or `delegated` (a responder certificate
    /// the issuer signs, renewed weekly) [default: issuer].
    #[serde(default)]
    pub ocsp_signer: OcspSigner,
    /// Keep signed answers to requests without a nonce until a revocation [default: true].
    #[serde(default = "default_true")]
    pub ocsp_cache: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OcspSigner {
    #[default]
    Issuer,
    Delegated,
}

fn default_crl_days() -> u32 {
    7
}

fn default_true() -> bool {
    true
}

/// How often the background task looks at the revocation marker.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The largest OCSP request read.
const MAX_REQUEST: usize = 16 * 1024;

struct Cached {
    der: Vec<u8>,
    refresh_at: i64,
    marker: i64,
    /// The CRL's `nextUpdate` (Unix seconds).
    next_update: i64,
}

pub(crate) struct Publish {
    store: Arc<Store>,
    actor: Actor,
    crl_days: u32,
    crls: Mutex<HashMap<String, Cached>>,
    responder: Responder,
}

/// The listener's routes, and its state (which the console reads CRL dates from).
pub(crate) fn router(
    store: Arc<Store>,
    config: &PublishConfig,
) -> Result<(Router, Arc<Publish>), String> {
    let actor = Actor::new(config.actor.clone()).map_err(|e| e.to_string())?;
    let state = Arc::new(Publish {
        store,
        responder: Responder::new(
            actor.clone(),
            ResponderOptions {
                delegated: config.ocsp_signer == OcspSigner::Delegated,
                cache: config.ocsp_cache,
            },
        ),
        actor,
        crl_days: config.crl_days.clamp(1, 366),
        crls: Mutex::new(HashMap::new()),
    });
    tokio::spawn(watch(Arc::downgrade(&state)));
    let kept = Arc::clone(&state);
    let router = Router::new()
        .route("/ca/{file}", get(ca_certificate))
        .route("/crl/{file}", get(crl))
        .route("/ocsp", axum::routing::post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
        .with_state(state);
    Ok((router, kept))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn body(content_type: &'static str, data: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        data,
    )
        .into_response()
}

/// Runs `work` on the blocking pool; any failure is a 404 or 500 without detail (this
/// listener answers strangers).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Option<T> + Send + 'static,
) -> Result<T, StatusCode> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(StatusCode::NOT_FOUND),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

async fn ca_certificate(
    State(p): State<Arc<Publish>>,
    Path(file): Path<String>,
) -> Result<Response, StatusCode> {
    let id = file
        .strip_suffix(".crt")
        .ok_or(StatusCode::NOT_FOUND)?
        .to_owned();
    let der = blocking(move || {
        let attributes = p.store.attributes(&p.actor, &id).ok()?;
        if attributes.certificate_is_ca != Some(true) {
            return None;
        }
        p.store
            .certificate(&p.actor, &id, Operation::Get)
            .ok()?
            .to_der()
            .ok()
    })
    .await?;
    Ok(body("application/pkix-cert", der))
}

async fn crl(
    State(p): State<Arc<Publish>>,
    Path(file): Path<String>,
) -> Result<Response, StatusCode> {
    let id = file
        .strip_suffix(".crl")
        .ok_or(StatusCode::NOT_FOUND)?
        .to_owned();
    let der = blocking(move || p.current_crl(&id)).await?;
    Ok(body("application/pkix-crl", der))
}

/// Re-signs the CRLs already served when a certificate is revoked or they reach half their
/// validity; ends with the listener.
async fn watch(publish: std::sync::Weak<Publish>) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(p) = publish.upgrade() else {
            return;
        };
        let refreshed = tokio::task::spawn_blocking(move || p.refresh_stale()).await;
        if refreshed.is_err() {
            tracing::warn!("the CRL refresher stopped unexpectedly");
        }
    }
}

impl Publish {
    /// Signs anew every kept CRL that a revocation or the clock made stale.
    fn refresh_stale(&self) {
        let Ok(marker) = self.store.revocation_marker() else {
            return;
        };
        let now = now();
        let stale: Vec<String> = match self.crls.lock() {
            Ok(crls) => crls
                .iter()
                .filter(|(_, c)| c.marker != marker || now >= c.refresh_at)
                .map(|(id, _)| id.clone())
                .collect(),
            Err(_) => return,
        };
        for issuer in stale {
            self.sign_crl(&issuer, marker, now);
        }
    }

    /// The `nextUpdate` of the issuer's CRL this listener serves, once one was asked for.
    pub(crate) fn next_update(&self, issuer_id: &str) -> Option<i64> {
        let crls = self.crls.lock().ok()?;
        crls.get(issuer_id).map(|c| c.next_update)
    }

    /// The issuer's CRL: the kept one while fresh, else a new one.
    fn current_crl(&self, issuer_id: &str) -> Option<Vec<u8>> {
        let marker = self.store.revocation_marker().ok()?;
        let now = now();
        if let Ok(crls) = self.crls.lock()
            && let Some(cached) = crls.get(issuer_id)
            && cached.marker == marker
            && now < cached.refresh_at
        {
            return Some(cached.der.clone());
        }
        self.sign_crl(issuer_id, marker, now)
    }

    /// Signs the issuer's CRL and keeps it.
    fn sign_crl(&self, issuer_id: &str, marker: i64, now: i64) -> Option<Vec<u8>> {
        let key = self.issuer_key(issuer_id)?;
        let reply = mailpki_kms::ops::crl(
            &self.store,
            &self.actor,
            &CrlBody {
                issuer_private_key_id: key,
                days: Some(self.crl_days),
            },
        )
        .map_err(|e| tracing::warn!(issuer = issuer_id, error = %e, "cannot sign a CRL"))
        .ok()?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(reply.crl)
            .ok()?;
        if let Ok(mut crls) = self.crls.lock() {
            crls.insert(
                issuer_id.to_owned(),
                Cached {
                    der: der.clone(),
                    // Signed anew at half its validity, long before any client sees it stale.
                    refresh_at: now + i64::from(self.crl_days) * 86_400 / 2,
                    marker,
                    next_update: now + i64::from(self.crl_days) * 86_400,
                },
            );
        }
        Some(der)
    }

    /// The private key of a CA certificate.
    fn issuer_key(&self, issuer_id: &str) -> Option<String> {
        let attributes = self.store.attributes(&self.actor, issuer_id).ok()?;
        if attributes.certificate_is_ca != Some(true) {
            return None;
        }
        attributes.links.get(&LinkType::PrivateKeyLink).cloned()
    }
}

async fn ocsp_post(State(p): State<Arc<Publish>>, request: Bytes) -> Result<Response, StatusCode> {
    let response = blocking(move || Some(p.responder.answer(&p.store, &request))).await?;
    Ok(body("application/ocsp-response", response))
}

/// RFC 6960 appendix A.1: the DER request, base64, URL-encoded, as the path.
async fn ocsp_get(
    State(p): State<Arc<Publish>>,
    Path(encoded): Path<String>,
) -> Result<Response, StatusCode> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_matches('/'))
        .unwrap_or_default();
    let response = blocking(move || Some(p.responder.answer(&p.store, &der))).await?;
    Ok(body("application/ocsp-response", response))
}
