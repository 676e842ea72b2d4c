//! `vercel:EnvironmentVariable`: values wired from other resources, in-place updates, the
//! sensitive replacement, and drift that is visible (encrypted) or unknowable (sensitive).

use serde_json::json;
use stackwright::options::ResourceOptions;
use stackwright::{Output, StepOp};
use stackwright_vercel::{EnvKind, EnvTarget, EnvironmentVariable, EnvironmentVariableArgs, Project, ProjectArgs};

use crate::common::*;

fn program(h: &Harness, version: u32) -> stackwright::Program {
    h.program(move |s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("env-app"));
        // Wired from another resource's output: known only after the project exists.
        let site_url = web.name.map(|n| format!("https://{n}.vercel.app"));
        let db_url = Output::secret(format!("postgres://app:pw-{version}@db.internal/app"));
        s.resource::<EnvironmentVariable>(
            "site-url",
            EnvironmentVariableArgs::new(web.id(), "SITE_URL", site_url).plain().comment("public"),
        );
        let db = EnvironmentVariableArgs::new(web.id(), "DATABASE_URL", db_url)
            .targets([EnvTarget::Production, EnvTarget::Preview]);
        let db = if version == 1 { db } else { db.targets([EnvTarget::Production]).plain() };
        s.resource::<EnvironmentVariable>("db-url", db);
        let key = EnvironmentVariableArgs::new(web.id(), "STRIPE_KEY", format!("sk_live_{version}"));
        let key = if version == 1 { key.sensitive() } else { key.targets([EnvTarget::Preview]) };
        s.resource_with::<EnvironmentVariable>("stripe", key, ResourceOptions::new().delete_before_replace());
        s.resource::<EnvironmentVariable>(
            "branch-flag",
            EnvironmentVariableArgs::new(web.id(), "FEATURE", "on").git_branch("feature-x"),
        );
    })
}

#[tokio::test]
async fn variables_are_created_updated_in_place_and_replaced_when_sensitivity_changes() {
    let h = harness().await;
    let v1 = program(&h, 1);
    let report = h.up(&v1).await;
    assert_eq!(report.changed, 5);
    let project = h.id("web").await;
    let site = h.object("envs", "key", "SITE_URL");
    assert_eq!(site["value"], "https://env-app.vercel.app");
    assert_eq!((site["type"].as_str(), site["comment"].as_str()), (Some("plain"), Some("public")));
    assert_eq!(site["projectId"], project.as_str());
    let db = h.object("envs", "key", "DATABASE_URL");
    assert_eq!(db["value"], "postgres://app:pw-1@db.internal/app");
    assert_eq!((db["type"].as_str(), db["target"].clone()), (Some("encrypted"), json!(["production", "preview"])));
    let stripe = h.object("envs", "key", "STRIPE_KEY");
    assert_eq!((stripe["type"].as_str(), stripe["value"].as_str()), (Some("sensitive"), Some("sk_live_1")));
    let flag = h.object("envs", "key", "FEATURE");
    assert_eq!((flag["gitBranch"].as_str(), flag["target"].clone()), (Some("feature-x"), json!(["preview"])));
    assert_eq!(h.outputs("db-url").await["id"], db["id"]);
    assert_no_changes(&h.preview(&v1, true).await.plan);

    let v2 = program(&h, 2);
    let plan = h.preview(&v2, false).await.plan;
    assert_eq!(step(&plan, "db-url"), StepOp::Update);
    assert_eq!(step(&plan, "stripe"), StepOp::Replace { delete_before_create: true });
    assert!(changed_paths(&plan, "stripe").contains(&"sensitive".to_string()));
    h.up(&v2).await;
    let db2 = h.object("envs", "key", "DATABASE_URL");
    assert_eq!(db2["id"], db["id"], "updated in place");
    assert_eq!((db2["type"].as_str(), db2["target"].clone()), (Some("plain"), json!(["production"])));
    assert_eq!(db2["value"], "postgres://app:pw-2@db.internal/app");
    let stripe2 = h.object("envs", "key", "STRIPE_KEY");
    assert_ne!(stripe2["id"], stripe["id"], "replaced");
    assert_eq!((stripe2["type"].as_str(), stripe2["value"].as_str()), (Some("encrypted"), Some("sk_live_2")));
    assert_no_changes(&h.preview(&v2, true).await.plan);

    h.destroy(&v2).await;
    assert!(h.objects("envs").is_empty() && h.objects("projects").is_empty());
}

