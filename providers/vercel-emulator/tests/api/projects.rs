//! Projects: CRUD, PATCH semantics, name rules, conflicts, auth and team scoping, Git link.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn create_get_update_delete_roundtrip() {
    let h = start().await;
    let r = h
        .post(
            "/v11/projects",
            json!({
                "name": "web",
                "framework": "nextjs",
                "buildCommand": "npm run build",
                "installCommand": "npm ci",
                "outputDirectory": "out",
                "rootDirectory": "apps/web",
                "publicSource": false,
            }),
        )
        .await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("prj_") && id.len() == 32, "id {id}");
    assert_eq!(r.body["accountId"], TEAM);

    for path in [format!("/v9/projects/{id}"), "/v9/projects/web".into(), format!("/v10/projects/{id}")] {
        let got = h.get(&path).await;
        assert_eq!(got.code(), 200, "{path}: {}", got.raw);
        assert_eq!(got.body["id"], id.as_str());
        assert_eq!(got.body["buildCommand"], "npm run build");
        assert_eq!(got.body["rootDirectory"], "apps/web");
        assert_eq!(got.body["publicSource"], false);
    }

    // Sent: updated. "": explicit empty. null: reset. Omitted: untouched.
    let p = h
        .patch(
            &format!("/v9/projects/{id}"),
            json!({ "buildCommand": "make", "installCommand": "", "outputDirectory": null, "framework": "astro" }),
        )
        .await;
    assert_eq!(p.code(), 200, "{}", p.raw);
    let got = h.get(&format!("/v9/projects/{id}")).await.body;
    assert_eq!(got["buildCommand"], "make");
    assert_eq!(got["installCommand"], "");
    assert!(got["outputDirectory"].is_null());
    assert_eq!(got["framework"], "astro");
    assert_eq!(got["rootDirectory"], "apps/web", "omitted field must not change");
    assert!(got["updatedAt"].as_i64() >= got["createdAt"].as_i64());

    let del = h.delete(&format!("/v9/projects/{id}")).await;
    assert_eq!(del.code(), 204);
    let gone = h.get(&format!("/v9/projects/{id}")).await;
    assert_eq!(gone.code(), 404);
    assert_eq!(gone.body, json!({ "error": { "code": "not_found", "message": "Project not found" } }));
    assert_eq!(h.delete(&format!("/v9/projects/{id}")).await.code(), 404);
}

#[tokio::test]
async fn create_accepts_v8_and_v10_paths() {
    let h = start().await;
    for (i, version) in ["v8", "v10", "v11"].iter().enumerate() {
        let r = h.post(&format!("/{version}/projects"), json!({ "name": format!("p{i}") })).await;
        assert_eq!(r.code(), 200, "{version}: {}", r.raw);
    }
    let list = h.get("/v9/projects?limit=2").await;
    assert_eq!(list.body["projects"].as_array().unwrap().len(), 2);
    let next = list.body["pagination"]["next"].as_i64().expect("more pages");
    let rest = h.get(&format!("/v10/projects?limit=2&until={next}")).await;
    assert_eq!(rest.body["projects"].as_array().unwrap().len(), 1);
    assert!(rest.body["pagination"]["next"].is_null());
}

#[tokio::test]
async fn duplicate_name_is_409_with_documented_body() {
    let h = start().await;
    h.create_project("dup").await;
    let r = h.post("/v11/projects", json!({ "name": "dup" })).await;
    assert_eq!(r.code(), 409);
    assert_eq!(r.body, json!({ "error": { "code": "conflict", "message": "Project \"dup\" already exists." } }));
    // Renaming onto a taken name conflicts too.
    h.create_project("other").await;
    let r = h.patch("/v9/projects/other", json!({ "name": "dup" })).await;
    assert_eq!(r.code(), 409);
    let stats = h.emu.stats();
    assert_eq!(stats.successes("POST /v11/projects"), 2);
    assert_eq!(stats.status_count("POST /v11/projects", 409), 1);
}

#[tokio::test]
async fn invalid_bodies_are_400_bad_request() {
    let h = start().await;
    for body in [
        json!({ "name": "Upper" }),
        json!({ "name": "a---b" }),
        json!({ "name": "x".repeat(101) }),
        json!({ "name": "" }),
        json!({}),
        json!({ "name": "ok", "buildComand": "typo" }),
        json!({ "name": "ok", "buildCommand": 5 }),
        json!({ "name": "ok", "gitRepository": { "type": "svn", "repo": "a/b" } }),
        json!({ "name": "ok", "gitRepository": { "type": "github", "repo": "nope" } }),
    ] {
        let r = h.post("/v11/projects", body.clone()).await;
        assert_eq!(r.code(), 400, "{body}: {}", r.raw);
        assert_eq!(r.error_code(), "bad_request", "{body}");
        assert!(r.body["error"]["message"].is_string());
    }
    let r = h.send_url(Method::POST, &h.url("/v11/projects"), None, Some(TOKEN)).await;
    assert_eq!(r.code(), 400);
    // Nothing was created by any of the rejected calls.
    assert_eq!(h.get("/v9/projects/ok").await.code(), 404);
}

