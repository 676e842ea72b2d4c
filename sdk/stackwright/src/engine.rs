//! The engine's operations — preview, up, destroy, refresh — over a state backend. Each takes the
//! stack's lock (preview reads without it), loads and compacts the state, reconciles operations
//! a previous run left pending, plans, and applies the plan through the executor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use stackwright_core::value::reveal;
use stackwright_core::{ErrorKind, OpContext, PropertyChange, RawState, Urn};
use stackwright_state::{Backend, LockInfo, OpKind, Record, ResourceState, StackState};
use tokio::sync::watch;

use crate::error::EngineError;
use crate::events::{Event, Observer};
use crate::executor::{self, Failure, RunSettings};
use crate::journal_writer;
use crate::plan::{self, Plan, Prepared};
use crate::refresh::{self, Drift};
use crate::stack::{Program, Stack};

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

/// The result of a preview.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewReport {
    /// The plan.
    pub plan: Plan,
    /// Changes made outside the program, when refreshed.
    pub drift: Vec<Drift>,
    /// Operations a previous run left unconfirmed; the next `up` reconciles them.
    pub pending: usize,
    /// Violations of advisory policies.
    pub policy_warnings: Vec<crate::policy::Violation>,
}

/// The result of an update.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    /// The plan that was applied.
    pub plan: Plan,
    /// Drift found by a refresh before planning.
    pub drift: Vec<Drift>,
    /// Steps that changed something, by kind.
    pub changed: usize,
    /// Every step that failed or was skipped, with the reason.
    pub failures: Vec<Failure>,
    /// Whether the run was interrupted before it finished.
    pub interrupted: bool,
    /// Whether the plan was declined, so nothing ran.
    pub declined: bool,
    /// Pending operations from a previous run that were reconciled.
    pub reconciled: Vec<String>,
    /// Bytes appended to the journal.
    pub journal_bytes: u64,
    /// Journal flushes.
    pub journal_flushes: u64,
    /// Wall time of the whole operation.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl UpReport {
    /// Whether everything succeeded.
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty() && !self.interrupted && !self.declined
    }
}

/// The engine over one state backend.
pub struct Engine {
    backend: Arc<dyn Backend>,
    settings: Settings,
}

/// Runs the program on a blocking thread, where stack references may wait for a backend.
async fn build(
    program: &Program,
    stack: &str,
    settings: &Settings,
    backend: &Arc<dyn Backend>,
) -> Result<Stack, EngineError> {
    let mut s = match &settings.config {
        Some(c) => Stack::with_config(stack, c.clone()),
        None => Stack::new(stack),
    };
    let opener = settings.references.clone();
    let own = backend.clone();
    let handle = tokio::runtime::Handle::current();
    s.references = Some(Arc::new(move |other: &str| {
        let backend = match &opener {
            Some(open) => open(other)?,
            None => own.clone(),
        };
        let state = handle.block_on(backend.load(other)).map_err(|e| e.to_string())?;
        let state = state.ok_or_else(|| format!("stack `{other}` has no state in {}", backend.describe()))?;
        Ok(state.exports)
    }));
    let program = program.clone();
    let built = tokio::task::spawn_blocking(move || program(&mut s).map(|()| s))
        .await
        .map_err(|e| EngineError::Program(anyhow::anyhow!("the program panicked: {e}")))?;
    let mut s = built.map_err(EngineError::Program)?;
    s.references = None;
    Ok(s)
}

