//! `mailpki kms certificates certify-batch`: mint for every user of a CSV.
//!
//! A reader streams the CSV and hands rows to worker threads, one per core, which generate the
//! key, mint, lint and build the PKCS#12; a single writer stores each result, writes its file
//! and appends it to `manifest.csv`. Memory stays bounded by the channel sizes.
//!
//! Exactly once: every minted certificate carries the tags `mailpki:batch=<id>` and
//! `mailpki:email=<address>`, committed with it. A re-run skips users in the manifest and,
//! for users the store has but the manifest lacks (a crash between the two), writes the file
//! again from the stored certificate instead of minting anew.
//!
//! Against a KMS server the workers ask the server to mint (the issuer key stays there) and
//! to export each user's PKCS#12; the tags, the manifest and the recovery are the same.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::api::{CertifyBody, ExportBody, KeySource};
use mailpki_kms::{IssuerRef, Kms, MintProfile};
use mailpki_store::{Pkcs12Profile, build_pkcs12, certificate_info, replace_private_file, rfc3339};
use openssl::hash::{MessageDigest, hash};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::args::CertifyBatchArgs;
use crate::commands::{Ctx, read_password};
use crate::files;
use crate::mint::{KeyChoice, Minter, issuer_ref, mint_profile};
use crate::output::Printer;
use crate::progress::Progress;

const MANIFEST: &str = "manifest.csv";
const MANIFEST_HEADER: &str =
    "email,certificate_id,private_key_id,serial_number,not_after,pkcs12_file";

/// One CSV row, checked.
struct Job {
    line: u64,
    email: EmailAddress,
    subject: SubjectName,
    password: SecretString,
}

/// What the workers hand the writer.
enum Outcome {
    Minted {
        job: Job,
        minted: Box<crate::mint::Minted>,
        pkcs12: Vec<u8>,
    },
    /// Minted and stored by the KMS server.
    Stored {
        job: Job,
        entry: ManifestEntry,
        pkcs12: zeroize::Zeroizing<Vec<u8>>,
    },
    /// In the store already (an earlier run stopped before its manifest line).
    Recover { job: Job, certificate_id: String },
    Failed {
        line: u64,
        email: String,
        reason: String,
    },
}

fn batch_tag(batch: &str) -> String {
    format!("mailpki:batch={batch}")
}

fn email_tag(email: &EmailAddress) -> String {
    format!("mailpki:email={}", email.normalized())
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

fn default_batch_id(out_dir: &Path) -> Result<String> {
    let canonical = fs::canonicalize(out_dir)?;
    let digest = hash(
        MessageDigest::sha256(),
        canonical.as_os_str().as_encoded_bytes(),
    )?;
    Ok(digest.iter().take(8).fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    }))
}

/// Reads the manifest's completed users, dropping a torn last line left by a crash.
fn read_manifest(path: &Path) -> Result<HashMap<String, String>> {
    let mut done = HashMap::new();
    let mut text = String::new();
    match files::open_no_follow(path, OpenOptions::new().read(true)) {
        Ok(mut file) => {
            file.read_to_string(&mut text)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot read {} (a symbolic link is refused)",
                    path.display()
                )
            });
        }
    }
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    if complete.len() != text.len() {
        files::open_no_follow(path, OpenOptions::new().write(true).truncate(true))
            .and_then(|mut f| f.write_all(complete.as_bytes()))
            .with_context(|| format!("cannot repair {}", path.display()))?;
    }
    for line in complete.lines().skip(1) {
        let mut fields = line.split(',');
        if let (Some(email), Some(id)) = (fields.next(), fields.next()) {
            done.insert(files::csv_unescape(email).to_owned(), id.to_owned());
        }
    }
    Ok(done)
}

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
        let mut file = files::open_no_follow(path, &mut options).with_context(|| {
            format!(
                "cannot open {} (a symbolic link is refused)",
                path.display()
            )
        })?;
        if fresh {
            writeln!(file, "{MANIFEST_HEADER}")?;
        }
        Ok(Self { file })
    }

    fn append(&mut self, fields: &[&str]) -> Result<()> {
        // One write per line, flushed to disk: a crash loses at most a torn last line.
        let fields: Vec<_> = fields.iter().map(|f| files::csv_safe(f)).collect();
        let line = format!("{}\n", fields.join(","));
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// Counts data lines, for the progress bar's length.
pub(crate) fn count_lines(path: &Path) -> Result<u64> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut count = 0;
    for (i, line) in BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .enumerate()
    {
        let line = crate::bulk::strip_bom(&line);
        let header = i == 0
            && line
                .split(',')
                .next()
                .is_some_and(|f| f.trim().eq_ignore_ascii_case("email"));
        if !line.is_empty() && !line.starts_with('#') && !header {
            count += 1;
        }
    }
    Ok(count)
}

