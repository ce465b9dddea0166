//! `mailpki kms certificates import`.

use std::fmt::Write;

use anyhow::{Context, Result};
use base64::Engine as _;
use mailpki_kms::api::{ImportBody, ImportFormat};
use secrecy::ExposeSecret;

use crate::args::{ImportArgs, ImportFormatArg};
use crate::commands::{Ctx, read_input, read_password};

pub(crate) fn run(ctx: &Ctx, args: &ImportArgs) -> Result<()> {
    // Read and check everything the user gave before the store is opened or created.
    let data = read_input(&args.file)?;
    let format = match args.format {
        ImportFormatArg::Pkcs12 => ImportFormat::Pkcs12,
        ImportFormatArg::Pem => ImportFormat::Pem,
        ImportFormatArg::Der => ImportFormat::Der,
    };
    let password = match read_password(&args.password)? {
        None if format == ImportFormat::Pkcs12 => {
            crate::commands::ask_if_protected(&args.file, &data)?
        }
        given => given,
    };
    let body = ImportBody {
        data: zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(data.as_slice()),
        ),
        format,
        password: password
            .as_ref()
            .map(|p| mailpki_kms::api::secret(p.expose_secret())),
        id: args.id.clone(),
        replace: args.replace,
        tags: args.tags.clone(),
        hsm: args.hsm,
    };
    let report = ctx
        .kms()?
        .import(&body)
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    ctx.printer.print(report_text(&report), &report)
}

/// What an import stored, one object per line.
pub(crate) fn report_text(report: &mailpki_store::ImportReport) -> String {
    let mut human = String::new();
    for (label, id) in [
        ("certificate", &report.certificate),
        ("private key", &report.private_key),
        ("public key", &report.public_key),
    ] {
        if let Some(id) = id {
            let _ = writeln!(human, "{label:<12} {id}");
        }
    }
    for id in &report.chain {
        let _ = writeln!(human, "{:<12} {id}", "chain");
    }
    human
}
