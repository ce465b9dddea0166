//! Arguments of `mailpki kms ...`: certificates, keys, attributes, access rights, master key.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use mailpki_store::Operation;

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
    /// Record keys the HSM holds; revoke and destroy private and public keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The master key that seals the store's secret keys
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Certificate revocation lists of a stored issuer
    #[command(subcommand)]
    Crl(CrlCommand),
    /// Gmail, where Cosmian's CLI puts it (`kms google ...`): the same as `mailpki google`
    #[command(subcommand)]
    Google(super::GoogleCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum CrlCommand {
    /// Sign a new CRL (RFC 5280 v2) of every revoked certificate an issuer issued, for static
    /// hosting at the URL its certificates name
    Create(CrlCreateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CrlCreateArgs {
    /// The issuer's private key ID (its `PrivateKeyLink`)
    #[arg(short = 'k', long = "issuer-private-key-id", value_name = "ID")]
    pub(crate) issuer_private_key_id: String,

    /// Days until the CRL's nextUpdate
    #[arg(long, default_value_t = 7)]
    pub(crate) days: u32,

    /// Where to write it [default: <issuer certificate ID>.crl]
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,

    /// Write PEM instead of DER (DER is what `application/pkix-crl` serves)
    #[arg(long)]
    pub(crate) pem: bool,
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

    /// Put the private key into the HSM ([hsm] in the configuration) instead of the store:
    /// sensitive, not extractable; the store keeps only where it is
    #[arg(long)]
    pub(crate) hsm: bool,
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

    /// Only certificates for this mailbox (subject emailAddress or first rfc822Name; any case)
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) email: Option<String>,

    /// Only certificates expiring within this many days (expired ones included)
    #[arg(long, value_name = "DAYS")]
    pub(crate) expires_within: Option<u32>,

    /// Include destroyed certificates
    #[arg(long)]
    pub(crate) include_destroyed: bool,

    /// At most N certificates (a page); the next page starts with --after the last ID shown
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) limit: Option<u32>,

    /// Only certificates listed after this ID (the next page)
    #[arg(long, value_name = "ID")]
    pub(crate) after: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// Why. For a certificate, RFC 5280's reason (it goes into CRLs): unspecified,
    /// keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation,
    /// privilegeWithdrawn, aACompromise; a note may follow a colon (`superseded: new CA`).
    /// For a key, free text
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

    /// Make the key inside the HSM ([hsm] in the configuration; AES-256), never extractable
    #[arg(long)]
    pub(crate) hsm: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("token_key").required(true).multiple(true).args(["label", "key_id"])))]
pub(crate) struct ImportHsmArgs {
    /// ID for the key in the store [default: a new UUID]
    pub(crate) id: Option<String>,

    /// The token key's label (CKA_LABEL)
    #[arg(long)]
    pub(crate) label: Option<String>,

    /// The token key's ID (CKA_ID), hex
    #[arg(long = "hsm-id", value_name = "HEX")]
    pub(crate) key_id: Option<String>,

    /// The key's certificate (PEM or DER): records an issuer's private key, linked to its
    /// certificate and chain; without it, the token key must be an AES key (a CSE key)
    #[arg(long, value_name = "FILE")]
    pub(crate) certificate: Option<PathBuf>,

    /// Tag the key (repeatable)
    #[arg(short, long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Record a key that already lives in the HSM (made there by its administrators): an
    /// issuer's private key with its certificate, or an AES key for Gmail CSE
    ImportHsm(ImportHsmArgs),
    /// Revoke a private or public key
    Revoke(RevokeArgs),
    /// Destroy a private or public key
    Destroy(DestroyArgs),
}
