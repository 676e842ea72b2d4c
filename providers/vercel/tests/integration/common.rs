//! Test harness: an in-process Vercel emulator, a provider pointed at it with a token unique to
//! the test, and the real engine over local state in a temporary directory.

#![allow(dead_code)]

use stackwright::{PreviewOptions, UpOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use stackwright::core::value::{reveal, secret};
use stackwright::core::{OpContext, Resource, Urn};
use stackwright::state::{ResourceState, StackState};
use stackwright::{Engine, Plan, PreviewReport, Program, RetryPolicy, Settings, Stack, StepOp, UpReport};
use stackwright_vercel::{VercelConfig, VercelProvider};
use stackwright_vercel_emulator::{DeploymentConfig, Emulator, EmulatorBuilder, EmulatorHandle, Stats};

/// The team every test acts in.
pub const TEAM: &str = "team_stackwright";
/// Its slug.
pub const SLUG: &str = "sw";
/// The stack every test uses (each test has its own state directory).
pub const STACK: &str = "dev";

/// A string no other test uses: `prefix`, the process id, a counter and the clock.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("{prefix}{:x}{n:x}{nanos:x}", std::process::id())
}

/// Builds that finish in tens of milliseconds; promotes that take a moment (so they answer 202).
pub fn fast_builds() -> DeploymentConfig {
    DeploymentConfig {
        queued_ms: 10,
        initializing_ms: 0,
        building_ms: 30,
        alias_delay_ms: 0,
        promote_delay_ms: 20,
        ..DeploymentConfig::default()
    }
}

/// The engine settings of every test: fast retries, many of them.
pub fn settings() -> Settings {
    Settings {
        retry: RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(50),
            max_retries: 20,
        },
        ..Settings::default()
    }
}

/// Everything the provider logged at debug level, from every test of this binary.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// The text logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture lock")).into_owned()
    }
}

/// The provider's debug logs. Installed as the global subscriber before any test talks to the
/// provider (every harness starts here), so no log line is missed.
pub fn logs() -> &'static Capture {
    static LOGS: OnceLock<Capture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("stackwright_vercel=debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        capture
    })
}

/// An emulator, a provider for it, and an engine.
pub struct Harness {
    pub emu: EmulatorHandle,
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub vercel: VercelProvider,
    pub token: String,
    pub http: reqwest::Client,
}

/// A harness with default emulator and provider settings.
pub async fn harness() -> Harness {
    harness_with(|b| b, |c| c).await
}

/// A harness whose emulator and provider configuration the test adjusts.
pub async fn harness_with(
    emulator: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder,
    config: impl FnOnce(VercelConfig) -> VercelConfig,
) -> Harness {
    harness_full(emulator, config, settings()).await
}

/// A harness with custom engine settings too.
pub async fn harness_full(
    emulator: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder,
    config: impl FnOnce(VercelConfig) -> VercelConfig,
    settings: Settings,
) -> Harness {
    logs();
    let token = unique("tok-");
    let builder = Emulator::builder().token(&token).team(TEAM, SLUG).seed(7).deployments(fast_builds());
    let emu = emulator(builder).start().await.expect("emulator starts");
    let base = VercelConfig::new()
        .with_token(&token)
        .with_team_id(TEAM)
        .with_base_url(emu.base_url())
        .with_poll_interval(Duration::from_millis(10))
        .with_consistency_grace(Duration::ZERO);
    let vercel = VercelProvider::new(config(base)).expect("provider configuration is valid");
    let dir = tempfile::tempdir().expect("temp dir");
    // Secrets are sealed in state; a cheap key derivation keeps the tests fast.
    let engine = Engine::new(Arc::new(stackwright::testing::sealed_local_backend(dir.path().join("state"))), settings);
    Harness { emu, dir, engine, vercel, token, http: reqwest::Client::new() }
}

impl Harness {
    /// A program that registers the provider and then runs `declare`.
    pub fn program(&self, declare: impl Fn(&mut Stack) + Send + Sync + 'static) -> Program {
        let provider = self.vercel.provider();
        Arc::new(move |stack: &mut Stack| {
            stack.provider(provider.clone());
            declare(stack);
            Ok(())
        })
    }

    /// Applies `program`, insisting that everything succeeded.
    pub async fn up(&self, program: &Program) -> UpReport {
        let report = self.try_up(program, false).await;
        assert!(report.succeeded(), "up failed: {:#?}", report.failures);
        report
    }

    /// Refreshes, then applies `program`, insisting that everything succeeded.
    pub async fn up_refresh(&self, program: &Program) -> UpReport {
        let report = self.try_up(program, true).await;
        assert!(report.succeeded(), "up failed: {:#?}", report.failures);
        report
    }

    /// Applies `program` and returns the report, whatever happened.
    pub async fn try_up(&self, program: &Program, refresh: bool) -> UpReport {
        self.engine.up(STACK, program, UpOptions { refresh }, &|_, _| true).await.expect("up runs")
    }

    /// Previews `program`, refreshing first when asked.
    pub async fn preview(&self, program: &Program, refresh: bool) -> PreviewReport {
        self.engine
            .preview(STACK, program, PreviewOptions { refresh, ..PreviewOptions::default() })
            .await
            .expect("preview runs")
    }

    /// Deletes everything in the stack, insisting that it succeeded.
    pub async fn destroy(&self, program: &Program) {
        let report = self.engine.destroy(STACK, program, &|_, _| true).await.expect("destroy runs");
        assert!(report.succeeded(), "destroy failed: {:#?}", report.failures);
    }

