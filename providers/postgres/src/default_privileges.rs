//! `postgres:DefaultPrivileges` — the privileges a role (or `public`) receives on objects that
//! another role (the owner) creates in the future, in one schema or everywhere in a database
//! (`ALTER DEFAULT PRIVILEGES`). Read from `pg_default_acl`. Like grants, the privileges converge
//! by revoke-then-grant in one transaction, and every argument changes in place.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, ErrorKind, Handler, Input, Observed, OpContext, Outputs, PropertyChange,
    ProviderError, Resource, Stored,
};

use crate::common::{check_ident, grantee_sql, is_false, role_oid};
use crate::connection::Connections;
use crate::error::PgResultExt;
use crate::ident::{join_id, quote_ident, quote_literal, split_id};
use crate::privileges;

/// The `postgres:DefaultPrivileges` resource type. Its id is
/// `database.owner.role.object_type[.schema]`.
pub struct DefaultPrivileges;

impl Resource for DefaultPrivileges {
    const TYPE: &'static str = "postgres:DefaultPrivileges";
    type Args = DefaultPrivilegesArgs;
    type Outputs = DefaultPrivilegesOutputs;
}

/// The kind of future objects default privileges apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultObject {
    /// Tables and views.
    Tables,
    /// Sequences.
    Sequences,
    /// Functions and procedures.
    Functions,
    /// Types and domains.
    Types,
    /// Schemas (only without `schema`).
    Schemas,
}

impl DefaultObject {
    fn token(self) -> &'static str {
        match self {
            DefaultObject::Tables => "tables",
            DefaultObject::Sequences => "sequences",
            DefaultObject::Functions => "functions",
            DefaultObject::Types => "types",
            DefaultObject::Schemas => "schemas",
        }
    }

    fn from_token(s: &str) -> Option<Self> {
        [
            DefaultObject::Tables,
            DefaultObject::Sequences,
            DefaultObject::Functions,
            DefaultObject::Types,
            DefaultObject::Schemas,
        ]
        .into_iter()
        .find(|o| o.token() == s)
    }

    /// `pg_default_acl.defaclobjtype`.
    fn catalog_char(self) -> &'static str {
        match self {
            DefaultObject::Tables => "r",
            DefaultObject::Sequences => "S",
            DefaultObject::Functions => "f",
            DefaultObject::Types => "T",
            DefaultObject::Schemas => "n",
        }
    }

    /// The object type letter `acldefault` takes.
    fn acldefault_char(self) -> &'static str {
        match self {
            DefaultObject::Sequences => "s",
            other => other.catalog_char(),
        }
    }

    fn privileges(self) -> &'static [&'static str] {
        match self {
            DefaultObject::Tables => privileges::TABLE,
            DefaultObject::Sequences => privileges::SEQUENCE,
            DefaultObject::Functions => privileges::FUNCTION,
            DefaultObject::Types => privileges::TYPE,
            DefaultObject::Schemas => privileges::SCHEMA,
        }
    }
}

/// Arguments of `postgres:DefaultPrivileges`.
#[derive(Clone, Serialize, Deserialize, Args)]
pub struct DefaultPrivilegesArgs {
    /// The database they apply in.
    pub database: Input<String>,
    /// The role whose future objects they apply to (default privileges are keyed on the
    /// creating role).
    pub owner: Input<String>,
    /// The role that receives the privileges; `public` for every role.
    pub role: Input<String>,
    /// The schema they apply in; the whole database when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Input<String>>,
    /// The kind of objects.
    pub object_type: DefaultObject,
    /// The privileges, e.g. `["SELECT"]` or `["ALL"]`; empty revokes everything.
    pub privileges: Vec<String>,
    /// Whether the role may grant them on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub with_grant_option: bool,
}

impl DefaultPrivilegesArgs {
    /// `privileges` for `role` on future `object_type` objects that `owner` creates in `database`.
    pub fn new(
        database: impl Into<Input<String>>,
        owner: impl Into<Input<String>>,
        role: impl Into<Input<String>>,
        object_type: DefaultObject,
        privileges: &[&str],
    ) -> Self {
        DefaultPrivilegesArgs {
            database: database.into(),
            owner: owner.into(),
            role: role.into(),
            schema: None,
            object_type,
            privileges: privileges.iter().map(|p| (*p).to_owned()).collect(),
            with_grant_option: false,
        }
    }

