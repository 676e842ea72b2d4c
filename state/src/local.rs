//! The local directory backend, the embedded default: one snapshot, one journal, one history,
//! one lock and one fencing-token file per stack under `<root>/stacks/`. Snapshots are replaced
//! atomically (write, fsync, rename, fsync the directory); journal and history appends are
//! fsynced before they return, and a newly created file is made durable in its directory.
//!
//! The lock is an `flock` on `<stack>.lock`, which the kernel releases when its holder dies, so
//! a held lock means a live holder. The fencing token in `<stack>.fence` grows with every
//! acquisition (and with `stack unlock --force`); every write first checks that the writer's
//! token is still the stack's.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::backend::{Backend, Journal, LockInfo, StackLock, merge_history, validate_stack_name};
use crate::error::StateError;
use crate::journal::{self, JournalHeader};
use crate::model::{HistoryEntry, Record, StackState};
use crate::secrets::Cipher;
use crate::snapshot;
use crate::txn::{self, Transaction, sync_dir};

/// Stack state kept in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
    cipher: Option<Arc<Cipher>>,
    /// Shared by clones and the journals they open, so one count covers a whole run.
    syncs: Arc<AtomicU64>,
}

impl LocalBackend {
    /// A backend rooted at `root` (created on first write), without a secrets provider: it
    /// refuses to store secrets.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalBackend { root: root.into(), cipher: None, syncs: Arc::default() }
    }

    /// How many times this backend (and its clones and journals) has asked the disk to make data
    /// durable (`fsync`/`fdatasync` of a file or a directory) so far: the cost a benchmark of
    /// durability counts.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// The same backend, sealing secrets with `cipher`.
    pub fn with_cipher(mut self, cipher: Arc<Cipher>) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self) -> PathBuf {
        self.root.join("stacks")
    }

    /// The snapshot file of a stack.
    pub fn snapshot_path(&self, stack: &str) -> PathBuf {
        self.dir().join(format!("{stack}.json"))
    }

    /// The journal file of a stack.
    pub fn journal_path(&self, stack: &str) -> PathBuf {
        self.dir().join(format!("{stack}.journal"))
    }

    /// The history file of a stack.
    pub fn history_path(&self, stack: &str) -> PathBuf {
        self.dir().join(format!("{stack}.history.jsonl"))
    }

    fn lock_path(&self, stack: &str) -> PathBuf {
        self.dir().join(format!("{stack}.lock"))
    }

    fn fence_path(&self, stack: &str) -> PathBuf {
        self.dir().join(format!("{stack}.fence"))
    }

    fn ensure_dir(&self) -> Result<PathBuf, StateError> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(|e| StateError::io("creating state directory", &dir, e))?;
        Ok(dir)
    }

    /// Finishes or discards multi-file changes ([`Transaction`]s) that a crash interrupted.
    /// Run it before reading anything a transaction may change (configuration files too).
    pub fn recover(&self) -> Result<(), StateError> {
        txn::recover(&self.dir())
    }

    /// A new transaction over this backend's files and any others (e.g. configuration files).
    pub fn transaction(&self) -> Transaction {
        Transaction::new(self.dir())
    }

    /// The stack's current fencing token (0 before its lock was ever taken).
    pub fn current_token(&self, stack: &str) -> Result<u64, StateError> {
        read_token(&self.fence_path(stack))
    }

    fn fence(&self, stack: &str, token: u64) -> Fence {
        Fence { path: self.fence_path(stack), stack: stack.to_owned(), token }
    }

    /// Stages, in `txn`, replacing the snapshot of `state.stack` with `state` and starting an
    /// empty journal after it, like [`Backend::write_snapshot`]; returns the new serial.
    pub fn stage_snapshot(&self, txn: &mut Transaction, state: &StackState, token: u64) -> Result<u64, StateError> {
        validate_stack_name(&state.stack)?;
        let fence = self.fence(&state.stack, token);
        fence.check()?;
        txn.check(Box::new(move || fence.check()));
        self.stage_snapshot_files(txn, state)
    }

    fn stage_snapshot_files(&self, txn: &mut Transaction, state: &StackState) -> Result<u64, StateError> {
        let mut next = state.clone();
        next.serial = state.serial + 1;
        txn.write(self.snapshot_path(&state.stack), snapshot::encode(&next, self.cipher.as_deref())?);
        txn.write(
            self.journal_path(&state.stack),
            journal::encode_line(&JournalHeader::new(&state.stack, next.serial)),
        );
        Ok(next.serial)
    }

    /// Stages, in `txn`, moving stack `old` to `new`: its state (journal folded into the
    /// snapshot), its history and its fencing token; every file of `old` is removed. Both
    /// stacks' locks must be held (`old_token`, `new_token`).
    pub async fn stage_rename(
        &self,
        txn: &mut Transaction,
        old: &str,
        old_token: u64,
        new: &str,
        new_token: u64,
    ) -> Result<(), StateError> {
        validate_stack_name(old)?;
        validate_stack_name(new)?;
        for fence in [self.fence(old, old_token), self.fence(new, new_token)] {
            fence.check()?;
            txn.check(Box::new(move || fence.check()));
        }
        let mut state = self.load(old).await?.unwrap_or_else(|| StackState::new(old));
        state.stack = new.to_owned();
        self.stage_snapshot_files(txn, &state)?;
        if let Some(history) = read_if_exists(&self.history_path(old))? {
            txn.write(self.history_path(new), history);
        }
        // Tokens keep growing across the rename: they also identify runs in the history.
        txn.write(self.fence_path(new), old_token.max(new_token).to_string().into_bytes());
        for path in [
            self.snapshot_path(old),
            self.journal_path(old),
            self.history_path(old),
            self.fence_path(old),
            self.lock_path(old),
        ] {
            txn.remove(path);
        }
        Ok(())
    }

    /// Removes temporary files of `stack` left by a process killed in the middle of an atomic
    /// write. Only the lock holder may call it: no other writer of the stack exists.
    fn remove_stale_temporaries(&self, stack: &str) -> Result<(), StateError> {
        let dir = self.dir();
        let prefix = format!("{stack}.tmp-");
        let entries = fs::read_dir(&dir).map_err(|e| StateError::io("listing", &dir, e))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Exactly `<stack>.tmp-<pid>`: `a.tmp-5.json` is another stack's snapshot.
            let stale = name
                .strip_prefix(&prefix)
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if stale {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StateError::io("removing stale temporary file", &path, e)),
                }
            }
        }
        Ok(())
    }
}

