//! The engine's operations — preview, up, destroy, refresh — over a state backend. Each takes the
//! stack's lock (preview reads without it), loads and compacts the state, reconciles operations
//! a previous run left pending, plans, and applies the plan through the executor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use stackwright_core::{Found, Urn};
use stackwright_state::{Backend, LockInfo, OpKind, Record, ResourceState, StackState};

use crate::diagnostic::Diagnostic;
use crate::error::{EngineError, UncertainOperation};
use crate::events::Event;
use crate::executor;
use crate::failure::{Failure, StepError};
use crate::journal_writer;
use crate::plan::Plan;
use crate::planner::{self as plan, Prepared, Schedule};
use crate::refresh::{self, Drift};
use crate::runner::{Call, Reply, Request, Runner};
use crate::scheduler::{DagNode, NodeOutcome, Slot, run_dag};
use crate::stack::{Program, Stack};

pub use crate::settings::{RetryPolicy, Settings, StackOpener};

/// How to preview.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PreviewOptions {
    /// Read every resource first and plan against what exists (nothing is recorded).
    pub refresh: bool,
    /// Plan the deletion of every resource instead of an update.
    pub destroy: bool,
}

impl PreviewOptions {
    /// A preview that refreshes first.
    pub fn refreshed() -> Self {
        PreviewOptions { refresh: true, ..Self::default() }
    }
}

/// How to update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpOptions {
    /// Read every resource first, record the drift and repair it.
    pub refresh: bool,
}

impl UpOptions {
    /// An update that refreshes first.
    pub fn refreshed() -> Self {
        UpOptions { refresh: true }
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
    /// Everything worth telling about resources (policy warnings, drift), in one shape.
    pub diagnostics: Vec<crate::diagnostic::Diagnostic>,
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
    /// Everything worth telling about resources (failures, drift), in one shape.
    pub diagnostics: Vec<crate::diagnostic::Diagnostic>,
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
        options: PreviewOptions,
    ) -> Result<PreviewReport, EngineError> {
        Ok(self.preview_inner(stack, program, options.refresh, options.destroy, false).await?.0)
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
        let (plan, _, warnings) = checked_plan(&mut prepared, &state, stack, destroy)?;
        let mut diagnostics: Vec<Diagnostic> = warnings.iter().map(Diagnostic::from).collect();
        diagnostics.extend(drift.iter().flat_map(Diagnostic::drift));
        let report =
            PreviewReport { plan, drift, pending: state.pending.len(), policy_warnings: warnings, diagnostics };
        Ok((report, state_fingerprint))
    }

