//! `mailpki google key-pairs ...`.

use anyhow::{Context, Result, bail};
use mailpki_gmail::KeyPairAction;
use mailpki_gmail::types::{CseIdentity, CseKeyPair, CsePrivateKeyMetadata, KaclsKeyMetadata};
use mailpki_issuance::{EmailAddress, LintOptions, SubjectName, lint};
use mailpki_store::{
    Actor, ImportFormat, Operation, Store, cse_wrap, parse_bundle, pkcs7_pem, replace_private_file,
};
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::X509;
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::{block_on, client};
use crate::args::{KeyPairCreateArgs, KeyPairIdArgs, UserArgs};
use crate::commands::{Ctx, read_input};
use crate::mint::{KeyChoice, report_findings, store_minted};
use mailpki_kms::Kms;
use mailpki_kms::api::{CertifyBody, KeySource, SearchBody, WrapBody};

/// The user's certificate, its chain and private key, and the store ID of the certificate.
struct Leaf {
    certificate: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
    stored_id: Option<String>,
}

fn describe(kp: &CseKeyPair) -> String {
    format!(
        "{}  {}  {}",
        kp.key_pair_id.as_deref().unwrap_or("?"),
        kp.enablement_state.map_or("?", |s| match s {
            mailpki_gmail::types::EnablementState::Enabled => "enabled",
            mailpki_gmail::types::EnablementState::Disabled => "disabled",
            mailpki_gmail::types::EnablementState::StateUnspecified => "unspecified",
        }),
        kp.subject_email_addresses.join(", ")
    )
}

/// Mints the user's certificate with the stored issuer, or takes an existing one.
fn leaf(
    ctx: &Ctx,
    kms: &Kms,
    store: &Store,
    actor: &Actor,
    args: &KeyPairCreateArgs,
    user: &EmailAddress,
) -> Result<Leaf> {
    if let Some(id) = &args.leaf.leaf_certificate_id {
        let key_id = store.private_key_id_of(actor, id)?;
        return Ok(Leaf {
            certificate: store.certificate(actor, id, Operation::Get)?,
            chain: store.chain(actor, id)?,
            key: store.private_key(actor, &key_id, Operation::Export)?,
            stored_id: Some(id.clone()),
        });
    }
    if let Some(path) = &args.leaf.leaf_certificate_pkcs12_file {
        let password = args
            .leaf
            .leaf_certificate_pkcs12_password
            .clone()
            .map(SecretString::from);
        let bundle = parse_bundle(ImportFormat::Pkcs12, &read_input(path)?, password.as_ref())
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut certificates = bundle.certificates.into_iter();
        return Ok(Leaf {
            certificate: certificates
                .next()
                .context("the PKCS#12 holds no certificate")?,
            chain: certificates.collect(),
            key: bundle
                .private_key
                .context("the PKCS#12 holds no private key")?,
            stored_id: None,
        });
    }
    let (issuer, subject, reused) = mint_plan(ctx, kms, args, user)?;
    if let Some(id) = reused {
        let key_id = store.private_key_id_of(actor, &id)?;
        return Ok(Leaf {
            certificate: store.certificate(actor, &id, Operation::Get)?,
            chain: store.chain(actor, &id)?,
            key: store.private_key(actor, &key_id, Operation::Export)?,
            stored_id: Some(id),
        });
    }
    // The key service signs and decrypts with RSA.
    let minter = crate::mint::minter_for_issuer_key(
        store,
        actor,
        issuer,
        args.leaf_certificate_extensions.clone(),
        args.days,
        Some("rsa2048"),
        &ctx.settings.issuance,
        ctx.printer,
    )?;
    let (key, choice) = match &args.rsa_private_key_id {
        Some(id) => {
            let private = store.private_key(actor, id, Operation::Export)?;
            let public = store.public_key(actor, id, Operation::Get)?;
            (Some(private), KeyChoice::Existing(public))
        }
        None => (None, KeyChoice::Generate),
    };
    let minted = minter.mint(&subject, choice, Some(user))?;
    report_findings(ctx.printer, &minted);
    let key = match (key, &minted.key) {
        (Some(k), _) => k,
        (None, Some(k)) => k.clone(),
        (None, None) => bail!("no private key for the certificate"),
    };
    let mut chain = vec![minter.issuer().certificate.clone()];
    chain.extend(minter.issuer().chain.iter().cloned());
    // Dry runs leave the store alone: nothing is kept that was not used.
    let stored_id = if args.dry_run {
        None
    } else {
        let report = store_minted(store, actor, &minted, None, &[cse_user_tag(user)])?;
        report.certificate
    };
    Ok(Leaf {
        certificate: minted.certificate,
        chain,
        key,
        stored_id,
    })
}