pub(crate) fn run(ctx: &Ctx, args: &CertifyBatchArgs) -> Result<()> {
    let default_password = read_password(&args.password)?;
    let total = count_lines(&args.csv)?;
    mailpki_store::create_private_dir(&args.out_dir)?;
    let batch = match &args.batch_id {
        Some(id) => id.clone(),
        None => default_batch_id(&args.out_dir)?,
    };
    let manifest_path = args.out_dir.join(MANIFEST);
    let done = read_manifest(&manifest_path)?;
    // Temporary files of an interrupted run are incomplete by definition.
    for entry in fs::read_dir(&args.out_dir)?.flatten() {
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }

    let kms = ctx.kms()?;
    let mut tags = args.tags.clone();
    tags.push(batch_tag(&batch));
    let (engine, default_jobs) = engine(ctx, args, &kms, &tags)?;
    let profile = if args.legacy {
        Pkcs12Profile::Legacy
    } else {
        Pkcs12Profile::Modern
    };
    let jobs = args.jobs.unwrap_or(default_jobs).max(1);

    let (job_tx, job_rx) = sync_channel::<Job>(jobs * 2);
    let (out_tx, out_rx) = sync_channel::<Outcome>(jobs * 2);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let mut manifest = Manifest::open(&manifest_path)?;
    let mut progress = Progress::new("certify-batch", total, ctx.printer);
    let mut summary = Summary {
        skipped: done.len() as u64,
        ..Summary::default()
    };

    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..jobs {
            let rx = Arc::clone(&job_rx);
            let tx = out_tx.clone();
            let engine = &engine;
            scope.spawn(move || worker(&rx, &tx, engine, profile));
        }
        // The reader owns the job sender and a result sender: when it ends, the workers run
        // dry and stop, the result channel closes, and the writer's loop ends.
        let reader_tx = out_tx.clone();
        drop(out_tx);
        let (csv, password, done, kms_ref, batch) = (
            &args.csv,
            default_password.as_ref(),
            &done,
            &kms,
            batch.as_str(),
        );
        let reader = scope
            .spawn(move || read_rows(csv, password, done, kms_ref, batch, &job_tx, &reader_tx));
        // By value: if the writer fails, dropping the receiver stops the senders.
        write_results(
            out_rx,
            &kms,
            &tags,
            &args.out_dir,
            profile,
            &mut manifest,
            &mut progress,
            &mut summary,
        )?;
        match reader.join() {
            Ok(result) => result?,
            Err(_) => bail!("the CSV reader stopped unexpectedly"),
        }
        Ok(())
    })?;
    progress.finish();

    report(ctx.printer, &summary, &batch, &manifest_path)
}

#[derive(Default)]
struct Summary {
    minted: u64,
    recovered: u64,
    skipped: u64,
    failures: Vec<(u64, String, String)>,
}

