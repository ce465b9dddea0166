//! What signs certificates, CRLs and OCSP answers: a key in memory, or a key held elsewhere (an
//! HSM) that signs on request. OpenSSL's builders sign only with keys they hold, so for a key
//! held elsewhere the builder signs with a stand-in key of the same type (the signature
//! algorithm, and so the to-be-signed bytes, are the same), and the signature is then replaced
//! with the real key's over those bytes and checked against the real public key.

use std::sync::{Arc, OnceLock};

use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use openssl::sign::Signer;

use crate::error::{IssuanceError, Result};
use crate::issue::{KeyAlgorithm, signing_digest};

/// A private key this process does not hold, which signs on request.
pub trait ExternalSigner: Send + Sync {
    /// Its public half.
    fn public_key(&self) -> &PKeyRef<Public>;

    /// Signs `data` hashed with `digest`; the value as X.509 carries it (PKCS#1 v1.5 for RSA,
    /// a DER `ECDSA-Sig-Value` for EC).
    fn sign(
        &self,
        digest: MessageDigest,
        data: &[u8],
    ) -> std::result::Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A key that signs for an issuer.
#[derive(Clone)]
pub enum SigningKey {
    Local(PKey<Private>),
    External(Arc<dyn ExternalSigner>),
}

impl From<&PKeyRef<Private>> for SigningKey {
    fn from(key: &PKeyRef<Private>) -> Self {
        Self::Local(key.to_owned())
    }
}

impl From<&PKey<Private>> for SigningKey {
    fn from(key: &PKey<Private>) -> Self {
        Self::Local(key.clone())
    }
}

impl From<PKey<Private>> for SigningKey {
    fn from(key: PKey<Private>) -> Self {
        Self::Local(key)
    }
}

impl SigningKey {
    pub(crate) fn id(&self) -> Id {
        match self {
            Self::Local(k) => k.id(),
            Self::External(s) => s.public_key().id(),
        }
    }

    pub(crate) fn bits(&self) -> u32 {
        match self {
            Self::Local(k) => k.bits(),
            Self::External(s) => s.public_key().bits(),
        }
    }

    pub(crate) fn public_eq<T: openssl::pkey::HasPublic>(&self, other: &PKeyRef<T>) -> bool {
        match self {
            Self::Local(k) => k.public_eq(other),
            Self::External(s) => s.public_key().public_eq(other),
        }
    }

    /// The digest this key signs with (SHA-256, or SHA-384/512 for the larger curves).
    pub(crate) fn digest(&self) -> MessageDigest {
        match self {
            Self::Local(k) => signing_digest(k),
            Self::External(s) => signing_digest(s.public_key()),
        }
    }

    /// A signature over `data`, as X.509 and OCSP carry it.
    pub(crate) fn sign(&self, digest: MessageDigest, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            Self::Local(key) => {
                let crypto = IssuanceError::crypto("signing");
                let mut signer = Signer::new(digest, key).map_err(crypto)?;
                signer
                    .update(data)
                    .map_err(IssuanceError::crypto("signing"))?;
                signer
                    .sign_to_vec()
                    .map_err(IssuanceError::crypto("signing"))
            }
            Self::External(signer) => {
                signer
                    .sign(digest, data)
                    .map_err(|e| IssuanceError::ExternalSigner {
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// The key OpenSSL's builders sign with: this key, or a stand-in of the same type whose
    /// signature [`SigningKey::replace_signature`] then swaps for the real one.
    pub(crate) fn builder_key(&self) -> Result<PKey<Private>> {
        match self {
            Self::Local(key) => Ok(key.clone()),
            Self::External(_) => stand_in(self.id()),
        }
    }

    /// For a key held elsewhere, `signed` (a certificate or a CRL, DER: to-be-signed,
    /// algorithm, signature) re-signed by the real key; for a key in memory, `signed` as is.
    pub(crate) fn replace_signature(&self, signed: Vec<u8>) -> Result<Vec<u8>> {
        if let Self::Local(_) = self {
            return Ok(signed);
        }
        let bad = || IssuanceError::BadCertificate {
            reason: "the signed structure cannot be read back".to_owned(),
        };
        let (tbs, algorithm) = yasna::parse_der(&signed, |r| {
            r.read_sequence(|r| {
                let tbs = r.next().read_der()?;
                let algorithm = r.next().read_der()?;
                let _ = r.next().read_bitvec_bytes()?;
                Ok((tbs, algorithm))
            })
        })
        .map_err(|_| bad())?;
        let signature = self.sign(self.digest(), &tbs)?;
        Ok(yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_der(&tbs);
                w.next().write_der(&algorithm);
                w.next().write_bitvec_bytes(&signature, signature.len() * 8);
            });
        }))
    }

