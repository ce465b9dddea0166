//! `mailpki-server`: the store behind an HTTPS JSON API (`/v1`), for a team of administrators
//! or, over PostgreSQL, for several instances behind a load balancer.
//!
//! The server owns transport (rustls; plain HTTP only on loopback), authentication
//! ([`auth`]), request limits, the audit log and the mapping of errors to statuses. What a
//! request does is [`mailpki_kms::ops`], the same code the CLI runs on an embedded store; who
//! may do it is the store's owner/grant model, checked on every object. Store calls are
//! blocking and run on tokio's blocking pool.

mod auth;
mod census;
mod console;
mod error;
mod jwt;
mod kacls;
mod limits;
mod metrics;
mod publish;
mod routes;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::StatusCode;
use mailpki_kms::{IssuanceDefaults, KmsError};
use mailpki_store::{AuditEntry, MasterKeySource, PoolOptions, Store, excerpt};
use serde::{Deserialize, Serialize};

pub use auth::OidcConfig;
pub use console::ConsoleConfig;
pub use jwt::IssuerConfig;
pub use kacls::{KaclsConfig, wire as kacls_wire};
pub use publish::{OcspSigner, PublishConfig};

use crate::auth::{Authenticator, Oidc};
use crate::error::ApiError;

/// Decodes a key-service request body as the endpoint `operation` would: a seam for the
/// fuzz targets, not an API.
#[doc(hidden)]
pub fn fuzz_kacls_body(operation: &str, body: &[u8]) {
    kacls::decode_for_fuzzing(operation, body);
}

/// The API document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// `[server]` in the configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on [default: 127.0.0.1:9998].
    #[serde(default = "default_listen")]
    pub listen: String,
    /// PEM certificate chain and private key for HTTPS. Without them the server speaks plain
    /// HTTP, and only on a loopback address.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    #[serde(default)]
    pub tls_private_key: Option<PathBuf>,
    /// Users who may create and revoke API tokens and read the audit log.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Whether owners may grant rights to `*` (every authenticated user).
    #[serde(default = "yes")]
    pub allow_wildcard_grants: bool,
    /// Largest request body accepted [default: 1 MiB].
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Connections to PostgreSQL per instance [default: 16].
    #[serde(default = "default_pool")]
    pub database_connections: u32,
    /// How long a request waits for a database connection before answering 503 [default: 5].
    #[serde(default = "default_db_timeout")]
    pub database_timeout_seconds: u64,
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// How long certificate counts (the console's overview, `/metrics`) are reused before the
    /// store is counted again; 0 counts on every request [default: 15].
    #[serde(default = "default_counts_refresh")]
    pub counts_refresh_seconds: u64,
    /// Serve `/metrics` (Prometheus text format) on this listener [default: false].
    #[serde(default)]
    pub metrics: bool,
    /// A file holding the bearer token a scrape of `/metrics` must carry; without it
    /// `/metrics` answers anyone who reaches the listener (aggregate figures only).
    #[serde(default)]
    pub metrics_token_file: Option<PathBuf>,
    /// The web console under `/console` (off unless present).
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
    /// The Google CSE key access control list service on this server.
    #[serde(default)]
    pub kacls: Option<KaclsConfig>,
    /// CA certificates, CRLs and OCSP on a separate plain-HTTP listener.
    #[serde(default)]
    pub publish: Option<PublishConfig>,
    /// A connection must send its request headers within this time [default: 10].
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_seconds: u64,
    /// Failed authentications one client address may make per minute before it is answered
    /// 429 for the rest of that minute (API, OIDC and key-service tokens alike); 0: no limit.
    /// Behind a reverse proxy every client has the proxy's address: set 0 and limit there
    /// [default: 60].
    #[serde(default = "default_auth_failures")]
    pub auth_failures_per_minute: u32,
    /// Whether admins may create API tokens for users other than themselves over the API
    /// [default: true]. Every such token, and every request made with it, names its creator.
    #[serde(default = "yes")]
    pub admin_tokens_for_others: bool,
}

fn default_counts_refresh() -> u64 {
    15
}

fn default_header_timeout() -> u64 {
    10
}

