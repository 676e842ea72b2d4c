//! Errors of the state layer. Each names the stack or file involved and says what to do.

use std::path::PathBuf;

use crate::backend::LockInfo;

/// A failure to read, write or lock a stack's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is damaged: bad checksum, truncated or not valid JSON. It is never overwritten.
    #[error(
        "state file {file} is corrupt: {reason}. It has not been modified; restore it from a backup or from `stack export`, or move it aside to start over"
    )]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a newer Stackwright.
    #[error(
        "state file {file} has format version {found}, but this Stackwright understands up to version {supported}. Upgrade Stackwright; the file has not been modified"
    )]
    NewerFormat {
        /// The file.
        file: PathBuf,
        /// Its format version.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The file belongs to another stack.
    #[error("state file {file} belongs to stack `{found}`, not `{expected}`; it has not been modified")]
    WrongStack {
        /// The file.
        file: PathBuf,
        /// The stack it names.
        found: String,
        /// The stack we asked for.
        expected: String,
    },
    /// Another run holds the stack's lock.
    #[error(
        "stack `{stack}` is locked by {holder}. Wait for that run to finish; if it is gone, `stack unlock --stack {stack}` clears its lock, and if it is hung, `stack unlock --force --stack {stack}` takes the lock from it"
    )]
    Locked {
        /// The stack.
        stack: String,
        /// Who holds it.
        holder: Box<LockInfo>,
    },
    /// The lock is held by a process that is still running, and `--force` was not given.
    #[error(
        "stack `{stack}` is locked by {holder}, which is still running. Wait for it to finish or stop it; to take the lock from it anyway, run `stack unlock --force --stack {stack}` (its later writes to the state will then be refused)"
    )]
    HeldByLiveHolder {
        /// The stack.
        stack: String,
        /// Who holds it.
        holder: Box<LockInfo>,
    },
    /// This writer's lock was broken (`stack unlock --force`) and maybe taken by another run:
    /// its fencing token is no longer the stack's, so the write was refused.
    #[error(
        "stack `{stack}`: this run lost its lock (its fencing token is {token}, the stack's is now {current}), most likely to `stack unlock --force`; the write was refused so that it cannot overwrite a newer holder's work. Check the stack with `preview`, then run the command again"
    )]
    LockLost {
        /// The stack.
        stack: String,
        /// The writer's token.
        token: u64,
        /// The stack's current token.
        current: u64,
    },
    /// The stack name cannot be used.
    #[error("invalid stack name `{0}`: use letters, digits, `-`, `_` and `.` (not first), at most 100 characters")]
    InvalidStackName(String),
    /// An I/O error on a file.
    #[error("{action} {file}: {source}")]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Secrets could not be sealed or opened.
    #[error("stack `{stack}`: {source}")]
    Secrets {
        /// The stack.
        stack: String,
        /// What went wrong.
        source: crate::secrets::SecretsError,
    },
    /// A backend-specific failure (a database or object store call).
    #[error("state backend {backend}: {message}")]
    Backend {
        /// Which backend.
        backend: String,
        /// What happened.
        message: String,
    },
}

impl StateError {
    pub(crate) fn io(action: &'static str, file: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StateError::Io { action, file: file.into(), source }
    }
}
