//! Store errors.

/// Anything that went wrong in a store. Never shown to clients as is: the
/// server logs it and answers a bare 5xx.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data could not be decoded: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("bad cursor `{0}`")]
    BadCursor(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}
