//! The storage interface the store's logic runs on. A backend keeps records, links, tags and
//! grants and applies write batches atomically; it knows nothing of cryptography or access
//! rights. SQLite is the embedded backend; another database implements the same trait.

use crate::error::Result;
use crate::model::{
    ApiToken, AuditEntry, AuditFilter, CountBy, LinkType, ObjectFilter, ObjectRecord, Operation,
    State,
};

/// Writes applied in one transaction: all of them or none.
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// Objects to delete first (their tags, links and grants go with them, as do links
    /// from other objects that point at them).
    pub remove: Vec<String>,
    /// New objects; an existing ID fails the batch with `AlreadyExists`.
    pub insert: Vec<ObjectRecord>,
    /// Links to set on objects, existing or inserted by this batch.
    pub links: Vec<(String, LinkType, String)>,
}

/// Turns one object's sealed material (given its ID) into the same material sealed anew.
pub type Reseal<'a> = dyn FnMut(&str, &[u8]) -> Result<Vec<u8>> + 'a;

pub trait Backend: Send + Sync {
    /// Applies a batch atomically.
    fn apply(&self, batch: WriteBatch) -> Result<()>;

    fn get(&self, uid: &str) -> Result<Option<ObjectRecord>>;

    /// Objects matching `filter` that `user` owns or holds any grant on (direct or `*`).
    fn find(&self, filter: &ObjectFilter, user: &str) -> Result<Vec<ObjectRecord>>;

