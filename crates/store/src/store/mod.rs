//! The store proper: access rights, encryption at rest and import/export on top of a
//! [`Backend`]. Every public method acts for an [`Actor`] and checks what that actor may do.

mod access;
mod hsm;
mod import;
mod lifecycle;
mod read;
mod tokens;

use std::path::{Path, PathBuf};

use openssl::x509::X509;
use secrecy::SecretString;

use crate::backend::Backend;
use crate::codec::{self, ImportFormat, Pkcs12Profile};
use crate::crypto::{MasterKey, MasterKeySource};
use crate::error::{Result, StoreError};
use crate::model::{ObjectType, Operation, State};
use crate::sqlite::SqliteBackend;

pub use hsm::IssuerKey;
pub use lifecycle::IssuedStatus;
pub use tokens::API_TOKEN_PREFIX;

const KEY_CHECK_PLAINTEXT: &[u8] = b"mailpki master key check v1";
const KEY_CHECK_AAD: &[u8] = b"mailpki:key-check";
/// Certificate chains longer than this are cut when exporting: a guard against link loops.
const MAX_CHAIN: usize = 16;

/// What `import` is asked to do.
#[derive(Debug)]
pub struct ImportRequest<'a> {
    pub data: &'a [u8],
    pub format: ImportFormat,
    pub password: Option<&'a SecretString>,
    /// ID for the main object (the certificate, else the private key); a UUID when absent.
    pub uid: Option<String>,
    /// Replace an existing object with this ID (and the keys it brought with it).
    pub replace: bool,
    pub tags: Vec<String>,
    /// Put the private key into the configured HSM instead of the store.
    pub hsm: bool,
}

/// The IDs `import` stored or reused.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Chain certificates, from the leaf's issuer upwards; reused ones included.
    pub chain: Vec<String>,
}

/// Encodings for `export_certificate`.
#[derive(Debug)]
pub enum ExportFormat<'a> {
    /// The certificate in PEM; with `chain`, its issuers follow.
    Pem {
        chain: bool,
    },
    Der,
    /// The certificate and its chain as a PEM PKCS#7 (what Gmail CSE key pairs take).
    Pkcs7,
    /// Certificate, linked private key and chain.
    Pkcs12 {
        password: &'a SecretString,
        profile: Pkcs12Profile,
    },
}

/// What a CA signs with, as loaded from the store.
pub struct IssuerMaterial {
    pub certificate_id: String,
    pub private_key_id: String,
    pub certificate: X509,
    pub key: IssuerKey,
    /// The issuer's own chain, from its issuer upwards.
    pub chain: Vec<X509>,
    /// Whether the actor may mint CA certificates with this key (its owner, or a holder of
    /// `certify_ca`); `certify` alone mints end-entity S/MIME certificates only.
    pub may_certify_ca: bool,
}

impl std::fmt::Debug for IssuerMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerMaterial")
            .field("certificate_id", &self.certificate_id)
            .field("private_key_id", &self.private_key_id)
            .field("key", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// Options for `destroy`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DestroyOptions {
    /// Destroy even when other live objects need this one.
    pub force: bool,
    /// Delete the row entirely instead of keeping a `Destroyed` tombstone.
    pub remove: bool,
}

/// Grants one user holds on one object.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AccessEntry {
    pub user: String,
    pub operations: Vec<Operation>,
}

/// An object granted to the actor, with the operations granted.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ObtainedEntry {
    pub unique_identifier: String,
    pub object_type: ObjectType,
    pub state: State,
    pub owner: String,
    pub operations: Vec<Operation>,
}

pub struct Store {
    backend: Box<dyn Backend>,
    key: MasterKey,
    /// The token keys may live in, opened at the first use of one.
    hsm: hsm::HsmSlot,
    location: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Where a store lives: a SQLite file or a PostgreSQL database, decided once, when the
/// configuration is read. `Debug` and `Display` never show a URL's password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL.
    Postgres(String),
}

impl StoreLocation {
    /// A `postgres://` URL, else a SQLite file path.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        if crate::postgres::is_postgres_url(text) {
            Self::Postgres(text.to_owned())
        } else {
            Self::Sqlite(PathBuf::from(text))
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => f.write_str(&crate::postgres::redact_url(url)),
        }
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

impl Store {
    /// Opens the store at `location`: a `postgres://` URL or a SQLite file path.
    pub fn open(location: &str, source: &MasterKeySource) -> Result<Self> {
        Self::open_at(
            &StoreLocation::parse(location),
            source,
            &crate::postgres::PoolOptions::default(),
        )
    }

    /// Opens the store at `location`, with `pool` for PostgreSQL.
    pub fn open_at(
        location: &StoreLocation,
        source: &MasterKeySource,
        pool: &crate::postgres::PoolOptions,
    ) -> Result<Self> {
        match location {
            StoreLocation::Sqlite(path) => Self::open_sqlite(path, source),
            StoreLocation::Postgres(url) => Self::open_postgres(url, source, pool),
        }
    }

    /// Opens (or creates) the store in the PostgreSQL database at `url`.
    pub fn open_postgres(
        url: &str,
        source: &MasterKeySource,
        options: &crate::postgres::PoolOptions,
    ) -> Result<Self> {
        let (backend, created) = crate::postgres::PostgresBackend::open(url, options)?;
        let location = PathBuf::from(backend.display_url());
        if let MasterKeySource::File(key_path) = source
            && !created
            && !key_path.exists()
        {
            return Err(StoreError::MasterKeyMissing {
                path: key_path.clone(),
                store: location,
            });
        }
        Self::with_backend(Box::new(backend), source, created, location)
    }

