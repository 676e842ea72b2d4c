//! Refresh: reads every resource from its provider, in parallel, and turns differences from the
//! stored state into drift records (changed outside the program, or gone).

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use stackwright_core::value::{is_secret, secret};
use stackwright_core::{ErasedHandler, PropertyChange, RawState, Urn};
use stackwright_state::{Record, ResourceState, StackState};

use crate::error::EngineError;
use crate::journal_writer::JournalHandle;
use crate::planner::{Prepared, mark_secret_fields};
use crate::runner::{Call, Reply, Request, Runner};
use crate::scheduler::{DagNode, NodeOutcome, run_dag};
use crate::settings::Settings;

/// What changed about one resource outside the program.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// The resource.
    pub urn: Urn,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// Whether it is gone.
    pub gone: bool,
    /// What changed (empty when gone).
    pub changes: Vec<PropertyChange>,
    #[serde(skip)]
    pub(crate) observed: Option<ResourceState>,
}

fn remark(value: Value, schema: &[stackwright_core::FieldSchema], stored: &Value) -> Value {
    let mut value = mark_secret_fields(value, schema);
    if let (Value::Object(map), Value::Object(old)) = (&mut value, stored) {
        for (k, v) in map.iter_mut() {
            if old.get(k).is_some_and(is_secret) && !is_secret(v) {
                *v = secret(v.take());
            }
        }
    }
    value
}

/// The stored resource updated with what the provider observed, secrets kept secret.
pub(crate) fn observed_state(stored: &ResourceState, observed: RawState, handler: &dyn ErasedHandler) -> ResourceState {
    ResourceState {
        id: observed.id,
        inputs: remark(observed.args, handler.args_schema(), &stored.inputs),
        outputs: remark(observed.outputs, handler.outputs_schema(), &stored.outputs),
        ..stored.clone()
    }
}

/// The property changes between two stored versions of a resource, for drift reports.
pub(crate) fn state_changes(old: &ResourceState, new: &ResourceState) -> Vec<PropertyChange> {
    let options = stackwright_core::DiffOptions::default();
    let mut changes = stackwright_core::diff(&old.inputs, &new.inputs, &options);
    changes.extend(stackwright_core::diff(&old.outputs, &new.outputs, &options).into_iter().map(|mut c| {
        c.path = stackwright_core::Path(
            std::iter::once(stackwright_core::Segment::Key("outputs".into())).chain(c.path.0).collect(),
        );
        c
    }));
    changes
}

/// Reads every resource in `state` (through the step runner, in parallel) and applies the drift
/// to `state` in memory.
pub(crate) async fn refresh_in_memory(
    prepared: &Prepared,
    state: &mut StackState,
    settings: &Settings,
) -> Result<Vec<Drift>, EngineError> {
    let resources: Vec<ResourceState> = state.resources.values().cloned().collect();
    let mut bound = Vec::with_capacity(resources.len());
    for r in &resources {
        let b = prepared.handler_for_state(&r.provider, &r.type_token).ok_or_else(|| EngineError::Reconcile {
            resource: r.urn.to_string(),
            kind: "refresh".into(),
            message: Prepared::missing_provider(r, "read it"),
        })?;
        bound.push(b);
    }
    let nodes: Vec<DagNode> =
        bound.iter().map(|b| DagNode { deps: Vec::new(), provider: b.provider.clone() }).collect();
    let resources = Arc::new(resources);
    let bound = Arc::new(bound);
    // Reads record nothing: the drift is recorded as a whole by the caller.
    let runner = Arc::new(Runner {
        journal: JournalHandle::closed(),
        settings: settings.clone(),
        stack: state.stack.clone(),
        defer_results: false,
    });
    let (_never, rx) = tokio::sync::watch::channel(false);
    let outcomes = run_dag(&nodes, &prepared.provider_limits, settings.parallel, rx, |i, slot| {
        let (resources, bound, runner) = (resources.clone(), bound.clone(), runner.clone());
        async move {
            let r = &resources[i];
            let call = Call::Read { stored: r.clone() };
            let request =
                Request::new(&r.urn, &r.type_token, &bound[i], call, std::time::Duration::from_secs(300), &slot);
            match runner.run(request, |_, _| Vec::new()).await? {
                Reply::Read(observed) => Ok(observed),
                _ => Ok(None),
            }
        }
    })
    .await;
    let mut drift = Vec::new();
    let mut errors = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let r = &resources[i];
        match outcome {
            NodeOutcome::Done(Some(observed)) => {
                let new = observed_state(r, observed, bound[i].handler.as_ref());
                let changes = state_changes(r, &new);
                if !changes.is_empty() || new.id != r.id {
                    drift.push(Drift {
                        urn: r.urn.clone(),
                        type_token: r.type_token.clone(),
                        gone: false,
                        changes,
                        observed: Some(new),
                    });
                }
            }
            NodeOutcome::Done(None) => drift.push(Drift {
                urn: r.urn.clone(),
                type_token: r.type_token.clone(),
                gone: true,
                changes: Vec::new(),
                observed: None,
            }),
            NodeOutcome::Failed(e) => errors.push(format!("`{}`: {e}", r.urn)),
            NodeOutcome::Skipped(_) | NodeOutcome::NotStarted => errors.push(format!("`{}`: not read", r.urn)),
        }
    }
    if !errors.is_empty() {
        return Err(EngineError::Reconcile {
            resource: errors.join("; "),
            kind: "refresh".into(),
            message: "reading failed".into(),
        });
    }
    for record in drift_records(&drift) {
        state.apply(&record);
    }
    Ok(drift)
}

/// Journal records that store the drift.
pub(crate) fn drift_records(drift: &[Drift]) -> Vec<Record> {
    drift
        .iter()
        .map(|d| match &d.observed {
            Some(r) => Record::Upsert { op: None, resource: r.clone(), retire_previous: false },
            None => Record::Remove { op: None, urn: d.urn.clone() },
        })
        .collect()
}
