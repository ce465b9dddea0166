//! The PostgreSQL backend, for a team's shared store and for several `mailpki server`
//! instances over one database. The schema and its versions are the SQLite backend's
//! ([`crate::schema`]); a transaction-scoped advisory lock lets instances that start together
//! migrate once. Every write is one transaction, so a connection lost mid-request leaves
//! nothing half-written, and the error says the database is unavailable rather than wrong.

use std::collections::BTreeMap;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{GenericClient, Row, Transaction};
use postgres_openssl::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;

use crate::backend::{Backend, Issued, IssuedRow, Reseal, SqlArg, WriteBatch, counter};
use crate::error::{Result, StoreError};
use crate::model::{
    Algorithm, ApiToken, AuditEntry, AuditFilter, CountBy, LinkType, ObjectFilter, ObjectRecord,
    Operation, State,
};
use crate::sql;

/// Also the advisory lock key under which migrations run.
const APPLICATION_ID: i64 = 0x4D50_4B49;

const COLUMNS: &str = "o.uid, o.object_type, o.state, o.algorithm, o.length, o.owner, o.created, \
    o.updated, o.material, o.sealed, o.spki_sha256, o.revocation_reason, o.subject, o.issuer, \
    o.subject_hash, o.issuer_hash, o.serial, o.not_before, o.not_after, o.fingerprint, o.is_ca, \
    o.revoked_at, o.email, \
    ARRAY(SELECT t.tag FROM tags t WHERE t.uid = o.uid), \
    ARRAY(SELECT l.link_type FROM links l WHERE l.uid = o.uid ORDER BY l.link_type), \
    ARRAY(SELECT l.target FROM links l WHERE l.uid = o.uid ORDER BY l.link_type)";

type Pool = r2d2::Pool<PostgresConnectionManager<MakeTlsConnector>>;

/// Options of the connection pool.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long a request waits for a connection before the database counts as unavailable.
    pub connect_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

pub struct PostgresBackend {
    pool: Pool,
    /// The URL without its password, to name the store in messages.
    display: String,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("database", &self.display)
            .finish_non_exhaustive()
    }
}

/// Whether a store location names a PostgreSQL database rather than a SQLite file.
#[must_use]
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// `postgres://user:secret@host/db` without the secret.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let tail = tail.split('?').next().unwrap_or_default();
    format!("{scheme}://{user}@{host}/{tail}")
}

fn unavailable(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable {
        reason: reason.to_string(),
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        // A closed connection or a refused one is the database going away, not a bad query.
        let gone = e.is_closed()
            || e.code().is_some_and(|c| {
                c.code().starts_with("08")
                    || *c == SqlState::ADMIN_SHUTDOWN
                    || *c == SqlState::CRASH_SHUTDOWN
                    || *c == SqlState::CANNOT_CONNECT_NOW
            })
            || std::error::Error::source(&e)
                .is_some_and(<dyn std::error::Error>::is::<std::io::Error>);
        if gone {
            unavailable(e)
        } else {
            StoreError::Postgres(e)
        }
    }
}

impl PostgresBackend {
    /// Connects to `url`, migrating the schema when needed. Returns whether the store was
    /// created by this call. TLS follows the URL's `sslmode` (default: used when offered).
    pub fn open(url: &str, options: &PoolOptions) -> Result<(Self, bool)> {
        let display = redact_url(url);
        let config: postgres::Config =
            url.parse()
                .map_err(|e: postgres::Error| StoreError::InvalidDatabaseUrl {
                    url: display.clone(),
                    reason: e.to_string(),
                })?;
        let tls = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
            .map_err(StoreError::crypto("setting up TLS for PostgreSQL"))?;
        let manager = PostgresConnectionManager::new(config, MakeTlsConnector::new(tls.build()));
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            // A pooled connection may have died with the server; check before handing it out.
            .test_on_check_out(true)
            .build_unchecked(manager);
        let backend = Self { pool, display };
        let created = backend.migrate()?;
        Ok((backend, created))
    }

