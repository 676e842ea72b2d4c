//! `postgres:Database` — a database: owner, template, encoding and locale (which force
//! replacement), connection limit, whether connections are allowed and whether it is a template.
//!
//! `CREATE DATABASE` and `DROP DATABASE` cannot run in a transaction block, so they are sent as
//! single simple-protocol statements on a connection to the maintenance database. A drop first
//! closes the provider's own sessions, forbids new connections and uses `WITH (FORCE)` (PostgreSQL
//! 13+) or terminates other sessions on older servers. A changed name is a rename in place.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError,
    Resource, Stored,
};

use crate::common::{
    check_ident, created_by, creation_comment, is_false, keep_if_same, loose_eq, observe_default, subject, yes,
};
use crate::connection::Connections;
use crate::error::{PgResultExt, already_exists, sqlstate};
use crate::ident::{quote_ident, quote_literal};

/// The `postgres:Database` resource type. Its id is the database name it was created with.
pub struct Database;

impl Resource for Database {
    const TYPE: &'static str = "postgres:Database";
    type Args = DatabaseArgs;
    type Outputs = DatabaseOutputs;
}

/// Arguments of `postgres:Database`.
#[derive(Clone, Serialize, Deserialize, Args)]
pub struct DatabaseArgs {
    /// The database's name. A change renames it in place, which fails while other sessions are
    /// connected to it.
    pub name: Input<String>,
    /// The owning role; the provider's login when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Input<String>>,
    /// The template it is copied from (`template1` when absent). Cannot be read back.
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Character encoding, e.g. `UTF8` (the template's when absent).
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Collation order (`LC_COLLATE`), e.g. `C` (the template's when absent).
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lc_collate: Option<String>,
    /// Character classification (`LC_CTYPE`), e.g. `C` (the template's when absent).
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lc_ctype: Option<String>,
    /// How many concurrent connections it accepts; -1 for no limit.
    #[serde(default = "no_limit")]
    pub connection_limit: i32,
    /// Whether anyone can connect to it.
    #[serde(default = "yes")]
    pub allow_connections: bool,
    /// Whether it is a template any user with `CREATEDB` can clone.
    #[serde(default)]
    pub is_template: bool,
    /// Take over a database of this name that already exists, instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopt: bool,
}

fn no_limit() -> i32 {
    -1
}

impl DatabaseArgs {
    /// A database called `name` with the server's defaults.
    pub fn new(name: impl Into<Input<String>>) -> Self {
        DatabaseArgs {
            name: name.into(),
            owner: None,
            template: None,
            encoding: None,
            lc_collate: None,
            lc_ctype: None,
            connection_limit: -1,
            allow_connections: true,
            is_template: false,
            adopt: false,
        }
    }
}

/// Outputs of `postgres:Database`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct DatabaseOutputs {
    /// The database's name.
    pub name: String,
    /// The owning role.
    pub owner: String,
    /// The character encoding, as the server names it.
    #[sw(computed)]
    pub encoding: String,
    /// The collation order.
    #[sw(computed)]
    pub lc_collate: String,
    /// The character classification.
    #[sw(computed)]
    pub lc_ctype: String,
}

/// The database as the catalog `pg_database` has it.
#[derive(Debug, Clone)]
struct Actual {
    name: String,
    owner: String,
    encoding: String,
    collate: String,
    ctype: String,
    connection_limit: i32,
    allow_connections: bool,
    is_template: bool,
    comment: Option<String>,
}

async fn fetch(client: &impl GenericClient, name: &str, subject: &str) -> Result<Option<Actual>, ProviderError> {
    let row = client
        .query_opt(
            "SELECT d.datname::text, pg_catalog.pg_get_userbyid(d.datdba)::text,
                    pg_catalog.pg_encoding_to_char(d.encoding)::text, d.datcollate::text, d.datctype::text,
                    d.datconnlimit, d.datallowconn, d.datistemplate,
                    pg_catalog.shobj_description(d.oid, 'pg_database')
               FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&name],
        )
        .await
        .on(subject)?;
    Ok(row.map(|r| Actual {
        name: r.get(0),
        owner: r.get(1),
        encoding: r.get(2),
        collate: r.get(3),
        ctype: r.get(4),
        connection_limit: r.get(5),
        allow_connections: r.get(6),
        is_template: r.get(7),
        comment: r.get(8),
    }))
}

fn outputs(a: &Actual) -> DatabaseOutputs {
    DatabaseOutputs {
        name: a.name.clone(),
        owner: a.owner.clone(),
        encoding: a.encoding.clone(),
        lc_collate: a.collate.clone(),
        lc_ctype: a.ctype.clone(),
    }
}