/// The key pair Gmail takes for `user`: the certificate linted for the user (refused if Gmail
/// would reject it), the chain as PKCS#7, the private key wrapped with the CSE key.
pub(crate) fn build_request(
    certificate: &X509,
    chain: &[X509],
    key: &PKey<Private>,
    user: &EmailAddress,
    wrapping_key: &[u8],
    kacls_uri: &str,
) -> Result<CseKeyPair> {
    if !certificate.public_key()?.public_eq(key) {
        bail!("the private key does not belong to the certificate");
    }
    gate(certificate, chain, user)?;
    let pkcs8 = Zeroizing::new(key.private_key_to_pkcs8()?);
    assemble(
        certificate,
        chain,
        cse_wrap(wrapping_key, &pkcs8)?,
        kacls_uri,
    )
}

/// Refuses a certificate Gmail or the key service would reject: not RSA, or failing the
/// linter for `user`.
fn gate(certificate: &X509, chain: &[X509], user: &EmailAddress) -> Result<()> {
    if certificate.public_key()?.id() != Id::RSA {
        bail!("CSE key pairs need an RSA key: the key service signs and decrypts with RSA");
    }
    let chain_der = chain
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<Vec<_>, _>>()?;
    let report = lint(
        &certificate.to_der()?,
        &chain_der,
        &LintOptions {
            expected_email: Some(user.clone()),
            at: None,
        },
    )?;
    if !report.accepted_by_google() {
        return Err(mailpki_issuance::IssuanceError::NonCompliant {
            findings: report.rejections().cloned().collect(),
        })
        .context("refusing to upload a certificate Gmail would reject");
    }
    Ok(())
}

/// The request body: the chain as PKCS#7 and the wrapped key with the key service's URL.
fn assemble(
    certificate: &X509,
    chain: &[X509],
    kacls_data: String,
    kacls_uri: &str,
) -> Result<CseKeyPair> {
    let mut certificates = vec![certificate.clone()];
    certificates.extend(chain.iter().cloned());
    let pkcs7 = String::from_utf8(pkcs7_pem(&certificates)?)?;
    Ok(CseKeyPair {
        pkcs7: Some(pkcs7),
        private_key_metadata: vec![CsePrivateKeyMetadata {
            kacls_key_metadata: Some(KaclsKeyMetadata {
                kacls_uri: kacls_uri.to_owned(),
                kacls_data,
            }),
            ..CsePrivateKeyMetadata::default()
        }],
        ..CseKeyPair::default()
    })
}

/// What minting for `user` takes from the flags: the issuer key, the subject, and a
/// certificate minted for the user by an earlier attempt that Gmail refused (CSE not active
/// yet, say), which is used rather than minting another.
fn mint_plan<'a>(
    ctx: &Ctx,
    kms: &Kms,
    args: &'a KeyPairCreateArgs,
    user: &EmailAddress,
) -> Result<(&'a str, SubjectName, Option<String>)> {
    let Some(issuer) = &args.issuer_private_key_id else {
        bail!(
            "give -i/--issuer-private-key-id to mint, or --leaf-certificate-id / --leaf-certificate-pkcs12-file"
        );
    };
    let subject = match &args.subject_name {
        Some(s) => s.parse::<SubjectName>().context("invalid --subject-name")?,
        None => SubjectName::mailbox(user),
    };
    let reused = if args.rsa_private_key_id.is_none() && !args.dry_run {
        unuploaded_leaf(kms, user, &subject)?
    } else {
        None
    };
    if let Some(id) = &reused {
        ctx.printer.warn(&format!(
            "using certificate `{id}`, minted earlier for {user} and never uploaded"
        ));
    }
    Ok((issuer, subject, reused))
}

