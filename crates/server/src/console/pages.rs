//! The pages: overview with the expiry timeline, certificates (search, filters, keyset
//! paging), one certificate with its revocation, issuers, and the audit log. Each reads as the
//! signed-in user through the same [`mailpki_kms::ops`] calls and audit rules as `/v1`.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use mailpki_kms::api::RevokeBody;
use mailpki_kms::ops;
use mailpki_store::{
    Attributes, AuditEntry, AuditFilter, CountBy, LinkType, ObjectFilter, ObjectType,
    RevocationReason, State as ObjectState,
};
use serde::Deserialize;

use super::chart::{self, Chart};
use super::{PREFIX, PageError, Signed};
use crate::AppState;
use crate::routes::{Audit, run};

/// Rows on a page of certificates.
const PAGE: usize = 50;

/// What the navigation bar needs on every page.
pub(crate) struct Nav {
    pub(crate) user: String,
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    pub(crate) page: &'static str,
}

impl Nav {
    fn new(signed: &Signed, page: &'static str) -> Self {
        Self {
            user: signed.0.actor.to_string(),
            admin: signed.0.admin,
            csrf: signed.0.csrf.clone(),
            page,
        }
    }
}

fn html(page: &impl Template) -> Result<Response, PageError> {
    Ok(Html(page.render()?).into_response())
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    status: u16,
    message: &'a str,
}

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        message,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_owned()).into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/moving_on.html")]
struct MovingOn<'a> {
    to: &'a str,
}

/// A page that sends the browser on to `to` (a same-site navigation).
pub(crate) fn moving_on(to: &str) -> Result<String, PageError> {
    Ok(MovingOn { to }.render()?)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `YYYY-MM-DD HH:MM` UTC from an RFC 3339 time or Unix seconds.
fn short_time(rfc3339: Option<&str>) -> String {
    rfc3339
        .map(|t| t.get(..16).unwrap_or(t).replace('T', " "))
        .unwrap_or_default()
}

fn unix_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(|s| short_time(Some(&s)))
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    nav: Nav,
    states: Vec<(String, i64)>,
    chart: Chart,
    next_month: i64,
    next_month_href: String,
}

