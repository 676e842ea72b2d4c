//! `postgres:Role` — a role (user or group): login, password (given, or generated and returned
//! as a secret output), attributes, memberships, connection limit, expiry, and the
//! `search_path` and `statement_timeout` settings. A changed name is a rename in place.
//!
//! Passwords are hashed (SCRAM-SHA-256) by the provider before they are sent, so the plain text
//! never reaches the server or its logs. A password cannot be read back: `read` keeps the stored
//! one. Deleting a role can first reassign or drop what it owns in every database that holds
//! something of it (`pg_shdepend` says which).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use stackwright_core::{
    Args, CheckFailure, Created, ErrorKind, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange,
    ProviderError, Resource, Stored,
};

use crate::common::{check_ident, created_by, creation_comment, generate_password, is_false, is_public, subject, yes};
use crate::connection::Connections;
use crate::error::{PgResultExt, already_exists, has_sqlstate, not_found_is_failure, sqlstate};
use crate::ident::{quote_ident, quote_literal, validate_ident};

/// The `postgres:Role` resource type. Its id is the role name it was created with.
pub struct Role;

impl Resource for Role {
    const TYPE: &'static str = "postgres:Role";
    type Args = RoleArgs;
    type Outputs = RoleOutputs;
}

/// Arguments of `postgres:Role`.
#[derive(Clone, Serialize, Deserialize, Args)]
pub struct RoleArgs {
    /// The role's name. A change renames it in place.
    pub name: Input<String>,
    /// Whether it can log in (a user rather than a group).
    #[serde(default)]
    pub login: bool,
    /// Its password. Leave it out (and set `generate_password`) to have one generated.
    #[sw(secret)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Input<String>>,
    /// Generate a random password, returned as the secret `password` output.
    #[serde(default, skip_serializing_if = "is_false")]
    pub generate_password: bool,
    /// Superuser (only a superuser can grant it).
    #[serde(default)]
    pub superuser: bool,
    /// May create databases.
    #[serde(default)]
    pub create_database: bool,
    /// May create roles.
    #[serde(default)]
    pub create_role: bool,
    /// Inherits the privileges of the roles it is a member of.
    #[serde(default = "yes")]
    pub inherit: bool,
    /// May start streaming replication.
    #[serde(default)]
    pub replication: bool,
    /// Bypasses row-level security.
    #[serde(default)]
    pub bypass_rls: bool,
    /// How many concurrent connections it may have; -1 for no limit.
    #[serde(default = "no_limit")]
    pub connection_limit: i32,
    /// When its password stops working (a timestamp PostgreSQL understands); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// The roles it is a member of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_of: Vec<String>,
    /// Its `search_path` setting (schemas, in order); the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_path: Option<Vec<String>>,
    /// Its `statement_timeout` setting, e.g. `30s`; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout: Option<String>,
    /// On delete, first give everything it owns (in every database) to this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassign_owned_to: Option<String>,
    /// On delete, first drop everything it owns and revoke its privileges (in every database).
    #[serde(default, skip_serializing_if = "is_false")]
    pub drop_owned: bool,
    /// Take over a role of this name that already exists, instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub adopt: bool,
}

fn no_limit() -> i32 {
    -1
}

impl RoleArgs {
    /// A role called `name` that cannot log in, with PostgreSQL's defaults.
    pub fn new(name: impl Into<Input<String>>) -> Self {
        RoleArgs {
            name: name.into(),
            login: false,
            password: None,
            generate_password: false,
            superuser: false,
            create_database: false,
            create_role: false,
            inherit: true,
            replication: false,
            bypass_rls: false,
            connection_limit: -1,
            valid_until: None,
            member_of: Vec::new(),
            search_path: None,
            statement_timeout: None,
            reassign_owned_to: None,
            drop_owned: false,
            adopt: false,
        }
    }

    /// A role called `name` that can log in with a generated password.
    pub fn user(name: impl Into<Input<String>>) -> Self {
        RoleArgs { login: true, generate_password: true, ..RoleArgs::new(name) }
    }
}

