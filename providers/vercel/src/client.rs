//! The HTTP client: bearer authentication, team scoping on every call, JSON in and out, error
//! mapping to [`ProviderError`] kinds, pagination, and debug logging with secrets redacted.
//!
//! Error kinds follow the status: 429 is *throttled* (with the wait taken from `Retry-After`
//! and the body's reset time), 5xx and transport failures (connection refused or reset,
//! timeouts, truncated bodies) are *transient*, 404 is *not found*, 409 is *conflict*, 401 and
//! 403 are *unauthorized*, and other 4xx are *invalid input*. The client never retries by
//! itself: the engine retries transient and throttled errors with backoff.
//!
//! Every request and response is logged with `tracing::debug!` under the target
//! `stackwright_vercel::http`. Before logging, the token and the secret values the caller names
//! are replaced by `[redacted]`, and so is every JSON field called `value`, `token`, `password`
//! or `secret` (environment variable values in lists, for instance). File uploads are logged by
//! digest and size only.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::Value;
use stackwright_core::ProviderError;

use crate::config::{TeamScope, VercelConfig};

/// The tracing target of request and response logs.
pub const LOG_TARGET: &str = "stackwright_vercel::http";

/// Shown in logs in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// JSON fields whose values are never logged.
const SECRET_KEYS: &[&str] = &["value", "token", "password", "secret", "authorization"];

/// The most characters of a body that a log line shows.
const LOG_BODY_LIMIT: usize = 4096;

/// Page size for lists (the API's maximum).
const PAGE_LIMIT: &str = "100";

/// Added to a rate-limit reset time, so the retry lands after the window turned.
const RESET_MARGIN: Duration = Duration::from_millis(25);

/// What the API answered when a call did not succeed.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    /// `METHOD /path`, for messages.
    pub what: String,
    /// The HTTP status.
    pub status: u16,
    /// `error.code` from the body (empty if there was none).
    pub code: String,
    /// `error.message` from the body, redacted.
    pub message: String,
    /// The whole `error` object, for fields such as `missing`.
    pub error: Value,
    /// How long the API asked us to wait (429 only).
    pub retry_after: Option<Duration>,
}

/// A failed call: an error answer, or no answer at all.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The API answered with an error status.
    Api(Box<ApiError>),
    /// The request did not get an answer (or an unreadable one); already mapped.
    Transport(ProviderError),
}

impl Failure {
    /// The HTTP status, if the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Api(e) => Some(e.status),
            Failure::Transport(_) => None,
        }
    }

    /// The API's `error.code`, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Failure::Api(e) => Some(e.code.as_str()),
            Failure::Transport(_) => None,
        }
    }

    /// Whether the API answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the call may have taken effect without us hearing about it (a 5xx, a timeout,
    /// a reset connection), so a retry must look before it creates again.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Failure::Api(e) => e.status >= 500,
            Failure::Transport(_) => true,
        }
    }

    /// The error as the engine sees it, with `context` (e.g. `project "web"`) in front.
    pub fn into_error(self, context: &str) -> ProviderError {
        let mut e = ProviderError::from(self);
        if !context.is_empty() {
            e.message = format!("{context}: {}", e.message);
        }
        e
    }
}

impl From<Failure> for ProviderError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Transport(e) => e,
            Failure::Api(e) => {
                let code = if e.code.is_empty() { String::new() } else { format!(" {}", e.code) };
                let text = format!("Vercel API {} answered {}{code}: {}", e.what, e.status, e.message);
                match e.status {
                    429 => ProviderError::throttled(text, e.retry_after),
                    500..=599 => ProviderError::transient(text),
                    404 => ProviderError::not_found(text),
                    409 => ProviderError::conflict(text),
                    401 | 403 => ProviderError::unauthorized(text),
                    400..=499 => ProviderError::invalid_input(text),
                    _ => ProviderError::other(text),
                }
            }
        }
    }
}

/// The result of a call.
pub(crate) type ApiResult<T> = Result<T, Failure>;

/// The time now in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Replaces every occurrence of the non-trivial `secrets` in `text`.
fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut sorted: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 3).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for s in sorted {
        if out.contains(s) {
            out = out.replace(s, REDACTED);
        }
    }
    out
}

/// A copy of `v` fit for a log: secret-looking fields replaced, named secrets scrubbed.
fn redact_json(v: &Value, secrets: &[&str]) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let hide = SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_null();
                    (k.clone(), if hide { Value::String(REDACTED.into()) } else { redact_json(v, secrets) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| redact_json(i, secrets)).collect()),
        Value::String(s) => Value::String(scrub(s, secrets)),
        other => other.clone(),
    }
}

