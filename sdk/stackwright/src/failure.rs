//! Typed step errors and the failures an update reports: why a step failed (a provider error
//! with its kind, a timeout, a panic, a refused check or policy, a change the plan did not show),
//! or why it did not run. Each turns into [`Diagnostic`]s for the text output and JSON.

use serde::Serialize;
use stackwright_core::{CheckFailure, ErrorKind, Path, Urn};

use crate::diagnostic::Diagnostic;
use crate::policy::Violation;

const UNKNOWN_OUTCOME: &str = "; its outcome is unknown, so it stays pending and the next run reconciles it";

fn attempts_text(attempts: u32) -> String {
    if attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() }
}

fn unknown_text(uncertain: bool) -> &'static str {
    if uncertain { UNKNOWN_OUTCOME } else { "" }
}

/// Why a step failed. Messages are scrubbed of secrets before they are stored here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum StepError {
    /// The provider returned an error (after any retries).
    #[error("{call} failed: {kind}: {message}{}{}", attempts_text(*attempts), unknown_text(*uncertain))]
    Provider {
        /// The call: `create`, `update`, `delete`, `read`, `find`, `import`.
        call: String,
        /// The error's kind.
        kind: ErrorKind,
        /// The provider's message.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Whether some attempt may have changed the world; the operation then stays pending.
        uncertain: bool,
    },
    /// The call did not finish within the resource's timeout.
    #[error("{call} timed out after {}{}", crate::format::duration(std::time::Duration::from_millis(*after_ms)), unknown_text(*uncertain))]
    TimedOut {
        /// The call.
        call: String,
        /// The timeout, in milliseconds.
        after_ms: u64,
        /// Whether the operation stays pending (a call that changes the world).
        uncertain: bool,
    },
    /// Provider code panicked.
    #[error("{call} panicked: {message}{}", unknown_text(*uncertain))]
    Panicked {
        /// The call.
        call: String,
        /// The panic message.
        message: String,
        /// Whether the operation stays pending.
        uncertain: bool,
    },
    /// The provider's checks refused the arguments resolved at apply time.
    #[error("invalid arguments: {}", failures.iter().map(|f| match &f.path {
        Some(p) => format!("field `{p}`: {}", f.message),
        None => f.message.clone(),
    }).collect::<Vec<_>>().join("; "))]
    Check {
        /// What the checks found.
        failures: Vec<CheckFailure>,
    },
    /// A mandatory policy refused the step's arguments resolved at apply time.
    #[error("refused by policy: {}", violations.iter().map(|v| format!("`{}`: {}", v.policy, v.message)).collect::<Vec<_>>().join("; "))]
    Policy {
        /// The violations.
        violations: Vec<Violation>,
    },
    /// The arguments could not be resolved (a closure failed or panicked).
    #[error("{message}")]
    Arguments {
        /// What went wrong.
        message: String,
    },
    /// A value known only at apply time makes the step do more than the plan showed.
    #[error("the plan showed {planned} but with the values known now it would {now}{}; nothing was done to it. Run `preview` to see the new plan, then `up` again", match path {
        Some(p) => format!(" because field `{p}` changed"),
        None => String::new(),
    })]
    PlanChanged {
        /// What the plan showed.
        planned: String,
        /// What it would be now.
        now: String,
        /// The field that makes the difference.
        path: Option<Path>,
    },
    /// No registered provider instance can run the step.
    #[error("{message}")]
    NoProvider {
        /// What is missing and what to do.
        message: String,
    },
    /// The state journal could not record the step.
    #[error("the state journal failed: {message}")]
    Journal {
        /// The journal's error.
        message: String,
    },
}

impl StepError {
    /// Whether the failed operation stays pending because its outcome is unknown.
    pub fn is_uncertain(&self) -> bool {
        matches!(
            self,
            StepError::Provider { uncertain: true, .. }
                | StepError::TimedOut { uncertain: true, .. }
                | StepError::Panicked { uncertain: true, .. }
        )
    }

    /// The diagnostics this error stands for, about `resource`.
    pub fn diagnostics(&self, resource: &Urn) -> Vec<Diagnostic> {
        let r = Some(resource.clone());
        match self {
            StepError::Check { failures } => failures
                .iter()
                .map(|f| Diagnostic::error(r.clone(), "invalid argument").at(f.path.clone()).with_detail(&f.message))
                .collect(),
            StepError::Policy { violations } => violations
                .iter()
                .map(|v| {
                    Diagnostic::error(r.clone(), format!("refused by policy `{}`", v.policy)).with_detail(&v.message)
                })
                .collect(),
            StepError::PlanChanged { path, .. } => {
                vec![Diagnostic::error(r, self.to_string()).at(path.clone())]
            }
            other => vec![Diagnostic::error(r, other.to_string())],
        }
    }
}

/// Why a step of an update did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum FailureReason {
    /// It ran and failed.
    Failed {
        /// The error.
        error: StepError,
    },
    /// It did not run because a step it waits for did not succeed.
    Skipped {
        /// That step's resource.
        because: Urn,
    },
    /// It was never started: the update was interrupted.
    NotStarted,
    /// The old object of a create-before-delete replacement was kept because a resource that
    /// used it did not move to the new one; it stays recorded for deletion by the next `up`.
    KeptReplaced {
        /// The resource that did not move.
        because: Urn,
    },
}

/// A step that did not succeed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The resource.
    pub urn: Urn,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// Why, typed.
    #[serde(flatten)]
    pub reason: FailureReason,
    /// Why, as text (scrubbed of secrets).
    pub message: String,
}

impl Failure {
    /// A failure of `urn` for `reason`; its text is made from the reason.
    pub fn new(urn: Urn, type_token: String, reason: FailureReason, deleting: bool) -> Self {
        let message = match &reason {
            FailureReason::Failed { error } => error.to_string(),
            FailureReason::Skipped { because } if deleting => format!("not deleted because `{because}` did not finish"),
            FailureReason::Skipped { because } => format!("skipped because `{because}` failed"),
            FailureReason::NotStarted if deleting => "not deleted: the update was interrupted".to_string(),
            FailureReason::NotStarted => "not started: the update was interrupted".to_string(),
            FailureReason::KeptReplaced { because } => format!(
                "the replaced object was kept because `{because}`, which used it, did not move to the new one; \
                 the next successful `up` deletes it"
            ),
        };
        Failure { urn, type_token, reason, message }
    }

    /// The diagnostics for this failure.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match &self.reason {
            FailureReason::Failed { error } => error.diagnostics(&self.urn),
            FailureReason::KeptReplaced { .. } => vec![Diagnostic::warning(Some(self.urn.clone()), &self.message)],
            _ => vec![Diagnostic::error(Some(self.urn.clone()), &self.message)],
        }
    }
}
