//! The embedded SQLite backend: one file, WAL journal and a busy timeout so that several
//! `mailpki` processes can share it, schema migrations keyed on `PRAGMA user_version`, and
//! `PRAGMA application_id` to recognise our own files before touching anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, params};

use crate::backend::{Backend, Issued, IssuedRow, Reseal, SqlArg, WriteBatch, counter};
use crate::crypto::{create_private_dir, write_private_file};
use crate::error::{Result, StoreError};
use crate::model::{
    Algorithm, ApiToken, AuditEntry, AuditFilter, CountBy, LinkType, ObjectFilter, ObjectRecord,
    Operation, State,
};
use crate::row::RawRow;
use crate::sql;

/// "MPKI" — marks a SQLite file as a mailpki store.
const APPLICATION_ID: i64 = 0x4D50_4B49;

use crate::schema::MIGRATIONS;

const COLUMNS: &str = "o.uid, o.object_type, o.state, o.algorithm, o.length, o.owner, o.created, \
    o.updated, o.material, o.sealed, o.spki_sha256, o.revocation_reason, o.subject, o.issuer, \
    o.subject_hash, o.issuer_hash, o.serial, o.not_before, o.not_after, o.fingerprint, o.is_ca, \
    o.revoked_at, o.email";

pub struct SqliteBackend {
    conn: Mutex<Connection>,
    /// Idle read-only connections for listings and counts, opened as needed: WAL lets them
    /// read while the writer writes, so a server's pages do not queue behind one another.
    readers: Mutex<Vec<Connection>>,
    /// The connection `checkpoint` copies the write-ahead log with, off the writer's.
    checkpointer: Mutex<Option<Connection>>,
    path: PathBuf,
}

/// Read-only connections kept idle at most.
const IDLE_READERS: usize = 4;

/// A read-only connection, handed back to the pool when dropped.
struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a Mutex<Vec<Connection>>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // Present until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.pool.lock())
            && idle.len() < IDLE_READERS
        {
            idle.push(conn);
        }
    }
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Opens the store at `path`, creating it (mode 0600, folder 0700) when absent. Returns
    /// whether it was created. A file that is not a mailpki store is left untouched.
    pub fn open(path: &Path) -> Result<(Self, bool)> {
        let exists = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        if !exists {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)?;
            }
            match write_private_file(path, b"") {
                Ok(()) => {}
                // Another process made it first, or an empty file was there: both fine.
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(30))?;
        let not_ours = || StoreError::NotAStore {
            path: path.to_owned(),
        };
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => not_ours(),
                _ => StoreError::Database(e),
            })?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let fresh = app_id == 0 && version == 0 && table_count(&conn)? == 0;
        if app_id != APPLICATION_ID && !fresh {
            return Err(not_ours());
        }
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::StoreTooNew {
                path: path.to_owned(),
                found: version,
                supported,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleted and overwritten cells are zeroed, so a destroyed key's sealed bytes do not
        // linger in free pages of the file.
        conn.pragma_update(None, "secure_delete", true)?;
        let mut backend = Self {
            conn: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            checkpointer: Mutex::new(None),
            path: path.to_owned(),
        };
        if version < supported || app_id != APPLICATION_ID {
            backend.migrate()?;
        }
        Ok((backend, fresh))
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An idle read-only connection, or a new one.
    fn reader(&self) -> Result<Reader<'_>> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = if let Some(conn) = idle {
            conn
        } else {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(30))?;
            conn
        };
        Ok(Reader {
            conn: Some(conn),
            pool: &self.readers,
        })
    }

    fn migrate(&mut self) -> Result<()> {
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Read again under the write lock: another process may have migrated meanwhile.
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let start = usize::try_from(version).unwrap_or(usize::MAX);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(start) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tracing::debug!(version = i + 1, "applied store migration");
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: transactions roll
        // back on drop. So a poisoned lock is still safe to use.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn query_records(
        conn: &Connection,
        where_clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ObjectRecord>> {
        Self::query_records_limited(conn, where_clause, "", "objects o", args)
    }

    fn query_records_limited(
        conn: &Connection,
        where_clause: &str,
        limit: &str,
        page_from: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ObjectRecord>> {
        let sql = crate::backend::listing_query(COLUMNS, where_clause, limit, page_from);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(args, read_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|raw| attach(conn, raw)).collect()
    }
}

fn table_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?)
}

