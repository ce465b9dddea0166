//! Batch minting (`certify-batch`): for every user of a CSV, a certificate, its key and a
//! PKCS#12 file, on the batch engine. Rows are `email[,subject][,pkcs12_password]`.
//!
//! Key generation and the PKCS#12 run on the blocking pool, as many users at a time as there
//! are cores; committing a user (the store, the file, the manifest line) happens one user at a
//! time, in that order, so a crash leaves at most one user committed but not in the manifest.
//!
//! Exactly once: every minted certificate carries the tags `mailpki:batch=<id>` and
//! `mailpki:email=<address>`, committed with it. A re-run skips users in `manifest.csv` and,
//! for a user the store has but the manifest lacks, writes the file again from the stored
//! certificate instead of minting anew. The lookup starts from the user's tag, which few
//! objects carry, so it costs the same at the 20,000th user as at the first.
//!
//! Through a KMS server the server mints, stores (the issuer key stays there) and returns each
//! user's PKCS#12, one request per user: `certify` with `once` and the user's batch and email
//! tags answers with the certificate an earlier run committed, if any, instead of minting, so
//! a request of a run that died, still served when the next run starts, makes no second one.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::api::{CertifyBody, ExportBody, ExportFormat, KeySource, Pkcs12Wanted, secret};
use mailpki_kms::{IssuerRef, KeyChoice, Kms, MintProfile, Minter};
use mailpki_store::{
    LinkType, ObjectType, Pkcs12Profile, build_pkcs12, certificate_info, open_no_follow,
    replace_private_file, rfc3339,
};
use openssl::hash::{MessageDigest, hash};
use openssl::x509::X509;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use zeroize::Zeroizing;

use crate::batch::{self, Observer, Outcome, Tally};
use crate::error::{Result, WorkflowError};
use crate::onboard::AfterUpload;
use crate::rows::{ReportRow, UserRow, csv_safe, csv_unescape};

/// The manifest's name in the output folder.
pub const MANIFEST: &str = "manifest.csv";
const MANIFEST_HEADER: &str =
    "email,certificate_id,private_key_id,serial_number,not_after,pkcs12_file";

/// What a batch minting does.
pub struct MintBatch {
    pub issuer: IssuerRef,
    pub profile: MintProfile,
    /// Folder for the PKCS#12 files and the manifest (created with mode 0700).
    pub out_dir: PathBuf,
    /// The batch's name; by default derived from the output folder, so a re-run resumes.
    pub batch_id: Option<String>,
    /// Tags for every certificate, besides the batch's and the user's.
    pub tags: Vec<String>,
    /// The PKCS#12 password of rows without one.
    pub default_password: Option<SecretString>,
    pub pkcs12: Pkcs12Profile,
    /// Users in flight at once; by default one more than the cores (twice the cores through
    /// a server).
    pub jobs: Option<usize>,
    /// Run right after each user's certificate is committed (the CLI's crash test hook).
    pub after_commit: Option<AfterUpload>,
}

/// What a batch minting did.
#[derive(Debug)]
pub struct MintSummary {
    pub batch_id: String,
    pub manifest: PathBuf,
    pub minted: u64,
    /// Users the store had but the manifest lacked, written again from the store.
    pub recovered: u64,
    /// Users already in the manifest.
    pub already_done: u64,
    pub tally: Tally,
}

#[must_use]
pub fn batch_tag(batch: &str) -> String {
    format!("mailpki:batch={batch}")
}

#[must_use]
pub fn email_tag(email: &EmailAddress) -> String {
    format!("mailpki:email={}", email.canonical())
}

/// One user's row, checked.
struct Job {
    email: EmailAddress,
    subject: SubjectName,
    password: SecretString,
}

/// Where the users' certificates are minted.
enum Engine {
    /// In this process, with the embedded store's issuer key.
    Local {
        minter: Box<Minter>,
        chain: Vec<X509>,
    },
    /// By the KMS server, which also stores them.
    Remote {
        issuer: IssuerRef,
        profile: Box<MintProfile>,
    },
}

/// What every user's task shares.
struct Shared {
    kms: Kms,
    engine: Engine,
    batch: MintBatch,
    /// Tags of every certificate: the caller's and the batch's.
    tags: Vec<String>,
    batch_tag: String,
    /// Users in the manifest already, by address as written.
    done: HashSet<String>,
    /// Committing is one user at a time: store, file, manifest.
    manifest: Mutex<Manifest>,
    recovered: AtomicU64,
}

