//! The step runner: the one place where the engine calls a provider. Every call — the halves of
//! an apply, reconciliation, refresh, import — goes through [`Runner::run`], which makes the
//! pending record durable (for calls that change the world), waits for a call permit, calls with
//! retries, timeout and panic isolation, gives the permit back, and records the result or the
//! abort, with every message scrubbed of the secrets involved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use stackwright_core::value::{reveal, scrub, secret_strings};
use stackwright_core::{ErrorKind, Found, OpContext, PropertyChange, RawState, Urn};
use stackwright_state::{OpKind, PendingOperation, Record, ResourceState};

use crate::failure::StepError;
use crate::journal_writer::JournalHandle;
use crate::planner::Bound;
use crate::retry::{CallError, call_with_retry};
use crate::scheduler::{NodeStop, Slot};
use crate::settings::Settings;

/// A provider call.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    /// Create with these arguments (secrets wrapped).
    Create { inputs: Value },
    /// Update `stored` in place to these arguments.
    Update { stored: ResourceState, inputs: Value, changes: Vec<PropertyChange> },
    /// Delete `stored`.
    Delete { stored: ResourceState },
    /// Read `stored` as it is now.
    Read { stored: ResourceState },
    /// Find what an interrupted create with these arguments made.
    Find { inputs: Value },
    /// Read an existing object by id, to adopt it.
    Import { id: String },
}

impl Call {
    fn name(&self) -> &'static str {
        match self {
            Call::Create { .. } => "create",
            Call::Update { .. } => "update",
            Call::Delete { .. } => "delete",
            Call::Read { .. } => "read",
            Call::Find { .. } => "find",
            Call::Import { .. } => "import",
        }
    }

    /// The pending kind of a call that changes the world.
    fn changes_world(&self) -> Option<OpKind> {
        match self {
            Call::Create { .. } => Some(OpKind::Create),
            Call::Update { .. } => Some(OpKind::Update),
            Call::Delete { .. } => Some(OpKind::Delete),
            _ => None,
        }
    }

    /// Every secret string the call carries, to scrub from messages.
    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Call::Create { inputs } | Call::Find { inputs } => secret_strings(inputs, &mut out),
            Call::Update { stored, inputs, .. } => {
                secret_strings(inputs, &mut out);
                secret_strings(&stored.inputs, &mut out);
                secret_strings(&stored.outputs, &mut out);
            }
            Call::Delete { stored } | Call::Read { stored } => {
                secret_strings(&stored.inputs, &mut out);
                secret_strings(&stored.outputs, &mut out);
            }
            Call::Import { .. } => {}
        }
        out
    }
}

/// What a successful call returned (secrets not yet marked).
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Created { id: String, outputs: Value },
    Updated { outputs: Value },
    Deleted,
    Read(Option<RawState>),
    Found(Found<Value>),
    Imported(Option<RawState>),
}

/// One call to run.
pub(crate) struct Request<'a> {
    pub urn: &'a Urn,
    pub type_token: &'a str,
    pub bound: &'a Bound,
    pub call: Call,
    pub timeout: Duration,
    pub slot: &'a Slot,
    /// Records made durable together with the pending record (a rename, say).
    pub before: Vec<Record>,
    /// The operation id of an operation already recorded as pending (reconciliation).
    pub operation: Option<String>,
    /// Extra secrets to scrub (e.g. a stored resource's, for a find).
    pub secrets: Vec<String>,
}

impl<'a> Request<'a> {
    /// A call with nothing recorded before it, a fresh operation id and no extra secrets.
    pub fn new(
        urn: &'a Urn,
        type_token: &'a str,
        bound: &'a Bound,
        call: Call,
        timeout: Duration,
        slot: &'a Slot,
    ) -> Self {
        Request {
            urn,
            type_token,
            bound,
            call,
            timeout,
            slot,
            before: Vec::new(),
            operation: None,
            secrets: Vec::new(),
        }
    }
}

