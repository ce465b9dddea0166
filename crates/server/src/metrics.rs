//! `/metrics` in the Prometheus (OpenMetrics) text format: requests by route and status with
//! their latency, the key service's decisions by operation, and certificates by state and by
//! expiry, counted by [`crate::census`] at most 15 seconds before. Off unless `[server] metrics = true`; with
//! `metrics_token_file` a scrape must carry that bearer token. Routes are the matched patterns
//! (`/v1/objects/{id}`), never the requested paths, so a client cannot grow the label set.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mailpki_store::State as ObjectState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    batch: String,
    kind: &'static str,
    /// `total`, `done`, `failed`, `retry_later`.
    users: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExpiryLabels {
    /// Active certificates whose not-after falls within this many days from now (and after
    /// the previous bucket), `expired`, or `later`.
    within: &'static str,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~4 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// Expiry buckets: label and upper bound in days.
const EXPIRY: [(&str, i64); 5] = [
    ("7", 7),
    ("30", 30),
    ("90", 90),
    ("365", 365),
    ("later", i64::MAX),
];

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    decisions: Family<DecisionLabels, Counter>,
    certificates: Family<StateLabels, Gauge>,
    expiring: Family<ExpiryLabels, Gauge>,
    batches: Family<BatchLabels, Gauge>,
    /// Whose bearer token a scrape must carry, if any.
    pub(crate) token: Option<secrecy::SecretString>,
}

impl Metrics {
    pub(crate) fn new(token: Option<secrecy::SecretString>) -> Self {
        let mut registry = Registry::with_prefix("mailpki");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        let decisions = Family::<DecisionLabels, Counter>::default();
        let certificates = Family::<StateLabels, Gauge>::default();
        let expiring = Family::<ExpiryLabels, Gauge>::default();
        let batches = Family::<BatchLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer, by route pattern (the key service's operations among them)",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        registry.register(
            "kacls_decisions",
            "Key service calls allowed or refused, by operation",
            decisions.clone(),
        );
        registry.register(
            "certificates",
            "Certificates in the store by state",
            certificates.clone(),
        );
        registry.register(
            "certificates_expiring",
            "Active certificates by days left (expired, within 7, 30, 90, 365 days, later)",
            expiring.clone(),
        );
        registry.register(
            "console_batch_users",
            "Users of the console's batches on this instance (the last 100): total, done, failed, retry_later",
            batches.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            decisions,
            certificates,
            expiring,
            batches,
            token,
        }
    }

    /// A key-service decision.
    pub(crate) fn decision(&self, operation: &str, allowed: bool) {
        self.decisions
            .get_or_create(&DecisionLabels {
                operation: operation.to_owned(),
                outcome: if allowed { "allowed" } else { "refused" },
            })
            .inc();
    }

    fn request(&self, route: String, method: &str, status: StatusCode, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method: method.to_owned(),
                status: status.as_u16(),
            })
            .inc();
    }
}

/// Counts and times every request, by the route pattern it matched.
pub(crate) async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(metrics) = app.metrics.clone() else {
        return next.run(request).await;
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.request(
        route,
        &method,
        response.status(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Sets the gauges from the latest counts.
fn refresh(metrics: &Metrics, census: &crate::census::Census) {
    for state in ObjectState::ALL {
        metrics
            .certificates
            .get_or_create(&StateLabels {
                state: state.as_str(),
            })
            .set(census.by_state.get(state.as_str()).copied().unwrap_or(0));
    }
    metrics
        .expiring
        .get_or_create(&ExpiryLabels { within: "expired" })
        .set(census.active_between(i64::MIN, 0));
    let mut floor = 0;
    for (label, days) in EXPIRY {
        metrics
            .expiring
            .get_or_create(&ExpiryLabels { within: label })
            .set(census.active_between(floor, days));
        floor = days;
    }
}

pub(crate) async fn serve(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(metrics) = app.metrics.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(token) = &metrics.token {
        use secrecy::ExposeSecret;
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let wanted = token.expose_secret();
        if sent.len() != wanted.len() || !openssl::memcmp::eq(sent.as_bytes(), wanted.as_bytes()) {
            return (StatusCode::UNAUTHORIZED, "a bearer token is needed\n").into_response();
        }
    }
    if let Some(console) = &app.console {
        for run in console.batches.list() {
            let progress = run.progress();
            let counts = [
                ("total", run.total),
                ("done", progress.done),
                ("failed", progress.failed),
                ("retry_later", progress.retry_later),
            ];
            for (users, n) in counts {
                metrics
                    .batches
                    .get_or_create(&BatchLabels {
                        batch: run.id.clone(),
                        kind: run.kind,
                        users,
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }
    // Counts a background task keeps fresh: a scrape does not wait for the store.
    match app.census.get(&app.store, None).await {
        Ok(census) => refresh(&metrics, &census),
        Err(e) => return e.into_response(),
    }
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
