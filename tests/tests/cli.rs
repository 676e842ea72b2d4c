//! The command line against bad input and signals: unknown stacks, bad flags, a locked stack,
//! corrupt or newer state files, CI exit codes, and Ctrl-C during an update.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use stackwright::builtin::testing::World;
use stackwright_state::{Backend, LockInfo};

mod common;

const PASSPHRASE: &str = "correct horse";

type Project = common::CliProject;

fn project() -> Project {
    common::CliProject::new(PASSPHRASE)
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn an_unknown_stack_is_named_with_what_to_do() {
    let p = project();
    let out = p.run(&["up", "--yes", "--stack", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("stack `prod` does not exist") && t.contains("stack init prod") && t.contains("dev"), "{t}");
    let out = p.run(&["preview"]);
    assert!(text(&out).contains("no stack selected"), "{}", text(&out));
}

#[test]
fn a_bad_flag_is_named() {
    let p = project();
    let out = p.run(&["up", "--stack", "dev", "--parallel", "0"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("--parallel"), "{}", text(&out));
    let out = p.run(&["up", "--stack", "dev"]);
    assert!(!out.status.success(), "without a terminal, up needs --yes");
    assert!(text(&out).contains("--yes"), "{}", text(&out));
}

#[test]
fn detailed_exit_codes_tell_ci_whether_there_are_changes() {
    let p = project();
    assert_eq!(p.run(&["preview", "--stack", "dev", "--detailed-exitcode"]).status.code(), Some(2));
    let out = p.run(&["up", "--stack", "dev", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(p.run(&["preview", "--stack", "dev", "--detailed-exitcode"]).status.code(), Some(0));
    assert_eq!(p.run(&["preview", "--stack", "dev"]).status.code(), Some(0));
    let out = p.run(&["output", "--stack", "dev", "first_value"]);
    assert!(text(&out).contains("\"gen\""), "{}", text(&out));
}

#[test]
fn a_locked_stack_names_its_holder_and_unlock_frees_it() {
    let p = project();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let backend = common::project_backend(&p.state, &p.project, "dev", PASSPHRASE);
    let holder = LockInfo { command: "up (held by the test)".into(), ..LockInfo::current("x") };
    let lock = runtime.block_on(backend.lock("dev", holder)).unwrap();
    let out = p.run(&["up", "--stack", "dev", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("is locked by") && t.contains("up (held by the test)") && t.contains("stack unlock"), "{t}");
    drop(lock);
    assert!(p.run(&["up", "--stack", "dev", "--yes"]).status.success());
}

#[test]
fn corrupt_and_newer_state_files_are_refused_and_left_alone() {
    let p = project();
    assert!(p.run(&["up", "--stack", "dev", "--yes"]).status.success());
    let file = p.state.join("stacks/dev.json");
    let good = std::fs::read(&file).unwrap();

    let truncated = &good[..good.len() / 2];
    std::fs::write(&file, truncated).unwrap();
    let out = p.run(&["up", "--stack", "dev", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is corrupt") && text(&out).contains("dev.json"), "{}", text(&out));
    assert_eq!(std::fs::read(&file).unwrap(), truncated, "the corrupt file is never overwritten");

    let newer = String::from_utf8(good.clone()).unwrap().replacen("\"version\":1", "\"version\":7", 1);
    std::fs::write(&file, &newer).unwrap();
    let out = p.run(&["preview", "--stack", "dev"]);
    assert!(text(&out).contains("format version 7"), "{}", text(&out));
    assert_eq!(std::fs::read(&file).unwrap(), newer.as_bytes());

    std::fs::write(&file, &good).unwrap();
    assert_eq!(p.run(&["preview", "--stack", "dev", "--detailed-exitcode"]).status.code(), Some(0));
}

fn interrupt(pid: u32) {
    let status = Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// A slow `up` of 40 items, two at a time, caught while a call is in flight.
struct SlowUp {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    stderr: BufReader<std::process::ChildStderr>,
    /// The objects in the world at that moment; the last one made is still being returned.
    in_flight_world: BTreeSet<String>,
}

/// Starts a slow `up` and returns while a provider call is in flight: its pending record is
/// durable and its object exists, and the response is still on its way. The caller waits for it.
///
/// Each call spends half its latency before doing its work and half after. `item-0` is made
/// alone (everything else depends on it, directly or not); the next object to appear belongs
/// to a call started after `item-0` finished, which has half a second left to run then.
#[allow(clippy::zombie_processes)]
fn start_slow_up(p: &Project) -> SlowUp {
    let mut child = p
        .command(&["up", "--stack", "dev", "--yes", "--parallel", "2"])
        .env("SW_N", "40")
        .env("SW_LATENCY_MS", "1000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let world = World::directory(&p.world);
    // Waits on what the provider has done, not on time: objects appear as calls do their work.
    let in_flight_world = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("up ended ({status}) before a second object was made");
        }
        let ids: BTreeSet<String> = world.items().into_keys().collect();
        if ids.len() >= 2 {
            break ids;
        }
        std::thread::yield_now();
    };
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    SlowUp { child, stdout, stderr, in_flight_world }
}

/// Reads `reader` up to and including the first line containing `needle`.
fn read_until_line(reader: &mut impl BufRead, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("the stream ended without a line containing {needle:?}: {seen}");
        }
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
}

fn load_state(p: &Project) -> stackwright_state::StackState {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(common::project_backend(&p.state, &p.project, "dev", PASSPHRASE).load("dev")).unwrap().unwrap()
}

fn ids(state: &stackwright_state::StackState) -> BTreeSet<String> {
    state.resources.values().map(|r| r.id.clone()).collect()
}

fn world_ids(p: &Project) -> BTreeSet<String> {
    World::directory(&p.world).items().into_keys().collect()
}

/// The (name, op) of every step of a JSON plan (`preview --json` or a saved plan) that changes
/// something.
fn changes_of(steps: &serde_json::Value) -> BTreeSet<(String, String)> {
    steps
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] != "same")
        .map(|s| (s["urn"].as_str().unwrap().to_owned(), s["op"].as_str().unwrap().to_owned()))
        .collect()
}

/// The (name, op) of every step an `up` reported as finished, and how many progress lines
/// there were. A replacement reports its old object's delete on a line of its own; that line
/// belongs to the replace step.
fn finished_steps(stdout: &str) -> (BTreeSet<(String, String)>, usize) {
    let ops = [("created", "create"), ("updated", "update"), ("replaced", "replace"), ("deleted", "delete")];
    let lines: Vec<(String, String)> = stdout
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.trim_start().split_once(' ')?.1.trim_start().split_once(": ")?;
            let op = ops.iter().find(|(done, _)| rest.starts_with(done))?.1;
            Some((name.to_owned(), op.to_owned()))
        })
        .collect();
    let replaced: BTreeSet<&String> = lines.iter().filter(|(_, op)| op == "replace").map(|(n, _)| n).collect();
    let steps = lines.iter().filter(|(n, op)| !(op == "delete" && replaced.contains(n))).cloned().collect();
    (steps, lines.len())
}

#[test]
fn ctrl_c_finishes_running_steps_persists_and_exits_non_zero() {
    let p = project();
    let SlowUp { mut child, mut stdout, mut stderr, in_flight_world } = start_slow_up(&p);
    interrupt(child.id());
    read_until_line(&mut stderr, "Interrupted: no new steps will start");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("was interrupted") && rest.contains("not started"), "{rest}");

    // The steps that were running finished and were recorded: nothing is pending, and every
    // object the provider made is in the state, none half-made.
    let state = load_state(&p);
    assert!(state.pending.is_empty(), "pending operations left: {:?}", state.pending);
    let done = state.resources.len();
    assert!(done > 0 && done < 40, "{done} resources");
    assert!(in_flight_world.is_subset(&ids(&state)), "the call in flight at Ctrl-C finished and was recorded");
    assert_eq!(world_ids(&p), ids(&state), "the world holds exactly the recorded objects");

    // What is left to do is exactly the creates of the resources that had not started.
    let out =
        p.command(&["preview", "--stack", "dev", "--detailed-exitcode", "--json"]).env("SW_N", "40").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let not_started: BTreeSet<(String, String)> = (0..40)
        .map(|i| format!("item-{i}"))
        .filter(|n| !state.resources.contains_key(&stackwright::Urn::from(n.as_str())))
        .map(|n| (n, "create".to_owned()))
        .collect();
    assert_eq!(not_started.len(), 40 - done);
    assert_eq!(changes_of(&report["plan"]["steps"]), not_started);
    assert_eq!(report["pending"], 0);

    let out = p.command(&["up", "--stack", "dev", "--yes"]).env("SW_N", "40").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(World::directory(&p.world).items().len(), 40);
}

#[test]
fn a_second_ctrl_c_stops_at_once_and_the_next_run_reconciles() {
    let p = project();
    let SlowUp { mut child, stdout: _stdout, mut stderr, .. } = start_slow_up(&p);
    interrupt(child.id());
    // The second press only after the first was seen, so it cannot be mistaken for the first.
    read_until_line(&mut stderr, "Interrupted: no new steps will start");
    interrupt(child.id());
    let said = read_until_line(&mut stderr, "Stopped.");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{said}");

    // It stopped while calls were in flight: their pending records are in the state.
    let state = load_state(&p);
    assert!(
        !state.pending.is_empty(),
        "no operation was in flight when it stopped: {said}\n{}",
        text(&p.run(&["state", "ls", "--stack", "dev"]))
    );
    let pending: BTreeSet<String> = state.pending.values().map(|o| o.urn.to_string()).collect();

    // The next run reconciles each of them, and ends with no duplicates, orphans or pending.
    let out = p.command(&["up", "--stack", "dev", "--yes"]).env("SW_N", "40").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let reconciled: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("↺"))
        .filter_map(|l| l.trim_start().split_once(':').map(|(urn, _)| urn.to_owned()))
        .collect();
    assert_eq!(reconciled, pending, "{}", text(&out));
    let state = load_state(&p);
    assert!(state.pending.is_empty());
    assert_eq!(state.resources.len(), 40);
    assert_eq!(world_ids(&p), ids(&state), "no duplicates, nothing missing, no orphans");
}

#[test]
fn history_state_surgery_and_stack_export_import() {
    let p = project();
    assert!(p.run(&["up", "--stack", "dev", "--yes"]).status.success());
    let out = p.run(&["stack", "history", "--stack", "dev"]);
    assert!(
        text(&out).contains("up") && text(&out).contains("succeeded") && text(&out).contains("6 create"),
        "{}",
        text(&out)
    );

    // state rm refuses a resource others depend on, unless forced; the object stays.
    let out = p.run(&["state", "rm", "item-0", "--stack", "dev"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("used by item-1"), "{}", text(&out));
    let out = p.run(&["state", "mv", "item-5", "item-five", "--stack", "dev"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = p.run(&["state", "mv", "item-4", "item-3", "--stack", "dev"]);
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert!(p.run(&["state", "rm", "item-five", "--stack", "dev"]).status.success());
    let ls = text(&p.run(&["state", "ls", "--stack", "dev"]));
    assert!(!ls.contains("item-5") && !ls.contains("item-five") && ls.contains("item-4"), "{ls}");
    assert_eq!(stackwright::builtin::testing::World::directory(&p.world).items().len(), 6, "objects untouched");

    // Export, damage the stack, import the export back.
    let export = p.root_file("dev-export.json");
    assert!(p.run(&["stack", "export", "--stack", "dev", "--file", export.to_str().unwrap()]).status.success());
    assert!(p.run(&["state", "rm", "item-4", "--stack", "dev", "--force"]).status.success());
    assert!(p.run(&["stack", "import", "--stack", "dev", "--file", export.to_str().unwrap()]).status.success());
    assert!(text(&p.run(&["state", "ls", "--stack", "dev"])).contains("item-4"));

    // An export of another stack is refused, naming both.
    common::write_project_config(&p.project, "prod", PASSPHRASE);
    let out = p.run(&["stack", "import", "--stack", "prod", "--file", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("belongs to stack `dev`, not `prod`"), "{}", text(&out));
    assert!(!p.state.join("stacks/prod.json").exists(), "nothing was written for prod");
    // A newer format is refused too.
    let newer = std::fs::read_to_string(&export).unwrap().replacen("\"version\":1", "\"version\":9", 1);
    let newer_file = p.root_file("newer.json");
    std::fs::write(&newer_file, newer).unwrap();
    let out = p.run(&["stack", "import", "--stack", "dev", "--file", newer_file.to_str().unwrap()]);
    assert!(text(&out).contains("format version 9"), "{}", text(&out));

    // A damaged export is refused before anything is written.
    let state_file = p.state.join("stacks/dev.json");
    let before = std::fs::read(&state_file).unwrap();
    let other = std::fs::read_to_string(&export).unwrap().replacen("\"stack\":\"dev\"", "\"stack\":\"prod\"", 1);
    std::fs::write(&export, other).unwrap();
    let out = p.run(&["stack", "import", "--stack", "dev", "--file", export.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("checksum mismatch") || text(&out).contains("belongs to stack `prod`"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&state_file).unwrap(), before);
}

/// The state's own files (snapshot and journal), byte for byte.
fn state_files(p: &Project) -> BTreeMap<PathBuf, Vec<u8>> {
    ["stacks/dev.json", "stacks/dev.journal"]
        .iter()
        .map(|f| p.state.join(f))
        .filter(|f| f.exists())
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

/// Asserts the state's files are byte for byte as in `before`, naming those that are not.
fn assert_state_files_unchanged(p: &Project, before: &BTreeMap<PathBuf, Vec<u8>>, what: &str) {
    let after = state_files(p);
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "{what} changed {changed:?}");
}

#[test]
fn a_saved_plan_is_applied_exactly_or_refused() {
    let p = project();
    let plan = p.root_file("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let with_gen = |args: &[&str], generation: &str| p.command(args).env("SW_GEN", generation).output().unwrap();
    let saved_changes = || {
        let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
        changes_of(&saved["steps"])
    };

    // Applied: exactly the saved steps run, and nothing is left to do.
    assert!(with_gen(&["preview", "--stack", "dev", "--save-plan", plan_arg], "0").status.success());
    let expected = saved_changes();
    assert_eq!(expected, (0..6).map(|i| (format!("item-{i}"), "create".to_owned())).collect());
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "0");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(finished_steps(&stdout), (expected, 6), "{stdout}");
    assert!(stdout.contains("Update succeeded: 6 change(s) applied"), "{stdout}");
    assert_eq!(world_ids(&p), ids(&load_state(&p)));
    assert_eq!(with_gen(&["preview", "--stack", "dev", "--detailed-exitcode"], "0").status.code(), Some(0));

    // The state moves after the plan was saved: refused, and the state files are untouched.
    assert!(with_gen(&["preview", "--stack", "dev", "--save-plan", plan_arg], "1").status.success());
    assert!(with_gen(&["up", "--stack", "dev", "--yes"], "1").status.success());
    let (before, world) = (state_files(&p), World::directory(&p.world).items());
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "1");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("state changed since the plan was saved"), "{}", text(&out));
    assert_state_files_unchanged(&p, &before, "a refused plan");
    assert_eq!(World::directory(&p.world).items(), world, "a refused plan changes no object");

    // The program changes after the plan was saved: refused likewise.
    assert!(with_gen(&["preview", "--stack", "dev", "--save-plan", plan_arg], "2").status.success());
    let expected = saved_changes();
    let (before, world) = (state_files(&p), World::directory(&p.world).items());
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "3");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("now plans differently") && text(&out).contains("preview --save-plan"),
        "{}",
        text(&out)
    );
    assert_state_files_unchanged(&p, &before, "a refused plan");
    assert_eq!(World::directory(&p.world).items(), world, "a refused plan changes no object");

    // Generation 2 updates, replaces and deletes: the saved steps, and only they, are applied.
    assert!(expected.iter().any(|(_, op)| op == "delete") && expected.iter().any(|(_, op)| op == "update"));
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "2");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (applied, lines) = finished_steps(&stdout);
    assert_eq!(applied, expected, "{stdout}");
    assert!(stdout.contains(&format!("Update succeeded: {lines} change(s) applied")), "{stdout}");
    assert_eq!(world_ids(&p), ids(&load_state(&p)));
    assert_eq!(with_gen(&["preview", "--stack", "dev", "--detailed-exitcode"], "2").status.code(), Some(0));

    std::fs::write(&plan, "{\"format\":\"something else\"}").unwrap();
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "2");
    assert!(text(&out).contains("not a Stackwright plan file"), "{}", text(&out));
}