/// Why a call did not succeed: not started (interrupted before the call) or failed.
pub(crate) type Stop = NodeStop<StepError>;

impl From<StepError> for NodeStop<StepError> {
    fn from(e: StepError) -> Self {
        NodeStop::Failed(e)
    }
}

/// Runs provider calls for one engine operation.
pub(crate) struct Runner {
    pub journal: JournalHandle,
    pub settings: Settings,
    pub stack: String,
    /// Hand results to the journal to join the next write instead of waiting for them (see
    /// `journal_writer`); whoever runs with it flushes the journal at the end.
    pub defer_results: bool,
}

fn new_operation_id() -> String {
    format!("op-{:016x}{:08x}", rand::random::<u64>(), rand::random::<u32>())
}

fn plain(stored: &ResourceState) -> RawState {
    RawState { id: stored.id.clone(), args: reveal(stored.inputs.clone()).0, outputs: reveal(stored.outputs.clone()).0 }
}

impl Runner {
    /// Writes records durably, as a step error if the journal fails.
    pub async fn write(&self, records: Vec<Record>) -> Result<(), StepError> {
        self.journal.write(records).await.map_err(|message| StepError::Journal { message })
    }

    /// Runs one call. `finish` turns the reply into the records that complete it (given the
    /// pending operation's id, if one was recorded); they are durable when this returns.
    pub async fn run(
        &self,
        req: Request<'_>,
        finish: impl FnOnce(&Reply, Option<String>) -> Vec<Record>,
    ) -> Result<Reply, Stop> {
        let Request { urn, type_token, bound, call, timeout, slot, mut before, operation, secrets: extra } = req;
        let mut secrets = call.secrets();
        secrets.extend(extra);
        let what = call.name();
        let recorded = match (call.changes_world(), operation) {
            (_, Some(op)) => Some(op),
            (Some(kind), None) if bound.handler.has_side_effects() => {
                let op = new_operation_id();
                let (id, inputs) = match &call {
                    Call::Create { inputs } => (None, inputs.clone()),
                    Call::Update { stored, inputs, .. } => (Some(stored.id.clone()), inputs.clone()),
                    Call::Delete { stored } => (Some(stored.id.clone()), stored.inputs.clone()),
                    _ => unreachable!("only calls that change the world are recorded"),
                };
                let pending = PendingOperation {
                    kind,
                    urn: urn.clone(),
                    type_token: type_token.to_owned(),
                    provider: bound.provider.clone(),
                    id,
                    inputs,
                    started_at: stackwright_state::backend::now_rfc3339(),
                };
                before.push(Record::Begin { op: op.clone(), pending });
                Some(op)
            }
            _ => None,
        };
        // A fresh pending record is ours to close; a reconciled one is closed by `finish`.
        let own_pending = recorded.is_some() && call.changes_world().is_some();
        self.write(before).await?;
        if !slot.acquire().await {
            if own_pending && let Some(op) = &recorded {
                self.write(vec![Record::Abort { op: op.clone() }]).await?;
            }
            return Err(NodeStop::NotStarted);
        }
        let ctx = OpContext {
            urn: urn.clone(),
            stack: self.stack.clone(),
            operation_id: recorded.clone().unwrap_or_else(|| format!("{what}-{urn}")),
        };
        let settings = &self.settings;
        let handler = &bound.handler;
        // Whether an earlier attempt failed in a way that may have applied it.
        let lost = Arc::new(AtomicBool::new(false));
        let result = crate::panics::catch_async(call_with_retry(
            &settings.retry,
            &settings.observer,
            urn,
            what,
            timeout,
            &secrets,
            || {
                let (handler, ctx, call, lost) = (handler.clone(), ctx.clone(), call.clone(), lost.clone());
                async move {
                    let result = attempt(handler.as_ref(), &ctx, &call, lost.load(Ordering::SeqCst)).await;
                    if result.as_ref().is_err_and(|e| e.kind == ErrorKind::Transient) {
                        lost.store(true, Ordering::SeqCst);
                    }
                    result
                }
            },
        ))
        .await;
        // The call is over; let the next one start while this result becomes durable.
        slot.release();
        let world = call.changes_world().is_some() && bound.handler.has_side_effects();
        let error = match result {
            Ok(Ok(reply)) => {
                let records = finish(&reply, recorded);
                if self.defer_results {
                    self.journal.defer(records);
                } else {
                    self.write(records).await?;
                }
                return Ok(reply);
            }
            Ok(Err(e)) => {
                let uncertain = world && e.outcome_unknown();
                match e {
                    CallError::Failed { error, attempts, .. } => StepError::Provider {
                        call: what.to_owned(),
                        kind: error.kind,
                        message: scrub(&error.message, &secrets),
                        attempts,
                        uncertain,
                    },
                    CallError::TimedOut { after } => {
                        StepError::TimedOut { call: what.to_owned(), after_ms: after.as_millis() as u64, uncertain }
                    }
                }
            }
            // A panic after the request was sent may have left the change made.
            Err(panic) => {
                StepError::Panicked { call: what.to_owned(), message: scrub(&panic, &secrets), uncertain: world }
            }
        };
        if own_pending
            && !error.is_uncertain()
            && let Some(op) = recorded
        {
            self.write(vec![Record::Abort { op }]).await?;
        }
        Err(NodeStop::Failed(error))
    }
}

