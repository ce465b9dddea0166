//! An object's life after import: new symmetric keys, tags, revocation, destruction (and what
//! depends on an object), and the journal of resumable batches.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::backend::{Issued, IssuedRow, WriteBatch};
use crate::crypto::KEY_LEN;
use crate::error::{Result, StoreError};
use crate::model::{
    Actor, Algorithm, LinkType, Material, ObjectRecord, ObjectType, Operation, RevocationReason,
    RevokedCertificate, State, check_tag,
};

use super::import::base_record;
use super::{DestroyOptions, IssuerMaterial, Store, new_uid, now};

impl Store {
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
    pub(super) fn dependents(&self, record: &ObjectRecord) -> Result<Vec<String>> {
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
        if options.remove
            && let Some(cert) = &record.certificate
            && record.object_type == ObjectType::Certificate
            && is_revoked(record.state, record.revoked_at)
            && cert.not_after > now()
        {
            return Err(StoreError::StillListed {
                uid: uid.to_owned(),
                until: time::OffsetDateTime::from_unix_timestamp(cert.not_after)
                    .map_or_else(|_| cert.not_after.to_string(), |t| t.date().to_string()),
            });
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

    /// Revokes an object: it stays readable but is no longer active. A certificate's reason is
    /// one of RFC 5280's (it goes into CRLs), a note may follow a colon; with `compromised` an
    /// unnamed reason is a key compromise. A key's reason is free text. A revoked certificate
    /// can only be revoked again for a compromise (which a CRL must then say).
    pub fn revoke(&self, actor: &Actor, uid: &str, reason: &str, compromised: bool) -> Result<()> {
        let record = self.authorized(actor, uid, Operation::Revoke)?;
        if record.state == State::Destroyed {
            return Err(StoreError::Destroyed {
                uid: uid.to_owned(),
            });
        }
        let mut compromised = compromised;
        let recorded = if record.object_type == ObjectType::Certificate {
            let (code, note) = match RevocationReason::parse_with_note(reason) {
                Some(parsed) => parsed,
                None if compromised => (RevocationReason::KeyCompromise, Some(reason.trim())),
                None => {
                    return Err(StoreError::UnknownRevocationReason {
                        given: reason.to_owned(),
                    });
                }
            };
            compromised |= code.is_compromise();
            let revoked = matches!(record.state, State::Deactivated | State::Compromised);
            if revoked && !compromised {
                return Err(StoreError::AlreadyRevoked {
                    uid: uid.to_owned(),
                    reason: record.revocation_reason.clone().unwrap_or_default(),
                });
            }
            match note {
                Some(note) => format!("{}: {note}", code.as_str()),
                None => code.as_str().to_owned(),
            }
        } else {
            reason.to_owned()
        };
        let state = if compromised {
            State::Compromised
        } else {
            State::Deactivated
        };
        self.backend
            .set_state(uid, state, Some(&recorded), false, now())?;
        if record.object_type == ObjectType::Certificate {
            // What published CRLs and OCSP answers compare with to know they are stale.
            self.backend.meta_next(REVOCATIONS)?;
        }
        Ok(())
    }

    /// A number that changes whenever a certificate is revoked: published revocation data
    /// made before it changed is stale.
    pub fn revocation_marker(&self) -> Result<i64> {
        Ok(self
            .backend
            .meta_get(REVOCATIONS)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// What the CA certificate `issuer_uid` says of the certificate it issued with `serial`
    /// (upper-case hex): `None` when it issued none we know (an OCSP "unknown"). Needs the
    /// `get` right on the issuer.
    pub fn issued_status(
        &self,
        actor: &Actor,
        issuer_uid: &str,
        serial: &str,
    ) -> Result<Option<IssuedStatus>> {
        self.authorized(actor, issuer_uid, Operation::Get)?;
        let rows = self.backend.issued(issuer_uid, Issued::Serial(serial))?;
        // Two objects for one serial (a re-import under another ID): revoked wins.
        Ok(rows
            .iter()
            .map(IssuedStatus::of)
            .max_by_key(|status| status.revoked_at.is_some()))
    }

    /// What a CRL of the CA whose private key is `private_key_uid` holds: its signing material
    /// (`certify` right needed, as for minting), the next CRL number, and the revoked
    /// certificates it issued.
    pub fn revocation_list(
        &self,
        actor: &Actor,
        private_key_uid: &str,
    ) -> Result<(IssuerMaterial, i64, Vec<RevokedCertificate>)> {
        let material = self.issuer_material(actor, private_key_uid)?;
        let issuer_uid = material.certificate_id.clone();
        let mut revoked: Vec<RevokedCertificate> = self
            .backend
            .issued(&issuer_uid, Issued::Revoked)?
            .iter()
            .map(|row| {
                let status = IssuedStatus::of(row);
                RevokedCertificate {
                    serial: row.serial.clone(),
                    revoked_at: status.revoked_at.unwrap_or(row.updated),
                    reason: status.reason,
                }
            })
            .collect();
        revoked.dedup_by(|a, b| a.serial == b.serial);
        let number = self
            .backend
            .meta_next(&format!("crl_number:{issuer_uid}"))?;
        Ok((material, number, revoked))
    }
}

/// The `meta` counter of certificate revocations.
const REVOCATIONS: &str = "revocations";

/// What an issuer's certificate says of one it issued.
#[derive(Clone, Copy, Debug)]
pub struct IssuedStatus {
    /// `Some` when revoked.
    pub revoked_at: Option<i64>,
    pub reason: Option<RevocationReason>,
}

/// Whether a certificate is revoked: deactivated or compromised, or destroyed after a
/// revocation (its date kept), which does not un-revoke it.
fn is_revoked(state: State, revoked_at: Option<i64>) -> bool {
    matches!(state, State::Deactivated | State::Compromised)
        || (state == State::Destroyed && revoked_at.is_some())
}

impl IssuedStatus {
    fn of(row: &IssuedRow) -> Self {
        let revoked = is_revoked(row.state, row.revoked_at);
        Self {
            // Revoked before the date was kept: the last change is the best guess.
            revoked_at: revoked.then(|| row.revoked_at.unwrap_or(row.updated)),
            reason: row
                .revocation_reason
                .as_deref()
                .and_then(RevocationReason::parse_with_note)
                .map(|(code, _)| code)
                .filter(|_| revoked),
        }
    }
}

/// Where an actor's batch is journaled (as servers before the journal took an actor did).
pub(super) fn journal_key(actor: &Actor, batch: &str) -> String {
    format!("{actor}/{batch}")
}
