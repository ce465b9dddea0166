//! Keys held by a PKCS#11 token: the token, opened at the first use of one of its keys; the
//! records that point into it; and what goes through it (an issuer's signatures, CSE
//! wrapping). A key in the token is never read out: asking for its material is refused.

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_hsm::{Hsm, HsmConfig, HsmKey, KeyKind};
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::backend::WriteBatch;
use crate::codec::Bundle;
use crate::error::{Result, StoreError};
use crate::model::{Actor, Algorithm, HsmHeld, Material, ObjectRecord, ObjectType, Operation};

use super::import::base_record;
use super::{ImportReport, Store, new_uid};

/// The configured token, if any, and its opened handle once a key needed it.
#[derive(Default)]
pub(super) struct HsmSlot {
    config: Option<HsmConfig>,
    opened: Mutex<Option<Arc<Hsm>>>,
}

/// What an issuer signs with: a key sealed in the store, or one in the HSM that signs there.
#[derive(Clone)]
pub enum IssuerKey {
    Stored(PKey<Private>),
    Hsm(HsmKey),
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stored(_) => f.write_str("Stored([REDACTED])"),
            Self::Hsm(key) => write!(f, "Hsm({})", key.key_ref()),
        }
    }
}

/// Where an import puts the private key it brings.
pub(super) enum KeyPlace {
    /// Sealed under the master key.
    Store,
    /// Into the configured token (then sealed nowhere).
    IntoHsm,
    /// Already in the token: the record points at it.
    InHsm(HsmHeld),
}

impl Store {
    /// Lets this store use keys in the token `config` names. The token is opened (module
    /// loaded, PIN given) only when a key in it is first used.
    #[must_use]
    pub fn with_hsm(mut self, config: Option<HsmConfig>) -> Self {
        self.hsm = HsmSlot {
            config,
            opened: Mutex::new(None),
        };
        self
    }

    /// The configured token, logged in.
    pub fn hsm(&self) -> Result<Arc<Hsm>> {
        let mut opened = self
            .hsm
            .opened
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(hsm) = opened.as_ref() {
            return Ok(Arc::clone(hsm));
        }
        let config = self.hsm.config.as_ref().ok_or(StoreError::NoHsm)?;
        let hsm = Hsm::open(config)?;
        *opened = Some(Arc::clone(&hsm));
        Ok(hsm)
    }

    /// The token holding `held`, which `record` points at.
    fn hsm_for(&self, record: &ObjectRecord, held: &HsmHeld) -> Result<Arc<Hsm>> {
        match self.hsm() {
            Err(StoreError::NoHsm) => Err(StoreError::HsmNotConfigured {
                uid: record.uid.clone(),
                token: held.key.token.clone(),
            }),
            other => other,
        }
    }

    /// What the private key `record` signs with.
    pub(super) fn issuer_key_of(&self, record: &ObjectRecord) -> Result<IssuerKey> {
        let Material::Hsm(held) = &record.material else {
            return Ok(IssuerKey::Stored(self.private_key_of(record)?));
        };
        let hsm = self.hsm_for(record, held)?;
        let public = held_public_key(record, held)?;
        Ok(IssuerKey::Hsm(hsm.signer(&held.key, public)?))
    }

    /// A private key record's public key, for a key held in a token.
    pub(super) fn hsm_public_key(record: &ObjectRecord) -> Option<Result<PKey<Public>>> {
        match &record.material {
            Material::Hsm(held) => Some(held_public_key(record, held)),
            _ => None,
        }
    }

    /// Records a private key already in the token (made there, say, by its administrators)
    /// beside its certificate, linked and chained as an import would. The certificate gives
    /// the public key; one signature by the token proves the pairing before anything is
    /// written.
    pub fn register_hsm_key(
        &self,
        actor: &Actor,
        label: Option<&str>,
        id: Option<&str>,
        certificate: X509,
        uid: Option<String>,
        tags: &[String],
    ) -> Result<ImportReport> {
        self.check_new_ids(actor, uid.as_deref(), false, tags)?;
        let hsm = self.hsm()?;
        let (key, kind) = hsm.find_key(label, id)?;
        if kind == KeyKind::Aes {
            return Err(StoreError::Hsm(mailpki_hsm::HsmError::Unsupported {
                reason: format!("{key} is an AES key; an issuer needs an RSA or EC private key"),
            }));
        }
        let public = certificate
            .public_key()
            .map_err(StoreError::crypto("reading the certificate's key"))?;
        hsm.signer(&key, public.clone())?.check_pair()?;
        let held = HsmHeld {
            key,
            public_key: Some(spki_base64(&public)?),
        };
        let bundle = Bundle {
            certificates: vec![certificate],
            private_key: None,
            public_key: None,
        };
        self.import_placed(actor, bundle, uid, false, tags, &KeyPlace::InHsm(held))
    }

    /// Makes an AES-256 key inside the token (for Gmail CSE wrapping) and records it.
    pub fn create_hsm_symmetric_key(
        &self,
        actor: &Actor,
        uid: Option<String>,
        tags: &[String],
    ) -> Result<String> {
        self.check_new_ids(actor, uid.as_deref(), false, tags)?;
        let uid = uid.unwrap_or_else(new_uid);
        let hsm = self.hsm()?;
        let key = hsm.generate_aes_key(&uid)?;
        if let Err(e) = self.write_hsm_symmetric_key(actor, &uid, key.clone(), tags) {
            // Nothing half-made: the token's key goes with the failed write.
            let _ = hsm.destroy_key(&key, true);
            return Err(e);
        }
        Ok(uid)
    }

