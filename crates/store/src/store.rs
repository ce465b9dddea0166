//! The store proper: access rights, encryption at rest and import/export on top of a
//! [`Backend`]. Every public method acts for an [`Actor`] and checks what that actor may do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::x509::X509;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::backend::{Backend, WriteBatch};
use crate::codec::{self, Bundle, ImportFormat, Pkcs12Profile};
use crate::crypto::{KEY_LEN, MasterKey, MasterKeySource};
use crate::error::{Result, StoreError};
use crate::model::{
    Actor, Algorithm, ApiToken, Attributes, AuditEntry, AuditFilter, LinkType, Material,
    ObjectFilter, ObjectRecord, ObjectType, Operation, State, check_tag, check_uid,
};
use crate::sqlite::SqliteBackend;

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
    pub key: PKey<Private>,
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

impl Store {
    /// Opens (or creates) the SQLite store at `path`. A new store gets a new master key when
    /// the source is a file that does not exist yet; an existing store must be opened by the
    /// key it was made with.
    /// Opens the store at `location`: a `postgres://` URL or a SQLite file path.
    pub fn open(location: &str, source: &MasterKeySource) -> Result<Self> {
        if crate::postgres::is_postgres_url(location) {
            Self::open_postgres(location, source, &crate::postgres::PoolOptions::default())
        } else {
            Self::open_sqlite(Path::new(location), source)
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
        Ok(Self {
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

    // ----- reading -------------------------------------------------------------------------

    fn record(&self, uid: &str) -> Result<ObjectRecord> {
        self.backend.get(uid)?.ok_or_else(|| StoreError::NotFound {
            uid: uid.to_owned(),
        })
    }

    fn authorize(&self, actor: &Actor, record: &ObjectRecord, operation: Operation) -> Result<()> {
        if record.owner == actor.as_str()
            || self
                .backend
                .has_grant(&record.uid, actor.as_str(), operation)?
        {
            return Ok(());
        }
        tracing::warn!(user = %actor, %operation, uid = %crate::escape(&record.uid), "access denied");
        Err(self.refusal(actor, record, operation)?)
    }

    /// Why `actor` is refused `operation` on `record`: "may not" to a user who holds some
    /// right on it, "not found" to one who holds none (a 403 would confirm the ID exists).
    fn refusal(
        &self,
        actor: &Actor,
        record: &ObjectRecord,
        operation: Operation,
    ) -> Result<StoreError> {
        let sees = self
            .backend
            .grants_on(&record.uid)?
            .iter()
            .any(|(user, _)| user == actor.as_str() || user == Actor::EVERYONE);
        Ok(if sees {
            StoreError::PermissionDenied {
                user: actor.to_string(),
                operation,
                uid: record.uid.clone(),
            }
        } else {
            StoreError::Hidden {
                uid: record.uid.clone(),
                user: actor.to_string(),
                operation,
            }
        })
    }

    fn authorized(&self, actor: &Actor, uid: &str, operation: Operation) -> Result<ObjectRecord> {
        let record = self.record(uid)?;
        self.authorize(actor, &record, operation)?;
        Ok(record)
    }

    pub fn attributes(&self, actor: &Actor, uid: &str) -> Result<Attributes> {
        Ok(Attributes::from(&self.authorized(
            actor,
            uid,
            Operation::GetAttributes,
        )?))
    }

    /// IDs of visible objects carrying all of `tags`.
    pub fn find_by_tags(&self, actor: &Actor, tags: &[String]) -> Result<Vec<String>> {
        let filter = ObjectFilter {
            tags: tags.to_vec(),
            ..ObjectFilter::default()
        };
        Ok(self
            .backend
            .find(&filter, actor.as_str())?
            .into_iter()
            .map(|r| r.uid)
            .collect())
    }

    pub fn list(&self, actor: &Actor, filter: &ObjectFilter) -> Result<Vec<Attributes>> {
        Ok(self
            .backend
            .find(filter, actor.as_str())?
            .iter()
            .map(Attributes::from)
            .collect())
    }

    fn clear_material(record: &ObjectRecord) -> Result<&[u8]> {
        match &record.material {
            Material::Clear(bytes) => Ok(bytes),
            Material::Gone => Err(StoreError::Destroyed {
                uid: record.uid.clone(),
            }),
            Material::Sealed(_) => Err(StoreError::Corrupt {
                uid: record.uid.clone(),
                reason: "public material is sealed".to_owned(),
            }),
        }
    }

    fn unseal(&self, record: &ObjectRecord) -> Result<Zeroizing<Vec<u8>>> {
        match &record.material {
            Material::Sealed(bytes) => {
                self.key
                    .open(bytes, record.uid.as_bytes())
                    .ok_or_else(|| StoreError::Corrupt {
                        uid: record.uid.clone(),
                        reason: "sealed material does not open under the master key".to_owned(),
                    })
            }
            Material::Gone => Err(StoreError::Destroyed {
                uid: record.uid.clone(),
            }),
            Material::Clear(_) => Err(StoreError::Corrupt {
                uid: record.uid.clone(),
                reason: "secret material is stored in clear".to_owned(),
            }),
        }
    }

    fn expect_type(record: &ObjectRecord, expected: ObjectType) -> Result<()> {
        if record.object_type == expected {
            Ok(())
        } else {
            Err(StoreError::WrongObjectType {
                uid: record.uid.clone(),
                expected,
                actual: record.object_type,
            })
        }
    }

    fn parse_certificate(record: &ObjectRecord) -> Result<X509> {
        X509::from_der(Self::clear_material(record)?).map_err(|e| StoreError::Corrupt {
            uid: record.uid.clone(),
            reason: e.to_string(),
        })
    }

    /// The certificate with ID `uid`, for an actor allowed `operation` on it.
    pub fn certificate(&self, actor: &Actor, uid: &str, operation: Operation) -> Result<X509> {
        let record = self.authorized(actor, uid, operation)?;
        Self::expect_type(&record, ObjectType::Certificate)?;
        Self::parse_certificate(&record)
    }

    /// The private key with ID `uid`, for an actor allowed `operation` on it (`certify` to sign
    /// certificates with it, `export` to hand it out). Refused unless the key is active.
    pub fn private_key(
        &self,
        actor: &Actor,
        uid: &str,
        operation: Operation,
    ) -> Result<PKey<Private>> {
        let record = self.authorized(actor, uid, operation)?;
        Self::expect_type(&record, ObjectType::PrivateKey)?;
        Self::check_usable_for(&record, operation)?;
        self.private_key_of(&record)
    }

    /// Keys sign, certify, encrypt and decrypt only while active; a revoked key can still be
    /// read and exported (to archive it, say).
    fn check_usable_for(record: &ObjectRecord, operation: Operation) -> Result<()> {
        let uses_key = matches!(
            operation,
            Operation::Certify
                | Operation::CertifyCa
                | Operation::Sign
                | Operation::Encrypt
                | Operation::Decrypt
        );
        if uses_key && record.state != State::Active {
            return Err(StoreError::NotActive {
                uid: record.uid.clone(),
                state: record.state,
                operation,
            });
        }
        Ok(())
    }

    fn private_key_of(&self, record: &ObjectRecord) -> Result<PKey<Private>> {
        let der = self.unseal(record)?;
        PKey::private_key_from_der(&der).map_err(|e| StoreError::Corrupt {
            uid: record.uid.clone(),
            reason: e.to_string(),
        })
    }

    /// The public key of a public key, private key or certificate object.
    pub fn public_key(
        &self,
        actor: &Actor,
        uid: &str,
        operation: Operation,
    ) -> Result<PKey<Public>> {
        let record = self.authorized(actor, uid, operation)?;
        let corrupt = |e: openssl::error::ErrorStack| StoreError::Corrupt {
            uid: uid.to_owned(),
            reason: e.to_string(),
        };
        match record.object_type {
            ObjectType::PublicKey => {
                PKey::public_key_from_der(Self::clear_material(&record)?).map_err(corrupt)
            }
            ObjectType::Certificate => Self::parse_certificate(&record)?
                .public_key()
                .map_err(corrupt),
            ObjectType::PrivateKey => {
                let der = self
                    .private_key_of(&record)?
                    .public_key_to_der()
                    .map_err(corrupt)?;
                PKey::public_key_from_der(&der).map_err(corrupt)
            }
            ObjectType::SymmetricKey => Err(StoreError::WrongObjectType {
                uid: uid.to_owned(),
                expected: ObjectType::PublicKey,
                actual: ObjectType::SymmetricKey,
            }),
        }
    }

    /// The raw bytes of a symmetric key (the CSE wrapping key), zeroized on drop.
    pub fn symmetric_key(
        &self,
        actor: &Actor,
        uid: &str,
        operation: Operation,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let record = self.authorized(actor, uid, operation)?;
        Self::expect_type(&record, ObjectType::SymmetricKey)?;
        Self::check_usable_for(&record, operation)?;
        self.unseal(&record)
    }

    /// Walks `CertificateLink`s up from `record`, returning the issuers' certificates.
    fn chain_of(&self, record: &ObjectRecord) -> Result<Vec<X509>> {
        let mut chain = Vec::new();
        let mut current = record.clone();
        while let Some(parent_uid) = current.links.get(&LinkType::CertificateLink).cloned() {
            if chain.len() >= MAX_CHAIN || parent_uid == current.uid {
                break;
            }
            let Some(parent) = self.backend.get(&parent_uid)? else {
                break;
            };
            if parent.object_type != ObjectType::Certificate {
                break;
            }
            chain.push(Self::parse_certificate(&parent)?);
            current = parent;
        }
        Ok(chain)
    }

    /// The certificates above `uid`, from its issuer upwards, as far as the store links them.
    pub fn chain(&self, actor: &Actor, uid: &str) -> Result<Vec<X509>> {
        let record = self.authorized(actor, uid, Operation::Get)?;
        Self::expect_type(&record, ObjectType::Certificate)?;
        self.chain_of(&record)
    }

    /// The signing material of a CA, found from its private key (`certify` right needed) and
    /// the certificate the key links to (`get` right needed).
    pub fn issuer_material(&self, actor: &Actor, private_key_uid: &str) -> Result<IssuerMaterial> {
        let key_record = self.authorized(actor, private_key_uid, Operation::Certify)?;
        Self::expect_type(&key_record, ObjectType::PrivateKey)?;
        Self::check_usable_for(&key_record, Operation::Certify)?;
        let certificate_id = key_record
            .links
            .get(&LinkType::CertificateLink)
            .cloned()
            .ok_or_else(|| StoreError::MissingLink {
                uid: private_key_uid.to_owned(),
                link: LinkType::CertificateLink,
            })?;
        let cert_record = self.authorized(actor, &certificate_id, Operation::Get)?;
        let may_certify_ca = key_record.owner == actor.as_str()
            || self
                .backend
                .has_grant(&key_record.uid, actor.as_str(), Operation::CertifyCa)?;
        Ok(IssuerMaterial {
            may_certify_ca,
            certificate: Self::parse_certificate(&cert_record)?,
            chain: self.chain_of(&cert_record)?,
            key: self.private_key_of(&key_record)?,
            certificate_id,
            private_key_id: private_key_uid.to_owned(),
        })
    }

    /// The private key ID linked from a certificate (to accept `--issuer-certificate-id`).
    pub fn private_key_id_of(&self, actor: &Actor, certificate_uid: &str) -> Result<String> {
        let record = self.authorized(actor, certificate_uid, Operation::Get)?;
        Self::expect_type(&record, ObjectType::Certificate)?;
        record
            .links
            .get(&LinkType::PrivateKeyLink)
            .cloned()
            .ok_or_else(|| StoreError::MissingLink {
                uid: certificate_uid.to_owned(),
                link: LinkType::PrivateKeyLink,
            })
    }

    pub fn export_certificate(
        &self,
        actor: &Actor,
        uid: &str,
        format: &ExportFormat<'_>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let record = self.authorized(actor, uid, Operation::Export)?;
        Self::expect_type(&record, ObjectType::Certificate)?;
        let cert = Self::parse_certificate(&record)?;
        let crypto = StoreError::crypto("encoding the export");
        let out = match format {
            ExportFormat::Der => cert.to_der().map_err(crypto)?,
            ExportFormat::Pkcs7 => {
                let mut all = vec![cert];
                all.extend(self.chain_of(&record)?);
                codec::pkcs7_pem(&all)?
            }
            ExportFormat::Pem { chain } => {
                let mut pem = cert.to_pem().map_err(crypto)?;
                if *chain {
                    for c in self.chain_of(&record)? {
                        pem.extend(
                            c.to_pem()
                                .map_err(StoreError::crypto("encoding the export"))?,
                        );
                    }
                }
                pem
            }
            ExportFormat::Pkcs12 { password, profile } => {
                let key_uid = record.links.get(&LinkType::PrivateKeyLink).ok_or_else(|| {
                    StoreError::MissingLink {
                        uid: uid.to_owned(),
                        link: LinkType::PrivateKeyLink,
                    }
                })?;
                let key = self.private_key(actor, key_uid, Operation::Export)?;
                let chain = self.chain_of(&record)?;
                let name = record
                    .certificate
                    .as_ref()
                    .map_or(uid, |c| c.subject.as_str());
                codec::build_pkcs12(&cert, &key, &chain, password, *profile, name)?
            }
        };
        Ok(Zeroizing::new(out))
    }

    // ----- writing -------------------------------------------------------------------------

    fn private_key_record(
        &self,
        actor: &Actor,
        uid: String,
        key: &PKey<Private>,
        tags: &[String],
    ) -> Result<ObjectRecord> {
        let mut record = key_record(actor, uid, ObjectType::PrivateKey, key, tags)?;
        let der = Zeroizing::new(
            key.private_key_to_pkcs8()
                .map_err(StoreError::crypto("encoding a private key"))?,
        );
        record.material = Material::Sealed(self.key.seal(&der, record.uid.as_bytes())?);
        Ok(record)
    }

    /// Validates the tags and the requested ID. With `replace`, returns the IDs to remove:
    /// the old object and the keys it brought with it.
    fn check_new_ids(
        &self,
        actor: &Actor,
        uid: Option<&str>,
        replace: bool,
        tags: &[String],
    ) -> Result<Vec<String>> {
        for tag in tags {
            check_tag(tag)?;
        }
        let Some(uid) = uid else {
            return Ok(Vec::new());
        };
        check_uid(uid)?;
        if crate::text::looks_confusable(uid) {
            tracing::warn!(
                uid = %crate::escape(uid),
                "the ID mixes Latin letters with look-alikes from other scripts; it may be mistaken for another"
            );
        }
        match self.backend.get(uid)? {
            None => Ok(Vec::new()),
            Some(_) if !replace => Err(StoreError::AlreadyExists {
                uid: uid.to_owned(),
            }),
            Some(old) => {
                self.authorize(actor, &old, Operation::Destroy)?;
                let mut remove = vec![old.uid.clone()];
                for link in [LinkType::PrivateKeyLink, LinkType::PublicKeyLink] {
                    if let Some(target) = old.links.get(&link)
                        && let Some(t) = self.backend.get(target)?
                        && t.owner == actor.as_str()
                    {
                        remove.push(t.uid);
                    }
                }
                Ok(remove)
            }
        }
    }

    /// Live objects the actor may read, other than those about to be removed.
    fn usable(
        &self,
        actor: &Actor,
        records: Vec<ObjectRecord>,
        remove: &[String],
    ) -> Vec<ObjectRecord> {
        records
            .into_iter()
            .filter(|r| {
                r.state != State::Destroyed
                    && !remove.contains(&r.uid)
                    && self.authorize(actor, r, Operation::Get).is_ok()
            })
            .collect()
    }

    /// Finds a visible stored certificate that issued `cert`.
    fn find_stored_issuer(&self, actor: &Actor, cert: &X509) -> Result<Option<String>> {
        if codec::is_self_signed(cert) {
            return Ok(None);
        }
        let info = codec::certificate_info(cert)?;
        let candidates = self.backend.find_by_subject_hash(&info.issuer_hash)?;
        for candidate in self.usable(actor, candidates, &[]) {
            let parent = Self::parse_certificate(&candidate)?;
            if codec::issued_by(cert, &parent) {
                return Ok(Some(candidate.uid));
            }
        }
        Ok(None)
    }

    /// Imports a file, splitting it into certificate, keys and chain, all linked. Either
    /// everything is stored or nothing is.
    pub fn import(&self, actor: &Actor, request: &ImportRequest<'_>) -> Result<ImportReport> {
        // Check the ID before parsing, so a taken ID is reported even for a bad file.
        self.check_new_ids(
            actor,
            request.uid.as_deref(),
            request.replace,
            &request.tags,
        )?;
        let bundle = codec::parse(request.format, request.data, request.password)?;
        self.import_bundle(
            actor,
            bundle,
            request.uid.clone(),
            request.replace,
            &request.tags,
        )
    }

    /// Stores certificates and keys already in memory (a freshly minted leaf and its key, say)
    /// the way `import` stores a file's.
    pub fn import_bundle(
        &self,
        actor: &Actor,
        bundle: Bundle,
        uid: Option<String>,
        replace: bool,
        tags: &[String],
    ) -> Result<ImportReport> {
        let remove = self.check_new_ids(actor, uid.as_deref(), replace, tags)?;
        let Bundle {
            certificates,
            private_key,
            public_key,
        } = bundle;
        let mut certs = certificates.into_iter();
        let leaf = certs.next();
        if let (Some(leaf), Some(key)) = (&leaf, &private_key)
            && !leaf.public_key().is_ok_and(|pk| pk.public_eq(key))
        {
            return Err(StoreError::KeyMismatch);
        }
        let mut plan = ImportPlan {
            main_uid: uid,
            tags,
            remove,
            batch: WriteBatch::default(),
        };
        let leaf_uid = match &leaf {
            Some(cert) => {
                let uid = plan.next_uid();
                Some(plan.insert(certificate_record(actor, uid, cert, plan.tags)?))
            }
            None => None,
        };
        let keys = self.plan_keys(actor, &mut plan, private_key.as_ref(), public_key)?;
        let spki = match (&keys.spki, &leaf) {
            (Some(spki), _) => Some(spki.clone()),
            (None, Some(cert)) => {
                Some(codec::spki_sha256(&*cert.public_key().map_err(
                    StoreError::crypto("reading a certificate's key"),
                )?)?)
            }
            (None, None) => None,
        };
        if let Some(spki) = spki {
            self.plan_pairing(actor, &mut plan, leaf_uid.as_ref(), &keys, &spki)?;
        }
        let chain = self.plan_chain(actor, &mut plan, leaf.zip(leaf_uid.clone()), certs)?;

        let report = ImportReport {
            certificate: leaf_uid,
            private_key: keys.private,
            public_key: keys.public,
            chain,
        };
        let mut batch = plan.batch;
        // A link is written on its source object: only on objects this import makes or the
        // actor owns. Someone else's certificate keeps its links, whatever key is imported
        // beside it (the new object still links to it).
        let inserted: std::collections::HashSet<String> =
            batch.insert.iter().map(|r| r.uid.clone()).collect();
        let mut links = Vec::with_capacity(batch.links.len());
        for link in std::mem::take(&mut batch.links) {
            let writable = inserted.contains(&link.0)
                || self
                    .backend
                    .get(&link.0)?
                    .is_some_and(|r| r.owner == actor.as_str());
            if writable {
                links.push(link);
            } else {
                tracing::info!(user = %actor, uid = %crate::escape(&link.0), "not linking from an object of another owner");
            }
        }
        batch.links = links;
        // A replaced object's ID is reused by the new one: delete the old row first.
        batch.remove = plan.remove;
        self.backend.apply(batch)?;
        tracing::info!(user = %actor, certificate = ?report.certificate, "imported");
        Ok(report)
    }

    /// Stores the private key (and the public key derived from it) or a lone public key.
    fn plan_keys(
        &self,
        actor: &Actor,
        plan: &mut ImportPlan<'_>,
        private_key: Option<&PKey<Private>>,
        public_key: Option<PKey<Public>>,
    ) -> Result<PlannedKeys> {
        let public = match private_key {
            Some(key) => {
                let der = key
                    .public_key_to_der()
                    .map_err(StoreError::crypto("deriving a public key"))?;
                Some(
                    PKey::public_key_from_der(&der)
                        .map_err(StoreError::crypto("deriving a public key"))?,
                )
            }
            None => public_key,
        };
        let mut keys = PlannedKeys::default();
        if let Some(key) = private_key {
            let uid = plan.next_uid();
            keys.private = Some(plan.insert(self.private_key_record(actor, uid, key, plan.tags)?));
        }
        if let Some(key) = &public {
            let uid = plan.next_uid();
            let mut record = key_record(actor, uid, ObjectType::PublicKey, key, plan.tags)?;
            record.material = Material::Clear(
                key.public_key_to_der()
                    .map_err(StoreError::crypto("encoding a public key"))?,
            );
            keys.spki.clone_from(&record.spki_sha256);
            keys.public = Some(plan.insert(record));
        }
        if let (Some(p), Some(q)) = (&keys.private, &keys.public) {
            plan.link_both(p, LinkType::PublicKeyLink, q, LinkType::PrivateKeyLink);
        }
        Ok(keys)
    }

    /// Links keys and certificate: the new keys to the new certificate (or to a stored one
    /// with the same public key), or a new certificate to stored keys.
    fn plan_pairing(
        &self,
        actor: &Actor,
        plan: &mut ImportPlan<'_>,
        leaf_uid: Option<&String>,
        keys: &PlannedKeys,
        spki: &str,
    ) -> Result<()> {
        let counterparts = self.usable(actor, self.backend.find_by_spki(spki)?, &plan.remove);
        let cert = leaf_uid.cloned().or_else(|| {
            counterparts
                .iter()
                .find(|r| r.object_type == ObjectType::Certificate)
                .map(|r| r.uid.clone())
        });
        let Some(cert) = cert else {
            return Ok(());
        };
        let mut pairs = Vec::new();
        if keys.private.is_some() || keys.public.is_some() {
            pairs.extend(
                keys.private
                    .iter()
                    .map(|k| (k.clone(), LinkType::PrivateKeyLink)),
            );
            pairs.extend(
                keys.public
                    .iter()
                    .map(|k| (k.clone(), LinkType::PublicKeyLink)),
            );
        } else {
            // A certificate imported after its keys: adopt the stored keys the actor owns.
            for key in counterparts.iter().filter(|r| r.owner == actor.as_str()) {
                match key.object_type {
                    ObjectType::PrivateKey => {
                        pairs.push((key.uid.clone(), LinkType::PrivateKeyLink));
                    }
                    ObjectType::PublicKey => pairs.push((key.uid.clone(), LinkType::PublicKeyLink)),
                    _ => {}
                }
            }
        }
        for (key, link) in pairs {
            plan.link_both(&cert, link, &key, LinkType::CertificateLink);
        }
        Ok(())
    }

    /// Stores chain certificates (reusing stored copies) and links every certificate of the
    /// file to its issuer, in the file or in the store. Returns the chain's IDs.
    fn plan_chain(
        &self,
        actor: &Actor,
        plan: &mut ImportPlan<'_>,
        leaf: Option<(X509, String)>,
        chain: impl Iterator<Item = X509>,
    ) -> Result<Vec<String>> {
        let mut placed: Vec<(X509, String)> = leaf.into_iter().collect();
        let mut chain_ids = Vec::new();
        for cert in chain {
            let info = codec::certificate_info(&cert)?;
            let stored = self.backend.find_by_fingerprint(&info.sha256_fingerprint)?;
            let uid = if let Some(r) = self.usable(actor, stored, &plan.remove).into_iter().next() {
                r.uid
            } else {
                // Chain certificates are shared between imports: the tags describe what this
                // import brought, not its issuers.
                plan.insert(certificate_record(actor, new_uid(), &cert, &[])?)
            };
            chain_ids.push(uid.clone());
            placed.push((cert, uid));
        }
        for (cert, uid) in &placed {
            if codec::is_self_signed(cert) {
                continue;
            }
            let in_file = placed
                .iter()
                .find(|(p, p_uid)| p_uid != uid && codec::issued_by(cert, p))
                .map(|(_, p_uid)| p_uid.clone());
            let parent = match in_file {
                Some(p) => Some(p),
                None => self.find_stored_issuer(actor, cert)?,
            };
            if let Some(parent) = parent {
                plan.batch
                    .links
                    .push((uid.clone(), LinkType::CertificateLink, parent));
            }
        }
        Ok(chain_ids)
    }

    /// Records a step of `actor`'s batch job (the journal that lets interrupted batches
    /// resume). Batches are their runner's own: the journal is keyed by actor and batch name.
    pub fn journal_record(
        &self,
        actor: &Actor,
        batch: &str,
        subject: &str,
        step: &str,
        value: &str,
    ) -> Result<()> {
        self.backend
            .journal_set(&journal_key(actor, batch), subject, step, value, now())
    }

    /// The steps a subject reached in `actor`'s batch.
    pub fn journal_steps(
        &self,
        actor: &Actor,
        batch: &str,
        subject: &str,
    ) -> Result<BTreeMap<String, String>> {
        self.backend
            .journal_get(&journal_key(actor, batch), subject)
    }

    /// Tags an object the actor owns (records such as the Gmail key pair a certificate became).
    pub fn add_tags(&self, actor: &Actor, uid: &str, tags: &[String]) -> Result<()> {
        self.owned_record(actor, uid)?;
        for tag in tags {
            check_tag(tag)?;
        }
        self.backend.add_tags(uid, tags, now())
    }

    /// Creates a random symmetric key (AES 128/192/256).
    pub fn create_symmetric_key(
        &self,
        actor: &Actor,
        uid: Option<String>,
        algorithm: Algorithm,
        bits: u32,
        tags: &[String],
    ) -> Result<String> {
        if algorithm != Algorithm::Aes || !matches!(bits, 128 | 192 | 256) {
            return Err(StoreError::InvalidKeyLength {
                algorithm: algorithm.to_string(),
                bits,
            });
        }
        self.check_new_ids(actor, uid.as_deref(), false, tags)?;
        let uid = uid.unwrap_or_else(new_uid);
        let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
        key.truncate(bits as usize / 8);
        openssl::rand::rand_bytes(&mut key).map_err(StoreError::crypto("generating a key"))?;
        let mut record = base_record(actor, uid.clone(), ObjectType::SymmetricKey, tags);
        record.algorithm = Some(algorithm);
        record.length = Some(bits);
        record.material = Material::Sealed(self.key.seal(&key, uid.as_bytes())?);
        self.backend.apply(WriteBatch {
            insert: vec![record],
            ..WriteBatch::default()
        })?;
        Ok(uid)
    }

    /// Live certificates that `record` is the issuer of, directly or through its certificate
    /// (for a key).
    fn dependents(&self, record: &ObjectRecord) -> Result<Vec<String>> {
        let cert_uid = match record.object_type {
            ObjectType::Certificate => Some(record.uid.clone()),
            ObjectType::PrivateKey | ObjectType::PublicKey => {
                record.links.get(&LinkType::CertificateLink).cloned()
            }
            ObjectType::SymmetricKey => None,
        };
        let Some(cert_uid) = cert_uid else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for uid in self
            .backend
            .linked_from(&cert_uid, LinkType::CertificateLink)?
        {
            if let Some(child) = self.backend.get(&uid)?
                && child.object_type == ObjectType::Certificate
                && child.uid != cert_uid
                && child.state != State::Destroyed
            {
                out.push(child.uid);
            }
        }
        Ok(out)
    }

    /// Destroys an object: its material is wiped (or the row removed). Refuses to destroy
    /// an issuer that live certificates chain to, or its keys, unless forced.
    pub fn destroy(&self, actor: &Actor, uid: &str, options: DestroyOptions) -> Result<()> {
        let record = self.authorized(actor, uid, Operation::Destroy)?;
        if !options.force {
            let dependents = self.dependents(&record)?;
            if !dependents.is_empty() {
                return Err(StoreError::InUse {
                    uid: uid.to_owned(),
                    dependents,
                });
            }
        }
        if options.remove {
            self.backend.apply(WriteBatch {
                remove: vec![uid.to_owned()],
                ..WriteBatch::default()
            })?;
        } else {
            self.backend
                .set_state(uid, State::Destroyed, None, true, now())?;
        }
        tracing::info!(user = %actor, uid, "destroyed");
        Ok(())
    }

    /// Revokes an object: it stays readable but is no longer active.
    pub fn revoke(&self, actor: &Actor, uid: &str, reason: &str, compromised: bool) -> Result<()> {
        let record = self.authorized(actor, uid, Operation::Revoke)?;
        if record.state == State::Destroyed {
            return Err(StoreError::Destroyed {
                uid: uid.to_owned(),
            });
        }
        let state = if compromised {
            State::Compromised
        } else {
            State::Deactivated
        };
        self.backend
            .set_state(uid, state, Some(reason), false, now())
    }

    // ----- access rights -------------------------------------------------------------------

    fn owned_record(&self, actor: &Actor, uid: &str) -> Result<ObjectRecord> {
        let record = self.record(uid)?;
        if record.owner != actor.as_str() {
            return Err(match self.refusal(actor, &record, Operation::Get)? {
                hidden @ StoreError::Hidden { .. } => hidden,
                _ => StoreError::NotOwner {
                    uid: uid.to_owned(),
                },
            });
        }
        Ok(record)
    }

    fn check_grantee(user: &str) -> Result<()> {
        if user == Actor::EVERYONE {
            Ok(())
        } else {
            Actor::new(user).map(|_| ())
        }
    }

    /// Grants `user` (or `*`, everyone) `operations` on an object the actor owns.
    pub fn grant(
        &self,
        actor: &Actor,
        uid: &str,
        user: &str,
        operations: &[Operation],
    ) -> Result<()> {
        self.change_access(actor, uid, user, operations, true)
    }

    /// Takes `operations` on an object the actor owns back from `user`.
    pub fn revoke_access(
        &self,
        actor: &Actor,
        uid: &str,
        user: &str,
        operations: &[Operation],
    ) -> Result<()> {
        self.change_access(actor, uid, user, operations, false)
    }

    fn change_access(
        &self,
        actor: &Actor,
        uid: &str,
        user: &str,
        operations: &[Operation],
        granted: bool,
    ) -> Result<()> {
        self.owned_record(actor, uid)?;
        Self::check_grantee(user)?;
        self.backend.set_grants(uid, user, operations, granted)?;
        tracing::info!(owner = %actor, uid, grantee = user, ?operations, granted, "access changed");
        Ok(())
    }

    /// Who holds what on an object the actor owns.
    pub fn access_list(&self, actor: &Actor, uid: &str) -> Result<Vec<AccessEntry>> {
        self.owned_record(actor, uid)?;
        Ok(self
            .backend
            .grants_on(uid)?
            .into_iter()
            .map(|(user, operations)| AccessEntry { user, operations })
            .collect())
    }

    /// Objects the actor owns.
    pub fn owned(&self, actor: &Actor) -> Result<Vec<Attributes>> {
        Ok(self
            .backend
            .find(&ObjectFilter::default(), actor.as_str())?
            .iter()
            .filter(|r| r.owner == actor.as_str())
            .map(Attributes::from)
            .collect())
    }

    /// Objects others granted the actor rights on.
    pub fn obtained(&self, actor: &Actor) -> Result<Vec<ObtainedEntry>> {
        Ok(self
            .backend
            .grants_to(actor.as_str())?
            .into_iter()
            .map(|(r, operations)| ObtainedEntry {
                unique_identifier: r.uid,
                object_type: r.object_type,
                state: r.state,
                owner: r.owner,
                operations,
            })
            .collect())
    }
}

/// What an import will write, built up step by step and applied in one batch.
struct ImportPlan<'a> {
    /// The user-given ID, handed to the first object planned.
    main_uid: Option<String>,
    tags: &'a [String],
    remove: Vec<String>,
    batch: WriteBatch,
}

/// What an API token starts with, so that leaked ones are easy to spot and scan for.
pub const API_TOKEN_PREFIX: &str = "mpk_";

fn token_hash(secret: &str) -> Result<String> {
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), secret.as_bytes())
        .map_err(StoreError::crypto("hashing an API token"))?;
    Ok(codec::hex(&digest))
}

/// The audit log and the server's API tokens. The server authenticates callers before it
/// gets here, so these take no actor; the CLI offers them only to server admins.
impl Store {
    /// Appends lines to the audit log in one transaction (a server commits a group at once).
    pub fn audit(&self, entries: &[AuditEntry]) -> Result<()> {
        self.backend.audit_append(entries)
    }

