//! Measures the store operations every command and the console lean on, in-process, over a
//! store `revoked_store` filled with USERS users (`user<i>@example.com`): a page of 50
//! certificates after a random one, one user's certificates by email (the console's
//! search), `attributes get` by ID, a tag lookup (one user's objects), and a grant check
//! (`auditor` reading a certificate granted to it). Prints one JSON line: p50 and p95 in
//! milliseconds per operation.
//!
//! Usage: store_scale DATABASE MASTER_KEY_FILE USER USERS [ROUNDS]

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::path::PathBuf;
use std::time::Instant;

use mailpki_store::{Actor, MasterKeySource, ObjectFilter, ObjectType, Store};

/// A small deterministic generator: the same picks in every run.
struct Picks(u64);

impl Picks {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn percentiles(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((p / 100.0) * (ms.len() - 1) as f64).round() as usize];
    serde_json::json!({ "p50_ms": at(50.0), "p95_ms": at(95.0) })
}

/// The IDs of the certificates `actor` sees, in listing order.
fn certificate_ids(store: &Store, actor: &Actor) -> Vec<String> {
    store
        .list(
            actor,
            &ObjectFilter {
                object_type: Some(ObjectType::Certificate),
                ..ObjectFilter::default()
            },
        )
        .unwrap()
        .into_iter()
        .map(|a| a.unique_identifier)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() >= 5,
        "usage: store_scale DATABASE MASTER_KEY_FILE USER USERS [ROUNDS]"
    );
    let store = Store::open(&args[1], &MasterKeySource::File(PathBuf::from(&args[2])))
        .expect("the store opens");
    let owner = Actor::new(args[3].clone()).unwrap();
    let auditor = Actor::new("auditor").unwrap();
    let users: usize = args[4].parse().expect("USERS is a number");
    let rounds: usize = args.get(5).map_or(200, |r| r.parse().expect("ROUNDS"));
    let objects = store.find_by_tags(&owner, &[]).unwrap().len();
    let certificates = certificate_ids(&store, &owner);
    let granted = certificate_ids(&store, &auditor);
    assert!(
        !certificates.is_empty() && !granted.is_empty(),
        "an empty store"
    );
    let mut picks = Picks(0x9E37_79B9_7F4A_7C15);
    let mut time = |work: &mut dyn FnMut(&mut Picks)| {
        let mut ms = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t0 = Instant::now();
            work(&mut picks);
            ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        percentiles(ms)
    };
    let page = time(&mut |p| {
        let after = certificates[p.below(certificates.len())].clone();
        let found = store
            .list(
                &owner,
                &ObjectFilter {
                    object_type: Some(ObjectType::Certificate),
                    after: Some(after),
                    limit: Some(50),
                    ..ObjectFilter::default()
                },
            )
            .unwrap();
        assert!(found.len() <= 50);
    });
    let search = time(&mut |p| {
        let user = p.below(users);
        let found = store
            .list(
                &owner,
                &ObjectFilter {
                    object_type: Some(ObjectType::Certificate),
                    email: Some(format!("User{user}@example.com")),
                    limit: Some(50),
                    ..ObjectFilter::default()
                },
            )
            .unwrap();
        assert!(!found.is_empty(), "user{user} has a certificate");
    });
    let attributes = time(&mut |p| {
        store
            .attributes(&owner, &certificates[p.below(certificates.len())])
            .unwrap();
    });
    let tag = time(&mut |p| {
        let user = p.below(users);
        let email: mailpki_issuance::EmailAddress =
            format!("user{user}@example.com").parse().unwrap();
        let found = store
            .find_by_tags(&owner, &[mailpki_kms::cse::user_tag(&email)])
            .unwrap();
        assert!(!found.is_empty(), "user{user} is tagged");
    });
    let grant = time(&mut |p| {
        store
            .attributes(&auditor, &granted[p.below(granted.len())])
            .unwrap();
    });
    println!(
        "{}",
        serde_json::json!({
            "users": users,
            "objects": objects,
            "page_of_50": page,
            "search_by_email": search,
            "attributes_get": attributes,
            "tag_lookup": tag,
            "grant_check": grant,
        })
    );
}
