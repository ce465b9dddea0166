//! Reading: records as the actor may see them, access checks and their refusals, keys and
//! certificates out of their sealing, chains, issuer material and certificate exports.

use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::codec;
use crate::error::{Result, StoreError};
use crate::model::{
    Actor, Attributes, CountBy, LinkType, Material, ObjectFilter, ObjectRecord, ObjectType,
    Operation, State,
};

use super::{ExportFormat, IssuerMaterial, MAX_CHAIN, Store};

impl Store {
    pub(super) fn record(&self, uid: &str) -> Result<ObjectRecord> {
        self.backend.get(uid)?.ok_or_else(|| StoreError::NotFound {
            uid: uid.to_owned(),
        })
    }

    pub(super) fn authorize(
        &self,
        actor: &Actor,
        record: &ObjectRecord,
        operation: Operation,
    ) -> Result<()> {
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
    pub(super) fn refusal(
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

    pub(super) fn authorized(
        &self,
        actor: &Actor,
        uid: &str,
        operation: Operation,
    ) -> Result<ObjectRecord> {
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

    /// How many objects `actor` sees through `filter`, grouped as `by` says (group, count).
    pub fn count_by(
        &self,
        actor: &Actor,
        filter: &ObjectFilter,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>> {
        self.backend.count_by(filter, Some(actor.as_str()), by)
    }

    /// How many objects there are through `filter`, whoever owns them: aggregate figures for
    /// the server's metrics, never shown per object.
    pub fn count_all(&self, filter: &ObjectFilter, by: CountBy) -> Result<Vec<(String, i64)>> {
        self.backend.count_by(filter, None, by)
    }

    pub fn list(&self, actor: &Actor, filter: &ObjectFilter) -> Result<Vec<Attributes>> {
        Ok(self
            .backend
            .find(filter, actor.as_str())?
            .iter()
            .map(Attributes::from)
            .collect())
    }

    pub(super) fn clear_material(record: &ObjectRecord) -> Result<&[u8]> {
        match &record.material {
            Material::Clear(bytes) => Ok(bytes),
            Material::Gone => Err(StoreError::Destroyed {
                uid: record.uid.clone(),
            }),
            Material::Sealed(_) | Material::Hsm(_) => Err(StoreError::Corrupt {
                uid: record.uid.clone(),
                reason: "public material is sealed".to_owned(),
            }),
        }
    }

    pub(super) fn unseal(&self, record: &ObjectRecord) -> Result<Zeroizing<Vec<u8>>> {
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
            Material::Hsm(held) => Err(StoreError::InHsm {
                uid: record.uid.clone(),
                token: held.key.token.clone(),
            }),
        }
    }

    pub(super) fn expect_type(record: &ObjectRecord, expected: ObjectType) -> Result<()> {
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

    pub(super) fn parse_certificate(record: &ObjectRecord) -> Result<X509> {
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
    pub(super) fn check_usable_for(record: &ObjectRecord, operation: Operation) -> Result<()> {
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

    pub(super) fn private_key_of(&self, record: &ObjectRecord) -> Result<PKey<Private>> {
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
                if let Some(public) = Self::hsm_public_key(&record) {
                    return public;
                }
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
    pub(super) fn chain_of(&self, record: &ObjectRecord) -> Result<Vec<X509>> {
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
            key: self.issuer_key_of(&key_record)?,
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
}
