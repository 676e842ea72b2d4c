//! Provider errors carry a kind that drives the engine's retry decision and a message that is
//! shown to the user against the resource.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of failure a provider call hit; decides whether the engine retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A temporary failure (5xx, connection reset, serialization failure): retried.
    Transient,
    /// The service asked us to slow down (429): retried after its hint.
    Throttled,
    /// The object does not exist.
    NotFound,
    /// The object already exists or is in a conflicting state.
    Conflict,
    /// The request was invalid; fix the program or its configuration.
    InvalidInput,
    /// The credentials were refused or lack a permission.
    Unauthorized,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Whether the engine retries a call that failed with this kind.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Transient | ErrorKind::Throttled)
    }

    /// A short lowercase name, as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Throttled => "throttled",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Other => "error",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error returned by a provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{kind}: {message}")]
pub struct ProviderError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// The provider's message, meant for the user.
    pub message: String,
    /// How long the service asked us to wait before trying again, if it said.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError { kind, message: message.into(), retry_after: None }
    }
    /// A temporary failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    /// The service throttled us; `retry_after` is its hint, if any.
    pub fn throttled(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ProviderError { retry_after, ..Self::new(ErrorKind::Throttled, message) }
    }
    /// The object does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// The object already exists or conflicts.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// The request was invalid.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// The credentials were refused.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }
    /// Any other failure.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }
    /// Sets the retry-after hint.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}
