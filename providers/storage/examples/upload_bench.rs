//! Upload benchmark (not a test): generates a large file (1 GiB by default), declares it as a
//! `storage:Object` and applies the program through the engine against the S3 server in the
//! `STACKWRIGHT_S3_*` variables, then prints the time to hash the file and the multipart upload
//! throughput. Cleans up after itself.
//!
//! On the CI Ceph RGW (an in-memory OSD capped at 2 GiB) deleted data is only reclaimed by the
//! gateway's garbage collector, after `rgw_gc_obj_min_wait` (2 h by default). Before running the
//! benchmark again, reclaim it — otherwise the OSD fills up and every write hangs:
//! `radosgw-admin -c /var/tmp/stackwright-ceph/ceph.conf -n client.rgw.a gc process --include-all`.
//!
//! ```sh
//! eval "$(bash .ci/ceph-rgw.sh env)"
//! cargo run --release -p stackwright-storage --example upload_bench -- [MiB] [part MiB] [concurrency]
//! ```

use stackwright::UpOptions;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stackwright::events::Event;
use stackwright::{Engine, Settings, Stack};
use stackwright_storage::{
    Bucket, BucketArgs, Object, ObjectArgs, ObjectSource, S3Config, ServiceProfile, StorageConfig,
};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the S3 test server with `bash .ci/ceph-rgw.sh start` and `eval \"$(bash .ci/ceph-rgw.sh env)\"`")
    })
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn mib_per_s(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / t.as_secs_f64()
}

/// Writes `size` bytes of pseudo-random data (xorshift), so nothing compresses or dedups.
fn generate(path: &std::path::Path, size: u64) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let size = arg(1, 1024) * 1024 * 1024;
    let part = arg(2, 16) * 1024 * 1024;
    let concurrency = arg(3, 4) as usize;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("payload.bin");

    let t = Instant::now();
    generate(&file, size)?;
    println!("generated {} MiB in {:.2?}", size >> 20, t.elapsed());

    let t = Instant::now();
    let source = ObjectSource::file(&file)?;
    let hash_time = t.elapsed();
    println!("hashed (SHA-256) in {hash_time:.2?}: {:.0} MiB/s", mib_per_s(size, hash_time));

    let s3 = S3Config::new(env("STACKWRIGHT_S3_ENDPOINT"), ServiceProfile::CephGeneric)
        .path_style()
        .region(env("STACKWRIGHT_S3_REGION"))
        .credentials(env("STACKWRIGHT_S3_ACCESS_KEY"), env("STACKWRIGHT_S3_SECRET_KEY"))
        .multipart(part, part)
        .upload_concurrency(concurrency);
    let config = StorageConfig::s3(s3);
    let provider = config.provider()?;
    let bucket = format!("sw-bench-{}", std::process::id());

    let step_times: Arc<Mutex<Vec<(String, Duration)>>> = Arc::default();
    let observer_times = step_times.clone();
    // Keep an interrupt sender alive: with `interrupt: None` the engine's scheduler busy-polls a
    // closed channel while the upload runs, taking a core from the S3 server.
    let (_interrupt, interrupt) = tokio::sync::watch::channel(false);
    let settings = Settings {
        interrupt: Some(interrupt),
        observer: Arc::new(move |e: &Event| {
            if let Event::StepFinished { urn, elapsed, .. } = e {
                observer_times.lock().unwrap().push((urn.to_string(), *elapsed));
            }
        }),
        ..Settings::default()
    };
    let engine = Engine::new(Arc::new(stackwright::testing::sealed_local_backend(dir.path().join("state"))), settings);
    let program: stackwright::Program = {
        let (bucket, source) = (bucket.clone(), source.clone());
        Arc::new(move |s: &mut Stack| {
            s.provider(provider.clone());
            let b =
                s.resource::<Bucket>("bench", BucketArgs { force_destroy: true, ..BucketArgs::new(bucket.clone()) });
            s.resource::<Object>("payload", ObjectArgs::new(&b.name, "payload.bin", source.clone()));
            Ok(())
        })
    };

    let t = Instant::now();
    let report = engine.up("bench", &program, UpOptions::default(), &|_, _| true).await?;
    let total = t.elapsed();
    if !report.succeeded() {
        let _ = engine.destroy("bench", &program, &|_, _| true).await;
        anyhow::bail!("upload failed: {:#?}", report.failures);
    }
    let upload = step_times.lock().unwrap().iter().find(|(u, _)| u == "payload").map(|(_, d)| *d).unwrap_or(total);
    println!(
        "uploaded {} MiB with multipart ({} MiB parts, {concurrency} at once) in {upload:.2?}: {:.0} MiB/s \
         (whole `up` {total:.2?})",
        size >> 20,
        part >> 20,
        mib_per_s(size, upload)
    );
    let head = config.store()?.head_object(&bucket, "payload.bin").await?.expect("uploaded object");
    assert_eq!(head.size, size);
    assert_eq!(head.sha256.as_deref(), Some(source.sha256()));
    println!("verified: size {} and SHA-256 {} stored; ETag {}", head.size, source.sha256(), head.etag);

    let t = Instant::now();
    let report = engine.destroy("bench", &program, &|_, _| true).await?;
    anyhow::ensure!(report.succeeded(), "cleanup failed: {:#?}", report.failures);
    println!("deleted in {:.2?}", t.elapsed());
    println!(
        "note: Ceph RGW reclaims the deleted data with its garbage collector (after 2 h by default); before \
         running again on the 2 GiB CI cluster: radosgw-admin -c /var/tmp/stackwright-ceph/ceph.conf -n \
         client.rgw.a gc process --include-all"
    );
    Ok(())
}
