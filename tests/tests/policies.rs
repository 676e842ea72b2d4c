//! Policies inspect the plan before anything runs: a mandatory one refuses the update and names
//! the resource, the policy and why; an advisory one warns and lets it proceed.

mod common;

use common::*;
use serde_json::json;
use stackwright::{Data, DataArgs, Enforcement, EngineError, Stack};
use stackwright::{PreviewOptions, UpOptions};

fn declare(s: &mut Stack, with_db: bool, region: &str) {
    let stack_name = s.name().to_owned();
    s.policy("never-delete-databases-in-prod", Enforcement::Mandatory, move |ctx| {
        ctx.changes()
            .filter(|step| ctx.stack == "prod" && step.deletes() && step.urn().as_str().starts_with("db"))
            .map(|step| (step.urn().clone(), format!("databases are never deleted in {stack_name}")))
            .collect()
    });
    s.policy("eu-region-for-student-data", Enforcement::Advisory, |ctx| {
        ctx.changes()
            .filter(|step| {
                step.input("input").and_then(|v| v["region"].as_str().map(|r| !r.starts_with("eu-"))).unwrap_or(false)
            })
            .map(|step| (step.urn().clone(), "student data must stay in an EU region".to_string()))
            .collect()
    });
    if with_db {
        s.resource::<Data>("db-main", DataArgs::new(json!({ "region": region })));
    }
    s.resource::<Data>("web", DataArgs::new(json!({ "region": region })));
}

#[tokio::test]
async fn a_mandatory_policy_refuses_and_an_advisory_one_warns() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let with_db = program(|s| declare(s, true, "eu-west-1"));
    let without_db = program(|s| declare(s, false, "eu-west-1"));
    assert!(engine.up("prod", &with_db, UpOptions::default(), &yes).await.unwrap().succeeded());

    let err = engine.up("prod", &without_db, UpOptions::default(), &yes).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EngineError::Policy(_)), "{msg}");
    assert!(
        msg.contains("resource `db-main` violates mandatory policy `never-delete-databases-in-prod`: databases are never deleted in prod"),
        "{msg}"
    );
    assert_eq!(engine.state("prod").await.unwrap().unwrap().resources.len(), 2, "nothing was deleted");

    // The same change is fine in another stack.
    assert!(engine.up("dev", &with_db, UpOptions::default(), &yes).await.unwrap().succeeded());
    assert!(engine.up("dev", &without_db, UpOptions::default(), &yes).await.unwrap().succeeded());

    let us = program(|s| declare(s, true, "us-east-1"));
    let preview = engine.preview("prod", &us, PreviewOptions::default()).await.unwrap();
    let warnings: Vec<String> = preview.policy_warnings.iter().map(|v| v.to_string()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("advisory policy `eu-region-for-student-data`"), "{warnings:?}");
    assert!(
        engine.up("prod", &us, UpOptions::default(), &yes).await.unwrap().succeeded(),
        "advisory policies do not block"
    );
}
