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
    SymmetricKeyBody, TagsBody, WrapBody, WrapReply, routes,
};

/// The store in this process, acting as one user.
pub struct Embedded {
    pub store: Store,
    pub actor: Actor,
    pub defaults: IssuanceDefaults,
}

/// Where key-management requests go.
pub enum Kms {
    Embedded(Box<Embedded>),
    Remote(RemoteKms),
}

impl Kms {
    /// Whom the requests act as: the embedded actor, or `None` for a server (the token says).
    #[must_use]
    pub fn local_actor(&self) -> Option<&Actor> {
        match self {
            Self::Embedded(e) => Some(&e.actor),
            Self::Remote(_) => None,
        }
    }

    /// The embedded store, for the work that only runs in-process.
    #[must_use]
    pub fn embedded(&self) -> Option<&Embedded> {
        match self {
            Self::Embedded(e) => Some(e),
            Self::Remote(_) => None,
        }
    }

    pub fn import(&self, body: &ImportBody) -> Result<ImportReport> {
        match self {
            Self::Embedded(e) => ops::import(&e.store, &e.actor, body),
            Self::Remote(r) => r.post(routes::IMPORT, body),
        }
    }

    pub fn export(&self, id: &str, body: &ExportBody) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Self::Embedded(e) => ops::export(&e.store, &e.actor, id, body),
            Self::Remote(r) => {
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
        match self {
            Self::Embedded(e) => {
                let mut chain =
                    vec![
                        e.store
                            .certificate(&e.actor, id, mailpki_store::Operation::Get)?,
                    ];
                chain.extend(e.store.chain(&e.actor, id)?);
                Ok(chain)
            }
            Self::Remote(_) => {
                let pem = self.export(
                    id,
                    &ExportBody {
                        format: "pem-chain".to_owned(),
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
        match self {
            Self::Embedded(e) => Ok(e.store.attributes(&e.actor, id)?),
            Self::Remote(r) => r.get(&routes::object(routes::ATTRIBUTES, id)),
        }
    }

    pub fn search(&self, body: &SearchBody) -> Result<Vec<Attributes>> {
        match self {
            Self::Embedded(e) => ops::search(&e.store, &e.actor, body),
            Self::Remote(r) => r.post(routes::SEARCH, body),
        }
    }

    /// IDs of the live objects carrying every tag.
    pub fn find_by_tags(&self, tags: &[String]) -> Result<Vec<String>> {
        match self {
            Self::Embedded(e) => Ok(e.store.find_by_tags(&e.actor, tags)?),
            Self::Remote(_) => Ok(self
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
        match self {
            Self::Embedded(e) => ops::grant(&e.store, &e.actor, id, body),
            Self::Remote(r) => r.post(&routes::object(routes::GRANT, id), body),
        }
    }

    pub fn revoke_access(&self, id: &str, body: &AccessBody) -> Result<()> {
        match self {
            Self::Embedded(e) => ops::revoke_access(&e.store, &e.actor, id, body),
            Self::Remote(r) => r.post(&routes::object(routes::REVOKE_ACCESS, id), body),
        }
    }

    pub fn access_list(&self, id: &str) -> Result<Vec<AccessEntry>> {
        match self {
            Self::Embedded(e) => ops::access_list(&e.store, &e.actor, id),
            Self::Remote(r) => r.get(&routes::object(routes::ACCESS, id)),
        }
    }

    pub fn owned(&self) -> Result<Vec<Attributes>> {
        match self {
            Self::Embedded(e) => ops::owned(&e.store, &e.actor),
            Self::Remote(r) => r.get(routes::OWNED),
        }
    }

    pub fn obtained(&self) -> Result<Vec<ObtainedEntry>> {
        match self {
            Self::Embedded(e) => ops::obtained(&e.store, &e.actor),
            Self::Remote(r) => r.get(routes::OBTAINED),
        }
    }

    /// Live API tokens acting as this user that someone else made.
    pub fn tokens_for_me(&self) -> Result<Vec<mailpki_store::ApiToken>> {
        match self {
            Self::Embedded(e) => ops::tokens_for(&e.store, &e.actor),
            Self::Remote(r) => r.get(routes::TOKENS_FOR_ME),
        }
    }

    pub fn revoke(&self, id: &str, body: &RevokeBody) -> Result<()> {
        match self {
            Self::Embedded(e) => ops::revoke(&e.store, &e.actor, id, body),
            Self::Remote(r) => r.post(&routes::object(routes::REVOKE, id), body),
        }
    }

    pub fn destroy(&self, id: &str, body: &DestroyBody) -> Result<()> {
        match self {
            Self::Embedded(e) => ops::destroy(&e.store, &e.actor, id, body),
            Self::Remote(r) => r.post(&routes::object(routes::DESTROY, id), body),
        }
    }

    pub fn add_tags(&self, id: &str, tags: &[String]) -> Result<()> {
        match self {
            Self::Embedded(e) => Ok(e.store.add_tags(&e.actor, id, tags)?),
            Self::Remote(r) => r.post(
                &routes::object(routes::TAGS, id),
                &TagsBody {
                    tags: tags.to_vec(),
                },
            ),
        }
    }

    pub fn create_symmetric_key(&self, body: &SymmetricKeyBody) -> Result<String> {
        match self {
            Self::Embedded(e) => ops::create_symmetric_key(&e.store, &e.actor, body),
            Self::Remote(r) => Ok(r
                .post::<_, IdReply>(routes::SYMMETRIC_KEYS, body)?
                .unique_identifier),
        }
    }

    pub fn certify(&self, body: &CertifyBody) -> Result<CertifyReply> {
        match self {
            Self::Embedded(e) => ops::certify(&e.store, &e.actor, &e.defaults, body),
            Self::Remote(r) => r.post(routes::CERTIFY, body),
        }
    }

    /// What Gmail's `keypairs.create` takes for a user (see [`cse::key_pair`]).
    pub fn cse_key_pair(&self, body: &CseKeyPairBody) -> Result<CseKeyPairReply> {
        match self {
            Self::Embedded(e) => cse::key_pair(&e.store, &e.actor, &e.defaults, body),
            Self::Remote(_) if matches!(body.certificate, CseCertificate::Pkcs12 { .. }) => {
                Err(KmsError::invalid(
                    "with a KMS server, import the PKCS#12 first (`mailpki kms certificates import`) \
                     and pass --leaf-certificate-id",
                ))
            }
            Self::Remote(r) => r.post(routes::CSE_KEY_PAIRS, body),
        }
    }

    /// The private key wrapped under the CSE key, as Gmail's `kaclsData`.
    pub fn cse_wrap(&self, body: &WrapBody) -> Result<String> {
        match self {
            Self::Embedded(e) => Ok(e.store.cse_wrap_private_key(
                &e.actor,
                &body.private_key_id,
                &body.cse_key_id,
            )?),
            Self::Remote(r) => Ok(r.post::<_, WrapReply>(routes::CSE_WRAP, body)?.kacls_data),
        }
    }

    pub fn journal_steps(&self, batch: &str, subject: &str) -> Result<BTreeMap<String, String>> {
        match self {
            Self::Embedded(e) => Ok(e.store.journal_steps(&e.actor, batch, subject)?),
            Self::Remote(r) => r.get(&routes::path(
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
        match self {
            Self::Embedded(e) => Ok(e
                .store
                .journal_record(&e.actor, batch, subject, step, value)?),
            Self::Remote(r) => r.post(
                &routes::path(routes::JOURNAL, &[("batch", batch), ("subject", subject)]),
                &JournalBody {
                    step: step.to_owned(),
                    value: value.to_owned(),
                },
            ),
        }
    }
}
