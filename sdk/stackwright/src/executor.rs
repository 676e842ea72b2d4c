//! Runs a plan exactly: the schedule's nodes run as a DAG (a node only after the nodes it waits
//! for succeeded), each through the step runner. A declared resource's step resolves its
//! arguments with real outputs and is checked against the plan (it may do less than shown, never
//! more), against the provider's checks and against mandatory policies before anything is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use stackwright_core::Urn;
use stackwright_core::value::{contains_unknown, reveal, scrub, secret_strings};
use stackwright_state::{Record, ResourceState, StackState};
use tokio::sync::watch;

use crate::engine::evaluate_exports;
use crate::events::Event;
use crate::failure::{Failure, FailureReason, StepError};
use crate::journal_writer::JournalHandle;
use crate::options::Timeouts;
use crate::plan::{Plan, PlannedStep, StepOp};
use crate::planner::{Bound, Decision, Prepared, Schedule, Work, decide, mark_secret_outputs, resolve_args};
use crate::policy::Enforcement;
use crate::runner::{Call, Reply, Request, Runner, Stop};
use crate::scheduler::{DagNode, NodeOutcome, NodeStop, Slot, run_dag};
use crate::settings::Settings;
use crate::stack::Registration;

/// What an update did.
pub(crate) struct Outcome {
    pub changed: usize,
    pub failures: Vec<Failure>,
    pub interrupted: bool,
}

/// The plan being run and what is known so far.
struct Exec {
    prepared: Arc<Prepared>,
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    prior: Arc<StackState>,
    /// Ids and outputs of resources this run applied; every other resource is as in `prior`.
    /// Only the changes are kept, so a run over a large state copies nothing of it.
    live: Mutex<HashMap<Urn, (String, Value)>>,
    /// The plan step of each declared resource.
    step_of_reg: Vec<usize>,
    runner: Runner,
}

/// Resolves outputs from the resources a run applied, then from the state it started from.
struct Overlay {
    prior: Arc<StackState>,
    live: HashMap<Urn, (String, Value)>,
}

impl stackwright_core::Resolve for Overlay {
    fn lookup(&self, urn: &Urn) -> Option<stackwright_core::ResolvedResource<'_>> {
        let (id, outputs) = match self.live.get(urn) {
            Some((id, outputs)) => (id, outputs),
            None => self.prior.resources.get(urn).map(|r| (&r.id, &r.outputs))?,
        };
        Some(stackwright_core::ResolvedResource { id: Some(id), outputs })
    }
}

fn secrets_of(values: &[&Value]) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        secret_strings(v, &mut out);
    }
    out
}

/// The first field whose change makes `decision` a replacement (or any change, for an update).
fn deciding_path(decision: &Decision) -> Option<stackwright_core::Path> {
    let replacing = decision.changes.iter().find(|c| c.replaces);
    replacing.or(decision.changes.first()).map(|c| c.path.clone())
}

impl Exec {
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

    /// A resource's id and outputs as they are now.
    fn known(&self, urn: &Urn) -> Option<(String, Value)> {
        if let Some(found) = self.live.lock().expect("live lock").get(urn) {
            return Some(found.clone());
        }
        self.prior.resources.get(urn).map(|r| (r.id.clone(), r.outputs.clone()))
    }

    /// Whether a step planned `Same` is sure to stay so: every dependency was planned `Same`
    /// under its own name, so the arguments resolve from exactly the outputs the plan used and
    /// were checked (provider checks, policies) at plan time. Its step then only records what
    /// changed about the resource besides its arguments.
    fn settled(&self, i: usize, step: &PlannedStep) -> bool {
        step.op == StepOp::Same
            && step.inputs.as_ref().is_some_and(|v| !contains_unknown(v))
            && self.prepared.deps[i].iter().all(|&d| {
                let dep = &self.plan.steps[self.step_of_reg[d]];
                dep.op == StepOp::Same && dep.renamed_from.is_none()
            })
    }

