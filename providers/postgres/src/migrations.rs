//! `postgres:Migrations` — an ordered folder of SQL files, each applied once, in its own
//! transaction, and recorded with its SHA-256 checksum in a history table in the database.
//!
//! The program reads the folder when it runs ([`MigrationsArgs::from_dir`]), so the plan lists
//! each file's version and checksum; at apply time each file is read again and must still have
//! the checksum the plan showed. A file that was already applied and has since been edited is
//! refused, as is a new file that sorts before one already applied. `read` reports the versions
//! the history table records, so a re-run with no new files is a no-op. Deleting the resource
//! forgets it: migrations are not undone, and the history table stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stackwright_core::{
    Args, CheckFailure, Created, ErrorKind, Found, Handler, Input, Observed, OpContext, Outputs, PropertyChange,
    ProviderError, Resource, Stored,
};

use crate::common::check_ident;
use crate::connection::Connections;
use crate::error::{PgResultExt, pg_error};
use crate::ident::{join_id, quote_ident, quote_qualified, split_id_exact};

/// The `postgres:Migrations` resource type. Its id is `database.history_schema.history_table`.
pub struct Migrations;

impl Resource for Migrations {
    const TYPE: &'static str = "postgres:Migrations";
    type Args = MigrationsArgs;
    type Outputs = MigrationsOutputs;
}

/// One migration file: `<version>.sql` in the folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationFile {
    /// The file name without `.sql`; files apply in byte order of their versions.
    pub version: String,
    /// SHA-256 of the file's bytes, in hex.
    pub checksum: String,
}

/// Arguments of `postgres:Migrations`.
#[derive(Clone, Serialize, Deserialize, Args)]
pub struct MigrationsArgs {
    /// The database to migrate.
    #[sw(replace)]
    pub database: Input<String>,
    /// The folder holding the `.sql` files.
    pub directory: String,
    /// The schema of the history table.
    #[sw(replace)]
    #[serde(default = "default_history_schema")]
    pub history_schema: String,
    /// The history table.
    #[sw(replace)]
    #[serde(default = "default_history_table")]
    pub history_table: String,
    /// The files, in order (from [`MigrationsArgs::from_dir`]).
    pub migrations: Vec<MigrationFile>,
    /// The role the migrations run as (`SET LOCAL ROLE`), so it owns what they create and its
    /// default privileges apply; the provider's login when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<Input<String>>,
}

fn default_history_schema() -> String {
    "public".into()
}

fn default_history_table() -> String {
    "stackwright_migrations".into()
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn checksum(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn file_path(directory: &str, version: &str) -> PathBuf {
    Path::new(directory).join(format!("{version}.sql"))
}

impl MigrationsArgs {
    /// Reads the `.sql` files of `directory` (other files are ignored), in byte order of their
    /// names, with their checksums. The history table is `public.stackwright_migrations`.
    pub fn from_dir(database: impl Into<Input<String>>, directory: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = directory.as_ref();
        let context =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("migrations folder {}: {e}", dir.display()));
        let mut migrations = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(context)? {
            let path = entry.map_err(context)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("sql") || !path.is_file() {
                continue;
            }
            let version = path.file_stem().and_then(|s| s.to_str()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: file name is not UTF-8", path.display()),
                )
            })?;
            let bytes =
                std::fs::read(&path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            migrations.push(MigrationFile { version: version.to_owned(), checksum: checksum(&bytes) });
        }
        migrations.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(MigrationsArgs {
            database: database.into(),
            directory: dir.to_string_lossy().into_owned(),
            history_schema: default_history_schema(),
            history_table: default_history_table(),
            migrations,
            run_as: None,
        })
    }

    /// The same migrations, run as `role`.
    pub fn run_as(mut self, role: impl Into<Input<String>>) -> Self {
        self.run_as = Some(role.into());
        self
    }

    fn id(&self) -> String {
        join_id(&[self.database.get(), &self.history_schema, &self.history_table])
    }

    fn set_role_sql(&self) -> String {
        match &self.run_as {
            Some(role) => format!("SET LOCAL ROLE {}", quote_ident(role.get())),
            None => "SELECT 1".to_owned(),
        }
    }

    fn describe(&self) -> String {
        format!("{} in database {}", Migrations::TYPE, quote_ident(self.database.get()))
    }

    fn table(&self) -> String {
        quote_qualified(&self.history_schema, &self.history_table)
    }

    /// An advisory lock key for this history table, so concurrent runs apply one at a time.
    fn lock_sql(&self) -> String {
        format!(
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext({}))",
            crate::ident::quote_literal(&format!("stackwright-migrations:{}", self.table()))
        )
    }
}

/// Outputs of `postgres:Migrations`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct MigrationsOutputs {
    /// The version the database is at: the last applied migration.
    #[sw(computed)]
    pub version: Option<String>,
    /// How many migrations the history table records.
    #[sw(computed)]
    pub applied: usize,
}

