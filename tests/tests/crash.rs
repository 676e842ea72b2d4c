//! Crash safety: `up` is SIGKILLed at random points, many times, while the program changes
//! between runs. Afterwards one clean `up` must converge, and the world must match the state
//! exactly: no orphan (an object the state does not know) and no duplicate (two objects for one
//! resource).
//!
//! The same loop runs against providers of increasing realism: one that uses the operation id
//! as the object id (so recovery is easy), one whose server picks the ids (recovery must search
//! the tag written at create time), one that cannot search at all (the user settles each
//! interrupted create with `stack pending resolve`), and one whose
//! answers get lost after the server committed, with the kill landing inside the retry.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use stackwright::builtin::testing::World;
use stackwright_state::{Backend, OpKind, StackState};

mod common;

const PASSPHRASE: &str = "correct horse";
const BIN: &str = env!("CARGO_BIN_EXE_fixture-program");
/// What the engine prints when the next `up` stops on an operation the provider cannot settle.
const UNCERTAIN: &str = "stack pending resolve";
/// What the CLI prints when a call will be retried.
const RETRYING: &str = " will be retried in ";

/// One provider set-up for the crash loop.
#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    /// Environment for the fixture program selecting the provider's behaviour.
    env: &'static [(&'static str, &'static str)],
    /// Runs before the clean one (`SW_CRASH_RUNS` overrides).
    runs: usize,
    /// Provider latency per call (half before the work, half after).
    latency_ms: u64,
    /// `find` answers "unknown": the next `up` may stop, and the test resolves by looking.
    blind: bool,
    /// One call per run loses its answer after the work; the kill is aimed at the retry.
    lost_answers: bool,
}

/// What happened over all runs of a variant.
#[derive(Debug, Default)]
struct Counts {
    runs: usize,
    kills: usize,
    /// Kills that left a pending operation on disk (a provider call was in flight).
    kills_mid_call: usize,
    /// Kills that left a pending create whose object the server had already made.
    kills_after_commit: usize,
    completed: usize,
    /// Runs that stopped by themselves on an operation of unknown outcome.
    uncertain_stops: usize,
    /// Runs that failed by themselves leaving a create pending (a lost answer, then a conflict).
    failed_pending: usize,
    resolved_created: usize,
    resolved_absent: usize,
    orphans: usize,
    duplicates: usize,
    missing: usize,
}

struct Dirs {
    _root: tempfile::TempDir,
    world: std::path::PathBuf,
    state: std::path::PathBuf,
    project: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let (world, state, project) = (root.path().join("world"), root.path().join("state"), root.path().join("project"));
    std::fs::create_dir_all(&project).unwrap();
    common::write_project_config(&project, "crash", PASSPHRASE);
    Dirs { _root: root, world, state, project }
}

