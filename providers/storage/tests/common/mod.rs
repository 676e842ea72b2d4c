//! The harness shared by the storage tests: the same behavioural tests run against the real
//! S3 server CI starts (Ceph RGW, from the `STACKWRIGHT_S3_*` variables — missing variables are a
//! failure, not a skip) and against local-directory storage. Each test gets its own engine, state
//! folder and uniquely named buckets, and a guard that removes its buckets if it fails.

#![allow(dead_code)]

use stackwright::{PreviewOptions, UpOptions};
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stackwright::{
    Drift, Engine, EngineError, Plan, PreviewReport, Program, RetryPolicy, Settings, Stack, StepOp, UpReport,
};
use stackwright_storage::store::Store;
use stackwright_storage::{S3Config, ServiceProfile, StorageConfig};

pub const STACK: &str = "dev";

/// Which storage a harness runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    S3,
    Local,
}

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set. The storage tests run against a real S3 server (Ceph RGW): start it with \
             `bash .ci/ceph-rgw.sh start` and export its settings with `eval \"$(bash .ci/ceph-rgw.sh env)\"` \
             (CI's .ci/run does both)."
        ),
    }
}

/// The S3 test server's configuration with the given profile and keys.
pub fn s3_config(profile: ServiceProfile, secret: Option<&str>) -> S3Config {
    let secret = secret.map(str::to_owned).unwrap_or_else(|| env("STACKWRIGHT_S3_SECRET_KEY"));
    S3Config::new(env("STACKWRIGHT_S3_ENDPOINT"), profile)
        .path_style()
        .region(env("STACKWRIGHT_S3_REGION"))
        .credentials(env("STACKWRIGHT_S3_ACCESS_KEY"), secret)
        // Small parts so the multipart path is exercised by a 7 MiB file (5 + 2 MiB).
        .multipart(6 * 1024 * 1024, 5 * 1024 * 1024)
}

pub fn random_suffix() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.write_u32(std::process::id());
    format!("{:010x}", h.finish() & 0xff_ffff_ffff)
}

/// Removes a failed test's buckets (every version included).
struct Cleanup {
    store: Arc<dyn Store>,
    buckets: Mutex<BTreeSet<String>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let buckets: Vec<String> = self.buckets.lock().unwrap().iter().cloned().collect();
        if buckets.is_empty() {
            return;
        }
        let store = self.store.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                for b in buckets {
                    let _ = store.empty_bucket(&b).await;
                    let _ = store.delete_bucket(&b).await;
                }
            })
        })
        .join();
    }
}

pub struct Harness {
    pub kind: Kind,
    pub config: StorageConfig,
    pub store: Arc<dyn Store>,
    pub engine: Engine,
    /// A folder for the test's local files (sources of objects and folders).
    pub files: PathBuf,
    cleanup: Cleanup,
    _interrupt: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// Engine settings for tests: quick retries, and an interrupt channel whose sender stays alive
/// (with `interrupt: None` the engine's scheduler busy-polls a closed channel while steps run,
/// taking a core from the S3 server on a 2-core machine).
pub fn settings() -> (Settings, tokio::sync::watch::Sender<bool>) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let settings = Settings {
        parallel: 8,
        retry: RetryPolicy {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
            max_retries: 6,
        },
        interrupt: Some(rx),
        ..Settings::default()
    };
    (settings, tx)
}

