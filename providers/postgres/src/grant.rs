//! `postgres:Grant` — the privileges one role (or `public`) holds on a database, a schema,
//! named tables, sequences or functions, or all tables, sequences or functions of a schema.
//!
//! Privileges converge: in one transaction, `REVOKE ALL` on the target, then `GRANT` of exactly
//! the listed privileges, so privileges added by hand disappear on the next `up`. Every argument
//! changes in place: a changed target first revokes everything on the old one. (A replacement
//! would create the new grant and then delete the old one, and when both name the same object
//! that delete would revoke what was just granted.)

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
use crate::ident::{join_id, quote_ident, quote_literal, quote_qualified, split_id};
use crate::privileges;

/// The `postgres:Grant` resource type. Its id is `database.role.object_type[.schema[.object…]]`.
pub struct Grant;

impl Resource for Grant {
    const TYPE: &'static str = "postgres:Grant";
    type Args = GrantArgs;
    type Outputs = GrantOutputs;
}

/// What a grant is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantObject {
    /// The database itself (`CREATE`, `CONNECT`, `TEMPORARY`).
    Database,
    /// A schema (`CREATE`, `USAGE`), named by `schema`.
    Schema,
    /// The tables (or views) named in `objects`, in `schema`.
    Table,
    /// The sequences named in `objects`, in `schema`.
    Sequence,
    /// The functions named in `objects` with their argument types, e.g. `add(integer, integer)`.
    Function,
    /// Every table that exists in `schema` now (use default privileges for future ones).
    AllTablesInSchema,
    /// Every sequence that exists in `schema` now.
    AllSequencesInSchema,
    /// Every function that exists in `schema` now.
    AllFunctionsInSchema,
}

impl GrantObject {
    fn token(self) -> &'static str {
        match self {
            GrantObject::Database => "database",
            GrantObject::Schema => "schema",
            GrantObject::Table => "table",
            GrantObject::Sequence => "sequence",
            GrantObject::Function => "function",
            GrantObject::AllTablesInSchema => "all_tables_in_schema",
            GrantObject::AllSequencesInSchema => "all_sequences_in_schema",
            GrantObject::AllFunctionsInSchema => "all_functions_in_schema",
        }
    }

    fn from_token(s: &str) -> Option<Self> {
        [
            GrantObject::Database,
            GrantObject::Schema,
            GrantObject::Table,
            GrantObject::Sequence,
            GrantObject::Function,
            GrantObject::AllTablesInSchema,
            GrantObject::AllSequencesInSchema,
            GrantObject::AllFunctionsInSchema,
        ]
        .into_iter()
        .find(|o| o.token() == s)
    }

    fn privileges(self) -> &'static [&'static str] {
        match self {
            GrantObject::Database => privileges::DATABASE,
            GrantObject::Schema => privileges::SCHEMA,
            GrantObject::Table | GrantObject::AllTablesInSchema => privileges::TABLE,
            GrantObject::Sequence | GrantObject::AllSequencesInSchema => privileges::SEQUENCE,
            GrantObject::Function | GrantObject::AllFunctionsInSchema => privileges::FUNCTION,
        }
    }

    fn named_objects(self) -> bool {
        matches!(self, GrantObject::Table | GrantObject::Sequence | GrantObject::Function)
    }

    fn needs_schema(self) -> bool {
        self != GrantObject::Database
    }
}

/// Arguments of `postgres:Grant`.
#[derive(Clone, Serialize, Deserialize, Args)]
pub struct GrantArgs {
    /// The database the objects are in (or, for `database`, the database itself).
    pub database: Input<String>,
    /// The role that receives the privileges; `public` for every role.
    pub role: Input<String>,
    /// What kind of object the grant is on.
    pub object_type: GrantObject,
    /// The schema (for everything but `database`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Input<String>>,
    /// The objects, for `table`, `sequence` and `function`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<String>,
    /// The privileges, e.g. `["SELECT", "INSERT"]` or `["ALL"]`; empty revokes everything.
    pub privileges: Vec<String>,
    /// Whether the role may grant them on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub with_grant_option: bool,
}

impl GrantArgs {
    /// `privileges` for `role` on `object_type` in `database`; set `schema` and `objects` as the
    /// object type needs.
    pub fn new(
        database: impl Into<Input<String>>,
        role: impl Into<Input<String>>,
        object_type: GrantObject,
        privileges: &[&str],
    ) -> Self {
        GrantArgs {
            database: database.into(),
            role: role.into(),
            object_type,
            schema: None,
            objects: Vec::new(),
            privileges: privileges.iter().map(|p| (*p).to_owned()).collect(),
            with_grant_option: false,
        }
    }

