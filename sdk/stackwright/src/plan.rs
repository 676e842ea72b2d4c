//! A plan as a value: the steps of an update, each naming its resource, provider instance,
//! operation, property-level diff and the reason for it. Preview prints it, policies inspect it,
//! `preview --save-plan` stores it, and the executor runs exactly these steps.

use serde::Serialize;
use serde_json::Value;
use stackwright_core::{PropertyChange, Urn};

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum StepOp {
    /// Nothing changes.
    Same,
    /// Create a new resource.
    Create,
    /// Update in place.
    Update,
    /// Replace: create the new one and delete the old one, in the order given.
    Replace {
        /// Delete the old object before creating the new one.
        delete_before_create: bool,
    },
    /// Delete a resource removed from the program.
    Delete,
    /// Delete the old object of an earlier create-before-delete replacement.
    DeleteReplaced,
}

impl StepOp {
    /// Whether the step changes anything.
    pub fn is_change(self) -> bool {
        self != StepOp::Same
    }

    /// How much a step of this kind may do, for checking at apply time that a step does no more
    /// than the plan showed: same < update < replace.
    pub(crate) fn rank(self) -> u8 {
        match self {
            StepOp::Same => 0,
            StepOp::Update => 1,
            StepOp::Create | StepOp::Replace { .. } | StepOp::Delete | StepOp::DeleteReplaced => 2,
        }
    }

    /// A lowercase verb for messages: `update`, `replace`, …
    pub fn verb(self) -> &'static str {
        match self {
            StepOp::Same => "leave unchanged",
            StepOp::Create => "create",
            StepOp::Update => "update",
            StepOp::Replace { .. } => "replace",
            StepOp::Delete => "delete",
            StepOp::DeleteReplaced => "delete the replaced object of",
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    /// The resource.
    pub urn: Urn,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// The provider instance that manages it after the step.
    pub provider: String,
    /// What happens.
    #[serde(flatten)]
    pub op: StepOp,
    /// Property-level changes (for creates: every argument, as additions).
    pub changes: Vec<PropertyChange>,
    /// The name it is moving from, when renamed through an alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<Urn>,
    /// Why the step does more than its own changes call for (a replacement forced by a
    /// dependency's delete-before-create replacement, or by a move to another provider instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For deletions: the provider id of the object deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The arguments after the step (absent for deletions). Secrets are wrapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Value>,
}

/// A plan: every step of an update, in dependency order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<PlannedStep>,
}

/// Counts of steps by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    /// Creates.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletes (including old objects of replacements).
    pub delete: usize,
    /// Unchanged.
    pub same: usize,
}

impl Plan {
    /// Counts the steps by kind.
    pub fn counts(&self) -> PlanCounts {
        let mut c = PlanCounts::default();
        for s in &self.steps {
            match s.op {
                StepOp::Same if s.renamed_from.is_some() => c.update += 1,
                StepOp::Same => c.same += 1,
                StepOp::Create => c.create += 1,
                StepOp::Update => c.update += 1,
                StepOp::Replace { .. } => c.replace += 1,
                StepOp::Delete | StepOp::DeleteReplaced => c.delete += 1,
            }
        }
        c
    }

    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.op.is_change() || s.renamed_from.is_some())
    }
}