    /// Opens (or creates) the SQLite store at `path`. A new store gets a new master key when
    /// the source is a file that does not exist yet; an existing store must be opened by the
    /// key it was made with.
    pub fn open_sqlite(path: &Path, source: &MasterKeySource) -> Result<Self> {
        // With no key file, only a new store may be made (and the key with it); an existing
        // file must first prove to be a store, and then it needs its own key.
        let (backend, created) = SqliteBackend::open(path)?;
        if let MasterKeySource::File(key_path) = source
            && !created
            && !key_path.exists()
        {
            return Err(StoreError::MasterKeyMissing {
                path: key_path.clone(),
                store: path.to_owned(),
            });
        }
        Self::with_backend(Box::new(backend), source, created, path.to_owned())
    }

    /// Builds a store over any backend. `created` says the backend was just made and may be
    /// given a new key check.
    pub fn with_backend(
        backend: Box<dyn Backend>,
        source: &MasterKeySource,
        created: bool,
        location: PathBuf,
    ) -> Result<Self> {
        // A passphrase's salt is written only once the key it gives opens the store: a
        // refused passphrase leaves nothing behind.
        let mut new_salt = None;
        let key = match source {
            MasterKeySource::File(path) => {
                MasterKey::from_file(path, created)?.ok_or_else(|| {
                    StoreError::MasterKeyMissing {
                        path: path.clone(),
                        store: location.clone(),
                    }
                })?
            }
            MasterKeySource::Base64(text) => {
                use secrecy::ExposeSecret;
                MasterKey::from_base64(text.expose_secret(), "MAILPKI_MASTER_KEY")?
            }
            MasterKeySource::Passphrase(pass) => {
                let salt = if let Some(salt) = backend.meta_get("kdf_salt")? {
                    salt
                } else {
                    let mut salt = [0u8; 16];
                    openssl::rand::rand_bytes(&mut salt)
                        .map_err(StoreError::crypto("drawing a salt"))?;
                    let salt = codec::hex(&salt);
                    new_salt = Some(salt.clone());
                    salt
                };
                MasterKey::from_passphrase(pass, salt.as_bytes())?
            }
        };
        // The first opener records a check value; everyone after must open it.
        let check = key.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?;
        if new_salt.is_some() && !created && backend.meta_get("key_check")?.is_some() {
            // A store made with another kind of master key: this passphrase cannot open it.
            return Err(StoreError::MasterKeyMismatch);
        }
        if let Some(salt) = &new_salt
            && backend.meta_init("kdf_salt", salt)? != *salt
        {
            // Another process made the store's salt meanwhile: its key is the store's.
            return Err(StoreError::MasterKeyMismatch);
        }
        let stored = backend.meta_init("key_check", &codec::hex(&check))?;
        let stored = unhex(&stored).ok_or(StoreError::MasterKeyMismatch)?;
        match key.open(&stored, KEY_CHECK_AAD) {
            Some(plain) if plain.as_slice() == KEY_CHECK_PLAINTEXT => {}
            _ => return Err(StoreError::MasterKeyMismatch),
        }
        index_emails(backend.as_ref())?;
        Ok(Self {
            hsm: hsm::HsmSlot::default(),
            backend,
            key,
            location,
        })
    }

    #[must_use]
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Re-seals every private and symmetric key under the master key in `new_key_file`
    /// (created, mode 0600, when it does not exist) and makes it the store's key, in one
    /// transaction: afterwards only the new key opens the store. Returns how many keys were
    /// re-sealed. Nothing else may write the store meanwhile: stop servers first.
    pub fn rotate_master_key(&self, new_key_file: &Path) -> Result<usize> {
        let new = MasterKey::from_file(new_key_file, true)?.ok_or_else(|| {
            StoreError::MasterKeyMissing {
                path: new_key_file.to_owned(),
                store: self.location.clone(),
            }
        })?;
        let check = codec::hex(&new.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?);
        self.backend.reseal_all(
            &mut |uid, sealed| {
                let plain =
                    self.key
                        .open(sealed, uid.as_bytes())
                        .ok_or_else(|| StoreError::Corrupt {
                            uid: uid.to_owned(),
                            reason: "sealed material does not open under the master key".to_owned(),
                        })?;
                new.seal(&plain, uid.as_bytes())
            },
            &check,
        )
    }

    /// Whether the database answers (for health checks).
    pub fn ping(&self) -> Result<()> {
        self.backend.meta_get("key_check").map(drop)
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Records the mailbox of certificates stored before stores kept one (once: afterwards every
/// object has one, an empty string when it names none).
fn index_emails(backend: &dyn Backend) -> Result<()> {
    let mut after = String::new();
    loop {
        let batch = backend.without_email(&after)?;
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        after.clone_from(last);
        for (uid, der) in &batch {
            let email = der
                .as_deref()
                .and_then(|der| openssl::x509::X509::from_der(der).ok())
                .and_then(|cert| codec::mailbox(&cert))
                .unwrap_or_default();
            backend.set_email(uid, &email)?;
        }
    }
}