    /// Checks a signature this key made over `data`, so that a token signing with the wrong
    /// key (or failing silently) is caught before anything is handed out.
    pub(crate) fn check(&self, digest: MessageDigest, data: &[u8], signature: &[u8]) -> Result<()> {
        let Self::External(signer) = self else {
            return Ok(());
        };
        let verified = openssl::sign::Verifier::new(digest, signer.public_key())
            .and_then(|mut v| {
                v.update(data)?;
                v.verify(signature)
            })
            .unwrap_or(false);
        if verified {
            Ok(())
        } else {
            Err(IssuanceError::ExternalSigner {
                reason: "its signature does not verify with the issuer's public key".to_owned(),
            })
        }
    }
}

/// One stand-in key per type for the process: small (its signature is thrown away), made once.
fn stand_in(id: Id) -> Result<PKey<Private>> {
    static RSA: OnceLock<PKey<Private>> = OnceLock::new();
    static EC: OnceLock<PKey<Private>> = OnceLock::new();
    let (cell, algorithm) = match id {
        Id::RSA => (&RSA, KeyAlgorithm::Rsa(1024)),
        Id::EC => (&EC, KeyAlgorithm::P256),
        _ => {
            return Err(IssuanceError::ExternalSigner {
                reason: "only RSA and EC keys sign through a token".to_owned(),
            });
        }
    };
    if let Some(key) = cell.get() {
        return Ok(key.clone());
    }
    let key = algorithm.generate()?;
    Ok(cell.get_or_init(|| key).clone())
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(_) => f.write_str("Local([REDACTED])"),
            Self::External(_) => f.write_str("External"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signer "elsewhere" that is a key in memory: what an HSM does, minus the HSM.
    struct Elsewhere(PKey<Private>, PKey<Public>);

    impl ExternalSigner for Elsewhere {
        fn public_key(&self) -> &PKeyRef<Public> {
            &self.1
        }
        fn sign(
            &self,
            digest: MessageDigest,
            data: &[u8],
        ) -> std::result::Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
            Ok(SigningKey::Local(self.0.clone()).sign(digest, data)?)
        }
    }

    pub(crate) fn elsewhere(key: &PKey<Private>) -> SigningKey {
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        SigningKey::External(Arc::new(Elsewhere(key.clone(), public)))
    }

    #[test]
    fn a_replaced_signature_verifies_with_the_real_key() {
        for algorithm in [KeyAlgorithm::Rsa(2048), KeyAlgorithm::P384] {
            let key = algorithm.generate().unwrap();
            let external = elsewhere(&key);
            let mut b = openssl::x509::X509Builder::new().unwrap();
            b.set_pubkey(&key).unwrap();
            let now = openssl::asn1::Asn1Time::days_from_now(0).unwrap();
            b.set_not_before(&now).unwrap();
            b.set_not_after(&now).unwrap();
            b.sign(&external.builder_key().unwrap(), external.digest())
                .unwrap();
            let der = external
                .replace_signature(b.build().to_der().unwrap())
                .unwrap();
            let cert = openssl::x509::X509::from_der(&der).unwrap();
            assert!(cert.verify(&key).unwrap(), "{algorithm}");
        }
    }
}
