//! `postgres:Extension` — an extension installed in a database: its schema and version change
//! in place (`ALTER EXTENSION … SET SCHEMA` / `UPDATE TO`); its name and database force
//! replacement. `cascade` also installs the extensions it requires.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, ErrorKind, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange,
    ProviderError, Resource, Stored,
};

use crate::common::{check_ident, is_false};
use crate::connection::Connections;
use crate::error::{PgResultExt, already_exists, sqlstate};
use crate::ident::{join_id, quote_ident, quote_literal, split_id_exact};

/// The `postgres:Extension` resource type. Its id is `database.extension`.
pub struct Extension;

impl Resource for Extension {
    const TYPE: &'static str = "postgres:Extension";
    type Args = ExtensionArgs;
    type Outputs = ExtensionOutputs;
}

/// Arguments of `postgres:Extension`.
#[derive(Clone, Serialize, Deserialize, Args)]
pub struct ExtensionArgs {
    /// The database it is installed in.
    #[sw(replace)]
    pub database: Input<String>,
    /// The extension's name, e.g. `pgcrypto`.
    #[sw(replace)]
    pub name: String,
    /// The schema its objects go in; the first schema of the search path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Input<String>>,
    /// The version to install or update to; the default version when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Also install the extensions it requires.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cascade: bool,
    /// On delete, drop the objects that depend on it too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub drop_cascade: bool,
    /// Take over the extension if it is already installed, instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopt: bool,
}

impl ExtensionArgs {
    /// Extension `name` in `database`, default version and schema.
    pub fn new(database: impl Into<Input<String>>, name: impl Into<String>) -> Self {
        ExtensionArgs {
            database: database.into(),
            name: name.into(),
            schema: None,
            version: None,
            cascade: false,
            drop_cascade: false,
            adopt: false,
        }
    }
}

/// Outputs of `postgres:Extension`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct ExtensionOutputs {
    /// The extension's name.
    pub name: String,
    /// The schema its objects are in.
    pub schema: String,
    /// The installed version.
    pub version: String,
}

async fn fetch(
    client: &impl GenericClient,
    name: &str,
    subject: &str,
) -> Result<Option<(String, String)>, ProviderError> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text, e.extversion FROM pg_catalog.pg_extension e
               JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1",
            &[&name],
        )
        .await
        .on(subject)?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

fn describe(database: &str, name: &str) -> String {
    format!("{} {} (in database {})", Extension::TYPE, quote_ident(name), quote_ident(database))
}

/// The handler for `postgres:Extension`.
pub(crate) struct ExtensionHandler {
    pub(crate) conns: Arc<Connections>,
}

impl ExtensionHandler {
    async fn observe(&self, stored: &ExtensionArgs, id: &str) -> Result<Option<Observed<Extension>>, ProviderError> {
        let (database, name) = (stored.database.get(), &stored.name);
        let subject = describe(database, name);
        let client = match self.conns.get(database, &subject).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let Some((schema, version)) = fetch(&client, name, &subject).await? else { return Ok(None) };
        // Absent schema and version mean "whatever it was installed with": only a requested
        // one can drift.
        let args = ExtensionArgs {
            schema: stored.schema.as_ref().map(|_| Input::Value(schema.clone())),
            version: stored.version.as_ref().map(|_| version.clone()),
            ..stored.clone()
        };
        Ok(Some(Observed {
            id: id.to_owned(),
            args,
            outputs: ExtensionOutputs { name: name.clone(), schema, version },
        }))
    }

    /// Moves and updates an installed extension to match `args`.
    async fn converge(
        &self,
        client: &impl GenericClient,
        args: &ExtensionArgs,
        (schema, version): (String, String),
        subject: &str,
    ) -> Result<(), ProviderError> {
        let q = quote_ident(&args.name);
        let mut statements = Vec::new();
        if let Some(s) = &args.schema
            && *s.get() != schema
        {
            statements.push(format!("ALTER EXTENSION {q} SET SCHEMA {}", quote_ident(s.get())));
        }
        if let Some(v) = &args.version
            && *v != version
        {
            statements.push(format!("ALTER EXTENSION {q} UPDATE TO {}", quote_literal(v)));
        }
        if !statements.is_empty() {
            client.batch_execute(&statements.join(";\n")).await.on(subject)?;
        }
        Ok(())
    }

