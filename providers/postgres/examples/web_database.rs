//! The database side of a web stack, with the PostgreSQL provider: a migration role that owns
//! the database and runs the migrations, an application user with a generated password, a
//! reporting role, `pgcrypto`, grants for what exists, default privileges for what migrations
//! create later, and a secret `DATABASE_URL` for the application.
//!
//! ```sh
//! PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres REPORTING_PASSWORD=change-me \
//!   cargo run -p stackwright-postgres --example web_database -- up --stack dev --yes
//! ```

use stackwright::{ResourceOptions, Stack};
use stackwright_postgres::{
    Database, DatabaseArgs, DefaultObject, DefaultPrivileges, DefaultPrivilegesArgs, Extension, ExtensionArgs, Grant,
    GrantArgs, GrantObject, Migrations, MigrationsArgs, PostgresProvider, Role, RoleArgs, Schema, SchemaArgs,
};

fn main() -> std::process::ExitCode {
    stackwright::run(|stack: &mut Stack| {
        let env = stack.name().to_owned();
        // The admin URL holds a password: it comes from the environment, not the repository.
        let admin_url = std::env::var("PG_ADMIN_URL")?;
        let pg = PostgresProvider::from_url(&admin_url)?;
        stack.provider(pg.provider());

        // Roles. `RoleArgs::user` logs in with a generated password (a secret output).
        let migrator = stack.resource::<Role>(
            "migrator",
            RoleArgs { reassign_owned_to: Some(pg.config().user.clone()), ..RoleArgs::new(format!("{env}_migrator")) },
        );
        let app = stack.resource::<Role>(
            "app",
            RoleArgs {
                connection_limit: 40,
                statement_timeout: Some("30s".into()),
                search_path: Some(vec!["app".into(), "public".into()]),
                drop_owned: true,
                ..RoleArgs::user(format!("{env}_app"))
            },
        );
        let reporting = stack.resource::<Role>(
            "reporting",
            RoleArgs {
                login: true,
                password: Some(std::env::var("REPORTING_PASSWORD")?.into()),
                drop_owned: true,
                ..RoleArgs::new(format!("{env}_reporting"))
            },
        );

        // The database and what lives in it. Wiring `db.name` (rather than repeating the name)
        // makes everything inside it wait for it, and be deleted before it.
        let db = stack.resource_with::<Database>(
            "db",
            DatabaseArgs {
                owner: Some(migrator.name.clone().into()),
                template: Some("template0".into()),
                encoding: Some("UTF8".into()),
                lc_collate: Some("C".into()),
                lc_ctype: Some("C".into()),
                ..DatabaseArgs::new(format!("shop_{env}"))
            },
            // A database name is unique: a replacement must drop the old one first. In production,
            // add `.protect()` so no plan can drop it.
            ResourceOptions::new().delete_before_replace(),
        );
        // `drop_cascade` lets `destroy` drop them with the tables the migrations made; a schema
        // or extension that still holds objects is otherwise never dropped.
        let schema = stack.resource::<Schema>(
            "schema",
            SchemaArgs {
                owner: Some(migrator.name.clone().into()),
                drop_cascade: true,
                ..SchemaArgs::new(&db.name, "app")
            },
        );
        let pgcrypto = stack.resource::<Extension>(
            "pgcrypto",
            ExtensionArgs {
                schema: Some("public".into()),
                drop_cascade: true,
                ..ExtensionArgs::new(&db.name, "pgcrypto")
            },
        );

        // Nobody connects unless granted.
        stack.resource::<Grant>("no-public-connect", GrantArgs::new(&db.name, "public", GrantObject::Database, &[]));
        for (key, role) in [("app", &app), ("reporting", &reporting)] {
            stack.resource::<Grant>(
                &format!("{key}-connect"),
                GrantArgs::new(&db.name, &role.name, GrantObject::Database, &["CONNECT"]),
            );
            stack.resource::<Grant>(
                &format!("{key}-usage"),
                GrantArgs::new(&db.name, &role.name, GrantObject::Schema, &["USAGE"]).in_schema(&schema.name),
            );
        }

        // Privileges on what the migrations will create. Default privileges are keyed on the
        // creating role, so the migrations run as `migrator`.
        let app_tables = stack.resource::<DefaultPrivileges>(
            "app-tables",
            DefaultPrivilegesArgs::new(
                &db.name,
                &migrator.name,
                &app.name,
                DefaultObject::Tables,
                &["SELECT", "INSERT", "UPDATE", "DELETE"],
            )
            .in_schema(&schema.name),
        );
        let app_sequences = stack.resource::<DefaultPrivileges>(
            "app-sequences",
            DefaultPrivilegesArgs::new(&db.name, &migrator.name, &app.name, DefaultObject::Sequences, &["USAGE"])
                .in_schema(&schema.name),
        );
        let reporting_tables = stack.resource::<DefaultPrivileges>(
            "reporting-tables",
            DefaultPrivilegesArgs::new(&db.name, &migrator.name, &reporting.name, DefaultObject::Tables, &["SELECT"])
                .in_schema(&schema.name),
        );
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migrations");
        let migrations = stack.resource_with::<Migrations>(
            "migrations",
            MigrationsArgs::from_dir(&db.name, folder)?.run_as(&migrator.name),
            ResourceOptions::new()
                .depends_on(&app_tables)
                .depends_on(&app_sequences)
                .depends_on(&reporting_tables)
                .depends_on(&pgcrypto),
        );

        // Secret, ready for `DATABASE_URL` of a Railway service or a Vercel project.
        stack.export("database_url", pg.connection_url(&app, &db));
        stack.export("schema_version", migrations.version.clone());
        Ok(())
    })
}
