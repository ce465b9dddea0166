//! Batches the console runs: a CSV uploaded by a server admin, onboarded to CSE by
//! [`mailpki_workflows::onboard`] (the code `mailpki google onboard` runs) against Gmail with
//! the server's service account, acting in the store as that admin. Progress is counted as
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

/// What a server admin asks for.
pub(crate) struct Request {
    pub(crate) admin: Actor,
    pub(crate) file_name: String,
    pub(crate) csv: Vec<u8>,
    pub(crate) issuer: String,
    pub(crate) cse_key: String,
    pub(crate) kacls_url: Option<String>,
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

    /// Starts an onboarding of the CSV's users; the run, to watch. Refuses before anything
    /// runs what cannot work: no service account, no key service URL, an unreadable CSV.
    pub(crate) fn start_onboarding(
        &self,
        store: Arc<mailpki_store::Store>,
        defaults: mailpki_kms::IssuanceDefaults,
        request: Request,
    ) -> Result<Arc<Run>, String> {
        let google = self
            .google
            .as_ref()
            .ok_or("batches need Gmail: set service_account_key in [server.console]")?;
        let kacls_uri = request
            .kacls_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| google.kacls_url.clone())
            .ok_or("no key service URL: give one, or set kacls_url in [server.console]")?;
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
            kind: "onboard",
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
        let plan = mailpki_workflows::onboard::Plan {
            issuer: request.issuer,
            profile: mailpki_kms::MintProfile::default(),
            cse_key_id: request.cse_key,
            kacls_uri,
            batch: format!("console:{name}"),
            concurrency: request.concurrency.clamp(1, 64),
            after_upload: None,
            dry_run: false,
        };
        let kms = Kms::shared(store, request.admin, defaults);
        let gmail = google.gmail.clone();
        let watched = Arc::clone(&run);
        tokio::spawn(async move {
            let mut watch = Watch(Arc::clone(&watched));
            let result = mailpki_workflows::onboard::run(
                kms,
                gmail,
                plan,
                rows,
                &mut watch,
                Some(&watched.report),
                std::future::pending::<()>(),
            )
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
