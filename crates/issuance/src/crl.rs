//! Certificate revocation lists (RFC 5280 §5): a v2 CRL of an issuer's revoked certificates,
//! with its number, the issuer's key identifier, `thisUpdate`/`nextUpdate`, and each entry's
//! revocation date and reason code. OpenSSL signs it; the entries and extensions are encoded
//! here, as for certificates.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::x509::{X509Crl, X509CrlBuilder, X509Revoked};
use yasna::models::ObjectIdentifier;

use crate::encode::{extension, key_identifier};
use crate::error::{IssuanceError, Result};
use crate::issue::Issuer;
use crate::signer::SigningKey;

/// One revoked certificate.
#[derive(Clone, Debug)]
pub struct CrlEntry {
    /// Serial number in hex.
    pub serial_hex: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 `CRLReason` value; `None` leaves the entry without a reason code.
    pub reason_code: Option<i32>,
}

/// What one CRL says.
#[derive(Clone, Debug)]
pub struct CrlRequest<'a> {
    pub entries: &'a [CrlEntry],
    /// Monotonic per issuer.
    pub number: i64,
    /// Unix seconds.
    pub this_update: i64,
    /// Unix seconds.
    pub next_update: i64,
}

/// Signs a CRL for `issuer`'s revoked certificates.
pub fn sign_crl(issuer: &Issuer<'_>, request: &CrlRequest<'_>) -> Result<X509Crl> {
    let crypto = IssuanceError::crypto;
    let certificate = issuer.certificate();
    let mut builder = X509CrlBuilder::new().map_err(crypto("starting a CRL"))?;
    builder
        .set_issuer_name(certificate.subject_name())
        .map_err(crypto("naming the CRL's issuer"))?;
    let time = |t: i64| Asn1Time::from_unix(t).map_err(crypto("encoding a time"));
    let (this_update, next_update) = (time(request.this_update)?, time(request.next_update)?);
    builder
        .set_last_update(&this_update)
        .map_err(crypto("setting thisUpdate"))?;
    builder
        .set_next_update(&next_update)
        .map_err(crypto("setting nextUpdate"))?;
    for entry in request.entries {
        let der = revoked_der(entry)?;
        let revoked = X509Revoked::from_der(&der).map_err(crypto("encoding a CRL entry"))?;
        builder
            .add_revoked(revoked)
            .map_err(crypto("adding a CRL entry"))?;
    }
    // The issuer's key identifier, as its certificates' AKI says it (or derived, RFC 5280
    // §4.2.1.2 method 1, for an issuer certificate without one).
    let key_id = match certificate.subject_key_id() {
        Some(id) if !id.as_slice().is_empty() => id.as_slice().to_vec(),
        _ => {
            let spki = certificate
                .public_key()
                .and_then(|k| k.public_key_to_der())
                .map_err(crypto("reading the issuer key"))?;
            key_identifier(&spki)?
        }
    };
    let aki = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_tagged_implicit(yasna::Tag::context(0), |w| w.write_bytes(&key_id));
        });
    });
    builder
        .append_extension(extension("2.5.29.35", false, &aki)?)
        .map_err(crypto("adding the authority key identifier"))?;
    let number = yasna::construct_der(|w| w.write_i64(request.number));
    builder
        .append_extension(extension("2.5.29.20", false, &number)?)
        .map_err(crypto("adding the CRL number"))?;
    builder.sort().map_err(crypto("sorting the CRL"))?;
    builder
        .sign(&*issuer.key().builder_key()?, issuer.digest())
        .map_err(crypto("signing the CRL"))?;
    let built = builder.build().map_err(crypto("finishing the CRL"))?;
    if let SigningKey::Local(_) = issuer.key() {
        return Ok(built);
    }
    let der = built.to_der().map_err(crypto("encoding the CRL"))?;
    let signed = X509Crl::from_der(&issuer.key().replace_signature(der)?)
        .map_err(crypto("reading the signed CRL"))?;
    let public = certificate
        .public_key()
        .map_err(crypto("reading the issuer key"))?;
    if signed.verify(&public).unwrap_or(false) {
        Ok(signed)
    } else {
        Err(IssuanceError::ExternalSigner {
            reason: "its CRL signature does not verify with the issuer's public key".to_owned(),
        })
    }
}

/// `revokedCertificates` entry: serial, date, and the reason code extension.
fn revoked_der(entry: &CrlEntry) -> Result<Vec<u8>> {
    let serial = BigNum::from_hex_str(&entry.serial_hex)
        .map_err(|_| IssuanceError::BadCertificate {
            reason: format!("`{}` is not a hex serial number", entry.serial_hex),
        })?
        .to_vec();
    let date = der_time(entry.revoked_at)?;
    let reason_oid = ObjectIdentifier::from_slice(&[2, 5, 29, 21]);
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_bigint_bytes(&serial, true);
            w.next().write_der(&date);
            if let Some(code) = entry.reason_code {
                w.next().write_sequence(|w| {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&reason_oid);
                        w.next()
                            .write_bytes(&yasna::construct_der(|w| w.write_enum(i64::from(code))));
                    });
                });
            }
        });
    }))
}

/// RFC 5280 §5.1.2.6: UTCTime through 2049, GeneralizedTime after.
fn der_time(unix: i64) -> Result<Vec<u8>> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).map_err(|_| {
        IssuanceError::BadCertificate {
            reason: format!("{unix} is not a representable time"),
        }
    })?;
    let rest = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let (tag, text) = if (1950..2050).contains(&t.year()) {
        (0x17, format!("{:02}{rest}", t.year() % 100))
    } else {
        (0x18, format!("{:04}{rest}", t.year()))
    };
    let mut der = vec![tag, u8::try_from(text.len()).unwrap_or(0)];
    der.extend_from_slice(text.as_bytes());
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_switch_to_generalized_time_in_2050() {
        assert_eq!(der_time(0).unwrap()[2..], *b"700101000000Z");
        assert_eq!(der_time(0).unwrap()[0], 0x17);
        let in_2050 = der_time(2_524_608_000).unwrap();
        assert_eq!((in_2050[0], &in_2050[2..]), (0x18, &b"20500101000000Z"[..]));
    }
}