    /// Applies the program. `confirm` sees the plan and may refuse it.
    pub async fn up(
        &self,
        stack: &str,
        program: &Program,
        options: UpOptions,
        confirm: &(dyn Fn(&Plan, &[Drift]) -> bool + Sync),
    ) -> Result<UpReport, EngineError> {
        self.apply_checked(stack, program, options.refresh, false, confirm, None).await
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
        let (lock, state) = self.begin(stack).await?;
        self.record_history(stack, started_at.clone(), stackwright_state::STARTED, BTreeMap::new(), lock.token())
            .await?;
        // The writer and the run share the loaded state until the first durable record, when the
        // writer takes its own copy; an update that writes nothing copies nothing.
        let loaded = Arc::new(state);
        let shared = Arc::new(Mutex::new(loaded.clone()));
        let journal = self.backend.open_journal(stack, loaded.serial, lock.token()).await?;
        let (writer, writer_task) = journal_writer::spawn(journal, shared.clone());

        let result = async {
            let reconciled = reconcile(&prepared, &loaded, &writer, &self.settings).await?;
            let mut state: Arc<StackState> = if loaded.pending.is_empty() {
                loaded
            } else {
                drop(loaded);
                shared.lock().expect("state lock").clone()
            };
            let drift = if refresh {
                let drift = refresh::refresh_in_memory(&prepared, Arc::make_mut(&mut state), &self.settings).await?;
                let records = refresh::drift_records(&drift);
                writer.write(records).await.map_err(EngineError::Journal)?;
                drift
            } else {
                Vec::new()
            };
            let fingerprint_before = saved.map(|_| crate::saved_plan::fingerprint(&state)).unwrap_or_default();
            let (plan, schedule, warnings) = checked_plan(&mut prepared, &state, stack, destroy)?;
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
            let plan = Arc::new(plan);
            let outcome = executor::execute(
                Arc::new(prepared),
                plan.clone(),
                Arc::new(schedule),
                state,
                writer.clone(),
                &self.settings,
                destroy,
            )
            .await;
            // The executor has let go of the plan by now; copy it only if not.
            let plan = Arc::try_unwrap(plan).unwrap_or_else(|shared| (*shared).clone());
            Ok((plan, drift, Some(outcome), reconciled))
        }
        .await;
        drop(writer);
        let stats = writer_task.await.map_err(|e| EngineError::Journal(e.to_string()))??;
        // Compact whatever became durable, even when the run failed; a run that recorded
        // nothing (refused, or nothing to do) leaves the files untouched. The writer has stopped,
        // so the state is ours to take.
        if stats.flushes > 0 {
            let final_state = std::mem::take(&mut *shared.lock().expect("state lock"));
            self.backend.write_snapshot(&final_state, lock.token()).await?;
        }
        let (outcome_word, changes) = match &result {
            Err(
                EngineError::Protected(_)
                | EngineError::Check(_)
                | EngineError::Policy(_)
                | EngineError::ProviderMissing(_)
                | EngineError::Unschedulable(_)
                | EngineError::Uncertain(_)
                | EngineError::PlanMismatch(_),
            ) => ("refused", BTreeMap::new()),
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
        self.record_history(stack, started_at, outcome_word, changes, lock.token()).await?;
        let (plan, drift, outcome, reconciled) = result?;
        let declined = outcome.is_none();
        let (changed, failures, interrupted) = match outcome {
            Some(o) => (o.changed, o.failures, o.interrupted),
            None => (0, Vec::new(), false),
        };
        let mut diagnostics: Vec<Diagnostic> = failures.iter().flat_map(Failure::diagnostics).collect();
        diagnostics.extend(drift.iter().flat_map(Diagnostic::drift));
        Ok(UpReport {
            plan,
            drift,
            changed,
            failures,
            diagnostics,
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
        token: u64,
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
            run: Some(token),
        };
        Ok(self.backend.append_history(stack, &entry, token).await?)
    }

    /// Reads every resource and records what changed outside the program.
    pub async fn refresh(&self, stack: &str, program: &Program) -> Result<Vec<Drift>, EngineError> {
        let started_at = stackwright_state::backend::now_rfc3339();
        let prepared = plan::prepare(build(program, stack, &self.settings, &self.backend).await?)?;
        let (lock, state) = self.begin(stack).await?;
        self.record_history(stack, started_at.clone(), stackwright_state::STARTED, BTreeMap::new(), lock.token())
            .await?;
        let shared = Arc::new(Mutex::new(state.clone()));
        let journal = self.backend.open_journal(stack, state.serial, lock.token()).await?;
        let (writer, writer_task) = journal_writer::spawn(journal, shared.clone());
        let result = async {
            reconcile(&prepared, &state, &writer, &self.settings).await?;
            let mut state = shared.lock().expect("state lock").clone();
            let drift = refresh::refresh_in_memory(&prepared, &mut state, &self.settings).await?;
            writer.write(refresh::drift_records(&drift)).await.map_err(EngineError::Journal)?;
            Ok(drift)
        }
        .await;
        drop(writer);
        let stats = writer_task.await.map_err(|e| EngineError::Journal(e.to_string()))??;
        // Nothing drifted and nothing was reconciled: leave the files as they are.
        if stats.flushes > 0 {
            let final_state = shared.lock().expect("state lock").clone();
            self.backend.write_snapshot(&final_state, lock.token()).await?;
        }
        let (word, changes) = match &result {
            Ok(drift) => {
                ("succeeded", [("drifted".to_string(), drift.len())].into_iter().filter(|(_, n)| *n > 0).collect())
            }
            Err(_) => ("failed", BTreeMap::new()),
        };
        self.record_history(stack, started_at, word, changes, lock.token()).await?;
        result
    }

    /// Adopts an existing object into the stack as resource `name`, read through the provider's
    /// `import`. The program must register a provider for `type_token`; if it already declares
    /// `name`, that declaration's provider, dependencies and options are used.
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
        let urn = Urn::from(name);
        let bound = prepared.handler_for_type(&urn, type_token).ok_or_else(|| {
            fail(format!("no registered provider handles type `{type_token}`; register it in the program"))
        })?;
        let (lock, state) = self.begin(stack).await?;
        if let Some(existing) = state.resources.get(&urn) {
            return Err(fail(format!("the stack already has a resource named `{name}` (id {})", existing.id)));
        }
        let (writer, writer_task) = self.writer(stack, &state, lock.token()).await?;
        let runner =
            Runner { journal: writer, settings: self.settings.clone(), stack: stack.to_owned(), defer_results: false };
        let slot = Slot::detached();
        let call = Call::Import { id: id.to_owned() };
        let request = Request::new(&urn, type_token, &bound, call, PROVIDER_READ_TIMEOUT, &slot);
        let declared = Declared::of(&prepared, &urn);
        let imported = runner
            .run(request, |reply, _| {
                let Reply::Imported(Some(observed)) = reply else { return Vec::new() };
                let inputs = plan::mark_secret_fields(observed.args.clone(), bound.handler.args_schema());
                let outputs =
                    plan::mark_secret_outputs(observed.outputs.clone(), bound.handler.outputs_schema(), &inputs);
                let resource = recorded(
                    declared.as_ref(),
                    &urn,
                    type_token,
                    &bound.provider,
                    observed.id.clone(),
                    inputs,
                    outputs,
                );
                vec![Record::Upsert { op: None, resource, retire_previous: false }]
            })
            .await;
        drop(runner);
        writer_task.await.map_err(|e| EngineError::Journal(e.to_string()))??;
        let next = self.load(stack).await?;
        match imported {
            Ok(Reply::Imported(Some(_))) => {
                self.backend.write_snapshot(&next, lock.token()).await?;
                Ok(next.resources.get(&urn).cloned().expect("the imported resource was recorded"))
            }
            Ok(_) => Err(fail(format!("no `{type_token}` with id `{id}` exists"))),
            Err(crate::scheduler::NodeStop::Failed(e)) => Err(fail(e.to_string())),
            Err(crate::scheduler::NodeStop::NotStarted) => Err(fail("interrupted".into())),
        }
    }

    /// Opens the stack's journal with a group-commit writer applying records to a copy of `state`.
    async fn writer(
        &self,
        stack: &str,
        state: &StackState,
        token: u64,
    ) -> Result<
        (
            journal_writer::JournalHandle,
            tokio::task::JoinHandle<Result<journal_writer::JournalStats, stackwright_state::StateError>>,
        ),
        EngineError,
    > {
        let journal = self.backend.open_journal(stack, state.serial, token).await?;
        Ok(journal_writer::spawn(journal, Arc::new(Mutex::new(state.clone()))))
    }

    /// Operations of earlier runs that are still pending (their outcome not yet known).
    pub async fn pending(
        &self,
        stack: &str,
    ) -> Result<Vec<(String, stackwright_state::PendingOperation)>, EngineError> {
        let state = self.load(stack).await?;
        Ok(state.pending.into_iter().collect())
    }

    /// Settles a pending create of resource `name` that the provider cannot settle by itself:
    /// `Created { id }` adopts the object with that id (read through the provider's `import`),
    /// `Absent` records that the create made nothing. Returns what was done, for the user.
    pub async fn resolve_pending(
        &self,
        stack: &str,
        program: &Program,
        name: &str,
        resolution: Resolution,
    ) -> Result<String, EngineError> {
        let fail = |message: String| EngineError::StateEdit { resource: name.to_owned(), message };
        let started_at = stackwright_state::backend::now_rfc3339();
        let urn = Urn::from(name);
        let prepared = plan::prepare(build(program, stack, &self.settings, &self.backend).await?)?;
        let (lock, state) = self.begin(stack).await?;
        let ops: Vec<(&String, &stackwright_state::PendingOperation)> =
            state.pending.iter().filter(|(_, p)| p.urn == urn).collect();
        let (op, pending) = match ops.as_slice() {
            [] => return Err(fail("it has no pending operation; `stack pending ls` lists them".into())),
            [(op, p)] => ((*op).clone(), (*p).clone()),
            _ => return Err(fail("it has several pending operations; run `up` to reconcile them first".into())),
        };
        if pending.kind != OpKind::Create {
            return Err(fail(format!(
                "its pending {:?} is settled by reading the object; run `up` or `refresh` to reconcile it",
                pending.kind
            )));
        }
        let (writer, writer_task) = self.writer(stack, &state, lock.token()).await?;
        let runner =
            Runner { journal: writer, settings: self.settings.clone(), stack: stack.to_owned(), defer_results: false };
        let done = match resolution {
            Resolution::Absent => {
                runner.write(vec![Record::Abort { op: op.clone() }]).await.map_err(|e| fail(e.to_string()))?;
                format!("recorded that the interrupted create of `{name}` made nothing")
            }
            Resolution::Created { id } => {
                let bound = prepared
                    .handler_for_state(&pending.provider, &pending.type_token)
                    .ok_or_else(|| fail(format!("provider instance `{}` is not registered", pending.provider)))?;
                let declared = Declared::of(&prepared, &urn);
                let slot = Slot::detached();
                let mut secrets = Vec::new();
                stackwright_core::value::secret_strings(&pending.inputs, &mut secrets);
                let call = Call::Import { id: id.clone() };
                let request = Request {
                    secrets,
                    ..Request::new(&urn, &pending.type_token, &bound, call, PROVIDER_READ_TIMEOUT, &slot)
                };
                let reply = runner
                    .run(request, |reply, _| {
                        let Reply::Imported(Some(observed)) = reply else { return Vec::new() };
                        let adopted = (observed.id.clone(), observed.outputs.clone());
                        vec![adopt_pending(&op, &pending, &bound, declared.as_ref(), &state, adopted)]
                    })
                    .await;
                match reply {
                    Ok(Reply::Imported(Some(_))) => {
                        format!("adopted `{id}` as the object the interrupted create of `{name}` made")
                    }
                    Ok(_) => {
                        return Err(fail(format!(
                            "the provider finds no `{}` with id `{id}`; check the id, or resolve with --absent",
                            pending.type_token
                        )));
                    }
                    Err(crate::scheduler::NodeStop::Failed(e)) => {
                        return Err(fail(format!("reading `{id}` failed: {e}; nothing was changed")));
                    }
                    Err(crate::scheduler::NodeStop::NotStarted) => return Err(fail("interrupted".into())),
                }
            }
        };
        drop(runner);
        writer_task.await.map_err(|e| EngineError::Journal(e.to_string()))??;
        let next = self.load(stack).await?;
        self.backend.write_snapshot(&next, lock.token()).await?;
        self.record_history(stack, started_at, "succeeded", BTreeMap::new(), lock.token()).await?;
        Ok(done)
    }

    /// Edits the stack's state under its lock: `edit` sees the state and returns the records to
    /// apply (or an error, and nothing changes). For `state rm`, `state mv` and the like.
    pub async fn edit_state(
        &self,
        stack: &str,
        edit: impl FnOnce(&StackState) -> Result<Vec<Record>, EngineError>,
    ) -> Result<(), EngineError> {
        let started_at = stackwright_state::backend::now_rfc3339();
        let (lock, state) = self.begin(stack).await?;
        let records = edit(&state)?;
        if records.is_empty() {
            return Ok(());
        }
        let mut journal = self.backend.open_journal(stack, state.serial, lock.token()).await?;
        journal.append(&records).await?;
        let mut next = state;
        records.iter().for_each(|r| next.apply(r));
        self.backend.write_snapshot(&next, lock.token()).await?;
        self.record_history(stack, started_at, "succeeded", BTreeMap::new(), lock.token()).await
    }

    /// The stack's current state (snapshot plus journal).
    pub async fn state(&self, stack: &str) -> Result<Option<StackState>, EngineError> {
        Ok(self.backend.load(stack).await?)
    }
}

/// How the user settles a pending create (`stack pending resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The create made the object with this id: adopt it.
    Created {
        /// The provider id.
        id: String,
    },
    /// The create made nothing.
    Absent,
}

