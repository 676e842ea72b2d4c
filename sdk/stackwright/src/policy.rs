//! Policies: Rust functions registered by the program that inspect the plan before anything is
//! applied. An advisory policy warns; a mandatory one refuses the update. Every violation names
//! the resource, the policy and why.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use stackwright_core::Urn;
use stackwright_core::value::reveal;

use crate::config::Config;
use crate::plan::{Plan, PlannedStep, StepOp};

/// What happens when a policy is violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Warn and go on.
    Advisory,
    /// Refuse the update.
    Mandatory,
}

/// One violation found by a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The policy's name.
    pub policy: String,
    /// Its enforcement level.
    pub enforcement: Enforcement,
    /// The resource in violation.
    pub resource: Urn,
    /// Why.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.enforcement {
            Enforcement::Advisory => "advisory",
            Enforcement::Mandatory => "mandatory",
        };
        write!(f, "resource `{}` violates {level} policy `{}`: {}", self.resource, self.policy, self.message)
    }
}

/// What a policy sees of one planned step.
pub struct StepView<'a> {
    step: &'a PlannedStep,
}

impl StepView<'_> {
    /// The resource's name.
    pub fn urn(&self) -> &Urn {
        &self.step.urn
    }
    /// Its type token.
    pub fn type_token(&self) -> &str {
        &self.step.type_token
    }
    /// What the step does.
    pub fn op(&self) -> StepOp {
        self.step.op
    }
    /// Whether the step deletes the resource (a delete, or the old half of a replacement).
    pub fn deletes(&self) -> bool {
        matches!(self.step.op, StepOp::Delete | StepOp::Replace { .. } | StepOp::DeleteReplaced)
    }
    /// The resource's arguments after the step (secrets revealed, unknowns as markers); `None`
    /// for deletions.
    pub fn inputs(&self) -> Option<Value> {
        self.step.inputs.clone().map(|v| reveal(v).0)
    }
    /// One argument by top-level field name.
    pub fn input(&self, field: &str) -> Option<Value> {
        self.inputs().and_then(|v| v.get(field).cloned())
    }
}

/// What a policy sees: the stack, its configuration and the plan.
pub struct PolicyContext<'a> {
    /// The stack's name.
    pub stack: &'a str,
    /// The stack's configuration.
    pub config: &'a Config,
    plan: &'a Plan,
}

impl<'a> PolicyContext<'a> {
    /// The steps of the plan that change something.
    pub fn changes(&self) -> impl Iterator<Item = StepView<'a>> {
        self.plan.steps.iter().filter(|s| s.op.is_change()).map(|step| StepView { step })
    }
    /// Every step of the plan.
    pub fn steps(&self) -> impl Iterator<Item = StepView<'a>> {
        self.plan.steps.iter().map(|step| StepView { step })
    }
}

/// A policy's check: returns (resource, reason) for each violation.
pub type Check = Arc<dyn Fn(&PolicyContext<'_>) -> Vec<(Urn, String)> + Send + Sync>;

/// A registered policy.
#[derive(Clone)]
pub struct Policy {
    pub(crate) name: String,
    pub(crate) enforcement: Enforcement,
    pub(crate) check: Check,
}

/// Runs every policy over the plan.
pub(crate) fn evaluate(policies: &[Policy], stack: &str, config: &Config, plan: &Plan) -> Vec<Violation> {
    let ctx = PolicyContext { stack, config, plan };
    policies
        .iter()
        .flat_map(|p| {
            (p.check)(&ctx).into_iter().map(move |(resource, message)| Violation {
                policy: p.name.clone(),
                enforcement: p.enforcement,
                resource,
                message,
            })
        })
        .collect()
}
