//! The testing API as a team would use it: property-test a program's plans over every valid
//! configuration, against a prior state, with the provider replaced by a mock.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use stackwright::builtin::testing::{Faults, Item, ItemArgs, TestProvider, World};
use stackwright::testing::{ProgramTest, strategies};
use stackwright::{Config, EngineError, Program, ResourceOptions, Stack, StepOp};

/// A team's program: a database whose size and region come from configuration, and an API. The
/// region is part of the database's identity, so changing it would replace (drop) the database;
/// in prod the team guards against that with `protect()`, which makes any plan that would delete
/// or replace it a refusal.
fn team_program() -> Program {
    Arc::new(|stack: &mut Stack| {
        let region: String = stack.config().require("region")?;
        let size: i64 = stack.config().get_or("db_size", 10)?;
        let encrypted: bool = stack.config().get_or("encrypted", true)?;
        let opts = if stack.name() == "prod" { ResourceOptions::new().protect() } else { ResourceOptions::new() };
        let db = stack.resource_with::<Item>(
            "database",
            ItemArgs {
                // The region is part of the database's identity (replace-forcing `key`).
                key: Some(region.clone().into()),
                value: json!({ "size": size, "encrypted": encrypted }).into(),
                secret: stack.config().get_secret::<String>("db_password")?.map(Into::into),
            },
            opts,
        );
        stack.resource::<Item>(
            "api",
            ItemArgs { key: None, value: db.value.map(|v| json!({ "db": v })).into(), secret: None },
        );
        Ok(())
    })
}

fn mock() -> TestProvider {
    TestProvider::new(World::memory(), Faults::default())
}

fn prod_config() -> impl Strategy<Value = Config> {
    strategies::config(
        "prod",
        vec![
            // Includes regions other than the database's: each would force a replacement.
            ("region", strategies::one_of(&["eu-west-1", "us-east-1", "ap-south-1"])),
            ("db_size", strategies::int(10..500)),
            ("encrypted", strategies::boolean()),
        ],
        vec![("db_password", strategies::text(24))],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For every valid prod configuration, including ones that move the database to another
    /// region, the plan never deletes or replaces the database: it is unchanged or updated in
    /// place, or the preview refuses, naming it.
    #[test]
    fn prod_never_plans_a_database_delete(config in prod_config()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let base = Config::from_values("prod", [("region".to_string(), json!("eu-west-1"))].into(), Default::default());
            let test = ProgramTest::new("prod").with_config(base).with_provider(mock().provider());
            prop_assert!(test.up(&team_program()).await.unwrap().succeeded());
            let prior = test.state().await.unwrap();

            let moved = config.get::<String>("region").unwrap().as_deref() != Some("eu-west-1");
            let test = ProgramTest::new("prod").with_config(config).with_prior_state(prior).with_provider(mock().provider());
            match test.preview(&team_program()).await {
                Ok(report) => {
                    // Only names and ops: the steps' inputs carry the secret password.
                    let ops: Vec<(String, StepOp)> = report.plan.steps.iter().map(|s| (s.urn.to_string(), s.op)).collect();
                    prop_assert!(!moved, "a region change must be refused, not planned: {ops:?}");
                    let db = report.plan.steps.iter().find(|s| s.urn.as_str() == "database").unwrap();
                    prop_assert!(matches!(db.op, StepOp::Same | StepOp::Update), "{:?}", db.op);
                }
                Err(EngineError::Protected(refused)) => {
                    prop_assert!(moved, "only a region change is refused: {refused:?}");
                    prop_assert!(refused.iter().all(|(urn, _)| urn.as_str() == "database"), "{refused:?}");
                }
                Err(other) => prop_assert!(false, "unexpected error: {other}"),
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_region_change_is_caught_as_a_replacement_outside_prod() {
    let base = Config::from_values("staging", [("region".to_string(), json!("eu-west-1"))].into(), Default::default());
    let test = ProgramTest::new("staging").with_config(base).with_provider(mock().provider());
    assert!(test.up(&team_program()).await.unwrap().succeeded());
    let moved = Config::from_values("staging", [("region".to_string(), json!("us-east-1"))].into(), Default::default());
    let test = ProgramTest::new("staging")
        .with_config(moved)
        .with_prior_state(test.state().await.unwrap())
        .with_provider(mock().provider());
    let plan = test.preview(&team_program()).await.unwrap().plan;
    let db = plan.steps.iter().find(|s| s.urn.as_str() == "database").unwrap();
    assert_eq!(db.op, StepOp::Replace { delete_before_create: false });
    let missing = ProgramTest::new("prod").with_provider(mock().provider());
    let err = missing.preview(&team_program()).await.unwrap_err().to_string();
    assert!(err.contains("config key `region` of stack `prod`") && err.contains("is not set"), "{err}");
}