impl Harness {
    pub fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = match kind {
            Kind::S3 => StorageConfig::s3(s3_config(ServiceProfile::CephGeneric, None)),
            Kind::Local => StorageConfig::local(dir.path().join("storage")),
        };
        Self::with_config(kind, config, dir)
    }

    pub fn with_config(kind: Kind, config: StorageConfig, dir: tempfile::TempDir) -> Self {
        let store = config.store().unwrap();
        let (settings, interrupt) = settings();
        let engine =
            Engine::new(Arc::new(stackwright::testing::sealed_local_backend(dir.path().join("state"))), settings);
        let files = dir.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        Harness {
            kind,
            cleanup: Cleanup { store: store.clone(), buckets: Mutex::default() },
            config,
            store,
            engine,
            files,
            _interrupt: interrupt,
            _dir: dir,
        }
    }

    /// A bucket name unique to this run, removed at the end if the test fails.
    pub fn bucket(&self, what: &str) -> String {
        let name = format!("sw-{what}-{}", random_suffix());
        self.cleanup.buckets.lock().unwrap().insert(name.clone());
        name
    }

    /// A program that registers this harness's storage provider, then runs `f`.
    pub fn program(&self, f: impl Fn(&mut Stack) -> anyhow::Result<()> + Send + Sync + 'static) -> Program {
        let provider = self.config.provider().unwrap();
        Arc::new(move |s: &mut Stack| {
            s.provider(provider.clone());
            f(s)
        })
    }

    pub async fn up(&self, p: &Program) -> UpReport {
        let report = self.engine.up(STACK, p, UpOptions::default(), &|_: &Plan, _: &[Drift]| true).await.unwrap();
        assert!(report.succeeded(), "[{:?}] up failed: {:#?}", self.kind, report.failures);
        report
    }

    /// Runs `up` and returns its failures (expected to be some).
    pub async fn up_failing(&self, p: &Program) -> Vec<stackwright::Failure> {
        let report = self.engine.up(STACK, p, UpOptions::default(), &|_: &Plan, _: &[Drift]| true).await.unwrap();
        assert!(!report.succeeded(), "[{:?}] up was expected to fail", self.kind);
        report.failures
    }

    pub async fn preview(&self, p: &Program) -> PreviewReport {
        self.engine.preview(STACK, p, PreviewOptions::default()).await.unwrap()
    }

    pub async fn preview_error(&self, p: &Program) -> EngineError {
        self.engine.preview(STACK, p, PreviewOptions::default()).await.expect_err("preview should fail")
    }

    pub async fn assert_no_changes(&self, p: &Program) {
        let plan = self.preview(p).await.plan;
        assert!(!plan.has_changes(), "[{:?}] expected no changes, got {:#?}", self.kind, changes(&plan));
        let drift = self.engine.refresh(STACK, p).await.unwrap();
        assert!(drift.is_empty(), "[{:?}] expected no drift, got {drift:#?}", self.kind);
    }

    pub async fn destroy(&self, p: &Program) {
        let report = self.engine.destroy(STACK, p, &|_: &Plan, _: &[Drift]| true).await.unwrap();
        assert!(report.succeeded(), "[{:?}] destroy failed: {:#?}", self.kind, report.failures);
        let state = self.engine.state(STACK).await.unwrap().unwrap();
        assert!(state.resources.is_empty(), "destroy leaves no resources in state");
    }

    /// Marks a bucket as cleaned up by the test itself.
    pub fn forget(&self, bucket: &str) {
        self.cleanup.buckets.lock().unwrap().remove(bucket);
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.files.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.files.join(rel)
    }

    pub async fn text(&self, bucket: &str, key: &str) -> Option<String> {
        self.store.get_object(bucket, key).await.unwrap().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.store.list_objects(bucket, prefix).await.unwrap().into_iter().map(|o| o.key).collect()
    }
}

/// The plan's changing steps as (name, op).
pub fn changes(plan: &Plan) -> Vec<(String, StepOp)> {
    plan.steps.iter().filter(|s| s.op.is_change()).map(|s| (s.urn.to_string(), s.op)).collect()
}

pub fn op_of(plan: &Plan, name: &str) -> Option<StepOp> {
    plan.steps.iter().find(|s| s.urn.as_str() == name).map(|s| s.op)
}

/// The changed property paths of one step, as text.
pub fn changed_paths(plan: &Plan, name: &str) -> Vec<String> {
    plan.steps
        .iter()
        .find(|s| s.urn.as_str() == name)
        .map(|s| s.changes.iter().map(|c| c.path.to_string()).collect())
        .unwrap_or_default()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