/// Outputs of `postgres:Role`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct RoleOutputs {
    /// The role's name.
    pub name: String,
    /// Its password, given or generated; absent if it has none.
    #[sw(secret)]
    pub password: Option<String>,
}

/// The role as the catalogs have it.
#[derive(Debug, Clone)]
struct Actual {
    oid: u32,
    name: String,
    superuser: bool,
    inherit: bool,
    create_role: bool,
    create_database: bool,
    login: bool,
    replication: bool,
    bypass_rls: bool,
    connection_limit: i32,
    valid_forever: bool,
    valid_until: Option<String>,
    valid_until_same: bool,
    config: Vec<String>,
    member_of: Vec<String>,
    comment: Option<String>,
}

impl Actual {
    fn setting(&self, key: &str) -> Option<&str> {
        self.config.iter().find_map(|c| c.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    fn search_path(&self) -> Option<Vec<String>> {
        self.setting("search_path").map(parse_search_path)
    }
}

/// Parses a `search_path` setting as PostgreSQL stores it: a comma-separated list whose
/// elements are double-quoted when they need it (`app, "My Schema", "$user"`).
pub(crate) fn parse_search_path(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        item.push('"');
                    } else {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                item.push(c);
                chars.next();
            }
            item = item.trim().to_owned();
        }
        out.push(item);
        if chars.next().is_none() {
            // `SET search_path = ''` is stored as `""`: an empty path.
            if out.len() == 1 && out[0].is_empty() {
                out.clear();
            }
            return out;
        }
    }
}

async fn fetch(
    client: &impl GenericClient,
    name: &str,
    valid_until: Option<&str>,
    subject: &str,
) -> Result<Option<Actual>, ProviderError> {
    let row = client
        .query_opt(
            "SELECT r.oid, r.rolname::text, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
                    r.rolreplication, r.rolbypassrls, r.rolconnlimit,
                    r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity',
                    r.rolvaliduntil::text,
                    COALESCE(r.rolvaliduntil = $2::text::timestamptz, false),
                    COALESCE(r.rolconfig, '{}')::text[],
                    ARRAY(SELECT pg_catalog.pg_get_userbyid(m.roleid)::text FROM pg_catalog.pg_auth_members m
                           WHERE m.member = r.oid ORDER BY 1),
                    pg_catalog.shobj_description(r.oid, 'pg_authid')
               FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
            &[&name, &valid_until],
        )
        .await
        .on(subject)?;
    Ok(row.map(|r| Actual {
        oid: r.get(0),
        name: r.get(1),
        superuser: r.get(2),
        inherit: r.get(3),
        create_role: r.get(4),
        create_database: r.get(5),
        login: r.get(6),
        replication: r.get(7),
        bypass_rls: r.get(8),
        connection_limit: r.get(9),
        valid_forever: r.get(10),
        valid_until: r.get(11),
        valid_until_same: r.get(12),
        config: r.get(13),
        member_of: r.get(14),
        comment: r.get(15),
    }))
}

/// The arguments as the catalogs show them; what cannot be read (password, delete options) is
/// taken from `stored`, and lists that mean the same are kept in the stored order.
fn observed_args(stored: &RoleArgs, a: &Actual) -> RoleArgs {
    let valid_until = if a.valid_until_same {
        stored.valid_until.clone()
    } else if a.valid_forever {
        None
    } else {
        a.valid_until.clone()
    };
    let same_members = stored.member_of.iter().collect::<BTreeSet<_>>() == a.member_of.iter().collect::<BTreeSet<_>>();
    RoleArgs {
        name: Input::Value(a.name.clone()),
        login: a.login,
        password: stored.password.clone(),
        generate_password: stored.generate_password,
        superuser: a.superuser,
        create_database: a.create_database,
        create_role: a.create_role,
        inherit: a.inherit,
        replication: a.replication,
        bypass_rls: a.bypass_rls,
        connection_limit: a.connection_limit,
        valid_until,
        member_of: if same_members { stored.member_of.clone() } else { a.member_of.clone() },
        search_path: a.search_path(),
        statement_timeout: a.setting("statement_timeout").map(str::to_owned),
        reassign_owned_to: stored.reassign_owned_to.clone(),
        drop_owned: stored.drop_owned,
        adopt: stored.adopt,
    }
}