/// Prints the outcome; fails (exit 1, already explained) when any row failed.
fn report(printer: Printer, summary: &Summary, batch: &str, manifest_path: &Path) -> Result<()> {
    for (line, email, reason) in &summary.failures {
        printer.warn(&format!("line {line} ({email}): {reason}"));
    }
    let human = format!(
        "minted {}, recovered {}, already done {}, failed {}; manifest: {}",
        summary.minted,
        summary.recovered,
        summary.skipped,
        summary.failures.len(),
        manifest_path.display()
    );
    printer.print(
        human,
        &json!({
            "batch_id": batch,
            "minted": summary.minted,
            "recovered": summary.recovered,
            "already_done": summary.skipped,
            "failed": summary.failures.iter().map(|(line, email, reason)| json!({"line": line, "email": email, "reason": reason})).collect::<Vec<_>>(),
            "manifest": manifest_path,
        }),
    )?;
    if summary.failures.is_empty() {
        Ok(())
    } else {
        Err(crate::Rejected.into())
    }
}

/// Minting in this process with the embedded issuer, or on the server; and how many users
/// to have in flight by default.
fn engine<'a>(
    ctx: &Ctx,
    args: &CertifyBatchArgs,
    kms: &'a Kms,
    tags: &[String],
) -> Result<(Engine<'a>, usize)> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    if let Some(minter) = kms.local_minter(
        &crate::mint::issuer_ref(&args.issuer),
        &crate::mint::mint_profile(&args.profile)?,
    )? {
        for warning in &minter.warnings {
            ctx.printer.warn(warning);
        }
        let chain = minter.chain();
        return Ok((
            Engine::Local {
                minter: Box::new(minter),
                chain,
            },
            cores,
        ));
    }
    let issuer = issuer_ref(&args.issuer);
    let issuer_id = issuer
        .private_key_id
        .clone()
        .or_else(|| issuer.certificate_id.clone())
        .context("give the issuer with -k/--issuer-private-key-id or --issuer-certificate-id")?;
    // Fail once, before the first row, when the issuer is not there for us.
    kms.attributes(&issuer_id)
        .with_context(|| format!("cannot use `{issuer_id}` as the issuer"))?;
    // The server mints; keep enough requests in flight to keep its cores busy.
    let engine = Engine::Remote {
        kms,
        issuer,
        profile: Box::new(mint_profile(&args.profile)?),
        tags: tags.to_vec(),
        legacy: args.legacy,
    };
    Ok((engine, cores * 2))
}

/// Where the workers mint: in this process with the embedded issuer, or on the server.
enum Engine<'a> {
    Local {
        minter: Box<Minter>,
        chain: Vec<openssl::x509::X509>,
    },
    Remote {
        kms: &'a Kms,
        issuer: IssuerRef,
        profile: Box<MintProfile>,
        tags: Vec<String>,
        legacy: bool,
    },
}

/// Has the server mint, store (with the batch and user tags) and export one user.
fn certify_remote(engine: &Engine<'_>, job: Job) -> Result<Outcome, (Job, anyhow::Error)> {
    let Engine::Remote {
        kms,
        issuer,
        profile,
        tags,
        legacy,
    } = engine
    else {
        return Err((job, anyhow::anyhow!("not a remote engine")));
    };
    let mut user_tags = tags.clone();
    user_tags.push(email_tag(&job.email));
    let body = CertifyBody {
        issuer: issuer.clone(),
        profile: profile.as_ref().clone(),
        subject: Some(job.subject.to_string()),
        email: Some(job.email.to_string()),
        key: KeySource::Generate,
        id: None,
        tags: user_tags,
    };
    let reply = match kms.certify(&body) {
        Ok(reply) => reply,
        Err(e) => return Err((job, e.into())),
    };
    let exported = kms.export(
        &reply.unique_identifier,
        &ExportBody {
            format: mailpki_kms::api::ExportFormat::Pkcs12,
            password: Some(mailpki_kms::api::secret(job.password.expose_secret())),
            legacy: *legacy,
        },
    );
    let pkcs12 = match exported {
        Ok(p) => p,
        Err(e) => return Err((job, e.into())),
    };
    Ok(Outcome::Stored {
        entry: ManifestEntry {
            certificate_id: reply.unique_identifier,
            private_key_id: reply.private_key.unwrap_or_default(),
            serial: reply.serial_number,
            not_after: reply.not_after,
        },
        job,
        pkcs12,
    })
}