    /// The same grant in `schema`.
    pub fn in_schema(mut self, schema: impl Into<Input<String>>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The same grant on the named objects.
    pub fn on(mut self, objects: &[&str]) -> Self {
        self.objects = objects.iter().map(|o| (*o).to_owned()).collect();
        self
    }

    fn schema_name(&self) -> &str {
        self.schema.as_ref().map(|s| s.get().as_str()).unwrap_or("")
    }

    fn id(&self) -> String {
        let mut parts = vec![self.database.get().as_str(), self.role.get().as_str(), self.object_type.token()];
        if self.object_type.needs_schema() {
            parts.push(self.schema_name());
        }
        parts.extend(self.objects.iter().map(String::as_str));
        join_id(&parts)
    }

    fn same_target(&self, other: &GrantArgs) -> bool {
        self.database.get() == other.database.get()
            && self.role.get() == other.role.get()
            && self.object_type == other.object_type
            && self.schema_name() == other.schema_name()
            && self.objects == other.objects
    }

    fn describe(&self) -> String {
        let on = match self.object_type {
            GrantObject::Database => format!("database {}", quote_ident(self.database.get())),
            GrantObject::Schema => format!("schema {}", quote_ident(self.schema_name())),
            t => format!(
                "{} {}{} in database {}",
                t.token().replace('_', " "),
                quote_ident(self.schema_name()),
                if self.objects.is_empty() { String::new() } else { format!(" ({})", self.objects.join(", ")) },
                quote_ident(self.database.get())
            ),
        };
        format!("{} to {} on {on}", Grant::TYPE, grantee_sql(self.role.get()))
    }
}

/// Outputs of `postgres:Grant`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct GrantOutputs {
    /// The privileges the role holds now, in canonical spelling.
    pub privileges: Vec<String>,
}

/// Splits `name(argument types)` into a quoted, schema-qualified function signature.
fn function_signature(schema: &str, object: &str) -> String {
    match object.find('(') {
        Some(i) => format!("{}{}", quote_qualified(schema, object[..i].trim()), &object[i..]),
        None => format!("{}()", quote_qualified(schema, object.trim())),
    }
}

/// One object's privileges for the grantee.
struct Held {
    /// The object as the arguments name it (empty for whole-schema targets).
    object: String,
    privileges: BTreeSet<String>,
    grantable: bool,
}

const ACL_COLUMNS: &str = "ARRAY(SELECT a.privilege_type FROM aclexplode(acl) a WHERE a.grantee = $1 ORDER BY 1),
     COALESCE((SELECT bool_and(a.is_grantable) FROM aclexplode(acl) a WHERE a.grantee = $1), false)";

