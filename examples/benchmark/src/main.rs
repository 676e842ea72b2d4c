//! The engine benchmark: `cargo run --release -p benchmark -- [options]`.
//!
//! It measures the engine in-process over local state, for three graph shapes of built-in `Data`
//! resources (independent, layered, chain): the wall time of a first preview, an up, a no-op
//! preview right after (which must plan only `Same`) and a destroy; the peak memory; and the
//! state bytes written. Each (shape, N) runs in a fresh child process of this binary (the hidden
//! `--one kind:shape:n` mode prints one JSON line), so the peak-memory reading is its own.
//! A latency mode puts a 20 ms test provider behind the same shapes and compares the apply with
//! the ideal schedule, and when the Terraform harness is present the same shapes run through
//! Terraform side by side. The report is a set of markdown tables on stdout; progress goes to
//! stderr. See `book/src/benchmarks.md`.

mod machine;
mod measure;
mod shapes;
mod table;
mod terraform;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::measure::{Interrupt, Phase, Sample, Spec};
use crate::shapes::{Kind, Shape};
use crate::table::{Align, Table};
use crate::terraform::{Harness, TfSample};

/// Measures Stackwright's engine: plan, apply, no-op plan and destroy over N resources.
#[derive(Debug, Parser)]
#[command(name = "benchmark")]
struct Cli {
    /// Shapes to measure.
    #[arg(long, value_delimiter = ',', default_value = "independent,layered,chain")]
    shapes: Vec<Shape>,
    /// N for the independent and layered shapes.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    /// N for the chain; the first two are compared for linearity.
    #[arg(long, value_delimiter = ',', default_value = "1000,4000")]
    chain_sizes: Vec<usize>,
    /// At most this many steps at once (engine `parallel`; Terraform `-parallelism`).
    #[arg(long, default_value_t = 10)]
    parallel: usize,
    /// How the engine's `Settings::interrupt` is set: `none` as in `Settings::default()`, or
    /// `channel`, a live receiver as the CLI (`stackwright::run`) gives `up` and `destroy`.
    #[arg(long, value_enum, default_value = "none")]
    interrupt: Interrupt,
    /// Runs of each engine measurement; the report shows the median of each time.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Latency runs as shape:N pairs.
    #[arg(long, value_delimiter = ',', default_value = "independent:500,layered:500,chain:200")]
    latency_runs: Vec<String>,
    /// Skip the latency runs.
    #[arg(long)]
    no_latency: bool,
    /// Scale and durability runs as kind:shape:N (kind `engine` is built-in `Data`, `provider` the
    /// test provider without latency): syncs per up, no-op up against no-op preview, peak memory
    /// per resource.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "provider:chain:1000,engine:layered:5000,engine:layered:10000,engine:layered:50000,provider:layered:50000"
    )]
    scale_runs: Vec<String>,
    /// Skip the scale runs.
    #[arg(long)]
    no_scale: bool,
    /// Runs of each scale measurement (median of times and sync counts, largest peak memory).
    #[arg(long, default_value_t = 3)]
    scale_repeat: usize,
    /// Latency of each test-provider call in the latency runs, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Runs of each latency measurement (median).
    #[arg(long, default_value_t = 1)]
    latency_repeat: usize,
    /// Run Terraform side by side (the default when the harness exists); fail if it cannot.
    #[arg(long, conflicts_with = "no_terraform")]
    terraform: bool,
    /// Do not run Terraform.
    #[arg(long)]
    no_terraform: bool,
    /// The Terraform harness directory (setup.sh, tf_bench.py).
    #[arg(long, value_name = "DIR")]
    terraform_harness: Option<PathBuf>,
    /// N of the side-by-side runs.
    #[arg(long, default_value_t = 1000)]
    terraform_n: usize,
    /// The Python that runs tf_bench.py.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Where the state directories go (default: the system temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Also write every raw sample to this file, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Exit with status 2 when a target fails.
    #[arg(long)]
    check: bool,
    /// Run one measurement (kind:shape:n) in this process and print it as JSON.
    #[arg(long, hide = true, value_name = "KIND:SHAPE:N")]
    one: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.one {
        Some(spec) => child(&cli, spec).map(|()| true),
        None => parent(&cli),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("benchmark: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn work_dir(cli: &Cli) -> PathBuf {
    cli.work_dir.clone().unwrap_or_else(std::env::temp_dir)
}

/// The hidden `--one` mode: one measurement, one JSON line on stdout.
fn child(cli: &Cli, spec: &str) -> anyhow::Result<()> {
    let spec = Spec::parse(spec)?;
    let base = work_dir(cli);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let dir = tempfile::Builder::new().prefix("stackwright-bench-").tempdir_in(&base)?;
    let sample = measure::run(spec, cli.parallel, Duration::from_millis(cli.latency_ms), cli.interrupt, dir.path())?;
    println!("{}", serde_json::to_string(&sample)?);
    Ok(())
}

/// Runs `spec` in a fresh child process.
fn spawn(cli: &Cli, spec: Spec) -> anyhow::Result<Sample> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["--one", &spec.arg(), "--parallel", &cli.parallel.to_string()])
        .args(["--latency-ms", &cli.latency_ms.to_string()])
        .args(["--interrupt", if cli.interrupt == Interrupt::None { "none" } else { "channel" }])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(dir) = &cli.work_dir {
        cmd.arg("--work-dir").arg(dir);
    }
    let out = cmd.output().context("starting a child measurement")?;
    if !out.status.success() {
        bail!("the measurement {} failed ({}); its error is above", spec.arg(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("parsing the child's output `{stdout}`"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median of each time and the largest peak memory over `samples`.
fn aggregate(samples: &[Sample]) -> Sample {
    let phase = |f: fn(&Sample) -> Phase| Phase {
        wall_s: median(samples.iter().map(|s| f(s).wall_s).collect()),
        cpu_s: median(samples.iter().map(|s| f(s).cpu_s).collect()),
    };
    let mut out = samples[0].clone();
    out.plan = phase(|s| s.plan);
    out.apply = phase(|s| s.apply);
    out.noop_plan = phase(|s| s.noop_plan);
    out.noop_up = phase(|s| s.noop_up);
    let count = |f: fn(&Sample) -> u64| median(samples.iter().map(|s| f(s) as f64).collect()).round() as u64;
    out.up_syncs = count(|s| s.up_syncs);
    out.noop_up_syncs = count(|s| s.noop_up_syncs);
    // Every file any run's no-op up wrote.
    let mut files: Vec<String> = samples.iter().flat_map(|s| s.noop_up_files.iter().cloned()).collect();
    files.sort();
    files.dedup();
    out.noop_up_files = files;
    out.destroy = phase(|s| s.destroy);
    out.peak_rss_mb = samples.iter().map(|s| s.peak_rss_mb).fold(0.0, f64::max);
    out
}

/// Runs `spec` `repeat` times, each in a fresh child, and aggregates.
fn measure(cli: &Cli, spec: Spec, repeat: usize, raw: &mut Vec<String>) -> anyhow::Result<Sample> {
    let mut samples = Vec::new();
    for i in 1..=repeat.max(1) {
        let s = spawn(cli, spec)?;
        eprintln!(
            "[bench] {} run {i}/{}: plan {:.3}s, up {:.3}s ({} syncs), no-op plan {:.3}s, no-op up {:.3}s ({} syncs), destroy {:.3}s, peak {:.1} MiB",
            spec.arg(),
            repeat.max(1),
            s.plan.wall_s,
            s.apply.wall_s,
            s.up_syncs,
            s.noop_plan.wall_s,
            s.noop_up.wall_s,
            s.noop_up_syncs,
            s.destroy.wall_s,
            s.peak_rss_mb
        );
        raw.push(serde_json::to_string(&s)?);
        samples.push(s);
    }
    Ok(aggregate(&samples))
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Engine => "engine",
        Kind::Latency => "latency",
        Kind::Provider => "provider",
    }
}

fn secs(s: f64) -> String {
    format!("{s:.3}")
}

fn kib(b: u64) -> String {
    format!("{:.1}", b as f64 / 1024.0)
}

fn verdict(ok: bool) -> String {
    if ok { "PASS".into() } else { "FAIL".into() }
}

/// A target and whether it was met.
struct Target {
    what: String,
    measured: String,
    ok: bool,
}

fn parse_scale_runs(list: &[String]) -> anyhow::Result<Vec<Spec>> {
    list.iter().filter(|s| !s.trim().is_empty()).map(|s| Spec::parse(s.trim())).collect()
}

fn parse_latency_runs(list: &[String]) -> anyhow::Result<Vec<(Shape, usize)>> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (shape, n) = s.split_once(':').with_context(|| format!("expected shape:N, got `{s}`"))?;
            let shape: Shape = shape.parse()?;
            let n: usize = n.parse().with_context(|| format!("bad N in `{s}`"))?;
            shape.validate(n)?;
            Ok((shape, n))
        })
        .collect()
}