    pub fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.backend.audit_list(filter)
    }

    /// Makes a token that acts as `user`; the secret is returned once and only its hash kept.
    pub fn create_api_token(
        &self,
        user: &Actor,
        created_by: &Actor,
        expires: Option<i64>,
    ) -> Result<(ApiToken, SecretString)> {
        let mut random = Zeroizing::new([0u8; 32]);
        openssl::rand::rand_bytes(random.as_mut())
            .map_err(StoreError::crypto("drawing an API token"))?;
        let secret = Zeroizing::new(format!(
            "{API_TOKEN_PREFIX}{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                random.as_ref()
            )
        ));
        let token = ApiToken {
            id: format!("tok-{}", &new_uid()[..8]),
            user: user.to_string(),
            created: now(),
            created_by: created_by.to_string(),
            expires,
            revoked: None,
        };
        self.backend.token_insert(&token, &token_hash(&secret)?)?;
        Ok((token, SecretString::from(secret.as_str().to_owned())))
    }

    /// The live token whose secret is `secret`: not revoked, not expired.
    pub fn authenticate_api_token(&self, secret: &str) -> Result<Option<ApiToken>> {
        if !secret.starts_with(API_TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(self
            .backend
            .token_by_hash(&token_hash(secret)?)?
            .filter(|t| t.is_live(now())))
    }

    /// Live tokens that act as `user` but someone else made: who else can act as them.
    pub fn api_tokens_made_for(&self, user: &Actor) -> Result<Vec<ApiToken>> {
        let now = now();
        Ok(self
            .backend
            .token_list()?
            .into_iter()
            .filter(|t| t.user == user.as_str() && t.created_by != t.user && t.is_live(now))
            .collect())
    }

    /// Revokes a token by ID; `false` when no live token has that ID.
    pub fn revoke_api_token(&self, id: &str) -> Result<bool> {
        self.backend.token_revoke(id, now())
    }

    pub fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.backend.token_list()
    }

    /// The private key `key_uid` wrapped under the CSE key `cse_key_uid`, as Gmail's
    /// `kaclsData` carries it. The key leaves the store only in that wrapped form.
    pub fn cse_wrap_private_key(
        &self,
        actor: &Actor,
        key_uid: &str,
        cse_key_uid: &str,
    ) -> Result<String> {
        let wrapping_key = self.symmetric_key(actor, cse_key_uid, Operation::Encrypt)?;
        let key = self.private_key(actor, key_uid, Operation::Export)?;
        let pkcs8 = Zeroizing::new(
            key.private_key_to_pkcs8()
                .map_err(StoreError::crypto("encoding the private key"))?,
        );
        crate::crypto::cse_wrap(&wrapping_key, &pkcs8)
    }
}

