//! Writing what an import brings: planning keys, pairings and chains into one write batch,
//! checked (IDs, usable objects, the stored issuer) before anything is written.

use std::collections::BTreeMap;

use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::backend::WriteBatch;
use crate::codec::{self, Bundle};
use crate::error::{Result, StoreError};
use crate::model::{
    Actor, LinkType, Material, ObjectRecord, ObjectType, Operation, State, check_tag, check_uid,
};

use super::hsm::KeyPlace;
use super::{ImportReport, ImportRequest, Store, new_uid, now};

impl Store {
    pub(super) fn private_key_record(
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
    pub(super) fn check_new_ids(
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
    pub(super) fn usable(
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
    pub(super) fn find_stored_issuer(&self, actor: &Actor, cert: &X509) -> Result<Option<String>> {
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
        let place = if request.hsm {
            if bundle.private_key.is_none() {
                return Err(StoreError::NoPrivateKey);
            }
            // Fail before anything is planned when the token is not there.
            self.hsm()?;
            KeyPlace::IntoHsm
        } else {
            KeyPlace::Store
        };
        self.import_placed(
            actor,
            bundle,
            request.uid.clone(),
            request.replace,
            &request.tags,
            &place,
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
        self.import_placed(actor, bundle, uid, replace, tags, &KeyPlace::Store)
    }

    /// [`Store::import_bundle`], with the private key where `place` says.
    pub(super) fn import_placed(
        &self,
        actor: &Actor,
        bundle: Bundle,
        uid: Option<String>,
        replace: bool,
        tags: &[String],
        place: &KeyPlace,
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
            into_hsm: Vec::new(),
        };
        let leaf_uid = match &leaf {
            Some(cert) => {
                let uid = plan.next_uid();
                Some(plan.insert(certificate_record(actor, uid, cert, plan.tags)?))
            }
            None => None,
        };
        let public_key = match (place, public_key, &leaf) {
            // A token's key comes with its certificate's public key.
            (KeyPlace::InHsm(_), None, Some(cert)) => Some(
                cert.public_key()
                    .map_err(StoreError::crypto("reading a certificate's key"))?,
            ),
            (_, public_key, _) => public_key,
        };
        let keys = self.plan_keys(actor, &mut plan, private_key.as_ref(), public_key, place)?;
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
        self.apply_with_token_keys(batch, &plan.into_hsm)?;
        tracing::info!(user = %actor, certificate = ?report.certificate, "imported");
        Ok(report)
    }

    /// Stores the private key (and the public key derived from it) or a lone public key.
    pub(super) fn plan_keys(
        &self,
        actor: &Actor,
        plan: &mut ImportPlan<'_>,
        private_key: Option<&PKey<Private>>,
        public_key: Option<PKey<Public>>,
        place: &KeyPlace,
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
        match (private_key, place, &public) {
            (Some(key), KeyPlace::IntoHsm, _) => {
                let uid = plan.next_uid();
                // The material is filled in when the key has gone into the token.
                let record =
                    key_record(actor, uid.clone(), ObjectType::PrivateKey, key, plan.tags)?;
                plan.into_hsm.push((uid, key.clone()));
                keys.private = Some(plan.insert(record));
            }
            (Some(key), _, _) => {
                let uid = plan.next_uid();
                keys.private =
                    Some(plan.insert(self.private_key_record(actor, uid, key, plan.tags)?));
            }
            (None, KeyPlace::InHsm(held), Some(public)) => {
                let uid = plan.next_uid();
                let mut record = key_record(actor, uid, ObjectType::PrivateKey, public, plan.tags)?;
                record.material = Material::Hsm(held.clone());
                keys.private = Some(plan.insert(record));
            }
            _ => {}
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
    pub(super) fn plan_pairing(
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
    pub(super) fn plan_chain(
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
}

/// What an import will write, built up step by step and applied in one batch.
pub(super) struct ImportPlan<'a> {
    /// The user-given ID, handed to the first object planned.
    main_uid: Option<String>,
    tags: &'a [String],
    remove: Vec<String>,
    batch: WriteBatch,
    /// Private keys to put into the token just before the batch is written, by record ID.
    into_hsm: Vec<(String, PKey<Private>)>,
}

impl ImportPlan<'_> {
    pub(super) fn next_uid(&mut self) -> String {
        self.main_uid.take().unwrap_or_else(new_uid)
    }

    pub(super) fn insert(&mut self, record: ObjectRecord) -> String {
        let uid = record.uid.clone();
        self.batch.insert.push(record);
        uid
    }

    /// Links `a` to `b` with `a_to_b` and back with `b_to_a`.
    pub(super) fn link_both(&mut self, a: &str, a_to_b: LinkType, b: &str, b_to_a: LinkType) {
        self.batch.links.push((a.to_owned(), a_to_b, b.to_owned()));
        self.batch.links.push((b.to_owned(), b_to_a, a.to_owned()));
    }
}

#[derive(Default)]
pub(super) struct PlannedKeys {
    private: Option<String>,
    public: Option<String>,
    spki: Option<String>,
}

pub(super) fn base_record(
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
        revoked_at: None,
        certificate: None,
        material: Material::Gone,
    }
}

/// A record for a key (or a certificate's key) with algorithm, size and SPKI hash filled.
pub(super) fn key_record<T: HasPublic>(
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

pub(super) fn certificate_record(
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