    #[must_use]
    pub fn display_url(&self) -> &str {
        &self.display
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<MakeTlsConnector>>> {
        self.pool.get().map_err(|e| {
            unavailable(format!(
                "no connection to {} ({})",
                self.display,
                e.to_string().trim_end_matches('.')
            ))
        })
    }

    fn migrate(&self) -> Result<bool> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPLICATION_ID])?;
        let has_schema: bool = tx
            .query_one("SELECT to_regclass('mailpki_schema') IS NOT NULL", &[])?
            .get(0);
        let version: i64 = if has_schema {
            tx.query_one("SELECT version FROM mailpki_schema", &[])?
                .get(0)
        } else {
            let foreign: bool = tx
                .query_one("SELECT to_regclass('objects') IS NOT NULL", &[])?
                .get(0);
            if foreign {
                return Err(StoreError::NotAStore {
                    path: self.display.clone().into(),
                });
            }
            tx.batch_execute(
                "CREATE TABLE mailpki_schema (version BIGINT NOT NULL);
                 INSERT INTO mailpki_schema VALUES (0);",
            )?;
            0
        };
        let supported = crate::schema::MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::StoreTooNew {
                path: self.display.clone().into(),
                found: version,
                supported,
            });
        }
        for (i, sql) in crate::schema::MIGRATIONS
            .iter()
            .enumerate()
            .skip(version as usize)
        {
            tx.batch_execute(&crate::schema::postgres(sql))?;
            tx.execute("UPDATE mailpki_schema SET version = $1", &[&(i as i64 + 1)])?;
            tracing::debug!(version = i + 1, "applied store migration");
        }
        tx.commit()?;
        Ok(version == 0)
    }

    fn query_records(
        client: &mut impl GenericClient,
        where_clause: &str,
        args: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ObjectRecord>> {
        Self::query_records_limited(client, where_clause, "", args)
    }

    fn query_records_limited(
        client: &mut impl GenericClient,
        where_clause: &str,
        limit: &str,
        args: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ObjectRecord>> {
        let sql = crate::backend::listing_query(COLUMNS, where_clause, limit, "objects o");
        let rows = client.query(&sql, args)?;
        rows.iter().map(read_row).collect()
    }

    fn records(
        &self,
        where_clause: &str,
        args: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ObjectRecord>> {
        Self::query_records(&mut *self.conn()?, where_clause, args)
    }

    /// Runs `f` in one transaction, committed only if it succeeds.
    fn in_transaction<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let value = f(&mut tx)?;
        tx.commit()?;
        Ok(value)
    }
}

fn read_row(r: &Row) -> Result<ObjectRecord> {
    let raw = crate::row::raw_row!(r.try_get);
    let tags: Vec<String> = r.try_get(23)?;
    let link_types: Vec<String> = r.try_get(24)?;
    let targets: Vec<String> = r.try_get(25)?;
    raw.into_record(
        tags.into_iter().collect(),
        link_types.into_iter().zip(targets).collect(),
    )
}

type Args = Vec<Box<dyn postgres::types::ToSql + Sync>>;

/// The WHERE clause and arguments of `find`; the same conditions as the SQLite backend's.
/// The listing's clause and arguments, as PostgreSQL binds them.
fn filter_clause(filter: &ObjectFilter, user: Option<&str>) -> (String, Args) {
    let (clause, args) = crate::backend::filter_clause(filter, user, |n| format!("${n}"), "ILIKE");
    let args = args
        .into_iter()
        .map(|arg| -> Box<dyn postgres::types::ToSql + Sync> {
            match arg {
                SqlArg::Text(t) => Box::new(t),
                SqlArg::Int(i) => Box::new(i),
            }
        })
        .collect();
    (clause, args)
}

fn insert_record(tx: &mut Transaction<'_>, r: &ObjectRecord) -> Result<()> {
    let (material, sealed) = r.material.columns();
    let material = material.as_deref();
    let c = r.certificate.as_ref();
    let length = r.length.map(i64::from);
    let inserted = tx.execute(
        sql::INSERT_OBJECT.postgres(),
        &[
            &r.uid,
            &r.object_type.as_str(),
            &r.state.as_str(),
            &r.algorithm.map(Algorithm::as_str),
            &length,
            &r.owner,
            &r.created,
            &r.updated,
            &material,
            &sealed,
            &r.spki_sha256,
            &r.revocation_reason,
            &c.map(|c| &c.subject),
            &c.map(|c| &c.issuer),
            &c.map(|c| &c.subject_hash),
            &c.map(|c| &c.issuer_hash),
            &c.map(|c| &c.serial),
            &c.map(|c| c.not_before),
            &c.map(|c| c.not_after),
            &c.map(|c| &c.sha256_fingerprint),
            &c.map(|c| c.is_ca),
            &c.and_then(|c| c.email.as_deref()).unwrap_or_default(),
        ],
    );
    match inserted {
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::AlreadyExists { uid: r.uid.clone() });
        }
        other => {
            other?;
        }
    }
    for tag in &r.tags {
        tx.execute(sql::INSERT_TAG.postgres(), &[&r.uid, tag])?;
    }
    for (link, target) in &r.links {
        set_link(tx, &r.uid, *link, target)?;
    }
    Ok(())
}

