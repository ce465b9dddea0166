//! Opened keys and what is done with them: RSA signatures and decryptions as Gmail asks.

use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_store::excerpt;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::md::{Md, MdRef};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use zeroize::Zeroizing;

use super::error::KaclsError;

/// `SHA-256` of the key's SubjectPublicKeyInfo, base64, as the `spki_hash` claim carries it.
pub(super) fn spki_hash(key: &PKey<Private>) -> Result<String, KaclsError> {
    let der = key
        .public_key_to_der()
        .map_err(|_| KaclsError::internal("cannot encode the public key"))?;
    let digest = openssl::hash::hash(MessageDigest::sha256(), &der)
        .map_err(|_| KaclsError::internal("cannot hash the public key"))?;
    Ok(STANDARD.encode(digest))
}

/// A key taken out of its wrapping, with the hash authorizations name it by: computed once,
/// as encoding a public key costs OpenSSL 3 more than the signature it is checked for.
pub(crate) struct OpenedKey {
    key: PKey<Private>,
    pub(super) spki_hash: String,
    /// Contexts set up by earlier calls, each with what it was set up for: OpenSSL 3 looks the
    /// algorithms up again for every new context, a fiftieth of the RSA operation itself. They
    /// go with the key when it leaves the cache.
    ready: Mutex<Vec<(Setup, PkeyCtx<Private>)>>,
}

/// What a context was set up for: signing with a hash (and a PSS salt length), or
/// decrypting with a padding (and OAEP's hash and label).
#[derive(Clone, PartialEq, Eq)]
enum Setup {
    Sign { md: Nid, pss_salt: Option<i32> },
    Decrypt { oaep: Option<(Nid, Vec<u8>)> },
}

/// Contexts kept per key, at most: about one per request in flight on it.
const READY_CONTEXTS: usize = 16;

