//! OCSP answers (RFC 6960) from a store, for the publication listener: the request's
//! certificates looked up by serial among those the issuer issued (good, revoked with date and
//! reason, unknown), signed by the issuer's key or by a delegated responder certificate the
//! issuer signs. A request for an issuer the actor cannot sign for is `unauthorized`; one that
//! does not parse is `malformedRequest`.
//!
//! A [`Responder`] keeps what does not change per request: the issuers' name and key hashes,
//! their signing keys (unsealed on first use), and, when asked to, the signed answers to
//! requests without a nonce until a certificate is revoked (the store's revocation marker
//! moves) or half their validity has passed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use mailpki_issuance::Issuer;
use mailpki_issuance::ocsp::{self, CertStatus, IssuerHashes, ResponderKey};
use mailpki_store::{Actor, LinkType, ObjectFilter, ObjectType, Operation, Store};

/// How long an answer is good for (its `nextUpdate`).
const ANSWER_SECS: i64 = 86_400;
/// How long a delegated responder certificate is valid; a new one is made at half of it.
const DELEGATED_DAYS: u32 = 7;
/// Unknown issuers are looked for in the store at most this often (strangers send any hash).
const RELOAD_SECS: i64 = 5;
/// The most answers kept; past it the cache starts again.
const CACHE_ENTRIES: usize = 10_000;

/// How the responder signs and whether it keeps answers.
#[derive(Clone, Copy, Debug)]
pub struct ResponderOptions {
    /// Sign with a delegated responder certificate instead of the issuer's key.
    pub delegated: bool,
    /// Keep signed answers to requests without a nonce.
    pub cache: bool,
}

/// One CA the actor may answer for.
struct KnownIssuer {
    certificate_id: String,
    private_key_id: String,
    hashes: IssuerHashes,
    /// Made on first use; a delegated one is replaced before it ends.
    signer: Mutex<Option<ResponderKey>>,
}

struct Issuers {
    list: Vec<Arc<KnownIssuer>>,
    loaded_at: i64,
}

struct CachedAnswer {
    der: Vec<u8>,
    marker: i64,
    refresh_at: i64,
}

