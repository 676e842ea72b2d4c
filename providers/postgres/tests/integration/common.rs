//! Helpers for the integration tests: a real server (`STACKWRIGHT_TEST_PG_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`), unique names per test, an engine over local
//! state in a temporary directory, catalog queries, and a guard that drops what a test made even
//! when it fails.

#![allow(dead_code)]

use stackwright::{PreviewOptions, UpOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use stackwright::core::value::reveal;
use stackwright::core::{OpContext, Resource, Urn};
use stackwright::state::{ResourceState, StackState};
use stackwright::{Engine, Plan, PreviewReport, Program, RetryPolicy, Settings, Stack, StepOp, UpReport};
use stackwright_postgres::PostgresProvider;
use tokio_postgres::{Client, NoTls};

/// The stack every test uses (each test has its own state directory).
pub const STACK: &str = "test";

/// The server the tests run against.
pub fn pg_url() -> String {
    std::env::var("STACKWRIGHT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A name no other test (or earlier run) uses: `prefix` plus the process id, a counter and the
/// clock, in lowercase hex.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    format!("{prefix}_{:x}_{n:x}_{nanos:x}", std::process::id())
}

/// Connects to `database` on the test server as the admin.
pub async fn connect(database: &str) -> Client {
    let mut config: tokio_postgres::Config = pg_url().parse().expect("test URL parses");
    config.dbname(database);
    let (client, connection) = config.connect(NoTls).await.expect("connect to the test server");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Runs SQL on `database` as the admin (to set up objects or make drift by hand).
pub async fn sql(database: &str, statements: &str) {
    let client = connect(database).await;
    client.batch_execute(statements).await.unwrap_or_else(|e| panic!("SQL failed: {e:?}\n{statements}"));
}

/// Runs a query on `database` and returns the first column of every row as text.
pub async fn query(
    database: &str,
    q: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<Option<String>> {
    let client = connect(database).await;
    let rows = client.query(q, params).await.unwrap_or_else(|e| panic!("query failed: {e:?}\n{q}"));
    rows.iter().map(|r| r.get::<_, Option<String>>(0)).collect()
}

/// Runs a query returning one text value.
pub async fn one(database: &str, q: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Option<String> {
    query(database, q, params).await.into_iter().next().flatten()
}

/// Drops the databases and roles a test registered, when it ends (also on panic).
#[derive(Default)]
pub struct Cleanup {
    databases: Vec<String>,
    roles: Vec<String>,
}

impl Cleanup {
    /// Drops `name` at the end of the test.
    pub fn database(&mut self, name: &str) -> String {
        self.databases.push(name.to_owned());
        name.to_owned()
    }

    /// Drops role `name` at the end of the test.
    pub fn role(&mut self, name: &str) -> String {
        self.roles.push(name.to_owned());
        name.to_owned()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (databases, roles) = (std::mem::take(&mut self.databases), std::mem::take(&mut self.roles));
        if databases.is_empty() && roles.is_empty() {
            return;
        }
        // The test's runtime may be gone or panicking: clean up from a thread of our own.
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let client = connect("postgres").await;
                let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
                for db in &databases {
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", q(db))).await;
                }
                for role in &roles {
                    let _ = client.batch_execute(&format!("DROP OWNED BY {}", q(role))).await;
                    let _ = client.batch_execute(&format!("DROP ROLE IF EXISTS {}", q(role))).await;
                }
            });
        });
        let _ = worker.join();
    }
}

/// An engine over local state in a temporary directory, and the provider under test.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub pg: PostgresProvider,
    pub cleanup: Cleanup,
}

impl Harness {
    /// A fresh state directory and a provider for the test server.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = Settings {
            parallel: 8,
            retry: RetryPolicy {
                min_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                max_retries: 3,
            },
            ..Settings::default()
        };
        // Secrets (generated passwords, connection URLs) are sealed in state; a cheap key
        // derivation keeps tests fast.
        let backend = stackwright::testing::sealed_local_backend(dir.path().join("state"));
        let engine = Engine::new(Arc::new(backend), settings);
        let pg = PostgresProvider::from_url(&pg_url()).expect("test URL is a valid provider configuration");
        Harness { dir, engine, pg, cleanup: Cleanup::default() }
    }

    /// A program that registers the provider and then runs `declare`.
    pub fn program(&self, declare: impl Fn(&mut Stack) + Send + Sync + 'static) -> Program {
        let provider = self.pg.provider();
        Arc::new(move |stack: &mut Stack| {
            stack.provider(provider.clone());
            declare(stack);
            Ok(())
        })
    }

    /// Applies `program` and insists that everything succeeded.
    pub async fn up(&self, program: &Program) -> UpReport {
        let report = self.engine.up(STACK, program, UpOptions::default(), &|_, _| true).await.expect("up runs");
        assert!(report.succeeded(), "up failed: {:#?}", report.failures);
        report
    }

    /// Refreshes, then applies `program`, insisting that everything succeeded.
    pub async fn up_refresh(&self, program: &Program) -> UpReport {
        let report = self.engine.up(STACK, program, UpOptions::refreshed(), &|_, _| true).await.expect("up runs");
        assert!(report.succeeded(), "up failed: {:#?}", report.failures);
        report
    }

    /// Applies `program` and returns the failure messages, insisting there are some.
    pub async fn up_failing(&self, program: &Program) -> Vec<String> {
        let report = self.engine.up(STACK, program, UpOptions::default(), &|_, _| true).await.expect("up runs");
        assert!(!report.succeeded(), "up should have failed; plan: {:#?}", report.plan.steps);
        report.failures.iter().map(|f| f.message.clone()).collect()
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

    /// A resource's stored outputs, secrets revealed.
    pub async fn outputs(&self, urn: &str) -> Value {
        let state = self.state().await;
        let r = state.resources.get(&Urn::from(urn)).unwrap_or_else(|| panic!("{urn} is in state"));
        reveal(r.outputs.clone()).0
    }

    /// Adopts an existing object into the stack's state through the provider's `import`, as an
    /// `import` command would (the engine has none yet).
    pub async fn import<R: Resource>(&self, urn: &str, id: &str) {
        let provider = self.pg.provider();
        let handler = provider.handler(R::TYPE).expect("type is handled");
        let ctx = OpContext { urn: Urn::from(urn), stack: STACK.into(), operation_id: format!("import-{urn}") };
        let raw = handler.import(&ctx, id).await.expect("import succeeds").expect("the object exists");
        let mut state = self.engine.state(STACK).await.expect("state loads").unwrap_or_else(|| StackState::new(STACK));
        state.resources.insert(
            Urn::from(urn),
            ResourceState {
                urn: Urn::from(urn),
                type_token: R::TYPE.into(),
                provider: provider.name().into(),
                id: raw.id,
                inputs: raw.args,
                outputs: raw.outputs,
                dependencies: Vec::new(),
                protect: false,
                retain_on_delete: false,
            },
        );
        stackwright::testing::seed_state(self.engine.backend().as_ref(), &state).await.expect("state seeded");
    }
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
