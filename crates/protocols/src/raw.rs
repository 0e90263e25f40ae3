//! The raw request a decoder reads, and the error it answers with.

use playhead_model::Millis;

/// One HTTP request as a decoder sees it.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: &'a str,
    /// `Content-Type` without parameters, lowercased (`application/json`).
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    /// Server receive time.
    pub received_at: Millis,
}

/// Why a request was refused. The message names the bad field; it is sent
/// to the client as is (4xx only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Malformed or invalid input: `400`.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The body's media type is not one the route accepts: `415`.
    #[error("unsupported content type `{0}`")]
    UnsupportedMediaType(String),
}

impl ProtocolError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ProtocolError {
        ProtocolError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The offending field, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ProtocolError::Invalid { field, .. } => Some(field),
            ProtocolError::UnsupportedMediaType(_) => None,
        }
    }
}