async fn overview(State(app): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let caller = signed.0.caller();
    let from = now();
    let certificates = ObjectFilter {
        object_type: Some(ObjectType::Certificate),
        ..ObjectFilter::default()
    };
    let month_end = from + 30 * 86_400;
    let (states, weeks, next_month) =
        run(&app, &caller, "console.overview", None, Audit::OnFailure, {
            move |store, actor| {
                let states = store.count_by(actor, &certificates, CountBy::State)?;
                let active = ObjectFilter {
                    state: Some(ObjectState::Active),
                    expires_before: Some(from + chart::WEEKS * chart::WEEK),
                    ..certificates
                };
                let weeks = store.count_by(
                    actor,
                    &active,
                    CountBy::ExpiryBucket {
                        from,
                        width: chart::WEEK,
                    },
                )?;
                let month = ObjectFilter {
                    expires_before: Some(month_end),
                    expires_after: Some(from),
                    ..active
                };
                let next_month = store
                    .count_by(actor, &month, CountBy::State)?
                    .iter()
                    .map(|(_, n)| n)
                    .sum::<i64>();
                Ok((states, weeks, next_month))
            }
        })
        .await?;
    let listing = format!("{PREFIX}/certificates");
    let chart = chart::expiry(from, &weeks, &listing);
    let mut states = states;
    states.sort();
    html(&Overview {
        nav: Nav::new(&signed, "overview"),
        states,
        chart,
        next_month,
        next_month_href: format!(
            "{listing}?state=Active&expires_after={from}&expires_before={month_end}"
        ),
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct CertificateQuery {
    #[serde(default)]
    q: String,
    /// `email`, `subject`, `serial` or `tag`.
    #[serde(default)]
    by: String,
    #[serde(default)]
    state: String,
    /// Only CA certificates.
    #[serde(default)]
    ca: String,
    expires_after: Option<i64>,
    expires_before: Option<i64>,
    /// The next page: certificates listed after this ID.
    after: Option<String>,
}

struct Row {
    id: String,
    subject: String,
    serial: String,
    not_after: String,
    state: String,
    issuer: String,
}

impl From<&Attributes> for Row {
    fn from(a: &Attributes) -> Self {
        Self {
            id: a.unique_identifier.clone(),
            subject: a.certificate_subject.clone().unwrap_or_default(),
            serial: a.certificate_serial_number.clone().unwrap_or_default(),
            not_after: short_time(a.certificate_not_after.as_deref()),
            state: a.state.as_str().to_owned(),
            issuer: a.certificate_issuer.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/certificates.html")]
struct Certificates {
    nav: Nav,
    query: CertificateQuery,
    rows: Vec<Row>,
    next: Option<String>,
    states: Vec<&'static str>,
    range: String,
}

impl CertificateQuery {
    fn filter(&self) -> Result<ObjectFilter, PageError> {
        let mut filter = ObjectFilter {
            object_type: Some(ObjectType::Certificate),
            expires_after: self.expires_after,
            expires_before: self.expires_before,
            ca_only: self.ca == "on",
            after: self.after.clone().filter(|a| !a.is_empty()),
            limit: Some(PAGE + 1),
            ..ObjectFilter::default()
        };
        if !self.state.is_empty() {
            filter.state = Some(self.state.parse().map_err(|_| {
                PageError::bad(format!(
                    "unknown state `{}`",
                    mailpki_store::excerpt(&self.state, 40)
                ))
            })?);
        }
        let q = self.q.trim();
        if !q.is_empty() {
            match self.by.as_str() {
                "" | "email" if q.contains('@') => filter.email = Some(q.to_owned()),
                "" | "subject" => filter.subject_contains = Some(q.to_owned()),
                "email" => filter.email = Some(q.to_owned()),
                "serial" => filter.serial = Some(q.to_owned()),
                "tag" => filter.tags = vec![q.to_owned()],
                other => {
                    return Err(PageError::bad(format!(
                        "cannot search by `{}` (email, subject, serial, tag)",
                        mailpki_store::excerpt(other, 40)
                    )));
                }
            }
        }
        Ok(filter)
    }

    /// This query's parameters but the page, for the next page's link.
    fn link(&self, after: &str) -> String {
        let (expires_after, expires_before) = (
            self.expires_after
                .map(|t| t.to_string())
                .unwrap_or_default(),
            self.expires_before
                .map(|t| t.to_string())
                .unwrap_or_default(),
        );
        let pairs: Vec<String> = [
            ("q", self.q.as_str()),
            ("by", self.by.as_str()),
            ("state", self.state.as_str()),
            ("ca", self.ca.as_str()),
            ("expires_after", expires_after.as_str()),
            ("expires_before", expires_before.as_str()),
            ("after", after),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
        format!("{PREFIX}/certificates?{}", pairs.join("&"))
    }
}

async fn certificates(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<CertificateQuery>,
) -> Result<Response, PageError> {
    let filter = query.filter()?;
    let caller = signed.0.caller();
    let mut found = run(
        &app,
        &caller,
        "console.certificates",
        None,
        Audit::OnFailure,
        move |store, actor| Ok(store.list(actor, &filter)?),
    )
    .await?;
    let next = (found.len() > PAGE).then(|| {
        found.truncate(PAGE);
        found.last().map(|a| query.link(&a.unique_identifier))
    });
    let range = match (query.expires_after, query.expires_before) {
        (Some(a), Some(b)) => format!("expiring from {} to {}", unix_time(a), unix_time(b)),
        (Some(a), None) => format!("expiring after {}", unix_time(a)),
        (None, Some(b)) => format!("expiring before {}", unix_time(b)),
        (None, None) => String::new(),
    };
    html(&Certificates {
        nav: Nav::new(&signed, "certificates"),
        rows: found.iter().map(Row::from).collect(),
        next: next.flatten(),
        states: ObjectState::ALL.iter().map(|s| s.as_str()).collect(),
        query,
        range,
    })
}

#[derive(Template)]
#[template(path = "console/certificate.html")]
struct Certificate {
    nav: Nav,
    id: String,
    subject: String,
    fields: Vec<(String, String)>,
    issuer_id: Option<String>,
    revocable: bool,
    done: Option<String>,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

/// The attributes as `name: value` lines, in their JSON names and order.
fn fields(attributes: &Attributes) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(attributes) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            (k, shown)
        })
        .collect()
}

async fn read_attributes(
    app: &AppState,
    signed: &Signed,
    id: String,
) -> Result<Attributes, PageError> {
    let caller = signed.0.caller();
    let object = Some(id.clone());
    Ok(run(
        app,
        &caller,
        "console.certificate",
        object,
        Audit::OnFailure,
        move |store, actor| Ok(store.attributes(actor, &id)?),
    )
    .await?)
}

async fn certificate(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let attributes = read_attributes(&app, &signed, id).await?;
    html(&Certificate {
        nav: Nav::new(&signed, "certificates"),
        id: attributes.unique_identifier.clone(),
        subject: attributes.certificate_subject.clone().unwrap_or_default(),
        issuer_id: attributes.links.get(&LinkType::CertificateLink).cloned(),
        revocable: attributes.object_type == ObjectType::Certificate
            && attributes.state == ObjectState::Active,
        fields: fields(&attributes),
        done: done.done.filter(|d| d == "revoked"),
    })
}

#[derive(Template)]
#[template(path = "console/revoke.html")]
struct RevokePage {
    nav: Nav,
    id: String,
    subject: String,
    serial: String,
    reasons: Vec<&'static str>,
}

async fn revoke_confirm(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let attributes = read_attributes(&app, &signed, id).await?;
    html(&RevokePage {
        nav: Nav::new(&signed, "certificates"),
        id: attributes.unique_identifier.clone(),
        subject: attributes.certificate_subject.clone().unwrap_or_default(),
        serial: attributes
            .certificate_serial_number
            .clone()
            .unwrap_or_default(),
        reasons: RevocationReason::ALL.iter().map(|r| r.as_str()).collect(),
    })
}

#[derive(Deserialize)]
struct RevokeForm {
    csrf: String,
    reason: String,
    #[serde(default)]
    confirm: String,
}

async fn revoke(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    let console = app
        .console
        .as_deref()
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no console here"))?;
    super::login::same_origin(console, &headers)?;
    signed.check_csrf(&form.csrf)?;
    if form.confirm != "yes" {
        return Err(PageError::bad("tick the box to confirm the revocation"));
    }
    let caller = signed.0.caller();
    let body = RevokeBody {
        reason: form.reason,
        compromised: false,
    };
    let target = id.clone();
    run(
        &app,
        &caller,
        "revoke",
        Some(id.clone()),
        Audit::Always,
        move |store, actor| ops::revoke(store, actor, &target, &body),
    )
    .await?;
    Ok(Redirect::to(&format!(
        "{PREFIX}/certificates/{}?done=revoked",
        urlencode(&id)
    ))
    .into_response())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/issuers.html")]
struct Issuers {
    nav: Nav,
    rows: Vec<IssuerRow>,
}

struct IssuerRow {
    row: Row,
    key_location: String,
}

async fn issuers(State(app): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let caller = signed.0.caller();
    let rows = run(
        &app,
        &caller,
        "console.issuers",
        None,
        Audit::OnFailure,
        |store, actor| {
            let cas = store.list(
                actor,
                &ObjectFilter {
                    object_type: Some(ObjectType::Certificate),
                    ca_only: true,
                    limit: Some(500),
                    ..ObjectFilter::default()
                },
            )?;
            let mut rows = Vec::with_capacity(cas.len());
            for ca in &cas {
                let key_location = ca
                    .links
                    .get(&LinkType::PrivateKeyLink)
                    .and_then(|k| store.attributes(actor, k).ok())
                    .and_then(|k| k.key_location)
                    .unwrap_or_else(|| "none here".to_owned());
                rows.push(IssuerRow {
                    row: Row::from(ca),
                    key_location,
                });
            }
            Ok(rows)
        },
    )
    .await?;
    html(&Issuers {
        nav: Nav::new(&signed, "issuers"),
        rows,
    })
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    object: String,
    /// `YYYY-MM-DD`: lines on or after that day (UTC).
    #[serde(default)]
    since: String,
}

struct AuditRow {
    at: String,
    entry: AuditEntry,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    query: AuditQuery,
    rows: Vec<AuditRow>,
    own_only: bool,
}

/// Admins read everyone's lines; anyone else, their own.
async fn audit(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let since = match nonempty(&query.since) {
        Some(day) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(&day, &format)
                .map_err(|_| PageError::bad("`since` is a day: YYYY-MM-DD"))?;
            Some(date.midnight().assume_utc().unix_timestamp())
        }
        None => None,
    };
    let own_only = !signed.0.admin;
    let filter = AuditFilter {
        actor: if own_only {
            Some(signed.0.actor.to_string())
        } else {
            nonempty(&query.actor)
        },
        object: nonempty(&query.object),
        operation: nonempty(&query.operation),
        since,
        until: None,
        limit: 200,
    };
    let caller = signed.0.caller();
    let entries = run(
        &app,
        &caller,
        "console.audit",
        None,
        Audit::OnFailure,
        move |store, _| Ok(store.audit_log(&filter)?),
    )
    .await?;
    html(&AuditPage {
        nav: Nav::new(&signed, "audit"),
        rows: entries
            .into_iter()
            .map(|entry| AuditRow {
                at: unix_time(entry.at),
                entry,
            })
            .collect(),
        query,
        own_only,
    })
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/console.css"),
    )
        .into_response()
}

async fn root() -> Redirect {
    Redirect::to(PREFIX)
}

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview))
        .route("/certificates", get(certificates))
        .route("/certificates/{id}", get(certificate))
        .route(
            "/certificates/{id}/revoke",
            get(revoke_confirm).post(revoke),
        )
        .route("/issuers", get(issuers))
        .route("/audit", get(audit))
        .route("/static/console.css", get(stylesheet))
        .route("/index.html", get(root))
}

/// Only server admins run batches: they act with the server's service account in Gmail.
fn admin_only(signed: &Signed) -> Result<(), PageError> {
    if signed.0.admin {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "batches are for server admins ([server] admins): they act in Gmail for the whole organization",
        ))
    }
}