fn flag(on: bool, yes: &str, no: &str) -> String {
    if on { yes.to_owned() } else { no.to_owned() }
}

/// Role attribute keywords for `args`, all of them or only those that differ from `actual`.
fn attributes(args: &RoleArgs, actual: Option<&Actual>) -> Vec<String> {
    let pairs = [
        (args.login, actual.map(|a| a.login), "LOGIN", "NOLOGIN"),
        (args.superuser, actual.map(|a| a.superuser), "SUPERUSER", "NOSUPERUSER"),
        (args.create_database, actual.map(|a| a.create_database), "CREATEDB", "NOCREATEDB"),
        (args.create_role, actual.map(|a| a.create_role), "CREATEROLE", "NOCREATEROLE"),
        (args.inherit, actual.map(|a| a.inherit), "INHERIT", "NOINHERIT"),
        (args.replication, actual.map(|a| a.replication), "REPLICATION", "NOREPLICATION"),
        (args.bypass_rls, actual.map(|a| a.bypass_rls), "BYPASSRLS", "NOBYPASSRLS"),
    ];
    let mut out: Vec<String> = pairs
        .iter()
        .filter(|(want, have, ..)| *have != Some(*want))
        .map(|(want, _, yes, no)| flag(*want, yes, no))
        .collect();
    if actual.is_none_or(|a| a.connection_limit != args.connection_limit) {
        out.push(format!("CONNECTION LIMIT {}", args.connection_limit));
    }
    let validity_differs = match (actual, &args.valid_until) {
        (None, _) => true,
        (Some(a), None) => !a.valid_forever,
        (Some(a), Some(_)) => !a.valid_until_same,
    };
    if validity_differs {
        out.push(format!("VALID UNTIL {}", quote_literal(args.valid_until.as_deref().unwrap_or("infinity"))));
    }
    out
}

fn password_sql(password: Option<&str>) -> String {
    match password {
        Some(pw) => {
            quote_literal(&postgres_protocol::password::scram_sha_256(pw.as_bytes())).replacen('\'', "PASSWORD '", 1)
        }
        None => "PASSWORD NULL".to_owned(),
    }
}

/// Statements that set the role's memberships and settings from what it has now to `args`.
fn membership_and_settings(args: &RoleArgs, actual: Option<&Actual>) -> Vec<String> {
    let q = quote_ident(args.name.get());
    let mut out = Vec::new();
    let have: BTreeSet<&String> = actual.map(|a| a.member_of.iter().collect()).unwrap_or_default();
    let want: BTreeSet<&String> = args.member_of.iter().collect();
    for g in want.difference(&have) {
        out.push(format!("GRANT {} TO {q}", quote_ident(g)));
    }
    for g in have.difference(&want) {
        out.push(format!("REVOKE {} FROM {q}", quote_ident(g)));
    }
    let have_path = actual.and_then(Actual::search_path);
    if have_path != args.search_path {
        match &args.search_path {
            Some(p) if p.is_empty() => out.push(format!("ALTER ROLE {q} SET search_path = ''")),
            Some(p) => out.push(format!(
                "ALTER ROLE {q} SET search_path TO {}",
                p.iter().map(|s| quote_ident(s)).collect::<Vec<_>>().join(", ")
            )),
            None => out.push(format!("ALTER ROLE {q} RESET search_path")),
        }
    }
    let have_timeout = actual.and_then(|a| a.setting("statement_timeout"));
    if have_timeout != args.statement_timeout.as_deref() {
        match &args.statement_timeout {
            Some(t) => out.push(format!("ALTER ROLE {q} SET statement_timeout = {}", quote_literal(t))),
            None => out.push(format!("ALTER ROLE {q} RESET statement_timeout")),
        }
    }
    out
}

