//! Errors of the engine. Each names the resource, file or flag involved and says what to do.

use stackwright_core::CheckFailure;
use stackwright_state::StateError;

/// A mistake in the program's declarations, found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    /// Two resources share a name.
    #[error("resource name `{name}` is declared twice: at {first} and at {second}; give each resource a unique name")]
    Duplicate {
        /// The name.
        name: String,
        /// Where it was declared first.
        first: String,
        /// Where it was declared again.
        second: String,
    },
    /// The arguments could not be serialized.
    #[error("resource `{resource}` (declared at {location}): its arguments could not be serialized: {message}")]
    Arguments {
        /// The resource.
        resource: String,
        /// Where it was declared.
        location: String,
        /// The serializer's message.
        message: String,
    },
    /// An option is malformed.
    #[error("resource `{resource}` (declared at {location}): option `{option}`: {message}")]
    BadOption {
        /// The resource.
        resource: String,
        /// Where it was declared.
        location: String,
        /// The option.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Resources depend on each other in a circle.
    #[error("dependency cycle: {}; remove one of these dependencies", cycle.join(" → "))]
    Cycle {
        /// The resources on the cycle, in order, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A resource depends on a name that is not declared.
    #[error(
        "resource `{resource}` (declared at {location}) depends on `{dependency}`, which this program does not declare"
    )]
    UnknownDependency {
        /// The resource.
        resource: String,
        /// Where it was declared.
        location: String,
        /// The missing name.
        dependency: String,
    },
    /// No provider handles a resource's type.
    #[error("resource `{resource}` (declared at {location}) has type `{type_token}`, but {}", match provider {
        Some(p) => format!("provider `{p}` is not registered or does not handle that type; register it with `stack.provider(...)`"),
        None => "no registered provider handles that type; register one with `stack.provider(...)`".to_string(),
    })]
    NoProvider {
        /// The resource.
        resource: String,
        /// Where it was declared.
        location: String,
        /// Its type.
        type_token: String,
        /// The provider it asked for, if any.
        provider: Option<String>,
    },
}

/// Why an engine operation failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The program itself returned an error.
    #[error("the program failed: {0:#}")]
    Program(anyhow::Error),
    /// The program's declarations have mistakes.
    #[error("the program has {} problem(s):\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Declarations(Vec<DeclarationError>),
    /// Reading or writing state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The plan would delete or replace protected resources.
    #[error("the plan would {}; nothing was changed. To proceed, remove `protect()` from the resource and run `up` first, or keep it in the program", .0.iter().map(|(r, op)| format!("{op} protected resource `{r}`")).collect::<Vec<_>>().join(", "))]
    Protected(Vec<(String, &'static str)>),
    /// Providers rejected arguments before anything ran.
    #[error("invalid arguments; nothing was changed:\n{}", .0.iter().map(|(r, f)| match &f.path {
        Some(p) => format!("  - resource `{r}`, field `{p}`: {}", f.message),
        None => format!("  - resource `{r}`: {}", f.message),
    }).collect::<Vec<_>>().join("\n"))]
    Check(Vec<(String, CheckFailure)>),
    /// A saved plan no longer matches what would be done.
    #[error("refusing to apply the saved plan: {0}. Run `preview --save-plan` again")]
    PlanMismatch(String),
    /// Mandatory policies refused the plan.
    #[error("policies refused the plan; nothing was changed:\n{}", .0.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n"))]
    Policy(Vec<crate::policy::Violation>),
    /// An interrupted operation could not be reconciled.
    #[error(
        "could not reconcile the interrupted {kind} of `{resource}`: {message}. State is unchanged; fix the cause and run again"
    )]
    Reconcile {
        /// The resource.
        resource: String,
        /// What was interrupted.
        kind: String,
        /// Why.
        message: String,
    },
    /// The stack does not exist.
    #[error("stack `{stack}` does not exist in {backend}. Create it with `stack init {stack}`{}", if known.is_empty() { String::new() } else { format!(" or pick one of: {}", known.join(", ")) })]
    UnknownStack {
        /// The stack asked for.
        stack: String,
        /// The backend.
        backend: String,
        /// Stacks that do exist.
        known: Vec<String>,
    },
    /// An import could not be done.
    #[error("cannot import `{resource}`: {message}; nothing was changed")]
    Import {
        /// The name it was to get.
        resource: String,
        /// Why.
        message: String,
    },
    /// A state edit (`state rm`, `state mv`) was refused.
    #[error("cannot change `{resource}` in the state: {message}; nothing was changed")]
    StateEdit {
        /// The resource.
        resource: String,
        /// Why.
        message: String,
    },
    /// The plan's steps cannot be ordered so that nothing is deleted while something uses it.
    #[error("the plan cannot be ordered safely: these resources wait on each other's deletion: {}; nothing was changed. Split the change into two updates", .0.join(", "))]
    Unschedulable(Vec<String>),
    /// A resource's stored object belongs to a provider instance the program no longer registers.
    #[error("the plan would lose track of objects; nothing was changed:\n{}", .0.iter().map(|(r, m)| format!("  - resource `{r}`: {m}")).collect::<Vec<_>>().join("\n"))]
    ProviderMissing(Vec<(String, String)>),
    /// Operations of an earlier run have an unknown outcome that the provider cannot settle.
    #[error("{}", crate::error::uncertain_text(.0))]
    Uncertain(Vec<UncertainOperation>),
    /// The state journal could not be written.
    #[error("the state journal failed: {0}; what finished before is recorded, run again to continue")]
    Journal(String),
    /// A resource named on the command line is not in the stack.
    #[error("no resource named `{0}` in the stack; `state ls` lists them")]
    UnknownResource(String),
}

