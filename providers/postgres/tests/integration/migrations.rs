//! `postgres:Migrations`: apply a folder once, re-run is a no-op, new files apply alone, an
//! edited applied file is refused with a clear error, and the output says the version.

use stackwright::StepOp;
use stackwright_postgres::{
    Database, DatabaseArgs, DefaultObject, DefaultPrivileges, DefaultPrivilegesArgs, Migrations, MigrationsArgs, Role,
    RoleArgs,
};

use crate::common::*;

#[tokio::test]
async fn migrations_apply_once_and_refuse_edited_files() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("migrate"));
    let folder = h.dir.path().join("migrations");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("001_create.sql"), "CREATE TABLE items (id int PRIMARY KEY, name text);").unwrap();
    std::fs::write(folder.join("002_seed.sql"), "INSERT INTO items VALUES (1, 'one'), (2, 'two');").unwrap();

    // The program reads the folder each time it runs, as a real program does.
    let program = {
        let (db, folder) = (db.clone(), folder.clone());
        h.program(move |stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            let args = MigrationsArgs::from_dir(&database.name, &folder).expect("folder reads");
            let m = stack.resource::<Migrations>("migrations", args);
            stack.export("schema_version", m.version.clone());
        })
    };
    h.up(&program).await;
    assert_eq!(one(&db, "SELECT count(*)::text FROM items", &[]).await.as_deref(), Some("2"));
    let history =
        query(&db, "SELECT version || ':' || left(checksum, 8) FROM stackwright_migrations ORDER BY 1", &[]).await;
    assert_eq!(history.len(), 2);
    assert_eq!(h.outputs("migrations").await["version"], "002_seed");
    assert_eq!(h.state().await.exports["schema_version"], "002_seed");

    // Re-running changes nothing and runs nothing.
    assert_no_changes(&h.preview(&program, true).await.plan);
    let report = h.up_refresh(&program).await;
    assert_eq!(report.changed, 0);
    assert_eq!(one(&db, "SELECT count(*)::text FROM items", &[]).await.as_deref(), Some("2"));

    // A new file applies alone.
    std::fs::write(folder.join("003_more.sql"), "INSERT INTO items VALUES (3, 'three');").unwrap();
    let plan = h.preview(&program, false).await.plan;
    assert_eq!(step(&plan, "migrations"), StepOp::Update);
    assert_eq!(changed_paths(&plan, "migrations"), vec!["migrations[2]"]);
    h.up(&program).await;
    assert_eq!(one(&db, "SELECT count(*)::text FROM items", &[]).await.as_deref(), Some("3"));
    assert_eq!(h.outputs("migrations").await["version"], "003_more");

    // A history row removed by hand is drift: refresh shows it and up re-applies that file.
    sql(&db, "DELETE FROM items WHERE id = 3; DELETE FROM stackwright_migrations WHERE version = '003_more'").await;
    let preview = h.preview(&program, true).await;
    assert_eq!(step(&preview.plan, "migrations"), StepOp::Update);
    h.up_refresh(&program).await;
    assert_eq!(one(&db, "SELECT count(*)::text FROM items", &[]).await.as_deref(), Some("3"));

    // Editing an applied file is refused, and nothing runs.
    std::fs::write(folder.join("002_seed.sql"), "INSERT INTO items VALUES (1, 'uno'), (2, 'dos');").unwrap();
    std::fs::write(folder.join("004_after.sql"), "INSERT INTO items VALUES (4, 'four');").unwrap();
    let failures = h.up_failing(&program).await;
    assert!(
        failures
            .iter()
            .any(|f| f.contains("002_seed") && f.contains("already applied") && f.contains("must not change")),
        "{failures:?}"
    );
    assert_eq!(one(&db, "SELECT count(*)::text FROM items", &[]).await.as_deref(), Some("3"));
    assert_eq!(one(&db, "SELECT name FROM items WHERE id = 1", &[]).await.as_deref(), Some("one"));

    // A failing migration rolls back alone and names its file.
    std::fs::write(folder.join("002_seed.sql"), "INSERT INTO items VALUES (1, 'one'), (2, 'two');").unwrap();
    std::fs::write(folder.join("004_after.sql"), "INSERT INTO items VALUES (4, 'four'); SELEC broken;").unwrap();
    let failures = h.up_failing(&program).await;
    assert!(failures.iter().any(|f| f.contains("004_after.sql") && f.contains("42601")), "{failures:?}");
    assert_eq!(one(&db, "SELECT count(*)::text FROM items", &[]).await.as_deref(), Some("3"));
    std::fs::write(folder.join("004_after.sql"), "INSERT INTO items VALUES (4, 'four');").unwrap();
    h.up(&program).await;
    assert_eq!(one(&db, "SELECT count(*)::text FROM items", &[]).await.as_deref(), Some("4"));
    h.destroy(&program).await;
}