    /// The same default privileges, limited to `schema`.
    pub fn in_schema(mut self, schema: impl Into<Input<String>>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    fn schema_name(&self) -> Option<&str> {
        self.schema.as_ref().map(|s| s.get().as_str())
    }

    fn id(&self) -> String {
        let mut parts = vec![
            self.database.get().as_str(),
            self.owner.get().as_str(),
            self.role.get().as_str(),
            self.object_type.token(),
        ];
        parts.extend(self.schema_name());
        join_id(&parts)
    }

    fn describe(&self) -> String {
        let place = match self.schema_name() {
            Some(s) => format!("schema {} of database {}", quote_ident(s), quote_ident(self.database.get())),
            None => format!("database {}", quote_ident(self.database.get())),
        };
        format!(
            "{} for {} on {} created by {} in {place}",
            DefaultPrivileges::TYPE,
            grantee_sql(self.role.get()),
            self.object_type.token(),
            quote_ident(self.owner.get())
        )
    }

    fn prefix(&self) -> String {
        let mut s = format!("ALTER DEFAULT PRIVILEGES FOR ROLE {}", quote_ident(self.owner.get()));
        if let Some(schema) = self.schema_name() {
            s.push_str(&format!(" IN SCHEMA {}", quote_ident(schema)));
        }
        s
    }

    /// Serializes changes to one owner's default privileges in one schema (concurrent changes to
    /// the same `pg_default_acl` row fail with "tuple concurrently updated").
    fn lock_sql(&self) -> String {
        let key = format!("stackwright-defacl:{}:{}", self.owner.get(), self.schema_name().unwrap_or(""));
        format!("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext({}))", quote_literal(&key))
    }

    fn revoke_sql(&self) -> String {
        format!(
            "{} REVOKE ALL ON {} FROM {}",
            self.prefix(),
            self.object_type.token().to_uppercase(),
            grantee_sql(self.role.get())
        )
    }

    fn converge_sql(&self) -> Vec<String> {
        let mut out = vec![self.revoke_sql()];
        if !self.privileges.is_empty() {
            out.push(format!(
                "{} GRANT {} ON {} TO {}{}",
                self.prefix(),
                privileges::sql_list(&self.privileges),
                self.object_type.token().to_uppercase(),
                grantee_sql(self.role.get()),
                if self.with_grant_option { " WITH GRANT OPTION" } else { "" }
            ));
        }
        out
    }
}

/// Outputs of `postgres:DefaultPrivileges`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct DefaultPrivilegesOutputs {
    /// The privileges future objects will grant, in canonical spelling.
    pub privileges: Vec<String>,
}

/// The handler for `postgres:DefaultPrivileges`.
pub(crate) struct DefaultPrivilegesHandler {
    pub(crate) conns: Arc<Connections>,
}

impl DefaultPrivilegesHandler {
    async fn apply(&self, args: &DefaultPrivilegesArgs) -> Result<DefaultPrivilegesOutputs, ProviderError> {
        let subject = args.describe();
        let mut client = self.conns.get(args.database.get(), &subject).await?;
        let tx = client.transaction().await.on(&subject)?;
        tx.batch_execute(&format!("{};\n{}", args.lock_sql(), args.converge_sql().join(";\n"))).await.on(&subject)?;
        tx.commit().await.on(&subject)?;
        Ok(DefaultPrivilegesOutputs { privileges: privileges::normalized(&args.privileges).into_iter().collect() })
    }

    async fn revoke(&self, args: &DefaultPrivilegesArgs) -> Result<(), ProviderError> {
        let subject = args.describe();
        let mut client = self.conns.get(args.database.get(), &subject).await?;
        let tx = client.transaction().await.on(&subject)?;
        tx.batch_execute(&format!("{};\n{}", args.lock_sql(), args.revoke_sql())).await.on(&subject)?;
        tx.commit().await.on(&subject)
    }

