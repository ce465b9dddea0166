//! `mailpki-kms`: the key-management operations as the CLI and the server share them.
//!
//! [`Kms`] is what a command holds: either the embedded store (opened in-process, acting as the
//! configured user) or a remote `mailpki server` (acting as whoever the token names). Both run
//! the same [`api`] requests, so a command behaves the same in either mode. [`mint`] is the
//! issuance engine bound to a stored issuer; [`ops`] runs one request against a store.

pub mod api;
mod client;
pub mod cse;
mod error;
pub mod mint;
pub mod ops;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_store::{AccessEntry, Actor, Attributes, ImportReport, ObtainedEntry, Store};
use openssl::x509::X509;
use zeroize::Zeroizing;

pub use client::{RemoteKms, segment};
pub use error::{KmsError, Result};
pub use mint::{IssuanceDefaults, IssuerRef, KeyChoice, MintProfile, Minted, Minter, store_minted};

use api::{
    AccessBody, CertifyBody, CertifyReply, CseCertificate, CseKeyPairBody, CseKeyPairReply,
    DestroyBody, ExportBody, ExportReply, IdReply, ImportBody, JournalBody, RevokeBody, SearchBody,
    SymmetricKeyBody, TagsBody, TokenBody, TokenReply, routes,
};

/// The store in this process, acting as one user.
struct Embedded {
    store: Store,
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

    pub fn create_api_token(&self, body: &TokenBody) -> Result<TokenReply> {
        match &self.0 {
            Mode::Embedded(e) => ops::create_api_token(&e.store, &e.actor, body),
            Mode::Remote(r) => r.post(routes::ADMIN_TOKENS, body),
        }
    }