/// One attempt of a call. A create whose earlier attempt may have been applied (its answer was
/// lost) first asks `find` for the object that attempt made, so a retry never makes a second
/// one: found → adopted; absent → created; the provider cannot tell → the attempt fails
/// without retry, and the operation stays pending for the user to resolve.
async fn attempt(
    handler: &dyn stackwright_core::ErasedHandler,
    ctx: &OpContext,
    call: &Call,
    earlier_may_have_applied: bool,
) -> Result<Reply, stackwright_core::ProviderError> {
    if let (Call::Create { inputs }, true) = (call, earlier_may_have_applied) {
        match handler.find(ctx, &reveal(inputs.clone()).0).await? {
            Found::Object(created) => return Ok(Reply::Created { id: created.id, outputs: created.outputs }),
            Found::Absent => {}
            Found::Unknown => {
                return Err(stackwright_core::ProviderError::new(
                    ErrorKind::Other,
                    "an earlier attempt's answer was lost and the provider cannot tell whether it created the \
                     object, so it is not created again",
                ));
            }
        }
    }
    invoke(handler, ctx, call).await
}

/// One call through the erased handler (arguments revealed).
async fn invoke(
    handler: &dyn stackwright_core::ErasedHandler,
    ctx: &OpContext,
    call: &Call,
) -> Result<Reply, stackwright_core::ProviderError> {
    match call {
        Call::Create { inputs } => {
            let (id, outputs) = handler.create(ctx, &reveal(inputs.clone()).0).await?;
            Ok(Reply::Created { id, outputs })
        }
        Call::Update { stored, inputs, changes } => {
            let changes: Vec<PropertyChange> = changes
                .iter()
                .cloned()
                .map(|mut c| {
                    c.old = c.old.map(|v| reveal(v).0);
                    c.new = c.new.map(|v| reveal(v).0);
                    c
                })
                .collect();
            let outputs = handler.update(ctx, &plain(stored), &reveal(inputs.clone()).0, &changes).await?;
            Ok(Reply::Updated { outputs })
        }
        Call::Delete { stored } => match handler.delete(ctx, &plain(stored)).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Reply::Deleted),
            other => other.map(|()| Reply::Deleted),
        },
        Call::Read { stored } => match handler.read(ctx, &plain(stored)).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Reply::Read(None)),
            other => other.map(Reply::Read),
        },
        Call::Find { inputs } => handler.find(ctx, &reveal(inputs.clone()).0).await.map(Reply::Found),
        Call::Import { id } => handler.import(ctx, id).await.map(Reply::Imported),
    }
}