fn command(dirs: &Dirs, variant: &Variant, generation: u64, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .args(["--stack", "crash"])
        .arg("--state-dir")
        .arg(&dirs.state)
        .arg("--project-dir")
        .arg(&dirs.project)
        .env("SW_WORLD", &dirs.world)
        .env("STACKWRIGHT_PASSPHRASE", PASSPHRASE)
        .env("SW_N", "24")
        .env("SW_GEN", generation.to_string())
        .env("SW_LATENCY_MS", variant.latency_ms.to_string())
        .envs(variant.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn load_state(dirs: &Dirs) -> Option<StackState> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(common::project_backend(&dirs.state, &dirs.project, "crash", PASSPHRASE).load("crash")).unwrap()
}

/// Pending creates, as (resource, operation id).
fn pending_creates(dirs: &Dirs) -> Vec<(String, String)> {
    let state = load_state(dirs).unwrap_or_default();
    state
        .pending
        .iter()
        .filter(|(_, p)| p.kind == OpKind::Create)
        .map(|(op, p)| (p.urn.to_string(), op.clone()))
        .collect()
}

/// The object the server made for operation `op`, if any: what a user finds by looking at the
/// real system for the marker the create wrote.
fn object_tagged(dirs: &Dirs, op: &str) -> Option<String> {
    World::directory(&dirs.world).items().into_iter().find(|(_, i)| i.tag.as_deref() == Some(op)).map(|(id, _)| id)
}

/// Settles every pending create the way a user would: an object carrying the operation's tag
/// exists → `--created ID`, else `--absent`.
fn resolve_by_looking(dirs: &Dirs, variant: &Variant, generation: u64, counts: &mut Counts) {
    let pending = pending_creates(dirs);
    assert!(!pending.is_empty(), "{}: the run stopped on an uncertain operation but none is pending", variant.name);
    for (name, op) in pending {
        let mut c = command(dirs, variant, generation, &["stack", "pending", "resolve", &name]);
        match object_tagged(dirs, &op) {
            Some(id) => {
                c.args(["--created", &id]);
                counts.resolved_created += 1;
            }
            None => {
                c.arg("--absent");
                counts.resolved_absent += 1;
            }
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "resolving {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Parses the retry delay the CLI prints (`512ms`, `1.2s`).
fn retry_delay(line: &str) -> Duration {
    let after = line.split(RETRYING).nth(1).and_then(|r| r.split(':').next()).unwrap_or("0ms");
    if let Some(ms) = after.strip_suffix("ms") {
        Duration::from_millis(ms.parse().unwrap_or(0))
    } else if let Some(s) = after.strip_suffix('s') {
        Duration::from_secs_f64(s.parse().unwrap_or(0.0))
    } else {
        Duration::ZERO
    }
}

/// What a run did: killed by us, or ended by itself with its status and its output (stdout
/// then stderr).
enum Outcome {
    Killed,
    Ended { success: bool, output: String },
}

/// Runs one `up` and kills it at a random point.
fn run_once(dirs: &Dirs, variant: &Variant, generation: u64, rng: &mut rand::rngs::StdRng) -> Outcome {
    let mut c = command(dirs, variant, generation, &["up", "--yes", "--parallel", "4"]);
    if variant.lost_answers {
        c.env("SW_LOSE_ANSWER_AT", rng.random_range(1..=20u64).to_string());
    }
    let mut child = c.stdout(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut ended = false;
    let mut seen = String::new();
    let mut read_line = |line: &mut String| {
        line.clear();
        let more = reader.read_line(line).unwrap() > 0;
        seen.push_str(line);
        more
    };
    let pause = if variant.lost_answers {
        // Wait for the retry of the call whose answer was lost, then kill at the end of the
        // backoff, during the retry, or just after it: the server has committed, the engine
        // does not know it.
        let mut pause = Duration::ZERO;
        loop {
            if !read_line(&mut line) {
                ended = true;
                break;
            }
            if line.contains(RETRYING) {
                let delay = retry_delay(&line);
                // From just before the retry starts to well after it ended (the retry takes
                // about `latency_ms`), so some kills find its answer already recorded.
                let window = Duration::from_millis(3 * variant.latency_ms + 10);
                pause = delay.saturating_sub(Duration::from_millis(5)) + window.mul_f64(rng.random_range(0.0..1.0));
                break;
            }
        }
        pause
    } else {
        // Kill after a random number of finished steps plus a random slice of a provider call,
        // so kills land both between steps and in the middle of calls, whatever the machine's
        // speed.
        let steps_before_kill = rng.random_range(0..20);
        let mut finished_steps = 0;
        while finished_steps < steps_before_kill {
            if !read_line(&mut line) {
                ended = true;
                break;
            }
            if [": created", ": updated", ": replaced", ": deleted"].iter().any(|w| line.contains(w)) {
                finished_steps += 1;
            }
        }
        Duration::from_micros(rng.random_range(0..1500 * variant.latency_ms))
    };
    // Keep draining stdout while waiting, so the child never blocks on a full pipe.
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        rest
    });
    if !ended {
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1).min(until.saturating_duration_since(Instant::now())));
        }
    }
    let status = if ended { Some(child.wait().unwrap()) } else { child.try_wait().unwrap() };
    let outcome = match status {
        Some(status) => {
            let mut stderr = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
            Outcome::Ended { success: status.success(), output: stderr }
        }
        None => {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            Outcome::Killed
        }
    };
    let rest = drain.join().unwrap_or_default();
    match outcome {
        Outcome::Ended { success, output } => Outcome::Ended { success, output: format!("{seen}{rest}{output}") },
        killed => killed,
    }
}

fn audit(dirs: &Dirs) -> (usize, usize, usize) {
    let state = load_state(dirs).unwrap();
    let world = World::directory(&dirs.world).items();
    let known: BTreeSet<&String> = state.resources.values().map(|r| &r.id).collect();
    let orphans = world.keys().filter(|id| !known.contains(id)).count();
    let missing = known.iter().filter(|id| !world.contains_key(**id)).count();
    let mut per_urn: BTreeMap<&String, usize> = BTreeMap::new();
    for item in world.values() {
        *per_urn.entry(&item.urn).or_default() += 1;
    }
    let duplicates = per_urn.values().filter(|n| **n > 1).count();
    (orphans, duplicates, missing)
}