/// The handler for `postgres:Role`.
pub(crate) struct RoleHandler {
    pub(crate) conns: Arc<Connections>,
}

impl RoleHandler {
    /// The password the role should have after this call: the given one, the one generated
    /// earlier, or a new one.
    async fn desired_password(
        &self,
        client: &impl GenericClient,
        args: &RoleArgs,
        previous: Option<(&RoleArgs, Option<&String>)>,
        subject: &str,
    ) -> Result<Option<String>, ProviderError> {
        if let Some(pw) = &args.password {
            return Ok(Some(pw.get().clone()));
        }
        if !args.generate_password {
            return Ok(None);
        }
        match previous {
            Some((old_args, Some(pw))) if old_args.generate_password && old_args.password.is_none() => {
                Ok(Some(pw.clone()))
            }
            _ => Ok(Some(generate_password(client, subject).await?)),
        }
    }

    /// Runs `statements` in one transaction.
    async fn run(
        &self,
        client: &mut deadpool_postgres::Object,
        statements: &[String],
        subject: &str,
    ) -> Result<(), ProviderError> {
        if statements.is_empty() {
            return Ok(());
        }
        let tx = client.transaction().await.on(subject)?;
        tx.batch_execute(&statements.join(";\n")).await.on(subject)?;
        tx.commit().await.on(subject)
    }

    async fn observe(
        &self,
        name: &str,
        stored: &RoleArgs,
        id: &str,
        password: Option<String>,
    ) -> Result<Option<Observed<Role>>, ProviderError> {
        let subject = subject(Role::TYPE, name);
        let client = self.conns.maintenance(&subject).await?;
        Ok(fetch(&client, name, stored.valid_until.as_deref(), &subject).await?.map(|a| Observed {
            id: id.to_owned(),
            args: observed_args(stored, &a),
            outputs: RoleOutputs { name: a.name.clone(), password },
        }))
    }
}

#[async_trait]
impl Handler<Role> for RoleHandler {
    fn check(&self, args: &RoleArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        check_ident(&mut failures, "name", Some(&args.name));
        if let Input::Value(n) = &args.name
            && (is_public(n) || n.starts_with("pg_"))
        {
            failures.push(CheckFailure::at(
                "name",
                format!("{n:?} is reserved: `public` and names starting with `pg_` cannot be roles"),
            ));
        }
        if args.password.is_some() && args.generate_password {
            failures.push(CheckFailure::at("generate_password", "give a password or generate one, not both"));
        }
        if args.connection_limit < -1 {
            failures.push(CheckFailure::at("connection_limit", "must be -1 (no limit) or at least 0"));
        }
        for (i, m) in args.member_of.iter().enumerate() {
            if let Err(e) = validate_ident("member_of", m) {
                failures.push(CheckFailure::at(&format!("member_of[{i}]"), e));
            }
        }
        if let Some(t) = &args.reassign_owned_to
            && let Err(e) = validate_ident("reassign_owned_to", t)
        {
            failures.push(CheckFailure::at("reassign_owned_to", e));
        }
        failures
    }