fn set_link(tx: &mut Transaction<'_>, uid: &str, link: LinkType, target: &str) -> Result<()> {
    tx.execute(sql::SET_LINK.postgres(), &[&uid, &link.as_str(), &target])?;
    Ok(())
}

fn parse_operations(uid: &str, ops: &[String]) -> Result<Vec<Operation>> {
    ops.iter()
        .map(|op| {
            op.parse().map_err(|reason| StoreError::Corrupt {
                uid: uid.to_owned(),
                reason,
            })
        })
        .collect()
}

fn read_token(r: &Row) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        user: r.try_get(1)?,
        created: r.try_get(2)?,
        created_by: r.try_get(3)?,
        expires: r.try_get(4)?,
        revoked: r.try_get(5)?,
    })
}

impl Backend for PostgresBackend {
    fn apply(&self, batch: WriteBatch) -> Result<()> {
        self.in_transaction(|tx| {
            for uid in &batch.remove {
                tx.execute(sql::DELETE_LINKS_TO.postgres(), &[uid])?;
                tx.execute(sql::DELETE_OBJECT.postgres(), &[uid])?;
            }
            for record in &batch.insert {
                insert_record(tx, record)?;
            }
            for (uid, link, target) in &batch.links {
                set_link(tx, uid, *link, target)?;
            }
            Ok(())
        })
    }

    fn get(&self, uid: &str) -> Result<Option<ObjectRecord>> {
        Ok(self.records("o.uid = $1", &[&uid])?.into_iter().next())
    }

