//! The provider's base configuration: where the server is and how to log in, given as a
//! connection URL (which is secret: it usually holds a password) or as separate parts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use stackwright_core::ProviderError;

/// Whether to use TLS for connections to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS if the server offers it and the build supports it; otherwise connect in clear.
    /// This build has no TLS connector, so it connects in clear.
    #[default]
    Prefer,
    /// Require TLS. Refused by this build, which has no TLS connector: a clear error is better
    /// than a silent downgrade.
    Require,
}

impl SslMode {
    /// The libpq name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
        }
    }
}

impl FromStr for SslMode {
    type Err = ProviderError;
    fn from_str(s: &str) -> Result<Self, ProviderError> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "allow" | "prefer" => Ok(SslMode::Prefer),
            "require" | "verify-ca" | "verify-full" => Ok(SslMode::Require),
            other => Err(ProviderError::invalid_input(format!(
                "postgres provider: unknown sslmode {other:?}; use disable, prefer or require"
            ))),
        }
    }
}

/// How the provider reaches the server.
///
/// Build it from a URL with [`PostgresConfig::from_url`] or from parts with
/// [`PostgresConfig::new`] and the `with_*` methods. Its `Debug` output hides the password.
#[derive(Clone)]
pub struct PostgresConfig {
    /// Host name, IP address, or a Unix socket directory (starting with `/`).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The user the provider connects as. Objects created without an explicit owner belong to it.
    pub user: String,
    /// Its password, if the server asks for one.
    pub password: Option<String>,
    /// TLS mode.
    pub sslmode: SslMode,
    /// The database used for cluster-wide work (databases, roles): `postgres` by default.
    pub maintenance_database: String,
    /// The most connections kept open to each database.
    pub pool_size: usize,
    /// How long to wait for a new connection.
    pub connect_timeout: Duration,
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[secret]"))
            .field("sslmode", &self.sslmode)
            .field("maintenance_database", &self.maintenance_database)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl PostgresConfig {
    /// Connects to `host:port` as `user`, without a password, over the `postgres` database.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Self {
        PostgresConfig {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
            sslmode: SslMode::default(),
            maintenance_database: "postgres".into(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Parses a libpq connection URL (`postgres://user:password@host:port/database?sslmode=…`)
    /// or key/value string (`host=… user=…`). The database in the URL becomes the maintenance
    /// database.
    pub fn from_url(url: &str) -> Result<Self, ProviderError> {
        let bad = |e: &dyn fmt::Display| {
            // The driver's message never repeats the URL, so the password cannot leak through it.
            ProviderError::invalid_input(format!("postgres provider: the connection URL is not valid: {e}"))
        };
        let parsed = tokio_postgres::Config::from_str(url).map_err(|e| bad(&e))?;
        let host = match parsed.get_hosts().first() {
            None => "localhost".to_owned(),
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.to_string_lossy().into_owned(),
        };
        let port = parsed.get_ports().first().copied().unwrap_or(5432);
        let mut config = PostgresConfig::new(host, port, parsed.get_user().unwrap_or("postgres"));
        if let Some(pw) = parsed.get_password() {
            config.password = Some(String::from_utf8(pw.to_vec()).map_err(|_| bad(&"the password is not UTF-8"))?);
        }
        if let Some(db) = parsed.get_dbname() {
            config.maintenance_database = db.to_owned();
        }
        if let Some(t) = parsed.get_connect_timeout() {
            config.connect_timeout = *t;
        }
        config.sslmode = match parsed.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        };
        Ok(config)
    }

    /// Sets the password.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the TLS mode.
    pub fn with_sslmode(mut self, mode: SslMode) -> Self {
        self.sslmode = mode;
        self
    }

    /// Sets the maintenance database.
    pub fn with_maintenance_database(mut self, database: impl Into<String>) -> Self {
        self.maintenance_database = database.into();
        self
    }

    /// Sets how many connections are kept open to each database.
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Checks that this build can honour the configuration.
    pub fn validate(&self) -> Result<(), ProviderError> {
        if self.sslmode == SslMode::Require {
            return Err(ProviderError::invalid_input(
                "postgres provider: sslmode=require asks for TLS, but this build of stackwright-postgres has no \
                 TLS connector; connect over a trusted network or a Unix socket with sslmode=disable or prefer",
            ));
        }
        if self.host.is_empty() || self.user.is_empty() {
            return Err(ProviderError::invalid_input("postgres provider: host and user must not be empty"));
        }
        Ok(())
    }

    /// The driver configuration for a connection to `database`.
    pub(crate) fn driver_config(&self, database: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database)
            .application_name("stackwright")
            .connect_timeout(self.connect_timeout)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                _ => tokio_postgres::config::SslMode::Prefer,
            });
        if let Some(pw) = &self.password {
            c.password(pw);
        }
        c
    }
}

/// Percent-encodes a URL component (user info, path): everything but unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A connection URL for `user` (with `password`) to `database` on `host:port`.
pub fn connection_url(host: &str, port: u16, user: &str, password: Option<&str>, database: &str) -> String {
    let auth = match password {
        Some(pw) => format!("{}:{}", percent_encode(user), percent_encode(pw)),
        None => percent_encode(user),
    };
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
    format!("postgres://{auth}@{host}:{port}/{}", percent_encode(database))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_parts() {
        let c = PostgresConfig::from_url("postgres://admin:s%40cret@db.internal:6543/ops?sslmode=disable").unwrap();
        assert_eq!(c.host, "db.internal");
        assert_eq!(c.port, 6543);
        assert_eq!(c.user, "admin");
        assert_eq!(c.password.as_deref(), Some("s@cret"));
        assert_eq!(c.maintenance_database, "ops");
        assert_eq!(c.sslmode, SslMode::Disable);
        let debug = format!("{c:?}");
        assert!(!debug.contains("s@cret"), "{debug}");
        assert!(debug.contains("[secret]"));
    }

    #[test]
    fn defaults_and_tls_requirements() {
        let c = PostgresConfig::from_url("postgres://127.0.0.1").unwrap();
        assert_eq!((c.port, c.user.as_str(), c.maintenance_database.as_str()), (5432, "postgres", "postgres"));
        assert!(c.validate().is_ok());
        let c = PostgresConfig::from_url("postgres://u@h/db?sslmode=require").unwrap();
        let err = c.validate().unwrap_err();
        assert!(err.message.contains("TLS"), "{err}");
        assert!(PostgresConfig::from_url("postgres://h:notaport").is_err());
        assert!("verify-full".parse::<SslMode>().is_ok_and(|m| m == SslMode::Require));
        assert!("sometimes".parse::<SslMode>().is_err());
    }

    #[test]
    fn connection_urls_encode_user_info_and_database() {
        assert_eq!(
            connection_url("db", 5432, "app user", Some("p@ss/w:rd"), "My DB"),
            "postgres://app%20user:p%40ss%2Fw%3Ard@db:5432/My%20DB"
        );
        assert_eq!(connection_url("::1", 5432, "u", None, "d"), "postgres://u@[::1]:5432/d");
    }
}