fn read_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(crate::row::raw_row!(r.get))
}

fn attach(conn: &Connection, raw: RawRow) -> Result<ObjectRecord> {
    let mut tags_stmt = conn.prepare_cached("SELECT tag FROM tags WHERE uid = ?1")?;
    let tags = tags_stmt
        .query_map([&raw.uid], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut links_stmt =
        conn.prepare_cached("SELECT link_type, target FROM links WHERE uid = ?1")?;
    let links = links_stmt
        .query_map([&raw.uid], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    raw.into_record(tags, links)
}

/// The WHERE clause and arguments of `find`: visible to `user`, and every condition of `filter`.
/// Copies the write-ahead log into the file and empties it, so that the pages a destroy
/// rewrote (zeroed by `secure_delete`) replace the old ones and no frame keeps the old bytes.
/// Another process reading at the same moment can make this a no-op; the next destroy or
/// SQLite's own checkpoint finishes it.
fn scrub_wal(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "checkpoint after destroy deferred");
    }
}

/// Where a page of a listing reads its IDs from. Without statistics SQLite takes the census
/// index for any filter on the object type, reads every object of that type and sorts them to
/// keep fifty; when nothing narrower than type and owner filters the listing, walking the
/// creation-order index and stopping at the page's end reads about fifty (a page deep in
/// 100,000 certificates went from 1.7 to 21 ms when the census index came).
fn page_from(filter: &ObjectFilter) -> &'static str {
    let narrowed = filter.state.is_some()
        || filter.expires_before.is_some()
        || filter.expires_after.is_some()
        || filter.email.is_some()
        || filter.serial.is_some()
        || !filter.tags.is_empty()
        || filter.issued_by.is_some();
    if filter.limit.is_some() && !narrowed {
        "objects o INDEXED BY objects_created"
    } else {
        "objects o"
    }
}

/// The listing's clause and arguments, as SQLite binds them.
fn filter_clause(
    filter: &ObjectFilter,
    user: Option<&str>,
) -> (String, Vec<Box<dyn rusqlite::ToSql>>) {
    let (clause, args) = crate::backend::filter_clause(filter, user, |n| format!("?{n}"), "LIKE");
    let args = args
        .into_iter()
        .map(|arg| -> Box<dyn rusqlite::ToSql> {
            match arg {
                SqlArg::Text(t) => Box::new(t),
                SqlArg::Int(i) => Box::new(i),
            }
        })
        .collect();
    (clause, args)
}

fn insert_record(tx: &Transaction<'_>, r: &ObjectRecord) -> Result<()> {
    let (material, sealed) = r.material.columns();
    let material = material.as_deref();
    let c = r.certificate.as_ref();
    let inserted = tx.execute(
        sql::INSERT_OBJECT.sqlite(),
        params![
            r.uid,
            r.object_type.as_str(),
            r.state.as_str(),
            r.algorithm.map(Algorithm::as_str),
            r.length,
            r.owner,
            r.created,
            r.updated,
            material,
            sealed,
            r.spki_sha256,
            r.revocation_reason,
            c.map(|c| &c.subject),
            c.map(|c| &c.issuer),
            c.map(|c| &c.subject_hash),
            c.map(|c| &c.issuer_hash),
            c.map(|c| &c.serial),
            c.map(|c| c.not_before),
            c.map(|c| c.not_after),
            c.map(|c| &c.sha256_fingerprint),
            c.map(|c| c.is_ca),
            c.and_then(|c| c.email.as_deref()).unwrap_or_default(),
        ],
    );
    match inserted {
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            return Err(StoreError::AlreadyExists { uid: r.uid.clone() });
        }
        other => {
            other?;
        }
    }
    for tag in &r.tags {
        tx.execute(sql::INSERT_TAG.sqlite(), params![r.uid, tag])?;
    }
    for (link, target) in &r.links {
        set_link(tx, &r.uid, *link, target)?;
    }
    Ok(())
}

