//! `postgres:Database`: lifecycle, drift and repair, replacement on an encoding change.

use stackwright::{ResourceOptions, StepOp};
use stackwright_postgres::{Database, DatabaseArgs, Role, RoleArgs};

use crate::common::*;

#[tokio::test]
async fn database_is_created_updated_renamed_and_dropped() {
    let mut h = Harness::new();
    let owner = h.cleanup.role(&unique("Db Owner"));
    let name = h.cleanup.database(&unique("lifecycle"));
    let renamed = h.cleanup.database(&format!("{name} Renamed"));

    let declare = |db_name: String, limit: i32, allow: bool, template: bool| {
        let owner = owner.clone();
        move |stack: &mut stackwright::Stack| {
            let role = stack.resource::<Role>("owner", RoleArgs::new(owner.clone()));
            stack.resource::<Database>(
                "db",
                DatabaseArgs {
                    owner: Some(role.name.clone().into()),
                    connection_limit: limit,
                    allow_connections: allow,
                    is_template: template,
                    ..DatabaseArgs::new(db_name.clone())
                },
            );
        }
    };
    let v1 = h.program(declare(name.clone(), 3, true, false));
    h.up(&v1).await;
    let row = one(
        "postgres",
        "SELECT concat_ws('|', pg_get_userbyid(datdba), datconnlimit, datallowconn) FROM pg_database WHERE datname = $1",
        &[&name],
    )
    .await;
    assert_eq!(row.as_deref(), Some(format!("{owner}|3|t").as_str()));
    let out = h.outputs("db").await;
    assert_eq!(out["owner"], owner.as_str());
    assert_eq!(out["encoding"], "UTF8");

    // Nothing changed: nothing to do.
    assert_no_changes(&h.preview(&v1, true).await.plan);

    // In-place update.
    let v2 = h.program(declare(name.clone(), 10, false, true));
    let plan = h.preview(&v2, false).await.plan;
    assert_eq!(step(&plan, "db"), StepOp::Update);
    h.up(&v2).await;
    let row = one(
        "postgres",
        "SELECT concat_ws('|', datconnlimit, datallowconn, datistemplate) FROM pg_database WHERE datname = $1",
        &[&name],
    )
    .await;
    assert_eq!(row.as_deref(), Some("10|f|t"));

    // A new name is a rename, not a replacement.
    let v3 = h.program(declare(renamed.clone(), 10, true, true));
    assert_eq!(step(&h.preview(&v3, false).await.plan, "db"), StepOp::Update);
    h.up(&v3).await;
    let names =
        query("postgres", "SELECT datname::text FROM pg_database WHERE datname IN ($1, $2)", &[&name, &renamed]).await;
    assert_eq!(names, vec![Some(renamed.clone())]);
    assert_no_changes(&h.preview(&v3, true).await.plan);

    // A session still connected does not stop the drop (nor does being a template).
    let session = connect(&renamed).await;
    session.query_one("SELECT 1", &[]).await.expect("connected");
    h.destroy(&v3).await;
    assert!(session.query_one("SELECT 1", &[]).await.is_err(), "the session was terminated");
    let left =
        query("postgres", "SELECT datname::text FROM pg_database WHERE datname IN ($1, $2)", &[&name, &renamed]).await;
    assert!(left.is_empty(), "{left:?}");
    assert!(query("postgres", "SELECT rolname::text FROM pg_roles WHERE rolname = $1", &[&owner]).await.is_empty());
}

#[tokio::test]
async fn database_drift_is_shown_by_refresh_and_repaired_by_up() {
    let mut h = Harness::new();
    let name = h.cleanup.database(&unique("drift"));
    let intruder = h.cleanup.role(&unique("intruder"));
    let n = name.clone();
    let program = h.program(move |stack| {
        stack.resource::<Database>("db", DatabaseArgs::new(n.clone()));
    });
    h.up(&program).await;

    sql(
        "postgres",
        &format!("CREATE ROLE \"{intruder}\"; ALTER DATABASE \"{name}\" CONNECTION LIMIT 7; ALTER DATABASE \"{name}\" OWNER TO \"{intruder}\""),
    )
    .await;

    let preview = h.preview(&program, true).await;
    let drift = preview.drift.iter().find(|d| d.urn.as_str() == "db").expect("drift on db");
    let paths: Vec<String> = drift.changes.iter().map(|c| c.path.to_string()).collect();
    assert!(paths.contains(&"connection_limit".to_string()), "{paths:?}");
    assert!(paths.contains(&"owner".to_string()), "{paths:?}");
    assert_eq!(step(&preview.plan, "db"), StepOp::Update);

    let report = h.up_refresh(&program).await;
    assert_eq!(report.changed, 1);
    let row = one(
        "postgres",
        "SELECT concat_ws('|', pg_get_userbyid(datdba), datconnlimit) FROM pg_database WHERE datname = $1",
        &[&name],
    )
    .await;
    assert_eq!(row.as_deref(), Some("postgres|-1"));
    assert_no_changes(&h.preview(&program, true).await.plan);
    h.destroy(&program).await;
}

#[tokio::test]
async fn changing_the_encoding_replaces_the_database() {
    let mut h = Harness::new();
    let name = h.cleanup.database(&unique("Encoding Db"));
    let declare = |encoding: &'static str, delete_first: bool| {
        let n = name.clone();
        move |stack: &mut stackwright::Stack| {
            let args = DatabaseArgs {
                template: Some("template0".into()),
                encoding: Some(encoding.into()),
                lc_collate: Some("C".into()),
                lc_ctype: Some("C".into()),
                ..DatabaseArgs::new(n.clone())
            };
            let opts =
                if delete_first { ResourceOptions::new().delete_before_replace() } else { ResourceOptions::new() };
            stack.resource_with::<Database>("db", args, opts);
        }
    };
    let utf8 = h.program(declare("utf8", false));
    h.up(&utf8).await;
    // `utf8` and the server's `UTF8` are the same encoding: no drift.
    assert_no_changes(&h.preview(&utf8, true).await.plan);
    sql(&name, "CREATE TABLE marker (id int)").await;

    let ascii = h.program(declare("SQL_ASCII", false));
    let plan = h.preview(&ascii, false).await.plan;
    assert!(matches!(step(&plan, "db"), StepOp::Replace { .. }), "{plan:#?}");
    assert!(plan.steps[0].changes.iter().any(|c| c.path.to_string() == "encoding" && c.replaces));

    // Create-before-delete cannot work for a unique name: the error says what to do.
    let failures = h.up_failing(&ascii).await;
    assert!(
        failures.iter().any(|f| f.contains("delete_before_replace") && f.contains("already exists")),
        "{failures:?}"
    );

    let ascii = h.program(declare("SQL_ASCII", true));
    let plan = h.preview(&ascii, false).await.plan;
    assert_eq!(step(&plan, "db"), StepOp::Replace { delete_before_create: true });
    h.up(&ascii).await;
    let encoding =
        one("postgres", "SELECT pg_encoding_to_char(encoding)::text FROM pg_database WHERE datname = $1", &[&name])
            .await;
    assert_eq!(encoding.as_deref(), Some("SQL_ASCII"));
    // A new database: the old one's table is gone.
    assert_eq!(
        one(&name, "SELECT count(*)::text FROM pg_class WHERE relname = 'marker'", &[]).await.as_deref(),
        Some("0")
    );
    assert_eq!(h.outputs("db").await["encoding"], "SQL_ASCII");
    h.destroy(&ascii).await;
}
