//! Minting as the commands use it: resolve the issuer from the store, pick the extensions
//! (file or built-in profile), issue, lint the result, and refuse what Gmail would reject.
//! Shared by `kms certificates certify`, `certify-batch` and the Google commands.

use anyhow::{Context, Result, bail};
use mailpki_issuance::{
    EmailAddress, ExtensionSpec, Issuer, KeyAlgorithm, LeafRequest, LintOptions, LintReport,
    ProfileUrls, Severity, SubjectName, google_smime_profile, lint,
};
use mailpki_store::{Actor, Bundle, ImportReport, IssuerMaterial, Store};
use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509;

use crate::args::{IssuerArgs, ProfileArgs};
use crate::config::IssuanceConfig;
use crate::output::Printer;

const DEFAULT_DAYS: u32 = 365;

/// Everything needed to mint many certificates from one issuer. Shareable across threads.
pub(crate) struct Minter {
    issuer: IssuerMaterial,
    /// The extension file's spec; `None` means the built-in profile.
    spec: Option<ExtensionSpec>,
    urls: ProfileUrls,
    pub(crate) days: u32,
    pub(crate) algorithm: KeyAlgorithm,
    allow_non_compliant: bool,
    /// DER of the issuer, then its chain, for the linter.
    chain_der: Vec<Vec<u8>>,
}

/// The key the certificate is for.
pub(crate) enum KeyChoice {
    Generate,
    Existing(PKey<Public>),
}

pub(crate) struct Minted {
    pub(crate) certificate: X509,
    pub(crate) key: Option<PKey<Private>>,
    pub(crate) report: LintReport,
    pub(crate) notes: Vec<String>,
}

