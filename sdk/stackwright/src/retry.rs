//! Provider calls with retries: transient and throttled errors are retried with exponential
//! backoff and jitter, a retry-after hint replaces the computed delay, and everything stays
//! within the step's timeout.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use stackwright_core::{ProviderError, Urn};
use tokio::time::Instant;

use crate::engine::RetryPolicy;
use crate::events::{Event, Observer};

/// Why a call with retries failed.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    /// The provider returned an error that is not retried, or retries ran out.
    Failed { error: ProviderError, attempts: u32 },
    /// The call did not finish within the timeout. Its effect is unknown.
    TimedOut(Duration),
}

impl CallError {
    /// Whether the call may have changed the world even though it failed.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            CallError::Failed { error, .. } => error.kind.is_retryable(),
            CallError::TimedOut(_) => true,
        }
    }

    /// A message for the user, scrubbed of `secrets`.
    pub fn message(&self, secrets: &[String]) -> String {
        let text = match self {
            CallError::Failed { error, attempts } if *attempts > 1 => format!("{error} (after {attempts} attempts)"),
            CallError::Failed { error, .. } => error.to_string(),
            CallError::TimedOut(t) => format!("timed out after {}", crate::render::duration(*t)),
        };
        stackwright_core::value::scrub(&text, secrets)
    }
}

/// Runs `call` with retries until it succeeds, fails for good, or `timeout` passes.
pub(crate) async fn call_with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    observer: &Observer,
    urn: &Urn,
    what: &'static str,
    timeout: Duration,
    secrets: &[String],
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let deadline = Instant::now() + timeout;
    let mut attempts = 0u32;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter();
    let attempt = || {
        attempts += 1;
        call()
    };
    let retrying = attempt
        .retry(backoff)
        .when(|e: &ProviderError| e.kind.is_retryable())
        .adjust(|e: &ProviderError, computed: Option<Duration>| {
            let delay = match e.retry_after {
                Some(hint) => computed.map(|_| hint),
                None => computed,
            }?;
            // Give up now rather than sleep past the deadline.
            (Instant::now() + delay < deadline).then_some(delay)
        })
        .notify(|e: &ProviderError, delay: Duration| {
            observer(&Event::Retrying {
                urn: urn.clone(),
                call: what,
                delay,
                message: stackwright_core::value::scrub(&e.to_string(), secrets),
            })
        });
    let result = tokio::time::timeout_at(deadline, retrying).await;
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(error)) => Err(CallError::Failed { error, attempts }),
        Err(_) => Err(CallError::TimedOut(timeout)),
    }
}
