//! The `/v1` operations, each in one place: the [`Kms`] method (the embedded store, or the
//! server's route) and the function that runs it against a store for one actor, which the
//! server's handlers call too after authenticating the caller. Access rights are the store's
//! to check: nothing here widens what an actor may do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_issuance::{CrlEntry, CrlRequest, EmailAddress, SubjectName, parse_csr, sign_crl};
use mailpki_store::{
    AccessEntry, Actor, ApiToken, Attributes, DestroyOptions, ExportFormat, ImportReport,
    ImportRequest, ObjectFilter, ObtainedEntry, Operation, Pkcs12Profile, Store,
};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::api::{
    self, AccessBody, CertifyBody, CertifyReply, DestroyBody, ExportBody, Finding, ImportBody,
    KeySource, RevokeBody, SearchBody, SymmetricKeyBody, TokenBody, TokenReply,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use openssl::x509::X509;

use crate::api::{
    CrlBody, CrlReply, CseCertificate, CseKeyPairBody, CseKeyPairReply, ExportReply, HsmKeyBody,
    IdReply, JournalBody, TagsBody, routes,
};
use crate::error::{KmsError, Result};
use crate::mint::{IssuanceDefaults, KeyChoice, Minted, Minter, store_minted};
use crate::{Kms, Mode, segment};

pub(crate) fn decode(field: &str, data: &str) -> Result<Zeroizing<Vec<u8>>> {
    STANDARD
        .decode(data.trim())
        .map(Zeroizing::new)
        .map_err(|e| KmsError::invalid(format!("`{field}` is not valid base64: {e}")))
}

pub fn import(store: &Store, actor: &Actor, body: &ImportBody) -> Result<ImportReport> {
    let data = decode("data", &body.data)?;
    let password = body
        .password
        .as_deref()
        .map(|p| SecretString::from(p.as_str()));
    Ok(store.import(
        actor,
        &ImportRequest {
            data: &data,
            format: body.format.into(),
            password: password.as_ref(),
            uid: body.id.clone(),
            replace: body.replace,
            tags: body.tags.clone(),
            hsm: body.hsm,
        },
    )?)
}

/// Records a key already in the HSM: an issuer's private key beside its certificate, or an
/// AES key (no certificate).
pub fn register_hsm_key(store: &Store, actor: &Actor, body: &HsmKeyBody) -> Result<ImportReport> {
    if body.label.is_none() && body.key_id.is_none() {
        return Err(KmsError::invalid(
            "name the token's key by its label or its ID (CKA_ID, hex)",
        ));
    }
    let Some(certificate) = &body.certificate else {
        let uid = store.register_hsm_symmetric_key(
            actor,
            body.label.as_deref(),
            body.key_id.as_deref(),
            body.id.clone(),
            &body.tags,
        )?;
        return Ok(ImportReport {
            private_key: Some(uid),
            ..ImportReport::default()
        });
    };
    let data = decode("certificate", certificate)?;
    let certificate = openssl::x509::X509::from_pem(&data)
        .or_else(|_| openssl::x509::X509::from_der(&data))
        .map_err(|_| KmsError::invalid("`certificate` is not a PEM or DER certificate"))?;
    Ok(store.register_hsm_key(
        actor,
        body.label.as_deref(),
        body.key_id.as_deref(),
        certificate,
        body.id.clone(),
        &body.tags,
    )?)
}

pub fn export(
    store: &Store,
    actor: &Actor,
    id: &str,
    body: &ExportBody,
) -> Result<Zeroizing<Vec<u8>>> {
    let password;
    let format = match body.format {
        api::ExportFormat::Pem => ExportFormat::Pem { chain: false },
        api::ExportFormat::PemChain => ExportFormat::Pem { chain: true },
        api::ExportFormat::Der => ExportFormat::Der,
        api::ExportFormat::Pkcs7 => ExportFormat::Pkcs7,
        api::ExportFormat::Pkcs12 => {
            password = SecretString::from(
                body.password
                    .as_deref()
                    .ok_or_else(|| KmsError::invalid("a PKCS#12 export needs a password"))?
                    .as_str(),
            );
            ExportFormat::Pkcs12 {
                password: &password,
                profile: pkcs12_profile(body.legacy),
            }
        }
    };
    Ok(store.export_certificate(actor, id, &format)?)
}

/// Live API tokens that act as `actor` but were made by someone else: who else can act as
/// them.
pub fn tokens_for(store: &Store, actor: &Actor) -> Result<Vec<ApiToken>> {
    Ok(store.api_tokens_made_for(actor)?)
}

pub fn search(store: &Store, actor: &Actor, body: &SearchBody) -> Result<Vec<Attributes>> {
    Ok(store.list(
        actor,
        &ObjectFilter {
            object_type: body.object_type,
            tags: body.tags.clone(),
            subject_contains: body.subject_contains.clone(),
            expires_before: body.expires_before,
            include_destroyed: body.include_destroyed,
            ca_only: false,
            after: body.after.clone(),
            limit: body.limit,
            email: body.email.clone(),
            ..ObjectFilter::default()
        },
    )?)
}

pub fn grant(store: &Store, actor: &Actor, id: &str, body: &AccessBody) -> Result<()> {
    Ok(store.grant(actor, id, &body.user, &body.operations)?)
}

pub fn revoke_access(store: &Store, actor: &Actor, id: &str, body: &AccessBody) -> Result<()> {
    Ok(store.revoke_access(actor, id, &body.user, &body.operations)?)
}

pub fn access_list(store: &Store, actor: &Actor, id: &str) -> Result<Vec<AccessEntry>> {
    Ok(store.access_list(actor, id)?)
}

pub fn owned(store: &Store, actor: &Actor) -> Result<Vec<Attributes>> {
    Ok(store.owned(actor)?)
}

pub fn obtained(store: &Store, actor: &Actor) -> Result<Vec<ObtainedEntry>> {
    Ok(store.obtained(actor)?)
}

pub fn revoke(store: &Store, actor: &Actor, id: &str, body: &RevokeBody) -> Result<()> {
    Ok(store.revoke(actor, id, &body.reason, body.compromised)?)
}

pub fn destroy(store: &Store, actor: &Actor, id: &str, body: &DestroyBody) -> Result<()> {
    Ok(store.destroy(
        actor,
        id,
        DestroyOptions {
            force: body.force,
            remove: body.remove,
        },
    )?)
}

pub fn create_symmetric_key(
    store: &Store,
    actor: &Actor,
    body: &SymmetricKeyBody,
) -> Result<String> {
    if body.hsm {
        if body.algorithm != mailpki_store::Algorithm::Aes || body.length != 256 {
            return Err(KmsError::invalid("keys made in the HSM are AES-256"));
        }
        return Ok(store.create_hsm_symmetric_key(actor, body.id.clone(), &body.tags)?);
    }
    Ok(store.create_symmetric_key(
        actor,
        body.id.clone(),
        body.algorithm,
        body.length,
        &body.tags,
    )?)
}

/// Mints one certificate with a stored issuer for `actor`, keeping nothing: the minter (its
/// issuer and warnings) and what it minted.
pub(crate) fn mint(
    store: &Store,
    actor: &Actor,
    defaults: &IssuanceDefaults,
    body: &CertifyBody,
) -> Result<(Minter, Minted)> {
    // Everything the caller typed is checked before the store is touched.
    let subject: Option<SubjectName> = body
        .subject
        .as_deref()
        .map(|s| {
            s.parse()
                .map_err(|e| KmsError::invalid(format!("invalid subject: {e}")))
        })
        .transpose()?;
    let email: Option<EmailAddress> = body
        .email
        .as_deref()
        .map(|e| {
            e.parse()
                .map_err(|err| KmsError::invalid(format!("invalid email: {err}")))
        })
        .transpose()?;
    let csr = match &body.key {
        KeySource::Csr(data) => Some(parse_csr(&decode("key.csr", data)?)?),
        _ => None,
    };
    let minter = Minter::new(store, actor, &body.issuer, &body.profile, defaults)?;
    let need_subject = || KmsError::invalid("a subject is required unless a CSR gives one");
    let (subject, key) = match (&body.key, csr) {
        (KeySource::Generate, _) => (subject.ok_or_else(need_subject)?, KeyChoice::Generate),
        (KeySource::PublicKeyId(id), _) => (
            subject.ok_or_else(need_subject)?,
            KeyChoice::Existing(store.public_key(actor, id, Operation::Certify)?),
        ),
        (KeySource::Csr(_), Some(csr)) => {
            let subject = match subject {
                Some(s) => s,
                None => mailpki_store::format_name(csr.subject_name())
                    .parse()
                    .map_err(|e| {
                        KmsError::invalid(format!(
                            "the CSR's subject cannot be used ({e}); give a subject"
                        ))
                    })?,
            };
            (subject, KeyChoice::Existing(csr.public_key()?))
        }
        (KeySource::Csr(_), None) => return Err(KmsError::invalid("no CSR")),
    };
    let minted = minter.mint(&subject, key, email.as_ref())?;
    Ok((minter, minted))
}

/// What a minting has to say about itself: the minter's warnings (a fallback CRL URL), then
/// the certificate's (a shortened validity).
pub(crate) fn notes(minter: &Minter, minted: &Minted) -> Vec<String> {
    minter
        .warnings
        .iter()
        .chain(&minted.notes)
        .cloned()
        .collect()
}

/// A lint report's findings, as replies carry them.
pub(crate) fn findings(report: &mailpki_issuance::LintReport) -> Vec<Finding> {
    report
        .findings
        .iter()
        .map(|f| Finding {
            rule: f.rule.to_owned(),
            severity: f.severity,
            message: f.message.clone(),
        })
        .collect()
}

/// Mints one certificate with a stored issuer and stores it (and a new key) for `actor`.
pub fn certify(
    store: &Store,
    actor: &Actor,
    defaults: &IssuanceDefaults,
    body: &CertifyBody,
) -> Result<CertifyReply> {
    // Held until the certificate is stored: the same tags wait here, then find it.
    let _same_tags = (body.once && !body.tags.is_empty()).then(|| TagLock::acquire(&body.tags));
    if body.once
        && !body.tags.is_empty()
        && let Some(existing) = tagged_certificate(store, actor, &body.tags)?
    {
        return already_minted(store, actor, body, &existing);
    }
    // Under `once` the certificate's ID follows from the caller and the tags, so that server
    // instances answering the same request at once (the lock above is per process) store it
    // under one key: the database keeps one, and the others answer with it.
    let once_id = match (&body.id, body.once && !body.tags.is_empty()) {
        (None, true) => Some(once_uid(store, actor, &body.tags)?),
        _ => None,
    };
    let (minter, minted) = mint(store, actor, defaults, body)?;
    let id = body.id.clone().or_else(|| once_id.clone());
    let report = match store_minted(store, actor, &minted, id, &body.tags) {
        Err(KmsError::Store(mailpki_store::StoreError::AlreadyExists { .. }))
            if once_id.is_some() =>
        {
            if let Some(existing) = tagged_certificate(store, actor, &body.tags)? {
                return already_minted(store, actor, body, &existing);
            }
            return Err(KmsError::invalid(
                "another request with the same tags stored a certificate meanwhile; try again",
            ));
        }
        stored => stored?,
    };
    let info = mailpki_store::certificate_info(&minted.certificate)?;
    let pkcs12 = match (&body.pkcs12, &minted.key) {
        (None, _) => None,
        (Some(wanted), Some(key)) => {
            let password = SecretString::from(wanted.password.as_str());
            let der = Zeroizing::new(mailpki_store::build_pkcs12(
                &minted.certificate,
                key,
                &minter.chain(),
                &password,
                pkcs12_profile(wanted.legacy),
                minted_name(body, &info),
            )?);
            Some(api::secret(&STANDARD.encode(der.as_slice())))
        }
        (Some(_), None) => {
            return Err(KmsError::invalid(
                "a PKCS#12 comes back only for a key generated here",
            ));
        }
    };
    Ok(CertifyReply {
        unique_identifier: report.certificate.clone().unwrap_or_default(),
        private_key: report.private_key,
        public_key: report.public_key,
        issuer_certificate: minter.issuer().certificate_id.clone(),
        subject: info.subject,
        serial_number: info.serial,
        not_after: mailpki_store::rfc3339(info.not_after),
        certificate: String::from_utf8_lossy(&minted.certificate.to_pem()?).into_owned(),
        profile: serde_json::to_value(minted.report.profile).unwrap_or_default(),
        findings: findings(&minted.report),
        notes: notes(&minter, &minted),
        certificate_authority: minter.mints_ca(),
        pkcs12,
        already_minted: false,
    })
}

/// One certify-with-`once` at a time per tag set, in this process.
struct TagLock(Vec<String>);

static TAG_LOCKS: (
    std::sync::Mutex<std::collections::BTreeSet<Vec<String>>>,
    std::sync::Condvar,
) = (
    std::sync::Mutex::new(std::collections::BTreeSet::new()),
    std::sync::Condvar::new(),
);

impl TagLock {
    fn acquire(tags: &[String]) -> Self {
        let mut key = tags.to_vec();
        key.sort();
        let (lock, freed) = &TAG_LOCKS;
        let mut held = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while held.contains(&key) {
            held = freed
                .wait(held)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        held.insert(key.clone());
        Self(key)
    }
}

impl Drop for TagLock {
    fn drop(&mut self) {
        let (lock, freed) = &TAG_LOCKS;
        lock.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.0);
        freed.notify_all();
    }
}

/// The ID a `once` certificate of `actor` with `tags` is stored under: a hash of both and of
/// how many such certificates exist already (destroyed ones included), so a certificate made
/// after the last one was destroyed gets a new ID.
fn once_uid(store: &Store, actor: &Actor, tags: &[String]) -> Result<String> {
    let earlier = store
        .list(
            actor,
            &ObjectFilter {
                object_type: Some(mailpki_store::ObjectType::Certificate),
                tags: tags.to_vec(),
                include_destroyed: true,
                ..ObjectFilter::default()
            },
        )?
        .len();
    let mut sorted = tags.to_vec();
    sorted.sort();
    let digest =
        openssl::sha::sha256(format!("{actor}\n{}\n{earlier}", sorted.join("\n")).as_bytes());
    Ok(format!("once-{}", mailpki_store::hex(&digest[..12])))
}

/// A live certificate of `actor` carrying every one of `tags`.
fn tagged_certificate(store: &Store, actor: &Actor, tags: &[String]) -> Result<Option<String>> {
    for id in store.find_by_tags(actor, tags)? {
        let attributes = store.attributes(actor, &id)?;
        if attributes.object_type == mailpki_store::ObjectType::Certificate
            && attributes.state != mailpki_store::State::Destroyed
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The reply for a `once` request whose certificate an earlier request made.
fn already_minted(
    store: &Store,
    actor: &Actor,
    body: &CertifyBody,
    id: &str,
) -> Result<CertifyReply> {
    let attributes = store.attributes(actor, id)?;
    let certificate = store.certificate(actor, id, Operation::Get)?;
    let pkcs12 = match &body.pkcs12 {
        None => None,
        Some(wanted) => {
            let der = export(
                store,
                actor,
                id,
                &ExportBody {
                    format: api::ExportFormat::Pkcs12,
                    password: Some(wanted.password.clone()),
                    legacy: wanted.legacy,
                },
            )?;
            Some(api::secret(&STANDARD.encode(der.as_slice())))
        }
    };
    let link = |l: mailpki_store::LinkType| attributes.links.get(&l).cloned();
    Ok(CertifyReply {
        unique_identifier: id.to_owned(),
        private_key: link(mailpki_store::LinkType::PrivateKeyLink),
        public_key: link(mailpki_store::LinkType::PublicKeyLink),
        issuer_certificate: link(mailpki_store::LinkType::CertificateLink).unwrap_or_default(),
        subject: attributes.certificate_subject.clone().unwrap_or_default(),
        serial_number: attributes
            .certificate_serial_number
            .clone()
            .unwrap_or_default(),
        not_after: attributes.certificate_not_after.clone().unwrap_or_default(),
        certificate: String::from_utf8_lossy(&certificate.to_pem()?).into_owned(),
        profile: serde_json::Value::Null,
        findings: Vec::new(),
        notes: vec![format!(
            "already minted by an earlier request (a certificate carrying these tags: {id})"
        )],
        certificate_authority: attributes.certificate_is_ca.unwrap_or(false),
        pkcs12,
        already_minted: true,
    })
}

fn pkcs12_profile(legacy: bool) -> Pkcs12Profile {
    if legacy {
        Pkcs12Profile::Legacy
    } else {
        Pkcs12Profile::Modern
    }
}

/// The friendly name of a PKCS#12 made at minting: the user's address, else the subject.
fn minted_name<'a>(body: &'a CertifyBody, info: &'a mailpki_store::CertificateInfo) -> &'a str {
    body.email.as_deref().unwrap_or(&info.subject)
}

/// A new CRL of the CA whose private key is `body.issuer_private_key_id`: every certificate
/// it issued that is revoked, with its date and reason, signed with that key (the `certify`
/// right, as for minting). Its number is the issuer's next.
pub fn crl(store: &Store, actor: &Actor, body: &CrlBody) -> Result<CrlReply> {
    let days = body.days.unwrap_or(7);
    if !(1..=366).contains(&days) {
        return Err(KmsError::invalid(
            "a CRL's validity (days) must be between 1 and 366",
        ));
    }
    let as_issuer = |source: KmsError| KmsError::Issuer {
        id: body.issuer_private_key_id.clone(),
        source: Box::new(source),
    };
    let (material, number, revoked) = store
        .revocation_list(actor, &body.issuer_private_key_id)
        .map_err(|e| as_issuer(e.into()))?;
    let issuer = mailpki_issuance::Issuer::new(
        &material.certificate,
        crate::mint::signing_key(&material.key),
    )
    .map_err(|e| as_issuer(e.into()))?;
    let entries: Vec<CrlEntry> = revoked
        .iter()
        .map(|r| CrlEntry {
            serial_hex: r.serial.clone(),
            revoked_at: r.revoked_at,
            reason_code: r.reason.map(mailpki_store::RevocationReason::code),
        })
        .collect();
    let this_update = time::OffsetDateTime::now_utc().unix_timestamp();
    let next_update = this_update + i64::from(days) * 86_400;
    let crl = sign_crl(
        &issuer,
        &CrlRequest {
            entries: &entries,
            number,
            this_update,
            next_update,
        },
    )?;
    Ok(CrlReply {
        crl: STANDARD.encode(crl.to_der()?),
        crl_number: number,
        this_update: mailpki_store::rfc3339(this_update),
        next_update: mailpki_store::rfc3339(next_update),
        issuer: material.certificate_id.clone(),
        revoked: entries.len(),
    })
}

/// An API token acting as `body.user`, made by `actor`; the secret is in the reply only.
pub fn create_api_token(store: &Store, actor: &Actor, body: &TokenBody) -> Result<TokenReply> {
    let user = Actor::new(body.user.clone())?;
    let expires = body
        .expires_in_days
        .map(|days| time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(days) * 86_400);
    let (token, secret) = store.create_api_token(&user, actor, expires)?;
    Ok(TokenReply {
        token,
        secret: crate::api::secret(secrecy::ExposeSecret::expose_secret(&secret)),
    })
}

/// Every `/v1` operation through [`Kms`]: the embedded arm runs the function of the same
/// name below against the store; the remote arm is the route.
impl Kms {
    pub fn create_api_token(&self, body: &TokenBody) -> Result<TokenReply> {
        match &self.0 {
            Mode::Embedded(e) => create_api_token(&e.store, &e.actor, body),
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

    pub fn import(&self, body: &ImportBody) -> Result<ImportReport> {
        match &self.0 {
            Mode::Embedded(e) => import(&e.store, &e.actor, body),
            Mode::Remote(r) => r.post(routes::IMPORT, body),
        }
    }

    pub fn export(&self, id: &str, body: &ExportBody) -> Result<Zeroizing<Vec<u8>>> {
        match &self.0 {
            Mode::Embedded(e) => export(&e.store, &e.actor, id, body),
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
            Mode::Embedded(e) => search(&e.store, &e.actor, body),
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
            Mode::Embedded(e) => grant(&e.store, &e.actor, id, body),
            Mode::Remote(r) => r.post(&routes::object(routes::GRANT, id), body),
        }
    }

    pub fn revoke_access(&self, id: &str, body: &AccessBody) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => revoke_access(&e.store, &e.actor, id, body),
            Mode::Remote(r) => r.post(&routes::object(routes::REVOKE_ACCESS, id), body),
        }
    }

    pub fn access_list(&self, id: &str) -> Result<Vec<AccessEntry>> {
        match &self.0 {
            Mode::Embedded(e) => access_list(&e.store, &e.actor, id),
            Mode::Remote(r) => r.get(&routes::object(routes::ACCESS, id)),
        }
    }

    pub fn owned(&self) -> Result<Vec<Attributes>> {
        match &self.0 {
            Mode::Embedded(e) => owned(&e.store, &e.actor),
            Mode::Remote(r) => r.get(routes::OWNED),
        }
    }

    pub fn obtained(&self) -> Result<Vec<ObtainedEntry>> {
        match &self.0 {
            Mode::Embedded(e) => obtained(&e.store, &e.actor),
            Mode::Remote(r) => r.get(routes::OBTAINED),
        }
    }

    /// Live API tokens acting as this user that someone else made.
    pub fn tokens_for_me(&self) -> Result<Vec<mailpki_store::ApiToken>> {
        match &self.0 {
            Mode::Embedded(e) => tokens_for(&e.store, &e.actor),
            Mode::Remote(r) => r.get(routes::TOKENS_FOR_ME),
        }
    }

    pub fn revoke(&self, id: &str, body: &RevokeBody) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => revoke(&e.store, &e.actor, id, body),
            Mode::Remote(r) => r.post(&routes::object(routes::REVOKE, id), body),
        }
    }

    pub fn destroy(&self, id: &str, body: &DestroyBody) -> Result<()> {
        match &self.0 {
            Mode::Embedded(e) => destroy(&e.store, &e.actor, id, body),
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

    pub fn register_hsm_key(&self, body: &HsmKeyBody) -> Result<ImportReport> {
        match &self.0 {
            Mode::Embedded(e) => register_hsm_key(&e.store, &e.actor, body),
            Mode::Remote(r) => r.post(routes::HSM_KEYS, body),
        }
    }

    pub fn create_symmetric_key(&self, body: &SymmetricKeyBody) -> Result<String> {
        match &self.0 {
            Mode::Embedded(e) => create_symmetric_key(&e.store, &e.actor, body),
            Mode::Remote(r) => Ok(r
                .post::<_, IdReply>(routes::SYMMETRIC_KEYS, body)?
                .unique_identifier),
        }
    }

    pub fn certify(&self, body: &CertifyBody) -> Result<CertifyReply> {
        match &self.0 {
            Mode::Embedded(e) => certify(&e.store, &e.actor, &e.defaults, body),
            Mode::Remote(r) => r.post(routes::CERTIFY, body),
        }
    }

    /// A new CRL of an issuer (see [`crl`]).
    pub fn crl(&self, body: &CrlBody) -> Result<CrlReply> {
        match &self.0 {
            Mode::Embedded(e) => crl(&e.store, &e.actor, body),
            Mode::Remote(r) => r.post(routes::CRL, body),
        }
    }

    /// What Gmail's `keypairs.create` takes for a user (see [`cse::key_pair`]).
    pub fn cse_key_pair(&self, body: &CseKeyPairBody) -> Result<CseKeyPairReply> {
        match &self.0 {
            Mode::Embedded(e) => crate::cse::key_pair(&e.store, &e.actor, &e.defaults, body),
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
