//! `postgres:Extension`: install a given version into a schema, update it and move it in place,
//! repair a schema changed by hand, and drop it.

use stackwright::StepOp;
use stackwright_postgres::{Database, DatabaseArgs, Extension, ExtensionArgs, Schema, SchemaArgs};

use crate::common::*;

fn ext_row() -> &'static str {
    "SELECT e.extversion || '|' || n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
      WHERE e.extname = 'hstore'"
}

#[tokio::test]
async fn extension_is_installed_updated_moved_and_dropped() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("ext"));
    let declare = |version: &'static str, schema: &'static str| {
        let db = db.clone();
        move |stack: &mut stackwright::Stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            let s = stack.resource::<Schema>("schema", SchemaArgs::new(&database.name, "Extensions Here"));
            let schema_name =
                if schema == "public" { stackwright::Output::new("public".to_owned()) } else { s.name.clone() };
            stack.resource::<Extension>(
                "hstore",
                ExtensionArgs {
                    schema: Some(schema_name.into()),
                    version: Some(version.into()),
                    cascade: true,
                    ..ExtensionArgs::new(&database.name, "hstore")
                },
            );
        }
    };
    let v1 = h.program(declare("1.7", "own"));
    h.up(&v1).await;
    assert_eq!(one(&db, ext_row(), &[]).await.as_deref(), Some("1.7|Extensions Here"));
    let out = h.outputs("hstore").await;
    assert_eq!((out["version"].as_str(), out["schema"].as_str()), (Some("1.7"), Some("Extensions Here")));
    assert_no_changes(&h.preview(&v1, true).await.plan);

    let v2 = h.program(declare("1.8", "public"));
    let plan = h.preview(&v2, false).await.plan;
    assert_eq!(step(&plan, "hstore"), StepOp::Update);
    h.up(&v2).await;
    assert_eq!(one(&db, ext_row(), &[]).await.as_deref(), Some("1.8|public"));

    // Moved by hand: drift, repaired.
    sql(&db, "ALTER EXTENSION hstore SET SCHEMA \"Extensions Here\"").await;
    let preview = h.preview(&v2, true).await;
    assert_eq!(changed_paths(&preview.plan, "hstore"), vec!["schema"]);
    h.up_refresh(&v2).await;
    assert_eq!(one(&db, ext_row(), &[]).await.as_deref(), Some("1.8|public"));

    h.destroy(&v2).await;
    assert!(query("postgres", "SELECT datname::text FROM pg_database WHERE datname = $1", &[&db]).await.is_empty());
}

#[tokio::test]
async fn dropping_an_extension_removes_it_from_the_database() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("ext_drop"));
    let with_ext = {
        let db = db.clone();
        h.program(move |stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            stack.resource::<Extension>("citext", ExtensionArgs::new(&database.name, "citext"));
            // `earthdistance` requires `cube`: `cascade` installs it too.
            stack.resource::<Extension>(
                "earthdistance",
                ExtensionArgs {
                    cascade: true,
                    drop_cascade: true,
                    ..ExtensionArgs::new(&database.name, "earthdistance")
                },
            );
        })
    };
    let without = {
        let db = db.clone();
        h.program(move |stack| {
            stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
        })
    };
    h.up(&with_ext).await;
    let installed = "SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1";
    assert_eq!(
        query(&db, installed, &[]).await,
        vec![Some("citext".to_owned()), Some("cube".to_owned()), Some("earthdistance".to_owned())]
    );
    assert_no_changes(&h.preview(&with_ext, true).await.plan);
    let plan = h.preview(&without, false).await.plan;
    assert_eq!(step(&plan, "citext"), StepOp::Delete);
    h.up(&without).await;
    assert_eq!(query(&db, installed, &[]).await, vec![Some("cube".to_owned())]);
    h.destroy(&without).await;
}