impl Minter {
    pub(crate) fn new(
        store: &Store,
        actor: &Actor,
        issuer: &IssuerArgs,
        profile: &ProfileArgs,
        config: &IssuanceConfig,
        printer: Printer,
    ) -> Result<Self> {
        let key_id = match (&issuer.issuer_private_key_id, &issuer.issuer_certificate_id) {
            (Some(key), _) => key.clone(),
            (None, Some(cert)) => store.private_key_id_of(actor, cert)?,
            (None, None) => {
                bail!("give the issuer with -k/--issuer-private-key-id or --issuer-certificate-id")
            }
        };
        let material = store
            .issuer_material(actor, &key_id)
            .with_context(|| format!("cannot use `{key_id}` as the issuer"))?;
        // Check the pair is a usable CA now, not at the first certificate.
        Issuer::new(&material.certificate, &material.key)
            .with_context(|| format!("cannot issue with `{}`", material.certificate_id))?;
        let spec = match &profile.certificate_extensions {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Some(
                    ExtensionSpec::parse(&text, profile.extensions_section.as_deref())
                        .with_context(|| format!("in {}", path.display()))?,
                )
            }
            None => None,
        };
        let pick = |flag: &[String], conf: &[String]| {
            if flag.is_empty() {
                conf.to_vec()
            } else {
                flag.to_vec()
            }
        };
        let mut urls = ProfileUrls {
            crl: pick(&profile.crl_urls, &config.crl_urls),
            ca_issuers: pick(&profile.ca_issuers_urls, &config.ca_issuers_urls),
            ocsp: pick(&profile.ocsp_urls, &config.ocsp_urls),
        };
        if spec.is_none()
            && urls.crl.is_empty()
            && urls.ca_issuers.is_empty()
            && urls.ocsp.is_empty()
        {
            urls = ProfileUrls::of_certificate(&material.certificate.to_der()?)?;
            if !urls.crl.is_empty() {
                printer.warn(
                    "no CRL URL configured: using the issuer's own CRL distribution point; \
                     set [issuance] crl_urls (or --crl-url) to the issuing CA's CRL",
                );
            }
        }
        let algorithm: KeyAlgorithm = profile
            .algorithm
            .as_deref()
            .or(config.algorithm.as_deref())
            .map(str::parse)
            .transpose()?
            .unwrap_or_default();
        let mut chain_der = vec![material.certificate.to_der()?];
        for c in &material.chain {
            chain_der.push(c.to_der()?);
        }
        Ok(Self {
            issuer: material,
            spec,
            urls,
            days: profile.days.or(config.days).unwrap_or(DEFAULT_DAYS),
            algorithm,
            allow_non_compliant: profile.allow_non_compliant,
            chain_der,
        })
    }

    /// A minter for the Google commands: the issuer by its private key ID, the built-in profile
    /// or an extension file, URLs from the configuration.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_issuer_key(
        store: &Store,
        actor: &Actor,
        issuer_key: &str,
        extensions: Option<std::path::PathBuf>,
        days: Option<u32>,
        algorithm: Option<&str>,
        config: &IssuanceConfig,
        printer: Printer,
    ) -> Result<Self> {
        let profile = ProfileArgs {
            certificate_extensions: extensions,
            extensions_section: None,
            days,
            algorithm: algorithm.map(str::to_owned),
            crl_urls: Vec::new(),
            ca_issuers_urls: Vec::new(),
            ocsp_urls: Vec::new(),
            allow_non_compliant: false,
        };
        let issuer = IssuerArgs {
            issuer_private_key_id: Some(issuer_key.to_owned()),
            issuer_certificate_id: None,
        };
        Self::new(store, actor, &issuer, &profile, config, printer)
    }

    pub(crate) fn issuer(&self) -> &IssuerMaterial {
        &self.issuer
    }

    /// Mints one certificate; refuses (unless allowed) one that Gmail would reject.
    pub(crate) fn mint(
        &self,
        subject: &SubjectName,
        key: KeyChoice,
        email: Option<&EmailAddress>,
    ) -> Result<Minted> {
        let issuer = Issuer::new(&self.issuer.certificate, &self.issuer.key)?;
        let (private, public) = match key {
            KeyChoice::Generate => {
                let private = self.algorithm.generate()?;
                let public = PKey::public_key_from_der(&private.public_key_to_der()?)?;
                (Some(private), public)
            }
            KeyChoice::Existing(public) => (None, public),
        };
        let profile;
        let spec = if let Some(spec) = &self.spec {
            spec
        } else {
            profile = google_smime_profile(subject, &public, &self.urls);
            &profile
        };
        let extra: Vec<EmailAddress> = email.cloned().into_iter().collect();
        let issued = mailpki_issuance::issue(
            &issuer,
            &LeafRequest {
                subject,
                public_key: &public,
                extensions: spec,
                days: self.days,
                extra_emails: &extra,
            },
        )?;
        let report = lint(
            &issued.certificate.to_der()?,
            &self.chain_der,
            &LintOptions {
                expected_email: email.cloned(),
                at: None,
            },
        )?;
        if !report.accepted_by_google() && !self.allow_non_compliant {
            return Err(mailpki_issuance::IssuanceError::NonCompliant {
                findings: report.errors().cloned().collect(),
            })
            .context("refusing to mint (pass --allow-non-compliant to mint anyway)");
        }
        Ok(Minted {
            certificate: issued.certificate,
            key: private,
            report,
            notes: issued.notes,
        })
    }
}

/// Stores a minted certificate (and its new key) linked to the issuer.
pub(crate) fn store_minted(
    store: &Store,
    actor: &Actor,
    minted: &Minted,
    uid: Option<String>,
    tags: &[String],
) -> Result<ImportReport> {
    let bundle = Bundle {
        certificates: vec![minted.certificate.clone()],
        private_key: minted.key.clone(),
        public_key: None,
    };
    Ok(store.import_bundle(actor, bundle, uid, false, tags)?)
}

/// Prints warnings and notes of a lint report on stderr.
pub(crate) fn report_findings(printer: Printer, minted: &Minted) {
    for note in &minted.notes {
        printer.warn(note);
    }
    for f in minted
        .report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Notice)
    {
        printer.warn(&format!("[{}] {}", f.rule, f.message));
    }
}