/// Every file and directory under `roots`: size, modification time and (for files) contents.
/// Directories are listed too, so a file made and removed again still shows in their mtime.
type Snapshot = BTreeMap<PathBuf, (u64, SystemTime, Option<Vec<u8>>)>;

fn snapshot(roots: &[&Path]) -> Snapshot {
    fn walk(path: &Path, out: &mut Snapshot) {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return };
        let contents = meta.is_file().then(|| std::fs::read(path).unwrap());
        out.insert(path.to_owned(), (meta.len(), meta.modified().unwrap(), contents));
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), out);
            }
        }
    }
    let mut out = Snapshot::new();
    roots.iter().for_each(|r| walk(r, &mut out));
    out
}

/// Runs `args` and asserts it succeeded and left every file under the project and state
/// directories exactly as it was.
fn assert_writes_nothing(p: &Project, what: &str, command: &mut Command) {
    let before = snapshot(&[&p.project, &p.state]);
    let out = command.output().unwrap();
    assert!(out.status.code() == Some(0) || out.status.code() == Some(2), "{what}: {}", text(&out));
    let after = snapshot(&[&p.project, &p.state]);
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "{what} wrote {changed:?}");
}

/// A project whose stack `dev` has state but no configuration file, so no salt: as after
/// `stack init` without a passphrase, or on a machine that has the state but not the project.
fn project_without_config() -> Project {
    let p = project();
    std::fs::remove_file(p.project.join("Stackwright.dev.toml")).unwrap();
    let out = p.command(&["stack", "init", "dev"]).env_remove("STACKWRIGHT_PASSPHRASE").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_file(p.project.join("Stackwright.dev.toml")).unwrap();
    p
}

