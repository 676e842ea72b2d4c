//! Testing infrastructure programs in an ordinary `cargo test`: run a program's preview (or an
//! update) in-process against a given prior state and configuration, with providers replaced by
//! mocks or emulators, and assert on the plan. With the `testing` feature, [`strategies`] gives
//! proptest strategies for configuration values.

use crate::engine::{PreviewOptions, UpOptions};
use std::sync::Arc;

use stackwright_core::Provider;
use stackwright_state::{MemoryBackend, StackState};

use crate::config::Config;
use crate::engine::{Engine, PreviewReport, RetryPolicy, Settings, UpReport};
use crate::error::EngineError;
use crate::stack::{Program, Stack};

/// A local backend in `dir` whose secrets are sealed under a throwaway passphrase with a cheap
/// key derivation: for tests and benchmarks that drive the engine directly.
pub fn sealed_local_backend(dir: impl Into<std::path::PathBuf>) -> stackwright_state::LocalBackend {
    let params = stackwright_state::KdfParams::insecure_for_tests();
    let cipher = stackwright_state::Cipher::create("test passphrase", params).expect("key derivation").0;
    stackwright_state::LocalBackend::new(dir).with_cipher(Arc::new(cipher))
}

/// Writes `state` as its stack's snapshot, under the stack's lock: for tests that start from a
/// prepared state (a pending operation left by a "crash", a resource made elsewhere).
pub async fn seed_state(
    backend: &dyn stackwright_state::Backend,
    state: &stackwright_state::StackState,
) -> Result<(), stackwright_state::StateError> {
    let lock = backend.lock(&state.stack, stackwright_state::LockInfo::current("test seed")).await?;
    backend.write_snapshot(state, lock.token()).await?;
    Ok(())
}

/// A program under test: a stack name, its configuration, a prior state and provider overrides.
#[derive(Clone)]
pub struct ProgramTest {
    stack: String,
    config: Arc<Config>,
    backend: MemoryBackend,
    overrides: Vec<Provider>,
}

impl ProgramTest {
    /// A test of stack `stack` with an empty configuration and no prior state.
    pub fn new(stack: &str) -> Self {
        ProgramTest {
            stack: stack.to_owned(),
            config: Arc::new(Config::empty(stack)),
            backend: MemoryBackend::new(),
            overrides: Vec::new(),
        }
    }

    /// Uses this configuration.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// Starts from this prior state (its stack name is set to the test's).
    pub fn with_prior_state(self, mut state: StackState) -> Self {
        state.stack = self.stack.clone();
        self.backend.put(state);
        self
    }

    /// Replaces the program's provider of the same name (a mock, or one pointed at an emulator).
    pub fn with_provider(mut self, provider: Provider) -> Self {
        self.overrides.push(provider);
        self
    }

    /// The state now (after any `up`).
    pub async fn state(&self) -> Option<StackState> {
        stackwright_state::Backend::load(&self.backend, &self.stack).await.ok().flatten()
    }

    fn engine(&self) -> Engine {
        let settings = Settings {
            config: Some(self.config.clone()),
            retry: RetryPolicy {
                min_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(20),
                max_retries: 5,
            },
            ..Settings::default()
        };
        Engine::new(Arc::new(self.backend.clone()), settings)
    }

    fn wrapped(&self, program: &Program) -> Program {
        let (program, overrides) = (program.clone(), self.overrides.clone());
        Arc::new(move |stack: &mut Stack| {
            program(stack)?;
            for p in &overrides {
                stack.provider(p.clone());
            }
            Ok(())
        })
    }

    /// Plans the program against the prior state.
    pub async fn preview(&self, program: &Program) -> Result<PreviewReport, EngineError> {
        self.engine().preview(&self.stack, &self.wrapped(program), PreviewOptions::default()).await
    }

    /// Applies the program against the prior state (with the overriding providers).
    pub async fn up(&self, program: &Program) -> Result<UpReport, EngineError> {
        self.engine().up(&self.stack, &self.wrapped(program), UpOptions::default(), &|_, _| true).await
    }
}

/// Proptest strategies for stack configuration.
#[cfg(feature = "testing")]
pub mod strategies {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::Value;

    use crate::config::Config;

    /// Configurations of `stack` whose plain keys take values from the given strategies, and
    /// whose secret keys likewise.
    pub fn config(
        stack: &str,
        plain: Vec<(&str, BoxedStrategy<Value>)>,
        secret: Vec<(&str, BoxedStrategy<Value>)>,
    ) -> impl Strategy<Value = Config> {
        let stack = stack.to_owned();
        let keys = |v: &Vec<(&str, BoxedStrategy<Value>)>| v.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>();
        let (plain_keys, secret_keys) = (keys(&plain), keys(&secret));
        let plain: Vec<BoxedStrategy<Value>> = plain.into_iter().map(|(_, s)| s).collect();
        let secret: Vec<BoxedStrategy<Value>> = secret.into_iter().map(|(_, s)| s).collect();
        (plain, secret).prop_map(move |(p, s)| {
            let p: BTreeMap<String, Value> = plain_keys.iter().cloned().zip(p).collect();
            let s: BTreeMap<String, Value> = secret_keys.iter().cloned().zip(s).collect();
            Config::from_values(&stack, p, s)
        })
    }

    /// One of the given strings.
    pub fn one_of(values: &[&str]) -> BoxedStrategy<Value> {
        let values: Vec<Value> = values.iter().map(|v| Value::String(v.to_string())).collect();
        proptest::sample::select(values).boxed()
    }

    /// An integer in `range`.
    pub fn int(range: std::ops::Range<i64>) -> BoxedStrategy<Value> {
        range.prop_map(Value::from).boxed()
    }

    /// A boolean.
    pub fn boolean() -> BoxedStrategy<Value> {
        any::<bool>().prop_map(Value::Bool).boxed()
    }

    /// A non-empty printable string of at most `max` characters (for names and secrets).
    pub fn text(max: usize) -> BoxedStrategy<Value> {
        proptest::string::string_regex(&format!("[a-zA-Z0-9_-]{{1,{max}}}"))
            .expect("valid regex")
            .prop_map(Value::String)
            .boxed()
    }
}