    /// The records a settled `Same` step writes (a rename, changed flags or dependencies), if any.
    fn same_records(&self, i: usize, old: &ResourceState, mut before: Vec<Record>) -> Vec<Record> {
        let (reg, bound) = (&self.prepared.regs[i], &self.prepared.bound[i]);
        let kept = old.type_token == reg.type_token
            && old.provider == bound.provider
            && old.dependencies == reg.deps
            && old.protect == reg.opts.protect
            && old.retain_on_delete == reg.opts.retain_on_delete;
        if !kept {
            let current = self.state_of(reg, bound, old.id.clone(), old.inputs.clone(), old.outputs.clone());
            before.push(Record::Upsert { op: None, resource: current, retire_previous: false });
        }
        before
    }

    fn observe(&self, event: Event) {
        (self.runner.settings.observer)(&event)
    }

    /// Resolves, re-decides and checks a declared resource's step against the plan; returns the
    /// decision to carry out.
    fn check_against_plan(&self, i: usize, step: &PlannedStep) -> Result<Decision, StepError> {
        let prepared = &self.prepared;
        let (reg, bound) = (&prepared.regs[i], &prepared.bound[i]);
        let old = prepared.previous[i].as_ref().and_then(|u| self.prior.resources.get(u));
        let resolved = resolve_args(reg, |d| self.known(d).map(|(id, o)| (Some(id), o))).map_err(|message| {
            // A failing closure may quote the secrets it was given: its dependencies' outputs.
            let deps: Vec<Value> = reg.deps.iter().filter_map(|d| self.known(d).map(|(_, o)| o)).collect();
            StepError::Arguments { message: scrub(&message, &secrets_of(&deps.iter().collect::<Vec<_>>())) }
        })?;
        let decision = decide(reg, bound, old, resolved, None);
        let mut secrets = secrets_of(&[&decision.inputs]);
        if let Some(old) = old {
            secrets.extend(secrets_of(&[&old.inputs, &old.outputs]));
        }
        if decision.op.rank() > step.op.rank() {
            return Err(StepError::PlanChanged {
                planned: format!("{} `{}`", step.op.verb(), reg.urn).replace("leave unchanged", "no change to"),
                now: decision.op.verb().to_owned(),
                path: deciding_path(&decision),
            });
        }
        if contains_unknown(&decision.inputs) {
            return Err(StepError::Arguments {
                message: "an argument is still unknown although the resources it comes from were applied".into(),
            });
        }
        let failures = bound.handler.check(&reveal(decision.inputs.clone()).0);
        if !failures.is_empty() {
            let failures = failures
                .into_iter()
                .map(|mut f| {
                    f.message = scrub(&f.message, &secrets);
                    f
                })
                .collect();
            return Err(StepError::Check { failures });
        }
        if !prepared.policies.is_empty() {
            let resolved_step =
                Plan { steps: vec![PlannedStep { inputs: Some(decision.inputs.clone()), ..step.clone() }] };
            let violations: Vec<_> =
                crate::policy::evaluate(&prepared.policies, &self.runner.stack, &prepared.config, &resolved_step)
                    .into_iter()
                    .filter(|v| v.enforcement == Enforcement::Mandatory)
                    .map(|mut v| {
                        v.message = scrub(&v.message, &secrets);
                        v
                    })
                    .collect();
            if !violations.is_empty() {
                return Err(StepError::Policy { violations });
            }
        }
        Ok(decision)
    }

