//! `postgres:Grant`: privileges converge (revoke-then-grant) after privileges were added by
//! hand, change in place, and are revoked on delete; database, schema and all-tables grants,
//! with quoted names.

use stackwright::StepOp;
use stackwright_postgres::{Database, DatabaseArgs, Grant, GrantArgs, GrantObject, Role, RoleArgs, Schema, SchemaArgs};

use crate::common::*;

async fn table_privileges(db: &str, role: &str, table: &str) -> String {
    one(
        db,
        "SELECT COALESCE(string_agg(a.privilege_type, ',' ORDER BY a.privilege_type), '')
           FROM pg_class c, aclexplode(COALESCE(c.relacl, acldefault('r', c.relowner))) a
          WHERE c.relname = $2 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1)",
        &[&role, &table],
    )
    .await
    .unwrap_or_default()
}

#[tokio::test]
async fn table_grant_converges_after_privileges_were_added_by_hand() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("grants"));
    let reader = h.cleanup.role(&unique("Read \"Only\""));
    let declare = |privileges: &'static [&'static str]| {
        let (db, reader) = (db.clone(), reader.clone());
        move |stack: &mut stackwright::Stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            let role = stack.resource::<Role>("reader", RoleArgs::new(reader.clone()));
            stack.resource::<Grant>(
                "grant",
                GrantArgs::new(&database.name, &role.name, GrantObject::Table, privileges)
                    .in_schema("Data Schema")
                    .on(&["Users", "orders"]),
            );
        }
    };
    // The tables exist before the grant (made by a migration, say).
    let setup = {
        let (db, reader) = (db.clone(), reader.clone());
        h.program(move |stack| {
            stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            stack.resource::<Role>("reader", RoleArgs::new(reader.clone()));
        })
    };
    h.up(&setup).await;
    sql(&db, "CREATE SCHEMA \"Data Schema\"; CREATE TABLE \"Data Schema\".\"Users\" (id int); CREATE TABLE \"Data Schema\".orders (id int)").await;

    let select = h.program(declare(&["select"]));
    h.up(&select).await;
    assert_eq!(table_privileges(&db, &reader, "Users").await, "SELECT");
    assert_eq!(table_privileges(&db, &reader, "orders").await, "SELECT");
    assert_eq!(h.outputs("grant").await["privileges"], serde_json::json!(["SELECT"]));
    assert_no_changes(&h.preview(&select, true).await.plan);

    // Someone grants more by hand on one table.
    let q = reader.replace('"', "\"\"");
    sql(&db, &format!("GRANT INSERT, DELETE ON \"Data Schema\".orders TO \"{q}\"")).await;
    let preview = h.preview(&select, true).await;
    let drift = preview.drift.iter().find(|d| d.urn.as_str() == "grant").expect("drift on the grant");
    let change = drift.changes.iter().find(|c| c.path.to_string().starts_with("privileges")).expect("privileges drift");
    assert!(change.new.is_some(), "{change:?}");
    assert_eq!(step(&preview.plan, "grant"), StepOp::Update);
    h.up_refresh(&select).await;
    assert_eq!(table_privileges(&db, &reader, "orders").await, "SELECT");
    assert_eq!(table_privileges(&db, &reader, "Users").await, "SELECT");

    // Privileges change in place.
    let more = h.program(declare(&["SELECT", "update"]));
    assert_eq!(step(&h.preview(&more, false).await.plan, "grant"), StepOp::Update);
    h.up(&more).await;
    assert_eq!(table_privileges(&db, &reader, "orders").await, "SELECT,UPDATE");
    assert_no_changes(&h.preview(&more, true).await.plan);

    // Removing the grant revokes it.
    h.up(&setup).await;
    assert_eq!(table_privileges(&db, &reader, "orders").await, "");
    assert_eq!(table_privileges(&db, &reader, "Users").await, "");
    h.destroy(&setup).await;
}

#[tokio::test]
async fn database_schema_and_all_tables_grants() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("grant_kinds"));
    let app = h.cleanup.role(&unique("app"));
    let declare = |with_grants: bool| {
        let (d, a) = (db.clone(), app.clone());
        move |stack: &mut stackwright::Stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
            let role = stack.resource::<Role>("app", RoleArgs::new(a.clone()));
            let schema = stack.resource::<Schema>(
                "schema",
                SchemaArgs { drop_cascade: true, ..SchemaArgs::new(&database.name, "reports") },
            );
            if !with_grants {
                return;
            }
            stack.resource::<Grant>(
                "connect",
                GrantArgs::new(&database.name, &role.name, GrantObject::Database, &["CONNECT", "temp"]),
            );
            stack.resource::<Grant>(
                "usage",
                GrantArgs::new(&database.name, &role.name, GrantObject::Schema, &["usage"]).in_schema(&schema.name),
            );
            stack.resource::<Grant>(
                "tables",
                GrantArgs::new(&database.name, &role.name, GrantObject::AllTablesInSchema, &["ALL"])
                    .in_schema(&schema.name),
            );
        }
    };
    h.up(&h.program(declare(false))).await;
    sql(&db, "CREATE TABLE reports.a (id int); CREATE TABLE reports.b (id int)").await;
    let program = h.program(declare(true));
    h.up(&program).await;

    let db_privs = one(
        "postgres",
        "SELECT string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) FROM pg_database d, aclexplode(d.datacl) a
          WHERE d.datname = $1 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)",
        &[&db, &app],
    )
    .await;
    assert_eq!(db_privs.as_deref(), Some("CONNECT,TEMPORARY"));
    assert_eq!(
        one(&db, "SELECT has_schema_privilege($1, 'reports', 'USAGE')::text", &[&app]).await.as_deref(),
        Some("true")
    );
    for t in ["a", "b"] {
        assert_eq!(table_privileges(&db, &app, t).await, "DELETE,INSERT,REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE");
    }
    // `ALL` reads back as `ALL`, not as its expansion.
    assert_no_changes(&h.preview(&program, true).await.plan);

    // One table loses a privilege by hand: the all-tables grant shows drift and repairs it.
    sql(&db, &format!("REVOKE TRUNCATE ON reports.b FROM \"{app}\"")).await;
    assert_eq!(step(&h.preview(&program, true).await.plan, "tables"), StepOp::Update);
    h.up_refresh(&program).await;
    assert!(table_privileges(&db, &app, "b").await.contains("TRUNCATE"));

    h.destroy(&program).await;
}

