//! `postgres:Schema` — a schema inside a database, with its owner. A changed name is a rename
//! in place; a changed database replaces it. Deleting a schema that still holds objects fails
//! unless `drop_cascade` is set.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError,
    Resource, Stored,
};

use crate::common::{check_ident, created_by, creation_comment, is_false, observe_default};
use crate::connection::Connections;
use crate::error::{PgResultExt, already_exists, sqlstate};
use crate::ident::{join_id, quote_ident, quote_literal, split_id_exact};

/// The `postgres:Schema` resource type. Its id is `database.schema` (a part containing a dot is
/// double-quoted).
pub struct Schema;

impl Resource for Schema {
    const TYPE: &'static str = "postgres:Schema";
    type Args = SchemaArgs;
    type Outputs = SchemaOutputs;
}

/// Arguments of `postgres:Schema`.
#[derive(Clone, Serialize, Deserialize, Args)]
pub struct SchemaArgs {
    /// The database it lives in.
    #[sw(replace)]
    pub database: Input<String>,
    /// The schema's name. A change renames it in place.
    pub name: Input<String>,
    /// The owning role; the provider's login when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Input<String>>,
    /// On delete, drop the objects it contains too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub drop_cascade: bool,
    /// Take over a schema of this name that already exists, instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopt: bool,
}

impl SchemaArgs {
    /// A schema called `name` in `database`, owned by the provider's login.
    pub fn new(database: impl Into<Input<String>>, name: impl Into<Input<String>>) -> Self {
        SchemaArgs { database: database.into(), name: name.into(), owner: None, drop_cascade: false, adopt: false }
    }
}

/// Outputs of `postgres:Schema`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct SchemaOutputs {
    /// The database it lives in.
    pub database: String,
    /// The schema's name.
    pub name: String,
    /// The owning role.
    pub owner: String,
}

async fn fetch_owner(client: &impl GenericClient, name: &str, subject: &str) -> Result<Option<String>, ProviderError> {
    Ok(fetch(client, name, subject).await?.map(|(owner, _)| owner))
}