    async fn create(&self, ctx: &OpContext, args: &RoleArgs) -> Result<Created<RoleOutputs>, ProviderError> {
        let name = args.name.get();
        let subject = subject(Role::TYPE, name);
        let mut client = self.conns.maintenance(&subject).await?;
        let existing = fetch(&client, name, args.valid_until.as_deref(), &subject).await?;
        let conflict = || already_exists(Role::TYPE, &format!("role {}", quote_ident(name)), name, "");
        // A retry of this same operation (whose first attempt lost its answer) finds its own role.
        let ours = existing.as_ref().is_some_and(|a| created_by(a.comment.as_deref(), &ctx.operation_id));
        if existing.is_some() && !args.adopt && !ours {
            return Err(conflict());
        }
        let password = self.desired_password(&client, args, None, &subject).await?;
        let q = quote_ident(name);
        let mut statements = Vec::new();
        match &existing {
            None => {
                let mut attrs = attributes(args, None);
                if let Some(pw) = &password {
                    attrs.push(password_sql(Some(pw)));
                }
                statements.push(format!("CREATE ROLE {q} WITH {}", attrs.join(" ")));
                statements
                    .push(format!("COMMENT ON ROLE {q} IS {}", quote_literal(&creation_comment(&ctx.operation_id))));
            }
            Some(a) => {
                let mut attrs = attributes(args, Some(a));
                if args.password.is_some() || args.generate_password {
                    attrs.push(password_sql(password.as_deref()));
                }
                if !attrs.is_empty() {
                    statements.push(format!("ALTER ROLE {q} WITH {}", attrs.join(" ")));
                }
            }
        }
        statements.extend(membership_and_settings(args, existing.as_ref()));
        match self.run(&mut client, &statements, &subject).await {
            Err(e) if has_sqlstate(&e, "42710") => return Err(conflict()),
            other => other?,
        }
        Ok(Created { id: name.clone(), outputs: RoleOutputs { name: name.clone(), password } })
    }

    async fn read(&self, _ctx: &OpContext, stored: &Stored<Role>) -> Result<Option<Observed<Role>>, ProviderError> {
        self.observe(stored.args.name.get(), &stored.args, &stored.id, stored.outputs.password.clone()).await
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Role>,
        args: &RoleArgs,
        _changes: &[PropertyChange],
    ) -> Result<RoleOutputs, ProviderError> {
        let (old, new) = (stored.args.name.get(), args.name.get());
        let subject = subject(Role::TYPE, new);
        let mut client = self.conns.maintenance(&subject).await?;
        let mut statements = Vec::new();
        let mut actual = fetch(&client, new, args.valid_until.as_deref(), &subject).await?;
        if old != new && actual.is_none() {
            actual = fetch(&client, old, args.valid_until.as_deref(), &subject).await?;
            if actual.is_some() {
                statements.push(format!("ALTER ROLE {} RENAME TO {}", quote_ident(old), quote_ident(new)));
            }
        }
        let Some(mut a) = actual else {
            return Err(ProviderError::not_found(format!(
                "{subject} does not exist; run `refresh` to forget it, then `up` to recreate it"
            )));
        };
        a.name = new.clone();
        let password = self
            .desired_password(&client, args, Some((&stored.args, stored.outputs.password.as_ref())), &subject)
            .await?;
        let mut attrs = attributes(args, Some(&a));
        if password != stored.outputs.password {
            attrs.push(password_sql(password.as_deref()));
        }
        if !attrs.is_empty() {
            statements.push(format!("ALTER ROLE {} WITH {}", quote_ident(new), attrs.join(" ")));
        }
        statements.extend(membership_and_settings(args, Some(&a)));
        self.run(&mut client, &statements, &subject).await?;
        Ok(RoleOutputs { name: new.clone(), password })
    }

