//! Terraform side by side, through the harness in `examples/benchmark/terraform/`: `setup.sh`
//! installs an offline `terraform` and prints its path on its last line; `tf_bench.py` runs
//! init, plan, apply, a no-op plan and destroy on the same shapes and prints one JSON line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::shapes::Shape;

/// One Terraform measurement, as `tf_bench.py` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct TfSample {
    /// Terraform's version.
    pub version: String,
    /// First plan, seconds.
    pub plan_s: f64,
    /// Apply, seconds.
    pub apply_s: f64,
    /// No-op plan after the apply, seconds.
    pub noop_plan_s: f64,
    /// Destroy, seconds.
    pub destroy_s: f64,
    /// Largest peak RSS of the phases, MiB.
    pub peak_rss_mb: f64,
    /// Size of `terraform.tfstate` after apply.
    pub state_bytes: u64,
}

/// The harness directory and its scripts.
pub struct Harness {
    dir: PathBuf,
    python: String,
}

impl Harness {
    /// The harness in `dir`, if both scripts are there.
    pub fn find(dir: &Path, python: &str) -> Option<Harness> {
        (dir.join("setup.sh").is_file() && dir.join("tf_bench.py").is_file())
            .then(|| Harness { dir: dir.to_path_buf(), python: python.to_owned() })
    }

    /// The harness directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `setup.sh` (its progress goes to our stderr) and returns the `terraform` it prints.
    pub fn setup(&self) -> anyhow::Result<PathBuf> {
        let script = self.dir.join("setup.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!("{} failed ({})", script.display(), out.status);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = stdout.lines().rev().find(|l| !l.trim().is_empty()).map(str::trim).unwrap_or_default();
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{} did not print the path of a terraform executable (got `{}`)", script.display(), path.display());
        }
        Ok(path)
    }

    /// Runs `tf_bench.py` for one shape.
    pub fn run(
        &self,
        terraform: &Path,
        shape: Shape,
        n: usize,
        parallelism: usize,
        workdir: &Path,
    ) -> anyhow::Result<TfSample> {
        let script = self.dir.join("tf_bench.py");
        let out = Command::new(&self.python)
            .arg(&script)
            .arg("--terraform")
            .arg(terraform)
            .args(["--shape", shape.name(), "--n", &n.to_string(), "--parallelism", &parallelism.to_string()])
            .arg("--workdir")
            .arg(workdir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {} {}", self.python, script.display()))?;
        if !out.status.success() {
            bail!("{} --shape {shape} --n {n} failed ({})", script.display(), out.status);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
        serde_json::from_str(line).with_context(|| format!("parsing the output of tf_bench.py: `{stdout}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_harness_line() {
        let line = r#"{"tool":"terraform","version":"1.15.5","shape":"chain","n":10,"parallelism":10,
            "init_s":0.4,"plan_s":0.5,"apply_s":1.5,"noop_plan_s":0.6,"destroy_s":1.2,"peak_rss_mb":80.5,
            "phase_rss_mb":{"plan":80.5},"state_bytes":12345,"phase_cpu_s":{"plan":0.4}}"#;
        let s: TfSample = serde_json::from_str(line).unwrap();
        assert_eq!((s.state_bytes, s.apply_s), (12345, 1.5));
    }
}