fn default_auth_failures() -> u32 {
    60
}

fn default_listen() -> String {
    "127.0.0.1:9998".to_owned()
}

fn yes() -> bool {
    true
}

fn default_max_body() -> usize {
    1024 * 1024
}

fn default_pool() -> u32 {
    16
}

fn default_db_timeout() -> u64 {
    5
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls_certificate: None,
            tls_private_key: None,
            admins: Vec::new(),
            allow_wildcard_grants: true,
            max_body_bytes: default_max_body(),
            database_connections: default_pool(),
            database_timeout_seconds: default_db_timeout(),
            oidc: None,
            metrics: false,
            metrics_token_file: None,
            counts_refresh_seconds: default_counts_refresh(),
            console: None,
            kacls: None,
            publish: None,
            header_read_timeout_seconds: default_header_timeout(),
            auth_failures_per_minute: default_auth_failures(),
            admin_tokens_for_others: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot open the store")]
    Store(#[from] mailpki_store::StoreError),
    #[error("invalid listen address `{addr}`")]
    Address { addr: String },
    #[error(
        "refusing plain HTTP on {addr}: set [server] tls_certificate and tls_private_key, or listen on a loopback address"
    )]
    PlainHttpNotLoopback { addr: SocketAddr },
    #[error("give both [server] tls_certificate and tls_private_key")]
    HalfTls,
    #[error("cannot load the TLS certificate or key: {reason}")]
    Tls { reason: String },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("[server.oidc] needs jwks_url or jwks_file")]
    OidcKeys,
    #[error("the server could not start: {reason}")]
    Startup { reason: String },
    #[error("invalid [server.kacls]: {reason}")]
    Kacls { reason: String },
}

/// How much of a name (user, object ID) and of a message an audit line keeps.
const MAX_AUDIT_NAME: usize = 256;
const MAX_AUDIT_DETAIL: usize = 512;

/// A line for the audit log and who waits for its commit.
type AuditRequest = (AuditEntry, tokio::sync::oneshot::Sender<bool>);

/// Writes audit lines in groups. A group takes whatever is waiting, then lets the runtime run
/// the other ready tasks once and takes what they recorded, again while each pass brings more
/// (at most `GATHER`): on a busy key service the requests in flight share one commit instead
/// of one each (a single-line commit costs SQLite about as much as checking a token), and an
/// idle server commits at once, since a pass with nothing else to run brings nothing.
async fn audit_writer(store: Arc<Store>, mut lines: tokio::sync::mpsc::Receiver<AuditRequest>) {
    const GROUP: usize = 512;
    const GATHER: std::time::Duration = std::time::Duration::from_millis(2);
    while let Some(first) = lines.recv().await {
        let started = std::time::Instant::now();
        let mut group = vec![first];
        loop {
            while group.len() < GROUP {
                match lines.try_recv() {
                    Ok(line) => group.push(line),
                    Err(_) => break,
                }
            }
            if group.len() >= GROUP || started.elapsed() >= GATHER {
                break;
            }
            tokio::task::yield_now().await;
            if lines.is_empty() {
                break;
            }
        }
        let (entries, acks): (Vec<AuditEntry>, Vec<_>) = group.into_iter().unzip();
        let store = Arc::clone(&store);
        let ok = matches!(
            tokio::task::spawn_blocking(move || store.audit(&entries)).await,
            Ok(Ok(()))
        );
        for ack in acks {
            let _ = ack.send(ok);
        }
    }
}

/// Copies SQLite's write-ahead log into the database every 200 ms on the blocking pool. Left
/// to SQLite alone, the commit that reaches its threshold copies and syncs the whole log; that
/// commit is an audit line requests wait for, so every request in flight stalled with it,
/// several times a second on a busy key service (p99 12.5 ms instead of 7 at two-thirds of
/// the core's capacity). SQLite still checkpoints at the threshold, which keeps the log
/// short, but finds little left to do. Stops at once on PostgreSQL.
fn spawn_checkpoints(store: &Arc<Store>) {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(store) = store.upgrade() else {
                return;
            };
            match tokio::task::spawn_blocking(move || store.checkpoint()).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) | Err(_) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "checkpoint of the write-ahead log failed");
                }
            }
        }
    });
}

