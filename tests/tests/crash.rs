//! Crash safety: `up` is SIGKILLed at random points, many times, while the program changes
//! between runs. Afterwards one clean `up` must converge, and the world must match the state
//! exactly: no orphan (an object the state does not know) and no duplicate (two objects for one
//! resource).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use stackwright::builtin::testing::World;
use stackwright_state::Backend;

mod common;

const PASSPHRASE: &str = "correct horse";
const BIN: &str = env!("CARGO_BIN_EXE_fixture-program");

fn command(dirs: &Dirs, generation: u64, args: &[&str]) -> Command {
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
        .env("SW_LATENCY_MS", "4")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
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

fn pending_operations(state_dir: &Path, project: &Path) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    match runtime.block_on(common::project_backend(state_dir, project, "crash", PASSPHRASE).load("crash")) {
        Ok(Some(state)) => state.pending.len(),
        _ => 0,
    }
}

fn audit(world_dir: &Path, state_dir: &Path, project: &Path) -> (usize, usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let state = runtime
        .block_on(common::project_backend(state_dir, project, "crash", PASSPHRASE).load("crash"))
        .unwrap()
        .unwrap();
    let world = World::directory(world_dir).items();
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

#[test]
fn sigkill_at_random_points_loses_nothing_and_duplicates_nothing() {
    let runs: usize = std::env::var("SW_CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let seed: u64 = std::env::var("SW_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261122);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dirs = dirs();
    let (mut kills, mut kills_mid_call, mut completed) = (0, 0, 0);
    for run in 0..runs {
        // The program changes on every run: values, replacements and removals.
        let generation = run as u64;
        let mut child =
            command(&dirs, generation, &["up", "--yes", "--parallel", "4"]).stdout(Stdio::piped()).spawn().unwrap();
        // Kill after a random number of finished steps plus a random slice of a provider call,
        // so kills land both between steps and in the middle of calls, whatever the machine's
        // speed.
        let steps_before_kill = rng.random_range(0..20);
        let extra = Duration::from_micros(rng.random_range(0..6000));
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut finished_steps = 0;
        let mut line = String::new();
        let mut ended = false;
        while finished_steps < steps_before_kill {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                ended = true;
                break;
            }
            if [": created", ": updated", ": replaced", ": deleted"].iter().any(|w| line.contains(w)) {
                finished_steps += 1;
            }
        }
        if !ended {
            std::thread::sleep(extra);
        }
        let status = if ended { Some(child.wait().unwrap()) } else { child.try_wait().unwrap() };
        match status {
            Some(status) => {
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut e| std::io::Read::read_to_string(&mut e, &mut err));
                assert!(status.success(), "run {run} failed without being killed: {err}");
                completed += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                kills += 1;
                if pending_operations(&dirs.state, &dirs.project) > 0 {
                    kills_mid_call += 1;
                }
            }
        }
    }
    let last_generation = runs as u64;
    let out = command(&dirs, last_generation, &["up", "--yes"]).output().unwrap();
    assert!(out.status.success(), "the clean run failed: {}", String::from_utf8_lossy(&out.stderr));
    let out = command(&dirs, last_generation, &["preview", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "after convergence nothing is left to do");
    let (orphans, duplicates, missing) = audit(&dirs.world, &dirs.state, &dirs.project);
    println!(
        "crash test: {runs} runs, {kills} killed ({kills_mid_call} with a provider call in flight), {completed} completed, {orphans} orphans, {duplicates} duplicates, {missing} missing"
    );
    assert!(kills >= runs / 2, "too few runs were actually killed ({kills}); the test would prove little");
    assert!(kills_mid_call > 0, "no kill landed during a provider call; the test would prove little");
    assert_eq!((orphans, duplicates, missing), (0, 0, 0));
}