/// Mints for every user of `rows`, writing the PKCS#12 files and the manifest into the batch's
/// folder. Stops taking new users once `stop` completes.
pub async fn run(
    kms: Kms,
    batch: MintBatch,
    rows: impl Iterator<Item = Result<UserRow, ReportRow>>,
    observer: &mut dyn Observer,
    stop: impl Future<Output = ()>,
) -> Result<MintSummary> {
    mailpki_store::create_private_dir(&batch.out_dir)?;
    let batch_id = match &batch.batch_id {
        Some(id) => id.clone(),
        None => default_batch_id(&batch.out_dir)?,
    };
    let manifest_path = batch.out_dir.join(MANIFEST);
    let done = read_manifest(&manifest_path)?;
    // Temporary files of an interrupted run are incomplete by definition.
    for entry in fs::read_dir(&batch.out_dir)
        .map_err(|source| WorkflowError::Read {
            path: batch.out_dir.clone(),
            source,
        })?
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
    let (engine, default_jobs) = engine(&kms, &batch, observer)?;
    let concurrency = batch.jobs.unwrap_or(default_jobs).max(1);
    let mut tags = batch.tags.clone();
    tags.push(batch_tag(&batch_id));
    let shared = Arc::new(Shared {
        kms,
        engine,
        batch_tag: batch_tag(&batch_id),
        tags,
        done,
        manifest: Mutex::new(Manifest::open(&manifest_path)?),
        recovered: AtomicU64::new(0),
        batch,
    });
    let tally = batch::run(rows, concurrency, observer, None, stop, |row| {
        let shared = Arc::clone(&shared);
        async move {
            let work = tokio::task::spawn_blocking(move || mint_user(&shared, &row));
            match work.await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => Outcome::from_error(&e),
                Err(e) => Outcome::Failed(format!("the user's task stopped: {e}").into()),
            }
        }
    })
    .await?;
    let recovered = shared.recovered.load(Ordering::SeqCst);
    Ok(MintSummary {
        batch_id,
        manifest: manifest_path,
        minted: tally.done - recovered,
        recovered,
        already_done: tally.skipped,
        tally,
    })
}

/// Minting here with the embedded issuer, or on the server; and how many users to have in
/// flight by default.
fn engine(kms: &Kms, batch: &MintBatch, observer: &dyn Observer) -> Result<(Engine, usize)> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    if let Some(minter) = kms.local_minter(&batch.issuer, &batch.profile)? {
        for warning in &minter.warnings {
            observer.warn(warning);
        }
        let chain = minter.chain();
        return Ok((
            Engine::Local {
                minter: Box::new(minter),
                chain,
            },
            // One more than the cores: a user being committed (store, file, fsync) leaves its
            // core to the next user's key generation.
            cores + 1,
        ));
    }
    let issuer_id = batch
        .issuer
        .private_key_id
        .as_deref()
        .or(batch.issuer.certificate_id.as_deref())
        .ok_or_else(|| {
            WorkflowError::Input(
                "give the issuer with -k/--issuer-private-key-id or --issuer-certificate-id"
                    .to_owned(),
            )
        })?;
    batch::check_usable(kms, issuer_id, "the issuer")?;
    // The server mints; keep enough requests in flight to keep its cores busy.
    let engine = Engine::Remote {
        issuer: batch.issuer.clone(),
        profile: Box::new(batch.profile.clone()),
    };
    Ok((engine, cores * 2))
}

/// Checks one row: the address, the subject (the mailbox profile's by default), the password.
fn job(row: &UserRow, default_password: Option<&SecretString>) -> Result<Job> {
    let field = |i: usize| {
        row.fields
            .get(i)
            .map(String::as_str)
            .filter(|f| !f.is_empty())
    };
    let email: EmailAddress = row.user.parse()?;
    let subject = match field(0) {
        Some(text) => text.parse::<SubjectName>()?,
        None => SubjectName::mailbox(&email),
    };
    let password = field(1)
        .map(|p| SecretString::from(p.to_owned()))
        .or_else(|| default_password.cloned())
        .ok_or_else(|| {
            WorkflowError::Input(
                "no PKCS#12 password: give --pkcs12-password or a third column".to_owned(),
            )
        })?;
    Ok(Job {
        email,
        subject,
        password,
    })
}

