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
pub trait StackLock: Send + Sync {}

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
    /// Takes the stack's lock or fails with [`StateError::Locked`] naming the holder.
    async fn lock(&self, stack: &str, holder: LockInfo) -> Result<Box<dyn StackLock>, StateError>;
    /// Breaks the stack's lock; returns the holder it had, if known.
    async fn force_unlock(&self, stack: &str) -> Result<Option<LockInfo>, StateError>;
    /// Loads the stack (snapshot plus journal), or `None` if it has no state yet.
    async fn load(&self, stack: &str) -> Result<Option<StackState>, StateError>;
    /// Atomically replaces the snapshot with `state` and starts an empty journal after it.
    async fn write_snapshot(&self, state: &StackState) -> Result<u64, StateError>;
    /// Opens the journal that continues the snapshot with serial `base_serial`.
    async fn open_journal(&self, stack: &str, base_serial: u64) -> Result<Box<dyn Journal>, StateError>;
    /// The stacks that have state.
    async fn list_stacks(&self) -> Result<Vec<String>, StateError>;
    /// Deletes a stack's state entirely.
    async fn remove_stack(&self, stack: &str) -> Result<(), StateError>;
    /// Appends one entry to the stack's history.
    async fn append_history(&self, stack: &str, entry: &HistoryEntry) -> Result<(), StateError>;
    /// The stack's history, oldest first.
    async fn history(&self, stack: &str) -> Result<Vec<HistoryEntry>, StateError>;
}
