//! `mailpki kms certificates certify`.

use anyhow::{Context, Result, bail};
use mailpki_issuance::{EmailAddress, SubjectName, parse_csr};
use mailpki_store::Operation;
use serde_json::json;

use crate::args::CertifyArgs;
use crate::commands::{Ctx, parse_flag, read_input};
use crate::mint::{KeyChoice, Minter, report_findings, store_minted};

pub(crate) fn run(ctx: &Ctx, args: &CertifyArgs) -> Result<()> {
    // Parse what the user typed before touching the store.
    let subject: Option<SubjectName> = parse_flag(args.subject_name.as_deref(), "--subject-name")?;
    let email: Option<EmailAddress> = parse_flag(args.email.as_deref(), "--email")?;
    let csr = match &args.key_source.certificate_signing_request {
        Some(path) => {
            Some(parse_csr(&read_input(path)?).with_context(|| format!("in {}", path.display()))?)
        }
        None => None,
    };

    let (store, actor) = ctx.open_store()?;
    let minter = Minter::new(
        &store,
        &actor,
        &args.issuer,
        &args.profile,
        &ctx.settings.issuance,
        ctx.printer,
    )?;
    let (subject, key) = if args.key_source.generate_key_pair {
        let subject = subject.context("--subject-name is required with --generate-key-pair")?;
        (subject, KeyChoice::Generate)
    } else if let Some(id) = &args.key_source.public_key_id_to_certify {
        let subject =
            subject.context("--subject-name is required with --public-key-id-to-certify")?;
        (
            subject,
            KeyChoice::Existing(store.public_key(&actor, id, Operation::Certify)?),
        )
    } else if let Some(csr) = &csr {
        let subject = match subject {
            Some(s) => s,
            None => mailpki_store::format_name(csr.subject_name())
                .parse()
                .context("the CSR's subject cannot be used; give --subject-name")?,
        };
        (subject, KeyChoice::Existing(csr.public_key()?))
    } else {
        bail!(
            "choose --generate-key-pair, --public-key-id-to-certify or --certificate-signing-request"
        );
    };

    let minted = minter.mint(&subject, key, email.as_ref())?;
    report_findings(ctx.printer, &minted);
    let report = store_minted(
        &store,
        &actor,
        &minted,
        args.certificate_id.clone(),
        &args.tags,
    )?;
    let uid = report.certificate.clone().unwrap_or_default();
    let cert = &minted.certificate;
    let info = mailpki_store::certificate_info(cert)?;
    ctx.printer.print(
        &uid,
        &json!({
            "unique_identifier": uid,
            "private_key": report.private_key,
            "public_key": report.public_key,
            "issuer_certificate": minter.issuer().certificate_id,
            "subject": info.subject,
            "serial_number": info.serial,
            "not_after": mailpki_store::rfc3339(info.not_after),
            "profile": minted.report.profile,
            "findings": minted.report.findings,
        }),
    )
}
