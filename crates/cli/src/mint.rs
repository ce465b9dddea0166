//! Minting as the commands use it: turn the flags into the shared engine's request
//! ([`mailpki_kms::mint`]) and print what it has to say. Shared by `kms certificates certify`,
//! `certify-batch` and the Google commands.

use anyhow::Result;
use mailpki_issuance::Severity;
use mailpki_kms::{IssuerRef, MintProfile};

use crate::args::{IssuerArgs, ProfileArgs};
use crate::output::Printer;

pub(crate) fn issuer_ref(issuer: &IssuerArgs) -> IssuerRef {
    IssuerRef {
        private_key_id: issuer.issuer_private_key_id.clone(),
        certificate_id: issuer.issuer_certificate_id.clone(),
    }
}

/// The profile the flags ask for; an extension file is read here, so that a server gets its
/// text.
pub(crate) fn mint_profile(profile: &ProfileArgs) -> Result<MintProfile> {
    let extensions = match &profile.certificate_extensions {
        Some(path) => Some(crate::files::read_text(path)?.to_string()),
        None => None,
    };
    Ok(MintProfile {
        extensions,
        extensions_name: profile
            .certificate_extensions
            .as_ref()
            .map(|p| p.display().to_string()),
        extensions_section: profile.extensions_section.clone(),
        days: profile.days,
        algorithm: profile.algorithm.clone(),
        crl_urls: profile.crl_urls.clone(),
        ca_issuers_urls: profile.ca_issuers_urls.clone(),
        ocsp_urls: profile.ocsp_urls.clone(),
        allow_non_compliant: profile.allow_non_compliant,
    })
}

/// The flags of the Google commands: the issuer by its private key ID, the built-in profile
/// or an extension file, URLs from the configuration.
pub(crate) fn google_profile(
    extensions: Option<std::path::PathBuf>,
    days: Option<u32>,
    algorithm: Option<&str>,
) -> ProfileArgs {
    ProfileArgs {
        certificate_extensions: extensions,
        extensions_section: None,
        days,
        algorithm: algorithm.map(str::to_owned),
        crl_urls: Vec::new(),
        ca_issuers_urls: Vec::new(),
        ocsp_urls: Vec::new(),
        allow_non_compliant: false,
    }
}

/// Prints the notes and warnings of a certificate minted through `Kms::certify`.
pub(crate) fn print_reply_findings(printer: Printer, reply: &mailpki_kms::api::CertifyReply) {
    print_minting(printer, &reply.notes, &reply.findings);
}

/// Prints the notes, the warnings and the S/MIME BR errors of a minting the KMS reported.
pub(crate) fn print_minting(
    printer: Printer,
    notes: &[String],
    findings: &[mailpki_kms::api::Finding],
) {
    for note in notes {
        printer.warn(note);
    }
    for f in findings {
        let (rule, message) = (&f.rule, &f.message);
        // An S/MIME BR error does not stop a minting (Gmail takes it from the organization's
        // own CA); one Gmail rejects only reaches here with --allow-non-compliant.
        if f.severity == Severity::Error {
            let kind = if mailpki_issuance::is_gmail_rule(rule) {
                "Gmail will reject it"
            } else {
                "S/MIME BR error"
            };
            printer.warn(&format!("[{rule}] {kind}: {message}"));
        } else if f.severity != Severity::Notice {
            printer.warn(&format!("[{rule}] {message}"));
        }
    }
}
