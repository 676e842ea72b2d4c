//! Refresh: reads every resource from its provider, in parallel, and turns differences from the
//! stored state into drift records (changed outside the program, or gone).

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use stackwright_core::value::{is_secret, reveal, secret};
use stackwright_core::{ErasedHandler, OpContext, PropertyChange, RawState, Urn};
use stackwright_state::{Record, ResourceState, StackState};

use crate::engine::{Settings, state_changes};
use crate::error::EngineError;
use crate::plan::{Prepared, mark_secret_fields};
use crate::retry::call_with_retry;
use crate::scheduler::{DagNode, NodeOutcome, run_dag};

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

/// Reads every resource in `state` and applies the drift to `state` in memory.
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
            message: format!("no registered provider handles type `{}`", r.type_token),
        })?;
        bound.push(b);
    }
    let nodes: Vec<DagNode> =
        bound.iter().map(|b| DagNode { deps: Vec::new(), provider: b.provider.clone() }).collect();
    let resources = Arc::new(resources);
    let bound = Arc::new(bound);
    let stack = state.stack.clone();
    let (_never, rx) = tokio::sync::watch::channel(false);
    let outcomes = run_dag(&nodes, &prepared.provider_limits, settings.parallel, rx, |i, _slot| {
        let (resources, bound, stack, settings) = (resources.clone(), bound.clone(), stack.clone(), settings.clone());
        async move {
            let r = &resources[i];
            let handler = bound[i].handler.clone();
            let raw =
                RawState { id: r.id.clone(), args: reveal(r.inputs.clone()).0, outputs: reveal(r.outputs.clone()).0 };
            let ctx = OpContext { urn: r.urn.clone(), stack, operation_id: format!("refresh-{}", r.id) };
            let mut secrets = Vec::new();
            stackwright_core::value::secret_strings(&r.inputs, &mut secrets);
            stackwright_core::value::secret_strings(&r.outputs, &mut secrets);
            let timeout = std::time::Duration::from_secs(300);
            let read = call_with_retry(&settings.retry, &settings.observer, &r.urn, "read", timeout, &secrets, || {
                let (handler, ctx, raw) = (handler.clone(), ctx.clone(), raw.clone());
                async move {
                    match handler.read(&ctx, &raw).await {
                        Err(e) if e.kind == stackwright_core::ErrorKind::NotFound => Ok(None),
                        other => other,
                    }
                }
            })
            .await;
            read.map_err(|e| e.message(&secrets))
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
            NodeOutcome::Failed(m) => errors.push(format!("`{}`: {m}", r.urn)),
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