#[test]
fn preview_writes_nothing_on_a_fresh_stack_with_or_without_a_passphrase() {
    let p = project_without_config();
    let previews: [&[&str]; 4] = [
        &["preview", "--stack", "dev"],
        &["preview", "--stack", "dev", "--detailed-exitcode", "--json"],
        &["preview", "--stack", "dev", "--refresh"],
        &["preview", "--stack", "dev", "--destroy"],
    ];
    for args in previews {
        let without = format!("{args:?} without a passphrase, no config file");
        assert_writes_nothing(&p, &without, p.command(args).env_remove("STACKWRIGHT_PASSPHRASE"));
        assert_writes_nothing(&p, &format!("{args:?} with a passphrase, no config file"), &mut p.command(args));
    }
    // A configuration file without a salt yet (as `stack init` without a passphrase leaves it).
    std::fs::write(p.project.join("Stackwright.dev.toml"), "").unwrap();
    for args in previews {
        assert_writes_nothing(&p, &format!("{args:?} with a passphrase, no salt"), &mut p.command(args));
    }
    // The commands that only look write nothing either.
    for args in [&["graph", "--stack", "dev"][..], &["output", "--stack", "dev"], &["state", "ls", "--stack", "dev"]] {
        assert_writes_nothing(&p, &format!("{args:?}"), &mut p.command(args));
    }
    assert_eq!(std::fs::read(p.project.join("Stackwright.dev.toml")).unwrap(), b"", "no salt was written");
}