    /// A declared resource's step (the create half, for a delete-before-create replacement).
    async fn apply(&self, i: usize, step: &PlannedStep, slot: &Slot) -> Result<StepOp, Stop> {
        let prepared = &self.prepared;
        let (reg, bound) = (&prepared.regs[i], &prepared.bound[i]);
        let old = prepared.previous[i].as_ref().and_then(|u| self.prior.resources.get(u));
        let mut before = Vec::new();
        let renamed = prepared.previous[i].as_ref().filter(|p| **p != reg.urn);
        let delete_first = step.op == (StepOp::Replace { delete_before_create: true });
        if let Some(from) = renamed
            && !delete_first
        {
            before.push(Record::Rename { from: from.clone(), to: reg.urn.clone() });
        }
        if let Some(old) = old
            && self.settled(i, step)
        {
            self.runner.write(self.same_records(i, old, before)).await?;
            if renamed.is_some() {
                self.live.lock().expect("live lock").insert(reg.urn.clone(), (old.id.clone(), old.outputs.clone()));
            }
            return Ok(StepOp::Same);
        }
        let decision = self.check_against_plan(i, step)?;
        let timeouts = reg.opts.timeouts.unwrap_or_default();
        let inputs = decision.inputs.clone();
        let done = match (step.op, old) {
            (StepOp::Replace { .. }, _) | (StepOp::Create, _) | (_, None) => {
                let retire = matches!(step.op, StepOp::Replace { delete_before_create: false });
                let call = Call::Create { inputs: inputs.clone() };
                let reply = self
                    .runner
                    .run(self.request(reg, bound, call, timeouts.create, slot, before), |reply, op| {
                        let Reply::Created { id, outputs } = reply else { return Vec::new() };
                        let outputs = mark_secret_outputs(outputs.clone(), bound.handler.outputs_schema(), &inputs);
                        let resource = self.state_of(reg, bound, id.clone(), inputs.clone(), outputs);
                        vec![Record::Upsert { op, resource, retire_previous: retire }]
                    })
                    .await?;
                if let Reply::Created { id, outputs } = reply {
                    let outputs = mark_secret_outputs(outputs, bound.handler.outputs_schema(), &inputs);
                    self.live.lock().expect("live lock").insert(reg.urn.clone(), (id, outputs));
                }
                step.op
            }
            (_, Some(old)) if decision.op == StepOp::Update => {
                let call = Call::Update { stored: old.clone(), inputs: inputs.clone(), changes: decision.changes };
                let reply = self
                    .runner
                    .run(self.request(reg, bound, call, timeouts.update, slot, before), |reply, op| {
                        let Reply::Updated { outputs } = reply else { return Vec::new() };
                        let outputs = mark_secret_outputs(outputs.clone(), bound.handler.outputs_schema(), &inputs);
                        let resource = self.state_of(reg, bound, old.id.clone(), inputs.clone(), outputs);
                        vec![Record::Upsert { op, resource, retire_previous: false }]
                    })
                    .await?;
                if let Reply::Updated { outputs } = reply {
                    let outputs = mark_secret_outputs(outputs, bound.handler.outputs_schema(), &inputs);
                    self.live.lock().expect("live lock").insert(reg.urn.clone(), (old.id.clone(), outputs));
                }
                StepOp::Update
            }
            (_, Some(old)) => {
                // Same (as planned, or an update whose change turned out to be none).
                self.runner.write(self.same_records(i, old, before)).await?;
                self.live.lock().expect("live lock").insert(reg.urn.clone(), (old.id.clone(), old.outputs.clone()));
                StepOp::Same
            }
        };
        Ok(done)
    }