fn parent(cli: &Cli) -> anyhow::Result<bool> {
    anyhow::ensure!(cli.parallel >= 1, "--parallel must be at least 1");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..").canonicalize().unwrap_or_else(|_| manifest.join("../.."));
    let harness_dir = cli.terraform_harness.clone().unwrap_or_else(|| root.join("examples/benchmark/terraform"));
    let harness = if cli.no_terraform {
        None
    } else {
        match Harness::find(&harness_dir, &cli.python) {
            Some(h) => Some(h),
            None if cli.terraform => {
                bail!("--terraform: no harness (setup.sh and tf_bench.py) in {}", harness_dir.display())
            }
            None => {
                eprintln!("[bench] no Terraform harness in {}; skipping Terraform", harness_dir.display());
                None
            }
        }
    };
    let latency_runs = if cli.no_latency { Vec::new() } else { parse_latency_runs(&cli.latency_runs)? };
    let scale_runs = if cli.no_scale { Vec::new() } else { parse_scale_runs(&cli.scale_runs)? };
    let mut engine_specs = Vec::new();
    for &shape in &cli.shapes {
        let sizes = if shape == Shape::Chain { &cli.chain_sizes } else { &cli.sizes };
        for &n in sizes {
            shape.validate(n)?;
            engine_specs.push(Spec { kind: Kind::Engine, shape, n });
        }
    }
    let base = work_dir(cli);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;

    let mut out = String::new();
    let started = stackwright::state::backend::now_rfc3339();
    out.push_str("# Stackwright engine benchmark\n\n");
    out.push_str(&format!("- date: {started}\n"));
    out.push_str(&format!("- command: `{}`\n", machine::command_line()));
    out.push_str(&format!(
        "- machine: {} CPUs (nproc), {}, {} RAM, Linux {}; load average at start {}\n",
        machine::nproc(),
        machine::cpu_model(),
        machine::memory(),
        machine::kernel(),
        machine::load_average()
    ));
    out.push_str(&format!(
        "- build: {}{}\n",
        if cfg!(debug_assertions) { "DEBUG (numbers are not meaningful; use --release)" } else { "release" },
        machine::git_commit(&root).map(|c| format!(", commit {c}")).unwrap_or_default()
    ));
    out.push_str(&format!(
        "- state: local directory backend under {} ({}), fsync on every journal append and snapshot\n",
        base.display(),
        machine::filesystem(&base)
    ));
    out.push_str(&format!(
        "- engine: parallel {}, `Settings::interrupt` {}, each (shape, N) in a fresh child process, median of {} run(s) per time, peak memory is the largest VmHWM\n",
        cli.parallel,
        match cli.interrupt {
            Interrupt::None => "None (as `Settings::default()`)",
            Interrupt::Channel => "a live watch channel (as the CLI sets it)",
        },
        cli.repeat.max(1)
    ));
    print!("{out}");
    std::io::stdout().flush()?;

    let mut raw: Vec<String> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();

    // Engine alone.
    let mut engine: Vec<Sample> = Vec::new();
    for &spec in &engine_specs {
        engine.push(measure(cli, spec, cli.repeat, &mut raw)?);
    }
    if !engine.is_empty() {
        let mut t = Table::new(&[
            ("shape", Align::Left),
            ("N", Align::Right),
            ("plan s", Align::Right),
            ("up s", Align::Right),
            ("no-op plan s", Align::Right),
            ("no-op up s", Align::Right),
            ("destroy s", Align::Right),
            ("up µs/resource", Align::Right),
            ("up CPU s", Align::Right),
            ("peak RSS MiB", Align::Right),
            ("journal KiB", Align::Right),
            ("flushes", Align::Right),
            ("snapshot KiB", Align::Right),
            ("state written KiB", Align::Right),
        ]);
        for s in &engine {
            t.row(vec![
                s.spec.shape.to_string(),
                s.spec.n.to_string(),
                secs(s.plan.wall_s),
                secs(s.apply.wall_s),
                secs(s.noop_plan.wall_s),
                secs(s.noop_up.wall_s),
                secs(s.destroy.wall_s),
                format!("{:.1}", s.apply.wall_s * 1e6 / s.spec.n as f64),
                format!("{:.2}", s.apply.cpu_s),
                format!("{:.1}", s.peak_rss_mb),
                kib(s.journal_bytes),
                s.journal_flushes.to_string(),
                kib(s.snapshot_bytes),
                kib(s.state_written()),
            ]);
        }
        let section = format!(
            "\n## Engine alone: built-in `Data` resources, no provider I/O\n\n{}\n\
             `state written` = the up's journal appends (`UpReport::journal_bytes`) plus the snapshot \
             and journal files it leaves.\n",
            t.render()
        );
        print!("{section}");

        // Scaling between consecutive sizes of a shape.
        let mut t = Table::new(&[
            ("shape", Align::Left),
            ("N", Align::Right),
            ("N ratio", Align::Right),
            ("plan x", Align::Right),
            ("up x", Align::Right),
            ("no-op plan x", Align::Right),
            ("destroy x", Align::Right),
            ("cycle x", Align::Right),
            ("limit", Align::Right),
            ("result", Align::Left),
        ]);
        let cycle = |s: &Sample| s.plan.wall_s + s.apply.wall_s + s.noop_plan.wall_s + s.destroy.wall_s;
        for &shape in &cli.shapes {
            let rows: Vec<&Sample> = engine.iter().filter(|s| s.spec.shape == shape).collect();
            for pair in rows.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let size = b.spec.n as f64 / a.spec.n as f64;
                let r = |f: fn(&Sample) -> f64| f(b) / f(a);
                let phases =
                    [r(|s| s.plan.wall_s), r(|s| s.apply.wall_s), r(|s| s.noop_plan.wall_s), r(|s| s.destroy.wall_s)];
                let whole = cycle(b) / cycle(a);
                // Linear with 12.5% slack: 4.5x for 4x the resources.
                let limit = size * 1.125;
                let judged = shape == Shape::Chain && a.spec.n == 1000 && b.spec.n == 4000;
                let result = if judged {
                    let ok = whole <= limit && phases[1] <= limit;
                    targets.push(Target {
                        what: format!("chain {}→{}: at most {limit:.2}x the time (cycle and up)", a.spec.n, b.spec.n),
                        measured: format!("cycle {whole:.2}x, up {:.2}x", phases[1]),
                        ok,
                    });
                    verdict(ok)
                } else if phases.iter().chain([&whole]).all(|x| *x <= limit) {
                    "linear".into()
                } else {
                    "superlinear".into()
                };
                let mut row = vec![shape.to_string(), format!("{}→{}", a.spec.n, b.spec.n), format!("{size:.1}")];
                row.extend(phases.iter().map(|x| format!("{x:.2}")));
                row.push(format!("{whole:.2}"));
                row.push(format!("{limit:.2}"));
                row.push(result);
                t.row(row);
            }
        }
        let section = format!(
            "\n### Scaling\n\n{}\nEach column is the time at the larger N divided by the time at the smaller; \
             linear is the N ratio. `cycle` is plan + up + no-op plan + destroy. The chain 1000→4000 \
             target is judged on the cycle and on up; other rows are labelled `linear` when every \
             ratio is within 1.125x the N ratio.\n",
            t.render()
        );
        print!("{section}");

        let mut t = Table::new(&[
            ("shape", Align::Left),
            ("N", Align::Right),
            ("no-op plan s", Align::Right),
            ("limit s", Align::Right),
            ("result", Align::Left),
        ]);
        for s in engine.iter().filter(|s| s.spec.n == 10_000) {
            let ok = s.noop_plan.wall_s < 1.0;
            t.row(vec![
                s.spec.shape.to_string(),
                s.spec.n.to_string(),
                secs(s.noop_plan.wall_s),
                "1.000".into(),
                verdict(ok),
            ]);
            targets.push(Target {
                what: format!("no-op preview of 10,000 ({}) under 1 s", s.spec.shape),
                measured: format!("{:.3} s", s.noop_plan.wall_s),
                ok,
            });
        }
        if engine.iter().any(|s| s.spec.n == 10_000) {
            let section = format!("\n### No-op preview of 10,000 resources\n\n{}", t.render());
            print!("{section}");
        }
        std::io::stdout().flush()?;
    }

    // Scale and durability.
    if !scale_runs.is_empty() {
        let mut t = Table::new(&[
            ("kind", Align::Left),
            ("shape", Align::Left),
            ("N", Align::Right),
            ("up s", Align::Right),
            ("up syncs", Align::Right),
            ("syncs/step", Align::Right),
            ("no-op plan s", Align::Right),
            ("no-op up s", Align::Right),
            ("no-op up / plan", Align::Right),
            ("no-op plan CPU s", Align::Right),
            ("no-op up CPU s", Align::Right),
            ("no-op up syncs", Align::Right),
            ("no-op up wrote", Align::Left),
            ("peak RSS MiB", Align::Right),
            ("peak KiB/resource", Align::Right),
            ("stored B/resource", Align::Right),
        ]);
        for spec in scale_runs {
            let s = measure(cli, spec, cli.scale_repeat, &mut raw)?;
            let n = spec.n as f64;
            let ratio = s.noop_up.wall_s / s.noop_plan.wall_s.max(1e-9);
            let label = format!("{} {} {}", kind_name(spec.kind), spec.shape, spec.n);
            if spec.kind == Kind::Provider && spec.shape == Shape::Chain {
                // A pending record and a result per step, the result joining the next step's write.
                let limit = (n * 1.1).ceil() as u64;
                targets.push(Target {
                    what: format!("{label}: up at most {limit} syncs (about one per durable step)"),
                    measured: format!("{} syncs", s.up_syncs),
                    ok: s.up_syncs <= limit,
                });
            }
            if spec.n >= 5000 {
                targets.push(Target {
                    what: format!("{label}: no-op up no slower than the no-op preview"),
                    measured: format!("{:.3} s vs {:.3} s ({ratio:.2}x)", s.noop_up.wall_s, s.noop_plan.wall_s),
                    ok: ratio <= 1.0,
                });
                let state_files: Vec<&String> =
                    s.noop_up_files.iter().filter(|f| f.ends_with(".json") || f.ends_with(".journal")).collect();
                targets.push(Target {
                    what: format!("{label}: no-op up rewrites no snapshot or journal"),
                    measured: if state_files.is_empty() { "none".into() } else { format!("{state_files:?}") },
                    ok: state_files.is_empty(),
                });
            }
            if spec.n >= 50_000 {
                let limit = 5.0 + s.stored_bytes_per_resource() / 1024.0;
                let per = s.peak_kib_per_resource();
                targets.push(Target {
                    what: format!("{label}: peak memory under 5 KiB per resource plus its stored size"),
                    measured: format!("{per:.2} KiB vs {limit:.2} KiB"),
                    ok: per < limit,
                });
            }
            t.row(vec![
                kind_name(spec.kind).into(),
                spec.shape.to_string(),
                spec.n.to_string(),
                secs(s.apply.wall_s),
                s.up_syncs.to_string(),
                format!("{:.2}", s.up_syncs as f64 / n),
                secs(s.noop_plan.wall_s),
                secs(s.noop_up.wall_s),
                format!("{ratio:.2}"),
                format!("{:.2}", s.noop_plan.cpu_s),
                format!("{:.2}", s.noop_up.cpu_s),
                s.noop_up_syncs.to_string(),
                if s.noop_up_files.is_empty() { "nothing".into() } else { s.noop_up_files.join(" ") },
                format!("{:.1}", s.peak_rss_mb),
                format!("{:.2}", s.peak_kib_per_resource()),
                format!("{:.0}", s.stored_bytes_per_resource()),
            ]);
        }
        let section = format!(
            "\n## Scale and durability: syncs, no-op up, memory per resource\n\n{}\n\
             `engine` is built-in `Data`, `provider` the test provider without latency (every create is a \
             durable operation: a pending record, then its result). `up syncs` counts every fsync/fdatasync \
             the state backend asked for during the up (`LocalBackend::syncs`: journal appends, the lock file, \
             the snapshot's atomic replacement, the history line); `syncs/step` divides by N. The no-op up runs \
             right after the no-op preview; `no-op up wrote` lists the state directory's files whose size or \
             modification time it changed. `peak KiB/resource` is (VmHWM − RSS before the first preview) / N; \
             `stored B/resource` is the snapshot and journal size after the up / N. Medians of {} run(s); peak \
             memory is the largest.\n",
            t.render(),
            cli.scale_repeat.max(1)
        );
        print!("{section}");
        std::io::stdout().flush()?;
    }

    // Provider latency.
    let latency: Vec<(Shape, usize)> = latency_runs.into_iter().filter(|(s, _)| cli.shapes.contains(s)).collect();
    if !latency.is_empty() {
        let call = Duration::from_millis(cli.latency_ms);
        let mut t = Table::new(&[
            ("shape", Align::Left),
            ("N", Align::Right),
            ("P", Align::Right),
            ("ideal up s", Align::Right),
            ("up s", Align::Right),
            ("overhead", Align::Right),
            ("limit", Align::Right),
            ("result", Align::Left),
            ("sleep floor s", Align::Right),
            ("over floor", Align::Right),
            ("destroy s", Align::Right),
            ("destroy overhead", Align::Right),
            ("max in flight", Align::Right),
        ]);
        for (shape, n) in latency {
            let s = measure(cli, Spec { kind: Kind::Latency, shape, n }, cli.latency_repeat, &mut raw)?;
            let ideal = shape.ideal_apply(n, cli.parallel, call).as_secs_f64();
            let over = (s.apply.wall_s - ideal) / ideal * 100.0;
            let over_destroy = (s.destroy.wall_s - ideal) / ideal * 100.0;
            let ok = over <= 10.0;
            targets.push(Target {
                what: format!("{shape} {n} at {} ms per call: up within 10% of the ideal schedule", cli.latency_ms),
                measured: format!("{:.3} s vs {ideal:.3} s ideal, {over:+.1}%", s.apply.wall_s),
                ok,
            });
            if let Some(floor) = s.sleep_floor_s {
                let over_floor = (s.apply.wall_s - floor) / floor * 100.0;
                targets.push(Target {
                    what: format!("{shape} {n} at {} ms per call: up within 2% of the sleep floor", cli.latency_ms),
                    measured: format!("{:.3} s vs {floor:.3} s floor, {over_floor:+.1}%", s.apply.wall_s),
                    ok: over_floor <= 2.0,
                });
            }
            t.row(vec![
                shape.to_string(),
                n.to_string(),
                cli.parallel.to_string(),
                secs(ideal),
                secs(s.apply.wall_s),
                format!("{over:+.1}%"),
                "10%".into(),
                verdict(ok),
                s.sleep_floor_s.map(secs).unwrap_or_default(),
                s.sleep_floor_s.map(|f| format!("{:+.1}%", (s.apply.wall_s - f) / f * 100.0)).unwrap_or_default(),
                secs(s.destroy.wall_s),
                format!("{over_destroy:+.1}%"),
                s.max_in_flight.map(|m| m.to_string()).unwrap_or_default(),
            ]);
        }
        let section = format!(
            "\n## Provider latency: test provider, {} ms per call, parallel {}\n\n{}\n\
             Ideal up: independent ceil(N/P) calls deep, layered 10 x ceil((N/10)/P), chain N; \
             each level takes one call. Destroy has the same ideal (reverse order). `sleep floor` is \
             as many back-to-back `tokio::time::sleep`s of the latency as the ideal schedule has levels, \
             timed in the same process: what the timer and the machine allow before any engine work.\n",
            cli.latency_ms,
            cli.parallel,
            t.render()
        );
        print!("{section}");
        std::io::stdout().flush()?;
    }

    // Terraform side by side.
    if let Some(h) = &harness {
        let n = cli.terraform_n;
        let terraform = match h.setup() {
            Ok(t) => Some(t),
            Err(e) if cli.terraform => return Err(e),
            Err(e) => {
                eprintln!("[bench] Terraform setup failed, skipping Terraform: {e:#}");
                None
            }
        };
        if let Some(tf) = terraform {
            let mut pairs: Vec<(Shape, Sample, TfSample)> = Vec::new();
            for &shape in &cli.shapes {
                shape.validate(n)?;
                let ours = match engine.iter().find(|s| s.spec.shape == shape && s.spec.n == n) {
                    Some(s) => s.clone(),
                    None => measure(cli, Spec { kind: Kind::Engine, shape, n }, cli.repeat, &mut raw)?,
                };
                let workdir = tempfile::Builder::new().prefix("stackwright-bench-tf-").tempdir_in(&base)?;
                eprintln!("[bench] terraform {shape} {n} (parallelism {})", cli.parallel);
                let theirs = h.run(&tf, shape, n, cli.parallel, workdir.path())?;
                raw.push(format!(
                    "{{\"tool\":\"terraform\",\"shape\":\"{shape}\",\"n\":{n},\"plan_s\":{},\"apply_s\":{},\"noop_plan_s\":{},\"destroy_s\":{},\"peak_rss_mb\":{},\"state_bytes\":{}}}",
                    theirs.plan_s, theirs.apply_s, theirs.noop_plan_s, theirs.destroy_s, theirs.peak_rss_mb, theirs.state_bytes
                ));
                pairs.push((shape, ours, theirs));
            }
            let version = pairs.first().map(|p| p.2.version.clone()).unwrap_or_default();
            let mut t = Table::new(&[
                ("shape", Align::Left),
                ("tool", Align::Left),
                ("plan s", Align::Right),
                ("apply s", Align::Right),
                ("no-op plan s", Align::Right),
                ("destroy s", Align::Right),
                ("peak RSS MiB", Align::Right),
                ("state KiB", Align::Right),
            ]);
            for (shape, ours, theirs) in &pairs {
                t.row(vec![
                    shape.to_string(),
                    "stackwright".into(),
                    secs(ours.plan.wall_s),
                    secs(ours.apply.wall_s),
                    secs(ours.noop_plan.wall_s),
                    secs(ours.destroy.wall_s),
                    format!("{:.1}", ours.peak_rss_mb),
                    kib(ours.snapshot_bytes),
                ]);
                t.row(vec![
                    shape.to_string(),
                    format!("terraform {version}"),
                    secs(theirs.plan_s),
                    secs(theirs.apply_s),
                    secs(theirs.noop_plan_s),
                    secs(theirs.destroy_s),
                    format!("{:.1}", theirs.peak_rss_mb),
                    kib(theirs.state_bytes),
                ]);
            }
            let mut sp = Table::new(&[
                ("shape", Align::Left),
                ("plan x", Align::Right),
                ("apply x", Align::Right),
                ("no-op plan x", Align::Right),
                ("destroy x", Align::Right),
                ("apply target", Align::Right),
                ("result", Align::Left),
            ]);
            for (shape, ours, theirs) in &pairs {
                let x = |tf: f64, us: f64| if us > 0.0 { tf / us } else { f64::INFINITY };
                let apply = x(theirs.apply_s, ours.apply.wall_s);
                let target = if *shape == Shape::Chain { 50.0 } else { 10.0 };
                let ok = apply >= target;
                targets.push(Target {
                    what: format!("{shape} {n}: apply at least {target:.0}x faster than Terraform"),
                    measured: format!("{apply:.1}x ({:.3} s vs {:.3} s)", ours.apply.wall_s, theirs.apply_s),
                    ok,
                });
                sp.row(vec![
                    shape.to_string(),
                    format!("{:.1}", x(theirs.plan_s, ours.plan.wall_s)),
                    format!("{apply:.1}"),
                    format!("{:.1}", x(theirs.noop_plan_s, ours.noop_plan.wall_s)),
                    format!("{:.1}", x(theirs.destroy_s, ours.destroy.wall_s)),
                    format!("≥ {target:.0}x"),
                    verdict(ok),
                ]);
            }
            let section = format!(
                "\n## Side by side with Terraform {version}: N = {n}, parallelism {}\n\n{}\n\
                 Terraform runs `terraform_data` resources with local state via {}; its times are \
                 wall clock per command (each a new process, so they include start-up), ours are in-process \
                 engine calls. `state KiB` is the snapshot (ours) and `terraform.tfstate` (theirs) after apply.\n\n\
                 Speedup (Terraform time / Stackwright time):\n\n{}",
                cli.parallel,
                t.render(),
                h.dir().display(),
                sp.render()
            );
            print!("{section}");
        }
    }

    // Targets.
    let mut t = Table::new(&[("target", Align::Left), ("measured", Align::Left), ("result", Align::Left)]);
    for target in &targets {
        t.row(vec![target.what.clone(), target.measured.clone(), verdict(target.ok)]);
    }
    let passed = targets.iter().filter(|t| t.ok).count();
    let section = format!("\n## Targets: {passed} of {} pass\n\n{}", targets.len(), t.render());
    print!("{section}");

    if let Some(path) = &cli.json {
        std::fs::write(path, raw.join("\n") + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(!cli.check || passed == targets.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn latency_runs_parse() {
        let runs = parse_latency_runs(&["independent:500".into(), "chain:200".into()]).unwrap();
        assert_eq!(runs, vec![(Shape::Independent, 500), (Shape::Chain, 200)]);
        assert!(parse_latency_runs(&["layered:55".into()]).is_err());
    }

    #[test]
    fn scale_runs_parse() {
        let runs = parse_scale_runs(&["provider:chain:1000".into(), " engine:layered:50000".into()]).unwrap();
        assert_eq!(
            runs,
            vec![
                Spec { kind: Kind::Provider, shape: Shape::Chain, n: 1000 },
                Spec { kind: Kind::Engine, shape: Shape::Layered, n: 50_000 }
            ]
        );
        assert!(parse_scale_runs(&["provider:chain".into()]).is_err());
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["benchmark", "--shapes", "chain", "--chain-sizes", "10,40"]).unwrap();
        assert_eq!((cli.shapes, cli.chain_sizes), (vec![Shape::Chain], vec![10, 40]));
    }
}