/// Matches the program to the state and plans, refusing plans with failed checks, that would
/// delete or replace protected resources, or lose track of an object whose provider instance is
/// gone.
fn checked_plan(
    prepared: &mut Prepared,
    state: &StackState,
    stack: &str,
    destroy: bool,
) -> Result<(Plan, Schedule, Vec<crate::policy::Violation>), EngineError> {
    plan::match_state(prepared, state);
    let planned = plan::plan(prepared, state, destroy)?;
    if !planned.check_failures.is_empty() {
        return Err(EngineError::Check(planned.check_failures));
    }
    if !planned.protected.is_empty() {
        return Err(EngineError::Protected(planned.protected));
    }
    if !planned.orphaned.is_empty() {
        return Err(EngineError::ProviderMissing(planned.orphaned));
    }
    // Policies see revealed inputs, so their messages may quote a secret.
    let mut secrets = Vec::new();
    for step in &planned.plan.steps {
        if let Some(inputs) = &step.inputs {
            stackwright_core::value::secret_strings(inputs, &mut secrets);
        }
    }
    let violations: Vec<_> = crate::policy::evaluate(&prepared.policies, stack, &prepared.config, &planned.plan)
        .into_iter()
        .map(|mut v| {
            v.message = stackwright_core::value::scrub(&v.message, &secrets);
            v
        })
        .collect();
    let (mandatory, advisory): (Vec<_>, Vec<_>) =
        violations.into_iter().partition(|v| v.enforcement == crate::policy::Enforcement::Mandatory);
    if !mandatory.is_empty() {
        return Err(EngineError::Policy(mandatory.into_iter().chain(advisory).collect()));
    }
    Ok((planned.plan, planned.schedule, advisory))
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

/// What reconciling one pending operation found.
enum Settled {
    /// Recorded; the message says what happened.
    Done(String),
    /// The provider cannot tell whether the create happened.
    Uncertain,
}

/// Settles operations a previous run started but never confirmed, through the step runner (with
/// retries, timeouts and scrubbing): a create is adopted if the provider finds what it made and
/// closed if it proves nothing was made; an update is re-read; a delete is confirmed if the object
/// is gone. A create the provider cannot settle stays pending, and the update stops before
/// changing anything, naming it and the commands that settle it.
async fn reconcile(
    prepared: &Prepared,
    state: &StackState,
    writer: &journal_writer::JournalHandle,
    settings: &Settings,
) -> Result<Vec<String>, EngineError> {
    if state.pending.is_empty() {
        return Ok(Vec::new());
    }
    let ops: Vec<(String, stackwright_state::PendingOperation)> =
        state.pending.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let ops = Arc::new(ops);
    let prepared_regs: Arc<Vec<Option<Declared>>> =
        Arc::new(ops.iter().map(|(_, p)| Declared::of(prepared, &p.urn)).collect());
    let bound: Arc<Vec<Option<plan::Bound>>> =
        Arc::new(ops.iter().map(|(_, p)| prepared.handler_for_state(&p.provider, &p.type_token)).collect());
    let runner = Arc::new(Runner {
        journal: writer.clone(),
        settings: settings.clone(),
        stack: state.stack.clone(),
        defer_results: false,
    });
    let prior = Arc::new(state.clone());
    let nodes: Vec<DagNode> = bound
        .iter()
        .map(|b| DagNode { deps: Vec::new(), provider: b.as_ref().map(|b| b.provider.clone()).unwrap_or_default() })
        .collect();
    let (_never, no_interrupt) = tokio::sync::watch::channel(false);
    let outcomes = run_dag(&nodes, &prepared.provider_limits, settings.parallel, no_interrupt, |i, slot| {
        let (ops, regs, bound, runner, prior) =
            (ops.clone(), prepared_regs.clone(), bound.clone(), runner.clone(), prior.clone());
        async move {
            let (op, pending) = &ops[i];
            let Some(bound) = &bound[i] else {
                return Err(StepError::NoProvider {
                    message: format!(
                        "provider instance `{}` (type `{}`) is not registered in the program; register it so the \
                         interrupted {:?} can be reconciled",
                        pending.provider, pending.type_token, pending.kind
                    ),
                }
                .into());
            };
            settle(&runner, bound, op, pending, regs[i].as_ref(), &prior, &slot).await.map_err(Into::into)
        }
    })
    .await;
    let mut done = Vec::new();
    let mut uncertain = Vec::new();
    let mut errors = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let (op, pending) = &ops[i];
        match outcome {
            NodeOutcome::Done(Settled::Done(message)) => {
                (settings.observer)(&Event::Reconciled { urn: pending.urn.clone(), message: message.clone() });
                done.push(message);
            }
            NodeOutcome::Done(Settled::Uncertain) => uncertain.push(UncertainOperation {
                resource: pending.urn.to_string(),
                kind: format!("{:?}", pending.kind).to_lowercase(),
                operation: op.clone(),
                started_at: pending.started_at.clone(),
            }),
            NodeOutcome::Failed(e) => errors.push(format!("`{}`: {e}", pending.urn)),
            NodeOutcome::Skipped(_) | NodeOutcome::NotStarted => {
                errors.push(format!("`{}`: not reconciled", pending.urn))
            }
        }
    }
    if !errors.is_empty() {
        return Err(EngineError::Reconcile {
            resource: errors.join("; "),
            kind: "operation".into(),
            message: "reconciling failed".into(),
        });
    }
    if !uncertain.is_empty() {
        return Err(EngineError::Uncertain(uncertain));
    }
    Ok(done)
}