fn worker(
    rx: &Mutex<Receiver<Job>>,
    tx: &SyncSender<Outcome>,
    engine: &Engine<'_>,
    profile: Pkcs12Profile,
) {
    loop {
        // Hold the lock only to take a job, not while minting.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = match engine {
            Engine::Local { minter, chain } => match mint_one(minter, chain, profile, &job) {
                Ok((minted, pkcs12)) => Ok(Outcome::Minted {
                    job,
                    minted: Box::new(minted),
                    pkcs12,
                }),
                Err(e) => Err((job, e)),
            },
            Engine::Remote { .. } => certify_remote(engine, job),
        };
        let outcome = result.unwrap_or_else(|(job, e)| Outcome::Failed {
            line: job.line,
            email: job.email.to_string(),
            reason: format!("{e:#}"),
        });
        if tx.send(outcome).is_err() {
            return;
        }
    }
}

fn mint_one(
    minter: &Minter,
    chain: &[openssl::x509::X509],
    profile: Pkcs12Profile,
    job: &Job,
) -> Result<(crate::mint::Minted, Vec<u8>)> {
    let minted = minter.mint(&job.subject, KeyChoice::Generate, Some(&job.email))?;
    let key = minted.key.as_ref().context("no key was generated")?;
    let pkcs12 = build_pkcs12(
        &minted.certificate,
        key,
        chain,
        &job.password,
        profile,
        job.email.as_str(),
    )?;
    Ok((minted, pkcs12))
}

/// A row that cannot be minted: (line, email as written, reason).
type RowError = (u64, String, String);

/// Checks one CSV record. `Ok(None)` for the header and empty rows.
fn parse_row(
    record: &csv::StringRecord,
    index: usize,
    default_password: Option<&SecretString>,
    seen: &mut HashMap<String, u64>,
) -> Result<Option<Job>, RowError> {
    let line = record
        .position()
        .map_or(index as u64 + 1, csv::Position::line);
    let field = |i: usize| record.get(i).filter(|f| !f.is_empty());
    let Some(raw_email) = field(0)
        .map(crate::bulk::strip_bom)
        .filter(|f| !f.is_empty())
    else {
        return Ok(None);
    };
    if index == 0 && raw_email.eq_ignore_ascii_case("email") {
        return Ok(None);
    }
    let fail = |reason: String| (line, raw_email.to_owned(), reason);
    let email: EmailAddress = raw_email
        .parse()
        .map_err(|e: mailpki_issuance::IssuanceError| fail(e.to_string()))?;
    if let Some(first) = seen.insert(email.normalized(), line) {
        return Err(fail(format!(
            "duplicate row: {email} is already on line {first}"
        )));
    }
    let subject = match field(1) {
        Some(text) => text
            .parse::<SubjectName>()
            .map_err(|e| fail(e.to_string()))?,
        None => SubjectName::mailbox(&email),
    };
    let Some(password) = field(2)
        .map(|p| SecretString::from(p.to_owned()))
        .or_else(|| default_password.cloned())
    else {
        return Err(fail(
            "no PKCS#12 password: give --pkcs12-password or a third column".to_owned(),
        ));
    };
    Ok(Some(Job {
        line,
        email,
        subject,
        password,
    }))
}