/// The arguments as the catalogs show them, spelled like `stored` where they mean the same.
fn observed_args(stored: &DatabaseArgs, a: &Actual, login: &str) -> DatabaseArgs {
    DatabaseArgs {
        name: Input::Value(a.name.clone()),
        owner: observe_default(stored.owner.as_ref().map(|o| o.get().as_str()), &a.owner, login).map(Input::Value),
        template: stored.template.clone(),
        encoding: keep_if_same(stored.encoding.as_deref(), &a.encoding, loose_eq),
        lc_collate: keep_if_same(stored.lc_collate.as_deref(), &a.collate, loose_eq),
        lc_ctype: keep_if_same(stored.lc_ctype.as_deref(), &a.ctype, loose_eq),
        connection_limit: a.connection_limit,
        allow_connections: a.allow_connections,
        is_template: a.is_template,
        adopt: stored.adopt,
    }
}

fn create_sql(args: &DatabaseArgs) -> String {
    let mut sql = format!("CREATE DATABASE {}", quote_ident(args.name.get()));
    if let Some(owner) = &args.owner {
        sql.push_str(&format!(" OWNER {}", quote_ident(owner.get())));
    }
    if let Some(t) = &args.template {
        sql.push_str(&format!(" TEMPLATE {}", quote_ident(t)));
    }
    if let Some(e) = &args.encoding {
        sql.push_str(&format!(" ENCODING {}", quote_literal(e)));
    }
    if let Some(c) = &args.lc_collate {
        sql.push_str(&format!(" LC_COLLATE {}", quote_literal(c)));
    }
    if let Some(c) = &args.lc_ctype {
        sql.push_str(&format!(" LC_CTYPE {}", quote_literal(c)));
    }
    sql.push_str(&format!(
        " CONNECTION LIMIT {} ALLOW_CONNECTIONS {} IS_TEMPLATE {}",
        args.connection_limit, args.allow_connections, args.is_template
    ));
    sql
}

/// The handler for `postgres:Database`.
pub(crate) struct DatabaseHandler {
    pub(crate) conns: Arc<Connections>,
}

impl DatabaseHandler {
    /// Brings an existing database in line with `args` (everything that can change in place);
    /// refuses when something that cannot change in place differs.
    async fn converge(
        &self,
        client: &impl GenericClient,
        a: &Actual,
        args: &DatabaseArgs,
        subject: &str,
    ) -> Result<(), ProviderError> {
        let fixed = [
            ("encoding", &args.encoding, &a.encoding),
            ("lc_collate", &args.lc_collate, &a.collate),
            ("lc_ctype", &args.lc_ctype, &a.ctype),
        ];
        for (field, wanted, actual) in fixed {
            if let Some(w) = wanted
                && !loose_eq(w, actual)
            {
                return Err(ProviderError::invalid_input(format!(
                    "{subject}: its {field} is {actual:?}, not {w:?}, and it cannot change in place; \
                     adopt it with {field} {actual:?} or replace the database"
                )));
            }
        }
        let login = &self.conns.info().await?.current_user;
        let q = quote_ident(&a.name);
        let mut statements = Vec::new();
        let owner = args.owner.as_ref().map(|o| o.get()).unwrap_or(login);
        if *owner != a.owner {
            statements.push(format!("ALTER DATABASE {q} OWNER TO {}", quote_ident(owner)));
        }
        if args.connection_limit != a.connection_limit {
            statements.push(format!("ALTER DATABASE {q} CONNECTION LIMIT {}", args.connection_limit));
        }
        if args.allow_connections != a.allow_connections {
            statements.push(format!("ALTER DATABASE {q} ALLOW_CONNECTIONS {}", args.allow_connections));
        }
        if args.is_template != a.is_template {
            statements.push(format!("ALTER DATABASE {q} IS_TEMPLATE {}", args.is_template));
        }
        if !statements.is_empty() {
            client.batch_execute(&statements.join(";\n")).await.on(subject)?;
        }
        Ok(())
    }

    async fn observe(
        &self,
        name: &str,
        stored: &DatabaseArgs,
        id: &str,
    ) -> Result<Option<Observed<Database>>, ProviderError> {
        let subject = subject(Database::TYPE, name);
        let client = self.conns.maintenance(&subject).await?;
        let login = self.conns.info().await?.current_user.clone();
        Ok(fetch(&client, name, &subject).await?.map(|a| Observed {
            id: id.to_owned(),
            args: observed_args(stored, &a, &login),
            outputs: outputs(&a),
        }))
    }
}

#[async_trait]
impl Handler<Database> for DatabaseHandler {
    fn check(&self, args: &DatabaseArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        check_ident(&mut failures, "name", Some(&args.name));
        check_ident(&mut failures, "owner", args.owner.as_ref());
        if args.connection_limit < -1 {
            failures.push(CheckFailure::at("connection_limit", "must be -1 (no limit) or at least 0"));
        }
        failures
    }