#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<Store>,
    audit_log: tokio::sync::mpsc::Sender<AuditRequest>,
    kacls: Option<Arc<kacls::Kacls>>,
    console: Option<Arc<console::Console>>,
    /// The publish listener's state, when it runs: CRL dates for the console.
    published: Option<Arc<publish::Publish>>,
    metrics: Option<Arc<metrics::Metrics>>,
    census: Arc<census::Cache>,
    defaults: Arc<IssuanceDefaults>,
    auth: Arc<Authenticator>,
    allow_wildcard_grants: bool,
    admin_tokens_for_others: bool,
    /// Failed authentications per client address.
    failures: Arc<limits::FailureLimiter>,
    /// Log lines about unauthenticated requests: a few, then a count.
    unauthenticated_log: Arc<limits::LogLimiter>,
}

impl AppState {
    /// Runs a store call on the blocking pool.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, KmsError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => {
                tracing::error!(error = %e, "store task failed");
                Err(ApiError::internal())
            }
        }
    }

    /// Appends to the audit log; a failure to record is logged, not fatal to the request.
    pub(crate) async fn audit(
        &self,
        actor: &str,
        operation: &str,
        object: Option<&str>,
        outcome: Result<(), &ApiError>,
    ) {
        self.audit_via(actor, None, operation, object, outcome)
            .await;
    }

    /// The same, for a caller acting through an API token someone else made (`via` says
    /// whose). Client-supplied text is escaped and cut short: a line cannot be forged or made
    /// to fill the table.
    pub(crate) async fn audit_via(
        &self,
        actor: &str,
        via: Option<&str>,
        operation: &str,
        object: Option<&str>,
        outcome: Result<(), &ApiError>,
    ) {
        let entry = AuditEntry {
            at: time::OffsetDateTime::now_utc().unix_timestamp(),
            actor: excerpt(actor, MAX_AUDIT_NAME),
            operation: operation.to_owned(),
            object: object.map(|o| excerpt(o, MAX_AUDIT_NAME)),
            outcome: match outcome {
                Ok(()) => "ok".to_owned(),
                Err(e) if e.denied => "denied".to_owned(),
                Err(e) => e.outcome().to_owned(),
            },
            detail: outcome.err().map(|e| excerpt(&e.message, MAX_AUDIT_DETAIL)),
            via: via.map(|v| excerpt(v, MAX_AUDIT_NAME)),
        };
        if let Err(e) = &outcome
            && (e.status == StatusCode::FORBIDDEN || e.denied)
        {
            tracing::warn!(user = %entry.actor, operation, object = ?entry.object, reason = ?entry.detail, "request denied");
        }
        // The reply waits for the line to be committed: what was answered is on record.
        let (ack, committed) = tokio::sync::oneshot::channel();
        let written = match self.audit_log.send((entry, ack)).await {
            Ok(()) => committed.await.unwrap_or(false),
            Err(_) => false,
        };
        if !written {
            tracing::warn!(
                user = %excerpt(actor, MAX_AUDIT_NAME),
                operation,
                object = ?object.map(|o| excerpt(o, MAX_AUDIT_NAME)),
                "could not write the audit log"
            );
        }
    }
}

/// A bound server, ready to serve.
pub struct Server {
    audit_task: tokio::task::JoinHandle<()>,
    listener: std::net::TcpListener,
    /// The publication listener, its router and its URL.
    publish: Option<(std::net::TcpListener, axum::Router, String)>,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    router: axum::Router,
    url: String,
    header_timeout: std::time::Duration,
}

/// Where the store is and how to open it.
pub struct StoreSettings {
    pub location: mailpki_store::StoreLocation,
    pub master_key: MasterKeySource,
    /// The HSM keys may live in.
    pub hsm: Option<mailpki_store::HsmConfig>,
}