/// version → checksum of the applied migrations; empty when there is no history table yet.
async fn applied(
    client: &impl GenericClient,
    args: &MigrationsArgs,
    subject: &str,
) -> Result<BTreeMap<String, String>, ProviderError> {
    let exists =
        client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&args.table()]).await.on(subject)?.get::<_, bool>(0);
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows = client
        .query(&format!("SELECT version, checksum FROM {} ORDER BY version", args.table()), &[])
        .await
        .on(subject)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn outputs(applied: &BTreeMap<String, String>) -> MigrationsOutputs {
    MigrationsOutputs { version: applied.keys().next_back().cloned(), applied: applied.len() }
}

/// Refuses edited applied files and new files that sort before applied ones; returns the
/// files still to apply, in order.
fn plan<'a>(
    args: &'a MigrationsArgs,
    applied: &BTreeMap<String, String>,
    subject: &str,
) -> Result<Vec<&'a MigrationFile>, ProviderError> {
    let mut problems = Vec::new();
    for m in &args.migrations {
        if let Some(done) = applied.get(&m.version)
            && *done != m.checksum
        {
            problems.push(format!(
                "migration {v} was already applied with checksum {done}, but {file} now has checksum {now}. \
                 An applied migration must not change: restore the file and put the change in a new migration",
                v = m.version,
                file = file_path(&args.directory, &m.version).display(),
                now = m.checksum
            ));
        }
    }
    let pending: Vec<&MigrationFile> = args.migrations.iter().filter(|m| !applied.contains_key(&m.version)).collect();
    if let (Some(first), Some(last_applied)) = (pending.first(), applied.keys().next_back())
        && first.version < *last_applied
    {
        problems.push(format!(
            "migration {} is new but sorts before {last_applied}, which is already applied; \
             rename it so it comes after every applied migration",
            first.version
        ));
    }
    if !problems.is_empty() {
        return Err(ProviderError::invalid_input(format!("{subject}: {}", problems.join("; "))));
    }
    Ok(pending)
}

/// The handler for `postgres:Migrations`.
pub(crate) struct MigrationsHandler {
    pub(crate) conns: Arc<Connections>,
}

impl MigrationsHandler {
    async fn migrate(&self, args: &MigrationsArgs) -> Result<MigrationsOutputs, ProviderError> {
        let subject = args.describe();
        let mut client = self.conns.get(args.database.get(), &subject).await?;
        {
            let tx = client.transaction().await.on(&subject)?;
            tx.batch_execute(&format!(
                "{lock};
                 {set_role};
                 CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {table} (
                     version text PRIMARY KEY,
                     checksum text NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now(),
                     execution_ms bigint NOT NULL
                 )",
                lock = args.lock_sql(),
                set_role = args.set_role_sql(),
                schema = quote_ident(&args.history_schema),
                table = args.table()
            ))
            .await
            .on(&subject)?;
            tx.commit().await.on(&subject)?;
        }
        let done = applied(&client, args, &subject).await?;
        for m in plan(args, &done, &subject)? {
            let path = file_path(&args.directory, &m.version);
            let bytes = std::fs::read(&path).map_err(|e| {
                ProviderError::invalid_input(format!("{subject}: cannot read migration {}: {e}", path.display()))
            })?;
            if checksum(&bytes) != m.checksum {
                return Err(ProviderError::invalid_input(format!(
                    "{subject}: {} changed after the plan was made (its checksum is no longer {}); run the update again",
                    path.display(),
                    m.checksum
                )));
            }
            let sql = String::from_utf8(bytes)
                .map_err(|_| ProviderError::invalid_input(format!("{subject}: {} is not UTF-8", path.display())))?;
            let started = Instant::now();
            let tx = client.transaction().await.on(&subject)?;
            tx.batch_execute(&format!("{};\n{}", args.lock_sql(), args.set_role_sql())).await.on(&subject)?;
            let recorded = tx
                .query_opt(&format!("SELECT checksum FROM {} WHERE version = $1", args.table()), &[&m.version])
                .await
                .on(&subject)?;
            if recorded.is_some() {
                // Another run applied it meanwhile; the checksum check above will speak next time.
                continue;
            }
            let step = format!("{subject}: migration {}", path.display());
            tx.batch_execute(&sql).await.map_err(|e| pg_error(&step, &e))?;
            let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            tx.execute(
                &format!("INSERT INTO {} (version, checksum, execution_ms) VALUES ($1, $2, $3)", args.table()),
                &[&m.version, &m.checksum, &elapsed],
            )
            .await
            .on(&step)?;
            tx.commit().await.on(&step)?;
        }
        Ok(outputs(&applied(&client, args, &subject).await?))
    }

    async fn observe(&self, stored: &MigrationsArgs, id: &str) -> Result<Option<Observed<Migrations>>, ProviderError> {
        let subject = stored.describe();
        let client = match self.conns.get(stored.database.get(), &subject).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let done = applied(&client, stored, &subject).await?;
        // Report the stored files that the history records, with the recorded checksums: files
        // not applied yet (or removed from the history) show as changes to apply.
        let migrations = stored
            .migrations
            .iter()
            .filter_map(|m| {
                done.get(&m.version).map(|c| MigrationFile { version: m.version.clone(), checksum: c.clone() })
            })
            .collect();
        Ok(Some(Observed {
            id: id.to_owned(),
            args: MigrationsArgs { migrations, ..stored.clone() },
            outputs: outputs(&done),
        }))
    }
}

