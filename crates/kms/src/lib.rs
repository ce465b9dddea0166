//! `mailpki-kms`: the key-management operations as the CLI and the server share them.
//!
//! [`Kms`] is what a command holds: either the embedded store (opened in-process, acting as the
//! configured user) or a remote `mailpki server` (acting as whoever the token names). Both run
//! the same [`api`] requests, so a command behaves the same in either mode. [`mint`] is the
//! issuance engine bound to a stored issuer; [`ops`] holds each `/v1` operation in one place:
//! its `Kms` method and what it does against a store.

pub mod api;
mod client;
pub mod cse;
mod error;
pub mod mint;
pub mod ocsp;
pub mod ops;

use mailpki_store::{Actor, ImportReport, Store};

pub use client::{RemoteKms, segment};
pub use error::{KmsError, Result};
pub use mint::{IssuanceDefaults, IssuerRef, KeyChoice, MintProfile, Minted, Minter, store_minted};

/// The store in this process, acting as one user.
struct Embedded {
    store: std::sync::Arc<Store>,
    actor: Actor,
    defaults: IssuanceDefaults,
}

/// Where key-management requests go: the store in this process ([`Kms::embedded`]) or a
/// server ([`Kms::remote`]). The only way the CLI and the workflows reach keys.
pub struct Kms(Mode);

enum Mode {
    Embedded(Box<Embedded>),
    Remote(RemoteKms),
}

impl Kms {
    /// The store in this process, acting as `actor`, minting with `defaults`.
    #[must_use]
    pub fn embedded(store: Store, actor: Actor, defaults: IssuanceDefaults) -> Self {
        Self::shared(std::sync::Arc::new(store), actor, defaults)
    }

    /// A store this process shares with others (a server running a workflow for one of its
    /// users), acting as `actor`.
    #[must_use]
    pub fn shared(store: std::sync::Arc<Store>, actor: Actor, defaults: IssuanceDefaults) -> Self {
        Self(Mode::Embedded(Box::new(Embedded {
            store,
            actor,
            defaults,
        })))
    }

    /// A KMS server, acting as whoever its token names.
    #[must_use]
    pub fn remote(client: RemoteKms) -> Self {
        Self(Mode::Remote(client))
    }

    /// Whom the requests act as: the embedded actor, or `None` for a server (the token says).
    #[must_use]
    pub fn local_actor(&self) -> Option<&Actor> {
        match &self.0 {
            Mode::Embedded(e) => Some(&e.actor),
            Mode::Remote(_) => None,
        }
    }

    /// A minter bound to the embedded store's issuer, for work that mints in this process with
    /// the keys in hand (certify-batch's workers); `None` through a server, which mints itself.
    pub fn local_minter(
        &self,
        issuer: &IssuerRef,
        profile: &MintProfile,
    ) -> Result<Option<Minter>> {
        match &self.0 {
            Mode::Embedded(e) => Ok(Some(Minter::new(
                &e.store,
                &e.actor,
                issuer,
                profile,
                &e.defaults,
            )?)),
            Mode::Remote(_) => Ok(None),
        }
    }

    /// Stores what a [`Kms::local_minter`] minted, with `tags`.
    pub fn store_minted(&self, minted: &Minted, tags: &[String]) -> Result<ImportReport> {
        match &self.0 {
            Mode::Embedded(e) => store_minted(&e.store, &e.actor, minted, None, tags),
            Mode::Remote(_) => Err(KmsError::invalid(
                "a certificate minted in this process is stored in the embedded store only",
            )),
        }
    }

    /// Re-seals every key under the master key in `new_key_file`; returns how many. On the
    /// store itself only, never through a server.
    pub fn rotate_master_key(&self, new_key_file: &std::path::Path) -> Result<usize> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e.store.rotate_master_key(new_key_file)?),
            Mode::Remote(_) => Err(KmsError::invalid(
                "the master key is rotated on the store itself: run this on the server's host, \
                 without --kms-url",
            )),
        }
    }
}
