//! One function per subcommand; each resolves its arguments, calls library APIs and prints
//! through the [`Printer`].

mod config;
mod emulator;
mod google;
mod kacls;
pub(crate) mod kms;
mod report;
mod server;

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use mailpki_kms::{Kms, RemoteKms};
use mailpki_store::{Store, StoreError};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::args::{Cli, Command, KmsCommand, ObjectSelector, PasswordArgs};
use crate::config::Settings;
use crate::output::Printer;

/// What every command gets: the settings and a printer. The store is opened on demand, so
/// commands that do not need it never create one.
pub(crate) struct Ctx {
    pub(crate) settings: Settings,
    pub(crate) printer: Printer,
}

impl Ctx {
    /// Where key-management requests go: the KMS server when one is configured, else the
    /// embedded store acting as the configured user.
    pub(crate) fn kms(&self) -> Result<Kms> {
        if let Some(url) = &self.settings.kms_url {
            let token = self.settings.kms_token()?;
            let ca = match &self.settings.kms_server_ca {
                Some(path) => Some(crate::files::read(path)?.to_vec()),
                None => None,
            };
            return Ok(Kms::remote(RemoteKms::new(url, token, ca.as_deref())?));
        }
        let actor = self.settings.actor()?;
        let store = Store::open_at(
            &self.settings.database,
            &self.settings.master_key,
            &mailpki_store::PoolOptions::default(),
        )
        .with_context(|| format!("cannot open the store {}", self.settings.database))?
        .with_hsm(self.settings.hsm.clone());
        Ok(Kms::embedded(store, actor, self.settings.issuance.clone()))
    }
}

impl Ctx {
    /// The key service's URL: the flag (or `MAILPKI_KACLS_URL`, through clap), else
    /// `[google] kacls_url`.
    pub(crate) fn kacls_url(&self, flag: Option<&String>) -> Result<String> {
        flag.or(self.settings.google.kacls_url.as_ref())
            .cloned()
            .context(
                "no key service URL: pass --kacls-url, set MAILPKI_KACLS_URL or [google] kacls_url",
            )
    }
}

pub(crate) fn run(cli: Cli) -> Result<()> {
    let settings = Settings::resolve(&cli.global)?;
    let ctx = Ctx {
        settings,
        printer: Printer {
            json: cli.global.json,
        },
    };
    match cli.command {
        Command::Kms(KmsCommand::Google(command)) | Command::Google(command) => {
            google::run(&ctx, command)
        }
        Command::Kms(command) => kms::run(&ctx, command),
        Command::Emulator(crate::args::EmulatorCommand::Serve(args)) => {
            emulator::serve(&ctx, &args)
        }
        Command::Server(command) => server::run(&ctx, command),
        Command::Kacls(command) => kacls::run(&ctx, command),
        Command::Report(crate::args::ReportCommand::Expiry(args)) => report::expiry(&ctx, &args),
        Command::Config => config::show(&ctx),
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "mailpki", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(e).context("cannot write the completion script")
                }
                _ => Ok(()),
            }
        }
        Command::Man { out_dir } => man_pages(&ctx, &out_dir),
    }
}

/// Runs async workflow and client code from the synchronous commands. Multi-threaded: the
/// workflows run blocking store calls in `block_in_place`.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// `mailpki man`: one page per command, as clap_mangen renders the `--help` text.
fn man_pages(ctx: &Ctx, out_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let command = <Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(command, out_dir)
        .with_context(|| format!("cannot write the man pages into {}", out_dir.display()))?;
    let count = std::fs::read_dir(out_dir)?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
        .count();
    ctx.printer.print(
        format!("wrote {count} man pages into {}", out_dir.display()),
        &serde_json::json!({"man_pages": count, "out_dir": out_dir}),
    )
}

