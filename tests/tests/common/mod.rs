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
