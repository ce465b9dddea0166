//! Command-line arguments. Doc comments here are the `--help` text; environment variables
//! are declared once, here.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use mailpki_store::Operation;

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
    /// Print the resolved configuration
    Config,
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
        #[arg(long, value_name = "URL")]
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
    #[arg(long, value_name = "URL")]
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

/// How to reach Gmail.
#[derive(Debug, Args)]
pub(crate) struct GoogleArgs {
    /// The service account's JSON key file [default: [google] service_account_key]
    #[arg(long, env = "MAILPKI_SERVICE_ACCOUNT_KEY", value_name = "FILE")]
    pub(crate) service_account_key: Option<PathBuf>,

    /// The Gmail API base URL [default: [google] api_url, else https://gmail.googleapis.com]
    #[arg(long, env = "MAILPKI_GMAIL_API_URL", value_name = "URL")]
    pub(crate) api_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum GoogleCommand {
    /// CSE key pairs: a certificate chain and the private key wrapped for the key service
    #[command(subcommand)]
    KeyPairs(Box<KeyPairsCommand>),
    /// CSE identities: which key pair a user signs and decrypts with
    #[command(subcommand)]
    Identities(IdentitiesCommand),
    /// Hosted S/MIME certificates of a user's send-as addresses
    #[command(subcommand)]
    Smime(SmimeCommand),
    /// A user's send-as addresses (primary and aliases)
    #[command(subcommand)]
    SendAs(SendAsCommand),
    /// Onboard every user of a CSV to CSE: mint, key pair, identity; resumable
    Onboard(Box<OnboardArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct OnboardArgs {
    /// CSV of users, one per line: `email[,subject]`; a header line is optional
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: PathBuf,

    /// The symmetric key in the store that wraps private keys for the key service
    #[arg(long, value_name = "ID")]
    pub(crate) cse_key_id: String,

    /// The issuer's private key ID
    #[arg(short = 'i', long, value_name = "ID")]
    pub(crate) issuer_private_key_id: String,

    /// Extensions of the minted certificates [default: the built-in profile]
    #[arg(long, value_name = "FILE")]
    pub(crate) leaf_certificate_extensions: Option<PathBuf>,

    /// Validity of the minted certificates in days [default: 365]
    #[arg(long)]
    pub(crate) days: Option<u32>,

    /// The key service URL written into the key pairs [default: [google] kacls_url]
    #[arg(long, value_name = "URL")]
    pub(crate) kacls_url: Option<String>,

    /// Users in flight at once
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,

    /// Write one row per user (outcome, IDs, reason) to this file: .json, else CSV
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,

    /// Name of this run: a re-run with the same name resumes it [default: from the CSV path]
    #[arg(long, value_name = "NAME")]
    pub(crate) batch_id: Option<String>,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SendAsCommand {
    /// List the send-as addresses
    List(UserArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SmimeCommand {
    /// Upload a certificate with its private key (linted first); prints its ID
    Insert(SmimeInsertArgs),
    /// List the certificates of an address
    List(SmimeAddressArgs),
    /// Show one certificate
    Get(SmimeIdArgs),
    /// Delete one certificate
    Delete(SmimeIdArgs),
    /// Make one certificate the address's default
    SetDefault(SmimeIdArgs),
    /// Upload certificates for every row of a CSV: `user,p12path,password[,alias]`
    ImportCsv(Box<SmimeImportArgs>),
    /// Keep a valid default certificate for every user of a CSV, uploading new ones as needed
    Rotate(Box<SmimeRotateArgs>),
}

/// Options of the bulk S/MIME commands.
#[derive(Debug, Args)]
pub(crate) struct BulkArgs {
    /// Users in flight at once
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,

    /// Write one row per user (outcome, IDs, reason) to this file: .json, else CSV
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SmimeImportArgs {
    /// The CSV: `user,p12path,password[,alias]` per line (Google's sample format), header optional
    pub(crate) csv: PathBuf,

    /// Make each uploaded certificate its address's default
    #[arg(long)]
    pub(crate) set_default: bool,

    #[command(flatten)]
    pub(crate) bulk: BulkArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SmimeRotateArgs {
    /// The CSV: `user[,p12path,password][,alias]` per line, header optional
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: PathBuf,

    /// A default expiring within this many days is replaced
    #[arg(long, default_value_t = 30)]
    pub(crate) threshold_days: u32,

    /// Mint new certificates with this issuer private key (else the CSV's PKCS#12 files)
    #[arg(short = 'i', long, value_name = "ID")]
    pub(crate) issuer_private_key_id: Option<String>,

    /// Validity of minted certificates in days [default: 365]
    #[arg(long)]
    pub(crate) days: Option<u32>,

    /// Show what would change, change nothing
    #[arg(long)]
    pub(crate) dry_run: bool,

    #[command(flatten)]
    pub(crate) bulk: BulkArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SmimeAddressArgs {
    /// The user (primary address)
    #[arg(short, long, value_name = "EMAIL")]
    pub(crate) user_id: String,

    /// The send-as address [default: the user]
    #[arg(long, value_name = "EMAIL")]
    pub(crate) send_as: Option<String>,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SmimeIdArgs {
    /// The smimeInfo ID
    pub(crate) id: String,

    #[command(flatten)]
    pub(crate) address: SmimeAddressArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["pkcs12_file", "certificate_id"])))]
pub(crate) struct SmimeInsertArgs {
    #[command(flatten)]
    pub(crate) address: SmimeAddressArgs,

    /// The PKCS#12 to upload (certificate, key and chain)
    #[arg(long, value_name = "FILE", requires = "pkcs12_password")]
    pub(crate) pkcs12_file: Option<PathBuf>,

    /// Its password
    #[arg(
        long,
        env = "MAILPKI_PKCS12_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub(crate) pkcs12_password: Option<String>,

    /// Upload this stored certificate with its private key and chain
    #[arg(long, value_name = "ID")]
    pub(crate) certificate_id: Option<String>,

    /// Make it the address's default certificate
    #[arg(long)]
    pub(crate) set_default: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyPairsCommand {
    /// Mint (or take) the user's certificate, wrap its key, upload the key pair; prints its ID
    Create(Box<KeyPairCreateArgs>),
    /// A new key pair for the user (new certificate, key wrapped under --cse-key-id), the
    /// identity pointed at it, the other key pairs disabled: CSE key and user key rotation
    Rotate(Box<KeyPairCreateArgs>),
    /// Show a key pair
    Get(KeyPairIdArgs),
    /// List a user's key pairs (every page)
    List(UserArgs),
    /// Enable a key pair
    Enable(KeyPairIdArgs),
    /// Disable a key pair
    Disable(KeyPairIdArgs),
    /// Delete a key pair for good (only after 30 days disabled)
    Obliterate(KeyPairIdArgs),
}

#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    /// The user (primary address)
    #[arg(short, long, value_name = "EMAIL")]
    pub(crate) user_id: String,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,

    /// Results per page when listing
    #[arg(long)]
    pub(crate) page_size: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct KeyPairIdArgs {
    /// The key pair's ID
    pub(crate) key_pair_id: String,

    /// The user (primary address)
    #[arg(short, long, value_name = "EMAIL")]
    pub(crate) user_id: String,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

/// Where the user's certificate comes from: minted now, or existing.
// The field names are Cosmian's flag names, kept so their users' scripts work unchanged.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("leaf").args(["leaf_certificate_id", "leaf_certificate_pkcs12_file"])))]
pub(crate) struct LeafSourceArgs {
    /// Use this stored certificate (and its linked private key) instead of minting
    #[arg(long, value_name = "ID")]
    pub(crate) leaf_certificate_id: Option<String>,

    /// Use the certificate and key of this PKCS#12 file instead of minting
    #[arg(
        long,
        value_name = "FILE",
        requires = "leaf_certificate_pkcs12_password"
    )]
    pub(crate) leaf_certificate_pkcs12_file: Option<PathBuf>,

    /// Password of --leaf-certificate-pkcs12-file
    #[arg(long, value_name = "PASSWORD")]
    pub(crate) leaf_certificate_pkcs12_password: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KeyPairCreateArgs {
    /// The user (primary address)
    pub(crate) user_id: String,

    /// The symmetric key in the store that wraps the private key for the key service
    #[arg(long, value_name = "ID")]
    pub(crate) cse_key_id: String,

    /// Subject of the minted certificate [default: CN=<user>, emailAddress=<user>]
    #[arg(long, value_name = "SUBJECT")]
    pub(crate) subject_name: Option<String>,

    /// The issuer's private key ID, to mint the certificate
    #[arg(short = 'i', long, value_name = "ID", conflicts_with_all = ["leaf_certificate_id", "leaf_certificate_pkcs12_file"])]
    pub(crate) issuer_private_key_id: Option<String>,

    /// Extensions of the minted certificate (openssl -extfile syntax) [default: the built-in profile]
    #[arg(long, value_name = "FILE")]
    pub(crate) leaf_certificate_extensions: Option<PathBuf>,

    /// Certify this stored RSA private key instead of generating one
    #[arg(long, value_name = "ID")]
    pub(crate) rsa_private_key_id: Option<String>,

    /// Validity of the minted certificate in days [default: 365]
    #[arg(long)]
    pub(crate) days: Option<u32>,

    #[command(flatten)]
    pub(crate) leaf: LeafSourceArgs,

    /// The key service URL written into the key pair [default: [google] kacls_url]
    #[arg(long, value_name = "URL")]
    pub(crate) kacls_url: Option<String>,

    /// Before uploading, have the key service sign with the wrapped key and check the
    /// signature against the certificate (uses the KMS token, MAILPKI_KMS_TOKEN)
    #[arg(long)]
    pub(crate) verify_kacls: bool,

    /// What Gmail checks of the uploaded chain: `none` keeps a chain it cannot verify (for
    /// decrypting old mail only; such a key pair cannot back an identity)
    #[arg(long, value_enum, default_value_t = ChainValidationArg::All)]
    pub(crate) chain_validation: ChainValidationArg,

    /// Do everything but the upload; write the PKCS#7 and the wrapped key to --output-dir
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Where --dry-run writes its files
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) output_dir: PathBuf,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

/// Gmail's `chainValidation` on `keypairs.create`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ChainValidationArg {
    All,
    None,
}

impl From<ChainValidationArg> for mailpki_gmail::ChainValidation {
    fn from(arg: ChainValidationArg) -> Self {
        match arg {
            ChainValidationArg::All => Self::All,
            ChainValidationArg::None => Self::None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum IdentitiesCommand {
    /// Bind a user to a key pair (or to a signing and an encryption key pair)
    Insert(IdentityArgs),
    /// Point an identity at other key pairs
    Patch(IdentityArgs),
    /// Show a user's identity
    Get(IdentityEmailArgs),
    /// Delete a user's identity
    Delete(IdentityEmailArgs),
    /// List identities (every page)
    List(UserArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("pairs").required(true).args(["key_pair_id", "signing_key_pair_id"])))]
pub(crate) struct IdentityArgs {
    /// The key pair for both signing and encryption
    pub(crate) key_pair_id: Option<String>,

    /// The user (primary address)
    #[arg(short, long, value_name = "EMAIL")]
    pub(crate) user_id: String,

    /// The key pair for signing (with --encryption-key-pair-id)
    #[arg(long, value_name = "ID", requires = "encryption_key_pair_id")]
    pub(crate) signing_key_pair_id: Option<String>,

    /// The key pair for encryption (with --signing-key-pair-id)
    #[arg(long, value_name = "ID", requires = "signing_key_pair_id")]
    pub(crate) encryption_key_pair_id: Option<String>,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

#[derive(Debug, Args)]
pub(crate) struct IdentityEmailArgs {
    /// The identity's address [default: the user]
    pub(crate) email: Option<String>,

    /// The user (primary address)
    #[arg(short, long, value_name = "EMAIL")]
    pub(crate) user_id: String,

    #[command(flatten)]
    pub(crate) google: GoogleArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KmsCommand {
    /// Import, export, list, revoke and destroy certificates
    #[command(subcommand)]
    Certificates(CertificatesCommand),
    /// Show an object's attributes and links
    #[command(subcommand)]
    Attributes(AttributesCommand),
    /// Share objects with other administrators
    #[command(subcommand)]
    AccessRights(AccessRightsCommand),
    /// Symmetric keys (the CSE wrapping key)
    #[command(subcommand)]
    Sym(SymCommand),
    /// Revoke and destroy private and public keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The master key that seals the store's secret keys
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum MasterKeyCommand {
    /// Re-seal every key under a new master key, in one transaction (stop servers first);
    /// afterwards only the new key opens the store
    Rotate {
        /// The new key file: created (mode 0600) if absent, else a base64 key of yours
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ImportFormatArg {
    Pkcs12,
    Pem,
    Der,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ExportFormatArg {
    Pem,
    Der,
    Pkcs12,
    /// The certificate and its chain as PEM PKCS#7, as Gmail CSE key pairs take it
    Pkcs7,
}

/// A password given on the command line, in a file, or through the environment.
#[derive(Debug, Args)]
pub(crate) struct PasswordArgs {
    /// Password of the PKCS#12 file or encrypted key
    #[arg(
        short = 'p',
        long = "pkcs12-password",
        env = "MAILPKI_PKCS12_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        conflicts_with = "password_file"
    )]
    pub(crate) password: Option<String>,

    /// Read the password from the first line of this file
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertificatesCommand {
    /// Import a certificate, a chain, a key or a PKCS#12 bundle; prints the IDs stored
    Import(ImportArgs),
    /// Export a certificate (PEM, DER, or PKCS#12 with its private key and chain)
    Export(ExportArgs),
    /// List certificates you own or were granted
    List(ListArgs),
    /// Mint a certificate signed by a stored issuer key (new key pair, stored key, or CSR)
    Certify(Box<CertifyArgs>),
    /// Mint certificates for every user of a CSV, in parallel, resumable; PKCS#12 files and a manifest
    CertifyBatch(Box<CertifyBatchArgs>),
    /// Check a certificate against Gmail's rules and the S/MIME Baseline Requirements
    Lint(LintArgs),
    /// Revoke a certificate: it stays readable but is no longer active
    Revoke(RevokeArgs),
    /// Destroy a certificate
    Destroy(DestroyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The file to import
    pub(crate) file: PathBuf,

    /// ID for the imported certificate (or key) [default: a new UUID]
    pub(crate) id: Option<String>,

    /// Format of the file
    #[arg(short, long, value_enum, default_value = "pem")]
    pub(crate) format: ImportFormatArg,

    #[command(flatten)]
    pub(crate) password: PasswordArgs,

    /// Replace an existing object with this ID
    #[arg(short, long)]
    pub(crate) replace: bool,

    /// Tag the imported objects (repeatable)
    #[arg(short, long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
}

/// One object, by ID or by tags.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("object").required(true).args(["id", "tags"])))]
pub(crate) struct ObjectSelector {
    /// The object's ID
    #[arg(
        short = 'i',
        long = "id",
        visible_alias = "certificate-id",
        visible_short_alias = 'c',
        visible_alias = "key-id",
        visible_short_alias = 'k'
    )]
    pub(crate) id: Option<String>,

    /// Select the one object carrying all these tags (repeatable)
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Where to write; created with mode 0600
    pub(crate) file: PathBuf,

    #[command(flatten)]
    pub(crate) object: ObjectSelector,

    /// Output format
    #[arg(short, long, value_enum, default_value = "pem")]
    pub(crate) format: ExportFormatArg,

    #[command(flatten)]
    pub(crate) password: PasswordArgs,

    /// PKCS#12 with 3DES and a SHA-1 MAC, for readers that cannot open the default
    /// AES-256/PBKDF2 files: GnuPG's gpgsm 2.2 (Debian 12) and Windows before Server 2019
    #[arg(long)]
    pub(crate) legacy: bool,

    /// With PEM, append the issuer chain after the certificate
    #[arg(long)]
    pub(crate) chain: bool,

    /// Overwrite FILE if it exists
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only objects carrying all these tags (repeatable)
    #[arg(short, long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,

    /// Only certificates whose subject contains this text (case-insensitive)
    #[arg(long, value_name = "TEXT")]
    pub(crate) subject: Option<String>,

    /// Only certificates expiring within this many days (expired ones included)
    #[arg(long, value_name = "DAYS")]
    pub(crate) expires_within: Option<u32>,

    /// Include destroyed certificates
    #[arg(long)]
    pub(crate) include_destroyed: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// Why (recorded as the revocation reason)
    pub(crate) reason: String,

    #[command(flatten)]
    pub(crate) object: ObjectSelector,

    /// Mark the object compromised rather than deactivated
    #[arg(long)]
    pub(crate) compromised: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    pub(crate) object: ObjectSelector,

    /// Destroy even if live certificates chain to this object
    #[arg(long)]
    pub(crate) force: bool,

    /// Delete the object entirely instead of keeping a destroyed record
    #[arg(long)]
    pub(crate) remove: bool,
}

/// Where the certified public key comes from.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("key_source").required(true).args(["generate_key_pair", "public_key_id_to_certify", "certificate_signing_request"])))]
pub(crate) struct KeySourceArgs {
    /// Generate a new key pair for the certificate
    #[arg(short = 'g', long)]
    pub(crate) generate_key_pair: bool,

    /// Certify this stored public key (or the public half of a stored private key)
    #[arg(long, value_name = "ID")]
    pub(crate) public_key_id_to_certify: Option<String>,

    /// Certify the key of this certificate signing request (PEM or DER)
    #[arg(long, value_name = "FILE")]
    pub(crate) certificate_signing_request: Option<PathBuf>,
}

/// The issuer: its private key ID, or its certificate ID.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("issuer").required(true).args(["issuer_private_key_id", "issuer_certificate_id"])))]
pub(crate) struct IssuerArgs {
    /// The issuer's private key ID (`PrivateKeyLink` of the issuer certificate)
    #[arg(short = 'k', long, value_name = "ID")]
    pub(crate) issuer_private_key_id: Option<String>,

    /// The issuer's certificate ID (its linked private key signs)
    #[arg(long, value_name = "ID")]
    pub(crate) issuer_certificate_id: Option<String>,
}

/// How the certificate's extensions are chosen and checked.
#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    /// Extensions in `openssl x509 -extfile` syntax [default: the built-in Google S/MIME profile]
    #[arg(short = 'e', long, value_name = "FILE")]
    pub(crate) certificate_extensions: Option<PathBuf>,

    /// Section of the extension file to use [default: the first]
    #[arg(long, value_name = "NAME", requires = "certificate_extensions")]
    pub(crate) extensions_section: Option<String>,

    /// Validity in days (at most 825; never beyond the issuer) [default: 365]
    #[arg(short, long)]
    pub(crate) days: Option<u32>,

    /// Key algorithm for a generated key: rsa2048, rsa3072, rsa4096, p256, p384 [default: rsa2048]
    #[arg(short, long, value_name = "ALGORITHM")]
    pub(crate) algorithm: Option<String>,

    /// CRL URL for the built-in profile (repeatable) [default: [issuance] crl_urls, else the issuer's]
    #[arg(long = "crl-url", value_name = "URL")]
    pub(crate) crl_urls: Vec<String>,

    /// CA issuers URL for the built-in profile (repeatable) [default: [issuance] ca_issuers_urls]
    #[arg(long = "ca-issuers-url", value_name = "URL")]
    pub(crate) ca_issuers_urls: Vec<String>,

    /// OCSP URL for the built-in profile (repeatable) [default: [issuance] ocsp_urls]
    #[arg(long = "ocsp-url", value_name = "URL")]
    pub(crate) ocsp_urls: Vec<String>,

    /// Mint even if the result breaks rules Gmail enforces (for private roots that accept it)
    #[arg(long)]
    pub(crate) allow_non_compliant: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CertifyArgs {
    #[command(flatten)]
    pub(crate) key_source: KeySourceArgs,

    #[command(flatten)]
    pub(crate) issuer: IssuerArgs,

    /// Subject, e.g. "CN=user@example.com, emailAddress=user@example.com" [default with a CSR: its subject]
    #[arg(short, long, value_name = "SUBJECT")]
    pub(crate) subject_name: Option<String>,

    /// The user's address, added to subjectAltName (the subject's addresses always are)
    #[arg(long, value_name = "EMAIL")]
    pub(crate) email: Option<String>,

    #[command(flatten)]
    pub(crate) profile: ProfileArgs,

    /// ID for the new certificate [default: a new UUID]
    #[arg(long, value_name = "ID")]
    pub(crate) certificate_id: Option<String>,

    /// Tag the new objects (repeatable)
    #[arg(short, long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CertifyBatchArgs {
    /// CSV of users, one per line: `email[,subject][,pkcs12_password]`; a header line is optional
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: PathBuf,

    #[command(flatten)]
    pub(crate) issuer: IssuerArgs,

    #[command(flatten)]
    pub(crate) profile: ProfileArgs,

    /// Folder for the PKCS#12 files and manifest.csv (created with mode 0700)
    #[arg(long, value_name = "DIR")]
    pub(crate) out_dir: PathBuf,

    /// Password of the PKCS#12 files for rows without one
    #[command(flatten)]
    pub(crate) password: PasswordArgs,

    /// PKCS#12 with 3DES and a SHA-1 MAC, for readers that cannot open the default
    /// AES-256/PBKDF2 files: GnuPG's gpgsm 2.2 (Debian 12) and Windows before Server 2019
    #[arg(long)]
    pub(crate) legacy: bool,

    /// Users minted at once [default: the number of cores]
    #[arg(short, long)]
    pub(crate) jobs: Option<usize>,

    /// Name of this batch: a re-run with the same name resumes it [default: derived from --out-dir]
    #[arg(long, value_name = "NAME")]
    pub(crate) batch_id: Option<String>,

    /// Tag every minted object (repeatable)
    #[arg(short, long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["file", "certificate_id"])))]
pub(crate) struct LintArgs {
    /// A certificate file (PEM or DER); PEM may hold the chain after it
    pub(crate) file: Option<PathBuf>,

    /// Lint a stored certificate, with its stored chain
    #[arg(short = 'c', long, value_name = "ID")]
    pub(crate) certificate_id: Option<String>,

    /// The issuer chain (PEM, issuer first)
    #[arg(long, value_name = "FILE")]
    pub(crate) chain: Option<PathBuf>,

    /// The address the certificate must serve
    #[arg(long, value_name = "EMAIL")]
    pub(crate) email: Option<String>,

    /// Exit 1 on any error, S/MIME BR errors (what pkilint reports) included, not only on
    /// what Gmail rejects
    #[arg(long)]
    pub(crate) strict: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AttributesCommand {
    /// Print an object's attributes and links as JSON
    Get(AttributesGetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AttributesGetArgs {
    #[command(flatten)]
    pub(crate) object: ObjectSelector,

    /// Only these attributes or link types (repeatable), e.g. `-a PrivateKeyLink`
    #[arg(short, long = "attribute", value_name = "NAME")]
    pub(crate) attributes: Vec<String>,

    /// Write the JSON to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccessRightsCommand {
    /// Grant a user operations on an object you own
    Grant(GrantArgs),
    /// Take operations back from a user
    Revoke(GrantArgs),
    /// Who holds which rights on an object you own
    List {
        /// The object's ID
        id: String,
    },
    /// Objects you own
    Owned,
    /// Objects others granted you rights on
    Obtained,
}

#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// The user (`*` for everyone). Named `grantee` because the global `--user` (who acts)
    /// must never be confused with who receives the right.
    #[arg(value_name = "USER")]
    pub(crate) grantee: String,

    /// The object's ID
    #[arg(short = 'i', long = "object-uid", visible_alias = "id")]
    pub(crate) id: String,

    /// Operations: get, get_attributes, export, certify, sign, encrypt, decrypt, revoke, destroy
    #[arg(required = true, value_parser = parse_operation)]
    pub(crate) operations: Vec<Operation>,
}

fn parse_operation(s: &str) -> Result<Operation, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub(crate) enum SymCommand {
    /// Symmetric keys
    #[command(subcommand)]
    Keys(SymKeysCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SymKeysCommand {
    /// Create a random symmetric key; prints its ID
    Create(SymCreateArgs),
    /// Revoke a symmetric key
    Revoke(RevokeArgs),
    /// Destroy a symmetric key
    Destroy(DestroyArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum SymAlgorithm {
    Aes,
}

#[derive(Debug, Args)]
pub(crate) struct SymCreateArgs {
    /// ID for the key [default: a new UUID]
    pub(crate) id: Option<String>,

    /// Algorithm
    #[arg(short, long, value_enum, default_value = "aes")]
    pub(crate) algorithm: SymAlgorithm,

    /// Key length in bits: 128, 192 or 256
    #[arg(short, long, visible_alias = "number-of-bits", default_value_t = 256)]
    pub(crate) length: u32,

    /// Tag the key (repeatable)
    #[arg(short, long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Revoke a private or public key
    Revoke(RevokeArgs),
    /// Destroy a private or public key
    Destroy(DestroyArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
