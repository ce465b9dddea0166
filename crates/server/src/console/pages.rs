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
    Attributes, AuditEntry, AuditFilter, LinkType, ObjectFilter, ObjectType, RevocationReason,
    State as ObjectState,
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
    /// When the counts were taken.
    counted: String,
    states: Vec<(String, i64)>,
    chart: Chart,
    next_month: i64,
    next_month_href: String,
}

async fn overview(State(app): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let census = app.census.get(&app.store, Some(&signed.0.actor)).await?;
    let from = census.from;
    // The chart's weeks, from the census's days.
    let weeks: Vec<(String, i64)> = (0..chart::WEEKS)
        .map(|w| (w.to_string(), census.active_between(w * 7, w * 7 + 7)))
        .collect();
    let listing = format!("{PREFIX}/certificates");
    let month_end = from + 30 * crate::census::DAY;
    html(&Overview {
        nav: Nav::new(&signed, "overview"),
        counted: unix_time(from),
        next_month: census.active_between(0, 30),
        states: census
            .by_state
            .iter()
            .map(|(s, n)| (s.clone(), *n))
            .collect(),
        chart: chart::expiry(from, &weeks, &listing),
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
    /// Only those issued by this CA certificate (ID).
    #[serde(default)]
    issuer: String,
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
            issued_by: Some(self.issuer.clone()).filter(|i| !i.is_empty()),
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
            ("issuer", self.issuer.as_str()),
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
    /// The mailbox the subject names, and its user page.
    email: Option<(String, String)>,
    /// For the owner: who holds which rights, one `(user, operation)` a line.
    access: Option<Vec<(String, String)>>,
    operations: Vec<&'static str>,
}

/// The `emailAddress` a subject as printed names, if any.
fn subject_email(subject: &str) -> Option<String> {
    subject
        .split(',')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| key.eq_ignore_ascii_case("emailAddress"))
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| v.contains('@'))
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
    let access = if attributes.owner == signed.0.actor.as_str() {
        let caller = signed.0.caller();
        let uid = attributes.unique_identifier.clone();
        let entries = run(
            &app,
            &caller,
            "access_list",
            Some(uid.clone()),
            Audit::OnFailure,
            move |store, actor| ops::access_list(store, actor, &uid),
        )
        .await?;
        Some(
            entries
                .into_iter()
                .flat_map(|e| {
                    let user = e.user;
                    e.operations
                        .into_iter()
                        .map(move |op| (user.clone(), op.as_str().to_owned()))
                })
                .collect(),
        )
    } else {
        None
    };
    let subject = attributes.certificate_subject.clone().unwrap_or_default();
    html(&Certificate {
        nav: Nav::new(&signed, "certificates"),
        id: attributes.unique_identifier.clone(),
        email: subject_email(&subject).map(|e| {
            let href = format!("{PREFIX}/users?email={}", urlencode(&e));
            (e, href)
        }),
        subject,
        issuer_id: attributes.links.get(&LinkType::CertificateLink).cloned(),
        revocable: attributes.object_type == ObjectType::Certificate
            && attributes.state == ObjectState::Active,
        fields: fields(&attributes),
        done: done.done.filter(|d| d == "revoked" || d == "access"),
        access,
        operations: mailpki_store::Operation::ALL
            .iter()
            .map(|o| o.as_str())
            .collect(),
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
    signed.check_form(&app, &headers, &form.csrf)?;
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
    /// When the CRL the publish listener serves for it must be replaced.
    crl_next_update: String,
}

async fn issuers(State(app): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let caller = signed.0.caller();
    let published = app.published.clone();
    let rows = run(
        &app,
        &caller,
        "console.issuers",
        None,
        Audit::OnFailure,
        move |store, actor| {
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
                let crl_next_update = match &published {
                    None => "no publish listener here".to_owned(),
                    Some(published) => published
                        .next_update(&ca.unique_identifier)
                        .map_or_else(|| "not asked for yet".to_owned(), unix_time),
                };
                rows.push(IssuerRow {
                    row: Row::from(ca),
                    key_location,
                    crl_next_update,
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
    reasons: Vec<&'static str>,
    runs: Vec<BatchRow>,
    gmail: bool,
    kacls_url: String,
}

async fn batches(State(app): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    admin_only(&signed)?;
    let console = super::console(&app)?;
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
        reasons: RevocationReason::ALL.iter().map(|r| r.as_str()).collect(),
        kacls_url: google.and_then(|g| g.kacls_url.clone()).unwrap_or_default(),
    })
}

/// The form's fields, read from a `multipart/form-data` body.
#[derive(Default)]
struct BatchForm {
    csrf: String,
    kind: String,
    reason: String,
    threshold_days: String,
    confirm: String,
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
            "kind" => form.kind = text.trim().to_owned(),
            "reason" => form.reason = text.trim().to_owned(),
            "threshold_days" => form.threshold_days = text.trim().to_owned(),
            "confirm" => form.confirm = text,
            "issuer" => form.issuer = text.trim().to_owned(),
            "cse_key" => form.cse_key = text.trim().to_owned(),
            "kacls_url" => form.kacls_url = text.trim().to_owned(),
            "concurrency" => form.concurrency = text.trim().to_owned(),
            _ => {}
        }
    }
    Ok(form)
}

/// The job the form asks for, each with what it needs.
fn batch_job(form: &BatchForm) -> Result<super::batches::Job, PageError> {
    use super::batches::Job;
    let needs = |value: &str, what: &str| {
        if value.is_empty() {
            Err(PageError::bad(format!(
                "{what} is needed for this kind of batch"
            )))
        } else {
            Ok(value.to_owned())
        }
    };
    match form.kind.as_str() {
        "" | "onboard" => Ok(Job::Onboard {
            issuer: needs(&form.issuer, "the issuer key ID")?,
            cse_key: needs(&form.cse_key, "the CSE key ID")?,
            kacls_url: Some(form.kacls_url.clone()),
        }),
        "offboard" => Ok(Job::Offboard {
            reason: if form.reason.is_empty() {
                "cessationOfOperation".to_owned()
            } else {
                form.reason.clone()
            },
        }),
        "rotate" => Ok(Job::Rotate {
            issuer: needs(&form.issuer, "the issuer key ID")?,
            threshold_days: match form.threshold_days.as_str() {
                "" => 30,
                n => n.parse().map_err(|_| {
                    PageError::bad("replace certificates expiring within a number of days")
                })?,
            },
        }),
        other => Err(PageError::bad(format!(
            "unknown kind of batch `{}` (onboard, offboard, rotate)",
            mailpki_store::excerpt(other, 40)
        ))),
    }
}

async fn start_batch(
    State(app): State<AppState>,
    signed: Signed,
    headers: HeaderMap,
    multipart: axum::extract::Multipart,
) -> Result<Response, PageError> {
    let console = super::console(&app)?;
    let form = read_batch_form(multipart).await?;
    signed.check_form(&app, &headers, &form.csrf)?;
    admin_only(&signed)?;
    if form.csv.is_empty() {
        return Err(PageError::bad(
            "choose a CSV file of users (one address per line)",
        ));
    }
    if form.confirm != "yes" {
        return Err(PageError::bad("tick the box to confirm the batch"));
    }
    let job = batch_job(&form)?;
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
        job,
        concurrency,
    };
    let caller = signed.0.caller();
    let started = console.batches.start(
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
    super::console(app)?
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

#[derive(Deserialize, Default)]
struct UserQuery {
    #[serde(default)]
    email: String,
}

/// What Gmail holds for a user, or why it could not be read.
#[derive(Default)]
struct InGmail {
    key_pairs: Vec<(String, String, String)>,
    identity: String,
    smime: Vec<(String, String, String, bool)>,
    errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    nav: Nav,
    email: String,
    rows: Vec<Row>,
    gmail: Option<InGmail>,
}

/// Reads the user's CSE key pairs, identity and hosted S/MIME certificates from Gmail; each
/// failure is kept as text, the rest still shown.
async fn in_gmail(gmail: &mailpki_gmail::GmailClient, email: &str) -> InGmail {
    let mut found = InGmail::default();
    let failed = found_error;
    let mut errors = Vec::new();
    match gmail.list_key_pairs(email, None).await {
        Ok(pairs) => {
            found.key_pairs = pairs
                .into_iter()
                .map(|p| {
                    (
                        p.key_pair_id.unwrap_or_default(),
                        p.enablement_state
                            .map(|s| format!("{s:?}"))
                            .unwrap_or_default(),
                        p.subject_email_addresses.join(", "),
                    )
                })
                .collect();
        }
        Err(e) => errors.push(failed("key pairs", &e)),
    }
    match gmail.get_identity(email, email).await {
        Ok(identity) => {
            found.identity = identity
                .primary_key_pair_id
                .or_else(|| {
                    identity
                        .sign_and_encrypt_key_pairs
                        .map(|p| p.signing_key_pair_id)
                })
                .unwrap_or_default();
        }
        Err(e) if e.status() == Some(404) => {}
        Err(e) => errors.push(failed("identity", &e)),
    }
    match gmail.list_send_as(email).await {
        Ok(send_as) => {
            for address in send_as.send_as {
                match gmail.list_smime(email, &address.send_as_email).await {
                    Ok(list) => found.smime.extend(list.smime_info.into_iter().map(|s| {
                        (
                            address.send_as_email.clone(),
                            s.issuer_cn.unwrap_or_default(),
                            s.expiration
                                .and_then(|ms| ms.parse::<i64>().ok())
                                .map(|ms| unix_time(ms / 1000))
                                .unwrap_or_default(),
                            s.is_default.unwrap_or(false),
                        )
                    })),
                    Err(e) => errors.push(failed("hosted S/MIME", &e)),
                }
            }
        }
        Err(e) => errors.push(failed("send-as addresses", &e)),
    }
    found.errors = errors;
    found
}

fn found_error(what: &str, e: &mailpki_gmail::GmailError) -> String {
    format!("{what}: {}", mailpki_store::excerpt(&e.to_string(), 300))
}

/// One user: the certificates the signed-in user may see for that address, and for server
/// admins what Gmail holds (through the server's service account).
async fn user(
    State(app): State<AppState>,
    signed: Signed,
    Query(query): Query<UserQuery>,
) -> Result<Response, PageError> {
    let email = query.email.trim().to_owned();
    let mut page = UserPage {
        nav: Nav::new(&signed, "users"),
        email: email.clone(),
        rows: Vec::new(),
        gmail: None,
    };
    if email.is_empty() {
        return html(&page);
    }
    let caller = signed.0.caller();
    let filter = ObjectFilter {
        object_type: Some(ObjectType::Certificate),
        email: Some(email.clone()),
        limit: Some(200),
        ..ObjectFilter::default()
    };
    let found = run(
        &app,
        &caller,
        "console.user",
        None,
        Audit::OnFailure,
        move |store, actor| Ok(store.list(actor, &filter)?),
    )
    .await?;
    page.rows = found.iter().map(Row::from).collect();
    let google = super::console(&app)?.batches.google.as_ref();
    if let (true, Some(google)) = (signed.0.admin, google) {
        page.gmail = Some(in_gmail(&google.gmail, &email).await);
    }
    html(&page)
}

#[derive(Template)]
#[template(path = "console/key_service.html")]
struct KeyServicePage {
    nav: Nav,
    url: Option<String>,
    minutes: Vec<(String, u64, u64)>,
    allowed: u64,
    refused: u64,
}

/// The key service's calls and refusals per minute over the last hour (this instance).
async fn key_service(State(app): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    if !signed.0.admin {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "the key service's activity is for server admins",
        ));
    }
    let minutes = app
        .kacls
        .as_ref()
        .map(|k| k.activity.last_hour())
        .unwrap_or_default();
    html(&KeyServicePage {
        nav: Nav::new(&signed, "key-service"),
        url: app.kacls.as_ref().map(|k| k.url.clone()),
        allowed: minutes.iter().map(|m| m.allowed).sum(),
        refused: minutes.iter().map(|m| m.refused).sum(),
        minutes: minutes
            .iter()
            .map(|m| (unix_time(m.start), m.allowed, m.refused))
            .collect(),
    })
}

#[derive(Deserialize)]
struct AccessForm {
    csrf: String,
    user: String,
    operation: String,
    #[serde(default)]
    confirm: String,
}

/// Grants or takes back one right on an object, confirmed, as its owner.
async fn change_access(
    app: &AppState,
    signed: &Signed,
    id: String,
    headers: &HeaderMap,
    form: AccessForm,
    grant: bool,
) -> Result<Response, PageError> {
    signed.check_form(app, headers, &form.csrf)?;
    if form.confirm != "yes" {
        return Err(PageError::bad(
            "tick the box to confirm the change of access rights",
        ));
    }
    let operation = form.operation.parse().map_err(|_| {
        PageError::bad(format!(
            "unknown operation `{}`",
            mailpki_store::excerpt(&form.operation, 40)
        ))
    })?;
    let body = mailpki_kms::api::AccessBody {
        user: form.user.trim().to_owned(),
        operations: vec![operation],
    };
    let caller = signed.0.caller();
    let target = id.clone();
    let name = if grant { "grant" } else { "revoke_access" };
    run(
        app,
        &caller,
        name,
        Some(id.clone()),
        Audit::Always,
        move |store, actor| {
            if grant {
                ops::grant(store, actor, &target, &body)
            } else {
                ops::revoke_access(store, actor, &target, &body)
            }
        },
    )
    .await?;
    Ok(Redirect::to(&format!(
        "{PREFIX}/certificates/{}?done=access",
        urlencode(&id)
    ))
    .into_response())
}

async fn grant(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AccessForm>,
) -> Result<Response, PageError> {
    change_access(&app, &signed, id, &headers, form, true).await
}

async fn revoke_access(
    State(app): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AccessForm>,
) -> Result<Response, PageError> {
    change_access(&app, &signed, id, &headers, form, false).await
}

pub(super) fn more_routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(user))
        .route("/key-service", get(key_service))
        .route("/certificates/{id}/grant", axum::routing::post(grant))
        .route(
            "/certificates/{id}/revoke-access",
            axum::routing::post(revoke_access),
        )
}
