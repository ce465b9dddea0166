//! Onboarding as a library call, with no CLI in the way: what a server (or a console) does.
//! The emulator runs in this process, the store is a fresh SQLite file holding an issuing CA
//! made with the openssl CLI at test time.

// Fixture code: a broken fixture should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use mailpki_gmail::{GmailClient, ServiceAccountKey, TokenSource};
use mailpki_kms::{IssuanceDefaults, Kms, MintProfile};
use mailpki_store::{Actor, Algorithm, ImportFormat, MasterKeySource, Store, parse_bundle};
use mailpki_test_support::TestPki;
use mailpki_workflows::batch::{Observer, Tick};
use mailpki_workflows::onboard::{Plan, run};
use mailpki_workflows::rows::rows_of;
use secrecy::SecretString;

#[derive(Default)]
struct Count {
    ticks: Vec<Tick>,
}

impl Observer for Count {
    fn finished(&mut self, tick: Tick) {
        self.ticks.push(tick);
    }

    fn warn(&self, _message: &str) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// A scenario reads top to bottom as a story.
#[allow(clippy::too_many_lines)]
async fn a_caller_other_than_the_cli_onboards_users_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(&dir.path().join("pki"));
    let users = ["ann@example.com", "bob@example.com", "cy@example.com"];

    let emulator = mailpki_emulator::Emulator::bind(
        "127.0.0.1:0",
        mailpki_emulator::Config {
            trusted_roots: vec![pki.path("root.pem")],
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            ..mailpki_emulator::Config::default()
        },
    )
    .await
    .unwrap();
    let url = emulator.url().to_owned();
    let key_json = emulator
        .state()
        .create_service_account(mailpki_emulator::default_scopes())
        .await
        .unwrap();
    let (stop_emulator, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(emulator.serve(async {
        let _ = stopped.await;
    }));

    let store = Store::open(
        dir.path().join("kms.sqlite").to_str().unwrap(),
        &MasterKeySource::Passphrase(SecretString::from("test passphrase")),
    )
    .unwrap();
    let actor = Actor::new("alice").unwrap();
    let p12 = std::fs::read(pki.pkcs12("issuing", "modern")).unwrap();
    let password = SecretString::from(TestPki::PASSWORD);
    let bundle = parse_bundle(ImportFormat::Pkcs12, &p12, Some(&password)).unwrap();
    let imported = store
        .import_bundle(&actor, bundle, Some("ca".into()), false, &[])
        .unwrap();
    let issuer = imported.private_key.unwrap();
    store
        .create_symmetric_key(&actor, Some("cse".into()), Algorithm::Aes, 256, &[])
        .unwrap();
    let kms = || {
        Kms::embedded(
            Store::open(
                dir.path().join("kms.sqlite").to_str().unwrap(),
                &MasterKeySource::Passphrase(SecretString::from("test passphrase")),
            )
            .unwrap(),
            actor.clone(),
            IssuanceDefaults {
                crl_urls: vec!["http://pki.example.com/ca.crl".into()],
                ca_issuers_urls: vec!["http://pki.example.com/ca.crt".into()],
                ..IssuanceDefaults::default()
            },
        )
    };

    let key: ServiceAccountKey = serde_json::from_value(key_json).unwrap();
    let http = GmailClient::http_client().unwrap();
    let gmail = GmailClient::new(
        &url,
        Arc::new(TokenSource::new(key, http.clone()).unwrap()),
        http,
    );
    let plan = Plan {
        issuer,
        profile: MintProfile::default(),
        cse_key_id: "cse".into(),
        kacls_uri: "https://kacls.example.com/google_cse".into(),
        batch: "library-test".into(),
        concurrency: 4,
        after_upload: None,
        dry_run: false,
    };
    let csv = format!("email\n{}\n", users.join("\n"));

    let mut seen = Count::default();
    let tally = run(
        kms(),
        gmail.clone(),
        plan.clone(),
        rows_of(csv.as_bytes()).unwrap(),
        &mut seen,
        None,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(
        (tally.done, tally.failed, tally.retry_later),
        (3, 0, 0),
        "{:?}",
        tally.problems
    );
    assert_eq!(seen.ticks, [Tick::Done; 3]);
    for user in users {
        let pairs = gmail.list_key_pairs(user, None).await.unwrap();
        assert_eq!(pairs.len(), 1, "{user}");
        let identity = gmail.get_identity(user, user).await.unwrap();
        assert_eq!(identity.primary_key_pair_id, pairs[0].key_pair_id);
    }

    // The same batch again: the journal says everyone is done, nothing is uploaded twice.
    let again = run(
        kms(),
        gmail.clone(),
        plan,
        rows_of(csv.as_bytes()).unwrap(),
        &mut Count::default(),
        None,
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!((again.done, again.skipped), (0, 3));
    for user in users {
        assert_eq!(gmail.list_key_pairs(user, None).await.unwrap().len(), 1);
    }
    let _ = stop_emulator.send(());
    server.await.unwrap().unwrap();
}