/// One user: skipped when in the manifest, written again from the store when committed by an
/// earlier run, else minted. Runs on the blocking pool.
fn mint_user(s: &Shared, row: &UserRow) -> Result<Outcome> {
    let job = job(row, s.batch.default_password.as_ref())?;
    if s.done.contains(job.email.as_str()) {
        return Ok(Outcome::Skipped("already in the manifest".to_owned()));
    }
    let mut user_tags = s.tags.clone();
    user_tags.push(email_tag(&job.email));
    let entry = match &s.engine {
        Engine::Local { minter, chain } => {
            let minted = minter.mint(&job.subject, KeyChoice::Generate, Some(&job.email))?;
            let key = minted
                .key
                .as_ref()
                .ok_or_else(|| WorkflowError::Inconsistent("no key was generated".to_owned()))?;
            let pkcs12 = build_pkcs12(
                &minted.certificate,
                key,
                chain,
                &job.password,
                s.batch.pkcs12,
                job.email.as_str(),
            )?;
            let info = certificate_info(&minted.certificate)?;
            // The store is asked under the commit lock, after the key generation: no user's
            // key generation waits on another user's commit. A user committed by an earlier
            // run (rare: a crash) costs one key generation for nothing.
            let mut manifest = lock(&s.manifest)?;
            if let Some(certificate_id) = committed_earlier(s, &job.email)? {
                return recover(s, &mut manifest, &job, certificate_id);
            }
            let report = s.kms.store_minted(&minted, &user_tags)?;
            let entry = ManifestEntry {
                certificate_id: report.certificate.unwrap_or_default(),
                private_key_id: report.private_key.unwrap_or_default(),
                serial: info.serial,
                not_after: rfc3339(info.not_after),
            };
            committed(s, &mut manifest, &job, &entry, &pkcs12)?;
            entry
        }
        Engine::Remote { issuer, profile } => {
            // No lookup first: with `once` the server answers with the certificate an earlier
            // run committed for this user and batch, if any.
            let body = CertifyBody {
                issuer: issuer.clone(),
                profile: profile.as_ref().clone(),
                subject: Some(job.subject.to_string()),
                email: Some(job.email.to_string()),
                key: KeySource::Generate,
                id: None,
                tags: user_tags,
                // The user's batch and email tags make one certificate, even when a request
                // of a run that died is still being served.
                once: true,
                // The PKCS#12 comes back with the certificate: one request, not two.
                pkcs12: Some(Pkcs12Wanted {
                    password: secret(job.password.expose_secret()),
                    legacy: s.batch.pkcs12 == Pkcs12Profile::Legacy,
                }),
            };
            let reply = s.kms.certify(&body)?;
            let pkcs12 = match &reply.pkcs12 {
                Some(data) => Zeroizing::new(STANDARD.decode(data.as_bytes()).map_err(|_| {
                    WorkflowError::Inconsistent("the PKCS#12 is not base64".to_owned())
                })?),
                // Without one in the reply: export it.
                None => s
                    .kms
                    .export(&reply.unique_identifier, &export_body(s, &job))?,
            };
            let entry = ManifestEntry {
                certificate_id: reply.unique_identifier,
                private_key_id: reply.private_key.unwrap_or_default(),
                serial: reply.serial_number,
                not_after: reply.not_after,
            };
            let mut manifest = lock(&s.manifest)?;
            committed(s, &mut manifest, &job, &entry, &pkcs12)?;
            if reply.already_minted {
                s.recovered.fetch_add(1, Ordering::SeqCst);
                return Ok(Outcome::Done(
                    json!({"certificate_id": entry.certificate_id, "recovered": true}),
                ));
            }
            entry
        }
    };
    Ok(Outcome::Done(
        json!({"certificate_id": entry.certificate_id, "serial_number": entry.serial}),
    ))
}

