//! How failures leave the server: a status and `{"error": {"code", "message"}}`. User errors
//! carry the store's own message (it never holds secrets); internal ones are logged here and
//! answered with a generic message. A database that went away is 503, which clients may retry:
//! every write is one transaction, so nothing was half-done.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mailpki_kms::KmsError;
use mailpki_kms::api::{ErrorBody, ErrorCode, ErrorReply};
use mailpki_store::StoreError;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    /// `None` for the key service's refusals, which answer in Google's format and are only
    /// audited here.
    pub(crate) code: Option<ErrorCode>,
    pub(crate) message: String,
    /// A refusal answered as "not found" (the caller holds no right on the object): audited as
    /// a denial all the same.
    pub(crate) denied: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Some(code),
            message: message.into(),
            denied: false,
        }
    }

    /// A key service refusal, for the audit log.
    pub(crate) fn key_service(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: None,
            message: message.into(),
            denied: false,
        }
    }

    pub(crate) fn too_many_failures() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyFailures,
            "too many failed authentications from this address; try again in a minute",
        )
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            message,
        )
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::PermissionDenied, message)
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; the server log has the details",
        )
    }

    /// The audit log's word for this failure.
    pub(crate) fn outcome(&self) -> &'static str {
        match self.status {
            StatusCode::FORBIDDEN => "denied",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            _ => "failed",
        }
    }
}

fn from_store(e: &StoreError) -> ApiError {
    use StatusCode as S;
    let (status, code) = match e {
        StoreError::NotFound { .. } => (S::NOT_FOUND, ErrorCode::NotFound),
        StoreError::Hidden { .. } => {
            let mut e = ApiError::new(S::NOT_FOUND, ErrorCode::NotFound, e.to_string());
            e.denied = true;
            return e;
        }
        StoreError::AlreadyExists { .. } => (S::CONFLICT, ErrorCode::AlreadyExists),
        StoreError::PermissionDenied { .. } | StoreError::NotOwner { .. } => {
            (S::FORBIDDEN, ErrorCode::PermissionDenied)
        }
        StoreError::InUse { .. } => (S::CONFLICT, ErrorCode::InUse),
        StoreError::Destroyed { .. }
        | StoreError::NotActive { .. }
        | StoreError::StillListed { .. }
        | StoreError::InHsm { .. } => (S::CONFLICT, ErrorCode::FailedPrecondition),
        StoreError::Unavailable { .. } => {
            tracing::error!(error = %e, "database unavailable");
            return ApiError::new(
                S::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the database is unavailable; nothing was changed, retry later",
            );
        }
        StoreError::Hsm(h) if h.is_unavailable() => {
            tracing::error!(error = %e, "HSM unavailable");
            return ApiError::new(
                S::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the HSM is unavailable; nothing was changed, retry later",
            );
        }
        e if e.is_user_error() => (S::BAD_REQUEST, ErrorCode::InvalidRequest),
        e => {
            tracing::error!(error = %e, source = ?std::error::Error::source(e), "store failure");
            return ApiError::internal();
        }
    };
    ApiError::new(status, code, e.to_string())
}

/// The message with its causes, as the CLI prints it (`a: b: c`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

impl From<KmsError> for ApiError {
    fn from(e: KmsError) -> Self {
        match &e {
            KmsError::Store(s) => from_store(s),
            KmsError::Issuer { source, .. } => match source.as_ref() {
                // "cannot use X as the issuer: user may not certify X" stays a 403.
                KmsError::Store(s) => {
                    let mut mapped = from_store(s);
                    if mapped.status != StatusCode::INTERNAL_SERVER_ERROR
                        && mapped.status != StatusCode::SERVICE_UNAVAILABLE
                    {
                        mapped.message = chain(&e);
                    }
                    mapped
                }
                _ if e.is_user_error() => ApiError::bad_request(chain(&e)),
                _ => {
                    tracing::error!(error = %chain(&e), "issuer failure");
                    ApiError::internal()
                }
            },
            KmsError::EndEntityOnly { .. } => ApiError::forbidden(e.to_string()),
            KmsError::Refused(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::NonCompliant,
                chain(&e),
            ),
            _ if e.is_user_error() => ApiError::bad_request(chain(&e)),
            _ => {
                tracing::error!(error = %chain(&e), "request failed");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorReply {
                error: ErrorBody {
                    code: self.code.unwrap_or(ErrorCode::Internal),
                    message: self.message,
                },
            }),
        )
            .into_response()
    }
}
