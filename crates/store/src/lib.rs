//! `mailpki-store` keeps an organization's certificates and keys: objects (certificates,
//! private, public and symmetric keys) with KMIP-style attributes, typed links, tags, lifecycle
//! states and per-user access rights, on SQLite with secret material sealed at rest under a
//! master key. It also reads and writes the formats they travel in (PKCS#12, PKCS#7, PEM, DER).
//!
//! It knows nothing about Google or HTTP. Callers open a [`Store`] and act through it as an
//! [`Actor`]; the store checks each operation against the owner and the grants.

mod backend;
mod codec;
mod crypto;
mod error;
mod model;
mod postgres;
mod row;
mod schema;
mod sql;
mod sqlite;
mod store;
mod text;

pub use backend::{Backend, Issued, IssuedRow, Reseal, WriteBatch};
pub use codec::{
    Bundle, ImportFormat, Pkcs12Profile, build_pkcs12, certificate_info, format_name, hex,
    is_self_signed, issued_by, key_algorithm, parse as parse_bundle, pkcs7_pem, spki_sha256,
};
pub use crypto::{
    MasterKeySource, create_private_dir, cse_unwrap, cse_wrap, open_no_follow,
    replace_private_file, write_private_file,
};
pub use error::{Result, StoreError};
pub use mailpki_hsm::{HsmConfig, HsmError, PinSource};
pub use model::{
    Actor, Algorithm, ApiToken, Attributes, AuditEntry, AuditFilter, CertificateInfo, CountBy,
    HsmHeld, LinkType, Material, ObjectFilter, ObjectRecord, ObjectType, Operation,
    RevocationReason, RevokedCertificate, State, rfc3339,
};
pub use postgres::{PoolOptions, PostgresBackend, is_postgres_url, redact_url};
pub use sqlite::SqliteBackend;
pub use store::{
    API_TOKEN_PREFIX, AccessEntry, DestroyOptions, ExportFormat, ImportReport, ImportRequest,
    IssuedStatus, IssuerKey, IssuerMaterial, ObtainedEntry, Store, StoreLocation,
};
pub use text::{escape, excerpt, is_invisible, looks_confusable};