    /// How many objects `user` sees (all of them, without a user) through `filter`, grouped as
    /// `by` says.
    fn count_by(
        &self,
        filter: &ObjectFilter,
        user: Option<&str>,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>>;

    /// Objects whose SubjectPublicKeyInfo hash is `spki_sha256`.
    fn find_by_spki(&self, spki_sha256: &str) -> Result<Vec<ObjectRecord>>;

    /// Certificates whose subject name hashes to `subject_hash`.
    fn find_by_subject_hash(&self, subject_hash: &str) -> Result<Vec<ObjectRecord>>;

    /// Certificates whose DER hashes to `fingerprint`.
    fn find_by_fingerprint(&self, fingerprint: &str) -> Result<Vec<ObjectRecord>>;

    /// IDs of objects with a link of type `link` to `target`.
    fn linked_from(&self, target: &str, link: LinkType) -> Result<Vec<String>>;

    /// Certificates the CA certificate `issuer` issued: those with one serial, or the revoked.
    fn issued(&self, issuer: &str, which: Issued<'_>) -> Result<Vec<IssuedRow>>;

    /// Up to 500 objects without a mailbox recorded, after `after` by ID, with a
    /// certificate's DER.
    fn without_email(&self, after: &str) -> Result<Vec<(String, Option<Vec<u8>>)>>;

    /// Records a certificate's mailbox (an empty string: it has none).
    fn set_email(&self, uid: &str, email: &str) -> Result<()>;

    /// Sets the state; `wipe` drops the material (destroy).
    fn set_state(
        &self,
        uid: &str,
        state: State,
        reason: Option<&str>,
        wipe: bool,
        now: i64,
    ) -> Result<()>;

    /// Adds tags to an object (existing ones are kept).
    fn add_tags(&self, uid: &str, tags: &[String], now: i64) -> Result<()>;

    /// Whether `user` (or `*`) holds `operation` on `uid`.
    fn has_grant(&self, uid: &str, user: &str, operation: Operation) -> Result<bool>;

    /// Grants (`granted`) or takes back `operations` on `uid` for `user`, atomically.
    fn set_grants(
        &self,
        uid: &str,
        user: &str,
        operations: &[Operation],
        granted: bool,
    ) -> Result<()>;

    /// Grants on one object, by grantee.
    fn grants_on(&self, uid: &str) -> Result<Vec<(String, Vec<Operation>)>>;

    /// Objects `user` holds grants on (directly or through `*`), with the operations.
    fn grants_to(&self, user: &str) -> Result<Vec<(ObjectRecord, Vec<Operation>)>>;

    /// Records that `subject` reached `step` in `batch`, with a value (an ID, say).
    fn journal_set(
        &self,
        batch: &str,
        subject: &str,
        step: &str,
        value: &str,
        now: i64,
    ) -> Result<()>;

    /// The steps `subject` reached in `batch`.
    fn journal_get(
        &self,
        batch: &str,
        subject: &str,
    ) -> Result<std::collections::BTreeMap<String, String>>;

    fn meta_get(&self, key: &str) -> Result<Option<String>>;

    /// Sets a value only if the key is absent; returns the value now stored.
    fn meta_init(&self, key: &str, value: &str) -> Result<String>;

    /// Adds one to the counter `key` (absent: 0) and returns the new value, atomically.
    fn meta_next(&self, key: &str) -> Result<i64>;

    /// Replaces every sealed material with `reseal(uid, sealed)` and the key check with
    /// `key_check`, all in one transaction (master key rotation).
    fn reseal_all(&self, reseal: &mut Reseal<'_>, key_check: &str) -> Result<usize>;

    /// Appends lines to the audit log, all in one transaction.
    fn audit_append(&self, entries: &[AuditEntry]) -> Result<()>;

    /// Audit lines matching `filter`, newest first.
    fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;

    /// Stores a new API token under the hash of its secret.
    fn token_insert(&self, token: &ApiToken, secret_hash: &str) -> Result<()>;

    /// The token whose secret hashes to `secret_hash`, revoked or not.
    fn token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>>;

    /// Marks a token revoked; returns whether a live token was found.
    fn token_revoke(&self, id: &str, now: i64) -> Result<bool>;

    fn token_list(&self) -> Result<Vec<ApiToken>>;

    /// Copies what the write-ahead log holds into the database, without holding up writers;
    /// false where there is no such log (the database server looks after its own).
    fn checkpoint(&self) -> Result<bool> {
        Ok(false)
    }
}

/// A counter's value as `meta` holds it (text).
/// Which of an issuer's certificates [`Backend::issued`] reads.
#[derive(Clone, Copy, Debug)]
pub enum Issued<'a> {
    /// Those with this serial (upper-case hex).
    Serial(&'a str),
    /// The revoked ones.
    Revoked,
}

/// What revocation data needs of one issued certificate, without decoding the object.
#[derive(Clone, Debug)]
pub struct IssuedRow {
    pub serial: String,
    pub state: State,
    pub revocation_reason: Option<String>,
    pub revoked_at: Option<i64>,
    pub updated: i64,
}

impl IssuedRow {
    pub(crate) fn decode(
        serial: String,
        state: &str,
        revocation_reason: Option<String>,
        revoked_at: Option<i64>,
        updated: i64,
    ) -> Result<Self> {
        Ok(Self {
            state: state
                .parse()
                .map_err(|reason: String| crate::StoreError::Corrupt {
                    uid: format!("serial {serial}"),
                    reason,
                })?,
            serial,
            revocation_reason,
            revoked_at,
            updated,
        })
    }
}

pub(crate) fn counter(key: &str, value: &str) -> Result<i64> {
    value.parse().map_err(|_| crate::StoreError::Corrupt {
        uid: key.to_owned(),
        reason: format!("the counter holds `{value}`"),
    })
}

/// A value bound to a listing query.
/// The `LIMIT` that ends a listing query, if the filter asks for one.
pub(crate) fn limit_clause(filter: &ObjectFilter) -> String {
    filter
        .limit
        .map(|n| format!(" LIMIT {n}"))
        .unwrap_or_default()
}

/// The `SELECT` listing the objects `where_clause` admits in creation order. A page (`limit`)
/// picks its IDs first, from the indexes alone, then reads those rows: filtering and sorting
/// whole rows (each holding key material) would read every match to keep fifty.
/// `page_from` is the inner `FROM` a page reads its IDs through (`objects o`, or with an index
/// named for a planner without statistics).
pub(crate) fn listing_query(
    columns: &str,
    where_clause: &str,
    limit: &str,
    page_from: &str,
) -> String {
    if limit.is_empty() {
        format!("SELECT {columns} FROM objects o WHERE {where_clause} ORDER BY o.created, o.uid")
    } else {
        format!(
            "SELECT {columns} FROM objects o WHERE o.uid IN (SELECT o.uid FROM {page_from} \
             WHERE {where_clause} ORDER BY o.created, o.uid{limit}) ORDER BY o.created, o.uid"
        )
    }
}

/// The `SELECT` counting the objects `where_clause` admits, grouped as `by` says: one row of
/// (group as text, count) per group. Plain SQL both dialects read alike.
pub(crate) fn count_query(where_clause: &str, by: CountBy) -> String {
    let bucket = |from: i64, width: i64| {
        format!(
            "CAST(CASE WHEN o.not_after < {from} THEN -1 ELSE (o.not_after - {from}) / {} END AS TEXT)",
            width.max(1)
        )
    };
    let group = match by {
        CountBy::State => "o.state".to_owned(),
        CountBy::ExpiryBucket { from, width } => bucket(from, width),
        CountBy::StateAndExpiry { from, width } => {
            format!("o.state || ' ' || {}", bucket(from, width))
        }
    };
    let only = match by {
        CountBy::ExpiryBucket { from, .. } => format!(" AND o.not_after >= {from}"),
        CountBy::State | CountBy::StateAndExpiry { .. } => String::new(),
    };
    format!("SELECT {group}, COUNT(*) FROM objects o WHERE {where_clause}{only} GROUP BY {group}")
}

pub(crate) enum SqlArg {
    Text(String),
    Int(i64),
}

/// The `WHERE` clause listing the objects `user` may see (every object, without a user: for
/// aggregate counts) through `filter`, written once for
/// both SQL dialects: `placeholder(n)` writes the n-th argument's marker (`?n` for SQLite,
/// `$n` for PostgreSQL) and `like` the case-insensitive match (`LIKE`, `ILIKE`).
pub(crate) fn filter_clause(
    filter: &ObjectFilter,
    user: Option<&str>,
    placeholder: fn(usize) -> String,
    like: &str,
) -> (String, Vec<SqlArg>) {
    let mut clauses = vec!["TRUE".to_owned()];
    let mut args = Vec::new();
    if let Some(user) = user {
        let first = placeholder(1);
        clauses = vec![format!(
            "(o.owner = {first} OR EXISTS (SELECT 1 FROM grants g WHERE g.uid = o.uid \
             AND g.grantee IN ({first}, '*') AND g.operation = 'get_attributes'))"
        )];
        args.push(SqlArg::Text(user.to_owned()));
    }
    let bind = |arg: SqlArg, args: &mut Vec<SqlArg>| {
        args.push(arg);
        placeholder(args.len())
    };
    if let Some(t) = filter.object_type {
        let at = bind(SqlArg::Text(t.as_str().to_owned()), &mut args);
        clauses.push(format!("o.object_type = {at}"));
    }
    for tag in &filter.tags {
        // `IN` lets the database start from the tag index; a correlated EXISTS scans every
        // object, which made per-user lookups in 10,000-user batches quadratic.
        let at = bind(SqlArg::Text(tag.clone()), &mut args);
        clauses.push(format!("o.uid IN (SELECT uid FROM tags WHERE tag = {at})"));
    }
    if let Some(text) = &filter.subject_contains {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let at = bind(SqlArg::Text(format!("%{escaped}%")), &mut args);
        clauses.push(format!("o.subject {like} {at} ESCAPE '\\'"));
    }
    if let Some(t) = filter.expires_before {
        let at = bind(SqlArg::Int(t), &mut args);
        clauses.push(format!("o.not_after < {at}"));
    }
    if filter.ca_only {
        clauses.push("o.is_ca = TRUE".to_owned());
    }
    if !filter.include_destroyed {
        clauses.push("o.state <> 'Destroyed'".to_owned());
    }
    if let Some(email) = &filter.email {
        let at = bind(SqlArg::Text(email.trim().to_lowercase()), &mut args);
        clauses.push(format!("o.email = {at}"));
    }
    if let Some(state) = filter.state {
        let at = bind(SqlArg::Text(state.as_str().to_owned()), &mut args);
        clauses.push(format!("o.state = {at}"));
    }
    if let Some(t) = filter.expires_after {
        let at = bind(SqlArg::Int(t), &mut args);
        clauses.push(format!("o.not_after >= {at}"));
    }
    if let Some(serial) = &filter.serial {
        // Stored as OpenSSL prints a BIGNUM: upper-case hex in whole bytes (`0ABC`).
        let digits: String = serial
            .chars()
            .filter(|c| !matches!(c, ':' | ' '))
            .collect::<String>()
            .to_ascii_uppercase();
        let digits = digits.trim_start_matches('0');
        let normal = match digits.len() {
            0 => "0".to_owned(),
            n if n % 2 == 1 => format!("0{digits}"),
            _ => digits.to_owned(),
        };
        let at = bind(SqlArg::Text(normal), &mut args);
        clauses.push(format!("o.serial = {at}"));
    }
    if let Some(ca) = &filter.issued_by {
        let at = bind(SqlArg::Text(ca.clone()), &mut args);
        clauses.push(format!(
            "o.issuer_hash = (SELECT subject_hash FROM objects WHERE uid = {at}) AND o.uid <> {at}"
        ));
    }
    if let Some(after) = &filter.after {
        // Keyset paging in the listing's order: a page costs its own size, not its offset.
        let at = bind(SqlArg::Text(after.clone()), &mut args);
        clauses.push(format!(
            "(o.created, o.uid) > ((SELECT created FROM objects WHERE uid = {at}), {at})"
        ));
    }
    (clauses.join(" AND "), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listing_clause_for_both_dialects_with_the_same_escaping() {
        let filter = ObjectFilter {
            tags: vec!["t".into()],
            subject_contains: Some(r"50%_off\n".into()),
            expires_before: Some(7),
            ..ObjectFilter::default()
        };
        let (sqlite, args) = filter_clause(&filter, Some("alice"), |n| format!("?{n}"), "LIKE");
        let (postgres, _) = filter_clause(&filter, Some("alice"), |n| format!("${n}"), "ILIKE");
        assert!(
            sqlite.contains("tag = ?2") && sqlite.contains("o.subject LIKE ?3"),
            "{sqlite}"
        );
        assert!(postgres.contains("tag = $2") && postgres.contains("o.subject ILIKE $3"));
        assert_eq!(
            sqlite.replace('?', "$").replace(" LIKE ", " ILIKE "),
            postgres
        );
        let pattern = args.iter().find_map(|a| match a {
            SqlArg::Text(t) if t.starts_with('%') => Some(t.clone()),
            _ => None,
        });
        assert_eq!(pattern.as_deref(), Some(r"%50\%\_off\\n%"));
        assert!(matches!(args.last(), Some(SqlArg::Int(7))));
    }
}
