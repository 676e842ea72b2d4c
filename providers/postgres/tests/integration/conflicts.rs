//! Creation conflicts: an object that already exists is never taken over silently; the error
//! suggests `import` (or `adopt`), and `adopt: true` takes it over and converges it.

use stackwright_postgres::{Database, DatabaseArgs, Extension, ExtensionArgs, Role, RoleArgs, Schema, SchemaArgs};

use crate::common::*;

#[tokio::test]
async fn existing_objects_are_not_taken_over_silently() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("Existing Db"));
    let role = h.cleanup.role(&unique("Existing \"Role\""));
    let q_role = role.replace('"', "\"\"");
    sql("postgres", &format!("CREATE DATABASE \"{db}\" CONNECTION LIMIT 2")).await;
    sql("postgres", &format!("CREATE ROLE \"{q_role}\" CONNECTION LIMIT 9")).await;
    sql(&db, "CREATE SCHEMA taken; CREATE EXTENSION citext").await;

    let declare = |adopt: bool| {
        let (db, role) = (db.clone(), role.clone());
        move |stack: &mut stackwright::Stack| {
            stack.resource::<Role>("role", RoleArgs { adopt, ..RoleArgs::new(role.clone()) });
            stack.resource::<Database>("db", DatabaseArgs { adopt, ..DatabaseArgs::new(db.clone()) });
        }
    };
    let failures = h.up_failing(&h.program(declare(false))).await;
    assert_eq!(failures.len(), 2, "{failures:?}");
    for f in &failures {
        assert!(
            f.contains("conflict") && f.contains("already exists") && f.contains("import") && f.contains("adopt"),
            "{f}"
        );
    }
    assert!(failures.iter().any(|f| f.contains(&format!("id `{db}`"))), "{failures:?}");
    // Nothing was changed and nothing is in the state.
    assert_eq!(
        one("postgres", "SELECT datconnlimit::text FROM pg_database WHERE datname = $1", &[&db]).await.as_deref(),
        Some("2")
    );
    assert!(h.state().await.resources.is_empty());

    // Schemas and extensions inside a database behave the same.
    let inner = {
        let db = db.clone();
        move |adopt: bool| {
            let db = db.clone();
            move |stack: &mut stackwright::Stack| {
                stack.resource::<Schema>("schema", SchemaArgs { adopt, ..SchemaArgs::new(db.clone(), "taken") });
                stack.resource::<Extension>(
                    "citext",
                    ExtensionArgs { adopt, ..ExtensionArgs::new(db.clone(), "citext") },
                );
            }
        }
    };
    let failures = h.up_failing(&h.program(inner(false))).await;
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().all(|f| f.contains("already exists") && f.contains("import")), "{failures:?}");

    // Adopting takes them over and brings them in line with the program.
    h.up(&h.program(declare(true))).await;
    assert_eq!(
        one("postgres", "SELECT datconnlimit::text FROM pg_database WHERE datname = $1", &[&db]).await.as_deref(),
        Some("-1")
    );
    assert_eq!(
        one("postgres", "SELECT rolconnlimit::text FROM pg_roles WHERE rolname = $1", &[&role]).await.as_deref(),
        Some("-1")
    );
    let all = {
        let (outer, inner) = (declare(true), inner(true));
        h.program(move |stack| {
            outer(stack);
            inner(stack);
        })
    };
    h.up(&all).await;
    assert_no_changes(&h.preview(&all, true).await.plan);
    h.destroy(&all).await;
    assert!(query("postgres", "SELECT datname::text FROM pg_database WHERE datname = $1", &[&db]).await.is_empty());
}

#[tokio::test]
async fn a_retried_create_and_crash_recovery_recognise_only_their_own_objects() {
    use serde_json::json;
    use stackwright::core::{ErrorKind, OpContext, Urn};

    let mut cleanup = Cleanup::default();
    let db = cleanup.database(&unique("Retried Db"));
    let role = cleanup.role(&unique("Retried \"Role\""));
    let provider = stackwright_postgres::PostgresProvider::from_url(&pg_url()).expect("valid URL").provider();
    let ctx = |op: &str| OpContext { urn: Urn::from("r"), stack: STACK.into(), operation_id: op.into() };
    let cases = [
        ("postgres:Role", json!({ "name": role, "login": true, "generate_password": true })),
        ("postgres:Database", json!({ "name": db })),
        ("postgres:Schema", json!({ "database": db, "name": "Retried Schema" })),
    ];
    for (type_token, args) in &cases {
        let handler = provider.handler(type_token).expect("type is handled");
        let (id, _) = handler.create(&ctx("op-first"), args).await.unwrap_or_else(|e| panic!("{type_token}: {e}"));
        // The same operation tried again (its first answer was lost): it finds its own object.
        let (again, _) = handler.create(&ctx("op-first"), args).await.unwrap_or_else(|e| panic!("{type_token}: {e}"));
        assert_eq!(again, id);
        // Another operation does not take it over.
        let err = handler.create(&ctx("op-other"), args).await.expect_err("a different operation conflicts");
        assert_eq!(err.kind, ErrorKind::Conflict, "{type_token}: {err}");
        // Crash recovery adopts it only for the operation that made it.
        assert_eq!(handler.find(&ctx("op-first"), args).await.unwrap().object().map(|c| c.id), Some(id.clone()));
        assert!(handler.find(&ctx("op-other"), args).await.unwrap().object().is_none(), "{type_token}");
    }
    let comment =
        one("postgres", "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", &[&role]).await;
    assert_eq!(comment.as_deref(), Some("managed by Stackwright; created by operation op-first"));
}