    fn request<'a>(
        &self,
        reg: &'a Registration,
        bound: &'a Bound,
        call: Call,
        timeout: std::time::Duration,
        slot: &'a Slot,
        before: Vec<Record>,
    ) -> Request<'a> {
        Request { before, ..Request::new(&reg.urn, reg.type_token, bound, call, timeout, slot) }
    }

    /// Deletes a stored object; `finish` is the record that completes it.
    async fn delete(
        &self,
        old: &ResourceState,
        timeout: std::time::Duration,
        slot: &Slot,
        finish: impl FnOnce(Option<String>) -> Record,
    ) -> Result<(), Stop> {
        if old.retain_on_delete {
            return Ok(self.runner.write(vec![finish(None)]).await?);
        }
        let bound = self
            .prepared
            .handler_for_state(&old.provider, &old.type_token)
            .ok_or_else(|| StepError::NoProvider { message: Prepared::missing_provider(old, "delete it") })?;
        let request =
            Request::new(&old.urn, &old.type_token, &bound, Call::Delete { stored: old.clone() }, timeout, slot);
        self.runner.run(request, |_, op| vec![finish(op)]).await.map(|_| ())
    }

    /// Runs one node of the schedule.
    async fn node(&self, n: usize, slot: &Slot) -> Result<StepOp, Stop> {
        let node = &self.schedule.nodes[n];
        let step = &self.plan.steps[node.step];
        let announce = match node.work {
            Work::Apply { .. } => step.op.is_change() && step.op != (StepOp::Replace { delete_before_create: true }),
            Work::DeleteOld { .. } | Work::Delete { .. } => true,
            Work::RetireOld { .. } => false,
        };
        if announce {
            self.observe(Event::StepStarted { urn: step.urn.clone(), op: step.op });
        }
        let started = Instant::now();
        let result = match &node.work {
            Work::Apply { reg } => self.apply(*reg, step, slot).await,
            Work::DeleteOld { reg, old } => {
                let timeout = self.prepared.regs[*reg].opts.timeouts.unwrap_or_default().delete;
                let urn = old.urn.clone();
                self.delete(old, timeout, slot, |op| Record::Remove { op, urn }).await.map(|()| step.op)
            }
            Work::RetireOld { reg, old } => {
                let timeout = self.prepared.regs[*reg].opts.timeouts.unwrap_or_default().delete;
                let (urn, id) = (old.urn.clone(), old.id.clone());
                self.delete(old, timeout, slot, |op| Record::RemoveRetired { op, urn, id }).await.map(|()| step.op)
            }
            Work::Delete { old, retired } => {
                let (urn, id, retired) = (old.urn.clone(), old.id.clone(), *retired);
                self.delete(old, Timeouts::default().delete, slot, move |op| {
                    if retired { Record::RemoveRetired { op, urn, id } } else { Record::Remove { op, urn } }
                })
                .await
                .map(|()| step.op)
            }
        };
        match &result {
            Ok(op) if op.is_change() && !matches!(node.work, Work::DeleteOld { .. } | Work::RetireOld { .. }) => {
                self.observe(Event::StepFinished { urn: step.urn.clone(), op: *op, elapsed: started.elapsed() })
            }
            Err(NodeStop::Failed(e)) => {
                self.observe(Event::StepFailed { urn: step.urn.clone(), op: step.op, message: e.to_string() })
            }
            _ => {}
        }
        result
    }
}

