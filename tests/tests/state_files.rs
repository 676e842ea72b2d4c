//! The state files under the real command line: `stack unlock` against a live holder and its
//! fencing, killed runs in `stack history`, and `stack rename` / `stack change-passphrase`
//! killed at every write of their transaction (the fixture program is built with the state
//! crate's `failpoints` feature, so `STACKWRIGHT_FAILPOINT=txn:N` exits at the N-th write).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Output, Stdio};

use stackwright_state::{Backend, LockInfo, StackState, StateError};

mod common;

const PASSPHRASE: &str = "correct horse";
const NEW_PASSPHRASE: &str = "battery staple";
/// The exit code of a process stopped by a failpoint.
const FAILPOINT_EXIT: i32 = 86;

type Project = common::CliProject;

fn project() -> Project {
    common::CliProject::new(PASSPHRASE)
}

/// What the state-file tests ask of a project besides running commands.
trait ProjectExt {
    fn ok(&self, args: &[&str]) -> String;
    fn stacks_dir(&self) -> PathBuf;
}

impl ProjectExt for Project {
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stacks_dir(&self) -> PathBuf {
        self.state.join("stacks")
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// A stack `dev` with resources, a secret configuration value, two runs in its history, and
/// selected as the current stack.
fn deployed() -> Project {
    let p = project();
    p.ok(&["config", "set", "db_password", "hunter2", "--secret", "--stack", "dev"]);
    p.ok(&["up", "--stack", "dev", "--yes"]);
    p.ok(&["refresh", "--stack", "dev"]);
    p.ok(&["stack", "select", "dev"]);
    p
}

/// Files a transaction leaves while it is unfinished, anywhere in the project or state.
fn transaction_leftovers(p: &Project) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [&p.project, &p.state, &p.stacks_dir()] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".txn-new") || (name.starts_with(".txn-") && name != ".txn.lock") {
                found.push(name);
            }
        }
    }
    found
}

fn state_files_of(p: &Project, stack: &str) -> Vec<String> {
    ["json", "journal", "history.jsonl"]
        .iter()
        .map(|ext| format!("{stack}.{ext}"))
        .filter(|f| p.stacks_dir().join(f).exists())
        .collect()
}

