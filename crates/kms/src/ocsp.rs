//! OCSP answers (RFC 6960) from a store, for the publication listener: the request's
//! certificates looked up among those the issuer issued (good, revoked with date and reason,
//! unknown), signed by the issuer's own key. A request for an issuer the actor cannot sign for
//! is `unauthorized`; one that does not parse is `malformedRequest`.

use mailpki_issuance::Issuer;
use mailpki_issuance::ocsp::{self, CertStatus};
use mailpki_store::{Actor, LinkType, ObjectFilter, ObjectType, Operation, Store};

/// The DER OCSP response to a DER request.
pub fn answer(store: &Store, actor: &Actor, request: &[u8]) -> Vec<u8> {
    let Some(request) = ocsp::parse_request(request) else {
        return ocsp::error_response(1);
    };
    match answer_parsed(store, actor, &request) {
        Ok(Some(response)) => response,
        // No issuer of ours: RFC 6960's "unauthorized".
        Ok(None) => ocsp::error_response(6),
        Err(e) => {
            tracing::warn!(error = %e, "cannot answer an OCSP request");
            ocsp::error_response(2)
        }
    }
}

fn answer_parsed(
    store: &Store,
    actor: &Actor,
    request: &ocsp::OcspRequest,
) -> Result<Option<Vec<u8>>, Box<dyn std::error::Error>> {
    let filter = ObjectFilter {
        object_type: Some(ObjectType::Certificate),
        ca_only: true,
        ..ObjectFilter::default()
    };
    for ca in store.list(actor, &filter)? {
        let Some(key) = ca.links.get(&LinkType::PrivateKeyLink) else {
            continue;
        };
        // Matched on the certificate; only the issuer asked about has its key unsealed.
        let Ok(certificate) = store.certificate(actor, &ca.unique_identifier, Operation::Get)
        else {
            continue;
        };
        if !request
            .ids
            .iter()
            .all(|id| ocsp::names_issuer(id, &certificate))
        {
            continue;
        }
        let Ok(material) = store.issuer_material(actor, key) else {
            continue;
        };
        let issuer = Issuer::new(&material.certificate, &material.key)?;
        let issued = store.issued_by(actor, &ca.unique_identifier)?;
        let answers: Vec<(&ocsp::CertId, CertStatus)> = request
            .ids
            .iter()
            .map(|id| {
                let status = match issued.get(&id.serial_hex) {
                    Some(s) => match s.revoked_at {
                        Some(at) => CertStatus::Revoked {
                            at,
                            reason: s.reason.map(mailpki_store::RevocationReason::code),
                        },
                        None => CertStatus::Good,
                    },
                    None => CertStatus::Unknown,
                };
                (id, status)
            })
            .collect();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let response = ocsp::sign_response(
            &issuer,
            &answers,
            request.nonce.as_deref(),
            now,
            now + 86_400,
        )?;
        return Ok(Some(response));
    }
    Ok(None)
}
