//! What the resource handlers share: the client, the memory of creates whose outcome is
//! unknown (so a retry looks before it creates again), and the rules for reading a 404.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use stackwright_core::{Input, ProviderError};

use crate::client::{Client, Failure, now_ms};

/// How much older than our first attempt an object may look (clock skew between us and the
/// API) and still be taken as the one that attempt made.
const SKEW_MS: i64 = 60_000;

/// State shared by every handler of one provider.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The HTTP client.
    pub client: Client,
    /// Operation id → when its first create request went out, for creates whose answer was
    /// lost (5xx, timeout, reset connection). The engine retries those; the retry must first
    /// look for what the lost request may have made.
    attempts: Mutex<HashMap<String, i64>>,
    /// Operation id → deployment id, once a deployment create was accepted, so a retried
    /// create resumes waiting for that build instead of starting another.
    deployments: Mutex<HashMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn new(client: Client) -> Self {
        Shared { client, attempts: Mutex::default(), deployments: Mutex::default() }
    }

    /// When the earlier attempt of this create, whose outcome is unknown, started.
    pub fn unknown_attempt(&self, op: &str) -> Option<i64> {
        lock(&self.attempts).get(op).copied()
    }

    /// Records that a create request started at `started` got no reliable answer.
    pub fn record_unknown(&self, op: &str, started: i64) {
        lock(&self.attempts).entry(op.to_owned()).or_insert(started);
    }

    /// Forgets the operation: it succeeded or failed for certain.
    pub fn settle(&self, op: &str) {
        lock(&self.attempts).remove(op);
        lock(&self.deployments).remove(op);
    }

    /// Whether an object created at `created_at` (Unix ms) can be the one an attempt that
    /// started at `since` made.
    pub fn made_by_attempt(created_at: Option<i64>, since: i64) -> bool {
        created_at.is_some_and(|c| c >= since - SKEW_MS)
    }

    pub fn remember_deployment(&self, op: &str, id: &str) {
        lock(&self.deployments).insert(op.to_owned(), id.to_owned());
    }

    pub fn known_deployment(&self, op: &str) -> Option<String> {
        lock(&self.deployments).get(op).cloned()
    }

    /// After a create call failed: remember it when its outcome is unknown, forget it
    /// otherwise, and turn the failure into the engine's error.
    pub fn create_failed(&self, op: &str, started: i64, failure: Failure, context: &str) -> ProviderError {
        if failure.outcome_unknown() {
            self.record_unknown(op, started);
        } else if failure.status() != Some(429) {
            self.settle(op);
        }
        failure.into_error(context)
    }

    /// Reads an object with `get` (`None` means 404). The API may not show an object for a
    /// moment after its creation, so a 404 for an object created less than the consistency
    /// grace ago is read again (every poll interval) until it shows or the grace has passed;
    /// only then is it gone. Other errors go straight back to the engine, which retries them.
    pub async fn read_lagging<F, Fut>(&self, created_at: i64, mut get: F) -> Result<Option<Value>, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Value>, ProviderError>>,
    {
        let config = &self.client.config;
        let grace = config.consistency_grace.as_millis() as i64;
        let every = config.poll_interval.clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            if let Some(v) = get().await? {
                return Ok(Some(v));
            }
            if now_ms() - created_at >= grace {
                return Ok(None);
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The value of a resolved optional input.
pub(crate) fn opt(v: &Option<Input<String>>) -> Option<&str> {
    v.as_ref().map(|i| i.get().as_str())
}

/// An optional string field of an API object (`null` and absent are `None`).
pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An optional input holding `s`.
pub(crate) fn input(s: Option<String>) -> Option<Input<String>> {
    s.map(Input::Value)
}

/// A conflict on create, with the way out.
pub(crate) fn conflict_with_import(what: &str, import_id: &str, api: &ProviderError) -> ProviderError {
    ProviderError::conflict(format!(
        "{what} already exists ({}). To manage the existing one with this stack, import it \
         (import id `{import_id}`); otherwise change the declaration so it does not collide",
        api.message
    ))
}

/// Splits an import id of the form `<project>/<rest>`.
pub(crate) fn split_import_id<'a>(kind: &str, id: &'a str, rest: &str) -> Result<(&'a str, &'a str), ProviderError> {
    match id.split_once('/') {
        Some((p, r)) if !p.is_empty() && !r.is_empty() => Ok((p, r)),
        _ => Err(ProviderError::invalid_input(format!(
            "a {kind} import id has the form `<project id or name>/<{rest}>` (got `{id}`)"
        ))),
    }
}
