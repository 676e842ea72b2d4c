//! Deployments: uploads, missing_files, the build state machine, list, cancel, delete,
//! promote/rollback and aliases.

use crate::common::*;
use serde_json::{Value, json};
use stackwright_vercel_emulator::DeploymentConfig;
use std::time::{Duration, Instant};

fn state(d: &Value) -> &str {
    d["readyState"].as_str().unwrap_or("")
}

#[tokio::test]
async fn upload_checks_the_digest() {
    let h = start().await;
    let post = |digest: Option<&str>| {
        let mut req = h.http.post(h.url("/v2/files")).bearer_auth(TOKEN).body("hello");
        if let Some(d) = digest {
            req = req.header("x-vercel-digest", d);
        }
        req.send()
    };
    let wrong = post(Some(&sha1_hex(b"something else"))).await.unwrap();
    assert_eq!(wrong.status(), 400);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    let missing = post(None).await.unwrap();
    assert_eq!(missing.status(), 400);
    let ok = post(Some(&sha1_hex(b"hello").to_uppercase())).await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn missing_files_then_upload_then_build_to_ready() {
    let h = start().await;
    h.create_project("web").await;
    let content = b"<h1>hi</h1>";
    let sha = sha1_hex(content);
    let body = json!({
        "name": "web", "project": "web", "target": "production",
        "files": [{ "file": "index.html", "sha": sha, "size": content.len() },
                  { "file": "about.html", "sha": sha, "size": content.len() }],
    });
    let r = h.post("/v13/deployments?skipAutoDetectionConfirmation=1", body.clone()).await;
    assert_eq!(r.code(), 400);
    assert_eq!(r.error_code(), "missing_files");
    assert_eq!(r.body["error"]["missing"], json!([sha]), "each missing sha listed once");

    h.upload(content).await;
    let r = h.post("/v13/deployments?skipAutoDetectionConfirmation=1", body).await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("dpl_"));
    assert_eq!(state(&r.body), "QUEUED");
    assert_eq!(r.body["aliasAssigned"], false);
    let url = r.body["url"].as_str().unwrap().to_owned();
    assert!(url.ends_with("-alpha.vercel.app"), "{url}");

    let path = format!("/v13/deployments/{id}");
    h.emu.advance_clock(Duration::from_millis(1_000));
    let d = h.get(&path).await.body;
    assert_eq!(state(&d), "BUILDING");
    assert!(d["buildingAt"].is_i64());
    assert!(d["ready"].is_null());
    h.emu.advance_clock(Duration::from_millis(5_000));
    let d = h.get(&path).await.body;
    assert_eq!(state(&d), "READY");
    assert_eq!(d["aliasAssigned"], true);
    assert!(d["aliasError"].is_null());
    assert!(d["alias"].as_array().unwrap().iter().any(|a| a == "web.vercel.app"));
    // Lookup by URL works as well as by id.
    assert_eq!(h.get(&format!("/v13/deployments/{url}")).await.body["id"], id.as_str());
    let project = h.get("/v9/projects/web").await.body;
    assert_eq!(project["targets"]["production"]["id"], id.as_str());
    let alias = h.get("/v4/aliases/web.vercel.app").await;
    assert_eq!(alias.body["deploymentId"], id.as_str());
}

#[tokio::test]
async fn build_failure_by_marker_file_and_by_config() {
    let h = start().await;
    h.create_project("web").await;
    let sha = h.upload(b"x").await;
    let r = h
        .post(
            "/v13/deployments",
            json!({ "name": "web", "project": "web",
                    "files": [{ "file": "src/VERCEL_EMULATOR_FAIL_BUILD", "sha": sha, "size": 1 }] }),
        )
        .await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(r.body.get("errorCode").is_none(), "no error before the build ends");
    h.emu.advance_clock(Duration::from_secs(10));
    let d = h.get(&format!("/v13/deployments/{id}")).await.body;
    assert_eq!(state(&d), "ERROR");
    assert_eq!(d["errorCode"], "BUILD_FAILED");
    assert!(d["errorMessage"].as_str().unwrap().contains("exited with 1"));
    assert_eq!(d["aliasAssigned"], false);

    h.emu.set_deployment_config(DeploymentConfig { error_rate: 1.0, ..manual_builds() });
    let d = h.deploy("web", None, b"other").await;
    h.emu.advance_clock(Duration::from_secs(10));
    let d = h.get(&format!("/v13/deployments/{}", d["id"].as_str().unwrap())).await.body;
    assert_eq!(state(&d), "ERROR");
}