    async fn observe(
        &self,
        stored: &DefaultPrivilegesArgs,
        id: &str,
    ) -> Result<Option<Observed<DefaultPrivileges>>, ProviderError> {
        let subject = stored.describe();
        let client = match self.conns.get(stored.database.get(), &subject).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let Some(owner) = role_oid(&client, stored.owner.get(), &subject).await?.filter(|o| *o != 0) else {
            return Ok(None);
        };
        let Some(grantee) = role_oid(&client, stored.role.get(), &subject).await? else { return Ok(None) };
        let namespace: u32 = match stored.schema_name() {
            None => 0,
            Some(s) => {
                let row = client
                    .query_opt("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1", &[&s])
                    .await
                    .on(&subject)?;
                match row {
                    Some(r) => r.get(0),
                    None => return Ok(None),
                }
            }
        };
        // Without an entry, global defaults are the built-in ones (`acldefault`); per-schema
        // defaults only add to them, so a missing entry there holds nothing.
        let row = client
            .query_one(
                "SELECT ARRAY(SELECT a.privilege_type FROM aclexplode(acl) a WHERE a.grantee = $4 ORDER BY 1),
                        COALESCE((SELECT bool_and(a.is_grantable) FROM aclexplode(acl) a WHERE a.grantee = $4), false)
                   FROM (SELECT COALESCE(
                           (SELECT defaclacl FROM pg_catalog.pg_default_acl
                             WHERE defaclrole = $1 AND defaclnamespace = $2 AND defaclobjtype = $3::text::\"char\"),
                           CASE WHEN $2 = 0 THEN acldefault($5::text::\"char\", $1) END) AS acl) x",
                &[
                    &owner,
                    &namespace,
                    &stored.object_type.catalog_char(),
                    &grantee,
                    &stored.object_type.acldefault_char(),
                ],
            )
            .await
            .on(&subject)?;
        let held: BTreeSet<String> = row.get::<_, Vec<String>>(0).into_iter().collect();
        let grantable: bool = row.get(1);
        let privileges = privileges::observed(&stored.privileges, [&held], stored.object_type.privileges());
        let with_grant_option = if held.is_empty() { stored.with_grant_option } else { grantable };
        Ok(Some(Observed {
            id: id.to_owned(),
            args: DefaultPrivilegesArgs { privileges, with_grant_option, ..stored.clone() },
            outputs: DefaultPrivilegesOutputs { privileges: held.into_iter().collect() },
        }))
    }
}

#[async_trait]
impl Handler<DefaultPrivileges> for DefaultPrivilegesHandler {
    fn check(&self, args: &DefaultPrivilegesArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        check_ident(&mut failures, "database", Some(&args.database));
        check_ident(&mut failures, "owner", Some(&args.owner));
        check_ident(&mut failures, "role", Some(&args.role));
        check_ident(&mut failures, "schema", args.schema.as_ref());
        if let Input::Value(o) = &args.owner
            && crate::common::is_public(o)
        {
            failures
                .push(CheckFailure::at("owner", "the owner is the role that creates objects; it cannot be `public`"));
        }
        if args.object_type == DefaultObject::Schemas && args.schema.is_some() {
            failures.push(CheckFailure::at("schema", "default privileges on schemas cannot be limited to a schema"));
        }
        if let Err(m) = privileges::validate(&args.privileges, args.object_type.privileges(), args.object_type.token())
        {
            failures.push(CheckFailure::at("privileges", m));
        }
        failures
    }

    async fn create(
        &self,
        _ctx: &OpContext,
        args: &DefaultPrivilegesArgs,
    ) -> Result<Created<DefaultPrivilegesOutputs>, ProviderError> {
        Ok(Created { id: args.id(), outputs: self.apply(args).await? })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<DefaultPrivileges>,
    ) -> Result<Option<Observed<DefaultPrivileges>>, ProviderError> {
        self.observe(&stored.args, &stored.id).await
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<DefaultPrivileges>,
        args: &DefaultPrivilegesArgs,
        _changes: &[PropertyChange],
    ) -> Result<DefaultPrivilegesOutputs, ProviderError> {
        if stored.args.id() != args.id() {
            match self.revoke(&stored.args).await {
                Err(e) if e.kind == ErrorKind::NotFound => {}
                other => other?,
            }
        }
        self.apply(args).await
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<DefaultPrivileges>) -> Result<(), ProviderError> {
        self.revoke(&stored.args).await
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<DefaultPrivileges>>, ProviderError> {
        let usage = "the id is database.owner.role.object_type[.schema], e.g. app.migrator.reader.tables.public";
        let bad = |m: &str| ProviderError::invalid_input(format!("{}: {m}", DefaultPrivileges::TYPE));
        let parts = split_id(id).map_err(|m| bad(&m))?;
        if !(4..=5).contains(&parts.len()) {
            return Err(bad(usage));
        }
        let object_type = DefaultObject::from_token(&parts[3]).ok_or_else(|| bad(usage))?;
        let mut args =
            DefaultPrivilegesArgs::new(parts[0].clone(), parts[1].clone(), parts[2].clone(), object_type, &[]);
        args.schema = parts.get(4).cloned().map(Input::Value);
        self.observe(&args, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_owner_schema_and_grantee() {
        let args = DefaultPrivilegesArgs::new("app", "Migrator", "reader", DefaultObject::Tables, &["select"])
            .in_schema("My Schema");
        assert_eq!(
            args.converge_sql(),
            vec![
                r#"ALTER DEFAULT PRIVILEGES FOR ROLE "Migrator" IN SCHEMA "My Schema" REVOKE ALL ON TABLES FROM "reader""#,
                r#"ALTER DEFAULT PRIVILEGES FOR ROLE "Migrator" IN SCHEMA "My Schema" GRANT SELECT ON TABLES TO "reader""#,
            ]
        );
        assert_eq!(args.id(), r#"app.Migrator.reader.tables.My Schema"#);
        let global = DefaultPrivilegesArgs::new("app", "m", "public", DefaultObject::Functions, &[]);
        assert_eq!(
            global.converge_sql(),
            vec![r#"ALTER DEFAULT PRIVILEGES FOR ROLE "m" REVOKE ALL ON FUNCTIONS FROM PUBLIC"#]
        );
    }
}
