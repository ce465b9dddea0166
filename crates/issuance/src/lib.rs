//! `mailpki-issuance` mints S/MIME certificates that Gmail accepts on the first upload, from
//! an issuer certificate and key handed to it. It owns subject-name parsing
//! ([`SubjectName`]), OpenSSL-style extension files ([`ExtensionSpec`]), the built-in Google
//! profile ([`google_smime_profile`]), key generation and signing ([`issue`]), and the
//! compliance linter ([`lint()`]). It touches neither the database nor the network.

mod crl;
mod encode;
mod error;
mod extensions;
mod issue;
pub mod lint;
pub mod ocsp;
mod profile;
mod signer;
mod subject;

pub use crl::{CrlEntry, CrlRequest, sign_crl};
pub use error::{IssuanceError, Result};
pub use extensions::{
    AccessMethod, AkiSpec, BasicConstraints, Critical, ExtendedKeyUsage, ExtensionSpec,
    KeyUsageBit, Policy, SanEntry,
};
pub use issue::{Issued, Issuer, KeyAlgorithm, LeafRequest, MAX_VALIDITY_DAYS, issue, parse_csr};
pub use lint::{Finding, LintOptions, LintReport, Severity, is_gmail_rule, lint};
pub use profile::{ProfileUrls, google_smime_profile, smime_policy_oid};
pub use signer::{ExternalSigner, SigningKey};
pub use subject::{EmailAddress, SubjectName, ValidationType};
