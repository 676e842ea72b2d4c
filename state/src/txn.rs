//! All-or-nothing changes to several files (a stack rename, a passphrase change), made with a
//! small redo log: every new file is written under a temporary name next to its target, an
//! intent file lists the renames and removals, and only once all of it is durable does the
//! intent become committed; then the files are moved into place and the intent is removed.
//! Whoever opens the state next rolls a committed intent forward and discards an uncommitted one,
//! so after a crash at any point the files are either all old or all new.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::StateError;

/// The suffix of a new file's content while its transaction is not yet applied.
const STAGED_SUFFIX: &str = ".txn-new";
/// The prefix of intent files in the state directory.
const INTENT_PREFIX: &str = ".txn-";
/// The lock that serialises committing and recovering transactions.
const TXN_LOCK: &str = ".txn.lock";

/// The redo log of one transaction.
#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    /// Whether every staged file is durable and the transaction must be rolled forward.
    committed: bool,
    /// `(staged, target)` pairs: each staged file replaces its target.
    renames: Vec<(PathBuf, PathBuf)>,
    /// Files that the transaction removes.
    removes: Vec<PathBuf>,
}

/// A check made before the commit point; failing it aborts the transaction.
type Precondition = Box<dyn Fn() -> Result<(), StateError> + Send + Sync>;

/// A set of file writes and removals that happen all together or not at all.
pub struct Transaction {
    dir: PathBuf,
    writes: Vec<(PathBuf, Vec<u8>)>,
    removes: Vec<PathBuf>,
    checks: Vec<Precondition>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // File contents may hold sealed secrets and are large: show only the paths.
        f.debug_struct("Transaction")
            .field("dir", &self.dir)
            .field("writes", &self.writes.iter().map(|(p, _)| p).collect::<Vec<_>>())
            .field("removes", &self.removes)
            .finish()
    }
}

impl Transaction {
    /// An empty transaction whose intent lives in `dir` (the state directory's `stacks`).
    pub(crate) fn new(dir: PathBuf) -> Self {
        Transaction { dir, writes: Vec::new(), removes: Vec::new(), checks: Vec::new() }
    }

    /// Replaces (or creates) `path` with `bytes`.
    pub fn write(&mut self, path: impl Into<PathBuf>, bytes: Vec<u8>) {
        self.writes.push((path.into(), bytes));
    }

    /// Removes `path` (nothing happens if it does not exist).
    pub fn remove(&mut self, path: impl Into<PathBuf>) {
        self.removes.push(path.into());
    }

    /// Adds a check run just before the commit point (e.g. that a fencing token is current).
    pub(crate) fn check(&mut self, check: Precondition) {
        self.checks.push(check);
    }

    /// Makes every change durable, all or nothing. A crash before the commit point leaves the
    /// old files; a crash after it is completed by the next [`recover`].
    pub fn commit(self) -> Result<(), StateError> {
        let mut steps = Failpoint::from_env();
        fs::create_dir_all(&self.dir).map_err(|e| StateError::io("creating state directory", &self.dir, e))?;
        let _guard = lock_txns(&self.dir)?;
        recover_locked(&self.dir)?;
        for check in &self.checks {
            check()?;
        }
        let mut renames = Vec::new();
        for (target, _) in &self.writes {
            let target = std::path::absolute(target).map_err(|e| StateError::io("resolving", target, e))?;
            let mut staged = target.clone().into_os_string();
            staged.push(STAGED_SUFFIX);
            renames.push((PathBuf::from(staged), target));
        }
        let removes = self
            .removes
            .iter()
            .map(|p| std::path::absolute(p).map_err(|e| StateError::io("resolving", p, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut intent = Intent { committed: false, renames, removes };
        let intent_path = self.dir.join(format!("{INTENT_PREFIX}{}-{}.json", std::process::id(), unique()));

        // The intent is written before any staged file, so a crash leaves nothing unlisted.
        steps.step();
        write_intent(&intent_path, &intent)?;
        for ((staged, _), (_, bytes)) in intent.renames.iter().zip(&self.writes) {
            steps.step();
            let mut f = File::create(staged).map_err(|e| StateError::io("creating", staged, e))?;
            f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| StateError::io("writing", staged, e))?;
        }
        for dir in dirs(&intent) {
            sync_dir(&dir)?;
        }
        for check in &self.checks {
            if let Err(e) = check() {
                discard(&intent)?;
                remove_file(&intent_path)?;
                return Err(e);
            }
        }
        // The commit point: from here on the transaction happens, even across a crash.
        intent.committed = true;
        steps.step();
        write_intent(&intent_path, &intent)?;
        apply(&intent, &mut steps)?;
        steps.step();
        remove_file(&intent_path)?;
        sync_dir(&self.dir)
    }
}

/// Finishes or discards the transactions a crash left in `dir`: committed ones are rolled
/// forward, uncommitted ones are discarded. Waits while a transaction is being committed.
pub fn recover(dir: &Path) -> Result<(), StateError> {
    // Look before locking: with nothing to recover, reading commands write nothing, so they
    // also work on a read-only copy of the state.
    let pending = match fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(INTENT_PREFIX) && name != TXN_LOCK
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(StateError::io("listing", dir, e)),
    };
    if !pending {
        return Ok(());
    }
    let _guard = lock_txns(dir)?;
    recover_locked(dir)
}

fn recover_locked(dir: &Path) -> Result<(), StateError> {
    let entries = fs::read_dir(dir).map_err(|e| StateError::io("listing", dir, e))?;
    let mut found = false;
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == TXN_LOCK || !name.starts_with(INTENT_PREFIX) {
            continue;
        }
        let path = entry.path();
        found = true;
        if !name.ends_with(".json") {
            // A temporary file of an intent being written when the process died.
            remove_file(&path)?;
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| StateError::io("reading", &path, e))?;
        let intent: Intent = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            file: path.clone(),
            reason: format!("unreadable transaction intent ({e}); it lists the files of an interrupted stack rename or passphrase change — inspect them, then remove it"),
        })?;
        if intent.committed {
            apply(&intent, &mut Failpoint::default())?;
        } else {
            discard(&intent)?;
        }
        remove_file(&path)?;
    }
    if found { sync_dir(dir) } else { Ok(()) }
}

