//! One measurement, run in its own child process so the peak-memory reading (`VmHWM`, a
//! process-wide high-water mark) belongs to it alone: a first preview, an up, a no-op preview
//! that must plan only `Same`, and a destroy, against local state in a fresh directory.

use stackwright::{PreviewOptions, UpOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};
use stackwright::builtin::testing::{Faults, TestProvider, World};
use stackwright::{Engine, Plan, Program, Settings};

use crate::shapes::{Kind, Shape, data_program, item_program};

/// The stack every measurement uses.
const STACK: &str = "bench";

/// What one measurement asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Which resource type.
    pub kind: Kind,
    /// Which graph.
    pub shape: Shape,
    /// How many resources.
    pub n: usize,
}

impl Spec {
    /// `kind:shape:n`, the hidden `--one` argument.
    pub fn arg(&self) -> String {
        let kind = match self.kind {
            Kind::Engine => "engine",
            Kind::Latency => "latency",
            Kind::Provider => "provider",
        };
        format!("{kind}:{}:{}", self.shape, self.n)
    }

    /// Parses `kind:shape:n`.
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let [kind, shape, n] = parts[..] else { bail!("expected kind:shape:n, got `{s}`") };
        let kind = match kind {
            "engine" => Kind::Engine,
            "latency" => Kind::Latency,
            "provider" => Kind::Provider,
            other => bail!("unknown kind `{other}` (expected engine, latency or provider)"),
        };
        let shape: Shape = shape.parse()?;
        let n: usize = n.parse().with_context(|| format!("bad N in `{s}`"))?;
        shape.validate(n)?;
        Ok(Spec { kind, shape, n })
    }
}

/// Wall and CPU time of one phase.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Phase {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// User plus system CPU seconds of the whole process (all threads) during the phase.
    pub cpu_s: f64,
}

/// The result of one measurement; the child prints it as one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// What was measured.
    pub spec: Spec,
    /// `Settings::parallel`.
    pub parallel: usize,
    /// Latency of each provider call, in milliseconds (latency runs).
    pub latency_ms: u64,
    /// How `Settings::interrupt` was set.
    pub interrupt: Interrupt,
    /// First preview: nothing exists yet.
    pub plan: Phase,
    /// Up: creates N.
    pub apply: Phase,
    /// Preview right after the up: must be all `Same`.
    pub noop_plan: Phase,
    /// Up right after that preview: must change nothing.
    #[serde(default)]
    pub noop_up: Phase,
    /// Destroy: deletes N.
    pub destroy: Phase,
    /// `VmHWM` at the end, MiB.
    pub peak_rss_mb: f64,
    /// `VmRSS` before the first preview, MiB (the process's baseline).
    pub base_rss_mb: f64,
    /// `UpReport::journal_bytes` of the up.
    pub journal_bytes: u64,
    /// `UpReport::journal_flushes` of the up.
    pub journal_flushes: u64,
    /// Size of the snapshot and journal files after the up.
    pub snapshot_bytes: u64,
    /// Journal bytes of the destroy.
    pub destroy_journal_bytes: u64,
    /// `fsync`/`fdatasync` calls the state backend made during the up (`LocalBackend::syncs`).
    #[serde(default)]
    pub up_syncs: u64,
    /// The same during the no-op up.
    #[serde(default)]
    pub noop_up_syncs: u64,
    /// Files of the state directory the no-op up wrote (size or modification time changed).
    #[serde(default)]
    pub noop_up_files: Vec<String>,
    /// The most provider calls in flight at once (latency runs).
    pub max_in_flight: Option<usize>,
    /// Latency runs: seconds that as many back-to-back `tokio::time::sleep(latency)` as the ideal
    /// schedule has waves take on this runtime: the floor set by the timer and the machine.
    pub sleep_floor_s: Option<f64>,
}

impl Sample {
    /// State bytes written by the up: journal appends plus the snapshot it leaves.
    pub fn state_written(&self) -> u64 {
        self.journal_bytes + self.snapshot_bytes
    }

    /// Peak memory above the process's baseline, in KiB per resource.
    pub fn peak_kib_per_resource(&self) -> f64 {
        (self.peak_rss_mb - self.base_rss_mb).max(0.0) * 1024.0 / self.spec.n.max(1) as f64
    }

    /// Stored bytes per resource (snapshot and journal after the up): the size of its values.
    pub fn stored_bytes_per_resource(&self) -> f64 {
        self.snapshot_bytes as f64 / self.spec.n.max(1) as f64
    }
}

