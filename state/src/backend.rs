//! The contract every state backend fulfils — lock a stack, load it, append durable journal
//! records, write compacted snapshots, list stacks — and the lock holder's description.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::model::{HistoryEntry, Record, StackState};

/// Who holds a stack's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The user name.
    pub user: String,
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// When the lock was taken (RFC 3339).
    pub since: String,
    /// The command that took it.
    pub command: String,
}

impl LockInfo {
    /// A description of this process, running `command`.
    pub fn current(command: &str) -> Self {
        LockInfo {
            user: std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into()),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            since: now_rfc3339(),
            command: command.to_owned(),
        }
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} (pid {}, `{}`, since {})", self.user, self.host, self.pid, self.command, self.since)
    }
}

/// The current time as RFC 3339 text.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Checks that a stack name is usable as a file or key name.
pub fn validate_stack_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(StateError::InvalidStackName(name.to_owned())) }
}

/// A held stack lock; dropping it releases the lock.
pub trait StackLock: Send + Sync {
    /// This holder's fencing token: a number that grows with every acquisition of the stack's
    /// lock. Every write takes it, and a backend refuses a write whose token is no longer the
    /// stack's current one (its lock was broken with `stack unlock --force`).
    fn token(&self) -> u64;
}

/// An open journal. `append` returns only when the records are durable.
#[async_trait]
pub trait Journal: Send {
    /// Appends records durably (one flush for the whole group).
    async fn append(&mut self, records: &[Record]) -> Result<(), StateError>;
    /// Bytes written so far.
    fn bytes_written(&self) -> u64;
}

/// Where stacks' states live.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A human description, e.g. `local directory ./.stackwright`.
    fn describe(&self) -> String;
    /// Whether secrets can be stored (sealed by a secrets provider).
    fn seals_secrets(&self) -> bool;
    /// Takes the stack's lock, advancing its fencing token, or fails with
    /// [`StateError::Locked`] naming the holder.
    async fn lock(&self, stack: &str, holder: LockInfo) -> Result<Box<dyn StackLock>, StateError>;
    /// Breaks the stack's lock and returns the holder it had, if known. Without `force` it
    /// refuses with [`StateError::HeldByLiveHolder`] while a live holder has the lock; with
    /// `force` it first advances the fencing token, so that the old holder's later writes are
    /// refused with [`StateError::LockLost`], then clears the lock.
    async fn unlock(&self, stack: &str, force: bool) -> Result<Option<LockInfo>, StateError>;
    /// Loads the stack (snapshot plus journal), or `None` if it has no state yet.
    async fn load(&self, stack: &str) -> Result<Option<StackState>, StateError>;
    /// Atomically replaces the snapshot with `state` and starts an empty journal after it;
    /// `token` is the fencing token of the lock held on the stack.
    async fn write_snapshot(&self, state: &StackState, token: u64) -> Result<u64, StateError>;
    /// Opens the journal that continues the snapshot with serial `base_serial`; every append
    /// checks the fencing token `token`.
    async fn open_journal(&self, stack: &str, base_serial: u64, token: u64) -> Result<Box<dyn Journal>, StateError>;
    /// The stacks that have state.
    async fn list_stacks(&self) -> Result<Vec<String>, StateError>;
    /// Deletes a stack's state entirely, under the lock with fencing token `token`.
    async fn remove_stack(&self, stack: &str, token: u64) -> Result<(), StateError>;
    /// Appends one entry to the stack's history, under the lock with fencing token `token`.
    async fn append_history(&self, stack: &str, entry: &HistoryEntry, token: u64) -> Result<(), StateError>;
    /// The stack's history, oldest first: a run that recorded its start but never its end is
    /// shown as [`RUNNING`] while it holds the lock, and as [`DID_NOT_FINISH`] otherwise.
    async fn history(&self, stack: &str) -> Result<Vec<HistoryEntry>, StateError>;
}

/// The result of the history entry a run writes when it starts; its final entry, with the
/// same `run`, replaces it.
pub const STARTED: &str = "started";
/// How [`Backend::history`] shows a started run that still holds the stack's lock.
pub const RUNNING: &str = "running";
/// How [`Backend::history`] shows a started run that ended without recording its result
/// (killed, or its machine lost power).
pub const DID_NOT_FINISH: &str = "did not finish";

/// Pairs each run's start entry with its final entry, in the order the runs started. A start
/// entry without a final one becomes [`RUNNING`] if its run is `running` (the fencing token of
/// the lock held right now), else [`DID_NOT_FINISH`].
pub fn merge_history(entries: Vec<HistoryEntry>, running: Option<u64>) -> Vec<HistoryEntry> {
    let mut out: Vec<HistoryEntry> = Vec::with_capacity(entries.len());
    let mut started_at: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for entry in entries {
        match entry.run {
            Some(run) if entry.result == STARTED => {
                started_at.insert(run, out.len());
                out.push(entry);
            }
            Some(run) => match started_at.remove(&run) {
                Some(i) => out[i] = entry,
                None => out.push(entry),
            },
            None => out.push(entry),
        }
    }
    for (run, i) in started_at {
        out[i].result = if Some(run) == running { RUNNING } else { DID_NOT_FINISH }.to_owned();
    }
    out
}
