//! The one error funnel: every handler returns `Result<T, ApiError>`, and
//! [`ErrorCode`] maps to an HTTP status in exactly one place.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What went wrong, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    Gone,
    PayloadTooLarge,
    UnsupportedMediaType,
    Overloaded,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Gone => StatusCode::GONE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered as `{"error": "..."}` (plus `field` when one is to blame).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

/// Seconds a client should wait after a `503`.
pub const RETRY_AFTER_S: u32 = 1;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }
    /// A server fault. The detail is logged, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

impl From<playhead_protocols::ProtocolError> for ApiError {
    fn from(e: playhead_protocols::ProtocolError) -> ApiError {
        use playhead_protocols::ProtocolError as P;
        match &e {
            P::Invalid { field, .. } => ApiError {
                code: ErrorCode::BadRequest,
                message: e.to_string(),
                field: Some(field.clone()),
            },
            P::UnsupportedMediaType(_) => {
                ApiError::new(ErrorCode::UnsupportedMediaType, e.to_string())
            }
        }
    }
}

impl From<playhead_store::StoreError> for ApiError {
    fn from(e: playhead_store::StoreError) -> ApiError {
        match e {
            playhead_store::StoreError::BadCursor(c) => {
                ApiError::bad_request(format!("cursor: `{c}` is not a cursor this server issued"))
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        respond(self.code, axum::Json(body))
    }
}

/// An error answer in any protocol's body shape: the code's status, the
/// body, and `Retry-After` when the server sheds load. Every error form
/// (`{"error"}`, the pixel protocol's text, Adobe's `{"message"}`) goes
/// through here, so the status and overload rules live in one place.
pub fn respond(code: ErrorCode, body: impl IntoResponse) -> Response {
    let mut resp = (code.status(), body).into_response();
    if code == ErrorCode::Overloaded {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
    }
    resp
}