/// How long a read-only provider call of the engine's own (find, read, import) may take.
const PROVIDER_READ_TIMEOUT: Duration = Duration::from_secs(300);

/// What the program declares about a resource the engine records outside a planned step (an
/// import, an adopted interrupted create): its dependencies and options.
struct Declared {
    deps: Vec<Urn>,
    protect: bool,
    retain_on_delete: bool,
}

impl Declared {
    /// What the program declares about `urn`, if it declares it.
    fn of(prepared: &Prepared, urn: &Urn) -> Option<Self> {
        prepared.regs.iter().find(|r| &r.urn == urn).map(|r| Declared {
            deps: r.deps.clone(),
            protect: r.opts.protect,
            retain_on_delete: r.opts.retain_on_delete,
        })
    }
}

/// The recorded form of an object, with the declaration's facts where there is one.
fn recorded(
    declared: Option<&Declared>,
    urn: &Urn,
    type_token: &str,
    provider: &str,
    id: String,
    inputs: Value,
    outputs: Value,
) -> ResourceState {
    ResourceState {
        urn: urn.clone(),
        type_token: type_token.to_owned(),
        provider: provider.to_owned(),
        id,
        inputs,
        outputs,
        dependencies: declared.map(|d| d.deps.clone()).unwrap_or_default(),
        protect: declared.is_some_and(|d| d.protect),
        retain_on_delete: declared.is_some_and(|d| d.retain_on_delete),
    }
}

