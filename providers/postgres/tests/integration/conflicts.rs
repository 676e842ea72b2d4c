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