    /// The stored state.
    pub async fn state(&self) -> StackState {
        self.engine.state(STACK).await.expect("state loads").expect("stack has state")
    }

    /// A resource's stored id.
    pub async fn id(&self, urn: &str) -> String {
        let state = self.state().await;
        state.resources.get(&Urn::from(urn)).unwrap_or_else(|| panic!("{urn} is in state")).id.clone()
    }

    /// A resource's stored outputs, secrets revealed.
    pub async fn outputs(&self, urn: &str) -> Value {
        let state = self.state().await;
        let r = state.resources.get(&Urn::from(urn)).unwrap_or_else(|| panic!("{urn} is in state"));
        reveal(r.outputs.clone()).0
    }

    /// Everything the emulator stores for the team (sensitive values included).
    pub fn team(&self) -> Value {
        self.emu.state()["teams"][TEAM].clone()
    }

    /// The team's objects of one kind (`projects`, `envs`, `domains`, `deployments`).
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        self.team()[kind].as_array().cloned().unwrap_or_default()
    }

    /// The one object of `kind` whose `key` is `value`.
    pub fn object(&self, kind: &str, key: &str, value: &str) -> Value {
        let all = self.objects(kind);
        let mut found: Vec<Value> = all.into_iter().filter(|o| o[key] == value).collect();
        assert_eq!(found.len(), 1, "exactly one {kind} with {key} = {value}: {found:#?}");
        found.remove(0)
    }

    /// The emulator's request counters.
    pub fn stats(&self) -> Stats {
        self.emu.stats()
    }

    /// Calls the admin API (`/_emulator{path}`), insisting on success.
    pub async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.emu.admin_url()))
            .json(&body)
            .send()
            .await
            .expect("admin call is answered");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "admin {path} answered {status}: {body}");
        body
    }

    /// Changes a project behind the provider's back.
    pub async fn drift_project(&self, project: &str, patch: Value) -> Value {
        self.admin(Method::PATCH, &format!("/teams/{TEAM}/projects/{project}"), patch).await
    }

    /// Changes an environment variable behind the provider's back.
    pub async fn drift_env(&self, project: &str, id: &str, patch: Value) -> Value {
        self.admin(Method::PATCH, &format!("/teams/{TEAM}/projects/{project}/env/{id}"), patch).await
    }

    /// Calls the Vercel API directly with the test's token and team; returns status and body.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = self
            .http
            .request(method, format!("{}{path}{sep}teamId={TEAM}", self.emu.base_url()))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API call is answered");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Like [`Harness::api`], insisting on a 2xx answer.
    pub async fn api_ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.api(method, path, body).await;
        assert!((200..300).contains(&status), "{path} answered {status}: {body}");
        body
    }

    /// Adopts an existing object into the stack's state through the provider's `import`, as an
    /// `import` command would (the engine has none yet): secret fields are marked as the engine
    /// marks them.
    pub async fn import<R: Resource>(&self, urn: &str, id: &str) {
        let provider = self.vercel.provider();
        let handler = provider.handler(R::TYPE).expect("type is handled");
        let ctx = OpContext { urn: Urn::from(urn), stack: STACK.into(), operation_id: format!("import-{urn}") };
        let raw = handler.import(&ctx, id).await.expect("import succeeds").expect("the object exists");
        let mark = |mut v: Value, schema: &[stackwright::core::FieldSchema]| {
            for f in schema.iter().filter(|f| f.secret) {
                if let Some(x) = v.get_mut(f.name).filter(|x| !x.is_null()) {
                    *x = secret(x.take());
                }
            }
            v
        };
        let mut state = self.engine.state(STACK).await.expect("state loads").unwrap_or_else(|| StackState::new(STACK));
        state.resources.insert(
            Urn::from(urn),
            ResourceState {
                urn: Urn::from(urn),
                type_token: R::TYPE.into(),
                provider: provider.name().into(),
                id: raw.id,
                inputs: mark(raw.args, handler.args_schema()),
                outputs: mark(raw.outputs, handler.outputs_schema()),
                dependencies: Vec::new(),
                protect: false,
                retain_on_delete: false,
            },
        );
        stackwright::testing::seed_state(self.engine.backend().as_ref(), &state).await.expect("state seeded");
    }
}

/// Writes `files` under a fresh directory and returns it.
pub fn site(root: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    for (path, content) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(full, content).expect("write file");
    }
    dir
}

/// The operation the plan has for `urn`.
pub fn step(plan: &Plan, urn: &str) -> StepOp {
    plan.steps.iter().find(|s| s.urn.as_str() == urn).unwrap_or_else(|| panic!("{urn} is in the plan")).op
}

/// The changed paths the plan shows for `urn`.
pub fn changed_paths(plan: &Plan, urn: &str) -> Vec<String> {
    plan.steps
        .iter()
        .find(|s| s.urn.as_str() == urn)
        .map(|s| s.changes.iter().map(|c| c.path.to_string()).collect())
        .unwrap_or_default()
}

/// Asserts that nothing would change.
pub fn assert_no_changes(plan: &Plan) {
    let changes: Vec<_> = plan.steps.iter().filter(|s| s.op.is_change()).collect();
    assert!(changes.is_empty(), "expected no changes, got {changes:#?}");
}

/// The value of `json` at a JSON pointer, as a string.
pub fn text(json: &Value, pointer: &str) -> String {
    json.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned()
}