    async fn delete(&self, _ctx: &OpContext, stored: &Stored<Role>) -> Result<(), ProviderError> {
        let args = &stored.args;
        let name = args.name.get();
        let subject = subject(Role::TYPE, name);
        let client = self.conns.maintenance(&subject).await?;
        let Some(a) = fetch(&client, name, None, &subject).await? else { return Ok(()) };
        let q = quote_ident(name);
        let holders =
            |rows: Vec<tokio_postgres::Row>| rows.into_iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>();
        let databases = holders(
            client
                .query(
                    "SELECT DISTINCT COALESCE(d.datname::text, $2) FROM pg_catalog.pg_shdepend s
                       LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
                      WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND s.refobjid = $1 AND s.deptype <> 'p'
                      ORDER BY 1",
                    &[&a.oid, &self.conns.maintenance_database()],
                )
                .await
                .on(&subject)?,
        );
        if args.reassign_owned_to.is_some() || args.drop_owned {
            for db in &databases {
                let mut statements = Vec::new();
                if let Some(to) = &args.reassign_owned_to {
                    statements.push(format!("REASSIGN OWNED BY {q} TO {}", quote_ident(to)));
                }
                statements.push(format!("DROP OWNED BY {q}"));
                let mut c = match self.conns.get(db, &subject).await {
                    // Dropped meanwhile (perhaps by this same run): nothing of the role is left there.
                    Err(e) if e.kind == ErrorKind::NotFound => continue,
                    other => other?,
                };
                self.run(&mut c, &statements, &format!("{subject} (in database {})", quote_ident(db)))
                    .await
                    .map_err(not_found_is_failure)?;
            }
        }
        match client.batch_execute(&format!("DROP ROLE IF EXISTS {q}")).await {
            Err(e) if sqlstate(&e) == Some("2BP01") => Err(ProviderError::conflict(format!(
                "{subject}: cannot be dropped because it still owns objects or holds privileges \
                 (in databases: {}). Set `reassign_owned_to` or `drop_owned` on the role, run `up`, then delete it. \
                 (SQLSTATE 2BP01 dependent_objects_still_exist{})",
                databases.join(", "),
                e.as_db_error().and_then(|d| d.detail()).map(|d| format!("; detail: {d}")).unwrap_or_default()
            ))),
            other => other.on(&subject).map_err(not_found_is_failure),
        }
    }

    async fn find(&self, ctx: &OpContext, args: &RoleArgs) -> Result<Found<RoleOutputs>, ProviderError> {
        let found: Result<Option<Created<RoleOutputs>>, ProviderError> = async {
            let name = args.name.get();
            let subject = subject(Role::TYPE, name);
            let client = self.conns.maintenance(&subject).await?;
            let made_here = fetch(&client, name, None, &subject)
                .await?
                .is_some_and(|a| created_by(a.comment.as_deref(), &ctx.operation_id));
            if !made_here {
                return Ok(None);
            }
            // A generated password was lost with the crash: set a new one.
            let password = self.desired_password(&client, args, None, &subject).await?;
            if args.generate_password && args.password.is_none() {
                client
                    .batch_execute(&format!(
                        "ALTER ROLE {} WITH {}",
                        quote_ident(name),
                        password_sql(password.as_deref())
                    ))
                    .await
                    .on(&subject)?;
            }
            Ok(Some(Created { id: name.clone(), outputs: RoleOutputs { name: name.clone(), password } }))
        }
        .await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Role>>, ProviderError> {
        self.observe(id, &RoleArgs::new(id), id, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_paths_parse_as_postgres_stores_them() {
        assert_eq!(
            parse_search_path(r#"app, "My Schema", "$user", "a""b""#),
            vec!["app", "My Schema", "$user", r#"a"b"#]
        );
        assert_eq!(parse_search_path("public"), vec!["public"]);
        assert_eq!(parse_search_path(r#""""#), Vec::<String>::new());
        assert_eq!(parse_search_path(""), Vec::<String>::new());
    }

    #[test]
    fn passwords_are_sent_hashed() {
        let sql = password_sql(Some("hunter2"));
        assert!(sql.starts_with("PASSWORD 'SCRAM-SHA-256$4096:"), "{sql}");
        assert!(!sql.contains("hunter2"));
        assert_eq!(password_sql(None), "PASSWORD NULL");
    }

    #[test]
    fn new_roles_state_every_attribute() {
        let attrs = attributes(&RoleArgs::user("app"), None);
        assert_eq!(
            attrs,
            vec![
                "LOGIN",
                "NOSUPERUSER",
                "NOCREATEDB",
                "NOCREATEROLE",
                "INHERIT",
                "NOREPLICATION",
                "NOBYPASSRLS",
                "CONNECTION LIMIT -1",
                "VALID UNTIL 'infinity'"
            ]
        );
    }
}
