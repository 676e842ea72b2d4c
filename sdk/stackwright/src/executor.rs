//! Applies a plan. Declared resources run as a DAG in dependency order, each step deciding again
//! with real outputs; then deletions (removed resources and the old halves of replacements) run in
//! reverse dependency order. Every provider call that changes the world is preceded by a durable
//! pending record and followed by a durable result before any dependent starts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use stackwright_core::value::{contains_unknown, reveal, secret_strings};
use stackwright_core::{ErrorKind, OpContext, RawState, Urn};
use stackwright_state::{OpKind, PendingOperation, Record, ResourceState, StackState};
use tokio::sync::watch;

use crate::engine::{Settings, evaluate_exports};
use crate::events::Event;
use crate::journal_writer::JournalHandle;
use crate::options::Timeouts;
use crate::plan::{Bound, Prepared, StepOp, decide, delete_dependencies, mark_secret_outputs, resolve_args};
use crate::retry::{CallError, call_with_retry};
use crate::scheduler::{DagNode, NOT_STARTED, NodeOutcome, Slot, run_dag};
use crate::stack::Registration;

/// A step that did not succeed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The resource.
    pub urn: Urn,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// Why (scrubbed of secrets).
    pub message: String,
}

pub(crate) struct RunSettings {
    pub settings: Settings,
    pub destroy: bool,
}

pub(crate) struct Outcome {
    pub changed: usize,
    pub failures: Vec<Failure>,
    pub interrupted: bool,
}

/// What a provider call needs besides its arguments: secrets to scrub from messages, and the
/// step's slot to free when the call returns.
#[derive(Clone, Copy)]
struct CallEnv<'a> {
    secrets: &'a [String],
    slot: &'a Slot,
}

struct Run {
    prepared: Arc<Prepared>,
    prior: Arc<StackState>,
    live: Mutex<HashMap<Urn, (String, Value)>>,
    journal: JournalHandle,
    settings: Settings,
}

fn new_operation_id() -> String {
    format!("op-{:016x}{:08x}", rand::random::<u64>(), rand::random::<u32>())
}

fn now() -> String {
    stackwright_state::backend::now_rfc3339()
}

fn secrets_of(values: &[&Value]) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        secret_strings(v, &mut out);
    }
    out
}

impl Run {
    fn state_of(&self, reg: &Registration, bound: &Bound, id: String, inputs: Value, outputs: Value) -> ResourceState {
        ResourceState {
            urn: reg.urn.clone(),
            type_token: reg.type_token.to_owned(),
            provider: bound.provider.clone(),
            id,
            inputs,
            outputs,
            dependencies: reg.deps.clone(),
            protect: reg.opts.protect,
            retain_on_delete: reg.opts.retain_on_delete,
        }
    }

    fn context(&self, urn: &Urn, operation_id: &str) -> OpContext {
        OpContext { urn: urn.clone(), stack: self.prior.stack.clone(), operation_id: operation_id.to_owned() }
    }

    fn pending(
        &self,
        kind: OpKind,
        urn: &Urn,
        type_token: &str,
        provider: &str,
        id: Option<String>,
        inputs: &Value,
    ) -> PendingOperation {
        PendingOperation {
            kind,
            urn: urn.clone(),
            type_token: type_token.to_owned(),
            provider: provider.to_owned(),
            id,
            inputs: inputs.clone(),
            started_at: now(),
        }
    }

    fn failure_text(&self, err: &CallError, secrets: &[String], recorded_pending: bool) -> String {
        let mut m = err.message(secrets);
        if recorded_pending && err.outcome_unknown() {
            m.push_str("; its outcome is unknown, so it stays pending and the next run reconciles it");
        }
        m
    }