impl Server {
    /// Opens the store and binds the listener; nothing is served until [`Server::serve`].
    pub async fn bind(
        config: &ServerConfig,
        store: StoreSettings,
        defaults: IssuanceDefaults,
    ) -> Result<Self, ServerError> {
        let addr = resolve(&config.listen).await?;
        let tls = match (&config.tls_certificate, &config.tls_private_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key).await?),
            (None, None) if addr.ip().is_loopback() => None,
            (None, None) => return Err(ServerError::PlainHttpNotLoopback { addr }),
            _ => return Err(ServerError::HalfTls),
        };
        if let Some(oidc) = &config.oidc
            && oidc.jwks_url.is_none()
            && oidc.jwks_file.is_none()
        {
            return Err(ServerError::OidcKeys);
        }
        let pool = PoolOptions {
            max_connections: config.database_connections,
            connect_timeout: std::time::Duration::from_secs(config.database_timeout_seconds.max(1)),
        };
        let store = tokio::task::spawn_blocking(move || {
            Store::open_at(&store.location, &store.master_key, &pool).map(|s| s.with_hsm(store.hsm))
        })
        .await
        .map_err(|e| ServerError::Startup {
            reason: e.to_string(),
        })??;
        let listener = bind(addr)?;
        let local = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{local}");
        // The key service's own URL comes from configuration, or else from the address it
        // listens on: never from a request's Host header.
        let kacls = config
            .kacls
            .clone()
            .map(|k| kacls::Kacls::new(k, &url).map(Arc::new))
            .transpose()
            .map_err(|reason| ServerError::Kacls { reason })?;
        if let Some(kacls) = &kacls {
            kacls.spawn_sweeper();
        }
        let store = Arc::new(store);
        let (publish, published) = match &config.publish {
            Some(publish) => {
                let (listener, state) = publication(&store, publish).await?;
                (Some(listener), Some(state))
            }
            None => (None, None),
        };
        let (audit_log, lines) = tokio::sync::mpsc::channel(4096);
        let audit_task = tokio::spawn(audit_writer(Arc::clone(&store), lines));
        spawn_checkpoints(&store);
        let (console, metrics) = console_and_metrics(config, &url, kacls.as_deref())?;
        let census = Arc::new(census::Cache::new(std::time::Duration::from_secs(
            config.counts_refresh_seconds,
        )));
        if metrics.is_some() {
            census::keep_fresh(Arc::clone(&census), Arc::clone(&store));
        }
        let state = AppState {
            kacls,
            console,
            published,
            metrics,
            census: Arc::clone(&census),
            audit_log,
            store,
            defaults: Arc::new(defaults),
            auth: Arc::new(Authenticator {
                oidc: config.oidc.clone().map(Oidc::new),
                admins: config.admins.iter().cloned().collect::<HashSet<_>>(),
            }),
            allow_wildcard_grants: config.allow_wildcard_grants,
            admin_tokens_for_others: config.admin_tokens_for_others,
            failures: Arc::new(limits::FailureLimiter::new(config.auth_failures_per_minute)),
            unauthenticated_log: Arc::new(limits::LogLimiter::new()),
        };
        Ok(Self {
            audit_task,
            listener,
            publish,
            tls,
            router: routes::router(state, config.max_body_bytes),
            url,
            header_timeout: std::time::Duration::from_secs(
                config.header_read_timeout_seconds.max(1),
            ),
        })
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The publication listener's URL, when `[server.publish]` is on.
    #[must_use]
    pub fn publish_url(&self) -> Option<&str> {
        self.publish.as_ref().map(|(_, _, url)| url.as_str())
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        });
        if let Some((listener, router, _)) = self.publish {
            let handle = handle.clone();
            let timeout = self.header_timeout;
            tokio::spawn(async move {
                let served = header_timeout(axum_server::from_tcp(listener), timeout)
                    .handle(handle)
                    .serve(router.into_make_service())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the publication listener stopped");
                }
            });
        }
        let addr = self.url.clone();
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // A client that trickles its headers (slowloris) is cut off instead of holding a
        // connection open for ever.
        let timeout = self.header_timeout;
        let served = if let Some(tls) = self.tls {
            header_timeout(axum_server::from_tcp_rustls(self.listener, tls), timeout)
                .handle(handle)
                .serve(service)
                .await
        } else {
            header_timeout(axum_server::from_tcp(self.listener), timeout)
                .handle(handle)
                .serve(service)
                .await
        };
        // The router, and with it the audit log's senders, is gone: let the last lines land.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.audit_task).await;
        served.map_err(|source| ServerError::Bind { addr, source })
    }
}

