//! S3 errors: the `<Error><Code/><Message/>…</Error>` body (or, for `HEAD`, only the status)
//! turned into a [`ProviderError`] whose kind drives the engine's retries — `SlowDown` and 429
//! are throttling, 5xx are transient, `AccessDenied` and `SignatureDoesNotMatch` are
//! unauthorized — and whose message says what to do.

use std::time::Duration;

use stackwright_core::{ErrorKind, ProviderError};

/// An error response from an S3 service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    /// The HTTP status.
    pub status: u16,
    /// The S3 error code (`NoSuchBucket`), or a name derived from the status for bodiless
    /// responses.
    pub code: String,
    /// The service's message.
    pub message: String,
    /// The request id, for support.
    pub request_id: Option<String>,
    /// The `Retry-After` hint.
    pub retry_after: Option<Duration>,
}

impl S3Error {
    /// Parses an error response body; falls back to the status when the body is empty or not
    /// S3's error XML.
    pub fn parse(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let mut e = S3Error {
            status,
            code: status_code_name(status).to_owned(),
            message: String::new(),
            request_id: None,
            retry_after,
        };
        if let Ok(doc) = roxmltree::Document::parse(body) {
            let root = doc.root_element();
            let child =
                |name: &str| root.children().find(|n| n.has_tag_name(name)).and_then(|n| n.text()).map(str::to_owned);
            if root.has_tag_name("Error") {
                if let Some(code) = child("Code") {
                    e.code = code;
                }
                e.message = child("Message").unwrap_or_default();
                e.request_id = child("RequestId");
            }
        } else if !body.trim().is_empty() {
            e.message = body.trim().chars().take(300).collect();
        }
        e
    }
}

fn status_code_name(status: u16) -> &'static str {
    match status {
        301 => "PermanentRedirect",
        400 => "BadRequest",
        403 => "AccessDenied",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        412 => "PreconditionFailed",
        429 => "TooManyRequests",
        500 => "InternalError",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        _ => "HttpError",
    }
}

/// What a failed call was doing and against what, for the message.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The operation, e.g. `PutBucketCors`.
    pub operation: &'a str,
    /// `bucket` or `bucket/key`.
    pub target: &'a str,
    /// The endpoint.
    pub endpoint: &'a str,
    /// The access key id in use (not secret).
    pub access_key_id: &'a str,
    /// The service's name, from the profile.
    pub service: &'a str,
}