#[test]
fn stack_unlock_refuses_a_live_holder_and_force_fences_off_its_writes() {
    let p = project();
    p.ok(&["up", "--stack", "dev", "--yes"]);
    let rt = runtime();
    let backend = common::project_backend(&p.state, &p.project, "dev", PASSPHRASE);
    let holder = LockInfo { command: "up (hung, held by the test)".into(), ..LockInfo::current("x") };
    let lock = rt.block_on(backend.lock("dev", holder)).unwrap();
    let state = rt.block_on(backend.load("dev")).unwrap().unwrap();

    let out = p.run(&["stack", "unlock", "--stack", "dev"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("up (hung, held by the test)") && t.contains("still running") && t.contains("--force"), "{t}");
    let out = p.run(&["up", "--stack", "dev", "--yes"]);
    assert!(text(&out).contains("is locked by"), "the lock still holds: {}", text(&out));

    let out = p.run(&["stack", "unlock", "--stack", "dev", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning") && err.contains("up (hung, held by the test)"), "{err}");

    // The old holder is still alive, but nothing it writes lands any more.
    let mut emptied = state.clone();
    emptied.resources.clear();
    let refused = rt.block_on(backend.write_snapshot(&emptied, lock.token())).unwrap_err();
    assert!(matches!(refused, StateError::LockLost { .. }), "{refused}");
    assert!(rt.block_on(backend.open_journal("dev", state.serial, lock.token())).is_err());
    let out = p.run(&["up", "--stack", "dev", "--yes"]);
    assert!(out.status.success(), "a new holder runs: {}", text(&out));
    assert_eq!(rt.block_on(backend.load("dev")).unwrap().unwrap().resources.len(), state.resources.len());
    drop(lock);
}

#[test]
fn a_killed_up_shows_in_history_as_running_then_did_not_finish() {
    let p = project();
    let mut child = p
        .command_with(PASSPHRASE, &["up", "--stack", "dev", "--yes", "--parallel", "1"])
        .env("SW_N", "40")
        .env("SW_LATENCY_MS", "40")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("created") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "up ended before any step finished");
    }
    let history = p.ok(&["stack", "history", "--stack", "dev"]);
    assert!(history.contains("running"), "{history}");
    child.kill().unwrap();
    child.wait().unwrap();

    let history = p.ok(&["stack", "history", "--stack", "dev", "--json"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    assert_eq!(entries.len(), 1, "{history}");
    assert_eq!(entries[0]["result"], "did not finish");
    assert_eq!(entries[0]["command"], "up");

    p.ok(&["up", "--stack", "dev", "--yes"]);
    let history = p.ok(&["stack", "history", "--stack", "dev"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 2, "{history}");
    assert!(lines[0].contains("did not finish") && lines[1].contains("succeeded"), "{history}");
}

/// Runs `args` with the failpoint at N = 1, 2, … on a fresh deployed project each time, calling
/// `check` after every kill and after the run that completes; returns how many writes it took.
fn kill_at_every_write(args: &[&str], new_passphrase: bool, check: impl Fn(&Project, bool, &Snapshot)) -> u32 {
    for n in 1..100 {
        let p = deployed();
        let before = Snapshot::take(&p, "dev", PASSPHRASE);
        let mut c = p.command_with(PASSPHRASE, args);
        c.env("STACKWRIGHT_FAILPOINT", format!("txn:{n}"));
        if new_passphrase {
            c.env("STACKWRIGHT_NEW_PASSPHRASE", NEW_PASSPHRASE);
        }
        let out = c.output().unwrap();
        let completed = out.status.success();
        if !completed {
            assert_eq!(out.status.code(), Some(FAILPOINT_EXIT), "N={n}: {}", text(&out));
        }
        check(&p, completed, &before);
        assert!(transaction_leftovers(&p).is_empty(), "N={n}: {:?}", transaction_leftovers(&p));
        if completed {
            assert!(n > 1, "the failpoint never fired: is the fixture built with `failpoints`?");
            return n - 1;
        }
    }
    panic!("the command never completed");
}

/// What a stack looks like from the outside.
#[derive(Debug, PartialEq)]
struct Snapshot {
    outputs: serde_json::Value,
    history: Vec<(String, String)>,
    secret: String,
}

impl Snapshot {
    fn take(p: &Project, stack: &str, passphrase: &str) -> Snapshot {
        let run = |args: &[&str]| {
            let out = p.run_with(passphrase, args);
            assert!(out.status.success(), "{args:?}: {}", text(&out));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let outputs = serde_json::from_str(&run(&["output", "--stack", stack, "--json", "--show-secrets"])).unwrap();
        let history: Vec<serde_json::Value> =
            serde_json::from_str(&run(&["stack", "history", "--stack", stack, "--json"])).unwrap();
        let history = history
            .iter()
            .map(|h| (h["command"].as_str().unwrap().to_owned(), h["result"].as_str().unwrap().to_owned()))
            .collect();
        let secret = run(&["config", "get", "db_password", "--show-secrets", "--stack", stack]).trim().to_owned();
        // Nothing to do: the program and the state agree.
        let out = p.run_with(passphrase, &["preview", "--stack", stack, "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        Snapshot { outputs, history, secret }
    }
}

#[test]
fn stack_rename_killed_at_any_write_leaves_the_stack_wholly_old_or_wholly_new() {
    let writes = kill_at_every_write(&["stack", "rename", "prod"], false, |p, completed, before| {
        let ls = p.ok(&["stack", "ls"]);
        let (present, absent) = if ls.contains("prod") { ("prod", "dev") } else { ("dev", "prod") };
        assert!(!completed || present == "prod", "a completed rename leaves `prod`: {ls}");
        assert!(ls.contains(&format!("* {present}")) && ls.contains("has state"), "{ls}");
        assert!(!ls.contains(absent), "{ls}");
        assert!(p.project.join(format!("Stackwright.{present}.toml")).exists());
        assert!(!p.project.join(format!("Stackwright.{absent}.toml")).exists());
        assert!(state_files_of(p, absent).is_empty(), "{:?}", state_files_of(p, absent));
        // The same outputs, configuration and history (kept across the rename).
        assert_eq!(&Snapshot::take(p, present, PASSPHRASE), before, "as `{present}`");
        // The selection moved with it: a command without --stack finds it.
        let out = p.run(&["output", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = p.run(&["output", "--stack", absent]);
        assert!(text(&out).contains("does not exist"), "{}", text(&out));
    });
    eprintln!("stack rename: killed at each of its {writes} writes");
    assert!(writes >= 10, "the rename took {writes} writes");
}

#[test]
fn change_passphrase_killed_at_any_write_leaves_exactly_one_passphrase_working() {
    let writes =
        kill_at_every_write(&["stack", "change-passphrase", "--stack", "dev"], true, |p, completed, before| {
            let old = p.run_with(PASSPHRASE, &["output", "--stack", "dev", "--json", "--show-secrets"]);
            let new = p.run_with(NEW_PASSPHRASE, &["output", "--stack", "dev", "--json", "--show-secrets"]);
            assert!(old.status.success() != new.status.success(), "old: {}\nnew: {}", text(&old), text(&new));
            let (working, wrong) = if old.status.success() { (PASSPHRASE, &new) } else { (NEW_PASSPHRASE, &old) };
            assert!(!completed || working == NEW_PASSPHRASE, "a completed change leaves the new passphrase");
            assert!(text(wrong).contains("passphrase is wrong"), "{}", text(wrong));
            assert_eq!(&Snapshot::take(p, "dev", working), before, "with the {working:?} passphrase");
            // The state opens with the same passphrase as the configuration: no half-changed stack.
            let backend = common::project_backend(&p.state, &p.project, "dev", working);
            let state: StackState = runtime().block_on(backend.load("dev")).unwrap().unwrap();
            assert!(!state.resources.is_empty());
        });
    eprintln!("stack change-passphrase: killed at each of its {writes} writes");
    assert!(writes >= 5, "the change took {writes} writes");
}
