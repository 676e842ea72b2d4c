//! Crash safety: `up` is SIGKILLed at random points, many times, while the program changes
//! between runs. Afterwards one clean `up` must converge, and the world must match the state
//! exactly: no orphan (an object the state does not know) and no duplicate (two objects for one
//! resource).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use stackwright::builtin::testing::World;
use stackwright_state::{Backend, LocalBackend};

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
    std::fs::write(project.join("Stackwright.crash.toml"), "").unwrap();
    Dirs { _root: root, world, state, project }
}

fn pending_operations(state_dir: &Path) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    match runtime.block_on(LocalBackend::new(state_dir).load("crash")) {
        Ok(Some(state)) => state.pending.len(),
        _ => 0,
    }
}

fn audit(world_dir: &Path, state_dir: &Path) -> (usize, usize, usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let state = runtime.block_on(LocalBackend::new(state_dir).load("crash")).unwrap().unwrap();
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
        // Every two runs the program changes: values, replacements and removals.
        let generation = run as u64 / 2;
        let mut child = command(&dirs, generation, &["up", "--yes", "--parallel", "4"]).spawn().unwrap();
        // The kill point is the fault being injected, not a synchronisation: any moment is fair.
        let kill_after = Duration::from_millis(rng.random_range(5..300));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() >= kill_after {
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        match status {
            Some(status) => {
                let out = child.wait_with_output().unwrap();
                assert!(
                    status.success(),
                    "run {run} failed without being killed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                completed += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL on Unix
                child.wait().unwrap();
                kills += 1;
                if pending_operations(&dirs.state) > 0 {
                    kills_mid_call += 1;
                }
            }
        }
    }
    let last_generation = runs as u64 / 2;
    let out = command(&dirs, last_generation, &["up", "--yes"]).output().unwrap();
    assert!(out.status.success(), "the clean run failed: {}", String::from_utf8_lossy(&out.stderr));
    let out = command(&dirs, last_generation, &["preview", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "after convergence nothing is left to do");
    let (orphans, duplicates, missing) = audit(&dirs.world, &dirs.state);
    println!(
        "crash test: {runs} runs, {kills} killed ({kills_mid_call} with a provider call in flight), {completed} completed, {orphans} orphans, {duplicates} duplicates, {missing} missing"
    );
    assert!(kills >= runs / 4, "too few runs were actually killed ({kills}); the test would prove little");
    assert!(kills_mid_call > 0, "no kill landed during a provider call; the test would prove little");
    assert_eq!((orphans, duplicates, missing), (0, 0, 0));
}