/// The schema's owner and comment.
async fn fetch(
    client: &impl GenericClient,
    name: &str,
    subject: &str,
) -> Result<Option<(String, Option<String>)>, ProviderError> {
    let row = client
        .query_opt(
            "SELECT pg_catalog.pg_get_userbyid(nspowner)::text, pg_catalog.obj_description(oid, 'pg_namespace')
               FROM pg_catalog.pg_namespace WHERE nspname = $1",
            &[&name],
        )
        .await
        .on(subject)?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

fn describe(database: &str, name: &str) -> String {
    format!("{} {} (in database {})", Schema::TYPE, quote_ident(name), quote_ident(database))
}

/// The handler for `postgres:Schema`.
pub(crate) struct SchemaHandler {
    pub(crate) conns: Arc<Connections>,
}

impl SchemaHandler {
    async fn observe(&self, stored: &SchemaArgs, id: &str) -> Result<Option<Observed<Schema>>, ProviderError> {
        let (database, name) = (stored.database.get(), stored.name.get());
        let subject = describe(database, name);
        let client = match self.conns.get(database, &subject).await {
            // The database is gone, and the schema with it.
            Err(e) if e.kind == stackwright_core::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let login = self.conns.info().await?.current_user.clone();
        let Some(owner) = fetch_owner(&client, name, &subject).await? else { return Ok(None) };
        let args = SchemaArgs {
            owner: observe_default(stored.owner.as_ref().map(|o| o.get().as_str()), &owner, &login).map(Input::Value),
            ..stored.clone()
        };
        Ok(Some(Observed {
            id: id.to_owned(),
            args,
            outputs: SchemaOutputs { database: database.clone(), name: name.clone(), owner },
        }))
    }
}

#[async_trait]
impl Handler<Schema> for SchemaHandler {
    fn check(&self, args: &SchemaArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        check_ident(&mut failures, "database", Some(&args.database));
        check_ident(&mut failures, "name", Some(&args.name));
        check_ident(&mut failures, "owner", args.owner.as_ref());
        if let Input::Value(n) = &args.name
            && n.starts_with("pg_")
        {
            failures.push(CheckFailure::at("name", "names starting with `pg_` are reserved for system schemas"));
        }
        failures
    }

    async fn create(&self, ctx: &OpContext, args: &SchemaArgs) -> Result<Created<SchemaOutputs>, ProviderError> {
        let (database, name) = (args.database.get(), args.name.get());
        let subject = describe(database, name);
        let id = join_id(&[database, name]);
        let mut client = self.conns.get(database, &subject).await?;
        let conflict = || {
            already_exists(
                Schema::TYPE,
                &format!("schema {} in database {}", quote_ident(name), quote_ident(database)),
                &id,
                "",
            )
        };
        let login = self.conns.info().await?.current_user.clone();
        let owner = args.owner.as_ref().map(|o| o.get().clone()).unwrap_or(login);
        match fetch(&client, name, &subject).await? {
            // Neither adopted nor made by an earlier attempt of this same operation.
            Some((_, comment)) if !args.adopt && !created_by(comment.as_deref(), &ctx.operation_id) => {
                return Err(conflict());
            }
            Some((actual, _)) if actual != owner => client
                .batch_execute(&format!("ALTER SCHEMA {} OWNER TO {}", quote_ident(name), quote_ident(&owner)))
                .await
                .on(&subject)?,
            Some(_) => {}
            None => {
                let sql = format!(
                    "CREATE SCHEMA {q} AUTHORIZATION {};\nCOMMENT ON SCHEMA {q} IS {}",
                    quote_ident(&owner),
                    quote_literal(&creation_comment(&ctx.operation_id)),
                    q = quote_ident(name),
                );
                let tx = client.transaction().await.on(&subject)?;
                match tx.batch_execute(&sql).await {
                    Err(e) if sqlstate(&e) == Some("42P06") => return Err(conflict()),
                    other => other.on(&subject)?,
                }
                tx.commit().await.on(&subject)?;
            }
        }
        Ok(Created { id, outputs: SchemaOutputs { database: database.clone(), name: name.clone(), owner } })
    }

    async fn read(&self, _ctx: &OpContext, stored: &Stored<Schema>) -> Result<Option<Observed<Schema>>, ProviderError> {
        self.observe(&stored.args, &stored.id).await
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Schema>,
        args: &SchemaArgs,
        _changes: &[PropertyChange],
    ) -> Result<SchemaOutputs, ProviderError> {
        let database = args.database.get();
        let (old, new) = (stored.args.name.get(), args.name.get());
        let subject = describe(database, new);
        let mut client = self.conns.get(database, &subject).await?;
        let tx = client.transaction().await.on(&subject)?;
        let mut current = fetch_owner(&tx, new, &subject).await?;
        if old != new && current.is_none() {
            current = fetch_owner(&tx, old, &subject).await?;
            if current.is_some() {
                tx.batch_execute(&format!("ALTER SCHEMA {} RENAME TO {}", quote_ident(old), quote_ident(new)))
                    .await
                    .on(&subject)?;
            }
        }
        let Some(current) = current else {
            return Err(ProviderError::not_found(format!(
                "{subject} does not exist; run `refresh` to forget it, then `up` to recreate it"
            )));
        };
        let login = self.conns.info().await?.current_user.clone();
        let owner = args.owner.as_ref().map(|o| o.get().clone()).unwrap_or(login);
        if owner != current {
            tx.batch_execute(&format!("ALTER SCHEMA {} OWNER TO {}", quote_ident(new), quote_ident(&owner)))
                .await
                .on(&subject)?;
        }
        tx.commit().await.on(&subject)?;
        Ok(SchemaOutputs { database: database.clone(), name: new.clone(), owner })
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Schema>) -> Result<(), ProviderError> {
        let (database, name) = (stored.args.database.get(), stored.args.name.get());
        let subject = describe(database, name);
        // A missing database comes back as not found, which the engine takes as already deleted.
        let client = self.conns.get(database, &subject).await?;
        let cascade = if stored.args.drop_cascade { " CASCADE" } else { "" };
        match client.batch_execute(&format!("DROP SCHEMA IF EXISTS {}{cascade}", quote_ident(name))).await {
            Err(e) if sqlstate(&e) == Some("2BP01") => Err(ProviderError::conflict(format!(
                "{subject}: still contains objects; drop them first or set `drop_cascade: true` on the schema \
                 (SQLSTATE 2BP01 dependent_objects_still_exist)"
            ))),
            other => other.on(&subject),
        }
    }

    async fn find(&self, ctx: &OpContext, args: &SchemaArgs) -> Result<Found<SchemaOutputs>, ProviderError> {
        let found: Result<Option<Created<SchemaOutputs>>, ProviderError> = async {
            let (database, name) = (args.database.get(), args.name.get());
            let subject = describe(database, name);
            let client = match self.conns.get(database, &subject).await {
                Err(e) if e.kind == stackwright_core::ErrorKind::NotFound => return Ok(None),
                other => other?,
            };
            Ok(fetch(&client, name, &subject).await?.filter(|(_, c)| created_by(c.as_deref(), &ctx.operation_id)).map(
                |(owner, _)| Created {
                    id: join_id(&[database, name]),
                    outputs: SchemaOutputs { database: database.clone(), name: name.clone(), owner },
                },
            ))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Schema>>, ProviderError> {
        let parts = split_id_exact(Schema::TYPE, id, &["database", "schema"]).map_err(ProviderError::invalid_input)?;
        let stored = SchemaArgs::new(parts[0].clone(), parts[1].clone());
        self.observe(&stored, id).await
    }
}
