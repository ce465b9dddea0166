//! The SQL both backends run, written once in SQLite's numbered placeholders (`?1`), which
//! [`Sql::postgres`] turns into PostgreSQL's (`$1`). Statements whose dialects differ (the
//! object columns, aggregates, booleans, casts, the schema) stay in their backend.

use std::sync::OnceLock;

/// One statement, in both dialects.
pub(crate) struct Sql {
    text: &'static str,
    postgres: OnceLock<String>,
}

impl Sql {
    const fn new(text: &'static str) -> Self {
        Self {
            text,
            postgres: OnceLock::new(),
        }
    }

    pub(crate) fn sqlite(&self) -> &str {
        self.text
    }

    /// Made once, on first use.
    pub(crate) fn postgres(&self) -> &str {
        self.postgres.get_or_init(|| numbered(self.text))
    }
}

/// `?1` → `$1`. The statements here hold no `?` but placeholders (no string literal has one).
fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) static INSERT_OBJECT: Sql = Sql::new(
    "INSERT INTO objects (uid, object_type, state, algorithm, length, owner, created, updated,
            material, sealed, spki_sha256, revocation_reason, subject, issuer, subject_hash,
            issuer_hash, serial, not_before, not_after, fingerprint, is_ca, email)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22)",
);

pub(crate) static ADD_TAG: Sql =
    Sql::new("INSERT INTO tags (uid, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING");

pub(crate) static INSERT_TAG: Sql = Sql::new("INSERT INTO tags (uid, tag) VALUES (?1, ?2)");

pub(crate) static SET_LINK: Sql = Sql::new(
    "INSERT INTO links (uid, link_type, target) VALUES (?1, ?2, ?3)
         ON CONFLICT (uid, link_type) DO UPDATE SET target = excluded.target",
);

pub(crate) static DELETE_LINKS_TO: Sql = Sql::new("DELETE FROM links WHERE target = ?1");

pub(crate) static DELETE_OBJECT: Sql = Sql::new("DELETE FROM objects WHERE uid = ?1");

pub(crate) static LINKED_FROM: Sql =
    Sql::new("SELECT uid FROM links WHERE target = ?1 AND link_type = ?2 ORDER BY uid");

/// The certificates a CA certificate issued with one serial (an OCSP answer). The serial's
/// index leads and the link is checked per row found: `CROSS JOIN` is how SQLite is told the
/// order (without statistics it would walk all the issuer's links); PostgreSQL plans it as any
/// join.
pub(crate) static ISSUED_WITH_SERIAL: Sql = Sql::new(
    "SELECT o.serial, o.state, o.revocation_reason, o.revoked_at, o.updated
       FROM objects o CROSS JOIN links l
      WHERE o.serial = ?2 AND l.uid = o.uid AND l.link_type = 'CertificateLink'
        AND l.target = ?1 AND o.object_type = 'Certificate'",
);

/// The revoked certificates a CA certificate issued (a CRL), in one pass over its children;
/// destroying a revoked certificate does not take it off.
pub(crate) static ISSUED_REVOKED: Sql = Sql::new(
    "SELECT o.serial, o.state, o.revocation_reason, o.revoked_at, o.updated
       FROM links l JOIN objects o ON o.uid = l.uid
      WHERE l.target = ?1 AND l.link_type = 'CertificateLink' AND o.object_type = 'Certificate'
        AND o.serial IS NOT NULL
        AND (o.state IN ('Deactivated', 'Compromised')
             OR (o.state = 'Destroyed' AND o.revoked_at IS NOT NULL))
      ORDER BY o.serial",
);

/// Objects stored before the email column, to index once (a certificate's DER; nothing of
/// the others, whose email is empty). Every row written since has a non-NULL email, so once
/// done this finds nothing through the index.
pub(crate) static WITHOUT_EMAIL: Sql = Sql::new(
    "SELECT uid, CASE WHEN object_type = 'Certificate' THEN material END FROM objects
      WHERE email IS NULL AND uid > ?1
      ORDER BY uid LIMIT 500",
);

pub(crate) static SET_EMAIL: Sql = Sql::new("UPDATE objects SET email = ?2 WHERE uid = ?1");

