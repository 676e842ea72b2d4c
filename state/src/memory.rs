//! An in-memory backend for tests of programs: the same contract as the others, nothing on
//! disk, so a test can seed a prior state and inspect the result.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::backend::{Backend, Journal, LockInfo, StackLock, merge_history, validate_stack_name};
use crate::error::StateError;
use crate::model::{HistoryEntry, Record, StackState};

#[derive(Default)]
struct Inner {
    snapshots: BTreeMap<String, StackState>,
    journals: BTreeMap<String, (u64, Vec<Record>)>,
    history: BTreeMap<String, Vec<HistoryEntry>>,
    /// Holders of the stacks' locks, with their fencing tokens.
    locked: HashMap<String, (LockInfo, u64)>,
    /// Each stack's current fencing token.
    tokens: HashMap<String, u64>,
}

impl Inner {
    fn check(&self, stack: &str, token: u64) -> Result<(), StateError> {
        let current = self.tokens.get(stack).copied().unwrap_or(0);
        if current == token { Ok(()) } else { Err(StateError::LockLost { stack: stack.to_owned(), token, current }) }
    }
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
    token: u64,
}

impl StackLock for MemoryLock {
    fn token(&self) -> u64 {
        self.token
    }
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.inner.lock() {
            // A lock broken with `force` may since have been taken by another holder.
            if inner.locked.get(&self.stack).is_some_and(|(_, t)| *t == self.token) {
                inner.locked.remove(&self.stack);
            }
        }
    }
}

struct MemoryJournal {
    inner: Arc<Mutex<Inner>>,
    stack: String,
    bytes: u64,
    token: u64,
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&mut self, records: &[Record]) -> Result<(), StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        inner.check(&self.stack, self.token)?;
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
        if let Some((held, _)) = inner.locked.get(stack) {
            return Err(StateError::Locked { stack: stack.to_owned(), holder: Box::new(held.clone()) });
        }
        let token = inner.tokens.get(stack).copied().unwrap_or(0) + 1;
        inner.tokens.insert(stack.to_owned(), token);
        inner.locked.insert(stack.to_owned(), (holder, token));
        Ok(Box::new(MemoryLock { inner: self.inner.clone(), stack: stack.to_owned(), token }))
    }

    async fn unlock(&self, stack: &str, force: bool) -> Result<Option<LockInfo>, StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        let Some((holder, _)) = inner.locked.get(stack).cloned() else { return Ok(None) };
        // Every holder lives in this process, so a held lock always has a live holder.
        if !force {
            return Err(StateError::HeldByLiveHolder { stack: stack.to_owned(), holder: Box::new(holder) });
        }
        *inner.tokens.entry(stack.to_owned()).or_default() += 1;
        inner.locked.remove(stack);
        Ok(Some(holder))
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

    async fn write_snapshot(&self, state: &StackState, token: u64) -> Result<u64, StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        inner.check(&state.stack, token)?;
        let mut next = state.clone();
        next.serial += 1;
        let serial = next.serial;
        inner.journals.insert(state.stack.clone(), (serial, Vec::new()));
        inner.snapshots.insert(state.stack.clone(), next);
        Ok(serial)
    }

    async fn open_journal(&self, stack: &str, base_serial: u64, token: u64) -> Result<Box<dyn Journal>, StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        inner.check(stack, token)?;
        let journal = inner.journals.entry(stack.to_owned()).or_insert((base_serial, Vec::new()));
        if journal.0 != base_serial {
            *journal = (base_serial, Vec::new());
        }
        Ok(Box::new(MemoryJournal { inner: self.inner.clone(), stack: stack.to_owned(), bytes: 0, token }))
    }

    async fn list_stacks(&self) -> Result<Vec<String>, StateError> {
        let inner = self.inner.lock().expect("memory backend lock");
        let mut names: Vec<String> = inner.snapshots.keys().chain(inner.journals.keys()).cloned().collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn remove_stack(&self, stack: &str, token: u64) -> Result<(), StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        inner.check(stack, token)?;
        inner.snapshots.remove(stack);
        inner.journals.remove(stack);
        inner.history.remove(stack);
        Ok(())
    }

    async fn append_history(&self, stack: &str, entry: &HistoryEntry, token: u64) -> Result<(), StateError> {
        let mut inner = self.inner.lock().expect("memory backend lock");
        inner.check(stack, token)?;
        inner.history.entry(stack.to_owned()).or_default().push(entry.clone());
        Ok(())
    }

    async fn history(&self, stack: &str) -> Result<Vec<HistoryEntry>, StateError> {
        let inner = self.inner.lock().expect("memory backend lock");
        let entries = inner.history.get(stack).cloned().unwrap_or_default();
        Ok(merge_history(entries, inner.locked.get(stack).map(|(_, token)| *token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn force_unlock_fences_off_the_old_holders_writes() {
        let b = MemoryBackend::new();
        let old = b.lock("dev", LockInfo::current("up")).await.unwrap();
        let mut journal = b.open_journal("dev", 0, old.token()).await.unwrap();
        assert!(matches!(b.unlock("dev", false).await, Err(StateError::HeldByLiveHolder { .. })));
        assert_eq!(b.unlock("dev", true).await.unwrap().map(|h| h.command), Some("up".to_string()));
        let new = b.lock("dev", LockInfo::current("up")).await.unwrap();
        assert!(new.token() > old.token());
        let lost = |r: Result<(), StateError>| matches!(r, Err(StateError::LockLost { .. }));
        assert!(lost(journal.append(&[Record::Abort { op: "x".into() }]).await));
        assert!(lost(b.write_snapshot(&StackState::new("dev"), old.token()).await.map(|_| ())));
        assert!(lost(b.remove_stack("dev", old.token()).await));
        b.write_snapshot(&StackState::new("dev"), new.token()).await.unwrap();
        drop(old);
        assert!(b.lock("dev", LockInfo::current("up")).await.is_err(), "the old holder's drop keeps the new lock");
    }
}
