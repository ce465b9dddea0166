//! The store's API as other crates use it: opening, importing, and handing out keys only to
//! actors allowed to use them. Every test runs over each backend: SQLite, and PostgreSQL when
//! `$MAILPKI_TEST_POSTGRES` names a server (always in CI).

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]

use mailpki_store::{
    Actor, Algorithm, AuditEntry, AuditFilter, ImportFormat, ImportRequest, LinkType,
    MasterKeySource, Operation, Store, StoreError,
};
use mailpki_test_support::TestDatabase;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::BasicConstraints;
use openssl::x509::{X509, X509NameBuilder};
use secrecy::ExposeSecret;

/// A self-signed CA certificate and its key in one PEM, made now.
fn ca_pem() -> Vec<u8> {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "API Test CA").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let mut pem = b.build().to_pem().unwrap();
    pem.extend(key.private_key_to_pem_pkcs8().unwrap());
    pem
}

/// A fresh CA (certificate and key) imported as `ca` by `actor`.
fn import_ca(store: &Store, actor: &Actor) -> mailpki_store::ImportReport {
    import_pem(store, actor, &ca_pem(), "ca")
}

/// PEM imported as `uid` by `actor`.
fn import_pem(store: &Store, actor: &Actor, data: &[u8], uid: &str) -> mailpki_store::ImportReport {
    store
        .import(
            actor,
            &ImportRequest {
                data,
                format: ImportFormat::Pem,
                password: None,
                uid: Some(uid.into()),
                replace: false,
                tags: vec![],
                hsm: false,
            },
        )
        .unwrap()
}

/// Where one test's store lives: a SQLite file or a fresh PostgreSQL database, and its key.
struct Fixture {
    dir: tempfile::TempDir,
    location: String,
    _database: Option<TestDatabase>,
}

impl Fixture {
    fn open(&self) -> Store {
        Store::open(
            &self.location,
            &MasterKeySource::File(self.dir.path().join("master.key")),
        )
        .unwrap()
    }
}

/// One fixture per backend this run can reach.
fn fixtures() -> Vec<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Fixture {
        location: dir.path().join("kms.sqlite").display().to_string(),
        dir,
        _database: None,
    };
    let mut all = vec![sqlite];
    if let Some(database) = TestDatabase::create() {
        all.push(Fixture {
            dir: tempfile::tempdir().unwrap(),
            location: database.url.clone(),
            _database: Some(database),
        });
    }
    all
}

#[test]
fn keys_go_only_to_actors_allowed_to_use_them() {
    for fixture in fixtures() {
        keys_go_only_to_actors_allowed_to_use_them_on(&fixture.open());
    }
}

fn keys_go_only_to_actors_allowed_to_use_them_on(store: &Store) {
    let alice = Actor::new("alice").unwrap();
    let bob = Actor::new("bob").unwrap();
    let pem = ca_pem();
    let report = store
        .import(
            &alice,
            &ImportRequest {
                data: &pem,
                format: ImportFormat::Pem,
                password: None,
                uid: Some("ca".into()),
                replace: false,
                tags: vec![],
                hsm: false,
            },
        )
        .unwrap();
    let key_id = report.private_key.unwrap();
    assert_eq!(
        store.attributes(&alice, "ca").unwrap().links[&LinkType::PrivateKeyLink],
        key_id
    );

    let key = store
        .private_key(&alice, &key_id, Operation::Certify)
        .unwrap();
    let cert = store.certificate(&alice, "ca", Operation::Get).unwrap();
    assert!(cert.public_key().unwrap().public_eq(&key));

    // Bob holds nothing on the key: to him it does not exist.
    assert!(matches!(
        store.private_key(&bob, &key_id, Operation::Certify),
        Err(StoreError::Hidden { .. })
    ));
    store
        .grant(&alice, &key_id, "bob", &[Operation::Certify])
        .unwrap();
    assert!(store.private_key(&bob, &key_id, Operation::Certify).is_ok());
    // Certify is not export.
    assert!(store.private_key(&bob, &key_id, Operation::Export).is_err());

    // A revoked key no longer signs, but can still be exported by its owner.
    store.revoke(&alice, &key_id, "rotated", false).unwrap();
    assert!(matches!(
        store.private_key(&alice, &key_id, Operation::Certify),
        Err(StoreError::NotActive { .. })
    ));
    assert!(
        store
            .private_key(&alice, &key_id, Operation::Export)
            .is_ok()
    );

    // A certificate is not a private key.
    assert!(matches!(
        store.private_key(&alice, "ca", Operation::Export),
        Err(StoreError::WrongObjectType { .. })
    ));
}