#[tokio::test]
async fn auth_and_team_scoping() {
    let h = start_with(|b| {
        b.token_config(stackwright_vercel_emulator::TokenConfig {
            token: "tok_beta_only".into(),
            teams: vec![OTHER_TEAM.into()],
            user_id: None,
        })
    })
    .await;
    h.create_project("scoped").await;

    let missing = h.send_url(Method::GET, &h.url("/v9/projects/scoped"), None, None).await;
    assert_eq!(missing.code(), 403);
    assert_eq!(missing.error_code(), "forbidden");
    let bad = h.with_token("wrong").get("/v9/projects/scoped").await;
    assert_eq!(bad.code(), 403);
    assert_eq!(bad.error_code(), "forbidden");

    let unknown_team = h.in_team("team_nope").get("/v9/projects/scoped").await;
    assert_eq!(unknown_team.code(), 403);
    assert_eq!(unknown_team.error_code(), "forbidden");
    let not_member = h.with_token("tok_beta_only").get("/v9/projects/scoped").await;
    assert_eq!(not_member.code(), 403);

    // By slug, same team.
    let by_slug =
        h.send_url(Method::GET, &format!("{}/v9/projects/scoped?slug=alpha", h.base), None, Some(TOKEN)).await;
    assert_eq!(by_slug.code(), 200, "{}", by_slug.raw);

    // Partitioned: invisible from the other team, and the name is free there.
    let beta = h.in_team(OTHER_TEAM);
    assert_eq!(beta.get("/v9/projects/scoped").await.code(), 404);
    assert_eq!(beta.post("/v11/projects", json!({ "name": "scoped" })).await.code(), 200);
    assert_eq!(h.with_token("tok_beta_only").in_team(OTHER_TEAM).get("/v9/projects/scoped").await.code(), 200);
    // Without a team, calls act in the token owner's personal scope.
    let personal = h.send_url(Method::GET, &format!("{}/v9/projects/scoped", h.base), None, Some(TOKEN)).await;
    assert_eq!(personal.code(), 404);
}

#[tokio::test]
async fn git_link_unlink_and_branch() {
    let h = start().await;
    let r = h
        .post("/v11/projects", json!({ "name": "linked", "gitRepository": { "type": "github", "repo": "acme/site" } }))
        .await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    let link = &r.body["link"];
    assert_eq!(link["type"], "github");
    assert_eq!(link["org"], "acme");
    assert_eq!(link["repo"], "site");
    assert_eq!(link["productionBranch"], "main");

    let b = h.patch("/v9/projects/linked/branch", json!({ "branch": "release" })).await;
    assert_eq!(b.code(), 200, "{}", b.raw);
    assert_eq!(h.get("/v9/projects/linked").await.body["link"]["productionBranch"], "release");

    let u = h.delete("/v9/projects/linked/link").await;
    assert_eq!(u.code(), 200);
    assert!(h.get("/v9/projects/linked").await.body.get("link").is_none());
    let b = h.patch("/v9/projects/linked/branch", json!({ "branch": "main" })).await;
    assert_eq!(b.code(), 400);

    let l = h.post("/v9/projects/linked/link", json!({ "type": "gitlab", "repo": "group/sub/app" })).await;
    assert_eq!(l.code(), 200, "{}", l.raw);
    let link = &h.get("/v9/projects/linked").await.body["link"];
    assert_eq!(link["type"], "gitlab");
    assert_eq!(link["projectNamespace"], "group/sub");
    assert_eq!(link["projectName"], "app");
    assert!(link["projectId"].is_string());

    let l = h.post("/v9/projects/linked/link", json!({ "type": "bitbucket", "repo": "team/repo" })).await;
    let link = &l.body["link"];
    assert_eq!((link["owner"].as_str(), link["slug"].as_str()), (Some("team"), Some("repo")));
}

#[tokio::test]
async fn delete_cascades_env_vars_and_domains() {
    let h = start().await;
    let r = h
        .post(
            "/v11/projects",
            json!({
                "name": "cascade",
                "environmentVariables": [
                    { "key": "A", "value": "1", "target": ["production"], "type": "plain" },
                    { "key": "B", "value": "2", "target": "preview" },
                ],
            }),
        )
        .await;
    assert_eq!(r.code(), 200, "{}", r.raw);
    assert_eq!(h.get("/v10/projects/cascade/env").await.body["envs"].as_array().unwrap().len(), 2);
    assert_eq!(h.post("/v10/projects/cascade/domains", json!({ "name": "cascade.example.com" })).await.code(), 200);
    assert_eq!(h.delete("/v9/projects/cascade").await.code(), 204);

    h.create_project("cascade").await;
    let envs = h.get("/v10/projects/cascade/env").await;
    assert_eq!(envs.body["envs"], json!([]), "env vars of the deleted project must be gone");
    let state = h.emu.state();
    assert_eq!(state["teams"][TEAM]["envs"], json!([]));
    // The domain was released with the project.
    assert_eq!(h.post("/v10/projects/cascade/domains", json!({ "name": "cascade.example.com" })).await.code(), 200);
}

#[tokio::test]
async fn inline_env_conflict_rejects_whole_create() {
    let h = start().await;
    let r = h
        .post(
            "/v11/projects",
            json!({
                "name": "clash",
                "environmentVariables": [
                    { "key": "A", "value": "1", "target": ["production", "preview"] },
                    { "key": "A", "value": "2", "target": ["preview"] },
                ],
            }),
        )
        .await;
    assert_eq!(r.code(), 400);
    assert_eq!(r.error_code(), "ENV_CONFLICT");
    assert_eq!(h.get("/v9/projects/clash").await.code(), 404);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let h = start().await;
    let r = h.get("/v9/nothing-here").await;
    assert_eq!(r.code(), 404);
    assert_eq!(r.error_code(), "not_found");
    let r = h.send(Method::PUT, "/v9/projects/x", Some(json!({}))).await;
    assert_eq!(r.code(), 405);
    assert_eq!(r.error_code(), "method_unknown");
    let user = h.get("/v2/user").await;
    assert_eq!(user.code(), 200);
    assert!(user.body["user"]["id"].as_str().unwrap().starts_with("user_"));
    let team = h.get(&format!("/v2/teams/{TEAM}")).await;
    assert_eq!(team.body["slug"], "alpha");
}