#[tokio::test]
async fn drift_of_a_readable_value_is_repaired_and_of_a_sensitive_value_is_unknowable() {
    let h = harness().await;
    let v1 = program(&h, 1);
    h.up(&v1).await;
    let project = h.id("web").await;
    let db = h.id("db-url").await;
    let stripe = h.id("stripe").await;
    let stripe_updated = h.outputs("stripe").await["updated_at"].as_i64().expect("updated_at");
    h.drift_env(&project, &db, json!({ "value": "postgres://evil", "target": ["production"] })).await;
    h.drift_env(&project, &stripe, json!({ "value": "sk_live_changed_in_dashboard" })).await;

    let preview = h.preview(&v1, true).await;
    let drift_of = |urn: &str| {
        let d = preview.drift.iter().find(|d| d.urn.as_str() == urn);
        d.map(|d| d.changes.iter().map(|c| c.path.to_string()).collect::<Vec<_>>()).unwrap_or_default()
    };
    let db_drift = drift_of("db-url");
    assert!(db_drift.contains(&"value".into()) && db_drift.contains(&"targets[1]".into()), "{db_drift:?}");
    // The sensitive value cannot be read: no change of `value`, only the update time moved.
    assert_eq!(drift_of("stripe"), ["outputs.updated_at"]);
    assert_eq!(step(&preview.plan, "db-url"), StepOp::Update);
    assert_eq!(step(&preview.plan, "stripe"), StepOp::Same);
    let shown = stackwright::render::drift(&preview.drift);
    assert!(shown.contains("~ value: [secret] → [secret]") && !shown.contains("evil"), "{shown}");

    h.up_refresh(&v1).await;
    let repaired = h.object("envs", "key", "DATABASE_URL");
    assert_eq!(repaired["value"], "postgres://app:pw-1@db.internal/app");
    assert_eq!(repaired["target"], json!(["production", "preview"]));
    assert!(h.outputs("stripe").await["updated_at"].as_i64() > Some(stripe_updated));
    assert_eq!(
        h.object("envs", "key", "STRIPE_KEY")["value"],
        "sk_live_changed_in_dashboard",
        "unknowable, left alone"
    );
    assert_no_changes(&h.preview(&v1, true).await.plan);
}

#[tokio::test]
async fn invalid_variables_fail_before_any_request_is_made_for_them() {
    let h = harness().await;
    let program = h.program(|s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("checks"));
        let mut sensitive_dev = EnvironmentVariableArgs::new(web.id(), "TOKEN", "x");
        sensitive_dev.kind = EnvKind::Sensitive;
        s.resource::<EnvironmentVariable>("sensitive-dev", sensitive_dev);
        s.resource::<EnvironmentVariable>("bad-key", EnvironmentVariableArgs::new(web.id(), "1BAD-KEY", "x"));
    });
    // Checks run once the project id is known, so the project is created and the two fail.
    let report = h.try_up(&program, false).await;
    let message = |urn: &str| report.failures.iter().find(|f| f.urn.as_str() == urn).map(|f| f.message.clone());
    assert!(message("sensitive-dev").is_some_and(|m| m.contains("cannot target development")), "{report:#?}");
    assert!(message("bad-key").is_some_and(|m| m.contains("not a valid name")), "{report:#?}");
    assert_eq!(h.stats().requests("POST /v10/projects/{id_or_name}/env"), 0);
}
