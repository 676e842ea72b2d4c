//! Admin API: drift edits, runtime faults, counters, reset, admin token and config files.

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use stackwright_vercel_emulator::{Emulator, EmulatorConfig};

#[tokio::test]
async fn drift_edits_are_visible_to_normal_reads() {
    let h = start().await;
    let id = h.create_project("drift").await["id"].as_str().unwrap().to_owned();
    h.post("/v9/projects/drift/link", json!({ "type": "github", "repo": "acme/drift" })).await;
    let r = h
        .admin(
            Method::PATCH,
            &format!("/teams/alpha/projects/{id}"),
            Some(json!({ "buildCommand": "changed-behind-your-back", "link": null })),
        )
        .await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    let got = h.get("/v9/projects/drift").await.body;
    assert_eq!(got["buildCommand"], "changed-behind-your-back");
    assert!(got.get("link").is_none());

    let env = h
        .post(
            "/v10/projects/drift/env",
            json!({ "key": "K", "value": "mine", "type": "encrypted", "target": ["production"] }),
        )
        .await;
    let env_id = env.body["created"]["id"].as_str().unwrap().to_owned();
    let r = h
        .admin(
            Method::PATCH,
            &format!("/teams/{TEAM}/projects/drift/env/{env_id}"),
            Some(json!({ "value": "theirs", "target": ["production", "preview"] })),
        )
        .await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    let got = h.get(&format!("/v1/projects/drift/env/{env_id}")).await.body;
    assert_eq!(got["value"], "theirs");
    assert_eq!(got["target"], json!(["production", "preview"]));
    let r = h.admin(Method::DELETE, &format!("/teams/{TEAM}/projects/drift/env/{env_id}"), None).await;
    assert_eq!(r.code(), 200);
    assert_eq!(h.get(&format!("/v1/projects/drift/env/{env_id}")).await.code(), 404);

    let r = h.admin(Method::DELETE, &format!("/teams/{TEAM}/projects/drift"), None).await;
    assert_eq!(r.code(), 200);
    assert_eq!(h.get("/v9/projects/drift").await.code(), 404);
    // Admin calls are not API traffic.
    assert_eq!(h.emu.stats().requests("DELETE /v9/projects/{id_or_name}"), 0);
}

#[tokio::test]
async fn runtime_faults_stats_and_reset_over_http() {
    let h = start().await;
    h.create_project("one").await;
    let r = h.admin(Method::PUT, "/faults", Some(json!({ "error_rate": 1.0, "error_statuses": [503] }))).await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    assert_eq!(h.get("/v9/projects/one").await.code(), 503);
    let bad = h.admin(Method::PUT, "/faults", Some(json!({ "error_rate": 2.0 }))).await;
    assert_eq!(bad.code(), 400);
    h.admin(Method::PUT, "/faults", Some(json!({}))).await;
    assert_eq!(h.get("/v9/projects/one").await.code(), 200);

    let stats = h.admin(Method::GET, "/stats", None).await.body;
    assert_eq!(stats["routes"]["POST /v11/projects"]["requests"], 1);
    assert_eq!(stats["routes"]["GET /v9/projects/{id_or_name}"]["statuses"]["503"], 1);
    assert_eq!(stats["injected_errors"], 1);

    let dump = h.admin(Method::GET, "/state", None).await.body;
    assert_eq!(dump["teams"][TEAM]["projects"][0]["name"], "one");

    assert_eq!(h.admin(Method::POST, "/reset", None).await.code(), 200);
    assert_eq!(h.get("/v9/projects/one").await.code(), 404);
    assert_eq!(h.emu.stats().requests_total, 1);
    assert_eq!(h.admin(Method::GET, "/health", None).await.body["ok"], true);
}

#[tokio::test]
async fn admin_state_shows_sensitive_values_the_api_hides() {
    let h = start().await;
    h.create_project("s").await;
    h.post(
        "/v10/projects/s/env",
        json!({ "key": "S", "value": "hidden-from-api", "type": "sensitive", "target": ["production"] }),
    )
    .await;
    assert!(!h.get("/v10/projects/s/env?decrypt=true").await.raw.contains("hidden-from-api"));
    assert_eq!(h.emu.state()["teams"][TEAM]["envs"][0]["value"], "hidden-from-api");
}

#[tokio::test]
async fn admin_token_is_enforced_when_configured() {
    let h = start_with(|b| b.admin_token("adm")).await;
    assert_eq!(h.admin(Method::GET, "/stats", None).await.code(), 403);
    let url = format!("{}/_emulator/stats", h.base);
    assert_eq!(h.send_url(Method::GET, &url, None, Some("adm")).await.code(), 200);
    assert_eq!(h.send_url(Method::GET, &url, None, Some(TOKEN)).await.code(), 403);
}

#[test]
fn example_config_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/emulator.example.toml");
    let cfg = EmulatorConfig::from_file(path).unwrap().normalized().unwrap();
    assert_eq!(cfg.tokens.len(), 2);
    assert_eq!(cfg.rate_limit.map(|r| r.requests), Some(100));
}

#[tokio::test]
async fn config_files_and_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("emu.toml");
    std::fs::write(
        &toml_path,
        r#"
seed = 5
[[teams]]
id = "team_file"
slug = "file"
[[tokens]]
token = "file-token"
[rate_limit]
requests = 100
window_ms = 1000
[faults]
latency_ms = 1
[deployments]
building_ms = 10
"#,
    )
    .unwrap();
    let cfg = EmulatorConfig::from_file(&toml_path).unwrap();
    assert_eq!(cfg.teams[0].id, "team_file");
    assert_eq!(cfg.deployments.building_ms, 10);
    assert_eq!(cfg.deployments.queued_ms, 500, "unset fields keep defaults");

    let json_path = dir.path().join("emu.json");
    std::fs::write(&json_path, r#"{"tokens":[{"token":"j","teams":["team_emulator"]}]}"#).unwrap();
    assert_eq!(EmulatorConfig::from_file(&json_path).unwrap().tokens[0].token, "j");
    std::fs::write(&json_path, r#"{"tokenz":[]}"#).unwrap();
    assert!(EmulatorConfig::from_file(&json_path).is_err(), "unknown keys are rejected");

    let emu = Emulator::builder().config(cfg).start().await.unwrap();
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/v9/projects/x?teamId=team_file", emu.base_url()))
        .bearer_auth("file-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let base = emu.base_url().to_owned();
    emu.shutdown().await;
    let after = reqwest::Client::new().get(format!("{base}/_emulator/health")).send().await;
    assert!(after.is_err(), "server must be gone after shutdown");
}