/// Turns an S3 error into a provider error with a kind the engine can act on and a message that
/// says what to do.
pub fn to_provider_error(e: &S3Error, cx: &Context<'_>) -> ProviderError {
    let detail = if e.message.is_empty() { e.code.clone() } else { format!("{}: {}", e.code, e.message) };
    let rid = e.request_id.as_deref().map(|r| format!(" (request id {r})")).unwrap_or_default();
    let base = format!("{} {} on {} failed with {} {detail}{rid}", cx.service, cx.operation, cx.target, e.status);
    let (kind, hint) = match (e.status, e.code.as_str()) {
        (_, "SlowDown") | (429, _) | (_, "TooManyRequests") | (_, "RequestLimitExceeded") => {
            (ErrorKind::Throttled, String::new())
        }
        (_, "SignatureDoesNotMatch") => (
            ErrorKind::Unauthorized,
            format!(
                "; the secret access key for access key `{}` is wrong for {} (check the storage provider's credentials or AWS_SECRET_ACCESS_KEY)",
                cx.access_key_id, cx.endpoint
            ),
        ),
        (_, "InvalidAccessKeyId") => (
            ErrorKind::Unauthorized,
            format!("; access key `{}` is not known to {}", cx.access_key_id, cx.endpoint),
        ),
        (_, "RequestTimeTooSkewed") => (
            ErrorKind::InvalidInput,
            "; this machine's clock is more than 15 minutes off; fix the clock and retry".to_owned(),
        ),
        (_, "AuthorizationHeaderMalformed") => (
            ErrorKind::InvalidInput,
            "; the signing region is probably wrong: set the region the service expects in the storage provider's configuration"
                .to_owned(),
        ),
        (_, "ExpiredToken") | (_, "InvalidToken") => {
            (ErrorKind::Unauthorized, "; the session token has expired or is invalid".to_owned())
        }
        (403, _) => (
            ErrorKind::Unauthorized,
            format!(
                "; access key `{}` is not allowed to do this, or the bucket belongs to another account",
                cx.access_key_id
            ),
        ),
        (_, "BucketNotEmpty") => (
            ErrorKind::Conflict,
            "; the bucket still holds objects: set `force_destroy: true` on the bucket and apply it, then delete again"
                .to_owned(),
        ),
        (_, "BucketAlreadyExists") => (
            ErrorKind::Conflict,
            "; bucket names are global and another account owns this one: choose another name".to_owned(),
        ),
        (_, "BucketAlreadyOwnedByYou") => (
            ErrorKind::Conflict,
            "; the bucket already exists in this account: import it or choose another name".to_owned(),
        ),
        (_, "OperationAborted") => (ErrorKind::Transient, String::new()),
        (_, "NoSuchBucket") | (_, "NoSuchKey") | (_, "NoSuchUpload") | (404, _) => (ErrorKind::NotFound, String::new()),
        (_, "NotImplemented") | (501, _) => (
            ErrorKind::InvalidInput,
            format!("; {} does not implement this; check the storage provider's service profile", cx.service),
        ),
        (_, "BadDigest") | (_, "XAmzContentSHA256Mismatch") | (_, "InvalidDigest") => (
            ErrorKind::Transient,
            "; the content was damaged in transit (the service's checksum did not match)".to_owned(),
        ),
        (_, "PermanentRedirect") | (301, _) => (
            ErrorKind::InvalidInput,
            "; the bucket is in another region or needs another endpoint or addressing style".to_owned(),
        ),
        (_, "InvalidBucketName") | (_, "InvalidLocationConstraint") | (_, "MalformedXML") | (_, "InvalidArgument")
        | (_, "InvalidRequest") | (_, "EntityTooLarge") | (_, "EntityTooSmall") | (_, "InvalidPart") => {
            (ErrorKind::InvalidInput, String::new())
        }
        (409, _) => (ErrorKind::Conflict, String::new()),
        (s, _) if s >= 500 => (ErrorKind::Transient, String::new()),
        _ => (ErrorKind::Other, String::new()),
    };
    let mut err = ProviderError::new(kind, format!("{base}{hint}"));
    err.retry_after = e.retry_after;
    err
}

/// A transport failure (connection refused or reset, timeout): transient.
pub fn transport(e: &reqwest::Error, cx: &Context<'_>) -> ProviderError {
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    ProviderError::transient(format!(
        "{} {} on {}: could not reach {} ({cause})",
        cx.service, cx.operation, cx.target, cx.endpoint
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            operation: "PutObject",
            target: "b/k",
            endpoint: "http://h",
            access_key_id: "AKID",
            service: "Ceph RGW / generic S3",
        }
    }

    #[test]
    fn error_bodies_are_parsed_and_classified() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message><RequestId>r1</RequestId></Error>";
        let e = S3Error::parse(403, body, None);
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.request_id.as_deref()),
            ("SignatureDoesNotMatch", "bad sig", Some("r1"))
        );
        let p = to_provider_error(&e, &cx());
        assert_eq!(p.kind, ErrorKind::Unauthorized);
        assert!(p.message.contains("secret access key") && p.message.contains("AKID"), "{}", p.message);

        let slow = to_provider_error(
            &S3Error::parse(503, "<Error><Code>SlowDown</Code></Error>", Some(Duration::from_secs(2))),
            &cx(),
        );
        assert_eq!((slow.kind, slow.retry_after), (ErrorKind::Throttled, Some(Duration::from_secs(2))));
        assert_eq!(to_provider_error(&S3Error::parse(500, "", None), &cx()).kind, ErrorKind::Transient);
        assert_eq!(to_provider_error(&S3Error::parse(404, "", None), &cx()).kind, ErrorKind::NotFound);
        let full = to_provider_error(&S3Error::parse(409, "<Error><Code>BucketNotEmpty</Code></Error>", None), &cx());
        assert!(full.kind == ErrorKind::Conflict && full.message.contains("force_destroy"), "{}", full.message);
    }
}