#[test]
fn symmetric_keys_survive_reopening_and_differ() {
    for fixture in fixtures() {
        symmetric_keys_survive_reopening_and_differ_on(&fixture);
    }
}

fn symmetric_keys_survive_reopening_and_differ_on(fixture: &Fixture) {
    let alice = Actor::new("alice").unwrap();
    let (a, b) = {
        let store = fixture.open();
        (
            store
                .create_symmetric_key(&alice, Some("k1".into()), Algorithm::Aes, 256, &[])
                .unwrap(),
            store
                .create_symmetric_key(&alice, None, Algorithm::Aes, 128, &[])
                .unwrap(),
        )
    };
    let store = fixture.open();
    let k1 = store.symmetric_key(&alice, &a, Operation::Encrypt).unwrap();
    let k2 = store.symmetric_key(&alice, &b, Operation::Encrypt).unwrap();
    assert_eq!((k1.len(), k2.len()), (32, 16));
    assert_ne!(&k1[..16], &k2[..]);
    assert!(matches!(
        store.create_symmetric_key(&alice, None, Algorithm::Rsa, 256, &[]),
        Err(StoreError::InvalidKeyLength { .. })
    ));
}

/// Two store handles on one database stand for two server instances (or two CLI processes):
/// concurrent admins must get unique IDs, keep every grant and tag, and see changes at once.
#[test]
fn two_handles_on_one_database_lose_nothing() {
    for fixture in fixtures() {
        let alice = Actor::new("alice").unwrap();
        let handles = [fixture.open(), fixture.open()];
        let shared = handles[0]
            .create_symmetric_key(&alice, Some("shared".into()), Algorithm::Aes, 256, &[])
            .unwrap();
        let per_thread = 12;
        let ids: Vec<Vec<String>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|t| {
                    let store = &handles[t % 2];
                    let alice = &alice;
                    let shared = &shared;
                    scope.spawn(move || {
                        (0..per_thread)
                            .map(|i| {
                                let id = store
                                    .create_symmetric_key(alice, None, Algorithm::Aes, 256, &[])
                                    .unwrap();
                                // Every thread grants a different user on the same object.
                                store
                                    .grant(alice, shared, &format!("u{t}-{i}"), &[Operation::Get])
                                    .unwrap();
                                store
                                    .add_tags(alice, shared, &[format!("t{t}-{i}")])
                                    .unwrap();
                                id
                            })
                            .collect()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut all: Vec<String> = ids.into_iter().flatten().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4 * per_thread, "{}", fixture.location);
        // The other handle sees every grant and tag the moment the writer returned.
        let grants = handles[1].access_list(&alice, &shared).unwrap();
        assert_eq!(grants.len(), 4 * per_thread, "{}", fixture.location);
        let tags = handles[0].attributes(&alice, &shared).unwrap().tags;
        assert_eq!(tags.len(), 4 * per_thread, "{}", fixture.location);
        let u = Actor::new("u3-11").unwrap();
        assert!(
            handles[0]
                .symmetric_key(&u, &shared, Operation::Get)
                .is_ok()
        );
        handles[1]
            .revoke_access(&alice, &shared, "u3-11", &[Operation::Get])
            .unwrap();
        assert!(matches!(
            handles[0].symmetric_key(&u, &shared, Operation::Get),
            Err(StoreError::Hidden { .. })
        ));
        // The same ID twice: exactly one wins.
        let racers: Vec<_> = std::thread::scope(|scope| {
            let workers: Vec<_> = handles
                .iter()
                .map(|store| {
                    let alice = &alice;
                    scope.spawn(move || {
                        store.create_symmetric_key(
                            alice,
                            Some("race".into()),
                            Algorithm::Aes,
                            256,
                            &[],
                        )
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(racers.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(
            racers
                .iter()
                .any(|r| matches!(r, Err(StoreError::AlreadyExists { .. })))
        );
    }
}

#[test]
fn audit_log_and_api_tokens() {
    for fixture in fixtures() {
        let store = fixture.open();
        let admin = Actor::new("admin").unwrap();
        let ci = Actor::new("ci-bot").unwrap();
        for (i, outcome) in ["ok", "denied", "ok"].iter().enumerate() {
            store
                .audit(&[AuditEntry {
                    at: 1_700_000_000 + i as i64,
                    actor: if i == 1 {
                        "mallory".into()
                    } else {
                        "alice".into()
                    },
                    operation: "export".into(),
                    object: Some("ca".into()),
                    outcome: (*outcome).into(),
                    detail: None,
                    via: (i == 2).then(|| "api token tok-1 made by admin".into()),
                }])
                .unwrap();
        }
        let all = store
            .audit_log(&AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].at, 1_700_000_002, "newest first");
        let mallory = store
            .audit_log(&AuditFilter {
                actor: Some("mallory".into()),
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(mallory.len(), 1);
        assert_eq!(mallory[0].outcome, "denied");

        let (token, secret) = store.create_api_token(&ci, &admin, None).unwrap();
        let found = store
            .authenticate_api_token(secret.expose_secret())
            .unwrap()
            .unwrap();
        assert_eq!(found.user, "ci-bot");
        assert!(store.authenticate_api_token("mpk_nope").unwrap().is_none());
        let listed = store.api_tokens().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            !format!("{listed:?}").contains(secret.expose_secret()),
            "only a hash is kept"
        );
        assert!(store.revoke_api_token(&token.id).unwrap());
        assert!(!store.revoke_api_token(&token.id).unwrap());
        assert!(
            store
                .authenticate_api_token(secret.expose_secret())
                .unwrap()
                .is_none()
        );
        let (_, expired) = store.create_api_token(&ci, &admin, Some(1)).unwrap();
        assert!(
            store
                .authenticate_api_token(expired.expose_secret())
                .unwrap()
                .is_none()
        );
    }
}

#[test]
fn an_unreachable_database_is_unavailable_not_wrong() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 (discard) of the loopback.
    let err = Store::open_postgres(
        "postgres://nobody:hunter2@127.0.0.1:9/kms",
        &MasterKeySource::File(dir.path().join("master.key")),
        &mailpki_store::PoolOptions {
            max_connections: 1,
            connect_timeout: std::time::Duration::from_millis(500),
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!dir.path().join("master.key").exists(), "nothing made");
}

#[test]
fn the_master_key_rotates_and_the_old_one_stops_working() {
    for fixture in fixtures() {
        let alice = Actor::new("alice").unwrap();
        let (ca_key, sym_bytes) = {
            let store = fixture.open();
            let report = import_ca(&store, &alice);
            let sym = store
                .create_symmetric_key(&alice, Some("cse".into()), Algorithm::Aes, 256, &[])
                .unwrap();
            let key = store
                .private_key(
                    &alice,
                    report.private_key.as_ref().unwrap(),
                    Operation::Export,
                )
                .unwrap();
            let sym_bytes = store.symmetric_key(&alice, &sym, Operation::Get).unwrap();
            let new_key = fixture.dir.path().join("master-2.key");
            assert_eq!(store.rotate_master_key(&new_key).unwrap(), 2);
            (key.private_key_to_der().unwrap(), sym_bytes.to_vec())
        };
        // The old key no longer opens the store; the new one opens everything as it was.
        assert!(matches!(
            Store::open(
                &fixture.location,
                &MasterKeySource::File(fixture.dir.path().join("master.key"))
            ),
            Err(StoreError::MasterKeyMismatch)
        ));
        let store = Store::open(
            &fixture.location,
            &MasterKeySource::File(fixture.dir.path().join("master-2.key")),
        )
        .unwrap();
        let key_id = store.private_key_id_of(&alice, "ca").unwrap();
        let key = store
            .private_key(&alice, &key_id, Operation::Export)
            .unwrap();
        assert_eq!(
            key.private_key_to_der().unwrap(),
            ca_key,
            "{}",
            fixture.location
        );
        let sym = store.symmetric_key(&alice, "cse", Operation::Get).unwrap();
        assert_eq!(sym.to_vec(), sym_bytes);
    }
}

/// A destroyed key's sealed bytes are gone from the SQLite file and its write-ahead log, not
/// just unlinked from a row (`secure_delete`, then a checkpoint).
#[test]
fn destroyed_key_material_does_not_linger_in_the_sqlite_file() {
    use mailpki_store::{Backend, DestroyOptions, Material, SqliteBackend};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.sqlite");
    let store =
        Store::open_sqlite(&path, &MasterKeySource::File(dir.path().join("master.key"))).unwrap();
    let alice = Actor::new("alice").unwrap();
    for remove in [false, true] {
        let id = store
            .create_symmetric_key(&alice, None, Algorithm::Aes, 256, &[])
            .unwrap();
        let (reader, _) = SqliteBackend::open(&path).unwrap();
        let Material::Sealed(sealed) = reader.get(&id).unwrap().unwrap().material else {
            panic!("a symmetric key is sealed");
        };
        drop(reader);
        store
            .destroy(
                &alice,
                &id,
                DestroyOptions {
                    force: false,
                    remove,
                },
            )
            .unwrap();
        for file in ["kms.sqlite", "kms.sqlite-wal"] {
            if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
                assert!(
                    !bytes.windows(sealed.len()).any(|w| w == sealed.as_slice()),
                    "{file} still holds the sealed key (remove: {remove})"
                );
            }
        }
    }
}

/// A revocation keeps its first date and a known reason; CRL numbers only grow; on each
/// backend (the date column and the counter are SQL both dialects run).
#[test]
fn revocations_keep_their_date_and_crl_numbers_grow() {
    for fixture in fixtures() {
        let store = fixture.open();
        let alice = Actor::new("alice").unwrap();
        let key = import_ca(&store, &alice).private_key.unwrap();
        let numbers: Vec<i64> = (0..3)
            .map(|_| store.revocation_list(&alice, &key).unwrap().1)
            .collect();
        assert_eq!(numbers, [1, 2, 3]);

        assert!(matches!(
            store.revoke(&alice, "ca", "bored", false),
            Err(StoreError::UnknownRevocationReason { .. })
        ));
        store
            .revoke(&alice, "ca", "cessation-of-operation", false)
            .unwrap();
        let first = store.attributes(&alice, "ca").unwrap();
        assert_eq!(
            first.revocation_reason.as_deref(),
            Some("cessationOfOperation")
        );
        let date = first.revocation_date.clone().unwrap();
        assert!(matches!(
            store.revoke(&alice, "ca", "superseded", false),
            Err(StoreError::AlreadyRevoked { .. })
        ));
        store.revoke(&alice, "ca", "cACompromise", false).unwrap();
        let again = store.attributes(&alice, "ca").unwrap();
        assert_eq!(again.state.to_string(), "Compromised");
        assert_eq!(again.revocation_date, Some(date));
    }
}

/// A CA certificate and key, and a leaf it signed with `serial`, as objects.
fn ca_and_leaf(serial: u32) -> (X509, PKey<openssl::pkey::Private>, X509) {
    let pem = ca_pem();
    let ca = X509::from_pem(&pem).unwrap();
    let key = PKey::private_key_from_pem(&pem).unwrap();
    let leaf_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "leaf").unwrap();
    name.append_entry_by_text("emailAddress", "Leaf@Example.com")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(&leaf_key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(10).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (ca, key, b.build())
}

/// What CRLs and OCSP answers read: the revoked certificates an issuer issued, and one serial's
/// status, in one query each on both backends.
#[test]
fn an_issuers_revoked_certificates_and_one_serials_status() {
    for fixture in fixtures() {
        let store = fixture.open();
        let alice = Actor::new("alice").unwrap();
        let (ca, key, leaf) = ca_and_leaf(0x1234);
        let mut pem = ca.to_pem().unwrap();
        pem.extend(key.private_key_to_pem_pkcs8().unwrap());
        let import = |data: &[u8], uid: &str| import_pem(&store, &alice, data, uid);
        let ca_key = import(&pem, "ca").private_key.unwrap();
        import(&leaf.to_pem().unwrap(), "leaf");
        let status = store.issued_status(&alice, "ca", "1234").unwrap().unwrap();
        assert!(status.revoked_at.is_none());
        assert!(store.issued_status(&alice, "ca", "99").unwrap().is_none());
        assert!(store.revocation_list(&alice, &ca_key).unwrap().2.is_empty());

        store
            .revoke(&alice, "leaf", "keyCompromise", false)
            .unwrap();
        let status = store.issued_status(&alice, "ca", "1234").unwrap().unwrap();
        assert!(status.revoked_at.is_some());
        assert_eq!(
            status.reason,
            Some(mailpki_store::RevocationReason::KeyCompromise)
        );
        let listed = store.revocation_list(&alice, &ca_key).unwrap().2;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].serial, "1234");
        assert!(
            store
                .issued_status(&Actor::new("bob").unwrap(), "ca", "1234")
                .is_err(),
            "only those who may read the issuer"
        );

        // Destroying a revoked certificate does not un-revoke it; removing it is refused.
        let remove = mailpki_store::DestroyOptions {
            remove: true,
            ..mailpki_store::DestroyOptions::default()
        };
        assert!(matches!(
            store.destroy(&alice, "leaf", remove),
            Err(StoreError::StillListed { .. })
        ));
        store
            .destroy(&alice, "leaf", mailpki_store::DestroyOptions::default())
            .unwrap();
        let status = store.issued_status(&alice, "ca", "1234").unwrap().unwrap();
        assert!(status.revoked_at.is_some(), "still revoked once destroyed");
        assert_eq!(store.revocation_list(&alice, &ca_key).unwrap().2.len(), 1);
        assert!(matches!(
            store.destroy(&alice, "leaf", remove),
            Err(StoreError::StillListed { .. })
        ));
    }
}

/// Listings page by creation then ID: pages of two walk every certificate once, in order.
#[test]
fn listings_page_after_an_id() {
    for fixture in fixtures() {
        let store = fixture.open();
        let alice = Actor::new("alice").unwrap();
        // IDs against creation order, several in one second: the ID breaks ties.
        for i in 0..5 {
            import_pem(&store, &alice, &ca_pem(), &format!("ca-{}", 9 - i));
        }
        let certificates = |after: Option<String>, limit: Option<usize>| -> Vec<String> {
            store
                .list(
                    &alice,
                    &mailpki_store::ObjectFilter {
                        object_type: Some(mailpki_store::ObjectType::Certificate),
                        after,
                        limit,
                        ..mailpki_store::ObjectFilter::default()
                    },
                )
                .unwrap()
                .into_iter()
                .map(|a| a.unique_identifier)
                .collect()
        };
        let all = certificates(None, None);
        assert_eq!(all.len(), 5);
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = certificates(after.clone(), Some(2));
            assert!(page.len() <= 2);
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            paged.extend(page);
        }
        assert_eq!(paged, all);
    }
}

/// Certificates stored before stores kept a mailbox are found by email after the next open.
#[test]
fn older_certificates_are_found_by_email_after_reopening() {
    let fixture = fixtures().into_iter().next().unwrap();
    let alice = Actor::new("alice").unwrap();
    let by_email = |store: &Store| {
        store
            .list(
                &alice,
                &mailpki_store::ObjectFilter {
                    email: Some("LEAF@example.com".into()),
                    ..mailpki_store::ObjectFilter::default()
                },
            )
            .unwrap()
            .len()
    };
    {
        let store = fixture.open();
        let (ca, _, leaf) = ca_and_leaf(5);
        import_pem(&store, &alice, &ca.to_pem().unwrap(), "ca");
        import_pem(&store, &alice, &leaf.to_pem().unwrap(), "leaf");
        assert_eq!(by_email(&store), 1);
    }
    // As a store written before the column existed.
    let db = rusqlite::Connection::open(&fixture.location).unwrap();
    db.execute("UPDATE objects SET email = NULL", []).unwrap();
    drop(db);
    let store = fixture.open();
    assert_eq!(by_email(&store), 1);
    let db = rusqlite::Connection::open(&fixture.location).unwrap();
    let left: i64 = db
        .query_row(
            "SELECT count(*) FROM objects WHERE email IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "every object indexed once");
}

/// What the console's overview and `/metrics` read: counts by state and by expiry week, each
/// as the actor sees them (or all, for metrics), and the filters by state, expiry and serial.
#[test]
fn counts_by_state_and_expiry_and_filters_by_serial() {
    use mailpki_store::{CountBy, ObjectFilter, ObjectType};
    for fixture in fixtures() {
        let store = fixture.open();
        let alice = Actor::new("alice").unwrap();
        let (ca, key, leaf) = ca_and_leaf(0x0abc);
        let mut pem = ca.to_pem().unwrap();
        pem.extend(key.private_key_to_pem_pkcs8().unwrap());
        import_pem(&store, &alice, &pem, "ca");
        import_pem(&store, &alice, &leaf.to_pem().unwrap(), "leaf");
        let certificates = ObjectFilter {
            object_type: Some(ObjectType::Certificate),
            ..ObjectFilter::default()
        };
        let by_state = store
            .count_by(&alice, &certificates, CountBy::State)
            .unwrap();
        assert_eq!(by_state, vec![("Active".to_owned(), 2)]);
        store.revoke(&alice, "leaf", "superseded", false).unwrap();
        let mut by_state = store
            .count_by(&alice, &certificates, CountBy::State)
            .unwrap();
        by_state.sort();
        assert_eq!(
            by_state,
            vec![("Active".to_owned(), 1), ("Deactivated".to_owned(), 1)]
        );
        let bob = Actor::new("bob").unwrap();
        assert!(
            store
                .count_by(&bob, &certificates, CountBy::State)
                .unwrap()
                .is_empty(),
            "bob sees none of alice's"
        );
        assert_eq!(
            store
                .count_all(&certificates, CountBy::State)
                .unwrap()
                .len(),
            2
        );

        // The leaf expires in 10 days (week 1 from 7 days ago), the CA in 30 (week 5).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let weeks = CountBy::ExpiryBucket {
            from: now - 7 * 86_400,
            width: 7 * 86_400,
        };
        let mut buckets = store.count_by(&alice, &certificates, weeks).unwrap();
        buckets.sort();
        assert_eq!(
            buckets,
            vec![("2".to_owned(), 1), ("5".to_owned(), 1)],
            "{buckets:?}"
        );
        let mut census = store
            .count_by(
                &alice,
                &certificates,
                CountBy::StateAndExpiry {
                    // A second on: the certificates were made this very second.
                    from: now + 1,
                    width: 86_400,
                },
            )
            .unwrap();
        census.sort();
        assert_eq!(
            census,
            vec![("Active 29".to_owned(), 1), ("Deactivated 9".to_owned(), 1)],
            "whole days left, by state, in one pass"
        );
        let later = store
            .count_by(
                &alice,
                &certificates,
                CountBy::StateAndExpiry {
                    from: now + 20 * 86_400,
                    width: 86_400,
                },
            )
            .unwrap();
        assert!(
            later.contains(&("Deactivated -1".to_owned(), 1)),
            "{later:?}"
        );
    }
}

/// The console's certificate filters: expiry range, state, serial however it is written.
#[test]
fn listings_filter_by_expiry_state_and_serial() {
    use mailpki_store::{ObjectFilter, ObjectType, State};
    for fixture in fixtures() {
        let store = fixture.open();
        let alice = Actor::new("alice").unwrap();
        let (ca, key, leaf) = ca_and_leaf(0x0abc);
        let mut pem = ca.to_pem().unwrap();
        pem.extend(key.private_key_to_pem_pkcs8().unwrap());
        import_pem(&store, &alice, &pem, "ca");
        import_pem(&store, &alice, &leaf.to_pem().unwrap(), "leaf");
        store.revoke(&alice, "leaf", "superseded", false).unwrap();
        let certificates = ObjectFilter {
            object_type: Some(ObjectType::Certificate),
            ..ObjectFilter::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let soon = ObjectFilter {
            expires_after: Some(now),
            expires_before: Some(now + 20 * 86_400),
            ..certificates.clone()
        };
        assert_eq!(store.list(&alice, &soon).unwrap().len(), 1);
        let active = ObjectFilter {
            state: Some(State::Active),
            ..certificates.clone()
        };
        assert_eq!(
            store.list(&alice, &active).unwrap()[0].unique_identifier,
            "ca"
        );
        for written in ["abc", "0ABC", "0a:bc", "0x"] {
            let by_serial = ObjectFilter {
                serial: Some(written.to_owned()),
                ..certificates.clone()
            };
            let found = store.list(&alice, &by_serial).unwrap();
            if written == "0x" {
                assert!(found.is_empty());
            } else {
                assert_eq!(found.len(), 1, "{written}");
                assert_eq!(found[0].unique_identifier, "leaf");
            }
        }
    }
}

/// The console's audit page filters by operation and by time.
#[test]
fn the_audit_log_filters_by_operation_and_time() {
    for fixture in fixtures() {
        let store = fixture.open();
        for (i, operation) in ["revoke", "export", "revoke"].iter().enumerate() {
            store
                .audit(&[AuditEntry {
                    at: 1_700_000_000 + i as i64 * 100,
                    actor: "alice".into(),
                    operation: (*operation).into(),
                    object: Some("leaf".into()),
                    outcome: "ok".into(),
                    detail: None,
                    via: None,
                }])
                .unwrap();
        }
        let revokes = store
            .audit_log(&AuditFilter {
                operation: Some("revoke".into()),
                since: Some(1_700_000_050),
                until: Some(1_700_000_300),
                limit: 10,
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(revokes.len(), 1);
        assert_eq!(revokes[0].at, 1_700_000_200);
    }
}
