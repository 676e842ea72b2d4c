//! Helpers shared by the integration tests: an engine over a temporary local backend with fast
//! retries, programs built from closures, and plan inspection.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stackwright::state::LocalBackend;
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

pub fn engine(dir: &Path) -> Engine {
    Engine::new(Arc::new(LocalBackend::new(dir)), settings())
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
