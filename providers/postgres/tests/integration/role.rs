//! `postgres:Role`: lifecycle with attributes, settings, memberships and a generated password;
//! rename; drift (`ALTER ROLE … CONNECTION LIMIT 5` by hand) shown by refresh and repaired by
//! `up`; delete that drops what the role owns in other databases.

use stackwright::StepOp;
use stackwright_postgres::{Database, DatabaseArgs, Role, RoleArgs};

use crate::common::*;

fn role_row_sql() -> &'static str {
    "SELECT concat_ws('|', rolcanlogin, rolcreatedb, rolinherit, rolconnlimit,
                      COALESCE(rolvaliduntil::date::text, 'forever'),
                      array_to_string(rolconfig, ';'),
                      (SELECT string_agg(pg_get_userbyid(roleid), ',' ORDER BY 1) FROM pg_auth_members WHERE member = r.oid))
       FROM pg_roles r WHERE rolname = $1"
}

#[tokio::test]
async fn role_lifecycle_with_settings_memberships_rename_and_generated_password() {
    let mut h = Harness::new();
    let group = h.cleanup.role(&unique("Readers \"Group\""));
    let name = h.cleanup.role(&unique("App User"));
    let renamed = h.cleanup.role(&format!("{name} v2"));

    let declare = |role_name: String, v2: bool| {
        let group = group.clone();
        move |stack: &mut stackwright::Stack| {
            let g = stack.resource::<Role>("group", RoleArgs::new(group.clone()));
            let mut args = RoleArgs {
                create_database: true,
                connection_limit: 4,
                valid_until: Some("2100-01-01".into()),
                search_path: Some(vec!["app".into(), "My Schema".into(), "public".into()]),
                statement_timeout: Some("30s".into()),
                ..RoleArgs::user(role_name.clone())
            };
            args.member_of = vec![group.clone()];
            if v2 {
                args.member_of.clear();
                args.search_path = None;
                args.create_database = false;
                args.valid_until = None;
            }
            stack.resource_with::<Role>("app", args, stackwright::ResourceOptions::new().depends_on(&g));
        }
    };
    let v1 = h.program(declare(name.clone(), false));
    h.up(&v1).await;
    let row = one("postgres", role_row_sql(), &[&name]).await;
    assert_eq!(
        row.as_deref(),
        Some(
            format!("t|t|t|4|2100-01-01|search_path=app, \"My Schema\", public;statement_timeout=30s|{group}").as_str()
        )
    );
    let password = h.outputs("app").await["password"].as_str().expect("a generated password").to_owned();
    assert_eq!(password.len(), 64);
    // Stored as a SCRAM verifier, never in plain text.
    let stored = one("postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&name]).await.unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
    // The password output is secret in the state.
    let state = h.state().await;
    let raw = &state.resources[&stackwright::Urn::from("app")].outputs["password"];
    assert!(stackwright::core::value::is_secret(raw), "{raw}");
    assert_no_changes(&h.preview(&v1, true).await.plan);

    // Rename plus attribute, membership and setting changes, in place; the password is kept.
    let v2 = h.program(declare(renamed.clone(), true));
    assert_eq!(step(&h.preview(&v2, false).await.plan, "app"), StepOp::Update);
    h.up(&v2).await;
    assert!(query("postgres", "SELECT rolname::text FROM pg_roles WHERE rolname = $1", &[&name]).await.is_empty());
    let row = one("postgres", role_row_sql(), &[&renamed]).await;
    assert_eq!(row.as_deref(), Some("t|f|t|4|infinity|statement_timeout=30s"));
    assert_eq!(h.outputs("app").await["password"], password.as_str());
    let still = one("postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&renamed]).await.unwrap();
    assert_eq!(still, stored, "the password did not change");
    assert_no_changes(&h.preview(&v2, true).await.plan);

    h.destroy(&v2).await;
    let left = query(
        "postgres",
        "SELECT rolname::text FROM pg_roles WHERE rolname IN ($1, $2, $3)",
        &[&name, &renamed, &group],
    )
    .await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn role_connection_limit_drift_is_shown_and_repaired() {
    let mut h = Harness::new();
    let name = h.cleanup.role(&unique("drifter"));
    let n = name.clone();
    let program = h.program(move |stack| {
        let password = Some("fixed-Secret-1".to_owned().into());
        stack.resource::<Role>("role", RoleArgs { login: true, password, ..RoleArgs::new(n.clone()) });
    });
    h.up(&program).await;
    sql("postgres", &format!("ALTER ROLE \"{name}\" CONNECTION LIMIT 5")).await;

    // Refresh records the drift in the state…
    let drift = h.engine.refresh(STACK, &program).await.expect("refresh runs");
    assert_eq!(drift.len(), 1);
    let change =
        drift[0].changes.iter().find(|c| c.path.to_string() == "connection_limit").expect("connection_limit drift");
    assert_eq!(change.old, Some(serde_json::json!(-1)));
    assert_eq!(change.new, Some(serde_json::json!(5)));
    // …so the next plan repairs it, and the password is not part of the drift.
    let plan = h.preview(&program, false).await.plan;
    assert_eq!(changed_paths(&plan, "role"), vec!["connection_limit"]);
    h.up(&program).await;
    assert_eq!(
        one("postgres", "SELECT rolconnlimit::text FROM pg_roles WHERE rolname = $1", &[&name]).await.as_deref(),
        Some("-1")
    );
    assert_no_changes(&h.preview(&program, true).await.plan);
    h.destroy(&program).await;
}

#[tokio::test]
async fn a_changed_password_is_set_and_an_unchanged_one_is_not() {
    let mut h = Harness::new();
    let name = h.cleanup.role(&unique("pw"));
    let declare = |password: &'static str| {
        let n = name.clone();
        move |stack: &mut stackwright::Stack| {
            let password = Some(password.to_owned().into());
            stack.resource::<Role>("role", RoleArgs { login: true, password, ..RoleArgs::new(n.clone()) });
        }
    };
    let verifier = || {
        let name = name.clone();
        async move { one("postgres", "SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&name]).await }
    };
    let first = h.program(declare("first-Secret"));
    h.up(&first).await;
    let v1 = verifier().await.expect("a password is set");
    assert!(v1.starts_with("SCRAM-SHA-256$4096:"), "{v1}");
    h.up_refresh(&first).await;
    assert_eq!(verifier().await.as_deref(), Some(v1.as_str()), "an unchanged password is not reset");
    let second = h.program(declare("second-Secret"));
    let plan = h.preview(&second, false).await.plan;
    assert_eq!(changed_paths(&plan, "role"), vec!["password"]);
    assert!(!stackwright::render::plan(&plan).contains("second-Secret"), "the plan hides the password");
    h.up(&second).await;
    let v2 = verifier().await.expect("a password is set");
    assert!(v2.starts_with("SCRAM-SHA-256$") && v2 != v1, "{v2}");
    h.destroy(&second).await;
}

#[tokio::test]
async fn deleting_a_role_reassigns_what_it_owns_to_an_heir() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("heritage"));
    let heir = h.cleanup.role(&unique("Heir"));
    let name = h.cleanup.role(&unique("leaver"));
    let (d, n, hr) = (db.clone(), name.clone(), heir.clone());
    let program = h.program(move |stack| {
        stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
        let heir = stack.resource::<Role>("heir", RoleArgs::new(hr.clone()));
        stack.resource_with::<Role>(
            "leaver",
            RoleArgs { reassign_owned_to: Some(hr.clone()), ..RoleArgs::new(n.clone()) },
            stackwright::ResourceOptions::new().depends_on(&heir),
        );
    });
    h.up(&program).await;
    sql(&db, &format!("CREATE TABLE inherited (id int); ALTER TABLE inherited OWNER TO {name}")).await;
    let (d, hr) = (db.clone(), heir.clone());
    let without = h.program(move |stack| {
        stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
        stack.resource::<Role>("heir", RoleArgs::new(hr.clone()));
    });
    h.up(&without).await;
    assert!(query("postgres", "SELECT rolname::text FROM pg_roles WHERE rolname = $1", &[&name]).await.is_empty());
    let owner = one(&db, "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE relname = 'inherited'", &[]).await;
    assert_eq!(owner.as_deref(), Some(heir.as_str()));
    sql(&db, "DROP TABLE inherited").await;
    h.destroy(&without).await;
}

#[tokio::test]
async fn deleting_a_role_drops_what_it_owns_in_other_databases() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("owned"));
    let name = h.cleanup.role(&unique("owner"));
    let (d, n) = (db.clone(), name.clone());
    let declare = |drop_owned: bool| {
        let (d, n) = (d.clone(), n.clone());
        move |stack: &mut stackwright::Stack| {
            stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
            stack.resource::<Role>("role", RoleArgs { drop_owned, ..RoleArgs::new(n.clone()) });
        }
    };
    let without = h.program(declare(false));
    h.up(&without).await;
    sql(&db, &format!("CREATE TABLE owned_by_role (id int); ALTER TABLE owned_by_role OWNER TO \"{name}\"")).await;

    // Removing the role from the program fails clearly while it owns objects…
    let only_db = {
        let d = db.clone();
        h.program(move |stack| {
            stack.resource::<Database>("db", DatabaseArgs::new(d.clone()));
        })
    };
    let failures = h.up_failing(&only_db).await;
    assert!(
        failures.iter().any(|f| f.contains("2BP01") && f.contains("drop_owned") && f.contains(&db)),
        "{failures:?}"
    );
    // …and succeeds once it is told to drop what it owns.
    h.up(&h.program(declare(true))).await;
    h.up(&only_db).await;
    assert!(query("postgres", "SELECT rolname::text FROM pg_roles WHERE rolname = $1", &[&name]).await.is_empty());
    assert!(query(&db, "SELECT relname::text FROM pg_class WHERE relname = 'owned_by_role'", &[]).await.is_empty());
    h.destroy(&only_db).await;
}