pub(crate) static SET_STATE_WIPE: Sql = Sql::new(
    "UPDATE objects SET state = ?2, revocation_reason = coalesce(?3, revocation_reason),
                updated = ?4, material = NULL WHERE uid = ?1",
);

/// A revocation (a reason given) also records its time, once: a later change of reason
/// (superseded, then key compromise) keeps the first date.
pub(crate) static SET_STATE: Sql = Sql::new(
    "UPDATE objects SET state = ?2, revocation_reason = coalesce(?3, revocation_reason),
                updated = ?4,
                revoked_at = CASE WHEN ?3 IS NULL THEN revoked_at ELSE coalesce(revoked_at, ?4) END
     WHERE uid = ?1",
);

pub(crate) static TOUCH_OBJECT: Sql = Sql::new("UPDATE objects SET updated = ?2 WHERE uid = ?1");

pub(crate) static GRANT: Sql = Sql::new(
    "INSERT INTO grants (uid, grantee, operation) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
);

pub(crate) static UNGRANT: Sql =
    Sql::new("DELETE FROM grants WHERE uid = ?1 AND grantee = ?2 AND operation = ?3");

pub(crate) static JOURNAL_SET: Sql = Sql::new(
    "INSERT INTO journal (batch, subject, step, value, updated) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (batch, subject, step) DO UPDATE SET value = excluded.value, updated = excluded.updated",
);

pub(crate) static JOURNAL_GET: Sql =
    Sql::new("SELECT step, value FROM journal WHERE batch = ?1 AND subject = ?2");

pub(crate) static META_GET: Sql = Sql::new("SELECT value FROM meta WHERE key = ?1");

/// The next value of a counter kept in `meta` (1 the first time), in one statement.
pub(crate) static META_NEXT: Sql = Sql::new(
    "INSERT INTO meta (key, value) VALUES (?1, '1')
     ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)
     RETURNING value",
);

pub(crate) static META_INIT: Sql =
    Sql::new("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING");

pub(crate) static RESEAL: Sql = Sql::new("UPDATE objects SET material = ?2 WHERE uid = ?1");

pub(crate) static SET_KEY_CHECK: Sql =
    Sql::new("UPDATE meta SET value = ?1 WHERE key = 'key_check'");

pub(crate) static AUDIT_APPEND: Sql = Sql::new(
    "INSERT INTO audit (at, actor, operation, object, outcome, detail, via)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
);

pub(crate) static TOKEN_INSERT: Sql = Sql::new(
    "INSERT INTO api_tokens (id, user_name, secret_hash, created, created_by, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
);

pub(crate) static TOKEN_BY_HASH: Sql = Sql::new(
    "SELECT id, user_name, created, created_by, expires, revoked FROM api_tokens WHERE secret_hash = ?1",
);

pub(crate) static TOKEN_REVOKE: Sql =
    Sql::new("UPDATE api_tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL");

pub(crate) static TOKEN_LIST: Sql = Sql::new(
    "SELECT id, user_name, created, created_by, expires, revoked FROM api_tokens ORDER BY created, id",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_for_postgres_and_nothing_else_changes() {
        assert_eq!(
            numbered("UPDATE t SET a = ?2 WHERE b = ?1 AND c IN (?2, '*')"),
            "UPDATE t SET a = $2 WHERE b = $1 AND c IN ($2, '*')"
        );
        for sql in ALL {
            let pg = sql.postgres();
            assert!(!pg.contains('?'), "{pg}");
            assert_eq!(pg.replace('$', "?"), sql.sqlite());
        }
    }

    const ALL: &[&Sql] = &[
        &INSERT_OBJECT,
        &ADD_TAG,
        &INSERT_TAG,
        &SET_LINK,
        &DELETE_LINKS_TO,
        &DELETE_OBJECT,
        &LINKED_FROM,
        &SET_STATE_WIPE,
        &SET_STATE,
        &TOUCH_OBJECT,
        &GRANT,
        &UNGRANT,
        &JOURNAL_SET,
        &JOURNAL_GET,
        &META_GET,
        &META_NEXT,
        &META_INIT,
        &RESEAL,
        &SET_KEY_CHECK,
        &AUDIT_APPEND,
        &TOKEN_INSERT,
        &TOKEN_BY_HASH,
        &TOKEN_REVOKE,
        &TOKEN_LIST,
    ];
}
