//! Emulator configuration: teams, tokens, rate limits, eventual consistency, faults and timings.
//!
//! Every section has defaults, so an empty TOML/JSON file is a valid configuration.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

/// Errors while loading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file that failed.
        path: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or JSON for [`EmulatorConfig`].
    #[error("cannot parse {path}: {message}")]
    Parse {
        /// The file that failed.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// The configuration parsed but is inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole emulator configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Seed for ids, fault decisions and build outcomes; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// When set, `/_emulator/*` requires `Authorization: Bearer <admin_token>`.
    pub admin_token: Option<String>,
    /// Teams that exist. Empty means one default team, `team_emulator` / `emulator`.
    pub teams: Vec<TeamConfig>,
    /// Accepted API tokens. Empty means one default token, `test-token`.
    pub tokens: Vec<TokenConfig>,
    /// Per-token request budget; `None` disables rate limiting.
    pub rate_limit: Option<RateLimitConfig>,
    /// Read-after-create lag.
    pub consistency: ConsistencyConfig,
    /// Injected failures.
    pub faults: FaultConfig,
    /// Build timings and outcomes.
    pub deployments: DeploymentConfig,
    /// Domain verification behaviour.
    pub domains: DomainConfig,
    /// List page sizes.
    pub pagination: PaginationConfig,
    /// Largest accepted upload to `/v2/files`, in bytes.
    pub max_file_size: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            admin_token: None,
            teams: Vec::new(),
            tokens: Vec::new(),
            rate_limit: None,
            consistency: ConsistencyConfig::default(),
            faults: FaultConfig::default(),
            deployments: DeploymentConfig::default(),
            domains: DomainConfig::default(),
            pagination: PaginationConfig::default(),
            max_file_size: 32 * 1024 * 1024,
        }
    }
}

impl EmulatorConfig {
    /// Loads a configuration file; `.json` files are JSON, anything else is TOML.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed = if is_json {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| ConfigError::Parse { path: shown, message })
    }

    /// Fills in the default team and token and checks references between sections.
    pub fn normalized(mut self) -> Result<Self, ConfigError> {
        if self.teams.is_empty() {
            self.teams.push(TeamConfig { id: "team_emulator".into(), slug: "emulator".into(), name: None });
        }
        if self.tokens.is_empty() {
            self.tokens.push(TokenConfig::new("test-token"));
        }
        for token in &self.tokens {
            for team in &token.teams {
                if team != "*" && !self.teams.iter().any(|t| &t.id == team || &t.slug == team) {
                    return Err(ConfigError::Invalid(format!("token refers to unknown team `{team}`")));
                }
            }
        }
        if let Some(rl) = &self.rate_limit
            && (rl.requests == 0 || rl.window_ms == 0)
        {
            return Err(ConfigError::Invalid("rate_limit.requests and rate_limit.window_ms must be positive".into()));
        }
        self.faults.validate()?;
        if self.pagination.default_limit == 0 || self.pagination.default_limit > self.pagination.max_limit {
            return Err(ConfigError::Invalid("pagination.default_limit must be between 1 and max_limit".into()));
        }
        Ok(self)
    }
}

/// A team (a partition of all resources).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Team id as used in `?teamId=`, e.g. `team_abc`.
    pub id: String,
    /// Team slug as used in `?slug=` and in generated `*.vercel.app` names.
    pub slug: String,
    /// Display name; defaults to the slug.
    #[serde(default)]
    pub name: Option<String>,
}

/// An API token and what it may reach.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The bearer token.
    pub token: String,
    /// Team ids or slugs this token may use; empty or `"*"` means every team.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The user behind the token; calls without a team go to this user's personal scope.
    #[serde(default)]
    pub user_id: Option<String>,
}

impl TokenConfig {
    /// A token with access to every team.
    pub fn new(token: impl Into<String>) -> Self {
        Self { token: token.into(), teams: Vec::new(), user_id: None }
    }

    /// Whether the token may act in `team` (matched by id or slug).
    pub fn allows(&self, team: &TeamConfig) -> bool {
        self.teams.is_empty() || self.teams.iter().any(|t| t == "*" || *t == team.id || *t == team.slug)
    }
}

