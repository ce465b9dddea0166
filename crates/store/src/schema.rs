//! The store's schema, one list of migrations for both backends. The SQL is written in
//! SQLite's dialect; [`postgres`] turns a step into PostgreSQL's (64-bit integers, `BYTEA`,
//! booleans for the two flag columns, `BIGSERIAL` for the audit log's key), so the two
//! backends cannot drift apart.

/// Schema migrations; entry `i` moves the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE objects (
    uid TEXT PRIMARY KEY,
    object_type TEXT NOT NULL,
    state TEXT NOT NULL,
    algorithm TEXT,
    length INTEGER,
    owner TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    material BLOB,
    sealed INTEGER NOT NULL,
    spki_sha256 TEXT,
    revocation_reason TEXT,
    subject TEXT,
    issuer TEXT,
    subject_hash TEXT,
    issuer_hash TEXT,
    serial TEXT,
    not_before INTEGER,
    not_after INTEGER,
    fingerprint TEXT,
    is_ca INTEGER
);
CREATE INDEX objects_owner ON objects(owner);
CREATE INDEX objects_spki ON objects(spki_sha256);
CREATE INDEX objects_subject_hash ON objects(subject_hash);
CREATE INDEX objects_fingerprint ON objects(fingerprint);
CREATE INDEX objects_not_after ON objects(not_after);
CREATE TABLE tags (
    uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (uid, tag)
);
CREATE INDEX tags_tag ON tags(tag);
CREATE TABLE links (
    uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,
    link_type TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (uid, link_type)
);
CREATE INDEX links_target ON links(target);
CREATE TABLE grants (
    uid TEXT NOT NULL REFERENCES objects(uid) ON DELETE CASCADE,
    grantee TEXT NOT NULL,
    operation TEXT NOT NULL,
    PRIMARY KEY (uid, grantee, operation)
);
CREATE INDEX grants_grantee ON grants(grantee);
",
    r"
CREATE TABLE journal (
    batch TEXT NOT NULL,
    subject TEXT NOT NULL,
    step TEXT NOT NULL,
    value TEXT NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (batch, subject, step)
);
",
    r"
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    operation TEXT NOT NULL,
    object TEXT,
    outcome TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_actor ON audit(actor);
CREATE INDEX audit_object ON audit(object);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    expires INTEGER,
    revoked INTEGER
);
",
    // Who made it possible for the actor to act (an admin's API token for them).
    r"
ALTER TABLE audit ADD COLUMN via TEXT;
",
    // When a certificate was revoked (Unix seconds), for its CRL entry.
    r"
ALTER TABLE objects ADD COLUMN revoked_at INTEGER;
",
    // An OCSP answer looks one certificate up by serial.
    r"
CREATE INDEX objects_serial ON objects(serial);
",
    // Listings are in creation order and paged by it.
    r"
CREATE INDEX objects_created ON objects(created, uid);
",
    // A certificate's mailbox, for searches by email (earlier rows: `Store::index_emails`).
    r"
ALTER TABLE objects ADD COLUMN email TEXT;
CREATE INDEX objects_email ON objects(email);
",
    // The console's census: counts by state and expiry, and pages of certificates filtered
    // by state and expiry, read from the index alone (a row holds its key material: reading
    // 100,000 rows to count them is what made the overview slow).
    r"
CREATE INDEX objects_census ON objects(object_type, state, not_after, owner, created, uid);
",
];

/// A migration step in PostgreSQL's dialect.
pub(crate) fn postgres(sql: &str) -> String {
    sql.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
        .replace("sealed INTEGER", "sealed BOOLEAN")
        .replace("is_ca INTEGER", "is_ca BOOLEAN")
        .replace("INTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_steps_use_postgres_types() {
        let all: String = MIGRATIONS.iter().map(|m| postgres(m)).collect();
        for gone in ["INTEGER", "BLOB", "AUTOINCREMENT"] {
            assert!(!all.contains(gone), "{gone} left in the PostgreSQL schema");
        }
        for wanted in [
            "sealed BOOLEAN NOT NULL",
            "is_ca BOOLEAN",
            "material BYTEA",
            "id BIGSERIAL PRIMARY KEY",
        ] {
            assert!(all.contains(wanted), "{wanted} missing");
        }
    }
}