/// Runs the plan's schedule. Never returns early: every outcome is reported.
pub(crate) async fn execute(
    prepared: Arc<Prepared>,
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    prior: Arc<StackState>,
    journal: JournalHandle,
    settings: &Settings,
    destroy: bool,
) -> Outcome {
    let runner = Runner { journal, settings: settings.clone(), stack: prior.stack.clone(), defer_results: true };
    let mut step_of_reg = vec![usize::MAX; prepared.regs.len()];
    for node in &schedule.nodes {
        if let Work::Apply { reg } = node.work {
            step_of_reg[reg] = node.step;
        }
    }
    let exec = Arc::new(Exec {
        prepared: prepared.clone(),
        plan: plan.clone(),
        schedule: schedule.clone(),
        prior: prior.clone(),
        live: Mutex::new(HashMap::new()),
        step_of_reg,
        runner,
    });
    let interrupt = settings.interrupt.clone().unwrap_or_else(|| watch::channel(false).1);
    let dag: Vec<DagNode> =
        schedule.nodes.iter().map(|n| DagNode { deps: n.deps.clone(), provider: n.provider.clone() }).collect();
    // An update that changes nothing (every step settled and `Same`, with nothing to record) has
    // nothing to schedule: it costs a pass over the plan, not a task per resource.
    let nothing_to_do = !*interrupt.borrow()
        && schedule.nodes.iter().all(|node| match node.work {
            Work::Apply { reg } => {
                let step = &plan.steps[node.step];
                let old = prepared.previous[reg].as_ref().and_then(|u| prior.resources.get(u));
                step.renamed_from.is_none()
                    && old.is_some_and(|old| {
                        exec.settled(reg, step) && exec.same_records(reg, old, Vec::new()).is_empty()
                    })
            }
            _ => false,
        });
    let outcomes = if nothing_to_do {
        schedule.nodes.iter().map(|_| NodeOutcome::Done(StepOp::Same)).collect()
    } else {
        run_dag(&dag, &prepared.provider_limits, settings.parallel, interrupt.clone(), |n, slot| {
            let exec = exec.clone();
            async move { exec.node(n, &slot).await }
        })
        .await
    };

    // One report per step: its first failure, else its first skipped or unstarted node.
    let mut failures: Vec<Option<Failure>> = (0..plan.steps.len()).map(|_| None).collect();
    let mut done: Vec<Option<StepOp>> = (0..plan.steps.len()).map(|_| None).collect();
    let mut interrupted = false;
    for (n, outcome) in outcomes.into_iter().enumerate() {
        let node = &schedule.nodes[n];
        let step = &plan.steps[node.step];
        let deleting = matches!(node.work, Work::Delete { .. } | Work::DeleteOld { .. } | Work::RetireOld { .. });
        let reason = match outcome {
            NodeOutcome::Done(op) => {
                if !matches!(node.work, Work::DeleteOld { .. } | Work::RetireOld { .. }) {
                    done[node.step] = Some(op);
                }
                continue;
            }
            NodeOutcome::Failed(error) => FailureReason::Failed { error },
            NodeOutcome::Skipped(j) => {
                let because = plan.steps[schedule.nodes[j].step].urn.clone();
                let keeps_old = matches!(node.work, Work::RetireOld { .. } | Work::Delete { retired: true, .. });
                if keeps_old && because != step.urn {
                    FailureReason::KeptReplaced { because }
                } else {
                    FailureReason::Skipped { because }
                }
            }
            NodeOutcome::NotStarted => {
                interrupted = true;
                FailureReason::NotStarted
            }
        };
        let replace = match &failures[node.step] {
            None => true,
            Some(f) => {
                !matches!(f.reason, FailureReason::Failed { .. }) && matches!(reason, FailureReason::Failed { .. })
            }
        };
        if replace {
            failures[node.step] = Some(Failure::new(step.urn.clone(), step.type_token.clone(), reason, deleting));
        }
    }
    let changed = done
        .iter()
        .zip(&plan.steps)
        .filter(|(d, s)| d.is_some_and(|op| op.is_change() || s.renamed_from.is_some()))
        .count();
    let mut failures: Vec<Failure> = failures.into_iter().flatten().collect();
    if let Err(error) = exec.runner.journal.flush().await {
        failures.push(Failure::new(
            Urn::from("(journal)"),
            String::new(),
            FailureReason::Failed { error: StepError::Journal { message: error } },
            false,
        ));
    }
    let exports = if destroy {
        Default::default()
    } else {
        let live = std::mem::take(&mut *exec.live.lock().expect("live lock"));
        evaluate_exports(&prepared, Arc::new(Overlay { prior: prior.clone(), live }))
    };
    // Unchanged exports are not written again, so an update that changes nothing writes nothing.
    if exports != prior.exports
        && let Err(error) = exec.runner.write(vec![Record::Exports { exports }]).await
    {
        failures.push(Failure::new(Urn::from("(exports)"), String::new(), FailureReason::Failed { error }, false));
    }
    interrupted |= *interrupt.borrow();
    Outcome { changed, failures, interrupted }
}