/// Reads what the grantee (`grantee` oid) holds on the grant's objects. `None` when the target
/// itself (database or schema) is gone.
async fn held(
    client: &impl GenericClient,
    args: &GrantArgs,
    grantee: u32,
    subject: &str,
) -> Result<Option<Vec<Held>>, ProviderError> {
    let schema = args.schema_name().to_owned();
    let rows = match args.object_type {
        GrantObject::Database => {
            let sql = format!(
                "SELECT '', {ACL_COLUMNS} FROM (SELECT COALESCE(datacl, acldefault('d', datdba)) AS acl
                   FROM pg_catalog.pg_database WHERE datname = $2) x"
            );
            let rows = client.query(&sql, &[&grantee, args.database.get()]).await.on(subject)?;
            if rows.is_empty() {
                return Ok(None);
            }
            rows
        }
        _ => {
            let exists = client
                .query_opt("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", &[&schema])
                .await
                .on(subject)?;
            if exists.is_none() {
                return Ok(None);
            }
            match args.object_type {
                GrantObject::Schema => {
                    let sql = format!(
                        "SELECT '', {ACL_COLUMNS} FROM (SELECT COALESCE(nspacl, acldefault('n', nspowner)) AS acl
                           FROM pg_catalog.pg_namespace WHERE nspname = $2) x"
                    );
                    client.query(&sql, &[&grantee, &schema]).await.on(subject)?
                }
                GrantObject::Table
                | GrantObject::AllTablesInSchema
                | GrantObject::Sequence
                | GrantObject::AllSequencesInSchema => {
                    let sequences =
                        matches!(args.object_type, GrantObject::Sequence | GrantObject::AllSequencesInSchema);
                    let (kinds, default) = if sequences { ("'S'", "'s'") } else { ("'r','v','m','f','p'", "'r'") };
                    let names: Option<Vec<String>> = args.object_type.named_objects().then(|| args.objects.clone());
                    let sql = format!(
                        "SELECT relname::text, {ACL_COLUMNS} FROM (
                           SELECT c.relname, COALESCE(c.relacl, acldefault({default}, c.relowner)) AS acl
                             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = $2 AND c.relkind IN ({kinds})
                              AND ($3::text[] IS NULL OR c.relname = ANY($3::text[]))) x ORDER BY 1"
                    );
                    client.query(&sql, &[&grantee, &schema, &names]).await.on(subject)?
                }
                GrantObject::Function => {
                    let sigs: Vec<String> = args.objects.iter().map(|o| function_signature(&schema, o)).collect();
                    let sql = format!(
                        "SELECT o.i, {ACL_COLUMNS} FROM (
                           SELECT o.i, COALESCE(p.proacl, acldefault('f', p.proowner)) AS acl
                             FROM unnest($2::text[]) WITH ORDINALITY AS o(sig, i)
                             JOIN pg_catalog.pg_proc p ON p.oid = to_regprocedure(o.sig)) o ORDER BY o.i"
                    );
                    let rows = client.query(&sql, &[&grantee, &sigs]).await.on(subject)?;
                    return Ok(Some(
                        rows.iter()
                            .map(|r| {
                                let i = usize::try_from(r.get::<_, i64>(0)).unwrap_or(1);
                                Held {
                                    object: args.objects.get(i - 1).cloned().unwrap_or_default(),
                                    privileges: r.get::<_, Vec<String>>(1).into_iter().collect(),
                                    grantable: r.get(2),
                                }
                            })
                            .collect(),
                    ));
                }
                GrantObject::AllFunctionsInSchema => {
                    let sql = format!(
                        "SELECT p.oid::regprocedure::text, {ACL_COLUMNS} FROM (
                           SELECT p.oid, COALESCE(p.proacl, acldefault('f', p.proowner)) AS acl
                             FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                            WHERE n.nspname = $2 AND p.prokind = 'f') p ORDER BY 1"
                    );
                    client.query(&sql, &[&grantee, &schema]).await.on(subject)?
                }
                GrantObject::Database => unreachable!("handled above"),
            }
        }
    };
    Ok(Some(
        rows.iter()
            .map(|r| Held {
                object: r.get(0),
                privileges: r.get::<_, Vec<String>>(1).into_iter().collect(),
                grantable: r.get(2),
            })
            .collect(),
    ))
}

/// The `ON …` part of GRANT and REVOKE.
fn target_sql(args: &GrantArgs) -> String {
    let schema = args.schema_name();
    let list = |kw: &str, f: &dyn Fn(&str) -> String| {
        format!("{kw} {}", args.objects.iter().map(|o| f(o)).collect::<Vec<_>>().join(", "))
    };
    match args.object_type {
        GrantObject::Database => format!("DATABASE {}", quote_ident(args.database.get())),
        GrantObject::Schema => format!("SCHEMA {}", quote_ident(schema)),
        GrantObject::Table => list("TABLE", &|o| quote_qualified(schema, o)),
        GrantObject::Sequence => list("SEQUENCE", &|o| quote_qualified(schema, o)),
        GrantObject::Function => list("FUNCTION", &|o| function_signature(schema, o)),
        GrantObject::AllTablesInSchema => format!("ALL TABLES IN SCHEMA {}", quote_ident(schema)),
        GrantObject::AllSequencesInSchema => format!("ALL SEQUENCES IN SCHEMA {}", quote_ident(schema)),
        GrantObject::AllFunctionsInSchema => format!("ALL FUNCTIONS IN SCHEMA {}", quote_ident(schema)),
    }
}

/// Serializes ACL changes on one target: concurrent `GRANT`s on the same object fail with
/// "tuple concurrently updated". Everything in one schema shares a lock (an all-tables grant
/// and a table grant touch the same rows).
fn lock_sql(args: &GrantArgs) -> String {
    let key = match args.object_type {
        GrantObject::Database => format!("database:{}", args.database.get()),
        _ => format!("schema:{}", args.schema_name()),
    };
    format!(
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext({}))",
        quote_literal(&format!("stackwright-acl:{key}"))
    )
}