    /// Records an existing AES key of the token (by label or ID) as a symmetric key.
    pub fn register_hsm_symmetric_key(
        &self,
        actor: &Actor,
        label: Option<&str>,
        id: Option<&str>,
        uid: Option<String>,
        tags: &[String],
    ) -> Result<String> {
        self.check_new_ids(actor, uid.as_deref(), false, tags)?;
        let uid = uid.unwrap_or_else(new_uid);
        let hsm = self.hsm()?;
        let (key, kind) = hsm.find_key(label, id)?;
        if kind != KeyKind::Aes {
            return Err(StoreError::Hsm(mailpki_hsm::HsmError::Unsupported {
                reason: format!("{key} is not an AES key"),
            }));
        }
        self.write_hsm_symmetric_key(actor, &uid, key, tags)?;
        Ok(uid)
    }

    /// Stores the record of an AES-256 key held by the token.
    fn write_hsm_symmetric_key(
        &self,
        actor: &Actor,
        uid: &str,
        key: mailpki_hsm::KeyRef,
        tags: &[String],
    ) -> Result<()> {
        let mut record = base_record(actor, uid.to_owned(), ObjectType::SymmetricKey, tags);
        record.algorithm = Some(Algorithm::Aes);
        record.length = Some(256);
        record.material = Material::Hsm(HsmHeld {
            key,
            public_key: None,
        });
        self.backend.apply(WriteBatch {
            insert: vec![record],
            ..WriteBatch::default()
        })
    }

    /// Puts the planned private keys into the token, fills their records, and writes the
    /// batch; if the write fails, the keys leave the token again.
    pub(super) fn apply_with_token_keys(
        &self,
        mut batch: WriteBatch,
        pending: &[(String, PKey<Private>)],
    ) -> Result<()> {
        if pending.is_empty() {
            return self.backend.apply(batch);
        }
        let hsm = self.hsm()?;
        let mut placed = Vec::new();
        let result = (|| {
            for (uid, key) in pending {
                let key_ref = hsm.import_private_key(key, uid)?;
                placed.push(key_ref.clone());
                let public = spki_base64(key)?;
                if let Some(record) = batch.insert.iter_mut().find(|r| &r.uid == uid) {
                    record.material = Material::Hsm(HsmHeld {
                        key: key_ref,
                        public_key: Some(public),
                    });
                }
            }
            self.backend.apply(batch)
        })();
        if result.is_err() {
            for key in &placed {
                let _ = hsm.destroy_key(key, false);
            }
        }
        result
    }

    /// A private key (PKCS#8) wrapped under the CSE key `cse_key_uid` (`encrypt` right):
    /// base64(nonce ‖ AES-256-GCM ciphertext ‖ tag), through the token when the key is there.
    pub fn cse_wrap(&self, actor: &Actor, cse_key_uid: &str, pkcs8: &[u8]) -> Result<String> {
        let record = self.cse_key_record(actor, cse_key_uid, Operation::Encrypt)?;
        match &record.material {
            Material::Hsm(held) => {
                let hsm = self.hsm_for(&record, held)?;
                Ok(STANDARD.encode(hsm.seal(&held.key, pkcs8, b"")?))
            }
            _ => crate::crypto::cse_wrap(&self.unseal(&record)?, pkcs8),
        }
    }

    /// Opens what [`Store::cse_wrap`] made (`decrypt` right); `None` when this CSE key did
    /// not wrap it or it was altered.
    pub fn cse_unwrap(
        &self,
        actor: &Actor,
        cse_key_uid: &str,
        wrapped: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let record = self.cse_key_record(actor, cse_key_uid, Operation::Decrypt)?;
        match &record.material {
            Material::Hsm(held) => {
                let Ok(sealed) = STANDARD.decode(wrapped.trim()) else {
                    return Ok(None);
                };
                let hsm = self.hsm_for(&record, held)?;
                Ok(hsm.unseal(&held.key, &sealed, b"")?)
            }
            _ => crate::crypto::cse_unwrap(&self.unseal(&record)?, wrapped),
        }
    }

    fn cse_key_record(
        &self,
        actor: &Actor,
        uid: &str,
        operation: Operation,
    ) -> Result<ObjectRecord> {
        let record = self.authorized(actor, uid, operation)?;
        Self::expect_type(&record, ObjectType::SymmetricKey)?;
        Self::check_usable_for(&record, operation)?;
        Ok(record)
    }

    /// Checks that `uid` is an active symmetric key `actor` may `operation` (encrypt: wrap,
    /// decrypt: unwrap) with, without reading its material.
    pub fn check_cse_key(&self, actor: &Actor, uid: &str, operation: Operation) -> Result<()> {
        self.cse_key_record(actor, uid, operation).map(drop)
    }
}

fn spki_base64<T: openssl::pkey::HasPublic>(key: &PKeyRef<T>) -> Result<String> {
    Ok(STANDARD.encode(
        key.public_key_to_der()
            .map_err(StoreError::crypto("encoding a public key"))?,
    ))
}

fn held_public_key(record: &ObjectRecord, held: &HsmHeld) -> Result<PKey<Public>> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        uid: record.uid.clone(),
        reason: reason.to_owned(),
    };
    let text = held
        .public_key
        .as_deref()
        .ok_or_else(|| corrupt("the HSM key's record has no public key"))?;
    let der = STANDARD
        .decode(text)
        .map_err(|_| corrupt("the HSM key's public key is not base64"))?;
    PKey::public_key_from_der(&der).map_err(|_| corrupt("the HSM key's public key cannot be read"))
}
