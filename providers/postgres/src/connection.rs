//! Connections: one small pool per database, created on first use, because objects such as
//! schemas, extensions and grants live inside a database and can only be reached from a
//! session connected to it. Cluster-wide work (databases, roles) uses the maintenance database.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use stackwright_core::ProviderError;
use tokio::sync::OnceCell;
use tokio_postgres::NoTls;

use crate::config::PostgresConfig;
use crate::error::{PgResultExt, pg_error};

/// Facts about the server and the provider's own login, read once.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `server_version_num`, e.g. 150004.
    pub version_num: i32,
    /// The role the provider is logged in as.
    pub current_user: String,
}

impl ServerInfo {
    /// Whether `DROP DATABASE … WITH (FORCE)` exists (PostgreSQL 13 and later).
    pub fn supports_drop_force(&self) -> bool {
        self.version_num >= 130_000
    }
}

/// The provider's pools, shared by all its handlers.
pub struct Connections {
    config: PostgresConfig,
    pools: Mutex<HashMap<String, Pool>>,
    info: OnceCell<ServerInfo>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Connections {
    /// Pools over `config`; nothing connects until first use.
    pub fn new(config: PostgresConfig) -> Self {
        Connections { config, pools: Mutex::new(HashMap::new()), info: OnceCell::new() }
    }

    /// The configuration.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// The database used for cluster-wide work.
    pub fn maintenance_database(&self) -> &str {
        &self.config.maintenance_database
    }

    fn pool(&self, database: &str) -> Result<Pool, ProviderError> {
        let mut pools = self.pools.lock().expect("pool map lock");
        if let Some(p) = pools.get(database) {
            return Ok(p.clone());
        }
        let manager = Manager::from_config(
            self.config.driver_config(database),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(self.config.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(self.config.connect_timeout))
            .wait_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| ProviderError::other(format!("postgres provider: cannot build a connection pool: {e}")))?;
        pools.insert(database.to_owned(), pool.clone());
        Ok(pool)
    }

    /// A connection to `database`, for work on `subject` (named in errors). A database that
    /// does not exist is reported as not found.
    pub async fn get(&self, database: &str, subject: &str) -> Result<Object, ProviderError> {
        self.config.validate()?;
        let pool = self.pool(database)?;
        pool.get().await.map_err(|e| match e {
            // A database closed to connections (as it is while being dropped) may open again.
            PoolError::Backend(e) if crate::error::sqlstate(&e) == Some("55000") => {
                let mut err = pg_error(&format!("{subject} (connecting to database \"{database}\")"), &e);
                err.kind = stackwright_core::ErrorKind::Transient;
                err.message.push_str("; if it stays closed, allow connections to it (`allow_connections`)");
                err
            }
            PoolError::Backend(e) => pg_error(&format!("{subject} (connecting to database \"{database}\")"), &e),
            PoolError::Timeout(t) => ProviderError::transient(format!(
                "{subject}: timed out waiting for a connection to \"{database}\" ({t:?})"
            )),
            other => ProviderError::other(format!("{subject}: no connection to \"{database}\": {other}")),
        })
    }

    /// A connection to the maintenance database.
    pub async fn maintenance(&self, subject: &str) -> Result<Object, ProviderError> {
        let db = self.config.maintenance_database.clone();
        self.get(&db, subject).await
    }

    /// Closes the pool of `database`, so none of the provider's own sessions hold it open (before
    /// a rename or a drop).
    pub fn evict(&self, database: &str) {
        let pool = self.pools.lock().expect("pool map lock").remove(database);
        if let Some(pool) = pool {
            pool.close();
        }
    }

    /// Server version and login, read once.
    pub async fn info(&self) -> Result<&ServerInfo, ProviderError> {
        self.info
            .get_or_try_init(|| async {
                let subject = "postgres provider";
                let client = self.maintenance(subject).await?;
                let row = client
                    .query_one("SELECT current_setting('server_version_num')::int, current_user::text", &[])
                    .await
                    .on(subject)?;
                Ok(ServerInfo { version_num: row.get(0), current_user: row.get(1) })
            })
            .await
    }
}