/// The check every write makes: the writer's token must still be the stack's.
#[derive(Debug, Clone)]
struct Fence {
    path: PathBuf,
    stack: String,
    token: u64,
}

impl Fence {
    fn check(&self) -> Result<(), StateError> {
        let current = read_token(&self.path)?;
        if current == self.token {
            Ok(())
        } else {
            Err(StateError::LockLost { stack: self.stack.clone(), token: self.token, current })
        }
    }
}

fn read_token(path: &Path) -> Result<u64, StateError> {
    match read_if_exists(path)? {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes).ok().and_then(|t| t.trim().parse().ok()).ok_or_else(|| {
            StateError::Corrupt {
                file: path.to_owned(),
                reason: "not a fencing token (a decimal number); if no run is using the stack, write a number larger than any `run` in its history".into(),
            }
        }),
    }
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io("reading", path, e)),
    }
}

/// Syncs a directory, counted (see [`LocalBackend::syncs`]).
fn counted_sync_dir(dir: &Path, syncs: &AtomicU64) -> Result<(), StateError> {
    syncs.fetch_add(1, Ordering::Relaxed);
    sync_dir(dir)
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8], syncs: &AtomicU64) -> Result<(), StateError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| StateError::io("creating", &tmp, e))?;
    syncs.fetch_add(1, Ordering::Relaxed);
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| StateError::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StateError::io("renaming into place", path, e))?;
    counted_sync_dir(path.parent().unwrap_or(Path::new(".")), syncs)
}

/// Opens `path` for appending, creating it if needed; a new file's directory entry is fsynced
/// so the file survives a crash.
fn open_created(
    path: &Path,
    options: &mut OpenOptions,
    action: &'static str,
    syncs: &AtomicU64,
) -> Result<File, StateError> {
    let existed = path.exists();
    let file = options.open(path).map_err(|e| StateError::io(action, path, e))?;
    if !existed {
        counted_sync_dir(path.parent().unwrap_or(Path::new(".")), syncs)?;
    }
    Ok(file)
}

