//! Batches the console runs: a CSV uploaded by a server admin, whose users are onboarded to
//! CSE, offboarded, or have their hosted S/MIME certificates rotated by
//! [`mailpki_workflows`] (the code `mailpki google onboard`, `offboard` and `smime rotate`
//! run) against Gmail with the server's service account, acting in the store as that admin. Progress is counted as
//! users finish and shown on a page that reloads itself (no script); the report is written
//! as the CLI writes it and can be downloaded. The journal is the store's, so a batch started
//! again with the same CSV resumes where the last one stopped, here or in the CLI.
//!
//! Runs are kept in this instance's memory (the last [`KEPT`]); their input and report files
//! stay in `batch_dir`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mailpki_kms::Kms;
use mailpki_store::Actor;
use mailpki_workflows::batch::{Observer, Tick};

/// Runs listed at most; older ones drop off the list (their files stay).
const KEPT: usize = 100;
/// Warnings kept per run.
const WARNINGS: usize = 20;

/// What a run has done so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    pub(crate) done: u64,
    pub(crate) failed: u64,
    pub(crate) retry_later: u64,
    pub(crate) warnings: Vec<String>,
    /// Set when the run is over: the summary, or why it could not run.
    pub(crate) finished: Option<Result<String, String>>,
}

pub(crate) struct Run {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) started_by: String,
    pub(crate) started: i64,
    pub(crate) file_name: String,
    pub(crate) total: u64,
    pub(crate) report: PathBuf,
    progress: Mutex<Progress>,
}

impl Run {
    pub(crate) fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }
}

struct Watch(Arc<Run>);

impl Observer for Watch {
    fn finished(&mut self, tick: Tick) {
        self.0.update(|p| match tick {
            Tick::Done => p.done += 1,
            Tick::Failed => p.failed += 1,
            Tick::RetryLater => p.retry_later += 1,
        });
    }

    fn warn(&self, message: &str) {
        self.0.update(|p| {
            if p.warnings.len() < WARNINGS {
                p.warnings.push(mailpki_store::excerpt(message, 400));
            }
        });
    }
}

/// Gmail as the server reaches it.
pub(crate) struct Google {
    pub(crate) gmail: mailpki_gmail::GmailClient,
    pub(crate) kacls_url: Option<String>,
}

pub(crate) struct Batches {
    pub(crate) google: Option<Google>,
    dir: PathBuf,
    runs: Mutex<Vec<Arc<Run>>>,
}

/// What a batch does for each user of its CSV.
pub(crate) enum Job {
    /// CSE: certificate, key pair, identity (`google onboard`).
    Onboard {
        issuer: String,
        cse_key: String,
        kacls_url: Option<String>,
    },
    /// Identity deleted, key pairs disabled, hosted S/MIME deleted, certificates revoked
    /// (`google offboard`).
    Offboard { reason: String },
    /// Hosted S/MIME: every address keeps a valid default certificate, replacements minted by
    /// the issuer (`google smime rotate -i`).
    Rotate { issuer: String, threshold_days: u32 },
}

impl Job {
    fn kind(&self) -> &'static str {
        match self {
            Self::Onboard { .. } => "onboard",
            Self::Offboard { .. } => "offboard",
            Self::Rotate { .. } => "rotate",
        }
    }
}

/// What a server admin asks for.
pub(crate) struct Request {
    pub(crate) admin: Actor,
    pub(crate) file_name: String,
    pub(crate) csv: Vec<u8>,
    pub(crate) job: Job,
    pub(crate) concurrency: usize,
}