    async fn create(
        &self,
        reg: &Registration,
        bound: &Bound,
        inputs: &Value,
        retire_previous: bool,
        mut records: Vec<Record>,
        env: CallEnv<'_>,
    ) -> Result<(), String> {
        let CallEnv { secrets, slot } = env;
        let op = new_operation_id();
        let side_effects = bound.handler.has_side_effects();
        if side_effects {
            let pending = self.pending(OpKind::Create, &reg.urn, reg.type_token, &bound.provider, None, inputs);
            records.push(Record::Begin { op: op.clone(), pending });
        }
        if !records.is_empty() {
            self.journal.write(records).await?;
        }
        if !slot.acquire().await {
            return self.give_up(side_effects, op).await;
        }
        let plain = reveal(inputs.clone()).0;
        let ctx = self.context(&reg.urn, &op);
        let timeout = reg.opts.timeouts.unwrap_or_default().create;
        let handler = &bound.handler;
        let settings = &self.settings;
        let result = call_with_retry(&settings.retry, &settings.observer, &reg.urn, "create", timeout, secrets, || {
            handler.create(&ctx, &plain)
        })
        .await;
        // The call is over; let the next one start while this result becomes durable.
        slot.release();
        match result {
            Ok((id, outputs)) => {
                let outputs = mark_secret_outputs(outputs, handler.outputs_schema(), inputs);
                let resource = self.state_of(reg, bound, id.clone(), inputs.clone(), outputs.clone());
                let op = side_effects.then_some(op);
                self.journal.write(vec![Record::Upsert { op, resource, retire_previous }]).await?;
                self.live.lock().expect("live lock").insert(reg.urn.clone(), (id, outputs));
                Ok(())
            }
            Err(e) => {
                if side_effects && !e.outcome_unknown() {
                    self.journal.write(vec![Record::Abort { op }]).await?;
                }
                Err(format!("create failed: {}", self.failure_text(&e, secrets, side_effects)))
            }
        }
    }

    async fn update(
        &self,
        reg: &Registration,
        bound: &Bound,
        old: &ResourceState,
        decision: &crate::plan::Decision,
        mut records: Vec<Record>,
        env: CallEnv<'_>,
    ) -> Result<(), String> {
        let CallEnv { secrets, slot } = env;
        let (inputs, changes) = (&decision.inputs, &decision.changes);
        let op = new_operation_id();
        let side_effects = bound.handler.has_side_effects();
        if side_effects {
            let pending =
                self.pending(OpKind::Update, &reg.urn, reg.type_token, &bound.provider, Some(old.id.clone()), inputs);
            records.push(Record::Begin { op: op.clone(), pending });
        }
        if !records.is_empty() {
            self.journal.write(records).await?;
        }
        if !slot.acquire().await {
            return self.give_up(side_effects, op).await;
        }
        let plain = reveal(inputs.clone()).0;
        let stored =
            RawState { id: old.id.clone(), args: reveal(old.inputs.clone()).0, outputs: reveal(old.outputs.clone()).0 };
        let plain_changes: Vec<_> = changes
            .iter()
            .cloned()
            .map(|mut c| {
                c.old = c.old.map(|v| reveal(v).0);
                c.new = c.new.map(|v| reveal(v).0);
                c
            })
            .collect();
        let ctx = self.context(&reg.urn, &op);
        let timeout = reg.opts.timeouts.unwrap_or_default().update;
        let handler = &bound.handler;
        let settings = &self.settings;
        let result = call_with_retry(&settings.retry, &settings.observer, &reg.urn, "update", timeout, secrets, || {
            handler.update(&ctx, &stored, &plain, &plain_changes)
        })
        .await;
        slot.release();
        match result {
            Ok(outputs) => {
                let outputs = mark_secret_outputs(outputs, handler.outputs_schema(), inputs);
                let resource = self.state_of(reg, bound, old.id.clone(), inputs.clone(), outputs.clone());
                let op = side_effects.then_some(op);
                self.journal.write(vec![Record::Upsert { op, resource, retire_previous: false }]).await?;
                self.live.lock().expect("live lock").insert(reg.urn.clone(), (old.id.clone(), outputs));
                Ok(())
            }
            Err(e) => {
                if side_effects && !e.outcome_unknown() {
                    self.journal.write(vec![Record::Abort { op }]).await?;
                }
                Err(format!("update failed: {}", self.failure_text(&e, secrets, side_effects)))
            }
        }
    }

