//! The local directory backend, the embedded default: one snapshot, one journal and one lock
//! file per stack under `<root>/stacks/`. Snapshots are replaced atomically (write, fsync,
//! rename, fsync the directory); journal appends are fsynced before they return.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::backend::{Backend, Journal, LockInfo, StackLock, validate_stack_name};
use crate::error::StateError;
use crate::journal::{self, JournalHeader};
use crate::model::{HistoryEntry, Record, StackState};
use crate::secrets::Cipher;
use crate::snapshot;

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

    fn history_path(&self, stack: &str) -> PathBuf {
        self.dir().join(format!("{stack}.history.jsonl"))
    }

    fn lock_path(&self, stack: &str) -> PathBuf {
        self.dir().join(format!("{stack}.lock"))
    }

    fn ensure_dir(&self) -> Result<PathBuf, StateError> {
        let dir = self.dir();
        fs::create_dir_all(&dir).map_err(|e| StateError::io("creating state directory", &dir, e))?;
        Ok(dir)
    }
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io("reading", path, e)),
    }
}

fn sync_dir(dir: &Path, syncs: &AtomicU64) -> Result<(), StateError> {
    syncs.fetch_add(1, Ordering::Relaxed);
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StateError::io("syncing directory", dir, e))
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8], syncs: &AtomicU64) -> Result<(), StateError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| StateError::io("creating", &tmp, e))?;
    syncs.fetch_add(1, Ordering::Relaxed);
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| StateError::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StateError::io("renaming into place", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")), syncs)
}

struct LocalLock {
    file: File,
}

impl StackLock for LocalLock {}

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
    syncs: Arc<AtomicU64>,
}

