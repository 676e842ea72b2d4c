//! Engine settings and retry policy: plain values below the engine, so the planner, the step
//! runner and the executor read them without importing the engine.

use std::sync::Arc;
use std::time::Duration;

use stackwright_state::Backend;
use tokio::sync::watch;

use crate::events::{Event, Observer};

/// How retries back off.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first delay.
    pub min_delay: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
    /// The most retries after the first attempt.
    pub max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { min_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30), max_retries: 8 }
    }
}

/// Opens another stack's backend (with that stack's secrets provider), for stack references.
pub type StackOpener = Arc<dyn Fn(&str) -> Result<Arc<dyn Backend>, String> + Send + Sync>;

/// Engine settings.
#[derive(Clone)]
pub struct Settings {
    /// At most this many steps run at once.
    pub parallel: usize,
    /// Retry behaviour for transient and throttled errors.
    pub retry: RetryPolicy,
    /// Receives progress events.
    pub observer: Observer,
    /// When it turns true, stop scheduling new steps.
    pub interrupt: Option<watch::Receiver<bool>>,
    /// The command recorded in the lock.
    pub command: String,
    /// The stack's configuration, given to the program.
    pub config: Option<Arc<crate::config::Config>>,
    /// Opens other stacks' state for stack references; by default, this engine's backend.
    pub references: Option<StackOpener>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            parallel: 16,
            retry: RetryPolicy::default(),
            observer: Arc::new(|_: &Event| {}),
            interrupt: None,
            command: "stackwright".into(),
            config: None,
            references: None,
        }
    }
}