/// The crash loop for one variant, then a clean convergence and the audit.
fn crash_loop(variant: Variant) -> Counts {
    let runs: usize = std::env::var("SW_CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(variant.runs);
    let seed: u64 = std::env::var("SW_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261122);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dirs = dirs();
    let mut counts = Counts { runs, ..Counts::default() };
    for run in 0..runs {
        // The program changes on every run: values, replacements and removals.
        let generation = run as u64;
        match run_once(&dirs, &variant, generation, &mut rng) {
            Outcome::Killed => {
                counts.kills += 1;
                let state = load_state(&dirs).unwrap_or_default();
                if !state.pending.is_empty() {
                    counts.kills_mid_call += 1;
                }
                if state.pending.iter().any(|(op, p)| p.kind == OpKind::Create && object_tagged(&dirs, op).is_some()) {
                    counts.kills_after_commit += 1;
                }
            }
            Outcome::Ended { success: true, .. } => counts.completed += 1,
            Outcome::Ended { success: false, output } if variant.blind && output.contains(UNCERTAIN) => {
                counts.uncertain_stops += 1;
                resolve_by_looking(&dirs, &variant, generation, &mut counts);
            }
            Outcome::Ended { success: false, output }
                if variant.lost_answers && output.contains("lost answer") && !pending_creates(&dirs).is_empty() =>
            {
                counts.failed_pending += 1;
            }
            Outcome::Ended { success: false, output } => {
                panic!("{}: run {run} failed without being killed: {output}", variant.name)
            }
        }
    }
    // The clean run (no lost answers); a blind provider may first need the user's answers.
    let last_generation = runs as u64;
    let mut converged = false;
    for _ in 0..3 {
        let out = command(&dirs, &variant, last_generation, &["up", "--yes"]).output().unwrap();
        if out.status.success() {
            converged = true;
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(variant.blind && stderr.contains(UNCERTAIN), "{}: the clean run failed: {stderr}", variant.name);
        counts.uncertain_stops += 1;
        resolve_by_looking(&dirs, &variant, last_generation, &mut counts);
    }
    assert!(converged, "{}: no convergence after resolving", variant.name);
    let out = command(&dirs, &variant, last_generation, &["preview", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}: after convergence nothing is left to do", variant.name);
    (counts.orphans, counts.duplicates, counts.missing) = audit(&dirs);
    eprintln!("crash test [{}]: {counts:?}", variant.name);
    assert!(
        counts.kills_mid_call > 0,
        "{}: no kill landed during a provider call; it would prove little",
        variant.name
    );
    assert_eq!(
        (counts.orphans, counts.duplicates, counts.missing),
        (0, 0, 0),
        "{}: the world matches the state",
        variant.name
    );
    counts
}

#[test]
fn sigkill_at_random_points_loses_nothing_and_duplicates_nothing() {
    let variant =
        Variant { name: "operation ids", env: &[], runs: 60, latency_ms: 4, blind: false, lost_answers: false };
    let counts = crash_loop(variant);
    assert!(counts.kills >= counts.runs / 2, "too few runs were actually killed: {counts:?}");
}

#[test]
fn sigkill_with_server_chosen_ids_is_recovered_by_searching_the_tag() {
    let variant = Variant {
        name: "server ids",
        env: &[("SW_SERVER_IDS", "1")],
        runs: 30,
        latency_ms: 4,
        blind: false,
        lost_answers: false,
    };
    let counts = crash_loop(variant);
    assert!(counts.kills >= counts.runs / 2, "too few runs were actually killed: {counts:?}");
}

#[test]
fn sigkill_with_a_provider_that_cannot_find_is_settled_by_resolving_each_pending_create() {
    let variant = Variant {
        name: "no find",
        env: &[("SW_SERVER_IDS", "1"), ("SW_NO_FIND", "1")],
        runs: 30,
        latency_ms: 4,
        blind: true,
        lost_answers: false,
    };
    let counts = crash_loop(variant);
    assert!(counts.kills >= counts.runs / 3, "too few runs were actually killed: {counts:?}");
    assert!(counts.uncertain_stops > 0, "no run stopped on an uncertain create; it would prove little: {counts:?}");
    assert!(counts.resolved_created + counts.resolved_absent >= counts.uncertain_stops);
}

#[test]
fn sigkill_inside_a_retry_after_the_server_committed_is_adopted_not_duplicated() {
    let variant = Variant {
        name: "lost answers",
        // Every run replaces every item, so most lost answers are creates.
        env: &[("SW_SERVER_IDS", "1"), ("SW_UNIQUE_KEYS", "1"), ("SW_REPLACE_EVERY_RUN", "1")],
        runs: 24,
        latency_ms: 20,
        blind: false,
        lost_answers: true,
    };
    let counts = crash_loop(variant);
    assert!(counts.kills >= counts.runs / 2, "too few runs were actually killed: {counts:?}");
    assert!(counts.kills_after_commit > 0, "no kill left a committed, unacknowledged create: {counts:?}");
}
