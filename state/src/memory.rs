//! An in-memory backend for tests of programs: the same contract as the others, nothing on
//! disk, so a test can seed a prior state and inspect the result.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::backend::{Backend, Journal, LockInfo, StackLock, validate_stack_name};
use crate::error::StateError;
use crate::model::{HistoryEntry, Record, StackState};

#[derive(Default)]
struct Inner {
    snapshots: BTreeMap<String, StackState>,
    journals: BTreeMap<String, (u64, Vec<Record>)>,
    history: BTreeMap<String, Vec<HistoryEntry>>,
    locked: HashSet<String>,
}

/// Stack state kept in memory; clones share it.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Seeds a stack's state.
    pub fn put(&self, state: StackState) {
        let mut inner = self.inner.lock().expect("memory backend lock");
        inner.journals.remove(&state.stack);
        inner.snapshots.insert(state.stack.clone(), state);
    }
}

struct MemoryLock {
    inner: Arc<Mutex<Inner>>,
    stack: String,
}

impl StackLock for MemoryLock {}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.locked.remove(&self.stack);
        }
    }
}

struct MemoryJournal {
    inner: Arc<Mutex<Inner>>,
    stack: String,
    bytes: u64,
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&mut self, records: &[Record]) -> Result<(), StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        let journal = inner.journals.entry(self.stack.clone()).or_default();
        journal.1.extend(records.iter().cloned());
        self.bytes += records.iter().map(|r| serde_json::to_vec(r).map(|v| v.len() as u64).unwrap_or(0)).sum::<u64>();
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn seals_secrets(&self) -> bool {
        // Nothing leaves the process.
        true
    }

    async fn lock(&self, stack: &str, holder: LockInfo) -> Result<Box<dyn StackLock>, StateError> {
        validate_stack_name(stack)?;
        let mut inner = self.inner.lock().expect("memory backend lock");
        if !inner.locked.insert(stack.to_owned()) {
            return Err(StateError::Locked { stack: stack.to_owned(), holder: Box::new(holder) });
        }
        Ok(Box::new(MemoryLock { inner: self.inner.clone(), stack: stack.to_owned() }))
    }

    async fn force_unlock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        self.inner.lock().expect("memory backend lock").locked.remove(stack);
        Ok(None)
    }

    async fn load(&self, stack: &str) -> Result<Option<StackState>, StateError> {
        validate_stack_name(stack)?;
        let inner = self.inner.lock().expect("memory backend lock");
        let mut state = match (inner.snapshots.get(stack), inner.journals.get(stack)) {
            (None, None) => return Ok(None),
            (Some(s), _) => s.clone(),
            (None, Some(_)) => StackState::new(stack),
        };
        if let Some((base, records)) = inner.journals.get(stack)
            && *base == state.serial
        {
            records.iter().for_each(|r| state.apply(r));
        }
        Ok(Some(state))
    }

    async fn write_snapshot(&self, state: &StackState) -> Result<u64, StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        let mut next = state.clone();
        next.serial += 1;
        let serial = next.serial;
        inner.journals.insert(state.stack.clone(), (serial, Vec::new()));
        inner.snapshots.insert(state.stack.clone(), next);
        Ok(serial)
    }

    async fn open_journal(&self, stack: &str, base_serial: u64) -> Result<Box<dyn Journal>, StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        let journal = inner.journals.entry(stack.to_owned()).or_insert((base_serial, Vec::new()));
        if journal.0 != base_serial {
            *journal = (base_serial, Vec::new());
        }
        Ok(Box::new(MemoryJournal { inner: self.inner.clone(), stack: stack.to_owned(), bytes: 0 }))
    }

    async fn list_stacks(&self) -> Result<Vec<String>, StateError> {
        let inner = self.inner.lock().expect("memory backend lock");
        let mut names: Vec<String> = inner.snapshots.keys().chain(inner.journals.keys()).cloned().collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn remove_stack(&self, stack: &str) -> Result<(), StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        inner.snapshots.remove(stack);
        inner.journals.remove(stack);
        inner.history.remove(stack);
        Ok(())
    }

    async fn append_history(&self, stack: &str, entry: &HistoryEntry) -> Result<(), StateError> {
        self.inner
            .lock()
            .expect("memory backend lock")
            .history
            .entry(stack.to_owned())
            .or_default()
            .push(entry.clone());
        Ok(())
    }

    async fn history(&self, stack: &str) -> Result<Vec<HistoryEntry>, StateError> {
        Ok(self.inner.lock().expect("memory backend lock").history.get(stack).cloned().unwrap_or_default())
    }
}