impl Batches {
    pub(crate) fn new(google: Option<Google>, dir: PathBuf) -> Self {
        Self {
            google,
            dir,
            runs: Mutex::new(Vec::new()),
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Run>>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn list(&self) -> Vec<Arc<Run>> {
        self.runs().clone()
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Run>> {
        self.runs().iter().find(|r| r.id == id).cloned()
    }

    /// Starts the batch; the run, to watch. Refuses before anything runs what cannot work:
    /// no service account, no key service URL, an unreadable CSV. The workflow checks the
    /// keys before the first user.
    pub(crate) fn start(
        &self,
        store: Arc<mailpki_store::Store>,
        defaults: mailpki_kms::IssuanceDefaults,
        request: Request,
    ) -> Result<Arc<Run>, String> {
        let google = self
            .google
            .as_ref()
            .ok_or("batches need Gmail: set service_account_key in [server.console]")?;
        let kacls_uri = match &request.job {
            Job::Onboard { kacls_url, .. } => Some(
                kacls_url
                    .clone()
                    .filter(|u| !u.trim().is_empty())
                    .or_else(|| google.kacls_url.clone())
                    .ok_or("no key service URL: give one, or set kacls_url in [server.console]")?,
            ),
            _ => None,
        };
        let random = super::random_token().map_err(|e| e.message)?;
        let id = format!(
            "b-{}",
            random
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(10)
                .collect::<String>()
        );
        mailpki_store::create_private_dir(&self.dir)
            .map_err(|e| format!("cannot make the batch folder: {e}"))?;
        let input = self.dir.join(format!("{id}.input.csv"));
        std::fs::write(&input, &request.csv)
            .map_err(|e| format!("cannot keep the uploaded CSV: {e}"))?;
        let total = mailpki_workflows::rows::count_rows(&input).map_err(|e| e.to_string())?;
        let rows = mailpki_workflows::rows::read_rows(&input).map_err(|e| e.to_string())?;
        let run = Arc::new(Run {
            id: id.clone(),
            kind: request.job.kind(),
            started_by: request.admin.to_string(),
            started: time::OffsetDateTime::now_utc().unix_timestamp(),
            file_name: mailpki_store::excerpt(&request.file_name, 120),
            total,
            report: self.dir.join(format!("{id}.report.csv")),
            progress: Mutex::new(Progress::default()),
        });
        // The batch's name is the CSV's content: the same list uploaded again resumes.
        let name = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            openssl::sha::sha256(&request.csv),
        );
        let batch = format!("console:{name}");
        let concurrency = request.concurrency.clamp(1, 64);
        let kms = Kms::shared(store, request.admin, defaults);
        let gmail = google.gmail.clone();
        let watched = Arc::clone(&run);
        let job = request.job;
        tokio::spawn(async move {
            let mut watch = Watch(Arc::clone(&watched));
            let work = Work {
                kms,
                gmail,
                batch,
                concurrency,
                kacls_uri,
                input,
            };
            let result = work
                .run(job, rows, &mut watch, Some(watched.report.as_path()))
                .await;
            let finished = match result {
                Ok(t) => Ok(format!(
                    "{} done, {} skipped, {} to retry later, {} failed",
                    t.done, t.skipped, t.retry_later, t.failed
                )),
                Err(e) => Err(mailpki_workflows::describe(&e)),
            };
            watched.update(|p| p.finished = Some(finished));
        });
        let mut runs = self.runs();
        runs.insert(0, Arc::clone(&run));
        runs.truncate(KEPT);
        Ok(run)
    }
}

/// What a running batch works with.
struct Work {
    kms: Kms,
    gmail: mailpki_gmail::GmailClient,
    batch: String,
    concurrency: usize,
    kacls_uri: Option<String>,
    input: PathBuf,
}

impl Work {
    /// Runs the job's workflow over `rows` to the end.
    async fn run(
        self,
        job: Job,
        rows: impl Iterator<
            Item = Result<mailpki_workflows::rows::UserRow, mailpki_workflows::rows::ReportRow>,
        > + Send,
        watch: &mut Watch,
        report: Option<&std::path::Path>,
    ) -> mailpki_workflows::Result<mailpki_workflows::batch::Tally> {
        let stop = std::future::pending::<()>();
        let (batch, concurrency) = (self.batch, self.concurrency);
        match job {
            Job::Onboard {
                issuer, cse_key, ..
            } => {
                let plan = mailpki_workflows::onboard::Plan {
                    issuer,
                    profile: mailpki_kms::MintProfile::default(),
                    cse_key_id: cse_key,
                    kacls_uri: self.kacls_uri.unwrap_or_default(),
                    batch,
                    concurrency,
                    after_upload: None,
                    dry_run: false,
                };
                mailpki_workflows::onboard::run(
                    self.kms, self.gmail, plan, rows, watch, report, stop,
                )
                .await
            }
            Job::Offboard { reason } => {
                let plan = mailpki_workflows::offboard::Plan {
                    reason,
                    obliterate: false,
                    batch,
                    concurrency,
                    dry_run: false,
                };
                mailpki_workflows::offboard::run(
                    self.kms, self.gmail, plan, rows, watch, report, stop,
                )
                .await
            }
            Job::Rotate {
                issuer,
                threshold_days,
            } => {
                let rotation = mailpki_workflows::smime::Rotation {
                    issuing: Some(mailpki_workflows::smime::Issuing {
                        kms: self.kms,
                        issuer,
                        profile: mailpki_kms::MintProfile::default(),
                    }),
                    threshold_days,
                    dry_run: false,
                };
                let settings = mailpki_workflows::smime::Batch {
                    csv: self.input,
                    concurrency,
                };
                mailpki_workflows::smime::rotate(
                    self.gmail, settings, rotation, rows, watch, report, stop,
                )
                .await
            }
        }
    }
}
