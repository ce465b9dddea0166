//! Minting with a stored issuer: resolve the issuer's key and certificate (the `certify` right
//! is checked by the store), pick the extensions (a file's text or the built-in profile), issue,
//! lint, and refuse what Gmail would reject. The CLI runs this in embedded mode; the server
//! runs it for remote callers, so that issuer keys never leave the server.

use mailpki_issuance::{
    EmailAddress, ExtensionSpec, ExternalSigner, Issuer, KeyAlgorithm, LeafRequest, LintOptions,
    LintReport, MAX_VALIDITY_DAYS, ProfileUrls, SigningKey, SubjectName, google_smime_profile,
    lint,
};
use mailpki_store::{Actor, Bundle, ImportReport, IssuerKey, IssuerMaterial, Store};
use openssl::pkey::{PKey, Private, Public};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use crate::error::{KmsError, Result};

pub const DEFAULT_DAYS: u32 = 365;

/// Organization-wide defaults for minting (`[issuance]` in the configuration).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuanceDefaults {
    #[serde(default)]
    pub crl_urls: Vec<String>,
    #[serde(default)]
    pub ca_issuers_urls: Vec<String>,
    #[serde(default)]
    pub ocsp_urls: Vec<String>,
    pub days: Option<u32>,
    pub algorithm: Option<String>,
    /// Where the publication listener is reached (`[server.publish] base_url` fills it when
    /// unset): with no URLs given, the built-in profile names the issuer's CRL, certificate
    /// and OCSP responder there.
    pub base_url: Option<String>,
}

impl IssuanceDefaults {
    /// The publication listener's URLs for the CA certificate `issuer_certificate_id`.
    #[must_use]
    pub fn published_urls(&self, issuer_certificate_id: &str) -> Option<ProfileUrls> {
        let base = self.base_url.as_deref()?.trim_end_matches('/');
        Some(ProfileUrls {
            crl: vec![format!("{base}/crl/{issuer_certificate_id}.crl")],
            ca_issuers: vec![format!("{base}/ca/{issuer_certificate_id}.crt")],
            ocsp: vec![format!("{base}/ocsp")],
        })
    }
}

/// Which CA signs: its private key ID, or its certificate ID (whose linked key signs).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IssuerRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
}

/// How one request wants its certificates made; unset fields take the defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct MintProfile {
    /// Text of an extension file (`openssl x509 -extfile` syntax); none means the built-in
    /// Google S/MIME profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<String>,
    /// Name of the extension file, for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions_section: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crl_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_issuers_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocsp_urls: Vec<String>,
    #[serde(default)]
    pub allow_non_compliant: bool,
}

/// Everything needed to mint many certificates from one issuer. Shareable across threads.
pub struct Minter {
    issuer: IssuerMaterial,
    /// The issuer's key as the issuance engine signs with it.
    signing_key: SigningKey,
    spec: Option<ExtensionSpec>,
    urls: ProfileUrls,
    pub days: u32,
    pub algorithm: KeyAlgorithm,
    allow_non_compliant: bool,
    /// Whether the extensions make CA certificates (only with `certify_ca`).
    ca: bool,
    /// DER of the issuer, then its chain, for the linter.
    chain_der: Vec<Vec<u8>>,
    /// Things the caller should tell the user once (not errors).
    pub warnings: Vec<String>,
}

/// The URLs the built-in profile names: the request's, else the configured ones, else the
/// publication listener's (`base_url`), else the issuer's own (with a warning).
fn builtin_urls(
    profile: &MintProfile,
    defaults: &IssuanceDefaults,
    material: &IssuerMaterial,
    warnings: &mut Vec<String>,
) -> Result<ProfileUrls> {
    let pick = |asked: &[String], default: &[String]| {
        if asked.is_empty() {
            default.to_vec()
        } else {
            asked.to_vec()
        }
    };
    let urls = ProfileUrls {
        crl: pick(&profile.crl_urls, &defaults.crl_urls),
        ca_issuers: pick(&profile.ca_issuers_urls, &defaults.ca_issuers_urls),
        ocsp: pick(&profile.ocsp_urls, &defaults.ocsp_urls),
    };
    if !(urls.crl.is_empty() && urls.ca_issuers.is_empty() && urls.ocsp.is_empty()) {
        return Ok(urls);
    }
    if let Some(published) = defaults.published_urls(&material.certificate_id) {
        return Ok(published);
    }
    let urls = ProfileUrls::of_certificate(&material.certificate.to_der()?)?;
    if !urls.crl.is_empty() {
        warnings.push(
            "no CRL URL configured: using the issuer's own CRL distribution point; \
             set [server.publish] base_url (or [issuance] crl_urls, --crl-url) to \
             where the issuing CA's CRL is published"
                .to_owned(),
        );
    }
    Ok(urls)
}

/// The key the certificate is for.
pub enum KeyChoice {
    Generate,
    Existing(PKey<Public>),
}

pub struct Minted {
    pub certificate: X509,
    pub key: Option<PKey<Private>>,
    pub report: LintReport,
    pub notes: Vec<String>,
}