#[tokio::test]
async fn sequence_function_and_public_grants() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("grant_routines"));
    let app = h.cleanup.role(&unique("App Role"));
    let declare = |with_grants: bool| {
        let (d, a) = (db.clone(), app.clone());
        move |stack: &mut stackwright::Stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
            let role = stack.resource::<Role>("app", RoleArgs::new(a.clone()));
            if !with_grants {
                return;
            }
            stack.resource::<Grant>(
                "sequence",
                GrantArgs::new(&database.name, &role.name, GrantObject::Sequence, &["usage", "select"])
                    .in_schema("public")
                    .on(&["Counter Seq"]),
            );
            stack.resource::<Grant>(
                "function",
                GrantArgs::new(&database.name, &role.name, GrantObject::Function, &["execute"])
                    .in_schema("public")
                    .on(&["Add Two(integer, integer)"]),
            );
            // Nobody but granted roles may connect: revoke everything PUBLIC has on the database.
            stack.resource::<Grant>("no-public", GrantArgs::new(&database.name, "public", GrantObject::Database, &[]));
        }
    };
    h.up(&h.program(declare(false))).await;
    sql(
        &db,
        "CREATE SEQUENCE \"Counter Seq\";
         CREATE FUNCTION \"Add Two\"(a integer, b integer) RETURNS integer LANGUAGE sql AS 'SELECT a + b';
         REVOKE EXECUTE ON FUNCTION \"Add Two\"(integer, integer) FROM PUBLIC",
    )
    .await;
    let program = h.program(declare(true));
    h.up(&program).await;
    let checks = one(
        &db,
        "SELECT concat_ws('|',
                has_sequence_privilege($1, '\"Counter Seq\"', 'USAGE'),
                has_sequence_privilege($1, '\"Counter Seq\"', 'UPDATE'),
                has_function_privilege($1, '\"Add Two\"(integer, integer)', 'EXECUTE'),
                (SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $2 AND a.grantee = 0))",
        &[&app, &db],
    )
    .await;
    assert_eq!(checks.as_deref(), Some("t|f|t|0"));
    assert_no_changes(&h.preview(&program, true).await.plan);

    // PUBLIC gets CONNECT back by hand: drift on the PUBLIC grant, repaired.
    sql("postgres", &format!("GRANT CONNECT ON DATABASE \"{db}\" TO PUBLIC")).await;
    let preview = h.preview(&program, true).await;
    assert_eq!(step(&preview.plan, "no-public"), StepOp::Update);
    h.up_refresh(&program).await;
    let public = one(
        "postgres",
        "SELECT count(*)::text FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1 AND a.grantee = 0",
        &[&db],
    )
    .await;
    assert_eq!(public.as_deref(), Some("0"));

    // Removing the grants revokes them.
    h.up(&h.program(declare(false))).await;
    let after = one(
        &db,
        "SELECT concat_ws('|', has_sequence_privilege($1, '\"Counter Seq\"', 'USAGE'),
                               has_function_privilege($1, '\"Add Two\"(integer, integer)', 'EXECUTE'))",
        &[&app],
    )
    .await;
    assert_eq!(after.as_deref(), Some("f|f"));
    h.destroy(&h.program(declare(false))).await;
}

#[tokio::test]
async fn many_grants_on_one_object_apply_concurrently() {
    // Concurrent GRANTs on one object collide in the catalog ("tuple concurrently updated");
    // the provider serializes them.
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("grant_many"));
    let roles: Vec<String> = (0..6).map(|i| h.cleanup.role(&unique(&format!("member{i}")))).collect();
    let (d, rs) = (db.clone(), roles.clone());
    let program = h.program(move |stack| {
        let database = stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
        let schema = stack.resource::<Schema>("schema", SchemaArgs::new(&database.name, "shared"));
        for (i, r) in rs.iter().enumerate() {
            let role = stack.resource::<Role>(&format!("role{i}"), RoleArgs::new(r.clone()));
            stack.resource::<Grant>(
                &format!("connect{i}"),
                GrantArgs::new(&database.name, &role.name, GrantObject::Database, &["CONNECT"]),
            );
            stack.resource::<Grant>(
                &format!("usage{i}"),
                GrantArgs::new(&database.name, &role.name, GrantObject::Schema, &["USAGE"]).in_schema(&schema.name),
            );
        }
    });
    h.up(&program).await;
    for r in &roles {
        let ok = one(
            &db,
            "SELECT has_database_privilege($1, current_database(), 'CONNECT')::text
                    || has_schema_privilege($1, 'shared', 'USAGE')::text",
            &[r],
        )
        .await;
        assert_eq!(ok.as_deref(), Some("truetrue"), "{r}");
    }
    assert_no_changes(&h.preview(&program, true).await.plan);
    h.destroy(&program).await;
}
