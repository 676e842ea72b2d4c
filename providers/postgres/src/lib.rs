//! The PostgreSQL provider for Stackwright: databases, roles, schemas, extensions, grants,
//! default privileges and migrations, read back from the system catalogs so that changes made
//! by hand show as drift and are repaired by `up`.
//!
//! ```no_run
//! use stackwright_postgres::{Database, DatabaseArgs, PostgresProvider, Role, RoleArgs};
//!
//! # fn program(stack: &mut stackwright::Stack) -> Result<(), Box<dyn std::error::Error>> {
//! let pg = PostgresProvider::from_url("postgres://postgres@127.0.0.1:5432/postgres")?;
//! stack.provider(pg.provider());
//! let app = stack.resource::<Role>("app-role", RoleArgs::user("app"));
//! let db = stack.resource::<Database>(
//!     "app-db",
//!     DatabaseArgs { owner: Some(app.name.clone().into()), ..DatabaseArgs::new("app") },
//! );
//! // A secret `postgres://app:…@127.0.0.1:5432/app`, ready for an environment variable.
//! stack.export("database_url", pg.connection_url(&app, &db));
//! # Ok(())
//! # }
//! ```
//!
//! Errors carry the SQLSTATE and name the resource; their kind follows the SQLSTATE (see
//! [`error::kind_for_sqlstate`]), so the engine retries connection and serialization failures.

use std::sync::Arc;

use stackwright_core::{Output, Provider, ProviderError, ResourceRef, zip};

mod common;
pub mod config;
mod connection;
pub mod database;
pub mod default_privileges;
pub mod error;
pub mod extension;
pub mod grant;
pub mod ident;
pub mod migrations;
mod privileges;
pub mod role;
pub mod schema;

pub use config::{PostgresConfig, SslMode};
pub use database::{Database, DatabaseArgs, DatabaseOutputs};
pub use default_privileges::{DefaultObject, DefaultPrivileges, DefaultPrivilegesArgs, DefaultPrivilegesOutputs};
pub use extension::{Extension, ExtensionArgs, ExtensionOutputs};
pub use grant::{Grant, GrantArgs, GrantObject, GrantOutputs};
pub use migrations::{MigrationFile, Migrations, MigrationsArgs, MigrationsOutputs};
pub use role::{Role, RoleArgs, RoleOutputs};
pub use schema::{Schema, SchemaArgs, SchemaOutputs};

use connection::Connections;

/// A configured PostgreSQL provider: one server, its connection pools, and the handlers for
/// every `postgres:*` resource type. Clones share the pools.
#[derive(Clone, Debug)]
pub struct PostgresProvider {
    conns: Arc<Connections>,
    name: String,
    max_concurrency: usize,
}

impl PostgresProvider {
    /// A provider named `postgres` for the server `config` describes. Nothing connects until
    /// the first call.
    pub fn new(config: PostgresConfig) -> Self {
        PostgresProvider { conns: Arc::new(Connections::new(config)), name: "postgres".into(), max_concurrency: 8 }
    }

    /// A provider for the server at a libpq URL such as
    /// `postgres://admin:password@db.internal:5432/postgres?sslmode=disable`.
    pub fn from_url(url: &str) -> Result<Self, ProviderError> {
        let config = PostgresConfig::from_url(url)?;
        config.validate()?;
        Ok(Self::new(config))
    }

    /// Renames the provider, to manage more than one server from a program (resources pick one
    /// with `ResourceOptions::provider`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Limits how many calls run against the server at once (8 by default).
    pub fn with_max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = limit.max(1);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresConfig {
        self.conns.config()
    }

    /// The provider to register with `stack.provider(…)`.
    pub fn provider(&self) -> Provider {
        let conns = &self.conns;
        Provider::new(self.name.clone())
            .resource::<Database>(database::DatabaseHandler { conns: conns.clone() })
            .resource::<Role>(role::RoleHandler { conns: conns.clone() })
            .resource::<Schema>(schema::SchemaHandler { conns: conns.clone() })
            .resource::<Extension>(extension::ExtensionHandler { conns: conns.clone() })
            .resource::<Grant>(grant::GrantHandler { conns: conns.clone() })
            .resource::<DefaultPrivileges>(default_privileges::DefaultPrivilegesHandler { conns: conns.clone() })
            .resource::<Migrations>(migrations::MigrationsHandler { conns: conns.clone() })
            .max_concurrency(self.max_concurrency)
    }

    /// A secret connection URL for `role` to `database` on this provider's server, e.g. for a
    /// `DATABASE_URL` environment variable of a Railway service or a Vercel project.
    pub fn connection_url(&self, role: &ResourceRef<Role>, database: &ResourceRef<Database>) -> Output<String> {
        let c = self.config();
        connection_url_at(&c.host, c.port, role, database)
    }
}

/// A secret connection URL for `role` to `database` on `host:port` (for when applications reach
/// the server under another name than the provider does, such as a private network address).
pub fn connection_url_at(
    host: &str,
    port: u16,
    role: &ResourceRef<Role>,
    database: &ResourceRef<Database>,
) -> Output<String> {
    let host = host.to_owned();
    zip(&zip(&role.name, &role.password), &database.name)
        .map(move |((user, password), db): ((String, Option<String>), String)| {
            config::connection_url(&host, port, &user, password.as_deref(), &db)
        })
        .into_secret()
}