fn console_of(app: &AppState) -> Result<&super::Console, PageError> {
    app.console
        .as_deref()
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no console here"))
}

struct BatchRow {
    id: String,
    kind: &'static str,
    started_by: String,
    started: String,
    file_name: String,
    total: u64,
    progress: super::batches::Progress,
}

impl From<&super::batches::Run> for BatchRow {
    fn from(run: &super::batches::Run) -> Self {
        Self {
            id: run.id.clone(),
            kind: run.kind,
            started_by: run.started_by.clone(),
            started: unix_time(run.started),
            file_name: run.file_name.clone(),
            total: run.total,
            progress: run.progress(),
        }
    }
}

impl BatchRow {
    fn finished(&self) -> u64 {
        self.progress.done + self.progress.failed + self.progress.retry_later
    }

    fn state(&self) -> String {
        match &self.progress.finished {
            None => "running".to_owned(),
            Some(Ok(summary)) => format!("finished: {summary}"),
            Some(Err(reason)) => format!("stopped: {reason}"),
        }
    }
}

#[derive(Template)]
#[template(path = "console/batches.html")]
struct BatchesPage {
    nav: Nav,
    runs: Vec<BatchRow>,
    gmail: bool,
    kacls_url: String,
}

async fn batches(State(app): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    admin_only(&signed)?;
    let console = console_of(&app)?;
    let google = console.batches.google.as_ref();
    html(&BatchesPage {
        nav: Nav::new(&signed, "batches"),
        runs: console
            .batches
            .list()
            .iter()
            .map(|r| BatchRow::from(r.as_ref()))
            .collect(),
        gmail: google.is_some(),
        kacls_url: google.and_then(|g| g.kacls_url.clone()).unwrap_or_default(),
    })
}