    async fn delete(
        &self,
        stored: &ResourceState,
        bound: &Bound,
        retired: bool,
        timeouts: Timeouts,
        slot: &Slot,
    ) -> Result<(), String> {
        let finish = |op: Option<String>| {
            if retired {
                Record::RemoveRetired { op, urn: stored.urn.clone(), id: stored.id.clone() }
            } else {
                Record::Remove { op, urn: stored.urn.clone() }
            }
        };
        if stored.retain_on_delete {
            return self.journal.write(vec![finish(None)]).await;
        }
        let op = new_operation_id();
        let side_effects = bound.handler.has_side_effects();
        if side_effects {
            let pending = self.pending(
                OpKind::Delete,
                &stored.urn,
                &stored.type_token,
                &bound.provider,
                Some(stored.id.clone()),
                &stored.inputs,
            );
            self.journal.write(vec![Record::Begin { op: op.clone(), pending }]).await?;
        }
        if !slot.acquire().await {
            return self.give_up(side_effects, op).await;
        }
        let secrets = secrets_of(&[&stored.inputs, &stored.outputs]);
        let raw = RawState {
            id: stored.id.clone(),
            args: reveal(stored.inputs.clone()).0,
            outputs: reveal(stored.outputs.clone()).0,
        };
        let ctx = self.context(&stored.urn, &op);
        let handler = &bound.handler;
        let settings = &self.settings;
        let result = call_with_retry(
            &settings.retry,
            &settings.observer,
            &stored.urn,
            "delete",
            timeouts.delete,
            &secrets,
            || async {
                match handler.delete(&ctx, &raw).await {
                    Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
                    other => other,
                }
            },
        )
        .await;
        slot.release();
        match result {
            Ok(()) => self.journal.write(vec![finish(side_effects.then_some(op))]).await,
            Err(e) => {
                if side_effects && !e.outcome_unknown() {
                    self.journal.write(vec![Record::Abort { op }]).await?;
                }
                Err(format!("delete failed: {}", self.failure_text(&e, &secrets, side_effects)))
            }
        }
    }

    /// An interrupt came while the step waited for its turn: it never called its provider, so
    /// its pending record is closed and the step counts as not started.
    async fn give_up(&self, side_effects: bool, op: String) -> Result<(), String> {
        if side_effects {
            self.journal.write(vec![Record::Abort { op }]).await?;
        }
        Err(NOT_STARTED.to_string())
    }

    async fn apply_desired(&self, i: usize, slot: &Slot) -> Result<StepOp, String> {
        let prepared = &self.prepared;
        let reg = &prepared.regs[i];
        let bound = &prepared.bound[i];
        let old = prepared.previous[i].as_ref().and_then(|u| self.prior.resources.get(u));
        let resolved = resolve_args(reg, |d| {
            self.live.lock().expect("live lock").get(d).map(|(id, o)| (Some(id.clone()), o.clone()))
        })?;
        let decision = decide(reg, bound.handler.as_ref(), old, resolved);
        if contains_unknown(&decision.inputs) {
            return Err("an argument is still unknown although its dependencies were applied".into());
        }
        let failures = bound.handler.check(&reveal(decision.inputs.clone()).0);
        let mut secrets = secrets_of(&[&decision.inputs]);
        if let Some(old) = old {
            secrets.extend(secrets_of(&[&old.inputs, &old.outputs]));
        }
        if !failures.is_empty() {
            let text: Vec<String> = failures
                .iter()
                .map(|f| match &f.path {
                    Some(p) => format!("field `{p}`: {}", f.message),
                    None => f.message.clone(),
                })
                .collect();
            return Err(stackwright_core::value::scrub(&format!("invalid arguments: {}", text.join("; ")), &secrets));
        }
        let mut records = Vec::new();
        let renamed = prepared.previous[i].as_ref().filter(|p| **p != reg.urn);
        if let Some(from) = renamed {
            records.push(Record::Rename { from: from.clone(), to: reg.urn.clone() });
        }
        let op = decision.op;
        let started = Instant::now();
        if op.is_change() {
            (self.settings.observer)(&Event::StepStarted { urn: reg.urn.clone(), op });
        }
        let result = match (op, old) {
            (StepOp::Same, Some(old)) => {
                let current = self.state_of(reg, bound, old.id.clone(), old.inputs.clone(), old.outputs.clone());
                let moved = ResourceState { urn: reg.urn.clone(), ..old.clone() };
                if current != moved {
                    records.push(Record::Upsert { op: None, resource: current, retire_previous: false });
                }
                if !records.is_empty() {
                    self.journal.write(records).await?;
                }
                self.live.lock().expect("live lock").insert(reg.urn.clone(), (old.id.clone(), old.outputs.clone()));
                Ok(())
            }
            (StepOp::Update, Some(old)) => {
                self.update(reg, bound, old, &decision, records, CallEnv { secrets: &secrets, slot }).await
            }
            (StepOp::Replace { delete_before_create }, Some(old)) => {
                if reg.opts.protect || old.protect {
                    return Err(format!(
                        "resource `{}` is protected and would be replaced; remove `protect()` and run `up` first",
                        reg.urn
                    ));
                }
                if delete_before_create {
                    if !records.is_empty() {
                        self.journal.write(std::mem::take(&mut records)).await?;
                    }
                    let moved = ResourceState { urn: reg.urn.clone(), ..old.clone() };
                    let timeouts = reg.opts.timeouts.unwrap_or_default();
                    // Hold the turn from the delete through the create.
                    if !slot.acquire().await {
                        return Err(NOT_STARTED.to_string());
                    }
                    self.delete(&moved, bound, false, timeouts, &Slot::detached()).await?;
                    self.create(reg, bound, &decision.inputs, false, records, CallEnv { secrets: &secrets, slot }).await
                } else {
                    self.create(reg, bound, &decision.inputs, true, records, CallEnv { secrets: &secrets, slot }).await
                }
            }
            _ => self.create(reg, bound, &decision.inputs, false, records, CallEnv { secrets: &secrets, slot }).await,
        };
        match &result {
            Ok(()) if op.is_change() => {
                (self.settings.observer)(&Event::StepFinished { urn: reg.urn.clone(), op, elapsed: started.elapsed() })
            }
            Err(m) if m != NOT_STARTED => {
                (self.settings.observer)(&Event::StepFailed { urn: reg.urn.clone(), op, message: m.clone() })
            }
            _ => {}
        }
        result.map(|()| op)
    }
}

