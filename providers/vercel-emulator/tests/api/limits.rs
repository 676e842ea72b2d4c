//! Rate limiting, eventual consistency and fault injection.

use crate::common::*;
use serde_json::json;
use stackwright_vercel_emulator::{ConsistencyConfig, FaultConfig};
use std::time::{Duration, Instant};

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let h = start_with(|b| b.rate_limit(5, Duration::from_secs(60))).await;
    for i in 0..5 {
        let r = h.get("/v9/projects/none").await;
        assert_eq!(r.code(), 404, "request {i}");
        assert_eq!(r.headers["x-ratelimit-remaining"], (4 - i).to_string().as_str());
    }
    let r = h.get("/v9/projects/none").await;
    assert_eq!(r.code(), 429, "{}", r.raw);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let err = &r.body["error"];
    assert_eq!(err["code"], "rate_limited");
    assert_eq!(err["limit"]["remaining"], 0);
    assert_eq!(err["limit"]["total"], 5);
    let reset_ms = err["limit"]["resetMs"].as_i64().unwrap();
    assert_eq!(err["limit"]["reset"].as_i64().unwrap(), (reset_ms + 999) / 1000);

    // Limits are per token: another token is unaffected.
    h.emu.set_rate_limit(Some(stackwright_vercel_emulator::RateLimitConfig { requests: 5, window_ms: 60_000 }));
    assert_eq!(h.get("/v9/projects/none").await.code(), 404, "fresh window after reconfiguring");
    for _ in 0..4 {
        h.get("/v9/projects/none").await;
    }
    assert_eq!(h.get("/v9/projects/none").await.code(), 429);
    h.emu.advance_clock(Duration::from_secs(60));
    assert_eq!(h.get("/v9/projects/none").await.code(), 404, "window expired");
    assert_eq!(h.emu.stats().rate_limited, 2);
}

#[tokio::test]
async fn burst_of_429s() {
    let h = start_with(|b| b.faults(FaultConfig { burst_429: 3, retry_after_secs: 2, ..FaultConfig::default() })).await;
    for _ in 0..3 {
        let r = h.get("/v9/projects/none").await;
        assert_eq!(r.code(), 429);
        assert_eq!(r.headers["retry-after"], "2");
        assert_eq!(r.error_code(), "rate_limited");
    }
    assert_eq!(h.get("/v9/projects/none").await.code(), 404);
    let stats = h.emu.stats();
    assert_eq!(stats.rate_limited, 3);
    assert_eq!(stats.status_count("GET /v9/projects/{id_or_name}", 429), 3);
}

#[tokio::test]
async fn read_after_create_404s_for_n_reads() {
    let h = start_with(|b| b.consistency(2, Duration::ZERO)).await;
    let id = h.create_project("lag").await["id"].as_str().unwrap().to_owned();
    let path = format!("/v9/projects/{id}");
    assert_eq!(h.get(&path).await.code(), 404);
    assert_eq!(h.get(&path).await.code(), 404);
    assert_eq!(h.get(&path).await.code(), 200);
    // Writes see the object immediately, so a retried create still conflicts.
    assert_eq!(h.post("/v11/projects", json!({ "name": "lag" })).await.code(), 409);

    let env = h
        .post("/v10/projects/lag/env", json!({ "key": "K", "value": "v", "type": "plain", "target": ["preview"] }))
        .await;
    let env_path = format!("/v1/projects/lag/env/{}", env.body["created"]["id"].as_str().unwrap());
    assert_eq!(h.get(&env_path).await.code(), 404);
    assert_eq!(h.get(&env_path).await.code(), 404);
    assert_eq!(h.get(&env_path).await.code(), 200);
}

#[tokio::test]
async fn read_after_create_404s_for_a_duration() {
    let h = start().await;
    h.emu.set_consistency(ConsistencyConfig { hidden_reads: 0, hidden_ms: 3_000 });
    h.create_project("slow").await;
    assert_eq!(h.get("/v9/projects/slow").await.code(), 404);
    assert_eq!(h.get("/v9/projects").await.body["projects"], json!([]));
    h.emu.advance_clock(Duration::from_millis(3_000));
    assert_eq!(h.get("/v9/projects/slow").await.code(), 200);
    assert_eq!(h.get("/v9/projects").await.body["projects"].as_array().unwrap().len(), 1);
}

async fn statuses_with_seed(seed: u64) -> Vec<u16> {
    let h = start_with(|b| {
        b.faults(FaultConfig {
            error_rate: 0.25,
            error_statuses: vec![500, 503],
            seed: Some(seed),
            ..FaultConfig::default()
        })
    })
    .await;
    let mut out = Vec::new();
    for _ in 0..120 {
        out.push(h.get("/v9/projects/none").await.code());
    }
    let stats = h.emu.stats();
    let injected = out.iter().filter(|s| **s >= 500).count() as u64;
    assert_eq!(stats.injected_errors, injected);
    out
}

#[tokio::test]
async fn seeded_error_rate_is_reproducible() {
    let a = statuses_with_seed(11).await;
    let b = statuses_with_seed(11).await;
    assert_eq!(a, b, "same seed, same faults");
    let errors = a.iter().filter(|s| **s >= 500).count();
    assert!((15..=50).contains(&errors), "{errors} of 120 at rate 0.25");
    assert!(a.iter().all(|s| [404, 500, 503].contains(s)), "{a:?}");
    assert!(a.contains(&500) && a.contains(&503));
    let c = statuses_with_seed(12).await;
    assert_ne!(a, c, "a different seed gives a different sequence");
}

#[tokio::test]
async fn fail_after_commit_keeps_the_effect() {
    let h = start_with(|b| {
        b.faults(FaultConfig {
            fail_after_commit_rate: 1.0,
            error_statuses: vec![502],
            methods: vec!["POST".into()],
            path_prefixes: vec!["/v11/projects".into()],
            ..FaultConfig::default()
        })
    })
    .await;
    let r = h.post("/v11/projects", json!({ "name": "ghost" })).await;
    assert_eq!(r.code(), 502);
    assert_eq!(r.error_code(), "bad_gateway");
    // The project exists although the client saw an error; a blind retry would conflict.
    assert_eq!(h.get("/v9/projects/ghost").await.code(), 200);
    assert_eq!(h.post("/v11/projects", json!({ "name": "ghost" })).await.code(), 502);
    let stats = h.emu.stats();
    assert_eq!(stats.injected_after_commit, 2);
    assert_eq!(stats.requests("POST /v11/projects"), 2);
    assert_eq!(h.emu.state()["teams"][TEAM]["projects"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn connection_reset_and_latency() {
    let h = start_with(|b| b.faults(FaultConfig { reset_rate: 1.0, ..FaultConfig::default() })).await;
    let err =
        h.http.get(h.url("/v9/projects/none")).bearer_auth(TOKEN).send().await.expect_err("connection must be dropped");
    assert!(!err.is_status(), "{err}");
    assert_eq!(h.emu.stats().connection_resets, 1);

    h.emu.set_faults(FaultConfig { latency_ms: 150, ..FaultConfig::default() }).unwrap();
    let t = Instant::now();
    assert_eq!(h.get("/v9/projects/none").await.code(), 404);
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());
    h.emu.set_faults(FaultConfig::default()).unwrap();
    assert_eq!(h.get("/v9/projects/none").await.code(), 404);
    // Counted rather than timed, so a loaded machine cannot make this flaky.
    assert_eq!(h.emu.stats().delayed, 1);
}