fn set_link(tx: &Transaction<'_>, uid: &str, link: LinkType, target: &str) -> Result<()> {
    tx.execute(sql::SET_LINK.sqlite(), params![uid, link.as_str(), target])?;
    Ok(())
}

fn parse_operations(uid: &str, list: &str) -> Result<Vec<Operation>> {
    list.split(',')
        .map(|op| {
            op.parse().map_err(|reason| StoreError::Corrupt {
                uid: uid.to_owned(),
                reason,
            })
        })
        .collect()
}

impl Backend for SqliteBackend {
    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for uid in &batch.remove {
            tx.execute(sql::DELETE_LINKS_TO.sqlite(), [uid])?;
            tx.execute(sql::DELETE_OBJECT.sqlite(), [uid])?;
        }
        for record in &batch.insert {
            insert_record(&tx, record)?;
        }
        for (uid, link, target) in &batch.links {
            set_link(&tx, uid, *link, target)?;
        }
        tx.commit()?;
        if !batch.remove.is_empty() {
            scrub_wal(&conn);
        }
        Ok(())
    }

    fn get(&self, uid: &str) -> Result<Option<ObjectRecord>> {
        let conn = self.conn();
        Ok(Self::query_records(&conn, "o.uid = ?1", &[&uid])?
            .into_iter()
            .next())
    }

    fn find(&self, filter: &ObjectFilter, user: &str) -> Result<Vec<ObjectRecord>> {
        let (clause, args) = filter_clause(filter, Some(user));
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(AsRef::as_ref).collect();
        Self::query_records_limited(
            &*self.reader()?,
            &clause,
            &crate::backend::limit_clause(filter),
            page_from(filter),
            &refs,
        )
    }

    fn count_by(
        &self,
        filter: &ObjectFilter,
        user: Option<&str>,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>> {
        let (clause, args) = filter_clause(filter, user);
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(AsRef::as_ref).collect();
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&crate::backend::count_query(&clause, by))?;
        let rows = stmt
            .query_map(refs.as_slice(), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn find_by_spki(&self, spki_sha256: &str) -> Result<Vec<ObjectRecord>> {
        Self::query_records(&self.conn(), "o.spki_sha256 = ?1", &[&spki_sha256])
    }

    fn find_by_subject_hash(&self, subject_hash: &str) -> Result<Vec<ObjectRecord>> {
        Self::query_records(&self.conn(), "o.subject_hash = ?1", &[&subject_hash])
    }

    fn find_by_fingerprint(&self, fingerprint: &str) -> Result<Vec<ObjectRecord>> {
        Self::query_records(&self.conn(), "o.fingerprint = ?1", &[&fingerprint])
    }

    fn linked_from(&self, target: &str, link: LinkType) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql::LINKED_FROM.sqlite())?;
        let ids = stmt
            .query_map(params![target, link.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    fn without_email(&self, after: &str) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql::WITHOUT_EMAIL.sqlite())?;
        let rows = stmt
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn set_email(&self, uid: &str, email: &str) -> Result<()> {
        self.conn()
            .execute(sql::SET_EMAIL.sqlite(), params![uid, email])?;
        Ok(())
    }

    fn issued(&self, issuer: &str, which: Issued<'_>) -> Result<Vec<IssuedRow>> {
        let conn = self.conn();
        let (sql, serial) = match which {
            Issued::Serial(serial) => (sql::ISSUED_WITH_SERIAL.sqlite(), Some(serial)),
            Issued::Revoked => (sql::ISSUED_REVOKED.sqlite(), None),
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = if let Some(serial) = serial {
            stmt.query(params![issuer, serial])?
        } else {
            stmt.query(params![issuer])?
        };
        rows.mapped(|r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .map(|row| {
            let (serial, state, reason, revoked_at, updated) = row?;
            IssuedRow::decode(serial, &state, reason, revoked_at, updated)
        })
        .collect()
    }

    fn set_state(
        &self,
        uid: &str,
        state: State,
        reason: Option<&str>,
        wipe: bool,
        now: i64,
    ) -> Result<()> {
        let sql = if wipe {
            sql::SET_STATE_WIPE.sqlite()
        } else {
            sql::SET_STATE.sqlite()
        };
        let conn = self.conn();
        let changed = conn.execute(sql, params![uid, state.as_str(), reason, now])?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                uid: uid.to_owned(),
            });
        }
        if wipe {
            scrub_wal(&conn);
        }
        Ok(())
    }

    fn add_tags(&self, uid: &str, tags: &[String], now: i64) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for tag in tags {
            tx.execute(sql::ADD_TAG.sqlite(), params![uid, tag])?;
        }
        tx.execute(sql::TOUCH_OBJECT.sqlite(), params![uid, now])?;
        tx.commit()?;
        Ok(())
    }

    fn has_grant(&self, uid: &str, user: &str, operation: Operation) -> Result<bool> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM grants WHERE uid = ?1 AND grantee IN (?2, '*') AND operation = ?3",
        )?;
        Ok(stmt.exists(params![uid, user, operation.as_str()])?)
    }

    fn set_grants(
        &self,
        uid: &str,
        user: &str,
        operations: &[Operation],
        granted: bool,
    ) -> Result<()> {
        let sql = if granted {
            sql::GRANT.sqlite()
        } else {
            sql::UNGRANT.sqlite()
        };
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for op in operations {
            tx.execute(sql, params![uid, user, op.as_str()])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn grants_on(&self, uid: &str) -> Result<Vec<(String, Vec<Operation>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT grantee, group_concat(operation, ',') FROM grants WHERE uid = ?1
             GROUP BY grantee ORDER BY grantee",
        )?;
        let rows = stmt
            .query_map([uid], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(grantee, ops)| Ok((grantee, parse_operations(uid, &ops)?)))
            .collect()
    }

    fn grants_to(&self, user: &str) -> Result<Vec<(ObjectRecord, Vec<Operation>)>> {
        let conn = self.conn();
        let records = Self::query_records(
            &conn,
            "o.owner <> ?1 AND EXISTS (SELECT 1 FROM grants g WHERE g.uid = o.uid \
             AND g.grantee IN (?1, '*'))",
            &[&user],
        )?;
        let mut stmt = conn.prepare_cached(
            "SELECT group_concat(DISTINCT operation) FROM grants
             WHERE uid = ?1 AND grantee IN (?2, '*')",
        )?;
        records
            .into_iter()
            .map(|record| {
                let ops: String = stmt.query_row(params![record.uid, user], |r| r.get(0))?;
                let ops = parse_operations(&record.uid, &ops)?;
                Ok((record, ops))
            })
            .collect()
    }

    fn journal_set(
        &self,
        batch: &str,
        subject: &str,
        step: &str,
        value: &str,
        now: i64,
    ) -> Result<()> {
        self.conn().execute(
            sql::JOURNAL_SET.sqlite(),
            params![batch, subject, step, value, now],
        )?;
        Ok(())
    }

    fn journal_get(&self, batch: &str, subject: &str) -> Result<BTreeMap<String, String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql::JOURNAL_GET.sqlite())?;
        let rows = stmt
            .query_map(params![batch, subject], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(sql::META_GET.sqlite(), [key], |r| r.get(0))
            .optional()?)
    }

    fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(sql::META_INIT.sqlite(), params![key, value])?;
        let stored: String = tx.query_row(sql::META_GET.sqlite(), [key], |r| r.get(0))?;
        tx.commit()?;
        Ok(stored)
    }

    fn meta_next(&self, key: &str) -> Result<i64> {
        let value: String = self
            .conn()
            .query_row(sql::META_NEXT.sqlite(), [key], |r| r.get(0))?;
        counter(key, &value)
    }

    fn reseal_all(&self, reseal: &mut Reseal<'_>, key_check: &str) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<(String, Vec<u8>)> = {
            let mut stmt = tx.prepare(
                "SELECT uid, material FROM objects WHERE sealed = 1 AND material IS NOT NULL",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (uid, sealed) in &rows {
            let resealed = reseal(uid, sealed)?;
            tx.execute(sql::RESEAL.sqlite(), params![uid, resealed])?;
        }
        tx.execute(sql::SET_KEY_CHECK.sqlite(), [key_check])?;
        tx.commit()?;
        Ok(rows.len())
    }

    fn audit_append(&self, entries: &[AuditEntry]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(sql::AUDIT_APPEND.sqlite())?;
            for e in entries {
                stmt.execute(params![
                    e.at,
                    e.actor,
                    e.operation,
                    e.object,
                    e.outcome,
                    e.detail,
                    e.via
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT at, actor, operation, object, outcome, detail, via FROM audit
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR object = ?2)
               AND (?4 IS NULL OR operation = ?4) AND (?5 IS NULL OR at >= ?5)
               AND (?6 IS NULL OR at < ?6)
             ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(
                params![
                    filter.actor,
                    filter.object,
                    filter.limit as i64,
                    filter.operation,
                    filter.since,
                    filter.until
                ],
                |r| {
                    Ok(AuditEntry {
                        at: r.get(0)?,
                        actor: r.get(1)?,
                        operation: r.get(2)?,
                        object: r.get(3)?,
                        outcome: r.get(4)?,
                        detail: r.get(5)?,
                        via: r.get(6)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn token_insert(&self, t: &ApiToken, secret_hash: &str) -> Result<()> {
        let inserted = self.conn().execute(
            sql::TOKEN_INSERT.sqlite(),
            params![
                t.id,
                t.user,
                secret_hash,
                t.created,
                t.created_by,
                t.expires
            ],
        );
        match inserted {
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                Err(StoreError::AlreadyExists { uid: t.id.clone() })
            }
            other => other.map(drop).map_err(Into::into),
        }
    }

    fn token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        Ok(self
            .conn()
            .query_row(sql::TOKEN_BY_HASH.sqlite(), [secret_hash], read_token)
            .optional()?)
    }

    fn token_revoke(&self, id: &str, now: i64) -> Result<bool> {
        let changed = self
            .conn()
            .execute(sql::TOKEN_REVOKE.sqlite(), params![id, now])?;
        Ok(changed > 0)
    }

    fn token_list(&self) -> Result<Vec<ApiToken>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql::TOKEN_LIST.sqlite())?;
        let rows = stmt
            .query_map([], read_token)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    fn checkpoint(&self) -> Result<bool> {
        let mut slot = self
            .checkpointer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(5))?;
            *slot = Some(conn);
        }
        if let Some(conn) = slot.as_ref() {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(true)
    }
}

fn read_token(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        user: r.get(1)?,
        created: r.get(2)?,
        created_by: r.get(3)?,
        expires: r.get(4)?,
        revoked: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_foreign_sqlite_files_without_touching_them() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir"))?;
        let path = dir.path().join("other.sqlite");
        {
            let conn = Connection::open(&path)?;
            conn.execute_batch("CREATE TABLE mine (x INTEGER); INSERT INTO mine VALUES (1);")?;
        }
        let before = std::fs::read(&path).map_err(StoreError::io(&path))?;
        assert!(matches!(
            SqliteBackend::open(&path),
            Err(StoreError::NotAStore { .. })
        ));
        assert_eq!(std::fs::read(&path).map_err(StoreError::io(&path))?, before);
        Ok(())
    }

    #[test]
    fn refuses_files_that_are_not_sqlite() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir"))?;
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, vec![b'x'; 4096]).map_err(StoreError::io(&path))?;
        assert!(matches!(
            SqliteBackend::open(&path),
            Err(StoreError::NotAStore { .. })
        ));
        Ok(())
    }

    /// The server's checkpoints copy the write-ahead log from their own connection while the
    /// writer keeps committing, and every committed line stays readable.
    #[test]
    fn checkpoints_copy_the_log_beside_the_writer() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir"))?;
        let path = dir.path().join("kms.sqlite");
        let (backend, _) = SqliteBackend::open(&path)?;
        let line = |i: i64| AuditEntry {
            at: i,
            actor: "alice".into(),
            operation: "kacls.privatekeysign".into(),
            object: None,
            outcome: "ok".into(),
            detail: None,
            via: None,
        };
        let frames = |conn: &Connection| -> Result<(i64, i64)> {
            Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })?)
        };
        for i in 0..50 {
            backend.audit_append(&[line(i)])?;
            if i % 10 == 0 {
                assert!(backend.checkpoint()?);
            }
        }
        assert!(backend.checkpoint()?);
        // Another connection finds nothing left to copy: the checkpoint caught up.
        let (log, copied) = frames(&Connection::open(&path)?)?;
        assert!(log > 0 && copied == log, "{copied} of {log} frames copied");
        let lines = backend.audit_list(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })?;
        assert_eq!(lines.len(), 50);
        Ok(())
    }

    /// Regression: tag lookups scanned the whole objects table.
    #[test]
    fn tag_lookups_use_the_tag_index() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir"))?;
        let (backend, _) = SqliteBackend::open(&dir.path().join("kms.sqlite"))?;
        let conn = backend.conn();
        let filter = ObjectFilter {
            tags: vec![
                "mailpki:batch=b".into(),
                "mailpki:email=u@example.com".into(),
            ],
            ..ObjectFilter::default()
        };
        let (clause, args) = filter_clause(&filter, Some("alice"));
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(AsRef::as_ref).collect();
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT {COLUMNS} FROM objects o WHERE {clause}"
            ))?
            .query_map(refs.as_slice(), |r| r.get::<_, String>(3))?
            .collect::<rusqlite::Result<_>>()?;
        assert!(plan.iter().any(|p| p.contains("tags_tag")), "{plan:?}");
        assert!(!plan.iter().any(|p| p == "SCAN o"), "{plan:?}");
        Ok(())
    }

    /// Regression: a page of certificates filtered by type alone read every certificate
    /// through the census index and sorted them (21 ms deep in 100,000); it walks the
    /// creation-order index and stops at the page's end. A state filter keeps the census index.
    #[test]
    fn a_page_by_type_alone_walks_the_creation_order() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir"))?;
        let (backend, _) = SqliteBackend::open(&dir.path().join("kms.sqlite"))?;
        let conn = backend.conn();
        let plan = |filter: &ObjectFilter| -> Result<Vec<String>> {
            let (clause, args) = filter_clause(filter, Some("alice"));
            let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(AsRef::as_ref).collect();
            let sql = crate::backend::listing_query(
                COLUMNS,
                &clause,
                &crate::backend::limit_clause(filter),
                page_from(filter),
            );
            Ok(conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?
                .query_map(refs.as_slice(), |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<_>>()?)
        };
        let page = ObjectFilter {
            object_type: Some(crate::model::ObjectType::Certificate),
            after: Some("some-id".into()),
            limit: Some(50),
            ..ObjectFilter::default()
        };
        let steps = plan(&page)?;
        assert!(
            steps.iter().any(|p| p.contains("objects_created")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|p| p.contains("objects_census")),
            "{steps:?}"
        );
        let active = ObjectFilter {
            state: Some(State::Active),
            ..page
        };
        let steps = plan(&active)?;
        assert!(
            steps.iter().any(|p| p.contains("objects_census")),
            "{steps:?}"
        );
        Ok(())
    }

    #[test]
    fn opens_twice_and_migrates_once() -> Result<()> {
        let dir = tempfile::tempdir().map_err(StoreError::io("tempdir"))?;
        let path = dir.path().join("kms.sqlite");
        let (_a, created_a) = SqliteBackend::open(&path)?;
        let (b, created_b) = SqliteBackend::open(&path)?;
        assert!(created_a && !created_b);
        assert_eq!(b.meta_init("k", "v1")?, "v1");
        assert_eq!(b.meta_init("k", "v2")?, "v1");
        Ok(())
    }
}
