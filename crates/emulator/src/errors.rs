//! Google's error replies: `{"error": {"code", "message", "status", "errors": [{"domain",
//! "reason", "message"}]}}` with the HTTP status Google uses for each.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error as Google reports it.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) status_text: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        status_text: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            status_text,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "invalidArgument",
            message,
        )
    }

    pub(crate) fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            "failedPrecondition",
            message,
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "notFound",
            "Requested entity was not found.",
        )
    }

    /// Google's answer to a path or verb no API method has (a wrong verb is not a 405).
    pub(crate) fn method_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "notFound",
            "Method not found.",
        )
    }

    pub(crate) fn already_exists(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "alreadyExists",
            message,
        )
    }

    pub(crate) fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "forbidden",
            message,
        )
    }

    pub(crate) fn insufficient_scopes() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        )
    }

    pub(crate) fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        )
    }

    pub(crate) fn rate_limited() -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "rateLimitExceeded",
            "User-rate limit exceeded. Retry after 1s.",
        );
        e.retry_after = Some(1);
        e
    }

    pub(crate) fn injected(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        match status.as_u16() {
            429 => Self::rate_limited(),
            _ => Self::new(
                status,
                "UNAVAILABLE",
                "backendError",
                "The service is currently unavailable.",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.status.as_u16(),
                "message": self.message,
                "status": self.status_text,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // Google's challenge; clients (google-auth among them) read it to refresh.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
                ),
            );
        }
        if let Some(secs) = self.retry_after
            && let Ok(value) = secs.to_string().parse()
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// An OAuth token endpoint error: `{"error", "error_description"}`.
pub(crate) fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}
