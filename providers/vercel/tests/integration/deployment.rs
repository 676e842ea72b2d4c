//! `vercel:Deployment` and `vercel:Promotion`: uploads of missing files only, waiting for the
//! build, build failures reported against the resource, replacement on new content, promotion,
//! rollback and drift of the production pointer.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::json;
use sha1::{Digest, Sha1};
use stackwright::StepOp;
use stackwright::options::ResourceOptions;
use stackwright_vercel::{
    Deployment, DeploymentArgs, DeploymentTarget, EnvironmentVariable, EnvironmentVariableArgs, Project, ProjectArgs,
    Promotion, PromotionArgs, PromotionMode,
};

use crate::common::*;

const UPLOADS: &str = "POST /v2/files";

fn deploy_program(h: &Harness, dir: PathBuf) -> stackwright::Program {
    h.program(move |s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("static-site"));
        let args = DeploymentArgs::from_dir(&web, &dir, DeploymentTarget::Production).expect("site reads");
        let site = s.resource::<Deployment>("site", args.meta("commit", "abc123"));
        // The deployment's URL, wired into a variable of the same project.
        s.resource::<EnvironmentVariable>(
            "site-url",
            EnvironmentVariableArgs::new(web.id(), "DEPLOYED_URL", site.url.clone()).plain(),
        );
        s.export("url", site.url.clone());
    })
}

#[tokio::test]
async fn a_deployment_uploads_only_missing_files_waits_until_ready_and_is_replaced_on_new_content() {
    let h = harness().await;
    let root = h.dir.path();
    let files = [("index.html", "<h1>hi</h1>"), ("assets/app.js", "console.log(1)"), ("assets/app.css", "body{}")];
    let dir = site(root, "v1", &files);
    // Vercel already has one of the files (from an earlier deployment, say).
    let known = b"console.log(1)".to_vec();
    let sha = hex_sha1(&known);
    let resp = h
        .http
        .post(format!("{}/v2/files?teamId={TEAM}", h.emu.base_url()))
        .bearer_auth(&h.token)
        .header("x-vercel-digest", &sha)
        .body(known)
        .send()
        .await
        .expect("upload");
    assert!(resp.status().is_success());
    h.emu.reset_stats();

    let v1 = deploy_program(&h, dir.clone());
    h.up(&v1).await;
    assert_eq!(h.stats().successes(UPLOADS), 2, "only the two missing files are uploaded");
    let out = h.outputs("site").await;
    let id = out["id"].as_str().expect("deployment id").to_owned();
    assert_eq!(out["ready_state"], "READY");
    let url = out["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with("https://static-site-") && url.ends_with(".vercel.app"), "{url}");
    assert_eq!(h.object("envs", "key", "DEPLOYED_URL")["value"], url.as_str());
    let d = h.object("deployments", "id", &id);
    assert_eq!((d["target"].as_str(), d["meta"]["commit"].as_str()), (Some("production"), Some("abc123")));
    let project = h.object("projects", "name", "static-site");
    assert_eq!(text(&project, "/targets/production/id"), id, "a production deployment serves production");
    assert_no_changes(&h.preview(&v1, true).await.plan);

    // The same files in another directory: nothing to do.
    let moved = site(root, "elsewhere", &files);
    let plan = h.preview(&deploy_program(&h, moved), false).await.plan;
    assert_eq!(step(&plan, "site"), StepOp::Update, "only the recorded directory changes");
    assert_eq!(changed_paths(&plan, "site"), ["directory"]);

    // New content: the deployment is replaced, and only the changed file is uploaded.
    std::fs::write(dir.join("index.html"), "<h1>hello</h1>").expect("edit");
    let v2 = deploy_program(&h, dir);
    let plan = h.preview(&v2, false).await.plan;
    assert_eq!(step(&plan, "site"), StepOp::Replace { delete_before_create: false });
    assert_eq!(changed_paths(&plan, "site"), ["files[\"index.html\"].sha", "files[\"index.html\"].size"]);
    h.emu.reset_stats();
    h.up(&v2).await;
    assert_eq!(h.stats().successes(UPLOADS), 1);
    let new_id = h.id("site").await;
    assert_ne!(new_id, id);
    let ids: Vec<String> = h.objects("deployments").iter().map(|d| text(d, "/id")).collect();
    assert_eq!(ids, std::slice::from_ref(&new_id), "the old deployment was deleted");
    assert_ne!(h.object("envs", "key", "DEPLOYED_URL")["value"], url.as_str(), "the variable follows the new URL");

    // Deleted behind our back: refresh notices, up deploys again.
    h.admin(Method::DELETE, &format!("/teams/{TEAM}/deployments/{new_id}"), json!({})).await;
    let preview = h.preview(&v2, true).await;
    assert!(preview.drift.iter().any(|d| d.urn.as_str() == "site" && d.gone));
    h.up_refresh(&v2).await;
    assert_eq!(h.objects("deployments").len(), 1);

    h.destroy(&v2).await;
    assert!(h.objects("deployments").is_empty() && h.objects("projects").is_empty());
}

fn hex_sha1(bytes: &[u8]) -> String {
    Sha1::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_failed_build_is_reported_against_the_deployment() {
    let h = harness().await;
    let dir = site(h.dir.path(), "broken", &[("index.html", "x"), ("VERCEL_EMULATOR_FAIL_BUILD", "")]);
    let program = h.program(move |s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("broken-site"));
        let site = s.resource::<Deployment>(
            "site",
            DeploymentArgs::from_dir(&web, &dir, DeploymentTarget::Production).expect("site reads"),
        );
        s.resource::<Promotion>("live", PromotionArgs::promote(web.id(), site.id()));
        s.resource::<EnvironmentVariable>("unrelated", EnvironmentVariableArgs::new(web.id(), "A", "b"));
    });
    let report = h.try_up(&program, false).await;
    let site = report.failures.iter().find(|f| f.urn.as_str() == "site").expect("site failed");
    assert_eq!(site.type_token, "vercel:Deployment");
    assert!(
        site.message.contains("build of deployment dpl_") && site.message.contains("BUILD_FAILED"),
        "{}",
        site.message
    );
    assert!(site.message.contains("npm run build"), "the build's own error: {}", site.message);
    let live = report.failures.iter().find(|f| f.urn.as_str() == "live").expect("live skipped");
    assert!(live.message.contains("skipped because `site` failed"), "{}", live.message);
    assert_eq!(report.failures.len(), 2, "{:#?}", report.failures);
    assert_eq!(h.objects("envs").len(), 1, "neighbours still apply");
    assert_eq!(h.stats().successes("POST /v13/deployments"), 1, "a failed build is not retried");
}

