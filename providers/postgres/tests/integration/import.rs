//! Import: existing objects are read by id into the stack's state; a program that matches them
//! then plans no change, and later changes are applied in place.

use stackwright::StepOp;
use stackwright_postgres::{
    Database, DatabaseArgs, Grant, GrantArgs, GrantObject, Migrations, MigrationsArgs, Role, RoleArgs, Schema,
    SchemaArgs,
};

use crate::common::*;

#[tokio::test]
async fn imported_objects_are_managed_from_then_on() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("imported.db"));
    let role = h.cleanup.role(&unique("Imported Role"));
    let reader = h.cleanup.role(&unique("reader"));
    sql("postgres", &format!("CREATE ROLE \"{role}\" LOGIN CONNECTION LIMIT 3; CREATE ROLE {reader}")).await;
    sql("postgres", &format!("CREATE DATABASE \"{db}\" OWNER \"{role}\"")).await;
    sql(
        &db,
        &format!("CREATE SCHEMA \"Legacy.Schema\" AUTHORIZATION \"{role}\"; GRANT USAGE ON SCHEMA \"Legacy.Schema\" TO {reader}"),
    )
    .await;

    h.import::<Role>("role", &role).await;
    h.import::<Database>("db", &db).await;
    let schema_id = stackwright_postgres::ident::join_id(&[&db, "Legacy.Schema"]);
    assert_eq!(schema_id, format!("\"{db}\".\"Legacy.Schema\""));
    h.import::<Schema>("schema", &schema_id).await;
    let grant_id = stackwright_postgres::ident::join_id(&[&db, &reader, "schema", "Legacy.Schema"]);
    h.import::<Grant>("grant", &grant_id).await;

    let imported = h.state().await;
    let role_args = &imported.resources[&stackwright::Urn::from("role")].inputs;
    assert_eq!(role_args["connection_limit"], 3);
    assert_eq!(role_args["login"], true);
    assert_eq!(imported.resources[&stackwright::Urn::from("db")].inputs["owner"], role.as_str());
    assert_eq!(imported.resources[&stackwright::Urn::from("grant")].inputs["privileges"], serde_json::json!(["USAGE"]));

    let declare = |limit: i32| {
        let (db, role, reader) = (db.clone(), role.clone(), reader.clone());
        move |stack: &mut stackwright::Stack| {
            let r = stack.resource::<Role>(
                "role",
                RoleArgs { login: true, connection_limit: limit, ..RoleArgs::new(role.clone()) },
            );
            let d = stack.resource::<Database>(
                "db",
                DatabaseArgs { owner: Some(r.name.clone().into()), ..DatabaseArgs::new(db.clone()) },
            );
            let s = stack.resource::<Schema>(
                "schema",
                SchemaArgs { owner: Some(r.name.clone().into()), ..SchemaArgs::new(&d.name, "Legacy.Schema") },
            );
            stack.resource::<Grant>(
                "grant",
                GrantArgs::new(&d.name, reader.clone(), GrantObject::Schema, &["USAGE"]).in_schema(&s.name),
            );
        }
    };
    let same = h.program(declare(3));
    assert_no_changes(&h.preview(&same, true).await.plan);

    let changed = h.program(declare(20));
    let plan = h.preview(&changed, false).await.plan;
    assert_eq!(step(&plan, "role"), StepOp::Update);
    assert_eq!(step(&plan, "db"), StepOp::Same);
    h.up(&changed).await;
    assert_eq!(
        one("postgres", "SELECT rolconnlimit::text FROM pg_roles WHERE rolname = $1", &[&role]).await.as_deref(),
        Some("20")
    );
    h.destroy(&changed).await;
    assert!(query("postgres", "SELECT datname::text FROM pg_database WHERE datname = $1", &[&db]).await.is_empty());
}

#[tokio::test]
async fn migrations_history_is_imported_with_its_checksums() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("import_migrations"));
    let folder = h.dir.path().join("m");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("001_a.sql"), "CREATE TABLE a (id int);").unwrap();
    let program = {
        let (db, folder) = (db.clone(), folder.clone());
        h.program(move |stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            stack.resource::<Migrations>("m", MigrationsArgs::from_dir(&database.name, &folder).expect("folder reads"));
        })
    };
    h.up(&program).await;
    // A second stack (fresh state) imports what the first one applied.
    let other = Harness::new();
    other.import::<Migrations>("m", &format!("{db}.public.stackwright_migrations")).await;
    let state = other.state().await;
    let inputs = &state.resources[&stackwright::Urn::from("m")].inputs;
    let expected = stackwright_postgres::migrations::checksum(b"CREATE TABLE a (id int);");
    assert_eq!(inputs["migrations"], serde_json::json!([{"version": "001_a", "checksum": expected}]));
    assert_eq!(state.resources[&stackwright::Urn::from("m")].outputs["version"], "001_a");
    h.destroy(&program).await;
}