    fn find(&self, filter: &ObjectFilter, user: &str) -> Result<Vec<ObjectRecord>> {
        let (clause, args) = filter_clause(filter, Some(user));
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            args.iter().map(AsRef::as_ref).collect();
        Self::query_records_limited(
            &mut *self.conn()?,
            &clause,
            &crate::backend::limit_clause(filter),
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
        let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
            args.iter().map(AsRef::as_ref).collect();
        let rows = self
            .conn()?
            .query(&crate::backend::count_query(&clause, by), &refs)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn find_by_spki(&self, spki_sha256: &str) -> Result<Vec<ObjectRecord>> {
        self.records("o.spki_sha256 = $1", &[&spki_sha256])
    }

    fn find_by_subject_hash(&self, subject_hash: &str) -> Result<Vec<ObjectRecord>> {
        self.records("o.subject_hash = $1", &[&subject_hash])
    }

    fn find_by_fingerprint(&self, fingerprint: &str) -> Result<Vec<ObjectRecord>> {
        self.records("o.fingerprint = $1", &[&fingerprint])
    }

    fn linked_from(&self, target: &str, link: LinkType) -> Result<Vec<String>> {
        let rows = self
            .conn()?
            .query(sql::LINKED_FROM.postgres(), &[&target, &link.as_str()])?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    fn without_email(&self, after: &str) -> Result<Vec<(String, Option<Vec<u8>>)>> {
        let rows = self
            .conn()?
            .query(sql::WITHOUT_EMAIL.postgres(), &[&after])?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn set_email(&self, uid: &str, email: &str) -> Result<()> {
        self.conn()?
            .execute(sql::SET_EMAIL.postgres(), &[&uid, &email])?;
        Ok(())
    }

    fn issued(&self, issuer: &str, which: Issued<'_>) -> Result<Vec<IssuedRow>> {
        let mut conn = self.conn()?;
        let rows = match which {
            Issued::Serial(serial) => {
                conn.query(sql::ISSUED_WITH_SERIAL.postgres(), &[&issuer, &serial])?
            }
            Issued::Revoked => conn.query(sql::ISSUED_REVOKED.postgres(), &[&issuer])?,
        };
        rows.iter()
            .map(|r| {
                let state: String = r.try_get(1)?;
                IssuedRow::decode(
                    r.try_get(0)?,
                    &state,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                )
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
            sql::SET_STATE_WIPE.postgres()
        } else {
            sql::SET_STATE.postgres()
        };
        let changed = self
            .conn()?
            .execute(sql, &[&uid, &state.as_str(), &reason, &now])?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                uid: uid.to_owned(),
            });
        }
        Ok(())
    }

    fn add_tags(&self, uid: &str, tags: &[String], now: i64) -> Result<()> {
        self.in_transaction(|tx| {
            for tag in tags {
                tx.execute(sql::ADD_TAG.postgres(), &[&uid, tag])?;
            }
            tx.execute(sql::TOUCH_OBJECT.postgres(), &[&uid, &now])?;
            Ok(())
        })
    }

    fn has_grant(&self, uid: &str, user: &str, operation: Operation) -> Result<bool> {
        let row = self.conn()?.query_opt(
            "SELECT 1 FROM grants WHERE uid = $1 AND grantee IN ($2, '*') AND operation = $3
             LIMIT 1",
            &[&uid, &user, &operation.as_str()],
        )?;
        Ok(row.is_some())
    }

    fn set_grants(
        &self,
        uid: &str,
        user: &str,
        operations: &[Operation],
        granted: bool,
    ) -> Result<()> {
        let sql = if granted {
            sql::GRANT.postgres()
        } else {
            sql::UNGRANT.postgres()
        };
        self.in_transaction(|tx| {
            for op in operations {
                match tx.execute(sql, &[&uid, &user, &op.as_str()]) {
                    // The object was destroyed and removed by another admin meanwhile.
                    Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
                        return Err(StoreError::NotFound {
                            uid: uid.to_owned(),
                        });
                    }
                    other => {
                        other?;
                    }
                }
            }
            Ok(())
        })
    }

    fn grants_on(&self, uid: &str) -> Result<Vec<(String, Vec<Operation>)>> {
        let rows = self.conn()?.query(
            "SELECT grantee, array_agg(operation ORDER BY operation) FROM grants WHERE uid = $1
             GROUP BY grantee ORDER BY grantee",
            &[&uid],
        )?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    parse_operations(uid, &r.try_get::<_, Vec<String>>(1)?)?,
                ))
            })
            .collect()
    }

    fn grants_to(&self, user: &str) -> Result<Vec<(ObjectRecord, Vec<Operation>)>> {
        let mut conn = self.conn()?;
        let records = Self::query_records(
            &mut *conn,
            "o.owner <> $1 AND EXISTS (SELECT 1 FROM grants g WHERE g.uid = o.uid \
             AND g.grantee IN ($1, '*'))",
            &[&user],
        )?;
        records
            .into_iter()
            .map(|record| {
                let ops: Vec<String> = conn
                    .query_one(
                        "SELECT array_agg(DISTINCT operation) FROM grants
                         WHERE uid = $1 AND grantee IN ($2, '*')",
                        &[&record.uid, &user],
                    )?
                    .try_get(0)?;
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
        self.conn()?.execute(
            sql::JOURNAL_SET.postgres(),
            &[&batch, &subject, &step, &value, &now],
        )?;
        Ok(())
    }

    fn journal_get(&self, batch: &str, subject: &str) -> Result<BTreeMap<String, String>> {
        let rows = self
            .conn()?
            .query(sql::JOURNAL_GET.postgres(), &[&batch, &subject])?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        let row = self.conn()?.query_opt(sql::META_GET.postgres(), &[&key])?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        self.in_transaction(|tx| {
            tx.execute(sql::META_INIT.postgres(), &[&key, &value])?;
            Ok(tx
                .query_one(sql::META_GET.postgres(), &[&key])?
                .try_get(0)?)
        })
    }

    fn meta_next(&self, key: &str) -> Result<i64> {
        let value: String = self.in_transaction(|tx| {
            Ok(tx
                .query_one(sql::META_NEXT.postgres(), &[&key])?
                .try_get(0)?)
        })?;
        counter(key, &value)
    }

    fn reseal_all(&self, reseal: &mut Reseal<'_>, key_check: &str) -> Result<usize> {
        self.in_transaction(|tx| {
            let rows = tx.query(
                "SELECT uid, material FROM objects WHERE sealed AND material IS NOT NULL
                 FOR UPDATE",
                &[],
            )?;
            for row in &rows {
                let uid: String = row.try_get(0)?;
                let sealed: Vec<u8> = row.try_get(1)?;
                let resealed = reseal(&uid, &sealed)?;
                tx.execute(sql::RESEAL.postgres(), &[&uid, &resealed])?;
            }
            tx.execute(sql::SET_KEY_CHECK.postgres(), &[&key_check])?;
            Ok(rows.len())
        })
    }

    fn audit_append(&self, entries: &[AuditEntry]) -> Result<()> {
        self.in_transaction(|tx| {
            let stmt = tx.prepare(sql::AUDIT_APPEND.postgres())?;
            for e in entries {
                tx.execute(
                    &stmt,
                    &[
                        &e.at,
                        &e.actor,
                        &e.operation,
                        &e.object,
                        &e.outcome,
                        &e.detail,
                        &e.via,
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let rows = self.conn()?.query(
            "SELECT at, actor, operation, object, outcome, detail, via FROM audit
             WHERE ($1::TEXT IS NULL OR actor = $1) AND ($2::TEXT IS NULL OR object = $2)
               AND ($4::TEXT IS NULL OR operation = $4) AND ($5::BIGINT IS NULL OR at >= $5)
               AND ($6::BIGINT IS NULL OR at < $6)
             ORDER BY id DESC LIMIT $3",
            &[
                &filter.actor,
                &filter.object,
                &(filter.limit as i64),
                &filter.operation,
                &filter.since,
                &filter.until,
            ],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get(0)?,
                    actor: r.try_get(1)?,
                    operation: r.try_get(2)?,
                    object: r.try_get(3)?,
                    outcome: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    via: r.try_get(6)?,
                })
            })
            .collect()
    }

    fn token_insert(&self, t: &ApiToken, secret_hash: &str) -> Result<()> {
        let inserted = self.conn()?.execute(
            sql::TOKEN_INSERT.postgres(),
            &[
                &t.id,
                &t.user,
                &secret_hash,
                &t.created,
                &t.created_by,
                &t.expires,
            ],
        );
        match inserted {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(StoreError::AlreadyExists { uid: t.id.clone() })
            }
            other => other.map(drop).map_err(Into::into),
        }
    }

    fn token_by_hash(&self, secret_hash: &str) -> Result<Option<ApiToken>> {
        self.conn()?
            .query_opt(sql::TOKEN_BY_HASH.postgres(), &[&secret_hash])?
            .as_ref()
            .map(read_token)
            .transpose()
    }

    fn token_revoke(&self, id: &str, now: i64) -> Result<bool> {
        let changed = self
            .conn()?
            .execute(sql::TOKEN_REVOKE.postgres(), &[&id, &now])?;
        Ok(changed > 0)
    }

    fn token_list(&self) -> Result<Vec<ApiToken>> {
        let rows = self.conn()?.query(sql::TOKEN_LIST.postgres(), &[])?;
        rows.iter().map(read_token).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password_for_display() {
        assert_eq!(
            redact_url("postgres://admin:s3cret@db.example.com:5432/kms?sslmode=require"),
            "postgres://admin@db.example.com:5432/kms"
        );
        assert!(is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url("/var/lib/mailpki/kms.sqlite"));
    }
}