/// Moves every staged file into place and removes the removed files; each step is idempotent,
/// so a crash in the middle is finished by running it again.
fn apply(intent: &Intent, steps: &mut Failpoint) -> Result<(), StateError> {
    for (staged, target) in &intent.renames {
        steps.step();
        match fs::rename(staged, target) {
            Ok(()) => {}
            // Already moved by an earlier, interrupted roll-forward.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StateError::io("moving into place", target, e)),
        }
    }
    for path in &intent.removes {
        steps.step();
        remove_file(path)?;
    }
    for dir in dirs(intent) {
        sync_dir(&dir)?;
    }
    Ok(())
}

fn discard(intent: &Intent) -> Result<(), StateError> {
    for (staged, _) in &intent.renames {
        remove_file(staged)?;
    }
    Ok(())
}

fn dirs(intent: &Intent) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = intent
        .renames
        .iter()
        .map(|(_, t)| t)
        .chain(&intent.removes)
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn write_intent(path: &Path, intent: &Intent) -> Result<(), StateError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let bytes = serde_json::to_vec(intent).expect("intents serialize");
    let mut f = File::create(&tmp).map_err(|e| StateError::io("creating", &tmp, e))?;
    f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| StateError::io("writing", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StateError::io("renaming into place", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn remove_file(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StateError::io("removing", path, e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StateError::io("syncing directory", dir, e))
}

/// Takes the transaction lock; it is released when the returned file is closed.
fn lock_txns(dir: &Path) -> Result<File, StateError> {
    let path = dir.join(TXN_LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StateError::io("opening", &path, e))?;
    file.lock().map_err(|e| StateError::io("locking", &path, e))?;
    Ok(file)
}

fn unique() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// Exits the process abruptly at a chosen step of a commit, for crash tests: with the
/// `failpoints` feature, `STACKWRIGHT_FAILPOINT=txn:N` exits just before the N-th write.
#[derive(Debug, Default)]
struct Failpoint {
    at: Option<u32>,
    done: u32,
}

impl Failpoint {
    #[cfg(feature = "failpoints")]
    fn from_env() -> Self {
        let at = std::env::var("STACKWRIGHT_FAILPOINT")
            .ok()
            .and_then(|v| v.strip_prefix("txn:").and_then(|n| n.parse().ok()));
        Failpoint { at, done: 0 }
    }

    #[cfg(not(feature = "failpoints"))]
    fn from_env() -> Self {
        Failpoint::default()
    }

    fn step(&mut self) {
        self.done += 1;
        if self.at == Some(self.done) {
            eprintln!("failpoint txn:{} reached: exiting", self.done);
            // No destructors, no cleanup: as close to a SIGKILL as a process can do to itself.
            std::process::exit(86);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(INTENT_PREFIX) || n.ends_with(STAGED_SUFFIX))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_commit_replaces_writes_and_removes_together() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
        fs::write(&a, "old a").unwrap();
        fs::write(&c, "old c").unwrap();
        let mut txn = Transaction::new(dir.path().to_owned());
        txn.write(&a, b"new a".to_vec());
        txn.write(&b, b"new b".to_vec());
        txn.remove(&c);
        txn.commit().unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(fs::read_to_string(&b).unwrap(), "new b");
        assert!(!c.exists());
        assert!(intent_files(dir.path()).is_empty());
    }

    #[test]
    fn recovery_rolls_a_committed_intent_forward_and_discards_an_uncommitted_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, c) = (dir.path().join("a"), dir.path().join("c"));
        fs::write(&a, "old a").unwrap();
        fs::write(&c, "old c").unwrap();
        let staged = dir.path().join(format!("a{STAGED_SUFFIX}"));
        let intent =
            |committed| Intent { committed, renames: vec![(staged.clone(), a.clone())], removes: vec![c.clone()] };

        fs::write(&staged, "new a").unwrap();
        write_intent(&dir.path().join(".txn-1.json"), &intent(false)).unwrap();
        recover(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert!(c.exists());
        assert!(intent_files(dir.path()).is_empty(), "{:?}", intent_files(dir.path()));

        fs::write(&staged, "new a").unwrap();
        write_intent(&dir.path().join(".txn-2.json"), &intent(true)).unwrap();
        recover(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "new a");
        assert!(!c.exists());
        assert!(intent_files(dir.path()).is_empty());
    }

    #[test]
    fn recovery_with_nothing_to_do_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        recover(&dir.path().join("missing")).unwrap();
        recover(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "not even the transaction lock file");
    }

    #[test]
    fn a_failed_check_aborts_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fs::write(&a, "old a").unwrap();
        let mut txn = Transaction::new(dir.path().to_owned());
        txn.write(&a, b"new a".to_vec());
        txn.check(Box::new(|| Err(StateError::LockLost { stack: "dev".into(), token: 1, current: 2 })));
        assert!(matches!(txn.commit(), Err(StateError::LockLost { .. })));
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert!(intent_files(dir.path()).is_empty());
    }
}