    async fn create(&self, ctx: &OpContext, args: &DatabaseArgs) -> Result<Created<DatabaseOutputs>, ProviderError> {
        let name = args.name.get();
        let subject = subject(Database::TYPE, name);
        let client = self.conns.maintenance(&subject).await?;
        let conflict = || {
            already_exists(
                Database::TYPE,
                &format!("database {}", quote_ident(name)),
                name,
                " If this create is the new half of a replacement (template, encoding or locale changed), \
                 give the resource the `delete_before_replace` option: a database name is unique.",
            )
        };
        let comment = creation_comment(&ctx.operation_id);
        match fetch(&client, name, &subject).await? {
            // Adopted, or made by an earlier attempt of this same operation.
            Some(existing) if args.adopt || created_by(existing.comment.as_deref(), &ctx.operation_id) => {
                self.converge(&client, &existing, args, &subject).await?
            }
            Some(_) => return Err(conflict()),
            None => {
                match client.batch_execute(&create_sql(args)).await {
                    Err(e) if sqlstate(&e) == Some("42P04") => return Err(conflict()),
                    other => other.on(&subject)?,
                }
                // `CREATE DATABASE` cannot share a transaction: the comment follows it.
                client
                    .batch_execute(&format!("COMMENT ON DATABASE {} IS {}", quote_ident(name), quote_literal(&comment)))
                    .await
                    .on(&subject)?;
            }
        }
        let a = fetch(&client, name, &subject)
            .await?
            .ok_or_else(|| ProviderError::transient(format!("{subject}: created but not visible yet")))?;
        Ok(Created { id: name.clone(), outputs: outputs(&a) })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Database>,
    ) -> Result<Option<Observed<Database>>, ProviderError> {
        self.observe(stored.args.name.get(), &stored.args, &stored.id).await
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Database>,
        args: &DatabaseArgs,
        _changes: &[PropertyChange],
    ) -> Result<DatabaseOutputs, ProviderError> {
        let (old, new) = (stored.args.name.get(), args.name.get());
        let subject = subject(Database::TYPE, new);
        let client = self.conns.maintenance(&subject).await?;
        if old != new && fetch(&client, old, &subject).await?.is_some() {
            // The provider's own sessions would block the rename.
            self.conns.evict(old);
            client
                .batch_execute(&format!("ALTER DATABASE {} RENAME TO {}", quote_ident(old), quote_ident(new)))
                .await
                .on(&subject)?;
        }
        let a = fetch(&client, new, &subject).await?.ok_or_else(|| {
            ProviderError::not_found(format!(
                "{subject} does not exist; run `refresh` to forget it, then `up` to recreate it"
            ))
        })?;
        self.converge(&client, &a, args, &subject).await?;
        let a = fetch(&client, new, &subject)
            .await?
            .ok_or_else(|| ProviderError::transient(format!("{subject}: vanished")))?;
        Ok(outputs(&a))
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Database>) -> Result<(), ProviderError> {
        let name = stored.args.name.get();
        let subject = subject(Database::TYPE, name);
        let info = self.conns.info().await?.clone();
        let client = self.conns.maintenance(&subject).await?;
        let Some(a) = fetch(&client, name, &subject).await? else { return Ok(()) };
        self.conns.evict(name);
        let q = quote_ident(name);
        let mut prep = Vec::new();
        if a.is_template {
            prep.push(format!("ALTER DATABASE {q} IS_TEMPLATE false"));
        }
        prep.push(format!("ALTER DATABASE {q} ALLOW_CONNECTIONS false"));
        client.batch_execute(&prep.join(";\n")).await.on(&subject)?;
        let drop = if info.supports_drop_force() {
            format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)")
        } else {
            client
                .execute(
                    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
                      WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()",
                    &[&name],
                )
                .await
                .on(&subject)?;
            format!("DROP DATABASE IF EXISTS {q}")
        };
        client.batch_execute(&drop).await.on(&subject)
    }

    async fn find(&self, ctx: &OpContext, args: &DatabaseArgs) -> Result<Found<DatabaseOutputs>, ProviderError> {
        let found: Result<Option<Created<DatabaseOutputs>>, ProviderError> = async {
            let name = args.name.get();
            let subject = subject(Database::TYPE, name);
            let client = self.conns.maintenance(&subject).await?;
            Ok(fetch(&client, name, &subject)
                .await?
                .filter(|a| created_by(a.comment.as_deref(), &ctx.operation_id))
                .map(|a| Created { id: name.clone(), outputs: outputs(&a) }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Database>>, ProviderError> {
        self.observe(id, &DatabaseArgs::new(id), id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_statement_quotes_names_and_values() {
        let mut args = DatabaseArgs::new(r#"My "DB""#);
        args.owner = Some("App Owner".into());
        args.template = Some("template0".into());
        args.encoding = Some("UTF8".into());
        args.lc_collate = Some("C".into());
        assert_eq!(
            create_sql(&args),
            r#"CREATE DATABASE "My ""DB""" OWNER "App Owner" TEMPLATE "template0" ENCODING 'UTF8' LC_COLLATE 'C' CONNECTION LIMIT -1 ALLOW_CONNECTIONS true IS_TEMPLATE false"#
        );
    }

    #[test]
    fn args_deserialize_with_defaults() {
        let args: DatabaseArgs = serde_json::from_value(serde_json::json!({"name": "app"})).unwrap();
        assert_eq!(args.connection_limit, -1);
        assert!(args.allow_connections);
        assert!(!args.is_template && !args.adopt);
    }
}
