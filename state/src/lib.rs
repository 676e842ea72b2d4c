//! Stack state for Stackwright: the versioned state model, the append-only journal that makes
//! every finished step durable, self-checking snapshots, and the backends that store them (a
//! local directory is the embedded default).

pub mod backend;
pub mod error;
pub mod journal;
pub mod local;
pub mod memory;
pub mod model;
pub mod secrets;
pub mod snapshot;
pub mod txn;

pub use backend::{
    Backend, DID_NOT_FINISH, Journal, LockInfo, RUNNING, STARTED, StackLock, merge_history, validate_stack_name,
};
pub use error::StateError;
pub use local::LocalBackend;
pub use memory::MemoryBackend;
pub use model::{HistoryEntry, OpKind, PendingOperation, Record, ResourceState, StackState};
pub use secrets::{Cipher, KdfParams, SecretsError};
pub use txn::Transaction;