impl OpenedKey {
    pub(super) fn new(key: PKey<Private>) -> Result<Self, KaclsError> {
        Ok(Self {
            spki_hash: spki_hash(&key)?,
            key,
            ready: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a context set up as `setup` says, kept from an earlier call or made
    /// with `make`; it is kept for the next call when `f` succeeds.
    fn with_context<T>(
        &self,
        setup: Setup,
        make: impl FnOnce(&PKey<Private>) -> Result<PkeyCtx<Private>, ErrorStack>,
        f: impl FnOnce(&mut PkeyCtx<Private>) -> Result<T, ErrorStack>,
    ) -> Result<T, ErrorStack> {
        let lock = || {
            self.ready
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let kept = {
            let mut ready = lock();
            ready
                .iter()
                .position(|(s, _)| *s == setup)
                .map(|i| ready.swap_remove(i).1)
        };
        let mut ctx = match kept {
            Some(ctx) => ctx,
            None => make(&self.key)?,
        };
        let out = f(&mut ctx)?;
        let mut ready = lock();
        if ready.len() < READY_CONTEXTS {
            ready.push((setup, ctx));
        }
        Ok(out)
    }
}

pub(super) fn check_spki(opened: &OpenedKey, wanted: Option<&str>) -> Result<(), KaclsError> {
    match wanted {
        Some(wanted) if wanted != opened.spki_hash => Err(KaclsError::forbidden(
            "the wrapped key is not the key the authorization names (spki_hash)",
        )),
        _ => Ok(()),
    }
}

pub(super) fn sign(
    opened: &OpenedKey,
    algorithm: &str,
    digest: &[u8],
    salt: Option<i32>,
) -> Result<Vec<u8>, KaclsError> {
    let unsupported = || {
        KaclsError::bad(format!(
            "unsupported signing algorithm `{}` (SHA1withRSA, SHA256withRSA, SHA384withRSA, SHA512withRSA, their /PSS forms, RSASSA-PSS)",
            excerpt(algorithm, 64)
        ))
    };
    // Google's and other vendors' spellings differ in case (`SHA256withRSA`, `SHA256WithRSA`).
    let lower = algorithm.to_ascii_lowercase();
    let (name, pss) = match lower
        .strip_suffix("/pss")
        .or_else(|| lower.strip_suffix("andmgf1"))
    {
        Some(name) => (name, true),
        None => (lower.as_str(), lower == "rsassa-pss"),
    };
    let md = match name {
        "sha1withrsa" if !pss => Md::sha1(),
        "sha256withrsa" => Md::sha256(),
        "sha384withrsa" => Md::sha384(),
        "sha512withrsa" => Md::sha512(),
        // The hash is the one whose size the digest has.
        "rsassa-pss" => match digest.len() {
            48 => Md::sha384(),
            64 => Md::sha512(),
            _ => Md::sha256(),
        },
        _ => return Err(unsupported()),
    };
    if md.size() != digest.len() {
        return Err(KaclsError::bad(format!(
            "a {}-byte digest does not fit {}",
            digest.len(),
            excerpt(algorithm, 64)
        )));
    }
    let failed = |_| KaclsError::internal("signing failed");
    // RFC 8017: the salt fits beside the hash and two bytes in the key's size; OpenSSL would
    // fail later with an error that reads as ours.
    let salt = salt.unwrap_or(md.size() as i32);
    let max_salt = i32::try_from(opened.key.size()).unwrap_or(i32::MAX) - md.size() as i32 - 2;
    if pss && !(0..=max_salt).contains(&salt) {
        return Err(KaclsError::bad(format!(
            "rsa_pss_salt_length {salt} does not fit this key and digest (0 to {max_salt})"
        )));
    }
    let setup = Setup::Sign {
        md: md.type_(),
        pss_salt: pss.then_some(salt),
    };
    let make = |key: &PKey<Private>| {
        let mut ctx = PkeyCtx::new(key)?;
        ctx.sign_init()?;
        ctx.set_signature_md(md)?;
        if pss {
            ctx.set_rsa_padding(Padding::PKCS1_PSS)?;
            ctx.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(salt))?;
        } else {
            ctx.set_rsa_padding(Padding::PKCS1)?;
        }
        Ok(ctx)
    };
    opened
        .with_context(setup, make, |ctx| {
            let mut signature = Vec::new();
            ctx.sign_to_vec(digest, &mut signature)?;
            Ok(signature)
        })
        .map_err(failed)
}

pub(super) fn decrypt(
    opened: &OpenedKey,
    algorithm: &str,
    ciphertext: &[u8],
    label: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, KaclsError> {
    // Google writes `OAEPwithSHA-1andMGF1Padding`, Java and Cosmian `OAEPWithSHA-1AndMGF1Padding`.
    let (padding, oaep_md) = match algorithm.to_ascii_lowercase().as_str() {
        "rsa/ecb/pkcs1padding" | "rsaes-pkcs1-v1_5" => (Padding::PKCS1, None),
        "rsa/ecb/oaepwithsha-1andmgf1padding" | "rsaes-oaep" => {
            (Padding::PKCS1_OAEP, Some(Md::sha1()))
        }
        "rsa/ecb/oaepwithsha-256andmgf1padding" => (Padding::PKCS1_OAEP, Some(Md::sha256())),
        _ => {
            return Err(KaclsError::bad(format!(
                "unsupported decryption algorithm `{}` (RSA/ECB/PKCS1Padding, RSA/ECB/OAEPWithSHA-1AndMGF1Padding, RSA/ECB/OAEPWithSHA-256AndMGF1Padding)",
                excerpt(algorithm, 64)
            )));
        }
    };
    // One message for every way decryption can fail: a padding oracle must learn nothing.
    let failed = |_| KaclsError::bad("decryption failed");
    let label = label.filter(|l| !l.is_empty());
    let setup = Setup::Decrypt {
        oaep: oaep_md.map(|md: &MdRef| (md.type_(), label.unwrap_or_default().to_vec())),
    };
    let make = |key: &PKey<Private>| {
        let mut ctx = PkeyCtx::new(key)?;
        ctx.decrypt_init()?;
        ctx.set_rsa_padding(padding)?;
        if let Some(md) = oaep_md {
            ctx.set_rsa_oaep_md(md)?;
            ctx.set_rsa_mgf1_md(md)?;
            if let Some(label) = label {
                ctx.set_rsa_oaep_label(label)?;
            }
        }
        Ok(ctx)
    };
    opened
        .with_context(setup, make, |ctx| {
            let mut plain = Zeroizing::new(Vec::new());
            ctx.decrypt_to_vec(ciphertext, &mut plain)?;
            Ok(plain)
        })
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::rsa::Rsa;

    fn opened() -> OpenedKey {
        OpenedKey::new(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()).unwrap()
    }

    fn encrypt(key: &OpenedKey, md: Option<&MdRef>, label: Option<&[u8]>, dek: &[u8]) -> Vec<u8> {
        let mut ctx = PkeyCtx::new(&key.key).unwrap();
        ctx.encrypt_init().unwrap();
        match md {
            Some(md) => {
                ctx.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
                ctx.set_rsa_oaep_md(md).unwrap();
                ctx.set_rsa_mgf1_md(md).unwrap();
                if let Some(label) = label {
                    ctx.set_rsa_oaep_label(label).unwrap();
                }
            }
            None => ctx.set_rsa_padding(Padding::PKCS1).unwrap(),
        }
        let mut out = Vec::new();
        ctx.encrypt_to_vec(dek, &mut out).unwrap();
        out
    }

    /// Contexts are kept between calls: each call still gets one set up for exactly what it
    /// asks (hash, padding, salt, OAEP label), whatever ran on the key before it.
    #[test]
    fn kept_contexts_serve_only_calls_set_up_alike() {
        let key = opened();
        let verify = |digest: &[u8], signature: &[u8], md: MessageDigest, pss: Option<i32>| {
            let mut ctx = PkeyCtx::new(&key.key).unwrap();
            ctx.verify_init().unwrap();
            ctx.set_signature_md(Md::from_nid(md.type_()).unwrap())
                .unwrap();
            match pss {
                Some(salt) => {
                    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                    ctx.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(salt))
                        .unwrap();
                }
                None => ctx.set_rsa_padding(Padding::PKCS1).unwrap(),
            }
            ctx.verify(digest, signature).unwrap_or(false)
        };
        let d256 = openssl::sha::sha256(b"m");
        let d384 = openssl::sha::sha384(b"m");
        for _ in 0..3 {
            let s = sign(&key, "SHA256withRSA", &d256, None).unwrap();
            assert!(verify(&d256, &s, MessageDigest::sha256(), None));
            let s = sign(&key, "SHA256withRSA/PSS", &d256, Some(20)).unwrap();
            assert!(verify(&d256, &s, MessageDigest::sha256(), Some(20)));
            assert!(!verify(&d256, &s, MessageDigest::sha256(), None));
            let s = sign(&key, "SHA256withRSA/PSS", &d256, None).unwrap();
            assert!(verify(&d256, &s, MessageDigest::sha256(), Some(32)));
            let s = sign(&key, "SHA384withRSA", &d384, None).unwrap();
            assert!(verify(&d384, &s, MessageDigest::sha384(), None));
        }
        let dek = [7u8; 32];
        let oaep = "RSA/ECB/OAEPWithSHA-256AndMGF1Padding";
        for _ in 0..3 {
            let c = encrypt(&key, None, None, &dek);
            assert_eq!(
                *decrypt(&key, "RSA/ECB/PKCS1Padding", &c, None).unwrap(),
                dek
            );
            let c = encrypt(&key, Some(Md::sha256()), Some(b"a"), &dek);
            assert_eq!(*decrypt(&key, oaep, &c, Some(b"a")).unwrap(), dek);
            assert!(
                decrypt(&key, oaep, &c, Some(b"b")).is_err(),
                "another label"
            );
            assert!(decrypt(&key, oaep, &c, None).is_err(), "no label");
            let c = encrypt(&key, Some(Md::sha256()), None, &dek);
            assert_eq!(*decrypt(&key, oaep, &c, None).unwrap(), dek);
            assert!(decrypt(&key, "RSA/ECB/OAEPWithSHA-1AndMGF1Padding", &c, None).is_err());
        }
        let kept = key.ready.lock().unwrap();
        assert!(kept.len() <= READY_CONTEXTS);
        assert_eq!(kept.len(), 7, "one kept per set-up that succeeded");
    }
}