/// Size and modification time of every file directly in `dir`, to tell whether anything was written.
fn dir_files(dir: &Path) -> Vec<(std::path::PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let e = e.ok()?;
                    let m = e.metadata().ok()?;
                    m.is_file().then(|| (e.path(), m.len(), m.modified().ok()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Reads a `kB` field of `/proc/self/status`, in MiB.
fn status_mb(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User plus system CPU seconds of this process so far (`/proc/self/stat`, USER_HZ = 100).
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / 100.0
}

async fn timed<T, F: Future<Output = anyhow::Result<T>>>(f: F) -> anyhow::Result<(T, Phase)> {
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let out = f.await?;
    Ok((out, Phase { wall_s: t0.elapsed().as_secs_f64(), cpu_s: cpu_seconds() - cpu0 }))
}

fn describe(plan: &Plan) -> String {
    let c = plan.counts();
    format!(
        "{} steps: {} create, {} update, {} replace, {} delete, {} same",
        plan.steps.len(),
        c.create,
        c.update,
        c.replace,
        c.delete,
        c.same
    )
}

/// How the engine's `Settings::interrupt` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Interrupt {
    /// `None`, the `Settings::default()` of the library API.
    None,
    /// A receiver whose sender stays alive for the run, as the CLI's Ctrl-C handler sets it.
    Channel,
}

/// Runs one measurement with state under `dir`.
pub fn run(spec: Spec, parallel: usize, latency: Duration, interrupt: Interrupt, dir: &Path) -> anyhow::Result<Sample> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(run_async(spec, parallel, latency, interrupt, dir))
}

async fn run_async(
    spec: Spec,
    parallel: usize,
    latency: Duration,
    interrupt: Interrupt,
    dir: &Path,
) -> anyhow::Result<Sample> {
    let Spec { kind, shape, n } = spec;
    // Test-provider items have a secret output, so the state needs a secrets provider; a cheap
    // key derivation keeps it out of the measurement (encryption itself is measured).
    let backend = stackwright::testing::sealed_local_backend(dir);
    let snapshot_path = backend.snapshot_path(STACK);
    let journal_path = backend.journal_path(STACK);
    let state_dir = snapshot_path.parent().map(Path::to_path_buf).unwrap_or_default();
    // A clone shares the sync counter of the backend the engine uses.
    let counter = backend.clone();
    // Held until the end of the run, so the receiver never sees its sender go away.
    let (_interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
    let settings = Settings {
        parallel,
        command: format!("benchmark {}", spec.arg()),
        interrupt: (interrupt == Interrupt::Channel).then_some(interrupt_rx),
        ..Settings::default()
    };
    let engine = Engine::new(Arc::new(backend), settings);
    let (program, provider): (Program, Option<TestProvider>) = match kind {
        Kind::Engine => (data_program(shape, n), None),
        Kind::Latency | Kind::Provider => {
            let latency = if kind == Kind::Latency { latency } else { Duration::ZERO };
            let tp = TestProvider::new(World::memory(), Faults { latency, ..Faults::default() });
            (item_program(shape, n, tp.clone()), Some(tp))
        }
    };
    let yes = |_: &Plan, _: &[stackwright::Drift]| true;
    let base_rss_mb = status_mb("VmRSS");

    let (first, plan) = timed(async { Ok(engine.preview(STACK, &program, PreviewOptions::default()).await?) }).await?;
    let c = first.plan.counts();
    ensure!(
        c.create == n && first.plan.steps.len() == n,
        "{}: the first preview should create {n}, it planned {}",
        spec.arg(),
        describe(&first.plan)
    );
    // Reports are let go once checked, as a command line would: the peak memory is the engine's.
    drop(first);

    let syncs0 = counter.syncs();
    let (up, apply) = timed(async { Ok(engine.up(STACK, &program, UpOptions::default(), &yes).await?) }).await?;
    let up_syncs = counter.syncs() - syncs0;
    if !up.succeeded() {
        let first_failure = up.failures.first().map(|f| format!("{}: {}", f.urn, f.message)).unwrap_or_default();
        bail!(
            "{}: up failed ({} failures, interrupted: {}); first: {first_failure}",
            spec.arg(),
            up.failures.len(),
            up.interrupted
        );
    }
    let (journal_bytes, journal_flushes) = (up.journal_bytes, up.journal_flushes);
    drop(up);
    let file_len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let snapshot_bytes = file_len(&snapshot_path) + file_len(&journal_path);
    let stored = engine.state(STACK).await?.map_or(0, |s| s.resources.len());
    ensure!(stored == n, "{}: after up the state holds {stored} resources, expected {n}", spec.arg());

    let (noop, noop_plan) =
        timed(async { Ok(engine.preview(STACK, &program, PreviewOptions::default()).await?) }).await?;
    let c = noop.plan.counts();
    if noop.plan.has_changes() || c.same != n || noop.plan.steps.len() != n {
        let changed: Vec<String> = noop
            .plan
            .steps
            .iter()
            .filter(|s| s.op.is_change() || s.renamed_from.is_some())
            .take(5)
            .map(|s| format!("{} {:?} {:?}", s.urn, s.op, s.changes))
            .collect();
        bail!(
            "NO-OP PREVIEW IS NOT A NO-OP for {}: expected {n} same, planned {}; first changes: {changed:#?}",
            spec.arg(),
            describe(&noop.plan)
        );
    }
    drop(noop);

    let (files0, syncs0) = (dir_files(&state_dir), counter.syncs());
    let (again, noop_up) = timed(async { Ok(engine.up(STACK, &program, UpOptions::default(), &yes).await?) }).await?;
    let noop_up_syncs = counter.syncs() - syncs0;
    ensure!(
        again.succeeded() && again.changed == 0 && !again.plan.has_changes(),
        "{}: the no-op up changed something: {}",
        spec.arg(),
        describe(&again.plan)
    );
    drop(again);
    // Files whose size or modification time changed (the lock file is written by every up).
    let noop_up_files: Vec<String> = dir_files(&state_dir)
        .into_iter()
        .filter(|f| !files0.contains(f))
        .filter_map(|(path, _, _)| Some(path.file_name()?.to_string_lossy().into_owned()))
        .collect();

    let (down, destroy) = timed(async { Ok(engine.destroy(STACK, &program, &yes).await?) }).await?;
    ensure!(down.succeeded(), "{}: destroy failed: {:?}", spec.arg(), down.failures.first());
    let destroy_journal_bytes = down.journal_bytes;
    drop(down);
    let left = engine.state(STACK).await?.map_or(0, |s| s.resources.len());
    ensure!(left == 0, "{}: after destroy the state still holds {left} resources", spec.arg());

    let sleep_floor_s = match kind {
        Kind::Engine | Kind::Provider => None,
        Kind::Latency => {
            let t0 = Instant::now();
            for _ in 0..shape.waves(n, parallel) {
                tokio::time::sleep(latency).await;
            }
            Some(t0.elapsed().as_secs_f64())
        }
    };

    Ok(Sample {
        spec,
        parallel,
        latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        interrupt,
        plan,
        apply,
        noop_plan,
        noop_up,
        destroy,
        peak_rss_mb: status_mb("VmHWM"),
        base_rss_mb,
        journal_bytes,
        journal_flushes,
        snapshot_bytes,
        destroy_journal_bytes,
        up_syncs,
        noop_up_syncs,
        noop_up_files,
        max_in_flight: provider.map(|p| p.max_in_flight()),
        sleep_floor_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        let s = Spec::parse("latency:layered:500").unwrap();
        assert_eq!(s, Spec { kind: Kind::Latency, shape: Shape::Layered, n: 500 });
        assert_eq!(Spec::parse(&s.arg()).unwrap(), s);
        assert!(Spec::parse("engine:layered:15").is_err());
        assert!(Spec::parse("engine:chain").is_err());
        let p = Spec::parse("provider:chain:1000").unwrap();
        assert_eq!(Spec::parse(&p.arg()).unwrap(), p);
    }

    #[test]
    fn every_shape_plans_applies_and_is_a_no_op_afterwards() {
        for shape in Shape::ALL {
            let dir = tempfile::tempdir().unwrap();
            let spec = Spec { kind: Kind::Engine, shape, n: 30 };
            let s = run(spec, 4, Duration::ZERO, Interrupt::None, dir.path()).unwrap();
            assert!(s.journal_bytes > 0 && s.snapshot_bytes > 0 && s.peak_rss_mb > 0.0, "{s:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec { kind: Kind::Latency, shape: Shape::Layered, n: 20 };
        let s = run(spec, 3, Duration::from_millis(1), Interrupt::Channel, dir.path()).unwrap();
        assert!(s.max_in_flight.unwrap() <= 3, "{s:?}");
        // Durable steps: every create makes at least one sync; a no-op up writes no state.
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec { kind: Kind::Provider, shape: Shape::Chain, n: 20 };
        let s = run(spec, 3, Duration::ZERO, Interrupt::None, dir.path()).unwrap();
        // A pending record per step, each carrying the result before it: about N syncs, where
        // writing each result by itself costs 2N and more.
        assert!(s.up_syncs >= 20 && s.up_syncs < 40, "{s:?}");
        assert!(s.noop_up_files.iter().all(|f| !f.ends_with(".json") && !f.ends_with(".journal")), "{s:?}");
    }
}
