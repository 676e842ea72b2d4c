//! Helpers shared by the integration tests: an engine over a temporary local backend with fast
//! retries, programs built from closures, and plan inspection.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stackwright::state::{Cipher, KdfParams, LocalBackend};
use stackwright::{Drift, Engine, Plan, Program, RetryPolicy, Settings, Stack, StepOp};

pub const STACK: &str = "dev";

pub fn settings() -> Settings {
    Settings {
        parallel: 8,
        retry: RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            max_retries: 10,
        },
        ..Settings::default()
    }
}

/// Cheap key derivation for tests; real stacks use the default parameters.
pub fn fast_kdf() -> KdfParams {
    KdfParams::insecure_for_tests()
}

/// An engine over a local backend in `dir` with a passphrase secrets provider.
pub fn engine(dir: &Path) -> Engine {
    Engine::new(Arc::new(stackwright::testing::sealed_local_backend(dir)), settings())
}

/// A config file for `stack` in `project`, with a salt for `passphrase` (cheap derivation).
pub fn write_project_config(project: &Path, stack: &str, passphrase: &str) {
    let (_, salt) = Cipher::create(passphrase, fast_kdf()).unwrap();
    std::fs::create_dir_all(project).unwrap();
    std::fs::write(project.join(format!("Stackwright.{stack}.toml")), format!("encryption_salt = \"{salt}\"\n"))
        .unwrap();
}

pub fn program(f: impl Fn(&mut Stack) + Send + Sync + 'static) -> Program {
    Arc::new(move |s: &mut Stack| {
        f(s);
        Ok(())
    })
}

pub fn yes(_: &Plan, _: &[Drift]) -> bool {
    true
}

/// The plan's steps as (name, op), skipping unchanged ones.
pub fn changes(plan: &Plan) -> Vec<(String, StepOp)> {
    plan.steps.iter().filter(|s| s.op.is_change()).map(|s| (s.urn.to_string(), s.op)).collect()
}

/// The op planned for one resource.
pub fn op_of(plan: &Plan, name: &str) -> Option<StepOp> {
    plan.steps.iter().find(|s| s.urn.as_str() == name).map(|s| s.op)
}

/// The local backend of a CLI project, opened with the stack's passphrase.
pub fn project_backend(state: &Path, project: &Path, stack: &str, passphrase: &str) -> LocalBackend {
    let file = project.join(format!("Stackwright.{stack}.toml"));
    let text = std::fs::read_to_string(&file).unwrap();
    let salt = text.lines().find_map(|l| l.strip_prefix("encryption_salt = \"")).unwrap().trim_end_matches('"');
    let cipher = Cipher::open(passphrase, salt, stack, &file.display().to_string()).unwrap();
    LocalBackend::new(state).with_cipher(Arc::new(cipher))
}

/// A project driven through the fixture program's command line: a world, a state directory and a
/// project directory with a config file for stack `dev`, in a temporary root.
pub struct CliProject {
    _root: tempfile::TempDir,
    pub world: std::path::PathBuf,
    pub state: std::path::PathBuf,
    pub project: std::path::PathBuf,
    passphrase: &'static str,
}

impl CliProject {
    /// A fresh project whose `dev` stack is encrypted with `passphrase`.
    pub fn new(passphrase: &'static str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let (world, state, project) =
            (root.path().join("world"), root.path().join("state"), root.path().join("project"));
        std::fs::create_dir_all(&project).unwrap();
        write_project_config(&project, "dev", passphrase);
        CliProject { _root: root, world, state, project, passphrase }
    }

    /// The fixture program with `args`, this project's directories and `passphrase`.
    pub fn command_with(&self, passphrase: &str, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_fixture-program"));
        c.args(args)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--project-dir")
            .arg(&self.project)
            .env("SW_WORLD", &self.world)
            .env("STACKWRIGHT_PASSPHRASE", passphrase)
            .env("SW_N", "6")
            .env_remove("STACKWRIGHT_STACK")
            .env_remove("STACKWRIGHT_FAILPOINT")
            .stdin(std::process::Stdio::null());
        c
    }

    /// The fixture program with `args` and the project's own passphrase.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        self.command_with(self.passphrase, args)
    }

    /// Runs it with `passphrase` and waits for it.
    pub fn run_with(&self, passphrase: &str, args: &[&str]) -> std::process::Output {
        self.command_with(passphrase, args).output().unwrap()
    }

    /// Runs it and waits for it.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    /// A path in the temporary root, beside the project.
    pub fn root_file(&self, name: &str) -> std::path::PathBuf {
        self.project.parent().unwrap().join(name)
    }
}