/// The statements that make the grantee hold exactly the listed privileges.
fn converge_sql(args: &GrantArgs) -> Vec<String> {
    let (target, grantee) = (target_sql(args), grantee_sql(args.role.get()));
    let mut out = vec![lock_sql(args), format!("REVOKE ALL PRIVILEGES ON {target} FROM {grantee}")];
    if !args.privileges.is_empty() {
        let option = if args.with_grant_option { " WITH GRANT OPTION" } else { "" };
        out.push(format!("GRANT {} ON {target} TO {grantee}{option}", privileges::sql_list(&args.privileges)));
    }
    out
}

/// The handler for `postgres:Grant`.
pub(crate) struct GrantHandler {
    pub(crate) conns: Arc<Connections>,
}

impl GrantHandler {
    async fn client(&self, args: &GrantArgs, subject: &str) -> Result<deadpool_postgres::Object, ProviderError> {
        match args.object_type {
            GrantObject::Database => self.conns.maintenance(subject).await,
            _ => self.conns.get(args.database.get(), subject).await,
        }
    }

    /// Revokes everything and grants the listed privileges, in one transaction.
    async fn apply(&self, args: &GrantArgs) -> Result<GrantOutputs, ProviderError> {
        let subject = args.describe();
        let mut client = self.client(args, &subject).await?;
        let tx = client.transaction().await.on(&subject)?;
        tx.batch_execute(&converge_sql(args).join(";\n")).await.on(&subject)?;
        tx.commit().await.on(&subject)?;
        Ok(GrantOutputs { privileges: privileges::normalized(&args.privileges).into_iter().collect() })
    }

    async fn revoke(&self, args: &GrantArgs) -> Result<(), ProviderError> {
        let subject = args.describe();
        let mut client = self.client(args, &subject).await?;
        let grantee = grantee_sql(args.role.get());
        let tx = client.transaction().await.on(&subject)?;
        tx.batch_execute(&format!("{};\nREVOKE ALL PRIVILEGES ON {} FROM {grantee}", lock_sql(args), target_sql(args)))
            .await
            .on(&subject)?;
        tx.commit().await.on(&subject)
    }

    async fn observe(&self, stored: &GrantArgs, id: &str) -> Result<Option<Observed<Grant>>, ProviderError> {
        let subject = stored.describe();
        let client = match self.client(stored, &subject).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let Some(grantee) = role_oid(&client, stored.role.get(), &subject).await? else { return Ok(None) };
        let Some(held) = held(&client, stored, grantee, &subject).await? else { return Ok(None) };
        let all = stored.object_type.privileges();
        let privileges = privileges::observed(&stored.privileges, held.iter().map(|h| &h.privileges), all);
        let with_grant_option = if held.iter().all(|h| h.privileges.is_empty()) {
            stored.with_grant_option
        } else if stored.with_grant_option {
            held.iter().all(|h| h.grantable)
        } else {
            held.iter().any(|h| h.grantable)
        };
        let objects = if stored.object_type.named_objects() {
            let present: BTreeSet<&str> = held.iter().map(|h| h.object.as_str()).collect();
            stored.objects.iter().filter(|o| present.contains(o.as_str())).cloned().collect()
        } else {
            stored.objects.clone()
        };
        let now: BTreeSet<String> = held.first().map(|h| h.privileges.clone()).unwrap_or_default();
        Ok(Some(Observed {
            id: id.to_owned(),
            args: GrantArgs { privileges, with_grant_option, objects, ..stored.clone() },
            outputs: GrantOutputs { privileges: now.into_iter().collect() },
        }))
    }
}

#[async_trait]
impl Handler<Grant> for GrantHandler {
    fn check(&self, args: &GrantArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        check_ident(&mut failures, "database", Some(&args.database));
        check_ident(&mut failures, "role", Some(&args.role));
        check_ident(&mut failures, "schema", args.schema.as_ref());
        let t = args.object_type;
        if t.needs_schema() && args.schema.is_none() {
            failures.push(CheckFailure::at("schema", format!("a grant on {} needs a schema", t.token())));
        }
        if !t.needs_schema() && args.schema.is_some() {
            failures.push(CheckFailure::at("schema", "a grant on a database takes no schema"));
        }
        if t.named_objects() && args.objects.is_empty() {
            failures
                .push(CheckFailure::at("objects", format!("name the objects, or use all_{}s_in_schema", t.token())));
        }
        if !t.named_objects() && !args.objects.is_empty() {
            failures.push(CheckFailure::at("objects", format!("a grant on {} takes no objects", t.token())));
        }
        if let Err(m) =
            privileges::validate(&args.privileges, t.privileges(), &format!("a {}", t.token().replace('_', " ")))
        {
            failures.push(CheckFailure::at("privileges", m));
        }
        failures
    }

