//! The certificate against its issuer: the signature, the issuer's validity and CA checks,
//! and a root signing users directly.

use crate::error::{IssuanceError, Result};
use openssl::x509::X509;

use super::{Linter, parse};

pub(super) fn lint_chain(
    l: &mut Linter,
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    leaf_not_after: i64,
) -> Result<()> {
    let Some(issuer_der) = chain_der.first() else {
        l.notice(
            "google.chain.unchecked",
            "no issuer given: the chain was not checked",
        );
        return Ok(());
    };
    let issuer = parse(issuer_der)?;
    let leaf_x509 =
        X509::from_der(leaf_der).map_err(IssuanceError::crypto("reading the certificate"))?;
    let issuer_x509 =
        X509::from_der(issuer_der).map_err(IssuanceError::crypto("reading the issuer"))?;
    let verifies = issuer_x509
        .public_key()
        .and_then(|k| leaf_x509.verify(&k))
        .unwrap_or(false);
    if !verifies
        || leaf_x509.issuer_name().to_der().ok() != issuer_x509.subject_name().to_der().ok()
    {
        l.error(
            "google.chain.signature",
            "the certificate is not signed by the given issuer",
        );
        return Ok(());
    }
    if leaf_not_after > issuer.validity().not_after.timestamp() {
        l.error(
            "google.validity.beyond_issuer",
            format!(
                "the certificate outlives its issuer (issuer expires {})",
                issuer.validity().not_after
            ),
        );
    }
    let self_signed = issuer.subject().as_raw() == issuer.issuer().as_raw();
    if self_signed {
        l.error("google.chain.intermediate", "the certificate is signed by a root: Gmail needs at least one intermediate CA between the root and users");
    }
    // The issuing CA itself.
    match issuer.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {
            if !bc.critical {
                l.warning(
                    "google.ca.basic_constraints_critical",
                    "the issuing CA's basicConstraints should be critical",
                );
            }
        }
        _ => l.error(
            "google.ca.not_ca",
            "the issuer is not a CA (basicConstraints CA:TRUE missing)",
        ),
    }
    if let Ok(Some(eku)) = issuer.extended_key_usage()
        && !eku.value.email_protection
        && !eku.value.any
    {
        l.error(
            "google.ca.eku",
            "the issuing CA's extendedKeyUsage lacks emailProtection",
        );
    }
    if !self_signed && issuer.extended_key_usage().ok().flatten().is_none() {
        l.warning(
            "google.ca.eku_missing",
            "the issuing CA should carry extendedKeyUsage emailProtection",
        );
    }
    for (i, der) in chain_der.iter().enumerate().skip(1) {
        let parent = parse(der)?;
        if parent.validity().not_after.timestamp() < leaf_not_after {
            l.warning(
                "google.chain.expires_first",
                format!("chain certificate {} expires before the certificate", i + 1),
            );
        }
    }
    Ok(())
}