/// Signs a new CRL of the issuer whose private key is `issuer_key` and writes it to `out`
/// (default `<issuer certificate ID>.crl`), DER or PEM; returns what the KMS said and where.
pub(crate) fn write_crl(
    ctx: &Ctx,
    issuer_key: &str,
    days: u32,
    out: Option<&Path>,
    pem: bool,
) -> Result<(mailpki_kms::api::CrlReply, std::path::PathBuf)> {
    use base64::Engine as _;
    let reply = ctx
        .kms()?
        .crl(&mailpki_kms::api::CrlBody {
            issuer_private_key_id: issuer_key.to_owned(),
            days: Some(days),
        })
        .context("cannot make the CRL")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&reply.crl)
        .context("the CRL is not base64")?;
    let data = if pem {
        openssl::x509::X509Crl::from_der(&der)?.to_pem()?
    } else {
        der
    };
    let out = out.map_or_else(
        || std::path::PathBuf::from(format!("{}.crl", reply.issuer)),
        Path::to_path_buf,
    );
    // Public material: a normal file, replaced whole.
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, &data)
        .and_then(|()| std::fs::rename(&tmp, &out))
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok((reply, out))
}

/// The Gmail client: key file from the flag, environment or `[google] service_account_key`;
/// API URL from the flag, `MAILPKI_GMAIL_API_URL` or `[google] api_url`.
pub(crate) fn gmail_client(
    ctx: &Ctx,
    args: &crate::args::GoogleArgs,
) -> Result<mailpki_gmail::GmailClient> {
    let settings = &ctx.settings.google;
    let key_path = match (&args.service_account_key, &settings.service_account_key) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => crate::config::expand(path)?,
        (None, None) => anyhow::bail!(
            "no service account key: pass --service-account-key, set MAILPKI_SERVICE_ACCOUNT_KEY or [google] service_account_key"
        ),
    };
    let key = mailpki_gmail::ServiceAccountKey::from_file(&key_path)?;
    let http = mailpki_gmail::GmailClient::http_client()?;
    let tokens = std::sync::Arc::new(mailpki_gmail::TokenSource::new(key, http.clone())?);
    let url = args
        .api_url
        .clone()
        .or_else(|| settings.api_url.clone())
        .unwrap_or_else(|| mailpki_gmail::DEFAULT_API_URL.to_owned());
    Ok(mailpki_gmail::GmailClient::new(&url, tokens, http))
}

/// Reads a password from the flag, the environment (through clap) or a file.
pub(crate) fn read_password(args: &PasswordArgs) -> Result<Option<SecretString>> {
    if let Some(password) = &args.password {
        return Ok(Some(SecretString::from(password.clone())));
    }
    let Some(path) = &args.password_file else {
        return Ok(None);
    };
    let text = crate::files::read_text(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    crate::files::warn_if_readable_by_others(path, "password");
    let line = text.lines().next().unwrap_or_default();
    Ok(Some(SecretString::from(line.to_owned())))
}

/// Without a password given, a PKCS#12 that does not open with the empty password: the password is asked
/// for on a terminal (not echoed), and said to be missing elsewhere, rather than "wrong".
pub(crate) fn ask_if_protected(file: &Path, data: &[u8]) -> Result<Option<SecretString>> {
    let opened = mailpki_store::parse_bundle(mailpki_store::ImportFormat::Pkcs12, data, None);
    if !matches!(
        opened,
        Err(StoreError::WrongPassword | StoreError::PasswordRequired { .. })
    ) {
        // It opens without one, or is broken in a way the import will report.
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "{} is protected by a password: give it with -p, --password-file or MAILPKI_PKCS12_PASSWORD",
            file.display()
        );
    }
    let password = rpassword::prompt_password(format!("password of {}: ", file.display()))
        .context("cannot read the password from the terminal")?;
    Ok(Some(SecretString::from(password)))
}

/// Turns `-i ID` or `-t TAG...` into one object ID.
pub(crate) fn select(kms: &Kms, selector: &ObjectSelector) -> Result<String> {
    if let Some(id) = &selector.id {
        return Ok(id.clone());
    }
    let ids = kms.find_by_tags(&selector.tags)?;
    match ids.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no object carries the tags {:?}", selector.tags),
        many => bail!(
            "{} objects carry the tags {:?}: {}; pick one with -i",
            many.len(),
            selector.tags,
            many.join(", ")
        ),
    }
}

/// Parses an optional flag's value, naming the flag when it is wrong.
pub(crate) fn parse_flag<T>(value: Option<&str>, flag: &str) -> Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    value
        .map(str::parse)
        .transpose()
        .with_context(|| format!("invalid {flag}"))
}

/// Reads an input file with an error that names it.
pub(crate) fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    crate::files::read(path)
}