impl Minter {
    pub fn new(
        store: &Store,
        actor: &Actor,
        issuer: &IssuerRef,
        profile: &MintProfile,
        defaults: &IssuanceDefaults,
    ) -> Result<Self> {
        let key_id = match (&issuer.private_key_id, &issuer.certificate_id) {
            (Some(key), _) => key.clone(),
            (None, Some(cert)) => store.private_key_id_of(actor, cert)?,
            (None, None) => return Err(KmsError::NoIssuer),
        };
        let as_issuer = |source: KmsError| KmsError::Issuer {
            id: key_id.clone(),
            source: Box::new(source),
        };
        let material = store
            .issuer_material(actor, &key_id)
            .map_err(|e| as_issuer(e.into()))?;
        // Check the pair is a usable CA now, not at the first certificate.
        Issuer::new(&material.certificate, signing_key(&material.key))
            .map_err(|e| as_issuer(e.into()))?;
        let spec = match &profile.extensions {
            Some(text) => Some(
                ExtensionSpec::parse(text, profile.extensions_section.as_deref()).map_err(
                    |source| KmsError::ExtensionFile {
                        name: profile
                            .extensions_name
                            .clone()
                            .unwrap_or_else(|| "given".to_owned()),
                        source,
                    },
                )?,
            ),
            None => None,
        };
        let mut warnings = Vec::new();
        let urls = if spec.is_none() {
            builtin_urls(profile, defaults, &material, &mut warnings)?
        } else {
            ProfileUrls::default()
        };
        let algorithm: KeyAlgorithm = profile
            .algorithm
            .as_deref()
            .or(defaults.algorithm.as_deref())
            .map(str::parse)
            .transpose()?
            .unwrap_or_default();
        let days = profile.days.or(defaults.days).unwrap_or(DEFAULT_DAYS);
        // `certify` is a right to mint S/MIME certificates for users, never a way to a CA of
        // one's own: whatever `allow_non_compliant` says, anything more needs `certify_ca`.
        if !material.may_certify_ca {
            let mut reasons = spec
                .as_ref()
                .map(ExtensionSpec::beyond_end_entity)
                .unwrap_or_default();
            if days > MAX_VALIDITY_DAYS {
                reasons.push(format!(
                    "a validity of {days} days (at most {MAX_VALIDITY_DAYS})"
                ));
            }
            if !reasons.is_empty() {
                return Err(KmsError::EndEntityOnly {
                    id: key_id,
                    user: actor.to_string(),
                    reasons,
                });
            }
        }
        let ca = spec
            .as_ref()
            .and_then(|s| s.basic_constraints.as_ref())
            .is_some_and(|b| b.value.ca);
        let mut chain_der = vec![material.certificate.to_der()?];
        for c in &material.chain {
            chain_der.push(c.to_der()?);
        }
        Ok(Self {
            signing_key: signing_key(&material.key),
            issuer: material,
            spec,
            urls,
            days,
            algorithm,
            allow_non_compliant: profile.allow_non_compliant,
            ca,
            chain_der,
            warnings,
        })
    }

    /// Whether this minter makes CA certificates (audited as `certify_ca`).
    #[must_use]
    pub fn mints_ca(&self) -> bool {
        self.ca
    }

    #[must_use]
    pub fn issuer(&self) -> &IssuerMaterial {
        &self.issuer
    }

    /// The issuer's certificate then its chain: what goes after a leaf in a bundle.
    #[must_use]
    pub fn chain(&self) -> Vec<X509> {
        std::iter::once(self.issuer.certificate.clone())
            .chain(self.issuer.chain.iter().cloned())
            .collect()
    }

    /// Mints one certificate; refuses (unless allowed) one that Gmail would reject.
    pub fn mint(
        &self,
        subject: &SubjectName,
        key: KeyChoice,
        email: Option<&EmailAddress>,
    ) -> Result<Minted> {
        let issuer = Issuer::new(&self.issuer.certificate, self.signing_key.clone())?;
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
            return Err(KmsError::Refused(
                mailpki_issuance::IssuanceError::NonCompliant {
                    findings: report.rejections().cloned().collect(),
                },
            ));
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
pub fn store_minted(
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

/// What an issuer's stored key signs with, for the issuance engine: the key itself, or the
/// token that holds it.
pub(crate) fn signing_key(key: &IssuerKey) -> SigningKey {
    match key {
        IssuerKey::Stored(key) => SigningKey::Local(key.clone()),
        IssuerKey::Hsm(key) => SigningKey::External(std::sync::Arc::new(TokenKey(key.clone()))),
    }
}

/// A key in an HSM, signing for the issuance engine.
struct TokenKey(mailpki_hsm::HsmKey);

impl ExternalSigner for TokenKey {
    fn public_key(&self) -> &openssl::pkey::PKeyRef<openssl::pkey::Public> {
        self.0.public_key()
    }

    fn sign(
        &self,
        digest: openssl::hash::MessageDigest,
        data: &[u8],
    ) -> std::result::Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.sign(digest, data)?)
    }
}
