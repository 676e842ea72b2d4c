//! `postgres:DefaultPrivileges`: future tables created by the owner grant the configured
//! privileges; a default changed by hand is drift and is repaired; delete revokes.

use stackwright::StepOp;
use stackwright_postgres::{
    Database, DatabaseArgs, DefaultObject, DefaultPrivileges, DefaultPrivilegesArgs, Role, RoleArgs, Schema, SchemaArgs,
};

use crate::common::*;

/// The default privileges `owner` gives `grantee`: `objtype:schema:PRIVS`, one per entry.
async fn default_acl(db: &str, owner: &str, grantee: &str) -> Vec<Option<String>> {
    query(
        db,
        "SELECT d.defaclobjtype::text || ':' || COALESCE(n.nspname, '*') || ':' ||
                string_agg(a.privilege_type, ',' ORDER BY a.privilege_type)
           FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,
                aclexplode(d.defaclacl) a
          WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = $1)
            AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)
          GROUP BY d.defaclobjtype, n.nspname ORDER BY 1",
        &[&owner, &grantee],
    )
    .await
}

#[tokio::test]
async fn default_privileges_apply_to_future_tables_and_converge() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("defaults"));
    let owner = h.cleanup.role(&unique("Migrator"));
    let reader = h.cleanup.role(&unique("reader"));
    let declare = |privileges: Option<&'static [&'static str]>| {
        let (db, owner, reader) = (db.clone(), owner.clone(), reader.clone());
        move |stack: &mut stackwright::Stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            let o = stack.resource::<Role>("owner", RoleArgs { drop_owned: true, ..RoleArgs::new(owner.clone()) });
            let r = stack.resource::<Role>("reader", RoleArgs { drop_owned: true, ..RoleArgs::new(reader.clone()) });
            let schema = stack.resource::<Schema>(
                "schema",
                SchemaArgs {
                    owner: Some(o.name.clone().into()),
                    drop_cascade: true,
                    ..SchemaArgs::new(&database.name, "app")
                },
            );
            if let Some(p) = privileges {
                stack.resource::<DefaultPrivileges>(
                    "defaults",
                    DefaultPrivilegesArgs::new(&database.name, &o.name, &r.name, DefaultObject::Tables, p)
                        .in_schema(&schema.name),
                );
            }
        }
    };
    let select = h.program(declare(Some(&["SELECT"])));
    h.up(&select).await;
    let q_owner = owner.replace('"', "\"\"");
    sql(&db, &format!("SET ROLE \"{q_owner}\"; CREATE TABLE app.future (id int); RESET ROLE")).await;
    assert_eq!(
        one(&db, "SELECT has_table_privilege($1, 'app.future', 'SELECT')::text || has_table_privilege($1, 'app.future', 'INSERT')::text", &[&reader])
            .await
            .as_deref(),
        Some("truefalse")
    );
    assert_eq!(default_acl(&db, &owner, &reader).await, vec![Some("r:app:SELECT".to_owned())]);
    assert_no_changes(&h.preview(&select, true).await.plan);

    // Changed by hand: drift, repaired.
    sql(
        &db,
        &format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"{q_owner}\" IN SCHEMA app GRANT INSERT, DELETE ON TABLES TO {reader}"
        ),
    )
    .await;
    let preview = h.preview(&select, true).await;
    assert_eq!(step(&preview.plan, "defaults"), StepOp::Update);
    h.up_refresh(&select).await;
    sql(&db, &format!("SET ROLE \"{q_owner}\"; CREATE TABLE app.later (id int); RESET ROLE")).await;
    assert_eq!(
        one(&db, "SELECT has_table_privilege($1, 'app.later', 'SELECT')::text || has_table_privilege($1, 'app.later', 'INSERT')::text", &[&reader])
            .await
            .as_deref(),
        Some("truefalse")
    );

    // In place to all privileges, then removed.
    let all = h.program(declare(Some(&["all"])));
    assert_eq!(step(&h.preview(&all, false).await.plan, "defaults"), StepOp::Update);
    h.up(&all).await;
    assert_no_changes(&h.preview(&all, true).await.plan);
    let none = h.program(declare(None));
    h.up(&none).await;
    assert!(default_acl(&db, &owner, &reader).await.is_empty());
    h.destroy(&none).await;
}