impl Engine {
    /// An engine storing state in `backend`.
    pub fn new(backend: Arc<dyn Backend>, settings: Settings) -> Self {
        Engine { backend, settings }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    async fn load(&self, stack: &str) -> Result<StackState, EngineError> {
        Ok(self.backend.load(stack).await?.unwrap_or_else(|| StackState::new(stack)))
    }

    /// Plans an update (or with `destroy`, a destroy) without changing anything.
    pub async fn preview(
        &self,
        stack: &str,
        program: &Program,
        refresh: bool,
        destroy: bool,
    ) -> Result<PreviewReport, EngineError> {
        Ok(self.preview_inner(stack, program, refresh, destroy, false).await?.0)
    }

    /// Plans like `preview` and returns the plan in its saved form too, for `up --plan`.
    pub async fn preview_to_save(
        &self,
        stack: &str,
        program: &Program,
        destroy: bool,
    ) -> Result<(PreviewReport, crate::saved_plan::SavedPlan), EngineError> {
        let (report, fingerprint) = self.preview_inner(stack, program, false, destroy, true).await?;
        let saved = crate::saved_plan::SavedPlan::new(stack, destroy, fingerprint.unwrap_or_default(), &report.plan);
        Ok((report, saved))
    }

    async fn preview_inner(
        &self,
        stack: &str,
        program: &Program,
        refresh: bool,
        destroy: bool,
        fingerprint: bool,
    ) -> Result<(PreviewReport, Option<String>), EngineError> {
        let mut state = self.load(stack).await?;
        // Only a saved plan needs it; it costs a pass over the whole state.
        let state_fingerprint = fingerprint.then(|| crate::saved_plan::fingerprint(&state));
        let mut prepared = plan::prepare(build(program, stack, &self.settings, &self.backend).await?)?;
        let drift =
            if refresh { refresh::refresh_in_memory(&prepared, &mut state, &self.settings).await? } else { Vec::new() };
        let (plan, warnings) = checked_plan(&mut prepared, &state, stack, destroy)?;
        Ok((PreviewReport { plan, drift, pending: state.pending.len(), policy_warnings: warnings }, state_fingerprint))
    }

    /// Applies the program. `confirm` sees the plan and may refuse it.
    pub async fn up(
        &self,
        stack: &str,
        program: &Program,
        refresh: bool,
        confirm: &(dyn Fn(&Plan, &[Drift]) -> bool + Sync),
    ) -> Result<UpReport, EngineError> {
        self.apply_checked(stack, program, refresh, false, confirm, None).await
    }

    /// Applies a saved plan: refused unless planning again now gives exactly its steps from the
    /// same state.
    pub async fn up_with_plan(
        &self,
        stack: &str,
        program: &Program,
        saved: &crate::saved_plan::SavedPlan,
        confirm: &(dyn Fn(&Plan, &[Drift]) -> bool + Sync),
    ) -> Result<UpReport, EngineError> {
        self.apply_checked(stack, program, false, saved.destroy, confirm, Some(saved)).await
    }

    /// Deletes every resource of the stack.
    pub async fn destroy(
        &self,
        stack: &str,
        program: &Program,
        confirm: &(dyn Fn(&Plan, &[Drift]) -> bool + Sync),
    ) -> Result<UpReport, EngineError> {
        self.apply_checked(stack, program, false, true, confirm, None).await
    }

    async fn begin(&self, stack: &str) -> Result<(Box<dyn stackwright_state::StackLock>, StackState), EngineError> {
        let lock = self.backend.lock(stack, LockInfo::current(&self.settings.command)).await?;
        let state = self.load(stack).await?;
        Ok((lock, state))
    }

    async fn apply_checked(
        &self,
        stack: &str,
        program: &Program,
        refresh: bool,
        destroy: bool,
        confirm: &(dyn Fn(&Plan, &[Drift]) -> bool + Sync),
        saved: Option<&crate::saved_plan::SavedPlan>,
    ) -> Result<UpReport, EngineError> {
        let started = Instant::now();
        let started_at = stackwright_state::backend::now_rfc3339();
        let mut prepared = plan::prepare(build(program, stack, &self.settings, &self.backend).await?)?;
        let (_lock, state) = self.begin(stack).await?;
        let shared = Arc::new(Mutex::new(state.clone()));
        let journal = self.backend.open_journal(stack, state.serial).await?;
        let (writer, writer_task) = journal_writer::spawn(journal, shared.clone());

        let result = async {
            let reconciled = reconcile(&prepared, &state, &writer, &self.settings).await?;
            let mut state = shared.lock().expect("state lock").clone();
            let drift = if refresh {
                let drift = refresh::refresh_in_memory(&prepared, &mut state, &self.settings).await?;
                let records = refresh::drift_records(&drift);
                writer.write(records).await.map_err(|m| EngineError::Reconcile {
                    resource: "(refresh)".into(),
                    kind: "refresh".into(),
                    message: m,
                })?;
                drift
            } else {
                Vec::new()
            };
            let fingerprint_before = saved.map(|_| crate::saved_plan::fingerprint(&state)).unwrap_or_default();
            let (plan, warnings) = checked_plan(&mut prepared, &state, stack, destroy)?;
            if let Some(reason) = saved.and_then(|s| s.mismatch(destroy, &fingerprint_before, &plan)) {
                return Err(EngineError::PlanMismatch(reason));
            }
            for w in &warnings {
                (self.settings.observer)(&Event::PolicyWarning { violation: w.clone() });
            }
            if !self.backend.seals_secrets() && needs_secrets(&prepared, &plan) {
                return Err(EngineError::State(stackwright_state::StateError::Secrets {
                    stack: stack.to_owned(),
                    source: stackwright_state::SecretsError::NoProvider,
                }));
            }
            if !confirm(&plan, &drift) {
                return Ok::<_, EngineError>((plan, drift, None, reconciled));
            }
            let settings = RunSettings { settings: self.settings.clone(), destroy };
            let outcome =
                executor::execute(Arc::new(prepared), Arc::new(state), shared.clone(), writer.clone(), &settings).await;
            Ok((plan, drift, Some(outcome), reconciled))
        }
        .await;
        drop(writer);
        let stats = writer_task.await.map_err(|e| EngineError::Reconcile {
            resource: "(journal)".into(),
            kind: "write".into(),
            message: e.to_string(),
        })??;
        let final_state = shared.lock().expect("state lock").clone();
        // Compact whatever became durable, even when the run failed; a run that recorded
        // nothing (refused, or nothing to do) leaves the files untouched.
        if stats.flushes > 0 {
            self.backend.write_snapshot(&final_state).await?;
        }
        let (outcome_word, changes) = match &result {
            Err(EngineError::Protected(_) | EngineError::Check(_) | EngineError::Policy(_)) => {
                ("refused", BTreeMap::new())
            }
            Err(_) => ("failed", BTreeMap::new()),
            Ok((_, _, None, _)) => ("cancelled", BTreeMap::new()),
            Ok((plan, _, Some(o), _)) => {
                let word = if o.interrupted {
                    "interrupted"
                } else if o.failures.is_empty() {
                    "succeeded"
                } else {
                    "failed"
                };
                let c = plan.counts();
                let counts = [("create", c.create), ("update", c.update), ("replace", c.replace), ("delete", c.delete)];
                (word, counts.into_iter().filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_string(), n)).collect())
            }
        };
        self.record_history(stack, started_at, outcome_word, changes).await?;
        let (plan, drift, outcome, reconciled) = result?;
        let declined = outcome.is_none();
        let (changed, failures, interrupted) = match outcome {
            Some(o) => (o.changed, o.failures, o.interrupted),
            None => (0, Vec::new(), false),
        };
        Ok(UpReport {
            plan,
            drift,
            changed,
            failures,
            interrupted,
            declined,
            reconciled,
            journal_bytes: stats.bytes,
            journal_flushes: stats.flushes,
            elapsed: started.elapsed(),
        })
    }

    async fn record_history(
        &self,
        stack: &str,
        started_at: String,
        result: &str,
        changes: BTreeMap<String, usize>,
    ) -> Result<(), EngineError> {
        let me = LockInfo::current(&self.settings.command);
        let entry = stackwright_state::HistoryEntry {
            started_at,
            finished_at: stackwright_state::backend::now_rfc3339(),
            user: me.user,
            host: me.host,
            command: self.settings.command.clone(),
            result: result.to_owned(),
            changes,
        };
        Ok(self.backend.append_history(stack, &entry).await?)
    }

    /// Reads every resource and records what changed outside the program.
    pub async fn refresh(&self, stack: &str, program: &Program) -> Result<Vec<Drift>, EngineError> {
        let started_at = stackwright_state::backend::now_rfc3339();
        let prepared = plan::prepare(build(program, stack, &self.settings, &self.backend).await?)?;
        let (_lock, state) = self.begin(stack).await?;
        let shared = Arc::new(Mutex::new(state.clone()));
        let journal = self.backend.open_journal(stack, state.serial).await?;
        let (writer, writer_task) = journal_writer::spawn(journal, shared.clone());
        let result = async {
            reconcile(&prepared, &state, &writer, &self.settings).await?;
            let mut state = shared.lock().expect("state lock").clone();
            let drift = refresh::refresh_in_memory(&prepared, &mut state, &self.settings).await?;
            writer.write(refresh::drift_records(&drift)).await.map_err(|m| EngineError::Reconcile {
                resource: "(refresh)".into(),
                kind: "refresh".into(),
                message: m,
            })?;
            Ok(drift)
        }
        .await;
        drop(writer);
        let stats = writer_task.await.map_err(|e| EngineError::Reconcile {
            resource: "(journal)".into(),
            kind: "write".into(),
            message: e.to_string(),
        })??;
        // Nothing drifted and nothing was reconciled: leave the files as they are.
        if stats.flushes > 0 {
            let final_state = shared.lock().expect("state lock").clone();
            self.backend.write_snapshot(&final_state).await?;
        }
        let (word, changes) = match &result {
            Ok(drift) => {
                ("succeeded", [("drifted".to_string(), drift.len())].into_iter().filter(|(_, n)| *n > 0).collect())
            }
            Err(_) => ("failed", BTreeMap::new()),
        };
        self.record_history(stack, started_at, word, changes).await?;
        result
    }

    /// Adopts an existing object into the stack as resource `name`, read through the provider's
    /// `import`. The program must register a provider for `type_token`; if it already declares
    /// `name`, that declaration's dependencies and options are recorded too.
    pub async fn import(
        &self,
        stack: &str,
        program: &Program,
        type_token: &str,
        name: &str,
        id: &str,
    ) -> Result<ResourceState, EngineError> {
        let fail = |message: String| EngineError::Import { resource: name.to_owned(), message };
        let prepared = plan::prepare(build(program, stack, &self.settings, &self.backend).await?)?;
        let bound = prepared.handler_for_state("", type_token).ok_or_else(|| {
            fail(format!("no registered provider handles type `{type_token}`; register it in the program"))
        })?;
        let (_lock, state) = self.begin(stack).await?;
        let urn = Urn::from(name);
        if let Some(existing) = state.resources.get(&urn) {
            return Err(fail(format!("the stack already has a resource named `{name}` (id {})", existing.id)));
        }
        let ctx = OpContext { urn: urn.clone(), stack: stack.to_owned(), operation_id: format!("import-{id}") };
        let handler = bound.handler.clone();
        let observed = crate::retry::call_with_retry(
            &self.settings.retry,
            &self.settings.observer,
            &urn,
            "import",
            Duration::from_secs(300),
            &[],
            || handler.import(&ctx, id),
        )
        .await
        .map_err(|e| fail(e.message(&[])))?
        .ok_or_else(|| fail(format!("no `{type_token}` with id `{id}` exists")))?;
        let declared = prepared.regs.iter().find(|r| r.urn == urn);
        let inputs = plan::mark_secret_fields(observed.args, handler.args_schema());
        let outputs = plan::mark_secret_outputs(observed.outputs, handler.outputs_schema(), &inputs);
        let resource = ResourceState {
            urn: urn.clone(),
            type_token: type_token.to_owned(),
            provider: bound.provider.clone(),
            id: observed.id,
            inputs,
            outputs,
            dependencies: declared.map(|r| r.deps.clone()).unwrap_or_default(),
            protect: declared.is_some_and(|r| r.opts.protect),
            retain_on_delete: declared.is_some_and(|r| r.opts.retain_on_delete),
        };
        let record = Record::Upsert { op: None, resource: resource.clone(), retire_previous: false };
        let mut journal = self.backend.open_journal(stack, state.serial).await?;
        journal.append(std::slice::from_ref(&record)).await?;
        let mut next = state;
        next.apply(&record);
        self.backend.write_snapshot(&next).await?;
        Ok(resource)
    }

    /// Edits the stack's state under its lock: `edit` sees the state and returns the records to
    /// apply (or an error, and nothing changes). For `state rm`, `state mv` and the like.
    pub async fn edit_state(
        &self,
        stack: &str,
        edit: impl FnOnce(&StackState) -> Result<Vec<Record>, EngineError>,
    ) -> Result<(), EngineError> {
        let started_at = stackwright_state::backend::now_rfc3339();
        let (_lock, state) = self.begin(stack).await?;
        let records = edit(&state)?;
        if records.is_empty() {
            return Ok(());
        }
        let mut journal = self.backend.open_journal(stack, state.serial).await?;
        journal.append(&records).await?;
        let mut next = state;
        records.iter().for_each(|r| next.apply(r));
        self.backend.write_snapshot(&next).await?;
        self.record_history(stack, started_at, "succeeded", BTreeMap::new()).await
    }

    /// The stack's current state (snapshot plus journal).
    pub async fn state(&self, stack: &str) -> Result<Option<StackState>, EngineError> {
        Ok(self.backend.load(stack).await?)
    }
}

