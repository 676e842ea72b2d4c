//! The command line against bad input and signals: unknown stacks, bad flags, a locked stack,
//! corrupt or newer state files, CI exit codes, and Ctrl-C during an update.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use stackwright_state::{Backend, LockInfo};

mod common;

const PASSPHRASE: &str = "correct horse";
const BIN: &str = env!("CARGO_BIN_EXE_fixture-program");

struct Project {
    _root: tempfile::TempDir,
    world: PathBuf,
    state: PathBuf,
    project: PathBuf,
}

fn project() -> Project {
    let root = tempfile::tempdir().unwrap();
    let (world, state, project) = (root.path().join("world"), root.path().join("state"), root.path().join("project"));
    std::fs::create_dir_all(&project).unwrap();
    common::write_project_config(&project, "dev", PASSPHRASE);
    Project { _root: root, world, state, project }
}

impl Project {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--project-dir")
            .arg(&self.project)
            .env("SW_WORLD", &self.world)
            .env("STACKWRIGHT_PASSPHRASE", PASSPHRASE)
            .env("SW_N", "6")
            .env_remove("STACKWRIGHT_STACK")
            .stdin(Stdio::null());
        c
    }

    fn root_file(&self, name: &str) -> PathBuf {
        self.project.parent().unwrap().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
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

/// Starts a slow `up` and returns once its first step has finished. The caller waits for it.
#[allow(clippy::zombie_processes)]
fn start_slow_up(p: &Project) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut child = p
        .command(&["up", "--stack", "dev", "--yes", "--parallel", "2"])
        .env("SW_N", "40")
        .env("SW_LATENCY_MS", "40")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("up ended ({status}) before any step finished");
        }
        if line.contains("created") {
            return (child, reader);
        }
    }
}

#[test]
fn ctrl_c_finishes_running_steps_persists_and_exits_non_zero() {
    let p = project();
    let (mut child, mut reader) = start_slow_up(&p);
    interrupt(child.id());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("was interrupted") && rest.contains("not started"), "{rest}");
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let state = runtime
        .block_on(common::project_backend(&p.state, &p.project, "dev", PASSPHRASE).load("dev"))
        .unwrap()
        .unwrap();
    assert!(state.pending.is_empty(), "in-flight steps were allowed to finish");
    assert!(!state.resources.is_empty() && state.resources.len() < 40, "{} resources", state.resources.len());
    let out = p.command(&["up", "--stack", "dev", "--yes"]).env("SW_N", "40").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stackwright::builtin::testing::World::directory(&p.world).items().len(), 40);
}

#[test]
fn a_second_ctrl_c_stops_at_once_and_the_next_run_reconciles() {
    let p = project();
    let (mut child, _reader) = start_slow_up(&p);
    interrupt(child.id());
    interrupt(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let out = p.command(&["up", "--stack", "dev", "--yes"]).env("SW_N", "40").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let state = runtime
        .block_on(common::project_backend(&p.state, &p.project, "dev", PASSPHRASE).load("dev"))
        .unwrap()
        .unwrap();
    let world = stackwright::builtin::testing::World::directory(&p.world).items();
    assert_eq!(world.len(), 40, "no duplicates and nothing missing");
    let ids: std::collections::BTreeSet<&String> = state.resources.values().map(|r| &r.id).collect();
    assert!(world.keys().all(|id| ids.contains(id)), "no orphans");
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

#[test]
fn a_saved_plan_is_applied_exactly_or_refused() {
    let p = project();
    let plan = p.root_file("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let with_gen = |args: &[&str], generation: &str| p.command(args).env("SW_GEN", generation).output().unwrap();

    assert!(with_gen(&["preview", "--stack", "dev", "--save-plan", plan_arg], "0").status.success());
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "0");
    assert!(out.status.success(), "{}", text(&out));

    // The state moves after the plan was saved.
    assert!(with_gen(&["preview", "--stack", "dev", "--save-plan", plan_arg], "1").status.success());
    assert!(with_gen(&["up", "--stack", "dev", "--yes"], "1").status.success());
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "1");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("state changed since the plan was saved"), "{}", text(&out));

    // The program changes after the plan was saved.
    assert!(with_gen(&["preview", "--stack", "dev", "--save-plan", plan_arg], "2").status.success());
    let before = std::fs::read(p.state.join("stacks/dev.json")).unwrap();
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "3");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("now plans differently") && text(&out).contains("preview --save-plan"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(p.state.join("stacks/dev.json")).unwrap(), before, "a refused plan changes nothing");
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "2");
    assert!(out.status.success(), "{}", text(&out));

    std::fs::write(&plan, "{\"format\":\"something else\"}").unwrap();
    let out = with_gen(&["up", "--stack", "dev", "--yes", "--plan", plan_arg], "2");
    assert!(text(&out).contains("not a Stackwright plan file"), "{}", text(&out));
}
