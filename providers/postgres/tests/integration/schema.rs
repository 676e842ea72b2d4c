//! `postgres:Schema`: identifiers that need quoting (mixed case, spaces, double quotes), owner
//! drift, rename, and a delete that refuses a non-empty schema unless told to cascade.

use stackwright::StepOp;
use stackwright_postgres::{Database, DatabaseArgs, Role, RoleArgs, Schema, SchemaArgs};

use crate::common::*;

#[tokio::test]
async fn schema_with_quoted_names_is_managed_end_to_end() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("Db \"Quoted\" Name"));
    let owner = h.cleanup.role(&unique("Mixed Case \"Owner\""));
    let schema = unique("My Schema");
    let renamed = format!("{schema}.v2");

    let declare = |schema_name: String, cascade: bool| {
        let (db, owner) = (db.clone(), owner.clone());
        move |stack: &mut stackwright::Stack| {
            let role = stack.resource::<Role>("owner", RoleArgs::new(owner.clone()));
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            stack.resource::<Schema>(
                "schema",
                SchemaArgs {
                    owner: Some(role.name.clone().into()),
                    drop_cascade: cascade,
                    ..SchemaArgs::new(&database.name, schema_name.clone())
                },
            );
        }
    };
    let v1 = h.program(declare(schema.clone(), false));
    h.up(&v1).await;
    let owner_now =
        one(&db, "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = $1", &[&schema]).await;
    assert_eq!(owner_now.as_deref(), Some(owner.as_str()));
    let state = h.state().await;
    let id = &state.resources[&stackwright::Urn::from("schema")].id;
    assert_eq!(stackwright_postgres::ident::split_id(id).unwrap(), vec![db.clone(), schema.clone()]);

    // Owner changed by hand: drift, repaired.
    sql(&db, &format!("ALTER SCHEMA \"{}\" OWNER TO postgres", schema.replace('"', "\"\""))).await;
    let preview = h.preview(&v1, true).await;
    assert_eq!(step(&preview.plan, "schema"), StepOp::Update);
    assert_eq!(changed_paths(&preview.plan, "schema"), vec!["owner"]);
    h.up_refresh(&v1).await;
    let owner_now =
        one(&db, "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = $1", &[&schema]).await;
    assert_eq!(owner_now.as_deref(), Some(owner.as_str()));

    // Rename in place (the new name has a dot, which ids quote).
    let v2 = h.program(declare(renamed.clone(), false));
    assert_eq!(step(&h.preview(&v2, false).await.plan, "schema"), StepOp::Update);
    h.up(&v2).await;
    let names =
        query(&db, "SELECT nspname::text FROM pg_namespace WHERE nspname IN ($1, $2)", &[&schema, &renamed]).await;
    assert_eq!(names, vec![Some(renamed.clone())]);
    assert_no_changes(&h.preview(&v2, true).await.plan);

    // A schema holding a table is not dropped silently…
    sql(&db, &format!("CREATE TABLE \"{}\".t (id int)", renamed.replace('"', "\"\""))).await;
    let keep_db_and_role = {
        let (db, owner) = (db.clone(), owner.clone());
        h.program(move |stack| {
            stack.resource::<Role>("owner", RoleArgs::new(owner.clone()));
            stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
        })
    };
    let failures = h.up_failing(&keep_db_and_role).await;
    assert!(failures.iter().any(|f| f.contains("drop_cascade") && f.contains("2BP01")), "{failures:?}");
    // …but is with `drop_cascade`.
    h.up(&h.program(declare(renamed.clone(), true))).await;
    h.up(&keep_db_and_role).await;
    assert!(query(&db, "SELECT nspname::text FROM pg_namespace WHERE nspname = $1", &[&renamed]).await.is_empty());
    h.destroy(&keep_db_and_role).await;
}

#[tokio::test]
async fn a_schema_whose_database_was_dropped_by_hand_is_gone() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("vanishing"));
    let d = db.clone();
    let program = h.program(move |stack| {
        let database = stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
        stack.resource::<Schema>("schema", SchemaArgs::new(&database.name, "app"));
    });
    h.up(&program).await;
    sql("postgres", &format!("DROP DATABASE \"{db}\" WITH (FORCE)")).await;
    let preview = h.preview(&program, true).await;
    let gone: Vec<&str> = preview.drift.iter().filter(|d| d.gone).map(|d| d.urn.as_str()).collect();
    assert_eq!(gone.len(), 2, "{:#?}", preview.drift);
    assert_eq!(step(&preview.plan, "db"), StepOp::Create);
    assert_eq!(step(&preview.plan, "schema"), StepOp::Create);
    h.up_refresh(&program).await;
    assert_eq!(query(&db, "SELECT nspname::text FROM pg_namespace WHERE nspname = 'app'", &[]).await.len(), 1);
    h.destroy(&program).await;
}