#[tokio::test]
async fn polls_to_ready_in_real_time() {
    let h = start_with(|b| {
        b.deployments(DeploymentConfig { queued_ms: 20, building_ms: 60, ..DeploymentConfig::default() })
    })
    .await;
    h.create_project("rt").await;
    let d = h.deploy("rt", Some("production"), b"rt").await;
    let path = format!("/v13/deployments/{}", d["id"].as_str().unwrap());
    let mut seen = vec![state(&d).to_owned()];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d = h.get(&path).await.body;
        let s = state(&d).to_owned();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if s == "READY" && d["aliasAssigned"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "not READY in time: {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.first().map(String::as_str), Some("QUEUED"));
    assert!(seen.iter().all(|s| ["QUEUED", "BUILDING", "READY"].contains(&s.as_str())), "{seen:?}");
}

#[tokio::test]
async fn list_filters_and_pages() {
    let h = start().await;
    h.create_project("a").await;
    h.create_project("b").await;
    for i in 0..5 {
        h.deploy("a", None, format!("a{i}").as_bytes()).await;
    }
    h.deploy("b", Some("production"), b"b").await;
    let mut ids = Vec::new();
    let mut path = "/v6/deployments?projectId=a&limit=2".to_owned();
    loop {
        let page = h.get(&path).await.body;
        for d in page["deployments"].as_array().unwrap() {
            assert_eq!(d["state"], "QUEUED");
            ids.push(d["uid"].as_str().unwrap().to_owned());
        }
        match page["pagination"]["next"].as_i64() {
            Some(n) => path = format!("/v6/deployments?projectId=a&limit=2&until={n}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 5);
    let prod = h.get("/v6/deployments?target=production").await.body;
    assert_eq!(prod["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(h.get("/v6/deployments").await.body["pagination"]["count"], 6);
}

#[tokio::test]
async fn dedupes_identical_deployments_unless_force_new() {
    let h = start().await;
    h.create_project("web").await;
    let first = h.deploy("web", None, b"same").await;
    let again = h.deploy("web", None, b"same").await;
    assert_eq!(first["id"], again["id"]);
    let sha = sha1_hex(b"same");
    let forced = h
        .post(
            "/v13/deployments?forceNew=1",
            json!({ "name": "web", "project": "web", "files": [{ "file": "index.html", "sha": sha, "size": 4 }] }),
        )
        .await;
    assert_ne!(forced.body["id"], first["id"]);
}

#[tokio::test]
async fn cancel_and_delete() {
    let h = start().await;
    h.create_project("web").await;
    let d = h.deploy("web", None, b"c").await;
    let id = d["id"].as_str().unwrap();
    let c = h.patch(&format!("/v12/deployments/{id}/cancel"), json!({})).await;
    assert_eq!(c.code(), 200, "{}", c.raw);
    assert_eq!(state(&c.body), "CANCELED");
    h.emu.advance_clock(Duration::from_secs(10));
    assert_eq!(state(&h.get(&format!("/v13/deployments/{id}")).await.body), "CANCELED");
    assert_eq!(h.patch(&format!("/v12/deployments/{id}/cancel"), json!({})).await.code(), 400);
    let del = h.delete(&format!("/v13/deployments/{id}")).await;
    assert_eq!(del.body, json!({ "uid": id, "state": "DELETED" }));
    let gone = h.get(&format!("/v13/deployments/{id}")).await;
    assert_eq!(gone.code(), 404);
    assert_eq!(gone.error_code(), "not_found");
}

#[tokio::test]
async fn promote_and_rollback() {
    let h = start().await;
    h.create_project("web").await;
    h.post("/v10/projects/web/domains", json!({ "name": "www.web.test" })).await;
    let first = h.deploy("web", Some("production"), b"v1").await;
    h.emu.advance_clock(Duration::from_secs(10));
    let second = h.deploy("web", Some("production"), b"v2").await;
    let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let not_ready = h.post(&format!("/v10/projects/web/promote/{second}"), json!({})).await;
    assert_eq!(not_ready.code(), 400);
    h.emu.advance_clock(Duration::from_secs(10));
    let alias_target = || async { h.get("/v4/aliases/www.web.test").await.body["deploymentId"].clone() };
    assert_eq!(alias_target().await, second);

    let rb = h.post(&format!("/v1/projects/web/rollback/{first}"), json!({})).await;
    assert_eq!(rb.code(), 201, "{}", rb.raw);
    assert_eq!(alias_target().await, first);
    let p = h.get("/v9/projects/web").await.body;
    assert_eq!(p["targets"]["production"]["id"], first);
    assert_eq!(p["lastAliasRequest"]["type"], "rollback");
    assert_eq!(p["lastAliasRequest"]["jobStatus"], "succeeded");

    // After a rollback new production builds do not take over until a promote.
    let third = h.deploy("web", Some("production"), b"v3").await;
    h.emu.advance_clock(Duration::from_secs(10));
    assert_eq!(alias_target().await, first);

    h.emu.set_deployment_config(DeploymentConfig { promote_delay_ms: 2_000, ..manual_builds() });
    let third = third["id"].as_str().unwrap();
    let pr = h.post(&format!("/v10/projects/web/promote/{third}"), json!({})).await;
    assert_eq!(pr.code(), 202, "{}", pr.raw);
    let busy = h.post(&format!("/v10/projects/web/promote/{second}"), json!({})).await;
    assert_eq!(busy.code(), 409);
    assert_eq!(busy.error_code(), "conflict");
    assert_eq!(h.get("/v9/projects/web").await.body["lastAliasRequest"]["jobStatus"], "pending");
    h.emu.advance_clock(Duration::from_secs(2));
    assert_eq!(alias_target().await, third);
    assert_eq!(h.get("/v9/projects/web").await.body["lastAliasRequest"]["jobStatus"], "succeeded");
    assert_eq!(h.post("/v10/projects/web/promote/dpl_missing", json!({})).await.code(), 404);
}

#[tokio::test]
async fn aliases_upsert_get_delete() {
    let h = start().await;
    h.create_project("web").await;
    let a = h.deploy("web", None, b"1").await;
    let b = h.deploy("web", None, b"2").await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let r = h.post(&format!("/v2/deployments/{a}/aliases"), json!({ "alias": "my-alias.vercel.app" })).await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    let uid = r.body["uid"].as_str().unwrap().to_owned();
    assert!(r.body["oldDeploymentId"].is_null());
    let r = h.post(&format!("/v2/deployments/{b}/aliases"), json!({ "alias": "my-alias.vercel.app" })).await;
    assert_eq!(r.body["uid"], uid.as_str(), "alias POST is an upsert");
    assert_eq!(r.body["oldDeploymentId"], a);
    let got = h.get("/v4/aliases/my-alias.vercel.app").await;
    assert_eq!(got.body["deploymentId"], b);
    assert_eq!(h.get(&format!("/v4/aliases/{uid}")).await.body["alias"], "my-alias.vercel.app");
    let listed = h.get(&format!("/v2/deployments/{b}/aliases")).await.body;
    assert_eq!(listed["aliases"].as_array().unwrap().len(), 1);

    let beta = h.in_team(OTHER_TEAM);
    beta.create_project("theirs").await;
    let theirs = beta.deploy("theirs", None, b"t").await;
    let taken = beta
        .post(
            &format!("/v2/deployments/{}/aliases", theirs["id"].as_str().unwrap()),
            json!({ "alias": "my-alias.vercel.app" }),
        )
        .await;
    assert_eq!(taken.code(), 409);

    assert_eq!(h.delete(&format!("/v2/aliases/{uid}")).await.body, json!({ "status": "SUCCESS" }));
    assert_eq!(h.get("/v4/aliases/my-alias.vercel.app").await.code(), 404);
}

#[tokio::test]
async fn git_source_preview_gets_branch_alias() {
    let h = start().await;
    h.create_project("web").await;
    let r = h
        .post(
            "/v13/deployments",
            json!({ "name": "web", "project": "web",
                    "gitSource": { "type": "github", "org": "acme", "repo": "web", "ref": "feature/x" } }),
        )
        .await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    assert!(r.body["target"].is_null(), "preview deployments have target null");
    h.emu.advance_clock(Duration::from_secs(10));
    let d = h.get(&format!("/v13/deployments/{}", r.body["id"].as_str().unwrap())).await.body;
    assert_eq!(d["alias"], json!(["web-git-feature-x-alpha.vercel.app"]));
    let bad = h
        .post("/v13/deployments", json!({ "name": "web", "gitSource": { "type": "github", "repo": "acme/web" } }))
        .await;
    assert_eq!(bad.code(), 400);
    let neither = h.post("/v13/deployments", json!({ "name": "web" })).await;
    assert_eq!(neither.code(), 400);
}

#[tokio::test(start_paused = true)]
async fn builds_follow_paused_tokio_time() {
    let h = start().await;
    // No client-side pool timers, so paused time only moves when the test sleeps.
    let api = Api { http: reqwest::Client::builder().pool_idle_timeout(None).build().unwrap(), ..h.api.clone() };
    api.create_project("paused").await;
    let d = api.deploy("paused", Some("production"), b"p").await;
    assert_eq!(state(&d), "QUEUED");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let d = api.get(&format!("/v13/deployments/{}", d["id"].as_str().unwrap())).await.body;
    assert_eq!(state(&d), "READY");
    assert_eq!(d["aliasAssigned"], true);
}

#[tokio::test]
async fn deploying_by_name_creates_the_project_only_once_files_are_present() {
    let h = start().await;
    let sha = sha1_hex(b"fresh");
    let body = json!({ "name": "implicit", "files": [{ "file": "a.txt", "sha": sha, "size": 5 }] });
    assert_eq!(h.post("/v13/deployments", body.clone()).await.error_code(), "missing_files");
    assert_eq!(h.get("/v9/projects/implicit").await.code(), 404, "a failed call has no effect");
    h.upload(b"fresh").await;
    let d = h.post("/v13/deployments", body).await;
    assert_eq!(d.code(), 200, "{}", d.raw);
    let p = h.get("/v9/projects/implicit").await;
    assert_eq!(p.code(), 200);
    assert_eq!(d.body["projectId"], p.body["id"]);
}
