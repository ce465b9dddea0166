//! A client of the CSE key service, speaking its protocol as Gmail does (`kacls status`,
//! `kacls selftest`) and mailpki's own `check` (what `google key-pairs create --verify-kacls`
//! runs before an upload). The wire types are the server's own (`kacls_wire`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_kms::api::KACLS_CHECK_PREFIX;
use mailpki_server::kacls_wire::{
    CheckRequest, DecryptReply, DecryptRequest, SignReply, SignRequest,
};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Padding;
use openssl::x509::X509;
use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One call to the key service; its structured error (`code`, `message`) becomes ours.
pub(crate) fn call(
    url: &str,
    body: Option<&impl serde::Serialize>,
    bearer: Option<&str>,
) -> Result<Value> {
    let agent = agent();
    let sent = match body {
        Some(body) => {
            let mut request = agent.post(url);
            if let Some(token) = bearer {
                request = request.header("authorization", &format!("Bearer {token}"));
            }
            request.send_json(body)
        }
        None => agent.get(url).call(),
    };
    let mut response = sent.with_context(|| format!("cannot reach the key service at {url}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        let message = value["message"]
            .as_str()
            .or_else(|| value["error"]["message"].as_str())
            .unwrap_or("no message");
        bail!("the key service answered {status}: {message}");
    }
    Ok(value)
}

/// The reply as the wire type `T`, and its base64 field `field` of it decoded.
fn decode<T: serde::de::DeserializeOwned>(
    reply: Value,
    field: &str,
    pick: impl FnOnce(&T) -> &str,
) -> Result<Vec<u8>> {
    let reply: T = serde_json::from_value(reply)
        .with_context(|| format!("the key service's answer has no `{field}`"))?;
    STANDARD
        .decode(pick(&reply))
        .with_context(|| format!("`{field}` is not base64"))
}

/// Checks a PKCS#1 v1.5 SHA-256 signature over `message`.
fn verify(public: &PKey<Public>, message: &[u8], signature: &[u8]) -> Result<bool> {
    let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), public)?;
    verifier.set_rsa_padding(Padding::PKCS1)?;
    verifier.update(message)?;
    Ok(verifier.verify(signature).unwrap_or(false))
}

/// Signs a fresh digest through the service and checks it with `certificate`, then has it
/// decrypt a fresh key encrypted to `certificate`: Gmail's two calls. Returns whether each
/// worked.
pub(crate) fn round_trip(
    url: &str,
    certificate: &X509,
    wrapped: &str,
    authentication: &str,
    signer_authorization: &str,
    decrypter_authorization: &str,
) -> Result<(bool, bool)> {
    let public = certificate.public_key()?;
    // Sign a fresh digest as Gmail does, and check it with the certificate.
    let mut message = [0u8; 32];
    openssl::rand::rand_bytes(&mut message)?;
    let digest = openssl::sha::sha256(&message);
    let signed = call(
        &format!("{url}/privatekeysign"),
        Some(&SignRequest {
            authentication: authentication.to_owned(),
            authorization: signer_authorization.to_owned(),
            algorithm: "SHA256withRSA".to_owned(),
            digest: STANDARD.encode(digest),
            rsa_pss_salt_length: None,
            reason: "mailpki kacls selftest".to_owned(),
            wrapped_private_key: wrapped.to_owned(),
        }),
        None,
    )
    .context("privatekeysign failed")?;
    let signature = decode(signed, "signature", |r: &SignReply| &r.signature)?;
    let signature_ok = verify(&public, &message, &signature)?;

    // Encrypt a fresh key to the certificate, and have the service decrypt it.
    let mut dek = [0u8; 32];
    openssl::rand::rand_bytes(&mut dek)?;
    let rsa = public.rsa().context("the certificate's key is not RSA")?;
    let mut encrypted = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(&dek, &mut encrypted, Padding::PKCS1)?;
    encrypted.truncate(n);
    let decrypted = call(
        &format!("{url}/privatekeydecrypt"),
        Some(&DecryptRequest {
            authentication: authentication.to_owned(),
            authorization: decrypter_authorization.to_owned(),
            algorithm: "RSA/ECB/PKCS1Padding".to_owned(),
            encrypted_data_encryption_key: STANDARD.encode(&encrypted),
            rsa_oaep_label: None,
            reason: "mailpki kacls selftest".to_owned(),
            wrapped_private_key: wrapped.to_owned(),
            spki_hash: None,
            spki_hash_algorithm: None,
        }),
        None,
    )
    .context("privatekeydecrypt failed")?;
    let dek_back = decode(decrypted, "data_encryption_key", |r: &DecryptReply| {
        &r.data_encryption_key
    })?;
    let decrypt_ok = dek_back == dek;
    Ok((signature_ok, decrypt_ok))
}

/// Has the key service at `kacls_uri` sign with `wrapped` (the mailpki `check` endpoint, with
/// the KMS token) and checks the signature against `certificate`: proof that Gmail's calls
/// will find a key service that opens this key pair.
pub(crate) fn verify_key_pair(
    token: &str,
    kacls_uri: &str,
    wrapped: &str,
    certificate: &X509,
) -> Result<()> {
    let mut nonce = [0u8; 32];
    openssl::rand::rand_bytes(&mut nonce)?;
    let reply = call(
        &format!("{}/check", kacls_uri.trim_end_matches('/')),
        Some(&CheckRequest {
            wrapped_private_key: wrapped.to_owned(),
            nonce: STANDARD.encode(nonce),
        }),
        Some(token),
    )
    .context("the key service could not use the wrapped key; nothing was uploaded")?;
    let mut message = KACLS_CHECK_PREFIX.to_vec();
    message.extend_from_slice(&nonce);
    if !verify(
        &certificate.public_key()?,
        &message,
        &decode(reply, "signature", |r: &SignReply| &r.signature)?,
    )? {
        bail!(
            "the key service signed with a key that does not match the certificate; nothing was uploaded"
        );
    }
    Ok(())
}