/// A fixed-window request budget per token.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

/// How long a newly created object stays invisible to reads.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsistencyConfig {
    /// Number of single-object GETs answered 404 after the object is created.
    pub hidden_reads: u32,
    /// Milliseconds after creation during which GETs answer 404 and lists omit the object.
    pub hidden_ms: u64,
}

/// Injected failures; all probabilities are in `0.0..=1.0` and drawn from a seeded generator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Probability that a request fails before it is handled.
    pub error_rate: f64,
    /// Statuses to pick from (uniformly) for injected errors.
    pub error_statuses: Vec<u16>,
    /// Probability that a request is handled (its effect kept) but answered with an error anyway.
    pub fail_after_commit_rate: f64,
    /// Fixed latency added to each matching request, in milliseconds.
    pub latency_ms: u64,
    /// Extra random latency in `0..=latency_jitter_ms`.
    pub latency_jitter_ms: u64,
    /// Probability that the connection is reset instead of answered.
    pub reset_rate: f64,
    /// The next N matching requests get 429.
    pub burst_429: u32,
    /// `Retry-After` seconds sent with burst 429s.
    pub retry_after_secs: u64,
    /// Only requests with these methods are affected (empty: all).
    pub methods: Vec<String>,
    /// Only paths starting with one of these are affected (empty: all).
    pub path_prefixes: Vec<String>,
    /// Seed for this fault stream; defaults to the emulator seed.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_statuses: vec![500, 502, 503],
            fail_after_commit_rate: 0.0,
            latency_ms: 0,
            latency_jitter_ms: 0,
            reset_rate: 0.0,
            burst_429: 0,
            retry_after_secs: 1,
            methods: Vec::new(),
            path_prefixes: Vec::new(),
            seed: None,
        }
    }
}

impl FaultConfig {
    /// Checks probabilities and statuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, p) in [
            ("error_rate", self.error_rate),
            ("fail_after_commit_rate", self.fail_after_commit_rate),
            ("reset_rate", self.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::Invalid(format!("faults.{name} must be within 0..=1")));
            }
        }
        let injects_errors = self.error_rate > 0.0 || self.fail_after_commit_rate > 0.0;
        if injects_errors && self.error_statuses.is_empty() {
            return Err(ConfigError::Invalid(
                "faults.error_statuses must not be empty when errors are injected".into(),
            ));
        }
        if let Some(bad) = self.error_statuses.iter().find(|s| !(400..=599).contains(*s)) {
            return Err(ConfigError::Invalid(format!("faults.error_statuses: {bad} is not an error status")));
        }
        Ok(())
    }
}

/// Deployment build timings and outcomes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DeploymentConfig {
    /// Milliseconds spent in `QUEUED`.
    pub queued_ms: u64,
    /// Milliseconds spent in `INITIALIZING` (0 skips the state).
    pub initializing_ms: u64,
    /// Milliseconds spent in `BUILDING`.
    pub building_ms: u64,
    /// Milliseconds between `READY` and `aliasAssigned`.
    pub alias_delay_ms: u64,
    /// Milliseconds a promote or rollback stays pending; 0 completes it synchronously (201).
    pub promote_delay_ms: u64,
    /// Probability that a build ends in `ERROR`.
    pub error_rate: f64,
    /// A deployment containing a file with this base name fails its build.
    pub fail_marker_file: String,
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        Self {
            queued_ms: 500,
            initializing_ms: 0,
            building_ms: 2_000,
            alias_delay_ms: 0,
            promote_delay_ms: 500,
            error_rate: 0.0,
            fail_marker_file: "VERCEL_EMULATOR_FAIL_BUILD".into(),
        }
    }
}

/// Domain verification behaviour.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DomainConfig {
    /// Domains ending with one of these suffixes start unverified and need the TXT challenge.
    pub unverified_suffixes: Vec<String>,
}

/// List page sizes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct PaginationConfig {
    /// Page size when `limit` is not given.
    pub default_limit: usize,
    /// Largest accepted `limit`; larger values get 400.
    pub max_limit: usize,
}

impl Default for PaginationConfig {
    fn default() -> Self {
        Self { default_limit: 20, max_limit: 100 }
    }
}
