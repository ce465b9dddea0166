//! The `/v1` operations run against a store for one actor. The server's handlers call these
//! after authenticating the caller; the CLI's embedded mode calls them directly. Access rights
//! are the store's to check: nothing here widens what an actor may do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_issuance::{EmailAddress, SubjectName, parse_csr};
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
use crate::error::{KmsError, Result};
use crate::mint::{IssuanceDefaults, KeyChoice, Minted, Minter, store_minted};

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
        },
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
                profile: if body.legacy {
                    Pkcs12Profile::Legacy
                } else {
                    Pkcs12Profile::Modern
                },
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
    let (minter, minted) = mint(store, actor, defaults, body)?;
    let report = store_minted(store, actor, &minted, body.id.clone(), &body.tags)?;
    let info = mailpki_store::certificate_info(&minted.certificate)?;
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
