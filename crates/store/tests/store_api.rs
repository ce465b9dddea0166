//! The store's API as other crates use it: opening, importing, and handing out keys only to
//! actors allowed to use them.

// Fixture helpers outside #[test] functions unwrap too: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used)]

use mailpki_store::{
    Actor, Algorithm, ImportFormat, ImportRequest, LinkType, MasterKeySource, Operation, Store,
    StoreError,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::BasicConstraints;
use openssl::x509::{X509, X509NameBuilder};

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

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open_sqlite(
        &dir.path().join("kms.sqlite"),
        &MasterKeySource::File(dir.path().join("master.key")),
    )
    .unwrap()
}

#[test]
fn keys_go_only_to_actors_allowed_to_use_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
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

    assert!(matches!(
        store.private_key(&bob, &key_id, Operation::Certify),
        Err(StoreError::PermissionDenied { .. })
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
    let dir = tempfile::tempdir().unwrap();
    let alice = Actor::new("alice").unwrap();
    let (a, b) = {
        let store = open(&dir);
        (
            store
                .create_symmetric_key(&alice, Some("k1".into()), Algorithm::Aes, 256, &[])
                .unwrap(),
            store
                .create_symmetric_key(&alice, None, Algorithm::Aes, 128, &[])
                .unwrap(),
        )
    };
    let store = open(&dir);
    let k1 = store.symmetric_key(&alice, &a, Operation::Encrypt).unwrap();
    let k2 = store.symmetric_key(&alice, &b, Operation::Encrypt).unwrap();
    assert_eq!((k1.len(), k2.len()), (32, 16));
    assert_ne!(&k1[..16], &k2[..]);
    assert!(matches!(
        store.create_symmetric_key(&alice, None, Algorithm::Rsa, 256, &[]),
        Err(StoreError::InvalidKeyLength { .. })
    ));
}