#[async_trait]
impl Journal for LocalJournal {
    async fn append(&mut self, records: &[Record]) -> Result<(), StateError> {
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
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StateError::io("opening lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = serde_json::from_str(&text).map(Box::new).unwrap_or_else(|_| {
                    Box::new(LockInfo {
                        user: "unknown".into(),
                        host: "unknown".into(),
                        pid: 0,
                        since: "unknown".into(),
                        command: "unknown".into(),
                    })
                });
                return Err(StateError::Locked { stack: stack.to_owned(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(StateError::io("locking", &path, e)),
        }
        let body = serde_json::to_vec(&holder).expect("lock info serializes");
        self.syncs.fetch_add(1, Ordering::Relaxed);
        file.set_len(0)
            .and_then(|_| file.write_all(&body))
            .and_then(|_| file.sync_data())
            .map_err(|e| StateError::io("writing lock file", &path, e))?;
        Ok(Box::new(LocalLock { file }))
    }

    async fn force_unlock(&self, stack: &str) -> Result<Option<LockInfo>, StateError> {
        validate_stack_name(stack)?;
        let path = self.lock_path(stack);
        let holder = read_if_exists(&path)?.and_then(|b| serde_json::from_slice(&b).ok());
        match fs::remove_file(&path) {
            Ok(()) => Ok(holder),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::io("removing lock file", &path, e)),
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

    async fn write_snapshot(&self, state: &StackState) -> Result<u64, StateError> {
        validate_stack_name(&state.stack)?;
        self.ensure_dir()?;
        let next = state.serial + 1;
        let snapshot = snapshot::encode_with_serial(state, next, self.cipher.as_deref())?;
        write_atomic(&self.snapshot_path(&state.stack), &snapshot, &self.syncs)?;
        drop(snapshot);
        let header = journal::encode_line(&JournalHeader::new(&state.stack, next));
        write_atomic(&self.journal_path(&state.stack), &header, &self.syncs)?;
        Ok(next)
    }

    async fn open_journal(&self, stack: &str, base_serial: u64) -> Result<Box<dyn Journal>, StateError> {
        validate_stack_name(stack)?;
        self.ensure_dir()?;
        let path = self.journal_path(stack);
        let existing = read_if_exists(&path)?;
        let valid_len = match existing.as_deref().map(|b| (b, journal::decode(&path, b, self.cipher.as_deref()))) {
            Some((bytes, Ok(Some(parsed))))
                if parsed.header.base_serial == base_serial && parsed.header.stack == stack =>
            {
                // Drop a torn tail so new records never follow garbage.
                bytes.iter().rposition(|b| *b == b'\n').map(|i| i as u64 + 1).unwrap_or(0)
            }
            Some((_, Err(e))) => return Err(e),
            _ => 0,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StateError::io("opening journal", &path, e))?;
        // Truncating touches the file even to its own length; a run that writes nothing leaves it be.
        if existing.as_ref().map(|b| b.len() as u64) != Some(valid_len) {
            file.set_len(valid_len).map_err(|e| StateError::io("trimming journal", &path, e))?;
        }
        let mut bytes = valid_len;
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

    async fn append_history(&self, stack: &str, entry: &HistoryEntry) -> Result<(), StateError> {
        validate_stack_name(stack)?;
        self.ensure_dir()?;
        let path = self.history_path(stack);
        let mut line = serde_json::to_vec(entry).expect("history serializes");
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StateError::io("opening history", &path, e))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        f.write_all(&line).and_then(|_| f.sync_data()).map_err(|e| StateError::io("appending to", &path, e))
    }

    async fn history(&self, stack: &str) -> Result<Vec<HistoryEntry>, StateError> {
        validate_stack_name(stack)?;
        let path = self.history_path(stack);
        let Some(bytes) = read_if_exists(&path)? else { return Ok(Vec::new()) };
        // A torn last line (a crash mid-append) is skipped; history is informational.
        Ok(bytes.split(|b| *b == b'\n').filter_map(|l| serde_json::from_slice(l).ok()).collect())
    }

    async fn remove_stack(&self, stack: &str) -> Result<(), StateError> {
        validate_stack_name(stack)?;
        for path in
            [self.snapshot_path(stack), self.journal_path(stack), self.history_path(stack), self.lock_path(stack)]
        {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StateError::io("removing", &path, e)),
            }
        }
        Ok(())
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
        };
        b.append_history("dev", &entry).await.unwrap();
        b.append_history("dev", &entry).await.unwrap();
        assert_eq!(b.history("dev").await.unwrap(), vec![entry.clone(), entry]);
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
        let serial = b.write_snapshot(&StackState::new("dev")).await.unwrap();
        let mut j = b.open_journal("dev", serial).await.unwrap();
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
        let mut j = b.open_journal("dev", state.serial).await.unwrap();
        j.append(&[Record::Upsert { op: None, resource: resource("b"), retire_previous: false }]).await.unwrap();
        let state = b.load("dev").await.unwrap().unwrap();
        assert_eq!(state.resources.len(), 2);

        let serial = b.write_snapshot(&state).await.unwrap();
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
        // A snapshot is two atomic replacements (snapshot, fresh journal): file and directory each.
        let serial = b.write_snapshot(&StackState::new("dev")).await.unwrap();
        assert_eq!(b.syncs(), 4);
        // Reopening the journal it left writes no new header.
        let mut j = b.clone().open_journal("dev", serial).await.unwrap();
        assert_eq!(b.syncs(), 4);
        j.append(&[Record::Upsert { op: None, resource: resource("a"), retire_previous: false }]).await.unwrap();
        j.append(&[Record::Remove { op: None, urn: Urn::from("a") }]).await.unwrap();
        assert_eq!(b.syncs(), 6, "one per append, counted on the backend the journal came from");
        let lock = b.lock("dev", LockInfo::current("up")).await.unwrap();
        drop(lock);
        assert_eq!(b.syncs(), 7);
        b.load("dev").await.unwrap();
        assert_eq!(b.syncs(), 7, "reading syncs nothing");
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
        assert!(b.force_unlock("dev").await.unwrap().is_some());
        drop(again);
    }

    #[tokio::test]
    async fn a_corrupt_snapshot_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        b.write_snapshot(&StackState::new("dev")).await.unwrap();
        let p = b.snapshot_path("dev");
        let bytes = fs::read(&p).unwrap();
        fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
        let err = b.load("dev").await.unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert_eq!(fs::read(&p).unwrap(), &bytes[..bytes.len() - 10]);
        assert!(b.load("../x").await.is_err());
    }
}
