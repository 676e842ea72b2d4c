//! The testing API as a team would use it: property-test a program's plans over every valid
//! configuration, against a prior state, with the provider replaced by a mock.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;
use stackwright::builtin::testing::{Faults, Item, ItemArgs, TestProvider, World};
use stackwright::testing::{ProgramTest, strategies};
use stackwright::{Config, Program, Stack};

/// A team's program: a database whose size and region come from configuration, and an API.
fn team_program() -> Program {
    Arc::new(|stack: &mut Stack| {
        let region: String = stack.config().require("region")?;
        let size: i64 = stack.config().get_or("db_size", 10)?;
        let encrypted: bool = stack.config().get_or("encrypted", true)?;
        let db = stack.resource::<Item>(
            "database",
            ItemArgs {
                // The region is part of the database's identity (replace-forcing `key`).
                key: Some(region.clone().into()),
                value: json!({ "size": size, "encrypted": encrypted }).into(),
                secret: stack.config().get_secret::<String>("db_password")?.map(Into::into),
            },
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
            ("region", strategies::one_of(&["eu-west-1"])),
            ("db_size", strategies::int(10..500)),
            ("encrypted", strategies::boolean()),
        ],
        vec![("db_password", strategies::text(24))],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For every valid prod configuration, the plan never deletes or replaces the database.
    #[test]
    fn prod_never_plans_a_database_delete(config in prod_config()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let base = Config::from_values("prod", [("region".to_string(), json!("eu-west-1"))].into(), Default::default());
            let test = ProgramTest::new("prod").with_config(base).with_provider(mock().provider());
            prop_assert!(test.up(&team_program()).await.unwrap().succeeded());
            let prior = test.state().await.unwrap();

            let test = ProgramTest::new("prod").with_config(config).with_prior_state(prior).with_provider(mock().provider());
            let plan = test.preview(&team_program()).await.unwrap().plan;
            for step in &plan.steps {
                if step.urn.as_str() == "database" {
                    prop_assert!(matches!(step.op, stackwright::StepOp::Same | stackwright::StepOp::Update), "{:?}", step.op);
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_region_change_is_caught_as_a_replacement() {
    let base = Config::from_values("prod", [("region".to_string(), json!("eu-west-1"))].into(), Default::default());
    let test = ProgramTest::new("prod").with_config(base).with_provider(mock().provider());
    assert!(test.up(&team_program()).await.unwrap().succeeded());
    let moved = Config::from_values("prod", [("region".to_string(), json!("us-east-1"))].into(), Default::default());
    let test = ProgramTest::new("prod")
        .with_config(moved)
        .with_prior_state(test.state().await.unwrap())
        .with_provider(mock().provider());
    let plan = test.preview(&team_program()).await.unwrap().plan;
    let db = plan.steps.iter().find(|s| s.urn.as_str() == "database").unwrap();
    assert_eq!(db.op, stackwright::StepOp::Replace { delete_before_create: false });
    let missing = ProgramTest::new("prod").with_provider(mock().provider());
    let err = missing.preview(&team_program()).await.unwrap_err().to_string();
    assert!(err.contains("config key `region` of stack `prod`") && err.contains("is not set"), "{err}");
}
