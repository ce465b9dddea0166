//! `mailpki kms certificates lint`.

use std::fmt::Write;

use anyhow::{Context, Result, bail};
use mailpki_issuance::{EmailAddress, LintOptions, Severity, lint};
use openssl::x509::X509;
use serde_json::json;

use crate::args::LintArgs;
use crate::commands::{Ctx, parse_flag, read_input};

/// Reads one or more certificates from PEM, or one from DER.
fn read_certificates(path: &std::path::Path) -> Result<Vec<X509>> {
    let data = read_input(path)?;
    let certs = X509::stack_from_pem(&data)
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| X509::from_der(&data).ok().map(|c| vec![c]))
        .with_context(|| format!("{} holds no PEM or DER certificate", path.display()))?;
    Ok(certs)
}

/// Lints a certificate; exits 1 when Gmail would reject it (with `--strict`, on any error).
pub(crate) fn run(ctx: &Ctx, args: &LintArgs) -> Result<()> {
    let email: Option<EmailAddress> = parse_flag(args.email.as_deref(), "--email")?;
    let (leaf, mut chain) = if let Some(path) = &args.file {
        let mut certs = read_certificates(path)?;
        let leaf = certs.remove(0);
        (leaf, certs)
    } else if let Some(id) = &args.certificate_id {
        let mut certs = ctx.kms()?.certificate_chain(id)?;
        let leaf = certs.remove(0);
        (leaf, certs)
    } else {
        bail!("give a certificate file or --certificate-id");
    };
    if let Some(path) = &args.chain {
        chain = read_certificates(path)?;
        // `export --chain` writes the leaf first: a chain file that starts with the very
        // certificate being linted is taken as its issuers after it.
        let leaf_der = leaf.to_der()?;
        if chain.first().map(|c| c.to_der()).transpose()?.as_ref() == Some(&leaf_der) {
            chain.remove(0);
        }
    }
    let chain_der = chain
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<Vec<_>, _>>()?;
    let report = lint(
        &leaf.to_der()?,
        &chain_der,
        &LintOptions {
            expected_email: email,
            at: None,
        },
    )?;

    let mut human = String::new();
    match &report.profile {
        Some(p) => {
            let _ = writeln!(human, "profile: {} ({:?})", p.validation, p.generation);
        }
        None => {
            let _ = writeln!(
                human,
                "profile: none declared (subject fits {})",
                report.subject_fits
            );
        }
    }
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|f| {
            vec![
                f.severity.to_string(),
                f.rule.to_string(),
                f.message.clone(),
            ]
        })
        .collect();
    human.push_str(&crate::output::table(&rows, ""));
    let count = |s| report.findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let accepted = report.accepted_by_google();
    let br_errors = errors - report.rejections().count();
    let verdict = match (accepted, br_errors) {
        (false, _) => "Gmail will reject it".to_owned(),
        (true, 0) => "Gmail should accept it".to_owned(),
        (true, n) => format!(
            "Gmail should accept it from your own CA, but it breaks the S/MIME BR ({n} error(s) pkilint reports too)"
        ),
    };
    let _ = writeln!(human, "{verdict}: {errors} error(s), {warnings} warning(s)");
    ctx.printer.print(
        human,
        &json!({
            "accepted_by_google": accepted,
            "smime_br_compliant": errors == 0,
            "profile": report.profile,
            "subject_fits": report.subject_fits,
            "findings": report.findings,
        }),
    )?;
    if accepted && !(args.strict && errors > 0) {
        Ok(())
    } else {
        Err(crate::Rejected.into())
    }
}
