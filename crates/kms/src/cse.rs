//! Building what Gmail's `keypairs.create` takes for a user, from a stored, newly minted or
//! PKCS#12 certificate: the one pipeline behind `google key-pairs create`, `rotate` and
//! `onboard`, embedded or on the server. Google's rules for CSE certificates live here: an RSA
//! key (the key service signs and decrypts with RSA), and nothing the linter says Gmail rejects.

use mailpki_issuance::{EmailAddress, IssuanceError, LintOptions, lint};
use mailpki_store::{Actor, ImportFormat, LinkType, Operation, Store, parse_bundle, pkcs7_pem};
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::api::{CertifyBody, CseCertificate, CseKeyPairBody, CseKeyPairReply, KeySource};
use crate::error::{KmsError, Result};
use crate::mint::{IssuanceDefaults, MintProfile};
use crate::ops;

/// The tag on a certificate minted for a CSE user.
#[must_use]
pub fn user_tag(user: &EmailAddress) -> String {
    format!("mailpki:cse-user={}", user.canonical())
}

/// The tag recording the Gmail key pair a certificate became.
#[must_use]
pub fn key_pair_tag(key_pair_id: &str) -> String {
    format!("gmail:keypair={key_pair_id}")
}

/// A certificate for a CSE user minted with the issuer key `issuer`: RSA-2048 by default (the
/// key service signs and decrypts with RSA), tagged as the user's.
#[must_use]
pub fn certify_body(
    issuer: &str,
    subject: String,
    user: &EmailAddress,
    mut profile: MintProfile,
) -> CertifyBody {
    if profile.algorithm.is_none() {
        profile.algorithm = Some("rsa2048".to_owned());
    }
    CertifyBody {
        issuer: crate::IssuerRef {
            private_key_id: Some(issuer.to_owned()),
            certificate_id: None,
        },
        profile,
        subject: Some(subject),
        email: Some(user.to_string()),
        key: KeySource::Generate,
        id: None,
        tags: vec![user_tag(user)],
        pkcs12: None,
        once: false,
    }
}

/// The leaf, its issuers and where its key is.
struct Leaf {
    certificate: X509,
    chain: Vec<X509>,
    key: LeafKey,
    certificate_id: Option<String>,
}

enum LeafKey {
    /// In the store (its `export` right needed).
    Stored(String),
    /// In memory: a dry run's new key or a PKCS#12 file's.
    Loose(PKey<Private>),
}

/// Runs [`CseKeyPairBody`] against the store, as `actor`.
pub fn key_pair(
    store: &Store,
    actor: &Actor,
    defaults: &IssuanceDefaults,
    body: &CseKeyPairBody,
) -> Result<CseKeyPairReply> {
    let user: EmailAddress = body
        .user
        .parse()
        .map_err(|e| KmsError::invalid(format!("invalid user: {e}")))?;
    // The CSE key first: a key that cannot wrap stops the request before anything is minted.
    store.check_cse_key(actor, &body.cse_key_id, Operation::Encrypt)?;
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let leaf = match &body.certificate {
        CseCertificate::Stored(id) => stored(store, actor, id)?,
        CseCertificate::Pkcs12 { data, password } => {
            let data = ops::decode("certificate.pkcs12.data", data)?;
            let password = password
                .as_ref()
                .map(|p| SecretString::from(p.as_str().to_owned()));
            let bundle = parse_bundle(ImportFormat::Pkcs12, &data, password.as_ref())?;
            let mut certificates = bundle.certificates.into_iter();
            Leaf {
                certificate: certificates
                    .next()
                    .ok_or_else(|| KmsError::invalid("the PKCS#12 holds no certificate"))?,
                chain: certificates.collect(),
                key: LeafKey::Loose(
                    bundle
                        .private_key
                        .ok_or_else(|| KmsError::invalid("the PKCS#12 holds no private key"))?,
                ),
                certificate_id: None,
            }
        }
        CseCertificate::Mint(certify) if body.dry_run => {
            let (minter, minted) = ops::mint(store, actor, defaults, certify)?;
            let key = match (&minted.key, &certify.key) {
                (Some(key), _) => key.clone(),
                (None, KeySource::PublicKeyId(public)) => {
                    let private = store
                        .attributes(actor, public)?
                        .links
                        .get(&LinkType::PrivateKeyLink)
                        .cloned()
                        .ok_or_else(|| {
                            KmsError::invalid(format!("`{public}` has no linked private key"))
                        })?;
                    store.private_key(actor, &private, Operation::Export)?
                }
                (None, _) => return Err(KmsError::invalid("no private key for the certificate")),
            };
            findings = ops::findings(&minted.report);
            notes = ops::notes(&minter, &minted);
            Leaf {
                chain: minter.chain(),
                certificate: minted.certificate,
                key: LeafKey::Loose(key),
                certificate_id: None,
            }
        }
        CseCertificate::Mint(certify) => {
            let reply = ops::certify(store, actor, defaults, certify)?;
            findings = reply.findings;
            notes = reply.notes;
            stored(store, actor, &reply.unique_identifier)?
        }
    };
    gate(&leaf, &user)?;
    let pkcs8 = Zeroizing::new(match &leaf.key {
        LeafKey::Stored(key_id) => store
            .private_key(actor, key_id, Operation::Export)?
            .private_key_to_pkcs8()?,
        LeafKey::Loose(key) => key.private_key_to_pkcs8()?,
    });
    let kacls_data = store.cse_wrap(actor, &body.cse_key_id, &pkcs8)?;
    let mut certificates = vec![leaf.certificate.clone()];
    certificates.extend(leaf.chain);
    let pkcs7 = String::from_utf8_lossy(&pkcs7_pem(&certificates)?).into_owned();
    Ok(CseKeyPairReply {
        pkcs7,
        kacls_data,
        certificate: String::from_utf8_lossy(&leaf.certificate.to_pem()?).into_owned(),
        certificate_id: leaf.certificate_id,
        findings,
        notes,
    })
}

fn stored(store: &Store, actor: &Actor, id: &str) -> Result<Leaf> {
    Ok(Leaf {
        certificate: store.certificate(actor, id, Operation::Get)?,
        chain: store.chain(actor, id)?,
        key: LeafKey::Stored(store.private_key_id_of(actor, id)?),
        certificate_id: Some(id.to_owned()),
    })
}

/// Refuses what Gmail or the key service would reject: a key that is not RSA, a loose key
/// that is not the certificate's, or a certificate the linter says Gmail rejects for `user`.
fn gate(leaf: &Leaf, user: &EmailAddress) -> Result<()> {
    if leaf.certificate.public_key()?.id() != Id::RSA {
        return Err(KmsError::invalid(
            "CSE key pairs need an RSA key: the key service signs and decrypts with RSA",
        ));
    }
    if let LeafKey::Loose(key) = &leaf.key
        && !leaf.certificate.public_key()?.public_eq(key)
    {
        return Err(KmsError::invalid(
            "the private key does not belong to the certificate",
        ));
    }
    let chain_der = leaf
        .chain
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<Vec<_>, _>>()?;
    let report = lint(
        &leaf.certificate.to_der()?,
        &chain_der,
        &LintOptions {
            expected_email: Some(user.clone()),
            at: None,
        },
    )?;
    if !report.accepted_by_google() {
        return Err(KmsError::WouldReject(IssuanceError::NonCompliant {
            findings: report.rejections().cloned().collect(),
        }));
    }
    Ok(())
}
