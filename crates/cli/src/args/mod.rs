//! Command-line arguments. Doc comments here are the `--help` text; environment variables
//! are declared once, here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod google;
mod kms;

pub(crate) use google::{
    GoogleArgs, GoogleCommand, IdentitiesCommand, IdentityArgs, IdentityEmailArgs,
    KeyPairCreateArgs, KeyPairIdArgs, KeyPairsCommand, OffboardArgs, OnboardArgs, SendAsCommand,
    SmimeAddressArgs, SmimeCommand, SmimeIdArgs, SmimeImportArgs, SmimeInsertArgs, SmimeRotateArgs,
    UserArgs,
};
pub(crate) use kms::{
    AccessRightsCommand, AttributesCommand, AttributesGetArgs, CertificatesCommand, CertifyArgs,
    CertifyBatchArgs, CrlCommand, CrlCreateArgs, DestroyArgs, ExportArgs, ExportFormatArg,
    GrantArgs, ImportArgs, ImportFormatArg, ImportHsmArgs, IssuerArgs, KeysCommand, KmsCommand,
    LintArgs, ListArgs, MasterKeyCommand, ObjectSelector, PasswordArgs, ProfileArgs, RevokeArgs,
    SymAlgorithm, SymCommand, SymCreateArgs, SymKeysCommand,
};

#[derive(Debug, Parser)]
#[command(
    name = "mailpki",
    version,
    about = "Gmail S/MIME and client-side encryption from your own certificate authority",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Configuration file [default: ~/.config/mailpki/config.toml]
    #[arg(long, global = true, env = "MAILPKI_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// SQLite store file [default: ~/.local/share/mailpki/kms.sqlite]
    #[arg(long, global = true, env = "MAILPKI_DATABASE", value_name = "FILE")]
    pub(crate) database: Option<PathBuf>,

    /// Master key file (base64, 32 bytes) [default: master.key beside the store]
    #[arg(
        long,
        global = true,
        env = "MAILPKI_MASTER_KEY_FILE",
        value_name = "FILE"
    )]
    pub(crate) master_key_file: Option<PathBuf>,

    /// Send key-management requests to this `mailpki server` instead of the embedded store
    #[arg(long, global = true, env = "MAILPKI_KMS_URL", value_name = "URL")]
    pub(crate) kms_url: Option<String>,

    /// Act as this user (embedded store) [default: the OS user]
    #[arg(long, global = true, env = "MAILPKI_USER", value_name = "NAME")]
    pub(crate) user: Option<String>,

    /// Print machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG also works
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The key store: certificates, keys, attributes and access rights
    #[command(subcommand)]
    Kms(KmsCommand),
    /// Gmail: CSE key pairs and identities
    #[command(subcommand)]
    Google(GoogleCommand),
    /// A local Gmail API emulator for tests and CI
    #[command(subcommand)]
    Emulator(EmulatorCommand),
    /// The KMS server for a team of administrators: serve, API tokens, audit log
    #[command(subcommand)]
    Server(ServerCommand),
    /// The CSE key access control list service (KACLS): status and a round-trip self test
    #[command(subcommand)]
    Kacls(KaclsCommand),
    /// Reports over the store (and Gmail): certificates expiring, expired, revoked
    #[command(subcommand)]
    Report(ReportCommand),
    /// Print the resolved configuration
    Config,
    /// Print a shell completion script (e.g. `mailpki completions bash > ~/.local/share/bash-completion/completions/mailpki`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (mailpki.1 and one per subcommand) into a folder
    Man {
        /// Where to write them (created if missing)
        #[arg(long, value_name = "DIR", default_value = "man")]
        out_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Every user certificate per issuer and user: expired, expiring, revoked or valid, and
    /// with --gmail where it is in Gmail (and what Gmail holds that the store does not)
    Expiry(ExpiryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ExpiryArgs {
    /// Certificates ending within this many days are `expiring`
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub(crate) within: u32,

    /// Look in Gmail too (CSE key pairs, hosted S/MIME) for every user found
    #[arg(long)]
    pub(crate) gmail: bool,

    /// More users to look up in Gmail, one per CSV line (with --gmail)
    #[arg(long, value_name = "FILE", requires = "gmail")]
    pub(crate) users: Option<PathBuf>,

    /// `table` for people, `csv` for spreadsheets (`--json` for scripts)
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: ReportFormat,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ReportFormat {
    Table,
    Csv,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EmulatorCommand {
    /// Serve the Gmail API emulator until interrupted; prints its URL first
    Serve(EmulatorServeArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum KaclsCommand {
    /// The key service's status (no token needed)
    Status {
        /// The key service URL [default: [google] kacls_url]
        #[arg(long, value_name = "URL", env = "MAILPKI_KACLS_URL")]
        kacls_url: Option<String>,
    },
    /// Sign and decrypt once with a user's key pair, as Gmail would, and check both
    Selftest(KaclsSelftestArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KaclsSelftestArgs {
    /// The user's certificate (PEM): the key pair's `pem` as Gmail lists it
    #[arg(long, value_name = "FILE")]
    pub(crate) certificate: PathBuf,

    /// The wrapped private key: the key pair's `kaclsData` (what --dry-run writes)
    #[arg(long, value_name = "FILE")]
    pub(crate) wrapped_key: PathBuf,

    /// File with the user's authentication JWT from your identity provider
    #[arg(long, value_name = "FILE")]
    pub(crate) authentication: PathBuf,

    /// File with an authorization JWT for the role `signer`
    #[arg(long, value_name = "FILE")]
    pub(crate) signer_authorization: PathBuf,

    /// File with an authorization JWT for the role `decrypter`
    #[arg(long, value_name = "FILE")]
    pub(crate) decrypter_authorization: PathBuf,

    /// The key service URL [default: [google] kacls_url]
    #[arg(long, value_name = "URL", env = "MAILPKI_KACLS_URL")]
    pub(crate) kacls_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServerCommand {
    /// Serve the store over HTTPS ([server] in the configuration) until interrupted
    Serve(ServerServeArgs),
    /// API tokens for scripts (server admins; on the server's host, straight on the database)
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read the audit log, newest first (server admins)
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServerServeArgs {
    /// Address to listen on, overriding [server] listen (port 0 picks a free port)
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token acting as USER; the secret is printed once
    Create {
        user: String,
        /// Expire the token after this many days [default: never]
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token by ID
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only this user's actions
    #[arg(long, value_name = "USER")]
    pub(crate) actor: Option<String>,
    /// Only actions on this object
    #[arg(long, value_name = "ID")]
    pub(crate) object: Option<String>,
    /// At most this many entries
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
}

#[derive(Debug, Args)]
pub(crate) struct EmulatorServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8025")]
    pub(crate) addr: String,

    /// Keep the tenant (users, key pairs, identities) in this file across restarts
    #[arg(long, value_name = "FILE")]
    pub(crate) state: Option<PathBuf>,

    /// Trust this root certificate (PEM) for S/MIME, as an admin uploads it to Google (repeatable)
    #[arg(long = "trusted-ca", value_name = "PEM")]
    pub(crate) trusted_cas: Vec<PathBuf>,

    /// Create this user with CSE enabled (repeatable)
    #[arg(long = "user-email", value_name = "EMAIL")]
    pub(crate) users: Vec<String>,

    /// Register a service account and write its key file here (mode 0600)
    #[arg(long, value_name = "FILE")]
    pub(crate) write_service_account: Option<PathBuf>,

    /// Calls per second per user before 429 (0: unlimited)
    #[arg(long, default_value_t = 0.0)]
    pub(crate) user_rate: f64,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}
