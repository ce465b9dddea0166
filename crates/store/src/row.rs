//! A stored object as a backend reads it, before its text columns are parsed. Both backends
//! fill one of these and let it build the [`ObjectRecord`], so they cannot disagree on what a
//! column means.

use std::collections::BTreeMap;

use crate::error::{Result, StoreError};
use crate::model::{CertificateInfo, LinkType, Material, ObjectRecord, ObjectType, State};

pub(crate) struct RawRow {
    pub(crate) uid: String,
    pub(crate) object_type: String,
    pub(crate) state: String,
    pub(crate) algorithm: Option<String>,
    pub(crate) length: Option<i64>,
    pub(crate) owner: String,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) material: Option<Vec<u8>>,
    pub(crate) sealed: bool,
    pub(crate) spki_sha256: Option<String>,
    pub(crate) revocation_reason: Option<String>,
    pub(crate) cert: Option<CertificateInfo>,
}

impl RawRow {
    /// Parses the text columns and attaches the object's tags and `(link type, target)` links.
    pub(crate) fn into_record(
        self,
        tags: std::collections::BTreeSet<String>,
        links: Vec<(String, String)>,
    ) -> Result<ObjectRecord> {
        let corrupt = |reason: String| StoreError::Corrupt {
            uid: self.uid.clone(),
            reason,
        };
        let object_type: ObjectType = self.object_type.parse().map_err(corrupt)?;
        let state: State = self.state.parse().map_err(corrupt)?;
        let algorithm = self
            .algorithm
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(corrupt)?;
        let mut link_map = BTreeMap::new();
        for (link_type, target) in links {
            link_map.insert(link_type.parse::<LinkType>().map_err(corrupt)?, target);
        }
        let material = match (self.material, self.sealed) {
            (None, _) => Material::Gone,
            (Some(bytes), true) => Material::Sealed(bytes),
            (Some(bytes), false) => Material::Clear(bytes),
        };
        Ok(ObjectRecord {
            uid: self.uid,
            object_type,
            state,
            algorithm,
            length: self.length.map(|l| l as u32),
            owner: self.owner,
            tags,
            links: link_map,
            created: self.created,
            updated: self.updated,
            spki_sha256: self.spki_sha256,
            revocation_reason: self.revocation_reason,
            certificate: self.cert,
            material,
        })
    }
}
