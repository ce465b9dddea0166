//! Arguments of `mailpki google ...`: Gmail access, CSE key pairs and identities, hosted S/MIME,
//! onboarding.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};

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
    /// Offboard users (a CSV, or one as an argument): delete their CSE identity, disable their
    /// key pairs, delete their hosted S/MIME certificates, revoke their certificates; resumable
    Offboard(Box<OffboardArgs>),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("users").required(true).args(["csv", "user"])))]
pub(crate) struct OffboardArgs {
    /// One user to offboard (their primary address)
    pub(crate) user: Option<String>,

    /// CSV of users, one per line (the first column); a header line is optional
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,

    /// Revocation reason of their certificates (RFC 5280's; a note may follow a colon)
    #[arg(long, default_value = "affiliationChanged")]
    pub(crate) reason: String,

    /// Also obliterate the key pairs (Gmail allows it 30 days after they were disabled; until
    /// then the user is left to retry)
    #[arg(long)]
    pub(crate) obliterate: bool,

    /// After the batch, sign a new CRL with this issuer key (its `PrivateKeyLink`)
    #[arg(short = 'k', long = "crl-issuer-private-key-id", value_name = "ID")]
    pub(crate) crl_issuer: Option<String>,

    /// Where the new CRL goes [default: <issuer certificate ID>.crl]
    #[arg(long, value_name = "FILE", requires = "crl_issuer")]
    pub(crate) crl_out: Option<PathBuf>,

    /// Name of this run: a re-run with the same name resumes it [default: from the CSV path, or
    /// the user]
    #[arg(long, value_name = "NAME")]
    pub(crate) batch_id: Option<String>,

    /// Report what would be done for each user, changing nothing
    #[arg(long)]
    pub(crate) dry_run: bool,

    #[command(flatten)]
    pub(crate) bulk: BulkArgs,
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
    #[arg(long, value_name = "URL", env = "MAILPKI_KACLS_URL")]
    pub(crate) kacls_url: Option<String>,

    /// Name of this run: a re-run with the same name resumes it [default: from the CSV path]
    #[arg(long, value_name = "NAME")]
    pub(crate) batch_id: Option<String>,

    /// Check every user (Gmail access, what earlier runs did) and report what would be done,
    /// changing nothing
    #[arg(long)]
    pub(crate) dry_run: bool,

    #[command(flatten)]
    pub(crate) bulk: BulkArgs,
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

/// Options of the bulk commands (onboard, offboard, import-csv, rotate).
#[derive(Debug, Args)]
pub(crate) struct BulkArgs {
    /// Users in flight at once
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,

    /// Write one row per user (outcome, IDs, what was done, reason, hint) to this file, in the
    /// CSV's order: .json, else CSV
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

    /// Password of --leaf-certificate-pkcs12-file (asked for when the file needs one). With no
    /// user after it, an address here is taken as the user, as Cosmian's guide writes it
    #[arg(long, value_name = "PASSWORD")]
    pub(crate) leaf_certificate_pkcs12_password: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KeyPairCreateArgs {
    /// The user (primary address); needed, but may come where Cosmian's guide puts it (see
    /// --leaf-certificate-pkcs12-password)
    pub(crate) user_id: Option<String>,

    /// The symmetric key in the store that wraps the private key for the key service
    #[arg(long, value_name = "ID")]
    pub(crate) cse_key_id: String,

    /// Subject of the minted certificate [default: CN=<user>, emailAddress=<user>]
    #[arg(long, value_name = "SUBJECT")]
    pub(crate) subject_name: Option<String>,

    /// The issuer's private key ID, to mint the certificate (unused with an existing leaf)
    #[arg(short = 'i', long, value_name = "ID")]
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
    #[arg(long, value_name = "URL", env = "MAILPKI_KACLS_URL")]
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
