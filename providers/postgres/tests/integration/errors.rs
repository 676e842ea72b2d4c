//! Errors: PostgreSQL errors map to kinds by SQLSTATE and name the resource; bad identifiers
//! are caught before anything runs.

use serde_json::json;
use stackwright::EngineError;
use stackwright::PreviewOptions;
use stackwright::core::{ErrorKind, OpContext, Urn};
use stackwright_postgres::{Database, DatabaseArgs, PostgresConfig, PostgresProvider, Role, RoleArgs};

use crate::common::*;

fn ctx() -> OpContext {
    OpContext { urn: Urn::from("r"), stack: STACK.into(), operation_id: "op-test".into() }
}

fn provider_as(user: &str) -> PostgresProvider {
    let mut config = PostgresConfig::from_url(&pg_url()).expect("test URL parses");
    config.user = user.to_owned();
    PostgresProvider::new(config)
}

#[tokio::test]
async fn permission_denied_is_unauthorized_and_names_the_resource() {
    let mut cleanup = Cleanup::default();
    let limited = cleanup.role(&unique("limited"));
    sql("postgres", &format!("CREATE ROLE {limited} LOGIN")).await;
    let provider = provider_as(&limited).provider();
    let handler = provider.handler("postgres:Role").expect("roles are handled");
    let wanted = cleanup.role(&unique("not allowed"));
    let err = handler.create(&ctx(), &json!({ "name": wanted })).await.expect_err("a plain login cannot create roles");
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
    assert!(err.message.contains("SQLSTATE 42501"), "{err}");
    assert!(err.message.contains(&format!("postgres:Role \"{wanted}\"")), "{err}");

    let handler = provider.handler("postgres:Database").expect("databases are handled");
    let err = handler.create(&ctx(), &json!({ "name": unique("nope") })).await.expect_err("cannot create databases");
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
}

#[tokio::test]
async fn a_missing_owner_is_reported_with_its_sqlstate() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("orphan"));
    let d = db.clone();
    let program = h.program(move |stack| {
        stack.resource::<Database>(
            "db",
            DatabaseArgs { owner: Some("no such role".into()), ..DatabaseArgs::new(d.clone()) },
        );
    });
    let failures = h.up_failing(&program).await;
    assert!(
        failures.iter().any(|f| f.contains("42704")
            && f.contains(&format!("postgres:Database \"{db}\""))
            && f.contains("no such role")),
        "{failures:?}"
    );
    // Not found is not retried: one attempt only.
    assert!(failures.iter().all(|f| !f.contains("attempts")), "{failures:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    let provider = PostgresProvider::new(PostgresConfig::new("127.0.0.1", 1, "postgres")).provider();
    let handler = provider.handler("postgres:Role").expect("roles are handled");
    let stored = stackwright::core::RawState {
        id: "r".into(),
        args: json!({ "name": "r" }),
        outputs: json!({ "name": "r", "password": null }),
    };
    let err = handler.read(&ctx(), &stored).await.expect_err("nothing listens on port 1");
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(err.message.contains("postgres:Role"), "{err}");
}

#[tokio::test]
async fn invalid_identifiers_and_arguments_fail_the_check_before_anything_runs() {
    let h = Harness::new();
    let long = "x".repeat(64);
    let program = h.program(move |stack| {
        stack.resource::<Role>(
            "role",
            RoleArgs { password: Some("pw".to_owned().into()), ..RoleArgs::user(long.clone()) },
        );
    });
    let err = h.engine.preview(STACK, &program, PreviewOptions::default()).await.expect_err("the check fails");
    let EngineError::Check(failures) = &err else { panic!("expected check failures, got {err}") };
    let messages: Vec<&str> = failures.iter().map(|(_, f)| f.message.as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("64 bytes")), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("not both")), "{messages:?}");
}