/// A live certificate minted for `user` with `subject` that was never uploaded to Gmail.
fn unuploaded_leaf(
    kms: &Kms,
    user: &EmailAddress,
    subject: &SubjectName,
) -> Result<Option<String>> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    let filter = SearchBody {
        object_type: Some("Certificate".to_owned()),
        tags: vec![cse_user_tag(user)],
        ..SearchBody::default()
    };
    let wanted = subject.to_string();
    Ok(kms
        .search(&filter)?
        .into_iter()
        .filter(|c| c.state == mailpki_store::State::Active)
        .filter(|c| !c.tags.iter().any(|t| t.starts_with("gmail:keypair=")))
        .filter(|c| c.certificate_subject.as_deref() == Some(wanted.as_str()))
        .filter(|c| {
            c.certificate_not_after
                .as_deref()
                .and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .is_some_and(|t| t.unix_timestamp() > now)
        })
        .map(|c| c.unique_identifier)
        .next())
}

pub(crate) fn create(ctx: &Ctx, args: &KeyPairCreateArgs) -> Result<()> {
    if let Some(created) = upload(ctx, args)? {
        let id = created.key_pair_id.clone().unwrap_or_default();
        ctx.printer.print(&id, &created)?;
    }
    Ok(())
}

/// `google key-pairs rotate`: a new key pair for the user (a new certificate, its key wrapped
/// under the CSE key given, usually a new one), the identity pointed at it, and the user's
/// other key pairs disabled. Gmail cannot re-wrap a key pair in place, so this is how a CSE
/// key, or a user's key, is rotated.
pub(crate) fn rotate(ctx: &Ctx, args: &KeyPairCreateArgs) -> Result<()> {
    if args.dry_run {
        bail!("rotate changes Gmail: use `key-pairs create --dry-run` to see the new key pair");
    }
    let user: EmailAddress = args.user_id.parse().context("invalid user ID")?;
    let created = upload(ctx, args)?.context("nothing was uploaded")?;
    let new_id = created.key_pair_id.clone().unwrap_or_default();
    let gmail = client(ctx, &args.google)?;
    let identity = CseIdentity {
        email_address: Some(user.to_string()),
        primary_key_pair_id: Some(new_id.clone()),
        sign_and_encrypt_key_pairs: None,
    };
    let identity = match block_on(gmail.get_identity(user.as_str(), user.as_str()))? {
        Ok(_) => block_on(gmail.patch_identity(user.as_str(), user.as_str(), &identity))?,
        Err(e) if e.status() == Some(404) => {
            block_on(gmail.create_identity(user.as_str(), &identity))?
        }
        Err(e) => return Err(e.into()),
    }
    .with_context(|| {
        format!("key pair {new_id} was uploaded, but the identity of {user} still points elsewhere")
    })?;
    let mut disabled = Vec::new();
    for kp in block_on(gmail.list_key_pairs(user.as_str(), Some(100)))?? {
        let id = kp.key_pair_id.clone().unwrap_or_default();
        if id != new_id
            && kp.enablement_state == Some(mailpki_gmail::types::EnablementState::Enabled)
        {
            block_on(gmail.key_pair_action(user.as_str(), &id, KeyPairAction::Disable))?
                .with_context(|| format!("cannot disable the old key pair {id}"))?;
            disabled.push(id);
        }
    }
    ctx.printer.print(
        format!(
            "{user}: key pair {new_id} in use; disabled {}",
            if disabled.is_empty() {
                "none".to_owned()
            } else {
                disabled.join(", ")
            }
        ),
        &serde_json::json!({"keyPairId": new_id, "identity": identity, "disabled": disabled}),
    )
}