/// Streams the CSV: checks rows, skips finished users, routes users the store already has to
/// recovery and the rest to the workers.
#[allow(clippy::too_many_arguments)]
fn read_rows(
    csv_path: &Path,
    default_password: Option<&SecretString>,
    done: &HashMap<String, String>,
    kms: &Kms,
    batch: &str,
    jobs: &SyncSender<Job>,
    outcomes: &SyncSender<Outcome>,
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_path(csv_path)
        .with_context(|| format!("cannot read {}", csv_path.display()))?;
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let parsed = match record {
            Ok(record) => parse_row(&record, index, default_password, &mut seen),
            Err(e) => {
                let line = e.position().map_or(index as u64 + 1, csv::Position::line);
                Err((line, String::new(), format!("malformed CSV: {e}")))
            }
        };
        let sent = match parsed {
            Ok(None) => true,
            Ok(Some(job)) if done.contains_key(job.email.as_str()) => true,
            Ok(Some(job)) => {
                let existing = kms.find_by_tags(&[batch_tag(batch), email_tag(&job.email)])?;
                let certificate = existing.into_iter().find(|id| {
                    kms.attributes(id)
                        .is_ok_and(|a| a.object_type == mailpki_store::ObjectType::Certificate)
                });
                match certificate {
                    Some(certificate_id) => outcomes
                        .send(Outcome::Recover {
                            job,
                            certificate_id,
                        })
                        .is_ok(),
                    None => jobs.send(job).is_ok(),
                }
            }
            Err((line, email, reason)) => outcomes
                .send(Outcome::Failed {
                    line,
                    email,
                    reason,
                })
                .is_ok(),
        };
        // The writer stopped (it failed): nothing more to do.
        if !sent {
            break;
        }
    }
    Ok(())
}

struct ManifestEntry {
    certificate_id: String,
    private_key_id: String,
    serial: String,
    not_after: String,
}

/// Writes a user's PKCS#12, then records the user as done.
fn finish_user(
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

/// The single writer: stores, writes files and the manifest, in the order results arrive.
#[allow(clippy::too_many_arguments)]
fn write_results(
    outcomes: Receiver<Outcome>,
    kms: &Kms,
    tags: &[String],
    out_dir: &Path,
    profile: Pkcs12Profile,
    manifest: &mut Manifest,
    progress: &mut Progress,
    summary: &mut Summary,
) -> Result<()> {
    for outcome in outcomes {
        match outcome {
            Outcome::Failed {
                line,
                email,
                reason,
            } => {
                summary.failures.push((line, email, reason));
                progress.tick(crate::progress::Tick::Failed);
            }
            Outcome::Minted {
                job,
                minted,
                pkcs12,
            } => {
                let mut user_tags = tags.to_vec();
                user_tags.push(email_tag(&job.email));
                let report = kms.store_minted(&minted, &user_tags)?;
                crate::failpoint::hit("certify-batch-after-commit");
                let info = certificate_info(&minted.certificate)?;
                let entry = ManifestEntry {
                    certificate_id: report.certificate.unwrap_or_default(),
                    private_key_id: report.private_key.unwrap_or_default(),
                    serial: info.serial,
                    not_after: rfc3339(info.not_after),
                };
                finish_user(out_dir, manifest, &job, &entry, &pkcs12)?;
                summary.minted += 1;
                progress.tick(crate::progress::Tick::Done);
            }
            Outcome::Stored { job, entry, pkcs12 } => {
                crate::failpoint::hit("certify-batch-after-commit");
                finish_user(out_dir, manifest, &job, &entry, &pkcs12)?;
                summary.minted += 1;
                progress.tick(crate::progress::Tick::Done);
            }
            Outcome::Recover {
                job,
                certificate_id,
            } => {
                let pkcs12 = kms.export(
                    &certificate_id,
                    &ExportBody {
                        format: mailpki_kms::api::ExportFormat::Pkcs12,
                        password: Some(mailpki_kms::api::secret(job.password.expose_secret())),
                        legacy: profile == Pkcs12Profile::Legacy,
                    },
                )?;
                let attrs = kms.attributes(&certificate_id)?;
                let entry = ManifestEntry {
                    private_key_id: attrs
                        .links
                        .get(&mailpki_store::LinkType::PrivateKeyLink)
                        .cloned()
                        .unwrap_or_default(),
                    serial: attrs.certificate_serial_number.unwrap_or_default(),
                    not_after: attrs.certificate_not_after.unwrap_or_default(),
                    certificate_id,
                };
                finish_user(out_dir, manifest, &job, &entry, &pkcs12)?;
                summary.recovered += 1;
                progress.tick(crate::progress::Tick::Done);
            }
        }
    }
    Ok(())
}