/// The form's fields, read from a `multipart/form-data` body.
#[derive(Default)]
struct BatchForm {
    csrf: String,
    issuer: String,
    cse_key: String,
    kacls_url: String,
    concurrency: String,
    file_name: String,
    csv: Vec<u8>,
}

async fn read_batch_form(mut multipart: axum::extract::Multipart) -> Result<BatchForm, PageError> {
    let bad = |e: axum::extract::multipart::MultipartError| PageError::bad(e.body_text());
    let mut form = BatchForm::default();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "csv" {
            form.file_name = field.file_name().unwrap_or("upload.csv").to_owned();
            form.csv = field.bytes().await.map_err(bad)?.to_vec();
            continue;
        }
        let text = field.text().await.map_err(bad)?;
        match name.as_str() {
            "csrf" => form.csrf = text,
            "issuer" => form.issuer = text.trim().to_owned(),
            "cse_key" => form.cse_key = text.trim().to_owned(),
            "kacls_url" => form.kacls_url = text.trim().to_owned(),
            "concurrency" => form.concurrency = text.trim().to_owned(),
            _ => {}
        }
    }
    Ok(form)
}

async fn start_batch(
    State(app): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    multipart: axum::extract::Multipart,
) -> Result<Response, PageError> {
    let console = console_of(&app)?;
    super::login::same_origin(console, &headers)?;
    let form = read_batch_form(multipart).await?;
    signed.check_csrf(&form.csrf)?;
    admin_only(&signed)?;
    if form.csv.is_empty() {
        return Err(PageError::bad(
            "choose a CSV file of users (one address per line)",
        ));
    }
    if form.issuer.is_empty() || form.cse_key.is_empty() {
        return Err(PageError::bad(
            "the issuer key ID and the CSE key ID are both needed",
        ));
    }
    let concurrency = match form.concurrency.as_str() {
        "" => 8,
        n => n
            .parse()
            .map_err(|_| PageError::bad("concurrency is a number of users at once"))?,
    };
    let request = super::batches::Request {
        admin: signed.0.actor.clone(),
        file_name: form.file_name,
        csv: form.csv,
        issuer: form.issuer,
        cse_key: form.cse_key,
        kacls_url: Some(form.kacls_url),
        concurrency,
    };
    let caller = signed.0.caller();
    let started = console.batches.start_onboarding(
        std::sync::Arc::clone(&app.store),
        (*app.defaults).clone(),
        request,
    );
    let outcome = started
        .as_ref()
        .map(|_| ())
        .map_err(|reason| crate::error::ApiError::bad_request(reason.clone()));
    let object = started.as_ref().ok().map(|r| r.id.clone());
    crate::routes::audit(
        &app,
        &caller,
        "console.batch",
        object.as_deref(),
        outcome.as_ref().copied(),
    )
    .await;
    let run = started.map_err(PageError::bad)?;
    Ok(Redirect::to(&format!("{PREFIX}/batches/{}", run.id)).into_response())
}

#[derive(Template)]
#[template(path = "console/batch.html")]
struct BatchPage {
    nav: Nav,
    run: BatchRow,
}

fn run_of(app: &AppState, id: &str) -> Result<std::sync::Arc<super::batches::Run>, PageError> {
    console_of(app)?
        .batches
        .get(id)
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "no such batch on this server"))
}

async fn batch(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    admin_only(&signed)?;
    let run = run_of(&app, &id)?;
    html(&BatchPage {
        nav: Nav::new(&signed, "batches"),
        run: BatchRow::from(run.as_ref()),
    })
}

async fn batch_report(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    admin_only(&signed)?;
    let run = run_of(&app, &id)?;
    let report = tokio::fs::read(&run.report)
        .await
        .map_err(|_| PageError::new(StatusCode::NOT_FOUND, "no report yet"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-report.csv\"", run.id),
            ),
        ],
        report,
    )
        .into_response())
}

pub(super) fn batch_routes() -> Router<AppState> {
    Router::new()
        .route("/batches", get(batches).post(start_batch))
        .route("/batches/{id}", get(batch))
        .route("/batches/{id}/report.csv", get(batch_report))
}