/// The certificate an earlier run of this batch committed for `email`, if any. Starts from
/// the user's tag (a handful of objects), not the batch's (every user so far).
fn committed_earlier(s: &Shared, email: &EmailAddress) -> Result<Option<String>> {
    for id in s.kms.find_by_tags(&[email_tag(email)])? {
        let attributes = s.kms.attributes(&id)?;
        if attributes.object_type == ObjectType::Certificate
            && attributes.tags.contains(&s.batch_tag)
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Writes the file and the manifest line of a user an earlier run committed.
fn recover(
    s: &Shared,
    manifest: &mut Manifest,
    job: &Job,
    certificate_id: String,
) -> Result<Outcome> {
    let pkcs12 = s.kms.export(&certificate_id, &export_body(s, job))?;
    let attributes = s.kms.attributes(&certificate_id)?;
    let entry = ManifestEntry {
        private_key_id: attributes
            .links
            .get(&LinkType::PrivateKeyLink)
            .cloned()
            .unwrap_or_default(),
        serial: attributes.certificate_serial_number.unwrap_or_default(),
        not_after: attributes.certificate_not_after.unwrap_or_default(),
        certificate_id,
    };
    write_user(&s.batch.out_dir, manifest, job, &entry, &pkcs12)?;
    s.recovered.fetch_add(1, Ordering::SeqCst);
    Ok(Outcome::Done(
        json!({"certificate_id": entry.certificate_id, "recovered": true}),
    ))
}

fn export_body(s: &Shared, job: &Job) -> ExportBody {
    ExportBody {
        format: ExportFormat::Pkcs12,
        password: Some(secret(job.password.expose_secret())),
        legacy: s.batch.pkcs12 == Pkcs12Profile::Legacy,
    }
}

fn lock(manifest: &Mutex<Manifest>) -> Result<std::sync::MutexGuard<'_, Manifest>> {
    manifest
        .lock()
        .map_err(|_| WorkflowError::Inconsistent("a user's task failed mid-commit".to_owned()))
}

/// After the store holds the user's certificate: the test hook, then the file and manifest.
fn committed(
    s: &Shared,
    manifest: &mut Manifest,
    job: &Job,
    entry: &ManifestEntry,
    pkcs12: &[u8],
) -> Result<()> {
    if let Some(hook) = &s.batch.after_commit {
        hook();
    }
    write_user(&s.batch.out_dir, manifest, job, entry, pkcs12)
}

struct ManifestEntry {
    certificate_id: String,
    private_key_id: String,
    serial: String,
    not_after: String,
}

/// Writes a user's PKCS#12, then records the user as done.
fn write_user(
    out_dir: &Path,
    manifest: &mut Manifest,
    job: &Job,
    entry: &ManifestEntry,
    pkcs12: &[u8],
) -> Result<()> {
    let name = file_name(&job.email);
    replace_private_file(&out_dir.join(&name), pkcs12)?;
    manifest.append(&[
        job.email.as_str(),
        &entry.certificate_id,
        &entry.private_key_id,
        &entry.serial,
        &entry.not_after,
        &name,
    ])
}

/// A file name for a user's PKCS#12: the address with anything unusual replaced.
fn file_name(email: &EmailAddress) -> String {
    let safe: String = email
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.p12")
}

/// The default batch name: a digest of the output folder's canonical path.
fn default_batch_id(out_dir: &Path) -> Result<String> {
    let canonical = fs::canonicalize(out_dir).map_err(|source| WorkflowError::Read {
        path: out_dir.to_owned(),
        source,
    })?;
    let digest = hash(
        MessageDigest::sha256(),
        canonical.as_os_str().as_encoded_bytes(),
    )?;
    Ok(mailpki_store::hex(&digest[..8]))
}

/// Reads the manifest's completed users, dropping a torn last line left by a crash.
fn read_manifest(path: &Path) -> Result<HashSet<String>> {
    let read_error = |source| WorkflowError::Read {
        path: path.to_owned(),
        source,
    };
    let mut done = HashSet::new();
    let mut text = String::new();
    match open_no_follow(path, OpenOptions::new().read(true)) {
        Ok(mut file) => {
            file.read_to_string(&mut text).map_err(read_error)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(open_error(path, e)),
    }
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    if complete.len() != text.len() {
        open_no_follow(path, OpenOptions::new().write(true).truncate(true))
            .and_then(|mut f| f.write_all(complete.as_bytes()))
            .map_err(WorkflowError::Report)?;
    }
    for line in complete.lines().skip(1) {
        let mut fields = line.split(',');
        if let (Some(email), Some(_certificate_id)) = (fields.next(), fields.next()) {
            done.insert(csv_unescape(email).to_owned());
        }
    }
    Ok(done)
}

/// A planted symbolic link is said as such: the manifest is not written through one.
fn open_error(path: &Path, source: std::io::Error) -> WorkflowError {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        WorkflowError::Input(format!(
            "refusing {}: it is a symbolic link, which is not followed",
            path.display()
        ))
    } else {
        WorkflowError::Read {
            path: path.to_owned(),
            source,
        }
    }
}

/// `manifest.csv`, appended to one whole line at a time.
struct Manifest {
    file: File,
}

impl Manifest {
    fn open(path: &Path) -> Result<Self> {
        let fresh = !path.exists();
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = open_no_follow(path, &mut options).map_err(|e| open_error(path, e))?;
        if fresh {
            writeln!(file, "{MANIFEST_HEADER}").map_err(WorkflowError::Report)?;
        }
        Ok(Self { file })
    }

    fn append(&mut self, fields: &[&str]) -> Result<()> {
        // One write per line, flushed to disk: a crash loses at most a torn last line.
        let fields: Vec<_> = fields.iter().map(|f| csv_safe(f)).collect();
        let line = format!("{}\n", fields.join(","));
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(WorkflowError::Report)
    }
}