fn unknown_holder() -> LockInfo {
    LockInfo {
        user: "unknown".into(),
        host: "unknown".into(),
        pid: 0,
        since: "unknown".into(),
        command: "unknown".into(),
    }
}

struct LocalLock {
    file: File,
    token: u64,
}

impl StackLock for LocalLock {
    fn token(&self) -> u64 {
        self.token
    }
}

impl Drop for LocalLock {
    fn drop(&mut self) {
        // Clear the holder first so nobody reads a stale description after we let go.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

struct LocalJournal {
    file: File,
    path: PathBuf,
    bytes: u64,
    stack: String,
    cipher: Option<Arc<Cipher>>,
    fence: Fence,
    syncs: Arc<AtomicU64>,
}

#[async_trait]
impl Journal for LocalJournal {
    async fn append(&mut self, records: &[Record]) -> Result<(), StateError> {
        self.fence.check()?;
        let mut buf = Vec::new();
        for r in records {
            buf.extend(journal::encode_record(r, &self.stack, self.cipher.as_deref())?);
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| StateError::io("appending to", &self.path, e))?;
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }

    fn seals_secrets(&self) -> bool {
        self.cipher.is_some()
    }

    async fn lock(&self, stack: &str, holder: LockInfo) -> Result<Box<dyn StackLock>, StateError> {
        validate_stack_name(stack)?;
        self.ensure_dir()?;
        let path = self.lock_path(stack);
        let mut file = open_created(
            &path,
            OpenOptions::new().read(true).write(true).create(true).truncate(false),
            "opening lock file",
            &self.syncs,
        )?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = Box::new(serde_json::from_str(&text).unwrap_or_else(|_| unknown_holder()));
                return Err(StateError::Locked { stack: stack.to_owned(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(StateError::io("locking", &path, e)),
        }
        // Finish a rename or passphrase change a crash interrupted before reading anything.
        self.recover()?;
        let token = self.current_token(stack)? + 1;
        write_atomic(&self.fence_path(stack), token.to_string().as_bytes(), &self.syncs)?;
        self.remove_stale_temporaries(stack)?;
        let body = serde_json::to_vec(&holder).expect("lock info serializes");
        self.syncs.fetch_add(1, Ordering::Relaxed);
        file.set_len(0)
            .and_then(|_| file.write_all(&body))
            .and_then(|_| file.sync_data())
            .map_err(|e| StateError::io("writing lock file", &path, e))?;
        Ok(Box::new(LocalLock { file, token }))
    }

    async fn unlock(&self, stack: &str, force: bool) -> Result<Option<LockInfo>, StateError> {
        validate_stack_name(stack)?;
        let path = self.lock_path(stack);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io("opening lock file", &path, e)),
        };
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let described: Option<LockInfo> = serde_json::from_str(&text).ok();
        match file.try_lock() {
            Ok(()) => {
                // Nobody holds it: the kernel released the lock of a dead holder. Clear the
                // description it left.
                let _ = file.set_len(0);
                let _ = file.unlock();
                Ok(described)
            }
            Err(TryLockError::WouldBlock) => {
                let holder = described.unwrap_or_else(unknown_holder);
                if !force {
                    return Err(StateError::HeldByLiveHolder { stack: stack.to_owned(), holder: Box::new(holder) });
                }
                // Fence the old holder off first, so none of its writes land after the next
                // holder takes the lock; then unlink the lock file, whose flock it keeps on an
                // orphaned file, so the next `lock` creates and locks a fresh one.
                let token = self.current_token(stack)? + 1;
                write_atomic(&self.fence_path(stack), token.to_string().as_bytes(), &self.syncs)?;
                fs::remove_file(&path).map_err(|e| StateError::io("removing lock file", &path, e))?;
                sync_dir(&self.dir())?;
                Ok(Some(holder))
            }
            Err(TryLockError::Error(e)) => Err(StateError::io("locking", &path, e)),
        }
    }

    async fn load(&self, stack: &str) -> Result<Option<StackState>, StateError> {
        validate_stack_name(stack)?;
        let snap_path = self.snapshot_path(stack);
        let jpath = self.journal_path(stack);
        let snap = read_if_exists(&snap_path)?;
        let jbytes = read_if_exists(&jpath)?;
        if snap.is_none() && jbytes.is_none() {
            return Ok(None);
        }
        let mut state = match snap {
            Some(bytes) => snapshot::decode(&snap_path, stack, &bytes, self.cipher.as_deref())?,
            None => StackState::new(stack),
        };
        if let Some(parsed) = jbytes.map(|b| journal::decode(&jpath, &b, self.cipher.as_deref())).transpose()?.flatten()
        {
            if parsed.header.stack != stack {
                return Err(StateError::WrongStack {
                    file: jpath,
                    found: parsed.header.stack,
                    expected: stack.to_owned(),
                });
            }
            match parsed.header.base_serial.cmp(&state.serial) {
                // Left behind by a crash after its snapshot was written: already included.
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => parsed.records.iter().for_each(|r| state.apply(r)),
                std::cmp::Ordering::Greater => {
                    return Err(StateError::Corrupt {
                        file: jpath,
                        reason: format!(
                            "the journal continues snapshot {} but the snapshot is at {}; the snapshot may have been replaced by an older copy",
                            parsed.header.base_serial, state.serial
                        ),
                    });
                }
            }
        }
        Ok(Some(state))
    }

    async fn write_snapshot(&self, state: &StackState, token: u64) -> Result<u64, StateError> {
        validate_stack_name(&state.stack)?;
        self.ensure_dir()?;
        self.fence(&state.stack, token).check()?;
        let next = state.serial + 1;
        let snapshot = snapshot::encode_with_serial(state, next, self.cipher.as_deref())?;
        write_atomic(&self.snapshot_path(&state.stack), &snapshot, &self.syncs)?;
        drop(snapshot);
        let header = journal::encode_line(&JournalHeader::new(&state.stack, next));
        write_atomic(&self.journal_path(&state.stack), &header, &self.syncs)?;
        Ok(next)
    }

    async fn open_journal(&self, stack: &str, base_serial: u64, token: u64) -> Result<Box<dyn Journal>, StateError> {
        validate_stack_name(stack)?;
        self.ensure_dir()?;
        let fence = self.fence(stack, token);
        fence.check()?;
        let path = self.journal_path(stack);
        let existing = read_if_exists(&path)?;
        // How much of the file to keep, and whether its last line needs its newline.
        let (valid_len, terminate) =
            match existing.as_deref().map(|b| (b, journal::decode(&path, b, self.cipher.as_deref()))) {
                Some((bytes, Ok(Some(parsed))))
                    if parsed.header.base_serial == base_serial && parsed.header.stack == stack =>
                {
                    if parsed.unterminated {
                        (bytes.len() as u64, true)
                    } else {
                        // Drop a torn tail so new records never follow garbage.
                        (bytes.iter().rposition(|b| *b == b'\n').map(|i| i as u64 + 1).unwrap_or(0), false)
                    }
                }
                Some((_, Err(e))) => return Err(e),
                _ => (0, false),
            };
        let mut file =
            open_created(&path, OpenOptions::new().create(true).append(true), "opening journal", &self.syncs)?;
        // Truncating touches the file even to its own length; a run that writes nothing leaves it be.
        if existing.as_ref().map(|b| b.len() as u64) != Some(valid_len) {
            file.set_len(valid_len).map_err(|e| StateError::io("trimming journal", &path, e))?;
        }
        let mut bytes = valid_len;
        if terminate {
            self.syncs.fetch_add(1, Ordering::Relaxed);
            file.write_all(b"\n")
                .and_then(|_| file.sync_data())
                .map_err(|e| StateError::io("terminating the last line of", &path, e))?;
            bytes += 1;
        }
        if valid_len == 0 {
            let header = journal::encode_line(&JournalHeader::new(stack, base_serial));
            self.syncs.fetch_add(1, Ordering::Relaxed);
            file.write_all(&header)
                .and_then(|_| file.sync_data())
                .map_err(|e| StateError::io("writing journal", &path, e))?;
            bytes = header.len() as u64;
        }
        Ok(Box::new(LocalJournal {
            file,
            path,
            bytes,
            stack: stack.to_owned(),
            cipher: self.cipher.clone(),
            fence,
            syncs: self.syncs.clone(),
        }))
    }

    async fn list_stacks(&self) -> Result<Vec<String>, StateError> {
        let dir = self.dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::io("listing", &dir, e)),
        };
        let mut stacks: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").or_else(|| name.strip_suffix(".journal")).map(str::to_owned)
            })
            .filter(|s| validate_stack_name(s).is_ok())
            .collect();
        stacks.sort();
        stacks.dedup();
        Ok(stacks)
    }

    async fn append_history(&self, stack: &str, entry: &HistoryEntry, token: u64) -> Result<(), StateError> {
        validate_stack_name(stack)?;
        self.ensure_dir()?;
        self.fence(stack, token).check()?;
        let path = self.history_path(stack);
        let existing = read_if_exists(&path)?;
        let mut line = Vec::new();
        // A line torn by a crash must not swallow this entry.
        if existing.as_deref().is_some_and(|b| !b.is_empty() && !b.ends_with(b"\n")) {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(entry).expect("history serializes"));
        line.push(b'\n');
        let mut f = open_created(&path, OpenOptions::new().create(true).append(true), "opening history", &self.syncs)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        f.write_all(&line).and_then(|_| f.sync_data()).map_err(|e| StateError::io("appending to", &path, e))
    }

    async fn history(&self, stack: &str) -> Result<Vec<HistoryEntry>, StateError> {
        validate_stack_name(stack)?;
        let path = self.history_path(stack);
        let Some(bytes) = read_if_exists(&path)? else { return Ok(Vec::new()) };
        // A torn last line (a crash mid-append) is skipped; history is informational.
        let entries = bytes.split(|b| *b == b'\n').filter_map(|l| serde_json::from_slice(l).ok()).collect();
        let running = if self.is_locked(stack)? { Some(self.current_token(stack)?) } else { None };
        Ok(merge_history(entries, running))
    }

    async fn remove_stack(&self, stack: &str, token: u64) -> Result<(), StateError> {
        validate_stack_name(stack)?;
        self.fence(stack, token).check()?;
        for path in [
            self.snapshot_path(stack),
            self.journal_path(stack),
            self.history_path(stack),
            self.fence_path(stack),
            self.lock_path(stack),
        ] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StateError::io("removing", &path, e)),
            }
        }
        sync_dir(&self.dir())
    }
}