/// The record that adopts `(id, outputs)` as the object pending create `op` made (found by the
/// provider, or named by the user): the arguments it sent, the outputs observed. A resource the
/// state already has under that name with another id was the old half of a replacement and is
/// kept for deletion, not forgotten.
fn adopt_pending(
    op: &str,
    pending: &stackwright_state::PendingOperation,
    bound: &plan::Bound,
    declared: Option<&Declared>,
    state: &StackState,
    (id, outputs): (String, Value),
) -> Record {
    let outputs = plan::mark_secret_outputs(outputs, bound.handler.outputs_schema(), &pending.inputs);
    let resource =
        recorded(declared, &pending.urn, &pending.type_token, &bound.provider, id, pending.inputs.clone(), outputs);
    let retire_previous = state.resources.get(&pending.urn).is_some_and(|e| e.id != resource.id);
    Record::Upsert { op: Some(op.to_owned()), resource, retire_previous }
}

/// Settles one pending operation through the runner.
async fn settle(
    runner: &Runner,
    bound: &plan::Bound,
    op: &str,
    pending: &stackwright_state::PendingOperation,
    reg: Option<&Declared>,
    state: &StackState,
    slot: &Slot,
) -> Result<Settled, StepError> {
    let request = |call: Call| Request {
        operation: Some(op.to_owned()),
        ..Request::new(&pending.urn, &pending.type_token, bound, call, PROVIDER_READ_TIMEOUT, slot)
    };
    let stop = |s: crate::scheduler::NodeStop<StepError>| match s {
        crate::scheduler::NodeStop::Failed(e) => e,
        crate::scheduler::NodeStop::NotStarted => StepError::Journal { message: "interrupted".into() },
    };
    match pending.kind {
        OpKind::Create => {
            let reply = runner
                .run(request(Call::Find { inputs: pending.inputs.clone() }), |reply, _| match reply {
                    Reply::Found(Found::Object(created)) => {
                        let adopted = (created.id.clone(), created.outputs.clone());
                        vec![adopt_pending(op, pending, bound, reg, state, adopted)]
                    }
                    Reply::Found(Found::Absent) => vec![Record::Abort { op: op.to_owned() }],
                    _ => Vec::new(),
                })
                .await
                .map_err(stop)?;
            Ok(match reply {
                Reply::Found(Found::Object(_)) => {
                    Settled::Done(format!("{}: adopted the object an interrupted create made", pending.urn))
                }
                Reply::Found(Found::Absent) => {
                    Settled::Done(format!("{}: an interrupted create made nothing; closed", pending.urn))
                }
                _ => Settled::Uncertain,
            })
        }
        OpKind::Update | OpKind::Delete => {
            let id = pending.id.clone().unwrap_or_default();
            let stored = state
                .resources
                .get(&pending.urn)
                .filter(|r| r.id == id)
                .or_else(|| state.retired.iter().find(|r| r.urn == pending.urn && r.id == id));
            let Some(stored) = stored else {
                runner.write(vec![Record::Abort { op: op.to_owned() }]).await?;
                return Ok(Settled::Done(format!(
                    "{}: the interrupted operation's object is no longer recorded; closed",
                    pending.urn
                )));
            };
            let retired = state.resources.get(&pending.urn).is_none_or(|r| r.id != id);
            let is_delete = pending.kind == OpKind::Delete;
            let reply = runner
                .run(request(Call::Read { stored: stored.clone() }), |reply, _| {
                    let Reply::Read(read) = reply else { return Vec::new() };
                    vec![match read {
                        None if retired => {
                            Record::RemoveRetired { op: Some(op.to_owned()), urn: pending.urn.clone(), id: id.clone() }
                        }
                        None => Record::Remove { op: Some(op.to_owned()), urn: pending.urn.clone() },
                        Some(_) if is_delete || retired => Record::Abort { op: op.to_owned() },
                        Some(observed) => {
                            let resource = refresh::observed_state(stored, observed.clone(), bound.handler.as_ref());
                            Record::Upsert { op: Some(op.to_owned()), resource, retire_previous: false }
                        }
                    }]
                })
                .await
                .map_err(stop)?;
            let message = match reply {
                Reply::Read(None) if retired => "an interrupted delete of a replaced object finished",
                Reply::Read(None) => "the object is gone; removed from state",
                Reply::Read(Some(_)) if is_delete || retired => {
                    "the interrupted delete did not happen; it is planned again"
                }
                _ => "re-read after an interrupted update",
            };
            Ok(Settled::Done(format!("{}: {message}", pending.urn)))
        }
    }
}

/// Exports evaluated against the outputs `resolver` knows; unknown ones are left out.
pub(crate) fn evaluate_exports(
    prepared: &Prepared,
    resolver: Arc<dyn stackwright_core::Resolve>,
) -> std::collections::BTreeMap<String, Value> {
    prepared
        .exports
        .iter()
        .filter_map(|(name, f)| {
            let v = crate::panics::catch(|| stackwright_core::resolve_with(resolver.clone(), || f())).ok()?.ok()?;
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