    pub fn api_tokens(&self) -> Result<Vec<mailpki_store::ApiToken>> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e.store.api_tokens()?),
            Mode::Remote(r) => r.get(routes::ADMIN_TOKENS),
        }
    }

    pub fn revoke_api_token(&self, id: &str) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => {
                if e.store.revoke_api_token(id)? {
                    Ok(())
                } else {
                    Err(KmsError::invalid(format!(
                        "no live API token with ID `{id}`"
                    )))
                }
            }
            Mode::Remote(r) => r
                .call::<(), serde_json::Value>(
                    "DELETE",
                    &routes::object(routes::ADMIN_TOKEN, id),
                    None,
                )
                .map(|_| ()),
        }
    }

    pub fn audit_log(
        &self,
        filter: &mailpki_store::AuditFilter,
    ) -> Result<Vec<mailpki_store::AuditEntry>> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e.store.audit_log(filter)?),
            Mode::Remote(r) => {
                let mut query = format!("{}?limit={}", routes::ADMIN_AUDIT, filter.limit);
                for (key, value) in [("actor", &filter.actor), ("object", &filter.object)] {
                    if let Some(value) = value {
                        let _ = write!(query, "&{key}={}", segment(value));
                    }
                }
                r.get(&query)
            }
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

    pub fn import(&self, body: &ImportBody) -> Result<ImportReport> {
        match &self.0 {
            Mode::Embedded(e) => ops::import(&e.store, &e.actor, body),
            Mode::Remote(r) => r.post(routes::IMPORT, body),
        }
    }

    pub fn export(&self, id: &str, body: &ExportBody) -> Result<Zeroizing<Vec<u8>>> {
        match &self.0 {
            Mode::Embedded(e) => ops::export(&e.store, &e.actor, id, body),
            Mode::Remote(r) => {
                let reply: ExportReply = r.post(&routes::object(routes::EXPORT, id), body)?;
                STANDARD
                    .decode(reply.data)
                    .map(Zeroizing::new)
                    .map_err(|e| KmsError::Protocol {
                        reason: format!("export data: {e}"),
                    })
            }
        }
    }

    /// The certificate `id` followed by its issuers, as far as the store links them.
    pub fn certificate_chain(&self, id: &str) -> Result<Vec<X509>> {
        match &self.0 {
            Mode::Embedded(e) => {
                let mut chain =
                    vec![
                        e.store
                            .certificate(&e.actor, id, mailpki_store::Operation::Get)?,
                    ];
                chain.extend(e.store.chain(&e.actor, id)?);
                Ok(chain)
            }
            Mode::Remote(_) => {
                let pem = self.export(
                    id,
                    &ExportBody {
                        format: api::ExportFormat::PemChain,
                        password: None,
                        legacy: false,
                    },
                )?;
                let chain = X509::stack_from_pem(&pem)?;
                if chain.is_empty() {
                    return Err(KmsError::Protocol {
                        reason: format!("the export of `{id}` holds no certificate"),
                    });
                }
                Ok(chain)
            }
        }
    }

    pub fn attributes(&self, id: &str) -> Result<Attributes> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e.store.attributes(&e.actor, id)?),
            Mode::Remote(r) => r.get(&routes::object(routes::ATTRIBUTES, id)),
        }
    }

    pub fn search(&self, body: &SearchBody) -> Result<Vec<Attributes>> {
        match &self.0 {
            Mode::Embedded(e) => ops::search(&e.store, &e.actor, body),
            Mode::Remote(r) => r.post(routes::SEARCH, body),
        }
    }

    /// IDs of the live objects carrying every tag.
    pub fn find_by_tags(&self, tags: &[String]) -> Result<Vec<String>> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e.store.find_by_tags(&e.actor, tags)?),
            Mode::Remote(_) => Ok(self
                .search(&SearchBody {
                    tags: tags.to_vec(),
                    ..SearchBody::default()
                })?
                .into_iter()
                .map(|a| a.unique_identifier)
                .collect()),
        }
    }

    pub fn grant(&self, id: &str, body: &AccessBody) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => ops::grant(&e.store, &e.actor, id, body),
            Mode::Remote(r) => r.post(&routes::object(routes::GRANT, id), body),
        }
    }

    pub fn revoke_access(&self, id: &str, body: &AccessBody) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => ops::revoke_access(&e.store, &e.actor, id, body),
            Mode::Remote(r) => r.post(&routes::object(routes::REVOKE_ACCESS, id), body),
        }
    }

    pub fn access_list(&self, id: &str) -> Result<Vec<AccessEntry>> {
        match &self.0 {
            Mode::Embedded(e) => ops::access_list(&e.store, &e.actor, id),
            Mode::Remote(r) => r.get(&routes::object(routes::ACCESS, id)),
        }
    }

    pub fn owned(&self) -> Result<Vec<Attributes>> {
        match &self.0 {
            Mode::Embedded(e) => ops::owned(&e.store, &e.actor),
            Mode::Remote(r) => r.get(routes::OWNED),
        }
    }

    pub fn obtained(&self) -> Result<Vec<ObtainedEntry>> {
        match &self.0 {
            Mode::Embedded(e) => ops::obtained(&e.store, &e.actor),
            Mode::Remote(r) => r.get(routes::OBTAINED),
        }
    }

    /// Live API tokens acting as this user that someone else made.
    pub fn tokens_for_me(&self) -> Result<Vec<mailpki_store::ApiToken>> {
        match &self.0 {
            Mode::Embedded(e) => ops::tokens_for(&e.store, &e.actor),
            Mode::Remote(r) => r.get(routes::TOKENS_FOR_ME),
        }
    }

    pub fn revoke(&self, id: &str, body: &RevokeBody) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => ops::revoke(&e.store, &e.actor, id, body),
            Mode::Remote(r) => r.post(&routes::object(routes::REVOKE, id), body),
        }
    }

    pub fn destroy(&self, id: &str, body: &DestroyBody) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => ops::destroy(&e.store, &e.actor, id, body),
            Mode::Remote(r) => r.post(&routes::object(routes::DESTROY, id), body),
        }
    }

    pub fn add_tags(&self, id: &str, tags: &[String]) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e.store.add_tags(&e.actor, id, tags)?),
            Mode::Remote(r) => r.post(
                &routes::object(routes::TAGS, id),
                &TagsBody {
                    tags: tags.to_vec(),
                },
            ),
        }
    }

    pub fn create_symmetric_key(&self, body: &SymmetricKeyBody) -> Result<String> {
        match &self.0 {
            Mode::Embedded(e) => ops::create_symmetric_key(&e.store, &e.actor, body),
            Mode::Remote(r) => Ok(r
                .post::<_, IdReply>(routes::SYMMETRIC_KEYS, body)?
                .unique_identifier),
        }
    }

    pub fn certify(&self, body: &CertifyBody) -> Result<CertifyReply> {
        match &self.0 {
            Mode::Embedded(e) => ops::certify(&e.store, &e.actor, &e.defaults, body),
            Mode::Remote(r) => r.post(routes::CERTIFY, body),
        }
    }

    /// What Gmail's `keypairs.create` takes for a user (see [`cse::key_pair`]).
    pub fn cse_key_pair(&self, body: &CseKeyPairBody) -> Result<CseKeyPairReply> {
        match &self.0 {
            Mode::Embedded(e) => cse::key_pair(&e.store, &e.actor, &e.defaults, body),
            Mode::Remote(_) if matches!(body.certificate, CseCertificate::Pkcs12 { .. }) => {
                Err(KmsError::invalid(
                    "with a KMS server, import the PKCS#12 first (`mailpki kms certificates import`) \
                     and pass --leaf-certificate-id",
                ))
            }
            Mode::Remote(r) => r.post(routes::CSE_KEY_PAIRS, body),
        }
    }

    pub fn journal_steps(&self, batch: &str, subject: &str) -> Result<BTreeMap<String, String>> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e.store.journal_steps(&e.actor, batch, subject)?),
            Mode::Remote(r) => r.get(&routes::path(
                routes::JOURNAL,
                &[("batch", batch), ("subject", subject)],
            )),
        }
    }

    pub fn journal_record(
        &self,
        batch: &str,
        subject: &str,
        step: &str,
        value: &str,
    ) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => Ok(e
                .store
                .journal_record(&e.actor, batch, subject, step, value)?),
            Mode::Remote(r) => r.post(
                &routes::path(routes::JOURNAL, &[("batch", batch), ("subject", subject)]),
                &JournalBody {
                    step: step.to_owned(),
                    value: value.to_owned(),
                },
            ),
        }
    }
}
