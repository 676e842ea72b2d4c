//! The Vercel error envelope `{"error":{"code","message",...}}` and the helpers that build it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// An error answered in Vercel's shape; extra fields sit next to `code` and `message`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub extra: Map<String, Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into(), extra: Map::new(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// A body-validation failure, worded like the real API's schema validator.
    pub fn invalid(detail: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Invalid request: {detail}"))
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn body(&self) -> Value {
        let mut err = Map::new();
        err.insert("code".into(), Value::String(self.code.clone()));
        err.insert("message".into(), Value::String(self.message.clone()));
        for (k, v) in &self.extra {
            err.insert(k.clone(), v.clone());
        }
        json!({ "error": Value::Object(err) })
    }

    /// An error for an injected or synthetic status, with a code that matches the status class.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => ("bad_request", "Bad request"),
            403 => ("forbidden", "Not authorized"),
            404 => ("not_found", "Not found"),
            409 => ("conflict", "Conflict"),
            502 => ("bad_gateway", "Bad gateway"),
            503 => ("service_unavailable", "Service unavailable"),
            504 => ("gateway_timeout", "Gateway timeout"),
            _ => ("internal_server_error", "An unexpected internal error occurred"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Result alias for handlers.
pub(crate) type ApiResult<T> = Result<T, ApiError>;