/// Matches the program to the state and plans, refusing plans with failed checks or that would
/// delete or replace protected resources.
fn checked_plan(
    prepared: &mut Prepared,
    state: &StackState,
    stack: &str,
    destroy: bool,
) -> Result<(Plan, Vec<crate::policy::Violation>), EngineError> {
    plan::match_state(prepared, state);
    let planned = plan::plan(prepared, state, destroy)?;
    if !planned.check_failures.is_empty() {
        return Err(EngineError::Check(planned.check_failures));
    }
    if !planned.protected.is_empty() {
        return Err(EngineError::Protected(planned.protected));
    }
    let violations = crate::policy::evaluate(&prepared.policies, stack, &prepared.config, &planned.plan);
    let (mandatory, advisory): (Vec<_>, Vec<_>) =
        violations.into_iter().partition(|v| v.enforcement == crate::policy::Enforcement::Mandatory);
    if !mandatory.is_empty() {
        return Err(EngineError::Policy(mandatory.into_iter().chain(advisory).collect()));
    }
    Ok((planned.plan, advisory))
}

/// Whether applying the plan would store a secret: a secret argument, or a provider output the
/// schema marks secret.
fn needs_secrets(prepared: &Prepared, plan: &Plan) -> bool {
    let index: HashMap<&Urn, usize> = prepared.regs.iter().enumerate().map(|(i, r)| (&r.urn, i)).collect();
    plan.steps.iter().filter(|s| s.op.is_change()).any(|step| {
        let secret_outputs =
            index.get(&step.urn).is_some_and(|i| prepared.bound[*i].handler.outputs_schema().iter().any(|f| f.secret));
        secret_outputs
            || step.changes.iter().any(|c| c.new.as_ref().is_some_and(stackwright_core::value::contains_secret))
    })
}