pub struct Responder {
    actor: Actor,
    options: ResponderOptions,
    issuers: RwLock<Issuers>,
    answers: Mutex<HashMap<Vec<u8>, CachedAnswer>>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Responder {
    #[must_use]
    pub fn new(actor: Actor, options: ResponderOptions) -> Self {
        Self {
            actor,
            options,
            issuers: RwLock::new(Issuers {
                list: Vec::new(),
                loaded_at: i64::MIN,
            }),
            answers: Mutex::new(HashMap::new()),
        }
    }

    /// The DER OCSP response to a DER request.
    pub fn answer(&self, store: &Store, request: &[u8]) -> Vec<u8> {
        let Some(request) = ocsp::parse_request(request) else {
            return ocsp::error_response(1);
        };
        match self.answer_parsed(store, &request) {
            Ok(Some(response)) => response,
            // No issuer of ours: RFC 6960's "unauthorized".
            Ok(None) => ocsp::error_response(6),
            Err(e) => {
                tracing::warn!(error = %e, "cannot answer an OCSP request");
                ocsp::error_response(2)
            }
        }
    }

    fn answer_parsed(
        &self,
        store: &Store,
        request: &ocsp::OcspRequest,
    ) -> Result<Option<Vec<u8>>, BoxError> {
        let now = now();
        // A nonce makes the answer the client's own: never kept.
        let cache_key = (self.options.cache && request.nonce.is_none()).then(|| {
            request
                .ids
                .iter()
                .flat_map(|id| id.der.iter().copied())
                .collect::<Vec<u8>>()
        });
        let marker = match &cache_key {
            Some(key) => {
                let marker = store.revocation_marker()?;
                if let Ok(answers) = self.answers.lock()
                    && let Some(kept) = answers.get(key)
                    && kept.marker == marker
                    && now < kept.refresh_at
                {
                    return Ok(Some(kept.der.clone()));
                }
                marker
            }
            None => 0,
        };
        let Some(issuer) = self.issuer_of(store, request, now)? else {
            return Ok(None);
        };
        let signer = self.signer(store, &issuer, now)?;
        let mut answers = Vec::with_capacity(request.ids.len());
        for id in &request.ids {
            let status =
                match store.issued_status(&self.actor, &issuer.certificate_id, &id.serial_hex)? {
                    Some(status) => match status.revoked_at {
                        Some(at) => CertStatus::Revoked {
                            at,
                            reason: status.reason.map(mailpki_store::RevocationReason::code),
                        },
                        None => CertStatus::Good,
                    },
                    None => CertStatus::Unknown,
                };
            answers.push((id, status));
        }
        let der = ocsp::sign_response(
            &signer,
            &answers,
            request.nonce.as_deref(),
            now,
            now + ANSWER_SECS,
        )?;
        if let Some(key) = cache_key
            && let Ok(mut kept) = self.answers.lock()
        {
            if kept.len() >= CACHE_ENTRIES {
                kept.clear();
            }
            kept.insert(
                key,
                CachedAnswer {
                    der: der.clone(),
                    marker,
                    refresh_at: now + ANSWER_SECS / 2,
                },
            );
        }
        Ok(Some(der))
    }

    /// The issuer every certificate of the request names, if it is one of ours.
    fn issuer_of(
        &self,
        store: &Store,
        request: &ocsp::OcspRequest,
        now: i64,
    ) -> Result<Option<Arc<KnownIssuer>>, BoxError> {
        let find = |issuers: &Issuers| {
            issuers
                .list
                .iter()
                .find(|issuer| request.ids.iter().all(|id| issuer.hashes.names(id)))
                .cloned()
        };
        let loaded_at = {
            let issuers = self
                .issuers
                .read()
                .map_err(|_| "the issuer list is poisoned")?;
            if let Some(found) = find(&issuers) {
                return Ok(Some(found));
            }
            issuers.loaded_at
        };
        if now.saturating_sub(loaded_at) < RELOAD_SECS {
            return Ok(None);
        }
        let list = self.load_issuers(store)?;
        let mut issuers = self
            .issuers
            .write()
            .map_err(|_| "the issuer list is poisoned")?;
        *issuers = Issuers {
            list,
            loaded_at: now,
        };
        Ok(find(&issuers))
    }

    /// The CA certificates with a private key the actor may read, hashed.
    fn load_issuers(&self, store: &Store) -> Result<Vec<Arc<KnownIssuer>>, BoxError> {
        let filter = ObjectFilter {
            object_type: Some(ObjectType::Certificate),
            ca_only: true,
            ..ObjectFilter::default()
        };
        let mut list = Vec::new();
        for ca in store.list(&self.actor, &filter)? {
            let Some(key) = ca.links.get(&LinkType::PrivateKeyLink) else {
                continue;
            };
            let Ok(certificate) =
                store.certificate(&self.actor, &ca.unique_identifier, Operation::Get)
            else {
                continue;
            };
            list.push(Arc::new(KnownIssuer {
                certificate_id: ca.unique_identifier.clone(),
                private_key_id: key.clone(),
                hashes: IssuerHashes::of(&certificate)?,
                signer: Mutex::new(None),
            }));
        }
        Ok(list)
    }

    /// The issuer's responder key: made on first use, renewed at half a delegated one's life.
    fn signer(
        &self,
        store: &Store,
        issuer: &KnownIssuer,
        now: i64,
    ) -> Result<ResponderKey, BoxError> {
        let mut signer = issuer.signer.lock().map_err(|_| "a signer is poisoned")?;
        let renew_at = |key: &ResponderKey| {
            key.not_after()
                .map_or(i64::MAX, |end| end - i64::from(DELEGATED_DAYS) * 86_400 / 2)
        };
        if let Some(key) = signer.as_ref()
            && now < renew_at(key)
        {
            return Ok(key.clone());
        }
        let material = store.issuer_material(&self.actor, &issuer.private_key_id)?;
        let ca = Issuer::new(
            &material.certificate,
            crate::mint::signing_key(&material.key),
        )?;
        let key = if self.options.delegated {
            ResponderKey::delegated(&ca, DELEGATED_DAYS)?
        } else {
            ResponderKey::issuer(&ca)?
        };
        *signer = Some(key.clone());
        Ok(key)
    }
}