    async fn create(&self, _ctx: &OpContext, args: &GrantArgs) -> Result<Created<GrantOutputs>, ProviderError> {
        Ok(Created { id: args.id(), outputs: self.apply(args).await? })
    }

    async fn read(&self, _ctx: &OpContext, stored: &Stored<Grant>) -> Result<Option<Observed<Grant>>, ProviderError> {
        self.observe(&stored.args, &stored.id).await
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Grant>,
        args: &GrantArgs,
        _changes: &[PropertyChange],
    ) -> Result<GrantOutputs, ProviderError> {
        if !stored.args.same_target(args) {
            match self.revoke(&stored.args).await {
                Err(e) if e.kind == ErrorKind::NotFound => {}
                other => other?,
            }
        }
        self.apply(args).await
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Grant>) -> Result<(), ProviderError> {
        self.revoke(&stored.args).await
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Grant>>, ProviderError> {
        let bad = |m: String| ProviderError::invalid_input(format!("{}: {m}", Grant::TYPE));
        let parts = split_id(id).map_err(bad)?;
        let usage = "the id is database.role.object_type[.schema[.object…]], e.g. app.reader.table.public.users";
        if parts.len() < 3 {
            return Err(bad(usage.into()));
        }
        let object_type = GrantObject::from_token(&parts[2])
            .ok_or_else(|| bad(format!("unknown object type {:?}; {usage}", parts[2])))?;
        let mut args = GrantArgs::new(parts[0].clone(), parts[1].clone(), object_type, &[]);
        if object_type.needs_schema() {
            args.schema = Some(Input::Value(parts.get(3).cloned().ok_or_else(|| bad(usage.into()))?));
            args.objects = parts[4..].to_vec();
        } else if parts.len() > 3 {
            return Err(bad(usage.into()));
        }
        if !self.check(&args).iter().all(|f| f.path.as_ref().is_some_and(|p| p.to_string() == "privileges")) {
            return Err(bad(usage.into()));
        }
        self.observe(&args, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_every_name() {
        let args = GrantArgs::new("app", "Read Only", GrantObject::Table, &["select", "insert"])
            .in_schema("My Schema")
            .on(&["users", r#"odd"name"#]);
        assert_eq!(
            converge_sql(&args)[1..],
            [
                r#"REVOKE ALL PRIVILEGES ON TABLE "My Schema"."users", "My Schema"."odd""name" FROM "Read Only""#,
                r#"GRANT INSERT, SELECT ON TABLE "My Schema"."users", "My Schema"."odd""name" TO "Read Only""#,
            ]
        );
        let args = GrantArgs {
            with_grant_option: true,
            ..GrantArgs::new("my db", "public", GrantObject::Database, &["connect"])
        };
        assert_eq!(converge_sql(&args)[2], r#"GRANT CONNECT ON DATABASE "my db" TO PUBLIC WITH GRANT OPTION"#);
        let args = GrantArgs::new("app", "r", GrantObject::Function, &["execute"])
            .in_schema("s")
            .on(&["Add(integer, integer)"]);
        assert_eq!(target_sql(&args), r#"FUNCTION "s"."Add"(integer, integer)"#);
        let revoke_only = GrantArgs::new("app", "r", GrantObject::AllTablesInSchema, &[]).in_schema("s");
        assert_eq!(converge_sql(&revoke_only)[1..], [r#"REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA "s" FROM "r""#]);
        assert!(converge_sql(&revoke_only)[0].starts_with("SELECT pg_catalog.pg_advisory_xact_lock"));
    }

    #[test]
    fn ids_round_trip_through_import_syntax() {
        let args = GrantArgs::new("app", "reader", GrantObject::Table, &["select"]).in_schema("my.schema").on(&["t"]);
        assert_eq!(args.id(), r#"app.reader.table."my.schema".t"#);
        assert_eq!(split_id(&args.id()).unwrap(), vec!["app", "reader", "table", "my.schema", "t"]);
    }

    #[test]
    fn checks_catch_mismatched_arguments() {
        let h = GrantHandler { conns: Arc::new(Connections::new(crate::PostgresConfig::new("h", 5432, "u"))) };
        assert!(h.check(&GrantArgs::new("app", "r", GrantObject::Table, &["select"])).len() >= 2);
        assert!(h.check(&GrantArgs::new("app", "r", GrantObject::Schema, &["select"]).in_schema("s")).len() == 1);
        assert!(h.check(&GrantArgs::new("app", "r", GrantObject::Database, &["connect", "temp"])).is_empty());
    }
}