/// The web console and `/metrics`, each when configured.
type Extras = (Option<Arc<console::Console>>, Option<Arc<metrics::Metrics>>);

/// The web console and `/metrics`, when configured.
fn console_and_metrics(
    config: &ServerConfig,
    url: &str,
    kacls: Option<&kacls::Kacls>,
) -> Result<Extras, ServerError> {
    let console = match config.console.clone() {
        Some(c) => {
            let kacls_url = kacls.map(|k| k.url.clone());
            Some(Arc::new(
                console::Console::new(c, url, config.oidc.as_ref(), kacls_url).map_err(
                    |reason| ServerError::Startup {
                        reason: format!("[server.console]: {reason}"),
                    },
                )?,
            ))
        }
        None => None,
    };
    let metrics = if config.metrics {
        let token = match &config.metrics_token_file {
            Some(path) => Some(secrecy::SecretString::from(
                std::fs::read_to_string(path)
                    .map_err(|e| ServerError::Startup {
                        reason: format!("cannot read {}: {e}", path.display()),
                    })?
                    .trim()
                    .to_owned(),
            )),
            None => None,
        };
        Some(Arc::new(metrics::Metrics::new(token)))
    } else {
        None
    };
    Ok((console, metrics))
}

async fn resolve(addr: &str) -> Result<SocketAddr, ServerError> {
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ServerError::Address {
            addr: addr.to_owned(),
        })
}

/// A non-blocking listener on `addr`.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
    let bind_error = |source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(listener)
}

/// The publication listener, its router and its URL, and its state.
async fn publication(
    store: &Arc<Store>,
    config: &PublishConfig,
) -> Result<
    (
        (std::net::TcpListener, axum::Router, String),
        Arc<publish::Publish>,
    ),
    ServerError,
> {
    let listener = bind(resolve(&config.listen).await?)?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen.clone(),
        source,
    })?;
    let (router, state) = publish::router(Arc::clone(store), config)
        .map_err(|reason| ServerError::Startup { reason })?;
    Ok(((listener, router, format!("http://{local}")), state))
}

/// The server with HTTP/1 header reads bounded by `timeout` (hyper needs a timer for it).
fn header_timeout<A>(
    mut server: axum_server::Server<A>,
    timeout: std::time::Duration,
) -> axum_server::Server<A> {
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
    server
}

async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<axum_server::tls_rustls::RustlsConfig, ServerError> {
    // One process-wide provider: ring, which rustls in the rest of the tree already uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| ServerError::Tls {
            reason: format!("{} / {}: {e}", cert.display(), key.display()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server configuration in docs/server.md is one the server takes.
    #[test]
    fn the_documented_configuration_parses() {
        #[derive(Deserialize)]
        struct File {
            server: ServerConfig,
        }
        let doc = include_str!("../../../docs/server.md");
        let block = doc
            .split("```toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/server.md has a TOML block");
        let file: File = toml::from_str(block).expect("the documented [server] parses");
        assert_eq!(file.server.admins, ["pki-lead@example.com"]);
        let oidc = file.server.oidc.expect("the example configures OIDC");
        assert_eq!(oidc.user_claim, "email");
        assert!(oidc.jwks_url.is_some());

        let doc = include_str!("../../../docs/kacls.md");
        let block = doc
            .split("```toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/kacls.md has a TOML block");
        let file: File = toml::from_str(&format!("[server]\n{block}"))
            .expect("the documented [server.kacls] parses");
        let kacls = file
            .server
            .kacls
            .expect("the example configures the key service");
        assert_eq!(kacls.cse_keys, ["cse_key"]);
        assert_eq!(kacls.prefix, "/google_cse");
        assert!(kacls::Kacls::new(kacls, "https://kms.example.com").is_ok());
    }
}