#[tokio::test]
async fn promotion_and_rollback_are_declared_and_drift_is_repaired() {
    let h = harness().await;
    let one = site(h.dir.path(), "one", &[("index.html", "one")]);
    let two = site(h.dir.path(), "two", &[("index.html", "two")]);
    let declare = move |to: &'static str, mode: PromotionMode| {
        let (one, two) = (one.clone(), two.clone());
        move |s: &mut stackwright::Stack| {
            let web = s.resource::<Project>("web", ProjectArgs::new("promo"));
            let d1 = s.resource::<Deployment>(
                "one",
                DeploymentArgs::from_dir(&web, &one, DeploymentTarget::Production).expect("reads"),
            );
            let d2 = s.resource_with::<Deployment>(
                "two",
                DeploymentArgs::from_dir(&web, &two, DeploymentTarget::Production).expect("reads"),
                ResourceOptions::new().depends_on(&d1),
            );
            let target = if to == "one" { d1.id() } else { d2.id() };
            s.resource_with::<Promotion>(
                "live",
                PromotionArgs { mode, ..PromotionArgs::promote(web.id(), target) },
                ResourceOptions::new().depends_on(&d2),
            );
        }
    };
    let production = |h: &Harness| text(&h.object("projects", "name", "promo"), "/targets/production/id");

    let v1 = h.program(declare("two", PromotionMode::Promote));
    h.up(&v1).await;
    let (d1, d2) = (h.id("one").await, h.id("two").await);
    assert_eq!(production(&h), d2);
    assert_eq!(h.id("live").await, h.id("web").await, "one promotion per project");
    assert_eq!(h.outputs("live").await["deployment_id"], d2.as_str());
    assert_no_changes(&h.preview(&v1, true).await.plan);

    // Roll back to the first deployment.
    let back = h.program(declare("one", PromotionMode::Rollback));
    assert_eq!(step(&h.preview(&back, false).await.plan, "live"), StepOp::Update);
    h.up(&back).await;
    assert_eq!(production(&h), d1);
    let project = h.object("projects", "name", "promo");
    assert_eq!(text(&project, "/lastAliasRequest/type"), "rollback");
    assert_eq!(h.outputs("live").await["previous_deployment_id"], d2.as_str());
    assert_no_changes(&h.preview(&back, true).await.plan);

    // Someone promotes the other deployment in the dashboard: drift, repaired by `up`.
    let web = h.id("web").await;
    h.api_ok(Method::POST, &format!("/v10/projects/{web}/promote/{d2}"), Some(json!({}))).await;
    h.emu.advance_clock(std::time::Duration::from_secs(1));
    let preview = h.preview(&back, true).await;
    let drift = preview.drift.iter().find(|d| d.urn.as_str() == "live").expect("drift on live");
    assert!(drift.changes.iter().any(|c| c.path.to_string() == "deployment_id"), "{drift:?}");
    h.up_refresh(&back).await;
    assert_eq!(production(&h), d1);

    // Promote the second one again: production follows new builds again.
    h.up(&v1).await;
    assert_eq!(production(&h), d2);
    assert_eq!(text(&h.object("projects", "name", "promo"), "/lastAliasRequest/type"), "promote");

    h.destroy(&v1).await;
    assert!(h.objects("projects").is_empty());
}