#[tokio::test]
async fn a_new_file_that_sorts_before_applied_ones_is_refused() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("migrate_order"));
    let folder = h.dir.path().join("migrations");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("002_b.sql"), "CREATE TABLE b (id int);").unwrap();
    let program = {
        let (db, folder) = (db.clone(), folder.clone());
        h.program(move |stack| {
            let database = stack.resource::<Database>("db", DatabaseArgs::new(db.clone()));
            stack.resource::<Migrations>(
                "migrations",
                MigrationsArgs::from_dir(&database.name, &folder).expect("folder reads"),
            );
        })
    };
    h.up(&program).await;
    std::fs::write(folder.join("001_a.sql"), "CREATE TABLE a (id int);").unwrap();
    let failures = h.up_failing(&program).await;
    assert!(failures.iter().any(|f| f.contains("001_a") && f.contains("sorts before 002_b")), "{failures:?}");
    assert!(query(&db, "SELECT relname::text FROM pg_class WHERE relname = 'a'", &[]).await.is_empty());
    h.destroy(&program).await;
}

#[tokio::test]
async fn migrations_run_as_their_owner_so_default_privileges_apply() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("migrate_as"));
    let migrator = h.cleanup.role(&unique("Migrator"));
    let app = h.cleanup.role(&unique("app"));
    let folder = h.dir.path().join("migrations");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("001_accounts.sql"), "CREATE TABLE accounts (id int);").unwrap();
    let program = {
        let (db, migrator, app, folder) = (db.clone(), migrator.clone(), app.clone(), folder.clone());
        h.program(move |stack| {
            let owner =
                stack.resource::<Role>("migrator", RoleArgs { drop_owned: true, ..RoleArgs::new(migrator.clone()) });
            let user = stack.resource::<Role>("app", RoleArgs { drop_owned: true, ..RoleArgs::user(app.clone()) });
            let database = stack.resource::<Database>(
                "db",
                DatabaseArgs { owner: Some(owner.name.clone().into()), ..DatabaseArgs::new(db.clone()) },
            );
            let defaults = stack.resource::<DefaultPrivileges>(
                "defaults",
                DefaultPrivilegesArgs::new(
                    &database.name,
                    &owner.name,
                    &user.name,
                    DefaultObject::Tables,
                    &["SELECT", "INSERT"],
                )
                .in_schema("public"),
            );
            stack.resource_with::<Migrations>(
                "migrations",
                MigrationsArgs::from_dir(&database.name, &folder).expect("folder reads").run_as(&owner.name),
                stackwright::ResourceOptions::new().depends_on(&defaults),
            );
        })
    };
    h.up(&program).await;
    let facts = one(
        &db,
        "SELECT concat_ws('|', pg_get_userbyid(c.relowner), has_table_privilege($1, 'accounts', 'INSERT'),
                          has_table_privilege($1, 'accounts', 'DELETE'),
                          (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'stackwright_migrations'))
           FROM pg_class c WHERE c.relname = 'accounts'",
        &[&app],
    )
    .await;
    assert_eq!(facts, Some(format!("{migrator}|t|f|{migrator}")));
    assert_no_changes(&h.preview(&program, true).await.plan);
    h.destroy(&program).await;
}