impl LocalBackend {
    /// Whether a live process holds the stack's lock. Probing takes a shared lock for an
    /// instant, so a `lock` racing with it may see the stack as locked.
    fn is_locked(&self, stack: &str) -> Result<bool, StateError> {
        let path = self.lock_path(stack);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StateError::io("opening lock file", &path, e)),
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                Ok(false)
            }
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(StateError::io("probing the lock", &path, e)),
        }
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[tokio::test]
    async fn history_appends_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        assert!(b.history("dev").await.unwrap().is_empty());
        let entry = HistoryEntry {
            started_at: "a".into(),
            finished_at: "b".into(),
            user: "u".into(),
            host: "h".into(),
            command: "up".into(),
            result: "succeeded".into(),
            changes: [("create".to_string(), 2)].into(),
            run: None,
        };
        let lock = b.lock("dev", LockInfo::current("up")).await.unwrap();
        b.append_history("dev", &entry, lock.token()).await.unwrap();
        b.append_history("dev", &entry, lock.token()).await.unwrap();
        assert_eq!(b.history("dev").await.unwrap(), vec![entry.clone(), entry]);
    }

    fn entry(run: u64, result: &str) -> HistoryEntry {
        HistoryEntry {
            started_at: format!("start {run}"),
            finished_at: String::new(),
            user: "u".into(),
            host: "h".into(),
            command: "up".into(),
            result: result.into(),
            changes: Default::default(),
            run: Some(run),
        }
    }

    #[tokio::test]
    async fn history_shows_a_run_that_never_finished_as_running_while_locked_then_did_not_finish() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        let first = b.lock("dev", LockInfo::current("up")).await.unwrap();
        let t1 = first.token();
        b.append_history("dev", &entry(t1, crate::STARTED), t1).await.unwrap();
        b.append_history("dev", &entry(t1, "succeeded"), t1).await.unwrap();
        drop(first);
        // The second run records its start, then dies without its final entry.
        let second = b.lock("dev", LockInfo::current("up")).await.unwrap();
        let t2 = second.token();
        b.append_history("dev", &entry(t2, crate::STARTED), t2).await.unwrap();
        let results = |h: Vec<HistoryEntry>| h.into_iter().map(|e| e.result).collect::<Vec<_>>();
        assert_eq!(results(b.history("dev").await.unwrap()), ["succeeded", crate::RUNNING]);
        drop(second);
        assert_eq!(results(b.history("dev").await.unwrap()), ["succeeded", crate::DID_NOT_FINISH]);
        // A later run does not make the dead one look alive.
        let third = b.lock("dev", LockInfo::current("up")).await.unwrap();
        assert_eq!(results(b.history("dev").await.unwrap()), ["succeeded", crate::DID_NOT_FINISH]);
        drop(third);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceState;
    use serde_json::json;
    use stackwright_core::Urn;

    fn resource(name: &str) -> ResourceState {
        ResourceState {
            urn: Urn::from(name),
            type_token: "builtin:Data".into(),
            provider: "builtin".into(),
            id: format!("id-{name}"),
            inputs: json!({"input": name}),
            outputs: json!({"output": name}),
            dependencies: vec![],
            protect: false,
            retain_on_delete: false,
        }
    }

    #[tokio::test]
    async fn journal_records_survive_and_compact_into_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        assert!(b.load("dev").await.unwrap().is_none());
        let lock = b.lock("dev", LockInfo::current("up")).await.unwrap();
        let token = lock.token();
        let serial = b.write_snapshot(&StackState::new("dev"), token).await.unwrap();
        let mut j = b.open_journal("dev", serial, token).await.unwrap();
        j.append(&[Record::Upsert { op: None, resource: resource("a"), retire_previous: false }]).await.unwrap();
        drop(j);
        let state = b.load("dev").await.unwrap().unwrap();
        assert!(state.resources.contains_key(&Urn::from("a")));

        // A torn append is dropped on load and trimmed when the journal is reopened.
        let jp = b.journal_path("dev");
        let mut f = OpenOptions::new().append(true).open(&jp).unwrap();
        f.write_all(b"0123 {\"record\":\"rem").unwrap();
        let state = b.load("dev").await.unwrap().unwrap();
        assert_eq!(state.resources.len(), 1);
        let mut j = b.open_journal("dev", state.serial, token).await.unwrap();
        j.append(&[Record::Upsert { op: None, resource: resource("b"), retire_previous: false }]).await.unwrap();
        let state = b.load("dev").await.unwrap().unwrap();
        assert_eq!(state.resources.len(), 2);

        let serial = b.write_snapshot(&state, token).await.unwrap();
        let reloaded = b.load("dev").await.unwrap().unwrap();
        assert_eq!(reloaded.serial, serial);
        assert_eq!(reloaded.resources, state.resources);
        assert_eq!(b.list_stacks().await.unwrap(), vec!["dev".to_string()]);
    }

    #[tokio::test]
    async fn syncs_count_every_fsync_a_write_asks_for() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        assert_eq!(b.syncs(), 0);
        // A first lock: the new lock file's directory entry, the fencing token (file and
        // directory), the holder's description.
        let lock = b.lock("dev", LockInfo::current("up")).await.unwrap();
        assert_eq!(b.syncs(), 4);
        // A snapshot is two atomic replacements (snapshot, fresh journal): file and directory each.
        let serial = b.write_snapshot(&StackState::new("dev"), lock.token()).await.unwrap();
        assert_eq!(b.syncs(), 8);
        // Reopening the journal it left writes no new header.
        let mut j = b.clone().open_journal("dev", serial, lock.token()).await.unwrap();
        assert_eq!(b.syncs(), 8);
        j.append(&[Record::Upsert { op: None, resource: resource("a"), retire_previous: false }]).await.unwrap();
        j.append(&[Record::Remove { op: None, urn: Urn::from("a") }]).await.unwrap();
        assert_eq!(b.syncs(), 10, "one per append, counted on the backend the journal came from");
        drop(lock);
        // The lock file exists now: the token and the holder only.
        drop(b.lock("dev", LockInfo::current("up")).await.unwrap());
        assert_eq!(b.syncs(), 13);
        b.load("dev").await.unwrap();
        assert_eq!(b.syncs(), 13, "reading syncs nothing");
    }

    #[tokio::test]
    async fn a_second_lock_names_the_holder_and_unlock_breaks_it() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        let held = b.lock("dev", LockInfo::current("up")).await.unwrap();
        let err = b.lock("dev", LockInfo::current("destroy")).await.err().expect("second lock must fail");
        let msg = err.to_string();
        assert!(msg.contains("locked by") && msg.contains("`up`") && msg.contains("stack unlock"), "{msg}");
        drop(held);
        let again = b.lock("dev", LockInfo::current("up")).await.unwrap();
        assert!(b.unlock("dev", true).await.unwrap().is_some());
        drop(again);
    }

    #[tokio::test]
    async fn unlock_refuses_a_live_holder_and_force_fences_off_its_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        let old = b.lock("dev", LockInfo::current("up (stuck)")).await.unwrap();
        let serial = b.write_snapshot(&StackState::new("dev"), old.token()).await.unwrap();
        let mut old_journal = b.open_journal("dev", serial, old.token()).await.unwrap();

        let err = b.unlock("dev", false).await.unwrap_err();
        assert!(matches!(err, StateError::HeldByLiveHolder { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("`up (stuck)`") && msg.contains("still running") && msg.contains("--force"), "{msg}");
        assert!(b.lock("dev", LockInfo::current("up")).await.is_err(), "refusing must not break the lock");

        let holder = b.unlock("dev", true).await.unwrap().expect("the holder is named");
        assert_eq!(holder.command, "up (stuck)");
        // Fenced off at once, before anyone else takes the lock.
        let refused = b.write_snapshot(&StackState::new("dev"), old.token()).await;
        assert!(matches!(refused, Err(StateError::LockLost { .. })), "{refused:?}");
        let new = b.lock("dev", LockInfo::current("up")).await.expect("the lock is free after --force");
        assert!(new.token() > old.token());

        let lost = |r: Result<(), StateError>| matches!(r, Err(StateError::LockLost { .. }));
        let rec = [Record::Upsert { op: None, resource: resource("late"), retire_previous: false }];
        assert!(lost(old_journal.append(&rec).await), "journal append with the old token");
        assert!(lost(b.write_snapshot(&StackState::new("dev"), old.token()).await.map(|_| ())), "snapshot");
        assert!(lost(b.open_journal("dev", serial, old.token()).await.map(|_| ())), "open journal");
        let h = HistoryEntry {
            started_at: "a".into(),
            finished_at: "b".into(),
            user: "u".into(),
            host: "h".into(),
            command: "up".into(),
            result: "succeeded".into(),
            changes: Default::default(),
            run: Some(old.token()),
        };
        assert!(lost(b.append_history("dev", &h, old.token()).await), "history");
        assert!(lost(b.remove_stack("dev", old.token()).await), "remove");
        let msg = b.write_snapshot(&StackState::new("dev"), old.token()).await.unwrap_err().to_string();
        assert!(msg.contains("lost its lock") && msg.contains("stack `dev`"), "{msg}");
        assert!(b.load("dev").await.unwrap().unwrap().resources.is_empty(), "nothing of the old holder landed");

        // The new holder writes normally, and the old holder letting go does not free its lock.
        b.write_snapshot(&StackState::new("dev"), new.token()).await.unwrap();
        drop(old);
        assert!(b.lock("dev", LockInfo::current("up")).await.is_err());
        drop(new);
    }

    #[tokio::test]
    async fn unlock_of_a_lock_whose_holder_died_returns_its_description() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        assert!(b.unlock("dev", false).await.unwrap().is_none());
        // A killed holder leaves its description but no flock.
        let dead = LockInfo { pid: 4_000_000, ..LockInfo::current("up") };
        fs::create_dir_all(b.dir()).unwrap();
        fs::write(b.lock_path("dev"), serde_json::to_vec(&dead).unwrap()).unwrap();
        assert_eq!(b.unlock("dev", false).await.unwrap(), Some(dead));
        assert!(b.unlock("dev", false).await.unwrap().is_none(), "the description was cleared");
    }

    #[tokio::test]
    async fn a_journal_whose_last_record_lost_its_newline_keeps_it_and_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        let lock = b.lock("dev", LockInfo::current("up")).await.unwrap();
        let serial = b.write_snapshot(&StackState::new("dev"), lock.token()).await.unwrap();
        let mut j = b.open_journal("dev", serial, lock.token()).await.unwrap();
        j.append(&[Record::Upsert { op: None, resource: resource("a"), retire_previous: false }]).await.unwrap();
        drop(j);
        let jp = b.journal_path("dev");
        let bytes = fs::read(&jp).unwrap();
        fs::write(&jp, &bytes[..bytes.len() - 1]).unwrap();

        let state = b.load("dev").await.unwrap().unwrap();
        assert!(state.resources.contains_key(&Urn::from("a")), "the unterminated record is kept");
        let mut j = b.open_journal("dev", state.serial, lock.token()).await.unwrap();
        j.append(&[Record::Upsert { op: None, resource: resource("b"), retire_previous: false }]).await.unwrap();
        drop(j);
        let state = b.load("dev").await.unwrap().unwrap();
        assert_eq!(state.resources.keys().map(|u| u.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(fs::read(&jp).unwrap().ends_with(b"\n"));
    }

    #[tokio::test]
    async fn stale_temporary_files_of_a_stack_are_removed_when_its_lock_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        fs::create_dir_all(b.dir()).unwrap();
        let stale = b.dir().join("dev.tmp-12345");
        let other_stack = b.dir().join("dev.tmp-5.json");
        let other_tmp = b.dir().join("prod.tmp-12345");
        for p in [&stale, &other_stack, &other_tmp] {
            fs::write(p, "x").unwrap();
        }
        let lock = b.lock("dev", LockInfo::current("up")).await.unwrap();
        assert!(!stale.exists(), "a killed writer's temporary file is removed");
        assert!(other_stack.exists() && other_tmp.exists(), "other stacks' files are left alone");
        drop(lock);
    }

    #[tokio::test]
    async fn a_rename_moves_state_history_and_token_and_removes_the_old_stack() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        for _ in 0..2 {
            drop(b.lock("dev", LockInfo::current("up")).await.unwrap());
        }
        let old = b.lock("dev", LockInfo::current("up")).await.unwrap();
        let serial = b.write_snapshot(&StackState::new("dev"), old.token()).await.unwrap();
        let mut j = b.open_journal("dev", serial, old.token()).await.unwrap();
        j.append(&[Record::Upsert { op: None, resource: resource("a"), retire_previous: false }]).await.unwrap();
        drop(j);
        let h = HistoryEntry {
            started_at: "a".into(),
            finished_at: "b".into(),
            user: "u".into(),
            host: "h".into(),
            command: "up".into(),
            result: "succeeded".into(),
            changes: Default::default(),
            run: Some(old.token()),
        };
        b.append_history("dev", &h, old.token()).await.unwrap();
        let new = b.lock("prod", LockInfo::current("stack rename")).await.unwrap();
        let mut txn = b.transaction();
        b.stage_rename(&mut txn, "dev", old.token(), "prod", new.token()).await.unwrap();
        assert_eq!(b.list_stacks().await.unwrap(), ["dev"], "nothing changes before the commit");
        txn.commit().unwrap();
        assert_eq!(b.list_stacks().await.unwrap(), ["prod"]);
        let state = b.load("prod").await.unwrap().unwrap();
        assert_eq!(state.stack, "prod");
        assert!(state.resources.contains_key(&Urn::from("a")));
        assert_eq!(b.history("prod").await.unwrap(), [h]);
        assert!(b.load("dev").await.unwrap().is_none() && b.history("dev").await.unwrap().is_empty());
        let old_token = old.token();
        drop((old, new));
        let next = b.lock("prod", LockInfo::current("up")).await.unwrap();
        assert_eq!(
            next.token(),
            old_token + 1,
            "tokens keep growing across the rename (they name runs in the history)"
        );
    }

    #[tokio::test]
    async fn a_corrupt_snapshot_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        let lock = b.lock("dev", LockInfo::current("up")).await.unwrap();
        b.write_snapshot(&StackState::new("dev"), lock.token()).await.unwrap();
        let p = b.snapshot_path("dev");
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
        let err = b.load("dev").await.unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert_eq!(fs::read(&p).unwrap(), &bytes[..bytes.len() - 10]);
        assert!(b.load("../x").await.is_err());
    }
}
