//! Provider calls with retries: transient and throttled errors are retried with exponential
//! backoff and jitter, a retry-after hint replaces the computed delay, and everything stays
//! within the step's timeout. Whether the call may have changed the world is decided by every
//! attempt, not only the last: a transient failure (the server may have committed before the
//! answer was lost) followed by a `conflict` on retry is still an unknown outcome.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures::TryFutureExt;
use stackwright_core::{ErrorKind, ProviderError, Urn};
use tokio::time::Instant;

use crate::events::{Event, Observer};
use crate::settings::RetryPolicy;

/// Why a call with retries failed.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    /// The provider returned an error that is not retried, or retries ran out.
    Failed {
        /// The last error.
        error: ProviderError,
        /// How many attempts were made.
        attempts: u32,
        /// Whether some attempt may have changed the world (a transient failure).
        uncertain: bool,
    },
    /// The call did not finish within the timeout. Its effect is unknown.
    TimedOut { after: Duration },
}

impl CallError {
    /// Whether the call may have changed the world even though it failed.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            CallError::Failed { uncertain, .. } => *uncertain,
            CallError::TimedOut { .. } => true,
        }
    }
}

/// Whether a failed attempt with this kind may have been applied by the server before the answer
/// was lost. Throttling is an answer that the request was refused, so it is not.
fn may_have_applied(kind: ErrorKind) -> bool {
    kind == ErrorKind::Transient
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
    let attempts = AtomicU32::new(0);
    let uncertain = AtomicBool::new(false);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter();
    let attempt = || {
        attempts.fetch_add(1, Ordering::SeqCst);
        call().inspect_err(|e| {
            if may_have_applied(e.kind) {
                uncertain.store(true, Ordering::SeqCst);
            }
        })
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
    let attempts = attempts.load(Ordering::SeqCst);
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(error)) => Err(CallError::Failed { error, attempts, uncertain: uncertain.load(Ordering::SeqCst) }),
        Err(_) => Err(CallError::TimedOut { after: timeout }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn quick() -> RetryPolicy {
        RetryPolicy { min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2), max_retries: 5 }
    }

    #[tokio::test]
    async fn a_transient_failure_then_a_conflict_is_an_unknown_outcome() {
        let n = Arc::new(AtomicUsize::new(0));
        let observer: Observer = Arc::new(|_| {});
        let r: Result<(), _> =
            call_with_retry(&quick(), &observer, &Urn::from("x"), "create", Duration::from_secs(5), &[], || {
                let n = n.clone();
                async move {
                    match n.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(ProviderError::transient("connection reset after the request was sent")),
                        _ => Err(ProviderError::conflict("already exists")),
                    }
                }
            })
            .await;
        let e = r.unwrap_err();
        assert!(matches!(&e, CallError::Failed { error, attempts: 2, .. } if error.kind == ErrorKind::Conflict));
        assert!(e.outcome_unknown(), "the first attempt may have created the object");
    }

    #[tokio::test]
    async fn throttling_then_a_refusal_is_a_known_outcome() {
        let n = Arc::new(AtomicUsize::new(0));
        let observer: Observer = Arc::new(|_| {});
        let r: Result<(), _> =
            call_with_retry(&quick(), &observer, &Urn::from("x"), "create", Duration::from_secs(5), &[], || {
                let n = n.clone();
                async move {
                    match n.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(ProviderError::throttled("slow down", None)),
                        _ => Err(ProviderError::invalid_input("bad name")),
                    }
                }
            })
            .await;
        assert!(!r.unwrap_err().outcome_unknown());
    }
}