/// Runs the plan's steps. Never returns early: every outcome is reported.
pub(crate) async fn execute(
    prepared: Arc<Prepared>,
    prior: Arc<StackState>,
    shared: Arc<Mutex<StackState>>,
    journal: JournalHandle,
    run_settings: &RunSettings,
) -> Outcome {
    let settings = run_settings.settings.clone();
    let live = prior.resources.values().map(|r| (r.urn.clone(), (r.id.clone(), r.outputs.clone()))).collect();
    let run =
        Arc::new(Run { prepared: prepared.clone(), prior: prior.clone(), live: Mutex::new(live), journal, settings });
    let interrupt = run.settings.interrupt.clone().unwrap_or_else(|| watch::channel(false).1);
    let mut failures = Vec::new();
    let mut changed = 0;
    let mut interrupted = false;
    let mut succeeded: HashSet<Urn> = HashSet::new();

    if !run_settings.destroy {
        let nodes: Vec<DagNode> = prepared
            .regs
            .iter()
            .enumerate()
            .map(|(i, _)| DagNode { deps: prepared.deps[i].clone(), provider: prepared.bound[i].provider.clone() })
            .collect();
        let outcomes =
            run_dag(&nodes, &prepared.provider_limits, run.settings.parallel, interrupt.clone(), |i, slot| {
                let run = run.clone();
                async move { run.apply_desired(i, &slot).await }
            })
            .await;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let reg = &prepared.regs[i];
            let message = match outcome {
                NodeOutcome::Done(op) => {
                    changed +=
                        usize::from(op.is_change() || prepared.previous[i].as_ref().is_some_and(|p| *p != reg.urn));
                    succeeded.insert(reg.urn.clone());
                    continue;
                }
                NodeOutcome::Failed(m) => m,
                NodeOutcome::Skipped(j) => format!("skipped because `{}` failed", prepared.regs[j].urn),
                NodeOutcome::NotStarted => {
                    interrupted = true;
                    "not started: the update was interrupted".to_string()
                }
            };
            failures.push(Failure { urn: reg.urn.clone(), type_token: reg.type_token.to_owned(), message });
        }
        let exports = evaluate_exports(&prepared, &run.live.lock().expect("live lock"));
        if let Err(m) = run.journal.write(vec![Record::Exports { exports }]).await {
            failures.push(Failure { urn: Urn::from("(exports)"), type_token: String::new(), message: m });
        }
    } else if let Err(m) = run.journal.write(vec![Record::Exports { exports: Default::default() }]).await {
        failures.push(Failure { urn: Urn::from("(exports)"), type_token: String::new(), message: m });
    }
    interrupted |= *interrupt.borrow();
    if interrupted {
        return Outcome { changed, failures, interrupted };
    }

    // Deletions, from the state as it is now (replacements may have retired objects).
    let current = shared.lock().expect("state lock").clone();
    let removed: Vec<&Urn> =
        if run_settings.destroy { current.resources.keys().collect() } else { prepared.removed.iter().collect() };
    let mut items: Vec<(ResourceState, bool)> = Vec::new();
    // Who used each resource, from the state before this run; built once so this stays linear.
    let declared: HashSet<&Urn> = prepared.regs.iter().map(|r| &r.urn).collect();
    let mut users: HashMap<&Urn, Vec<&Urn>> = HashMap::new();
    if !run_settings.destroy {
        for other in prior.resources.values() {
            for d in &other.dependencies {
                users.entry(d).or_default().push(&other.urn);
            }
        }
    }
    for urn in removed {
        let Some(r) = current.resources.get(urn) else { continue };
        // Keep an object that a declared resource used until that resource moved off it.
        let still_used =
            users.get(urn).into_iter().flatten().find(|user| declared.contains(**user) && !succeeded.contains(**user));
        if let Some(user) = still_used {
            failures.push(Failure {
                urn: urn.clone(),
                type_token: r.type_token.clone(),
                message: format!("not deleted: `{user}`, which used it, was not updated"),
            });
            continue;
        }
        items.push((r.clone(), false));
    }
    items.extend(current.retired.iter().cloned().map(|r| (r, true)));
    let waits = delete_dependencies(items.iter().map(|(r, _)| r));
    let mut nodes = Vec::with_capacity(items.len());
    let mut bounds = Vec::with_capacity(items.len());
    for (r, _) in &items {
        let bound = prepared.handler_for_state(&r.provider, &r.type_token);
        nodes.push(DagNode {
            deps: Vec::new(),
            provider: bound.as_ref().map(|b| b.provider.clone()).unwrap_or_default(),
        });
        bounds.push(bound);
    }
    for (i, w) in waits.into_iter().enumerate() {
        nodes[i].deps = w;
    }
    let items = Arc::new(items);
    let bounds = Arc::new(bounds);
    let outcomes = run_dag(&nodes, &prepared.provider_limits, run.settings.parallel, interrupt.clone(), |i, slot| {
        let (run, items, bounds) = (run.clone(), items.clone(), bounds.clone());
        async move {
            let (r, retired) = &items[i];
            let Some(bound) = &bounds[i] else {
                return Err(format!(
                    "no registered provider handles type `{}`; register provider `{}` to delete it",
                    r.type_token, r.provider
                ));
            };
            let op = if *retired { StepOp::DeleteReplaced } else { StepOp::Delete };
            (run.settings.observer)(&Event::StepStarted { urn: r.urn.clone(), op });
            let started = Instant::now();
            match run.delete(r, bound, *retired, Timeouts::default(), &slot).await {
                Ok(()) => {
                    (run.settings.observer)(&Event::StepFinished {
                        urn: r.urn.clone(),
                        op,
                        elapsed: started.elapsed(),
                    });
                    Ok(())
                }
                Err(m) => {
                    if m != NOT_STARTED {
                        (run.settings.observer)(&Event::StepFailed { urn: r.urn.clone(), op, message: m.clone() });
                    }
                    Err(m)
                }
            }
        }
    })
    .await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let (r, _) = &items[i];
        let message = match outcome {
            NodeOutcome::Done(()) => {
                changed += 1;
                continue;
            }
            NodeOutcome::Failed(m) => m,
            NodeOutcome::Skipped(j) => format!("not deleted because deleting `{}` failed", items[j].0.urn),
            NodeOutcome::NotStarted => {
                interrupted = true;
                "not deleted: the update was interrupted".to_string()
            }
        };
        failures.push(Failure { urn: r.urn.clone(), type_token: r.type_token.clone(), message });
    }
    Outcome { changed, failures, interrupted }
}
