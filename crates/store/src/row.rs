//! A stored object as a backend reads it, before its text columns are parsed. Both backends
//! fill one of these and let it build the [`ObjectRecord`], so they cannot disagree on what a
//! column means.

use std::collections::BTreeMap;

use crate::error::{Result, StoreError};
use crate::model::{CertificateInfo, LinkType, Material, ObjectRecord, ObjectType, State};

/// Reads the object columns (in the order of both backends' `COLUMNS`) into a [`RawRow`],
/// given the row and its getter method (`get` for rusqlite, `try_get` for postgres); the
/// enclosing function's `?` converts the driver's error.
macro_rules! raw_row {
    ($row:ident . $get:ident) => {{
        let subject: Option<String> = $row.$get(12)?;
        let cert = match subject {
            Some(subject) => Some($crate::model::CertificateInfo {
                subject,
                issuer: $row.$get(13)?,
                subject_hash: $row.$get(14)?,
                issuer_hash: $row.$get(15)?,
                serial: $row.$get(16)?,
                not_before: $row.$get(17)?,
                not_after: $row.$get(18)?,
                sha256_fingerprint: $row.$get(19)?,
                is_ca: $row.$get(20)?,
                email: $row.$get(22)?,
            }),
            None => None,
        };
        $crate::row::RawRow {
            uid: $row.$get(0)?,
            object_type: $row.$get(1)?,
            state: $row.$get(2)?,
            algorithm: $row.$get(3)?,
            length: $row.$get(4)?,
            owner: $row.$get(5)?,
            created: $row.$get(6)?,
            updated: $row.$get(7)?,
            material: $row.$get(8)?,
            sealed: $row.$get(9)?,
            spki_sha256: $row.$get(10)?,
            revocation_reason: $row.$get(11)?,
            revoked_at: $row.$get(21)?,
            cert,
        }
    }};
}

pub(crate) use raw_row;

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
    pub(crate) revoked_at: Option<i64>,
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
        let material = Material::from_columns(self.material, self.sealed)
            .ok_or_else(|| corrupt("its HSM key reference cannot be read".to_owned()))?;
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
            revoked_at: self.revoked_at,
            certificate: self.cert,
            material,
        })
    }
}