#[test]
fn preview_writes_nothing_on_a_stack_with_resources() {
    let p = project();
    let out = p.run(&["up", "--stack", "dev", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    for args in [
        &["preview", "--stack", "dev"][..],
        &["preview", "--stack", "dev", "--refresh", "--json"],
        &["preview", "--stack", "dev", "--destroy"],
        &["graph", "--stack", "dev"],
        &["config", "ls", "--stack", "dev"],
    ] {
        assert_writes_nothing(&p, &format!("{args:?}"), p.command(args).env("SW_GEN", "1"));
    }
}

#[test]
fn graph_runs_with_the_stack_config_and_prints_dot_or_mermaid() {
    let p = project();
    let graph = |args: &[&str]| p.command(args).env("SW_REQUIRE_CONFIG", "region").output().unwrap();
    let out = graph(&["graph", "--stack", "dev"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("config key `region`") && text(&out).contains("is not set"), "{}", text(&out));
    assert!(p.run(&["config", "set", "region", "eu-west-1", "--stack", "dev"]).status.success());

    let out = graph(&["graph", "--stack", "dev"]);
    assert!(out.status.success(), "{}", text(&out));
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(dot.starts_with("digraph stack {") && dot.contains("\"configured\" [label="), "{dot}");
    assert!(dot.contains("\"item-0\" -> \"item-1\";"), "{dot}");

    let out = graph(&["graph", "--stack", "dev", "--format", "mermaid"]);
    assert!(out.status.success(), "{}", text(&out));
    let mermaid = String::from_utf8_lossy(&out.stdout);
    assert!(
        mermaid.starts_with("flowchart LR\n") && mermaid.contains("[\"configured<br/>builtin:Data\"]"),
        "{mermaid}"
    );
}

#[test]
fn graph_reports_declaration_errors_exactly_like_preview() {
    let p = project();
    for (mistake, expected) in [
        ("cycle", "dependency cycle: loop-a → loop-b → loop-a"),
        ("duplicate", "resource name `twin` is declared twice"),
        ("no_provider", "provider `nowhere` is not registered"),
    ] {
        let run = |command: &str| p.command(&[command, "--stack", "dev"]).env("SW_MISTAKE", mistake).output().unwrap();
        let (preview, graph) = (run("preview"), run("graph"));
        assert_eq!(preview.status.code(), Some(1), "{mistake}: {}", text(&preview));
        assert_eq!(graph.status.code(), Some(1), "{mistake}: {}", text(&graph));
        assert!(text(&graph).contains(expected), "{mistake}: {}", text(&graph));
        assert_eq!(String::from_utf8_lossy(&graph.stderr), String::from_utf8_lossy(&preview.stderr), "{mistake}");
        assert!(graph.stdout.is_empty(), "{mistake}: no graph is printed: {}", text(&graph));
    }
}

#[test]
fn a_panic_in_the_program_is_a_clean_error_naming_it() {
    let p = project();
    for command in
        [&["graph", "--stack", "dev"][..], &["preview", "--stack", "dev"], &["up", "--stack", "dev", "--yes"]]
    {
        let out = p.command(command).env("SW_MISTAKE", "panic").output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{command:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("the program panicked: the fixture was told to panic")
                && stderr.contains("(at tests/src/bin/fixture_program.rs:"),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("thread '") && !stderr.contains("RUST_BACKTRACE"), "{command:?}: raw panic: {stderr}");
    }
    assert!(load_state_if_any(&p).is_none_or(|s| s.resources.is_empty()), "nothing was applied");
}

fn load_state_if_any(p: &Project) -> Option<stackwright_state::StackState> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(common::project_backend(&p.state, &p.project, "dev", PASSPHRASE).load("dev")).unwrap()
}

#[test]
fn an_unknowable_create_stops_up_until_stack_pending_resolve_settles_it() {
    let p = project();
    let blind = |c: &mut std::process::Command| {
        c.env("SW_SERVER_IDS", "1").env("SW_NO_FIND", "1").env("SW_UNIQUE_KEYS", "1");
    };
    // The first create commits but its answer is lost; the provider cannot find it again.
    let mut first = p.command(&["up", "--stack", "dev", "--yes"]);
    blind(&mut first);
    let out = first.env("SW_LOSE_ANSWER_AT", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let state = load_state_if_any(&p).expect("state");
    let (op, pending) = state.pending.iter().next().expect("the create stays pending");
    let name = pending.urn.to_string();

    // The next up stops before changing anything, naming the resource and the commands.
    let before = World::directory(&p.world).items();
    let mut again = p.command(&["up", "--stack", "dev", "--yes"]);
    blind(&mut again);
    let out = again.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(&format!("stack pending resolve {name} --created ID")) && t.contains("--absent"), "{t}");
    assert_eq!(World::directory(&p.world).items(), before, "nothing changed");

    let ls = p.run(&["stack", "pending", "ls", "--stack", "dev", "--json"]);
    assert!(ls.status.success(), "{}", text(&ls));
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(rows[0]["operation"], serde_json::json!(op));
    assert_eq!(rows[0]["resource"], serde_json::json!(name));
    assert_eq!(rows[0]["kind"], serde_json::json!("create"));

    // Neither or both of --created and --absent is a usage error that changes nothing.
    let bad = p.run(&["stack", "pending", "resolve", &name, "--stack", "dev"]);
    assert!(!bad.status.success() && text(&bad).contains("--created <ID>"), "{}", text(&bad));
    assert!(!load_state_if_any(&p).unwrap().pending.is_empty(), "a usage error settles nothing");

    // The user finds the object the lost create made (its tag is the operation id) and says so.
    let made = World::directory(&p.world)
        .items()
        .into_iter()
        .find(|(_, item)| item.tag.as_deref() == Some(op.as_str()))
        .map(|(id, _)| id)
        .expect("the lost create's object");
    let mut resolve = p.command(&["stack", "pending", "resolve", &name, "--created", &made, "--stack", "dev"]);
    blind(&mut resolve);
    let out = resolve.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let state = load_state_if_any(&p).unwrap();
    assert!(state.pending.is_empty());
    assert_eq!(state.resources[&stackwright::Urn::from(name.as_str())].id, made);

    let mut last = p.command(&["up", "--stack", "dev", "--yes"]);
    blind(&mut last);
    let out = last.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let state = load_state_if_any(&p).unwrap();
    let recorded: BTreeSet<String> =
        state.resources.values().filter(|r| r.type_token == "test:Item").map(|r| r.id.clone()).collect();
    let world: BTreeSet<String> = World::directory(&p.world).items().into_keys().collect();
    assert_eq!(recorded, world, "no orphan, no duplicate");
}