/// Builds the key pair and uploads it (recording its ID on the stored certificate); `None`
/// after a dry run, whose files are written and reported here.
fn upload(ctx: &Ctx, args: &KeyPairCreateArgs) -> Result<Option<CseKeyPair>> {
    let user: EmailAddress = args.user_id.parse().context("invalid user ID")?;
    let kacls_uri = args
        .kacls_url
        .clone()
        .or_else(|| ctx.settings.google.kacls_url.clone())
        .context("no key service URL: pass --kacls-url or set [google] kacls_url")?;
    // Check Gmail access (key file, delegation, the user) before anything is minted or stored.
    let gmail = if args.dry_run {
        None
    } else {
        let gmail = client(ctx, &args.google)?;
        block_on(gmail.preflight(user.as_str()))?
            .with_context(|| format!("cannot act for {user}"))?;
        Some(gmail)
    };
    let kms = ctx.kms()?;
    let (request, stored_id, leaf) = match kms.embedded() {
        Some(e) => {
            let wrapping_key = e
                .store
                .symmetric_key(&e.actor, &args.cse_key_id, Operation::Encrypt)
                .with_context(|| format!("cannot use `{}` as the CSE key", args.cse_key_id))?;
            let leaf = leaf(ctx, &kms, &e.store, &e.actor, args, &user)?;
            let request = build_request(
                &leaf.certificate,
                &leaf.chain,
                &leaf.key,
                &user,
                &wrapping_key,
                &kacls_uri,
            )?;
            (request, leaf.stored_id, leaf.certificate)
        }
        None => remote_request(ctx, &kms, args, &user, &kacls_uri)?,
    };
    let pkcs7 = request.pkcs7.clone().unwrap_or_default();
    let kacls_data = request.private_key_metadata[0]
        .kacls_key_metadata
        .as_ref()
        .map(|k| k.kacls_data.clone())
        .unwrap_or_default();
    if args.verify_kacls {
        crate::commands::kacls::verify_key_pair(ctx, &kacls_uri, &kacls_data, &leaf)?;
    }
    let Some(gmail) = gmail else {
        mailpki_store::create_private_dir(&args.output_dir)?;
        let p7_path = args.output_dir.join(format!("{user}.pkcs7.pem"));
        let wrapped_path = args.output_dir.join(format!("{user}.wrapped-key"));
        for (path, data) in [
            (&p7_path, pkcs7.as_bytes()),
            (&wrapped_path, kacls_data.as_bytes()),
        ] {
            replace_private_file(path, data)?;
        }
        ctx.printer.print(
            format!("dry run: wrote {} and {}", p7_path.display(), wrapped_path.display()),
            &serde_json::json!({"dry_run": true, "pkcs7_file": p7_path, "wrapped_key_file": wrapped_path, "request": request}),
        )?;
        return Ok(None);
    };
    let created =
        block_on(gmail.create_key_pair(user.as_str(), &request, args.chain_validation.into()))?
            .with_context(|| format!("Gmail refused the key pair for {user}"))?;
    let id = created.key_pair_id.clone().unwrap_or_default();
    if let Some(cert_id) = &stored_id
        && kms
            .add_tags(cert_id, &[format!("gmail:keypair={id}")])
            .is_err()
    {
        ctx.printer.warn(&format!(
            "uploaded, but could not record key pair {id} on certificate {cert_id}"
        ));
    }
    Ok(Some(created))
}

fn cse_user_tag(user: &EmailAddress) -> String {
    format!("mailpki:cse-user={}", user.normalized())
}

/// A certificate for a CSE user, minted by the KMS server with the issuer key `issuer`: RSA
/// (the key service signs and decrypts with RSA), tagged as the user's.
pub(crate) fn cse_certify_body(
    issuer: &str,
    subject: &SubjectName,
    user: &EmailAddress,
    extensions: Option<std::path::PathBuf>,
    days: Option<u32>,
) -> Result<CertifyBody> {
    Ok(CertifyBody {
        issuer: mailpki_kms::IssuerRef {
            private_key_id: Some(issuer.to_owned()),
            certificate_id: None,
        },
        profile: crate::mint::mint_profile(&crate::mint::google_profile(
            extensions,
            days,
            Some("rsa2048"),
        ))?,
        subject: Some(subject.to_string()),
        email: Some(user.to_string()),
        key: KeySource::Generate,
        id: None,
        tags: vec![cse_user_tag(user)],
    })
}

