//! The typed connection URL: a secret output for a role and a database, ready to hand to an
//! application, that really connects.

use serde_json::json;
use stackwright::core::value::{is_secret, reveal};
use stackwright::{Data, DataArgs};
use stackwright_postgres::{Database, DatabaseArgs, Role, RoleArgs, connection_url_at};

use crate::common::*;

#[tokio::test]
async fn connection_url_is_secret_and_connects_as_the_role() {
    let mut h = Harness::new();
    let db = h.cleanup.database(&unique("App Db"));
    let role = h.cleanup.role(&unique("app user"));
    let pg = h.pg.clone();
    let (d, r) = (db.clone(), role.clone());
    let program = h.program(move |stack| {
        let user = stack.resource::<Role>("user", RoleArgs::user(r.clone()));
        let database = stack.resource::<Database>(
            "db",
            DatabaseArgs { owner: Some(user.name.clone().into()), ..DatabaseArgs::new(d.clone()) },
        );
        let url = pg.connection_url(&user, &database);
        assert!(url.is_secret());
        // Handed to another resource as an environment variable.
        stack.resource::<Data>("service", DataArgs::new(url.map(|u| json!({ "env": { "DATABASE_URL": u } }))));
        stack.export("database_url", url);
        stack.export("internal_url", connection_url_at("db.internal", 6432, &user, &database));
    });
    let report = h.up(&program).await;
    let rendered = stackwright::render::plan(&report.plan);
    let state = h.state().await;
    let exported = &state.exports["database_url"];
    assert!(is_secret(exported), "{exported}");
    let url = reveal(exported.clone()).0.as_str().expect("a URL").to_owned();
    let password = h.outputs("user").await["password"].as_str().unwrap().to_owned();
    assert!(!rendered.contains(&password), "the plan shows no password:\n{rendered}");
    let service_input = &state.resources[&stackwright::Urn::from("service")].inputs["input"];
    assert!(is_secret(service_input), "{service_input}");

    let config: tokio_postgres::Config = url.parse().expect("the URL parses");
    assert_eq!(config.get_user(), Some(role.as_str()));
    assert_eq!(config.get_dbname(), Some(db.as_str()));
    assert_eq!(config.get_password(), Some(password.as_bytes()));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("the URL connects");
    tokio::spawn(connection);
    let row = client.query_one("SELECT current_user::text, current_database()::text", &[]).await.unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1)), (role.clone(), db.clone()));
    drop(client);

    let internal = reveal(state.exports["internal_url"].clone()).0;
    assert!(internal.as_str().unwrap().starts_with("postgres://app%20user"), "{internal}");
    assert!(internal.as_str().unwrap().contains("@db.internal:6432/App%20Db"), "{internal}");
    h.destroy(&program).await;
}
