//! What to do about an error: one line an administrator can act on, for the errors with an
//! obvious fix. The CLI prints it under the message; batch reports put it in each failed row.

use mailpki_gmail::GmailError;
use mailpki_kms::KmsError;
use mailpki_kms::api::ErrorCode;
use mailpki_store::{ObjectType, StoreError};

use crate::WorkflowError;

/// The hint for `error` itself (not its causes), looking inside a workflow's error at the
/// library error it carries.
#[must_use]
pub fn hint(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = error.downcast_ref::<WorkflowError>() {
        return e.passed_through().and_then(hint);
    }
    if let Some(e) = error.downcast_ref::<StoreError>() {
        return store(e);
    }
    if let Some(e) = error.downcast_ref::<KmsError>() {
        return match e {
            KmsError::Store(s) => store(s),
            _ => kms(e),
        };
    }
    error.downcast_ref::<GmailError>().and_then(gmail)
}

/// The first hint along `error`'s chain of causes.
#[must_use]
pub fn in_chain(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = hint(e) {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The fix for what a KMS server said.
fn kms(error: &KmsError) -> Option<String> {
    Some(match error {
        KmsError::Remote {
            code: ErrorCode::Unauthenticated,
            ..
        } => "check the token: MAILPKI_KMS_TOKEN, [kms] token_file or [kms] token_command \
             (an admin makes API tokens with `mailpki server token create USER`)"
            .to_owned(),
        KmsError::Remote {
            code: ErrorCode::PermissionDenied,
            ..
        } => "the object's owner can grant the right with `mailpki kms access-rights grant`"
            .to_owned(),
        KmsError::Remote {
            code: ErrorCode::NotFound,
            ..
        } => "`mailpki kms access-rights obtained` shows the objects shared with you".to_owned(),
        KmsError::Remote {
            code: ErrorCode::Unavailable,
            ..
        } => "the server's database is unavailable; nothing was changed: retry later".to_owned(),
        KmsError::Issuer { id, source } if is_certificate_for_key(source) => format!(
            "`{id}` is the CA's certificate: pass its private key (`mailpki kms attributes get -i \
             {id} -a PrivateKeyLink` shows its ID) or give the certificate with \
             --issuer-certificate-id {id}"
        ),
        KmsError::Unreachable { .. } => {
            "check [kms] url (or --kms-url, MAILPKI_KMS_URL), the network, and [kms] server_ca \
             for a private CA"
                .to_owned()
        }
        _ => return None,
    })
}

/// A certificate's ID where the issuer's private key was wanted (`-k <certificate ID>`).
fn is_certificate_for_key(error: &KmsError) -> bool {
    matches!(
        error,
        KmsError::Store(StoreError::WrongObjectType {
            expected: ObjectType::PrivateKey,
            actual: ObjectType::Certificate,
            ..
        })
    )
}

/// A short suggestion for the errors that have an obvious fix.
fn store(error: &StoreError) -> Option<String> {
    Some(match error {
        StoreError::NotFound { .. } | StoreError::Hidden { .. } => {
            "`mailpki kms certificates list` and `mailpki kms access-rights obtained` show the \
             objects you can see"
                .to_owned()
        }
        StoreError::AlreadyExists { .. } => {
            "pick another ID, or pass --replace to overwrite the object".to_owned()
        }
        StoreError::WrongPassword => {
            "give the password with -p, --password-file or MAILPKI_PKCS12_PASSWORD".to_owned()
        }
        StoreError::PasswordRequired { .. } => {
            "pass the password with -p or --password-file".to_owned()
        }
        StoreError::PermissionDenied {
            operation,
            uid,
            user,
            ..
        } => format!(
            "the owner can run `mailpki kms access-rights grant {user} -i {uid} {operation}`"
        ),
        StoreError::UnsupportedPkcs12 { .. } => {
            "re-export it with a modern profile: `openssl pkcs12 -legacy -in old.p12 -nodes | \
             openssl pkcs12 -export -out new.p12`"
                .to_owned()
        }
        StoreError::MalformedPkcs12 { .. } => {
            "is it a PEM or DER file? try -f pem or -f der".to_owned()
        }
        StoreError::MasterKeyMismatch | StoreError::MasterKeyMissing { .. } => {
            "the store was created with another master key: check --master-key-file, \
             MAILPKI_MASTER_KEY and MAILPKI_MASTER_PASSPHRASE"
                .to_owned()
        }
        StoreError::InUse { .. } => {
            "destroy the certificates issued by it first, or pass --force".to_owned()
        }
        StoreError::NotAStore { .. } => {
            "point --database (or [kms] database) at a mailpki store, or at a new file".to_owned()
        }
        _ => return None,
    })
}

/// The administrator's fix for the common Gmail errors.
fn gmail(error: &GmailError) -> Option<String> {
    use GmailError as G;
    Some(match error {
        G::Token { error, description, .. } if error == "unauthorized_client" => {
            let _ = description;
            "in the Admin console (Security > API controls > Domain-wide delegation), authorize the \
             service account's client ID for https://www.googleapis.com/auth/gmail.settings.basic \
             (and gmail.settings.sharing for aliases)"
                .to_owned()
        }
        G::Token { description, .. } if description.contains("Invalid email or User ID") => {
            "the user does not exist in the domain (check the address, and that it is a primary address)".to_owned()
        }
        G::Token { description, .. } if description.contains("Signature") => {
            "the key file's key was deleted or replaced: download a new key for the service account".to_owned()
        }
        G::Token { description, .. } if description.contains("short-lived") => {
            "this machine's clock is off: fix the time (NTP) and retry".to_owned()
        }
        G::Api { reason, .. } if reason == "failedPrecondition" => {
            "CSE may not be active for this user yet (it can take up to 24 hours after enabling it); retry later".to_owned()
        }
        G::Api { status: 400, reason, .. } if reason == "invalidArgument" => {
            "Gmail gives no reason: run `mailpki kms certificates lint` on the certificate to see which rule it breaks".to_owned()
        }
        G::Api { status: 404, .. } => "check the user and the ID (`google key-pairs list --user-id USER`)".to_owned(),
        G::Api { status: 409, .. } => "it exists already: nothing to do, or use `patch`".to_owned(),
        G::Api { reason, .. } if reason == "insufficientPermissions" => {
            "authorize the missing scope for the service account's client ID (domain-wide delegation)".to_owned()
        }
        G::Unreachable { .. } => {
            "check the API URL (--api-url, MAILPKI_GMAIL_API_URL, [google] api_url) and the network".to_owned()
        }
        G::KeyFile { .. } => "download the service account's JSON key from the Google Cloud console".to_owned(),
        _ => return None,
    })
}