/// An operation whose outcome is unknown and that the provider cannot settle by itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UncertainOperation {
    /// The resource.
    pub resource: String,
    /// `create`, `update` or `delete`.
    pub kind: String,
    /// The operation id (the marker a provider may have written on the object).
    pub operation: String,
    /// When it started.
    pub started_at: String,
}

pub(crate) fn uncertain_text(ops: &[UncertainOperation]) -> String {
    let mut out = format!(
        "{} operation(s) of an earlier run may or may not have happened, and the provider cannot tell; nothing was \
         changed. Check the real system, then say what happened:",
        ops.len()
    );
    for op in ops {
        out.push_str(&format!(
            "\n  - the {} of `{}` (operation {}, started {}): if it made an object, run `stack pending resolve {} \
             --created ID`; if it did not, `stack pending resolve {} --absent`",
            op.kind, op.resource, op.operation, op.started_at, op.resource, op.resource
        ));
    }
    out.push_str("\n`stack pending ls` lists them.");
    out
}

impl EngineError {
    /// The diagnostics this error stands for: one per resource and field where it names them.
    pub fn diagnostics(&self) -> Vec<crate::diagnostic::Diagnostic> {
        use crate::diagnostic::Diagnostic;
        let urn = |r: &str| Some(stackwright_core::Urn::from(r));
        match self {
            EngineError::Check(failures) => failures.iter().map(|(r, f)| Diagnostic::check(r, f)).collect(),
            EngineError::Policy(violations) => violations.iter().map(Diagnostic::from).collect(),
            EngineError::Protected(items) => items
                .iter()
                .map(|(r, op)| {
                    Diagnostic::error(urn(r), format!("the plan would {op} this protected resource"))
                        .with_detail("remove `protect()` from it and run `up` first, or keep it in the program")
                })
                .collect(),
            EngineError::ProviderMissing(items) => items
                .iter()
                .map(|(r, m)| Diagnostic::error(urn(r), "its provider instance is gone").with_detail(m.clone()))
                .collect(),
            EngineError::Uncertain(ops) => ops
                .iter()
                .map(|op| {
                    Diagnostic::error(
                        urn(&op.resource),
                        format!("the outcome of its interrupted {} is unknown", op.kind),
                    )
                    .with_detail(format!(
                        "run `stack pending resolve {} --created ID` if it made an object, or `--absent` if not",
                        op.resource
                    ))
                })
                .collect(),
            EngineError::Declarations(errors) => {
                errors.iter().map(|e| Diagnostic::error(None, e.to_string())).collect()
            }
            other => vec![Diagnostic::error(None, other.to_string())],
        }
    }
}
