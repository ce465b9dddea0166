//! `mailpki kms certificates certify`: one certificate, minted where the issuer key is (the
//! embedded store, or the server).

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use mailpki_issuance::{EmailAddress, SubjectName, parse_csr};
use mailpki_kms::api::{CertifyBody, KeySource};
use serde_json::json;

use crate::args::CertifyArgs;
use crate::commands::{Ctx, parse_flag, read_input};
use crate::mint::{issuer_ref, mint_profile, print_reply_findings};

pub(crate) fn run(ctx: &Ctx, args: &CertifyArgs) -> Result<()> {
    // Parse what the user typed before touching the store.
    let subject: Option<SubjectName> = parse_flag(args.subject_name.as_deref(), "--subject-name")?;
    let email: Option<EmailAddress> = parse_flag(args.email.as_deref(), "--email")?;
    let key = if args.key_source.generate_key_pair {
        if subject.is_none() {
            bail!("--subject-name is required with --generate-key-pair");
        }
        KeySource::Generate
    } else if let Some(id) = &args.key_source.public_key_id_to_certify {
        if subject.is_none() {
            bail!("--subject-name is required with --public-key-id-to-certify");
        }
        KeySource::PublicKeyId(id.clone())
    } else if let Some(path) = &args.key_source.certificate_signing_request {
        let data = read_input(path)?;
        parse_csr(&data).with_context(|| format!("in {}", path.display()))?;
        KeySource::Csr(base64::engine::general_purpose::STANDARD.encode(data.as_slice()))
    } else {
        bail!(
            "choose --generate-key-pair, --public-key-id-to-certify or --certificate-signing-request"
        );
    };
    let body = CertifyBody {
        issuer: issuer_ref(&args.issuer),
        profile: mint_profile(&args.profile)?,
        subject: subject.map(|s| s.to_string()),
        email: email.map(|e| e.to_string()),
        key,
        id: args.certificate_id.clone(),
        tags: args.tags.clone(),
        pkcs12: None,
        once: false,
    };
    if body.issuer.private_key_id.is_none() && body.issuer.certificate_id.is_none() {
        bail!("give the issuer with -k/--issuer-private-key-id or --issuer-certificate-id");
    }
    let reply = ctx.kms()?.certify(&body)?;
    print_reply_findings(ctx.printer, &reply);
    ctx.printer.print(
        &reply.unique_identifier,
        &json!({
            "unique_identifier": reply.unique_identifier,
            "private_key": reply.private_key,
            "public_key": reply.public_key,
            "issuer_certificate": reply.issuer_certificate,
            "subject": reply.subject,
            "serial_number": reply.serial_number,
            "not_after": reply.not_after,
            "profile": reply.profile,
            "findings": reply.findings,
        }),
    )
}