/// The key pair built through a KMS server: the server mints (or holds) the certificate and
/// wraps its key under the CSE key; neither the issuer key nor the user's key comes here.
/// Returns the request, the certificate's ID and the certificate.
fn remote_request(
    ctx: &Ctx,
    kms: &Kms,
    args: &KeyPairCreateArgs,
    user: &EmailAddress,
    kacls_uri: &str,
) -> Result<(CseKeyPair, Option<String>, X509)> {
    if args.leaf.leaf_certificate_pkcs12_file.is_some() {
        bail!(
            "with a KMS server, import the PKCS#12 first (`mailpki kms certificates import`) \
             and pass --leaf-certificate-id"
        );
    }
    let certificate_id = if let Some(id) = &args.leaf.leaf_certificate_id {
        id.clone()
    } else {
        if args.dry_run {
            bail!(
                "a dry run against a KMS server needs --leaf-certificate-id (minting would store)"
            );
        }
        let (issuer, subject, reused) = mint_plan(ctx, kms, args, user)?;
        if let Some(id) = reused {
            id
        } else {
            let key = match &args.rsa_private_key_id {
                Some(id) => {
                    let attrs = kms.attributes(id)?;
                    let public = attrs
                        .links
                        .get(&mailpki_store::LinkType::PublicKeyLink)
                        .with_context(|| format!("`{id}` has no linked public key"))?;
                    KeySource::PublicKeyId(public.clone())
                }
                None => KeySource::Generate,
            };
            let mut body = cse_certify_body(
                issuer,
                &subject,
                user,
                args.leaf_certificate_extensions.clone(),
                args.days,
            )?;
            body.key = key;
            let reply = kms.certify(&body)?;
            crate::mint::print_reply_findings(ctx.printer, &reply);
            reply.unique_identifier
        }
    };
    let (request, certificate) =
        remote_key_pair(kms, &certificate_id, user, &args.cse_key_id, kacls_uri)?;
    Ok((request, Some(certificate_id), certificate))
}

/// The key pair Gmail takes for `user`, from a certificate the KMS server holds: its chain
/// from the server, linted here, its private key wrapped by the server under the CSE key.
/// Returns the request and the certificate.
pub(crate) fn remote_key_pair(
    kms: &Kms,
    certificate_id: &str,
    user: &EmailAddress,
    cse_key_id: &str,
    kacls_uri: &str,
) -> Result<(CseKeyPair, X509)> {
    let mut certificates = kms.certificate_chain(certificate_id)?;
    let certificate = certificates.remove(0);
    gate(&certificate, &certificates, user)?;
    let key_id = kms
        .attributes(certificate_id)?
        .links
        .get(&mailpki_store::LinkType::PrivateKeyLink)
        .cloned()
        .with_context(|| format!("`{certificate_id}` has no linked private key"))?;
    let kacls_data = kms
        .cse_wrap(&WrapBody {
            private_key_id: key_id,
            cse_key_id: cse_key_id.to_owned(),
        })
        .with_context(|| format!("cannot wrap the key under `{cse_key_id}`"))?;
    let request = assemble(&certificate, &certificates, kacls_data, kacls_uri)?;
    Ok((request, certificate))
}

pub(crate) fn get(ctx: &Ctx, args: &KeyPairIdArgs) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let kp = block_on(gmail.get_key_pair(&args.user_id, &args.key_pair_id))??;
    ctx.printer.print(describe(&kp), &kp)
}

pub(crate) fn list(ctx: &Ctx, args: &UserArgs) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let pairs = block_on(gmail.list_key_pairs(&args.user_id, args.page_size))??;
    let human: Vec<String> = pairs.iter().map(describe).collect();
    ctx.printer.print(human.join("\n"), &pairs)
}

pub(crate) fn action(ctx: &Ctx, args: &KeyPairIdArgs, action: KeyPairAction) -> Result<()> {
    let gmail = client(ctx, &args.google)?;
    let kp = block_on(gmail.key_pair_action(&args.user_id, &args.key_pair_id, action))??;
    if action == KeyPairAction::Obliterate {
        return ctx.printer.print(
            format!("obliterated {}", args.key_pair_id),
            &serde_json::json!({"keyPairId": args.key_pair_id, "outcome": "obliterated"}),
        );
    }
    ctx.printer.print(describe(&kp), &kp)
}
