//! Progress events the engine emits while it works; the CLI renders them, tests may record them.

use std::sync::Arc;
use std::time::Duration;

use stackwright_core::Urn;

use crate::plan::StepOp;

/// Something that happened during an operation.
#[derive(Debug, Clone)]
pub enum Event {
    /// A step started.
    StepStarted {
        /// The resource.
        urn: Urn,
        /// What it does.
        op: StepOp,
    },
    /// A step finished successfully.
    StepFinished {
        /// The resource.
        urn: Urn,
        /// What it did.
        op: StepOp,
        /// How long it took.
        elapsed: Duration,
    },
    /// A step failed.
    StepFailed {
        /// The resource.
        urn: Urn,
        /// What it tried.
        op: StepOp,
        /// Why (already scrubbed of secrets).
        message: String,
    },
    /// A provider call is retried.
    Retrying {
        /// The resource.
        urn: Urn,
        /// Which call.
        call: &'static str,
        /// The wait before the next attempt.
        delay: Duration,
        /// The error (already scrubbed of secrets).
        message: String,
    },
    /// An advisory policy found a violation.
    PolicyWarning {
        /// The violation.
        violation: crate::policy::Violation,
    },
    /// An operation left pending by an earlier run was settled.
    Reconciled {
        /// The resource.
        urn: Urn,
        /// What happened.
        message: String,
    },
}

/// Receives events.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;
