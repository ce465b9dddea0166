//! Refusals in Google's structured error reply, the JSON extractor that answers that way,
//! and the field checks that refuse.

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::error::ApiError;
use crate::routes::Body;

/// A failure as Google's structured error reply.
#[derive(Debug)]
pub(crate) struct KaclsError {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl KaclsError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(super) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(super) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub(super) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<ApiError> for KaclsError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

impl IntoResponse for KaclsError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.status.as_u16(), "message": self.message, "details": ""});
        (self.status, Json(body)).into_response()
    }
}

/// A JSON body whose rejections answer in Google's error format.
pub(crate) struct KaclsJson<T>(pub(super) T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for KaclsJson<T> {
    type Rejection = KaclsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, KaclsError> {
        let Body(value) = Body::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

pub(super) fn check_len(field: &str, value: &str, max: usize) -> Result<(), KaclsError> {
    if value.len() > max {
        return Err(KaclsError::bad(format!(
            "`{field}` is larger than {max} bytes"
        )));
    }
    Ok(())
}

pub(super) fn decode(field: &str, value: &str) -> Result<Vec<u8>, KaclsError> {
    STANDARD
        .decode(value.trim())
        .map_err(|_| KaclsError::bad(format!("`{field}` is not base64")))
}