/// Settles operations a previous run started but never confirmed: a create is adopted if the
/// provider finds what it made and forgotten otherwise; an update is re-read; a delete is
/// confirmed if the object is gone.
async fn reconcile(
    prepared: &Prepared,
    state: &StackState,
    writer: &journal_writer::JournalHandle,
    settings: &Settings,
) -> Result<Vec<String>, EngineError> {
    let mut done = Vec::new();
    for (op, pending) in &state.pending {
        let fail = |message: String| EngineError::Reconcile {
            resource: pending.urn.to_string(),
            kind: format!("{:?}", pending.kind).to_lowercase(),
            message,
        };
        let bound = prepared.handler_for_state(&pending.provider, &pending.type_token).ok_or_else(|| {
            fail(format!(
                "no registered provider handles type `{}`; register provider `{}` in the program",
                pending.type_token, pending.provider
            ))
        })?;
        let ctx = OpContext { urn: pending.urn.clone(), stack: state.stack.clone(), operation_id: op.clone() };
        let plain_inputs = reveal(pending.inputs.clone()).0;
        let existing = state.resources.get(&pending.urn);
        let record = match pending.kind {
            OpKind::Create => match bound.handler.find(&ctx, &plain_inputs).await.map_err(|e| fail(e.to_string()))? {
                Some((id, outputs)) => {
                    let outputs = plan::mark_secret_outputs(outputs, bound.handler.outputs_schema(), &pending.inputs);
                    let reg = prepared.regs.iter().find(|r| r.urn == pending.urn);
                    let resource = ResourceState {
                        urn: pending.urn.clone(),
                        type_token: pending.type_token.clone(),
                        provider: bound.provider.clone(),
                        id,
                        inputs: pending.inputs.clone(),
                        outputs,
                        dependencies: reg.map(|r| r.deps.clone()).unwrap_or_default(),
                        protect: reg.is_some_and(|r| r.opts.protect),
                        retain_on_delete: reg.is_some_and(|r| r.opts.retain_on_delete),
                    };
                    // A create that finds its name taken was the new half of a replacement.
                    let retire_previous = existing.is_some_and(|e| e.id != resource.id);
                    done.push(format!("{}: adopted the object an interrupted create made", pending.urn));
                    Record::Upsert { op: Some(op.clone()), resource, retire_previous }
                }
                None => {
                    done.push(format!("{}: an interrupted create made nothing; forgotten", pending.urn));
                    Record::Abort { op: op.clone() }
                }
            },
            OpKind::Update | OpKind::Delete => {
                let id = pending.id.clone().unwrap_or_default();
                let stored = state
                    .resources
                    .get(&pending.urn)
                    .filter(|r| r.id == id)
                    .or_else(|| state.retired.iter().find(|r| r.urn == pending.urn && r.id == id));
                match stored {
                    None => Record::Abort { op: op.clone() },
                    Some(stored) => {
                        let raw = RawState {
                            id: id.clone(),
                            args: reveal(stored.inputs.clone()).0,
                            outputs: reveal(stored.outputs.clone()).0,
                        };
                        let read = bound.handler.read(&ctx, &raw).await;
                        let read = match read {
                            Err(e) if e.kind == ErrorKind::NotFound => None,
                            other => other.map_err(|e| fail(e.to_string()))?,
                        };
                        let retired = state.resources.get(&pending.urn).is_none_or(|r| r.id != id);
                        match read {
                            None if retired => {
                                done.push(format!(
                                    "{}: an interrupted delete of a replaced object finished",
                                    pending.urn
                                ));
                                Record::RemoveRetired { op: Some(op.clone()), urn: pending.urn.clone(), id }
                            }
                            None => {
                                done.push(format!("{}: the object is gone; removed from state", pending.urn));
                                Record::Remove { op: Some(op.clone()), urn: pending.urn.clone() }
                            }
                            Some(_) if pending.kind == OpKind::Delete || retired => Record::Abort { op: op.clone() },
                            Some(observed) => {
                                let resource = refresh::observed_state(stored, observed, bound.handler.as_ref());
                                done.push(format!("{}: re-read after an interrupted update", pending.urn));
                                Record::Upsert { op: Some(op.clone()), resource, retire_previous: false }
                            }
                        }
                    }
                }
            }
        };
        writer.write(vec![record]).await.map_err(fail)?;
        (settings.observer)(&Event::Reconciled {
            urn: pending.urn.clone(),
            message: done.last().cloned().unwrap_or_default(),
        });
    }
    Ok(done)
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

/// Exports evaluated against the outputs in `live`; unknown ones are left out.
pub(crate) fn evaluate_exports(
    prepared: &Prepared,
    live: &HashMap<Urn, (String, Value)>,
) -> std::collections::BTreeMap<String, Value> {
    let known: HashMap<Urn, (Option<String>, Value)> =
        live.iter().map(|(u, (id, o))| (u.clone(), (Some(id.clone()), o.clone()))).collect();
    let resolver: Arc<dyn stackwright_core::Resolve> = Arc::new(plan::MapResolver(known));
    prepared
        .exports
        .iter()
        .filter_map(|(name, f)| {
            let v = stackwright_core::resolve_with(resolver.clone(), || f()).ok()?;
            (!stackwright_core::value::contains_unknown(&v)).then(|| (name.clone(), v))
        })
        .collect()
}

impl Engine {
    /// The program's dependency graph, built with this engine's configuration and checked for
    /// declaration errors (cycles, duplicate names, unknown providers) exactly as `preview`
    /// checks them; the stack's state is not read.
    pub async fn graph(&self, stack: &str, program: &Program) -> Result<crate::graph::Graph, EngineError> {
        let built = build(program, stack, &self.settings, &self.backend).await?;
        let graph = crate::graph::Graph::of(&built);
        plan::prepare(built)?;
        Ok(graph)
    }
}