impl ImportPlan<'_> {
    fn next_uid(&mut self) -> String {
        self.main_uid.take().unwrap_or_else(new_uid)
    }

    fn insert(&mut self, record: ObjectRecord) -> String {
        let uid = record.uid.clone();
        self.batch.insert.push(record);
        uid
    }

    /// Links `a` to `b` with `a_to_b` and back with `b_to_a`.
    fn link_both(&mut self, a: &str, a_to_b: LinkType, b: &str, b_to_a: LinkType) {
        self.batch.links.push((a.to_owned(), a_to_b, b.to_owned()));
        self.batch.links.push((b.to_owned(), b_to_a, a.to_owned()));
    }
}

#[derive(Default)]
struct PlannedKeys {
    private: Option<String>,
    public: Option<String>,
    spki: Option<String>,
}

fn base_record(
    actor: &Actor,
    uid: String,
    object_type: ObjectType,
    tags: &[String],
) -> ObjectRecord {
    let t = now();
    ObjectRecord {
        uid,
        object_type,
        state: State::Active,
        algorithm: None,
        length: None,
        owner: actor.to_string(),
        tags: tags.iter().cloned().collect(),
        links: BTreeMap::new(),
        created: t,
        updated: t,
        spki_sha256: None,
        revocation_reason: None,
        certificate: None,
        material: Material::Gone,
    }
}

