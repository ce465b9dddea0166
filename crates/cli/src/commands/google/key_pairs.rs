//! `mailpki google key-pairs ...`.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_gmail::KeyPairAction;
use mailpki_gmail::types::CseKeyPair;
use mailpki_issuance::{EmailAddress, SubjectName};
use mailpki_kms::api::{CseCertificate, CseKeyPairBody, KeySource};
use mailpki_kms::{Kms, cse};
use mailpki_store::replace_private_file;
use openssl::x509::X509;
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::client;
use crate::args::{KeyPairCreateArgs, KeyPairIdArgs, UserArgs};
use crate::commands::block_on;
use crate::commands::{Ctx, read_input};

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

/// The user. Cosmian's guide writes `--leaf-certificate-pkcs12-password user@org` and no user
/// after it; a command line without a user whose PKCS#12 "password" is an address is read as
/// its readers mean it: that address is the user, and the file's password is asked for.
fn user_of(ctx: &Ctx, args: &KeyPairCreateArgs) -> Result<EmailAddress> {
    if let Some(user) = &args.user_id {
        return user.parse().context("invalid user ID");
    }
    match args.leaf.leaf_certificate_pkcs12_password.as_deref() {
        Some(value) if value.parse::<EmailAddress>().is_ok() => {
            ctx.printer.warn(&format!(
                "no user given: taking `{value}`, the value of --leaf-certificate-pkcs12-password, \
                 as the user (as Cosmian's guide writes it); the PKCS#12 password is asked for"
            ));
            Ok(value.parse()?)
        }
        _ => bail!("give the user (their primary address) as the last argument"),
    }
}

/// The PKCS#12 password given, unless it was the user (see [`user_of`]).
fn pkcs12_password(args: &KeyPairCreateArgs) -> Option<&str> {
    args.user_id
        .as_ref()
        .and(args.leaf.leaf_certificate_pkcs12_password.as_deref())
}

/// Where the user's certificate comes from, by the flags: a stored one, a PKCS#12 file, one
/// minted earlier for the user and never uploaded, or a new one.
fn certificate_source(
    ctx: &Ctx,
    kms: &Kms,
    args: &KeyPairCreateArgs,
    user: &EmailAddress,
) -> Result<CseCertificate> {
    let existing =
        args.leaf.leaf_certificate_id.is_some() || args.leaf.leaf_certificate_pkcs12_file.is_some();
    if existing && args.issuer_private_key_id.is_some() {
        ctx.printer.warn(
            "-i/--issuer-private-key-id is not used: the key pair takes the existing certificate",
        );
    }
    if let Some(id) = &args.leaf.leaf_certificate_id {
        return Ok(CseCertificate::Stored(id.clone()));
    }
    if let Some(path) = &args.leaf.leaf_certificate_pkcs12_file {
        let data = read_input(path)?;
        let password = match pkcs12_password(args) {
            Some(given) => Some(mailpki_kms::api::secret(given)),
            None => crate::commands::ask_if_protected(path, &data)?
                .map(|p| mailpki_kms::api::secret(p.expose_secret())),
        };
        return Ok(CseCertificate::Pkcs12 {
            data: Zeroizing::new(STANDARD.encode(data.as_slice())),
            password,
        });
    }
    let (issuer, subject, reused) = mint_plan(ctx, kms, args, user)?;
    if let Some(id) = reused {
        return Ok(CseCertificate::Stored(id));
    }
    let mut body = cse::certify_body(
        issuer,
        subject.to_string(),
        user,
        crate::mint::mint_profile(&crate::mint::google_profile(
            args.leaf_certificate_extensions.clone(),
            args.days,
            None,
        ))?,
    );
    if let Some(id) = &args.rsa_private_key_id {
        let public = kms
            .attributes(id)?
            .links
            .get(&mailpki_store::LinkType::PublicKeyLink)
            .cloned()
            .with_context(|| format!("`{id}` has no linked public key"))?;
        body.key = KeySource::PublicKeyId(public);
    }
    Ok(CseCertificate::Mint(Box::new(body)))
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
        mailpki_workflows::cse::unuploaded_leaf(kms, user, &subject)?
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
    let user = user_of(ctx, args)?;
    let created = upload(ctx, args)?.context("nothing was uploaded")?;
    let new_id = created.key_pair_id.clone().unwrap_or_default();
    let gmail = client(ctx, &args.google)?;
    let switched = block_on(mailpki_workflows::cse::switch_identity(
        &gmail, &user, &new_id,
    ))?
    .with_context(|| {
        format!("key pair {new_id} was uploaded, but the identity of {user} still points elsewhere")
    })?;
    let (identity, disabled) = (switched.identity, switched.disabled);
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
    let user = user_of(ctx, args)?;
    let kacls_uri = ctx.kacls_url(args.kacls_url.as_ref())?;
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
    let certificate = certificate_source(ctx, &kms, args, &user)?;
    let reply = kms
        .cse_key_pair(&CseKeyPairBody {
            certificate,
            user: user.to_string(),
            cse_key_id: args.cse_key_id.clone(),
            dry_run: args.dry_run,
        })
        .with_context(|| format!("cannot build the key pair of {user}"))?;
    crate::mint::print_minting(ctx.printer, &reply.notes, &reply.findings);
    let request = mailpki_workflows::cse::key_pair_request(&reply, &kacls_uri);
    let stored_id = reply.certificate_id.clone();
    let leaf = X509::from_pem(reply.certificate.as_bytes())?;
    let pkcs7 = request.pkcs7.clone().unwrap_or_default();
    let kacls_data = request.private_key_metadata[0]
        .kacls_key_metadata
        .as_ref()
        .map(|k| k.kacls_data.clone())
        .unwrap_or_default();
    if args.verify_kacls {
        let token = ctx
            .settings
            .kms_token()
            .context("--verify-kacls needs a token for the key service's server")?;
        crate::kacls_client::verify_key_pair(
            token.expose_secret(),
            &kacls_uri,
            &kacls_data,
            &leaf,
        )?;
        ctx.printer.info(&format!(
            "the key service at {kacls_uri} opens the wrapped key"
        ));
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
        && kms.add_tags(cert_id, &[cse::key_pair_tag(&id)]).is_err()
    {
        ctx.printer.warn(&format!(
            "uploaded, but could not record key pair {id} on certificate {cert_id}"
        ));
    }
    Ok(Some(created))
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
    ctx.printer.lines(
        &human,
        &format!("{} has no key pairs", args.user_id),
        &pairs,
    )
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