    async fn outputs(
        &self,
        client: &impl GenericClient,
        name: &str,
        subject: &str,
    ) -> Result<ExtensionOutputs, ProviderError> {
        let (schema, version) = fetch(client, name, subject)
            .await?
            .ok_or_else(|| ProviderError::transient(format!("{subject}: not visible after it was installed")))?;
        Ok(ExtensionOutputs { name: name.to_owned(), schema, version })
    }
}

#[async_trait]
impl Handler<Extension> for ExtensionHandler {
    fn check(&self, args: &ExtensionArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        check_ident(&mut failures, "database", Some(&args.database));
        check_ident(&mut failures, "name", Some(&Input::Value(args.name.clone())));
        check_ident(&mut failures, "schema", args.schema.as_ref());
        failures
    }

    async fn create(&self, _ctx: &OpContext, args: &ExtensionArgs) -> Result<Created<ExtensionOutputs>, ProviderError> {
        let database = args.database.get();
        let subject = describe(database, &args.name);
        let id = join_id(&[database, &args.name]);
        let client = self.conns.get(database, &subject).await?;
        let conflict = || {
            already_exists(
                Extension::TYPE,
                &format!("extension {} in database {}", quote_ident(&args.name), quote_ident(database)),
                &id,
                "",
            )
        };
        match fetch(&client, &args.name, &subject).await? {
            Some(_) if !args.adopt => return Err(conflict()),
            Some(current) => self.converge(&client, args, current, &subject).await?,
            None => {
                let mut sql = format!("CREATE EXTENSION {}", quote_ident(&args.name));
                if let Some(s) = &args.schema {
                    sql.push_str(&format!(" SCHEMA {}", quote_ident(s.get())));
                }
                if let Some(v) = &args.version {
                    sql.push_str(&format!(" VERSION {}", quote_literal(v)));
                }
                if args.cascade {
                    sql.push_str(" CASCADE");
                }
                match client.batch_execute(&sql).await {
                    Err(e) if sqlstate(&e) == Some("42710") => return Err(conflict()),
                    other => other.on(&subject)?,
                }
            }
        }
        Ok(Created { id, outputs: self.outputs(&client, &args.name, &subject).await? })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Extension>,
    ) -> Result<Option<Observed<Extension>>, ProviderError> {
        self.observe(&stored.args, &stored.id).await
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _stored: &Stored<Extension>,
        args: &ExtensionArgs,
        _changes: &[PropertyChange],
    ) -> Result<ExtensionOutputs, ProviderError> {
        let database = args.database.get();
        let subject = describe(database, &args.name);
        let client = self.conns.get(database, &subject).await?;
        let current = fetch(&client, &args.name, &subject).await?.ok_or_else(|| {
            ProviderError::not_found(format!("{subject} is not installed; run `refresh` to forget it, then `up`"))
        })?;
        self.converge(&client, args, current, &subject).await?;
        self.outputs(&client, &args.name, &subject).await
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Extension>) -> Result<(), ProviderError> {
        let database = stored.args.database.get();
        let subject = describe(database, &stored.args.name);
        let client = self.conns.get(database, &subject).await?;
        let cascade = if stored.args.drop_cascade { " CASCADE" } else { "" };
        match client
            .batch_execute(&format!("DROP EXTENSION IF EXISTS {}{cascade}", quote_ident(&stored.args.name)))
            .await
        {
            Err(e) if sqlstate(&e) == Some("2BP01") => Err(ProviderError::conflict(format!(
                "{subject}: other objects depend on it; drop them first or set `drop_cascade: true` \
                 (SQLSTATE 2BP01 dependent_objects_still_exist)"
            ))),
            other => other.on(&subject),
        }
    }

    async fn find(&self, _ctx: &OpContext, args: &ExtensionArgs) -> Result<Found<ExtensionOutputs>, ProviderError> {
        let found: Result<Option<Created<ExtensionOutputs>>, ProviderError> = async {
            let id = join_id(&[args.database.get(), &args.name]);
            Ok(self.observe(args, &id).await?.map(|o| Created { id: o.id, outputs: o.outputs }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Extension>>, ProviderError> {
        let parts =
            split_id_exact(Extension::TYPE, id, &["database", "extension"]).map_err(ProviderError::invalid_input)?;
        self.observe(&ExtensionArgs::new(parts[0].clone(), parts[1].clone()), id).await
    }
}
