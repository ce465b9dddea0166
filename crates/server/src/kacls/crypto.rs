//! Opened keys and what is done with them: RSA signatures and decryptions as Gmail asks.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_store::excerpt;
use openssl::hash::MessageDigest;
use openssl::md::Md;
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
    pub(super) key: PKey<Private>,
    pub(super) spki_hash: String,
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
    key: &PKey<Private>,
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
    let max_salt = i32::try_from(key.size()).unwrap_or(i32::MAX) - md.size() as i32 - 2;
    if pss && !(0..=max_salt).contains(&salt) {
        return Err(KaclsError::bad(format!(
            "rsa_pss_salt_length {salt} does not fit this key and digest (0 to {max_salt})"
        )));
    }
    let mut ctx = PkeyCtx::new(key).map_err(failed)?;
    ctx.sign_init().map_err(failed)?;
    ctx.set_signature_md(md).map_err(failed)?;
    if pss {
        ctx.set_rsa_padding(Padding::PKCS1_PSS).map_err(failed)?;
        ctx.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::custom(salt))
            .map_err(failed)?;
    } else {
        ctx.set_rsa_padding(Padding::PKCS1).map_err(failed)?;
    }
    let mut signature = Vec::new();
    ctx.sign_to_vec(digest, &mut signature).map_err(failed)?;
    Ok(signature)
}

pub(super) fn decrypt(
    key: &PKey<Private>,
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
    let mut ctx = PkeyCtx::new(key).map_err(failed)?;
    ctx.decrypt_init().map_err(failed)?;
    ctx.set_rsa_padding(padding).map_err(failed)?;
    if let Some(md) = oaep_md {
        ctx.set_rsa_oaep_md(md).map_err(failed)?;
        ctx.set_rsa_mgf1_md(md).map_err(failed)?;
        if let Some(label) = label.filter(|l| !l.is_empty()) {
            ctx.set_rsa_oaep_label(label).map_err(failed)?;
        }
    }
    let mut plain = Zeroizing::new(Vec::new());
    ctx.decrypt_to_vec(ciphertext, &mut plain).map_err(failed)?;
    Ok(plain)
}