#[async_trait]
impl Handler<Migrations> for MigrationsHandler {
    fn check(&self, args: &MigrationsArgs) -> Vec<CheckFailure> {
        let mut failures = Vec::new();
        check_ident(&mut failures, "database", Some(&args.database));
        check_ident(&mut failures, "history_schema", Some(&Input::Value(args.history_schema.clone())));
        check_ident(&mut failures, "history_table", Some(&Input::Value(args.history_table.clone())));
        check_ident(&mut failures, "run_as", args.run_as.as_ref());
        if args.migrations.windows(2).any(|w| w[0].version >= w[1].version) {
            failures.push(CheckFailure::at("migrations", "versions must be unique and in ascending order"));
        }
        failures
    }

    async fn create(
        &self,
        _ctx: &OpContext,
        args: &MigrationsArgs,
    ) -> Result<Created<MigrationsOutputs>, ProviderError> {
        Ok(Created { id: args.id(), outputs: self.migrate(args).await? })
    }

    async fn read(
        &self,
        _ctx: &OpContext,
        stored: &Stored<Migrations>,
    ) -> Result<Option<Observed<Migrations>>, ProviderError> {
        self.observe(&stored.args, &stored.id).await
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _stored: &Stored<Migrations>,
        args: &MigrationsArgs,
        _changes: &[PropertyChange],
    ) -> Result<MigrationsOutputs, ProviderError> {
        self.migrate(args).await
    }

    async fn delete(&self, _ctx: &OpContext, _stored: &Stored<Migrations>) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn find(&self, _ctx: &OpContext, args: &MigrationsArgs) -> Result<Found<MigrationsOutputs>, ProviderError> {
        let found: Result<Option<Created<MigrationsOutputs>>, ProviderError> =
            async { Ok(self.observe(args, &args.id()).await?.map(|o| Created { id: o.id, outputs: o.outputs })) }.await;
        Ok(found?.into())
    }

    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<Migrations>>, ProviderError> {
        let parts = split_id_exact(Migrations::TYPE, id, &["database", "history_schema", "history_table"])
            .map_err(ProviderError::invalid_input)?;
        let args = MigrationsArgs {
            database: Input::Value(parts[0].clone()),
            directory: String::new(),
            history_schema: parts[1].clone(),
            history_table: parts[2].clone(),
            migrations: Vec::new(),
            run_as: None,
        };
        let subject = args.describe();
        let client = match self.conns.get(args.database.get(), &subject).await {
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let done = applied(&client, &args, &subject).await?;
        let migrations = done.iter().map(|(v, c)| MigrationFile { version: v.clone(), checksum: c.clone() }).collect();
        Ok(Some(Observed { id: id.to_owned(), args: MigrationsArgs { migrations, ..args }, outputs: outputs(&done) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(v: &str, c: &str) -> MigrationFile {
        MigrationFile { version: v.into(), checksum: c.into() }
    }

    fn args(files: Vec<MigrationFile>) -> MigrationsArgs {
        MigrationsArgs {
            database: Input::Value("app".into()),
            directory: "migrations".into(),
            history_schema: default_history_schema(),
            history_table: default_history_table(),
            migrations: files,
            run_as: None,
        }
    }

    #[test]
    fn checksums_are_sha256_hex() {
        assert_eq!(checksum(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn planning_applies_only_new_files_and_refuses_edits_and_gaps() {
        let done: BTreeMap<String, String> = [("001".to_string(), "a".to_string())].into();
        let a = args(vec![file("001", "a"), file("002", "b")]);
        let pending = plan(&a, &done, "m").unwrap();
        assert_eq!(pending.iter().map(|m| m.version.as_str()).collect::<Vec<_>>(), vec!["002"]);

        let edited = args(vec![file("001", "x")]);
        let e = plan(&edited, &done, "m").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(e.message.contains("already applied with checksum a"), "{e}");
        assert!(e.message.contains("must not change"), "{e}");

        let gap = args(vec![file("000", "z"), file("001", "a")]);
        let e = plan(&gap, &done, "m").unwrap_err();
        assert!(e.message.contains("sorts before 001"), "{e}");
    }

    #[test]
    fn folders_are_read_in_order_with_checksums() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("002_b.sql"), "select 2").unwrap();
        std::fs::write(dir.path().join("001_a.sql"), "select 1").unwrap();
        std::fs::write(dir.path().join("README.md"), "ignored").unwrap();
        let a = MigrationsArgs::from_dir("app", dir.path()).unwrap();
        assert_eq!(a.migrations.iter().map(|m| m.version.as_str()).collect::<Vec<_>>(), vec!["001_a", "002_b"]);
        assert_eq!(a.migrations[0].checksum, checksum(b"select 1"));
        assert!(MigrationsArgs::from_dir("app", dir.path().join("missing")).is_err());
    }
}
