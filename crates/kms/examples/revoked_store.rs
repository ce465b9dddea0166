//! Fills a store for `scripts/bench-revocation.sh`: REVOKED + GOOD certificates minted by the
//! stored issuer with the built-in profile (P-256 keys: what is measured is revocation, not
//! RSA key generation), stored with their keys linked to it as `certify -g` stores them, the first
//! REVOKED revoked with rotating RFC 5280 reasons. Writes REQUESTS, one base64 DER OCSP request
//! per line (SHA-1 CertIDs, as `openssl ocsp` sends), for a thousand certificates spread over
//! both kinds, for the load generator. Each certificate carries its user's tag
//! (`mailpki:cse-user=<email>`, as onboarding tags them) and every tenth is readable by
//! `auditor` (a grant), so that `scripts/bench-scale.sh` can measure tag lookups and grant
//! checks over the same store.
//!
//! With ONBOARD_BATCH, each user is also journaled as `google onboard --batch-id ONBOARD_BATCH`
//! journals a finished user (minted, key pair, identity), so that a re-run of that batch has
//! nothing left to do but look.
//!
//! Usage: revoked_store DATABASE MASTER_KEY_FILE USER ISSUER_KEY_ID REVOKED GOOD REQUESTS
//!        [ONBOARD_BATCH]

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine as _;
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::{IssuanceDefaults, IssuerRef, KeyChoice, MintProfile, Minter, store_minted};
use mailpki_store::{Actor, MasterKeySource, Store};
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspRequest};

const REASONS: [&str; 4] = [
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
];

/// What each user gets: a certificate and key, the user's tag, perhaps a grant, a journal and
/// a revocation.
struct Fill<'a> {
    store: &'a Store,
    actor: &'a Actor,
    minter: &'a Minter,
    journal: Option<String>,
}

impl Fill<'_> {
    /// Stores user `i`; returns the certificate.
    fn user(&self, i: usize, revoke: bool) -> openssl::x509::X509 {
        let (store, actor) = (self.store, self.actor);
        let email: EmailAddress = format!("user{i}@example.com").parse().unwrap();
        let subject: SubjectName = format!("CN={email}, emailAddress={email}").parse().unwrap();
        let minted = self
            .minter
            .mint(&subject, KeyChoice::Generate, Some(&email))
            .expect("minted");
        let tag = mailpki_kms::cse::user_tag(&email);
        let report = store_minted(store, actor, &minted, None, &[tag]).unwrap();
        let id = report.certificate.unwrap();
        if let Some(journal) = &self.journal {
            for (step, value) in [
                ("minted", id.as_str()),
                ("keypair", "kp"),
                ("identity", "kp"),
            ] {
                store
                    .journal_record(actor, journal, email.as_str(), step, value)
                    .unwrap();
            }
        }
        if i.is_multiple_of(10) {
            store
                .grant(
                    actor,
                    &id,
                    "auditor",
                    &[mailpki_store::Operation::GetAttributes],
                )
                .unwrap();
        }
        if revoke {
            store
                .revoke(actor, &id, REASONS[i % REASONS.len()], false)
                .unwrap();
        }
        minted.certificate
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 8 || args.len() == 9,
        "usage: revoked_store DATABASE MASTER_KEY_FILE USER ISSUER_KEY_ID REVOKED GOOD REQUESTS \
         [ONBOARD_BATCH]"
    );
    let journal = args.get(8).map(|batch| format!("onboard:{batch}"));
    let store = Store::open(&args[1], &MasterKeySource::File(PathBuf::from(&args[2])))
        .expect("the store opens");
    let actor = Actor::new(args[3].clone()).expect("a user name");
    let revoked: usize = args[5].parse().expect("REVOKED is a number");
    let good: usize = args[6].parse().expect("GOOD is a number");
    let total = revoked + good;
    let minter = Minter::new(
        &store,
        &actor,
        &IssuerRef {
            private_key_id: Some(args[4].clone()),
            certificate_id: None,
        },
        &MintProfile {
            crl_urls: vec!["http://pki.example.com/ca.crl".to_owned()],
            algorithm: Some("p256".to_owned()),
            ..MintProfile::default()
        },
        &IssuanceDefaults::default(),
    )
    .expect("the issuer can mint");
    let issuer = minter.issuer().certificate.clone();
    let fill = Fill {
        store: &store,
        actor: &actor,
        minter: &minter,
        journal,
    };
    let sample_every = (total / 1000).max(1);
    let requests = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..std::thread::available_parallelism().map_or(2, usize::from) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let minted = fill.user(i, i < revoked);
                    if i.is_multiple_of(sample_every) {
                        let mut request = OcspRequest::new().unwrap();
                        request
                            .add_id(
                                OcspCertId::from_cert(MessageDigest::sha1(), &minted, &issuer)
                                    .unwrap(),
                            )
                            .unwrap();
                        requests.lock().unwrap().push(request.to_der().unwrap());
                    }
                    if i > 0 && i.is_multiple_of(10_000) {
                        eprintln!("  {i} of {total} stored");
                    }
                }
            });
        }
    });
    let mut out = std::fs::File::create(&args[7]).expect("REQUESTS can be written");
    for der in requests.into_inner().unwrap() {
        writeln!(
            out,
            "{}",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
        .unwrap();
    }
    println!(
        "{{\"revoked\": {revoked}, \"good\": {good}, \"seconds\": {:.1}}}",
        t0.elapsed().as_secs_f64()
    );
}