/// A record for a key (or a certificate's key) with algorithm, size and SPKI hash filled.
fn key_record<T: HasPublic>(
    actor: &Actor,
    uid: String,
    object_type: ObjectType,
    key: &PKeyRef<T>,
    tags: &[String],
) -> Result<ObjectRecord> {
    let mut record = base_record(actor, uid, object_type, tags);
    let (algorithm, bits) = codec::key_algorithm(key);
    record.algorithm = algorithm;
    record.length = Some(bits);
    record.spki_sha256 = Some(codec::spki_sha256(key)?);
    Ok(record)
}

fn certificate_record(
    actor: &Actor,
    uid: String,
    cert: &X509,
    tags: &[String],
) -> Result<ObjectRecord> {
    let public = cert
        .public_key()
        .map_err(StoreError::crypto("reading a certificate's key"))?;
    let mut record = key_record(actor, uid, ObjectType::Certificate, &public, tags)?;
    record.certificate = Some(codec::certificate_info(cert)?);
    record.material = Material::Clear(
        cert.to_der()
            .map_err(StoreError::crypto("encoding a certificate"))?,
    );
    Ok(record)
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

/// Where an actor's batch is journaled (as servers before the journal took an actor did).
fn journal_key(actor: &Actor, batch: &str) -> String {
    format!("{actor}/{batch}")
}