fn shorten(mut s: String) -> String {
    if s.len() > LOG_BODY_LIMIT {
        let mut cut = LOG_BODY_LIMIT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// How long to wait after a 429: the `Retry-After` header (whole seconds), made more precise by
/// the body's reset time when that is sooner; one second when neither says.
pub(crate) fn throttle_delay(headers: &HeaderMap, error: &Value, now_ms: i64) -> Duration {
    let header = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let limit = error.get("limit");
    let reset_ms = limit
        .and_then(|l| l.get("resetMs"))
        .and_then(Value::as_i64)
        .or_else(|| limit.and_then(|l| l.get("reset")).and_then(Value::as_i64).map(|s| s * 1000));
    let body = reset_ms
        .map(|r| Duration::from_millis(r.saturating_sub(now_ms).max(0) as u64) + RESET_MARGIN)
        .or_else(|| error.get("retryAfter").and_then(Value::as_u64).map(Duration::from_secs));
    match (header, body) {
        (Some(h), Some(b)) => h.min(b),
        (Some(h), None) => h,
        (None, Some(b)) => b,
        (None, None) => Duration::from_secs(1),
    }
}

/// Turns a transport error into a provider error: everything is transient except a request
/// that could not even be built.
fn transport(what: &str, e: &reqwest::Error, secrets: &[&str]) -> Failure {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    let text = scrub(&format!("Vercel API {what} failed: {detail}"), secrets);
    if e.is_builder() {
        Failure::Transport(ProviderError::invalid_input(text))
    } else {
        Failure::Transport(ProviderError::transient(text))
    }
}

/// A configured client. Cheap to share behind an `Arc`.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    team: Option<TeamScope>,
    /// The configuration the client was built from.
    pub config: VercelConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("team", &self.team).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`, with `token` already resolved.
    pub fn new(config: VercelConfig, token: String) -> Result<Self, ProviderError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("stackwright-vercel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::other(format!("vercel provider: cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: config.base_url.trim_end_matches('/').to_owned(),
            token,
            team: config.team.clone(),
            config,
        })
    }

    /// Every secret a log or message must not show: the token and the caller's values.
    fn secrets<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut all = Vec::with_capacity(extra.len() + 1);
        all.push(self.token.as_str());
        all.extend_from_slice(extra);
        all
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url, Failure> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base)).map_err(|e| {
            Failure::Transport(ProviderError::invalid_input(format!(
                "vercel provider: `{}{path}` is not a valid URL: {e}",
                self.base
            )))
        })?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
            if let Some(team) = &self.team {
                let (k, v) = team.query();
                pairs.append_pair(k, v);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    /// Sends a JSON request and returns the JSON answer (`Null` for an empty one).
    /// `secrets` are values in the request that must not appear in logs or messages.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        secrets: &[&str],
    ) -> ApiResult<Value> {
        let secrets = self.secrets(secrets);
        let url = self.url(path, query)?;
        let what = format!("{method} {path}");
        let shown_body = body.map(|b| shorten(redact_json(b, &secrets).to_string())).unwrap_or_default();
        tracing::debug!(target: LOG_TARGET, "→ {method} {} {shown_body}", scrub(url.as_str(), &secrets));
        let mut req = self.http.request(method.clone(), url).header(AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").body(b.to_string());
        }
        self.finish(&what, req, &secrets).await
    }

    /// Uploads one file's bytes for deployments (`POST /v2/files`).
    pub async fn upload(&self, sha: &str, bytes: Vec<u8>) -> ApiResult<()> {
        let secrets = self.secrets(&[]);
        let url = self.url("/v2/files", &[])?;
        tracing::debug!(target: LOG_TARGET, "→ POST {} (file {sha}, {} bytes)", url, bytes.len());
        let req = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("x-vercel-digest", sha)
            // Sent explicitly: an empty body would otherwise go without it.
            .header(CONTENT_LENGTH, bytes.len())
            .body(bytes);
        self.finish("POST /v2/files", req, &secrets).await.map(|_| ())
    }

    async fn finish(&self, what: &str, req: reqwest::RequestBuilder, secrets: &[&str]) -> ApiResult<Value> {
        let started = Instant::now();
        let resp = req.send().await.map_err(|e| {
            let f = transport(what, &e, secrets);
            tracing::debug!(target: LOG_TARGET, "✗ {what}: {}", ProviderError::from(f.clone()).message);
            f
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| transport(what, &e, secrets))?;
        let elapsed = started.elapsed().as_millis();
        let json: Option<Value> =
            if text.trim().is_empty() { Some(Value::Null) } else { serde_json::from_str(&text).ok() };
        let shown = match &json {
            Some(v) => shorten(redact_json(v, secrets).to_string()),
            None => shorten(scrub(&text, secrets)),
        };
        tracing::debug!(target: LOG_TARGET, "← {status} {what} ({elapsed} ms) {shown}");
        if (200..300).contains(&status) {
            return json.ok_or_else(|| {
                Failure::Transport(ProviderError::transient(format!(
                    "Vercel API {what} answered {status} with a body that is not JSON"
                )))
            });
        }
        let error = json.as_ref().and_then(|v| v.get("error")).cloned().unwrap_or(Value::Null);
        let code = error.get("code").and_then(Value::as_str).unwrap_or_default().to_owned();
        let message = match error.get("message").and_then(Value::as_str) {
            Some(m) => scrub(m, secrets),
            None => shorten(scrub(text.trim(), secrets)),
        };
        let retry_after = (status == 429).then(|| throttle_delay(&headers, &error, now_ms()));
        Err(Failure::Api(Box::new(ApiError { what: what.to_owned(), status, code, message, error, retry_after })))
    }

    /// GET `path`, following `pagination.next` until it is null, and returns every item under
    /// `key` (`projects`, `envs`, `domains`, `deployments`).
    pub async fn list_all(&self, path: &str, query: &[(&str, &str)], key: &str) -> ApiResult<Vec<Value>> {
        let mut out = Vec::new();
        let mut until: Option<String> = None;
        let mut seen = HashSet::new();
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", PAGE_LIMIT));
            if let Some(u) = &until {
                q.push(("until", u));
            }
            let page = self.send(Method::GET, path, &q, None, &[]).await?;
            let items = page.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
            let empty = items.is_empty();
            out.extend(items);
            let next = match page.get("pagination").and_then(|p| p.get("next")) {
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            };
            match next {
                Some(n) if !empty => {
                    if !seen.insert(n.clone()) {
                        return Err(Failure::Transport(ProviderError::other(format!(
                            "Vercel API GET {path}: pagination returned the cursor {n} twice"
                        ))));
                    }
                    until = Some(n);
                }
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    #[test]
    fn redaction_hides_values_tokens_and_named_secrets() {
        let body = json!({"key": "DB", "value": "pw-123", "comment": "has tok-abc inside", "list": [{"value": "x"}]});
        let shown = redact_json(&body, &["tok-abc"]).to_string();
        assert!(!shown.contains("pw-123") && !shown.contains("tok-abc"), "{shown}");
        assert!(shown.contains("DB"));
        assert_eq!(scrub("a tok-abc b", &["tok-abc", "ab"]), "a [redacted] b");
    }

    #[test]
    fn throttle_delay_prefers_the_sooner_of_header_and_body_reset() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        let now = 1_000_000;
        let body = json!({"limit": {"resetMs": now + 300}});
        assert_eq!(throttle_delay(&headers, &body, now), Duration::from_millis(300) + RESET_MARGIN);
        // A reset further away than the header says is capped by the header.
        let far = json!({"limit": {"resetMs": now + 60_000}});
        assert_eq!(throttle_delay(&headers, &far, now), Duration::from_secs(2));
        assert_eq!(throttle_delay(&HeaderMap::new(), &json!({}), now), Duration::from_secs(1));
        let secs = json!({"limit": {"reset": (now / 1000) + 3}});
        assert!(throttle_delay(&HeaderMap::new(), &secs, now) >= Duration::from_secs(2));
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        use stackwright_core::ErrorKind::*;
        let f = |status| {
            ProviderError::from(Failure::Api(Box::new(ApiError {
                what: "GET /x".into(),
                status,
                code: "c".into(),
                message: "m".into(),
                error: Value::Null,
                retry_after: Some(Duration::from_secs(1)),
            })))
            .kind
        };
        assert_eq!(
            [f(429), f(500), f(503), f(404), f(409), f(403), f(400), f(302)],
            [Throttled, Transient, Transient, NotFound, Conflict, Unauthorized, InvalidInput, Other]
        );
    }
}
