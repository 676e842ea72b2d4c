//! An emulator of the parts of the Vercel REST API that an infrastructure-as-code provider
//! uses (projects, environment variables, project domains, deployments, aliases), with
//! configurable rate limits, eventual consistency and fault injection, for offline use and
//! for testing Stackwright's Vercel provider.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stackwright_vercel_emulator::StartError> {
//! use stackwright_vercel_emulator::Emulator;
//! let emu = Emulator::builder().token("t").team("team_x", "x").seed(7).start().await?;
//! let url = format!("{}/v9/projects/my-app?teamId=team_x", emu.base_url());
//! # let _ = url;
//! emu.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admin;
mod app;
mod auth;
mod clock;
pub mod config;
mod deployments;
mod domains;
mod env;
mod error;
mod faults;
mod json;
mod pagination;
mod projects;
mod ratelimit;
mod server;
mod stats;
mod store;

pub use config::{
    ConfigError, ConsistencyConfig, DeploymentConfig, DomainConfig, EmulatorConfig, FaultConfig, PaginationConfig,
    RateLimitConfig, TeamConfig, TokenConfig,
};
pub use stats::{RouteStats, Stats};

use app::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Entry point: `Emulator::builder()`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with default configuration (127.0.0.1, random port, token `test-token`,
    /// team `team_emulator`).
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address that was requested.
        addr: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Configures and starts an emulator.
#[derive(Debug, Clone, Default)]
pub struct EmulatorBuilder {
    config: EmulatorConfig,
}

impl EmulatorBuilder {
    /// Replaces the whole configuration (e.g. one loaded with [`EmulatorConfig::from_file`]).
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Listen address (default `127.0.0.1:0`).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.config.bind = addr;
        self
    }

    /// Seed for ids, fault decisions and build outcomes.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    /// Accepts `token` for every team.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.tokens.push(TokenConfig::new(token));
        self
    }

    /// Accepts a token with explicit team access and user id.
    pub fn token_config(mut self, token: TokenConfig) -> Self {
        self.config.tokens.push(token);
        self
    }

    /// Adds a team.
    pub fn team(mut self, id: impl Into<String>, slug: impl Into<String>) -> Self {
        self.config.teams.push(TeamConfig { id: id.into(), slug: slug.into(), name: None });
        self
    }

    /// Requires this bearer token on `/_emulator/*`.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.config.admin_token = Some(token.into());
        self
    }

    /// Allows `requests` per token per `window`.
    pub fn rate_limit(mut self, requests: u32, window: Duration) -> Self {
        self.config.rate_limit = Some(RateLimitConfig { requests, window_ms: window.as_millis() as u64 });
        self
    }

    /// New objects answer 404 to the first `hidden_reads` GETs and for `hidden_for`.
    pub fn consistency(mut self, hidden_reads: u32, hidden_for: Duration) -> Self {
        self.config.consistency = ConsistencyConfig { hidden_reads, hidden_ms: hidden_for.as_millis() as u64 };
        self
    }

    /// Fault injection settings.
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.config.faults = faults;
        self
    }

    /// Build timings and outcomes.
    pub fn deployments(mut self, deployments: DeploymentConfig) -> Self {
        self.config.deployments = deployments;
        self
    }

    /// Domain verification settings.
    pub fn domains(mut self, domains: DomainConfig) -> Self {
        self.config.domains = domains;
        self
    }

    /// List page sizes.
    pub fn pagination(mut self, pagination: PaginationConfig) -> Self {
        self.config.pagination = pagination;
        self
    }

    /// Binds the listener and starts serving in a background task.
    pub async fn start(self) -> Result<EmulatorHandle, StartError> {
        let config = self.config.normalized()?;
        let addr = config.bind;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        let app = Arc::new(AppState::new(config));
        let router = app::router(app.clone());
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, rx));
        tracing::info!(%addr, "vercel emulator listening");
        Ok(EmulatorHandle { addr, base_url: format!("http://{addr}"), app, shutdown: Some(tx), task: Some(task) })
    }
}

/// A running emulator. Dropping it stops the server; [`EmulatorHandle::shutdown`] also waits
/// for open connections to finish.
pub struct EmulatorHandle {
    addr: SocketAddr,
    base_url: String,
    app: Arc<AppState>,
    shutdown: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`, to use in place of `https://api.vercel.com`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL of the admin API.
    pub fn admin_url(&self) -> String {
        format!("{}/_emulator", self.base_url)
    }

    /// The configuration in force, including runtime changes.
    pub fn config(&self) -> EmulatorConfig {
        let mut cfg = self.app.config();
        cfg.faults = self.app.faults().config();
        cfg
    }

    /// A snapshot of the request counters.
    pub fn stats(&self) -> Stats {
        self.app.stats().clone()
    }

    /// Zeroes the request counters.
    pub fn reset_stats(&self) {
        *self.app.stats() = Stats::default();
    }

    /// Empties all state and restores the starting configuration.
    pub fn reset(&self) {
        self.app.reset();
    }

    /// Replaces the fault settings and restarts their random stream.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), ConfigError> {
        faults.validate()?;
        self.app.faults().set(faults.clone());
        self.app.update_config(|c| c.faults = faults);
        Ok(())
    }

    /// Replaces (or with `None` disables) the rate limit and starts fresh windows.
    pub fn set_rate_limit(&self, limit: Option<RateLimitConfig>) {
        self.app.update_config(|c| c.rate_limit = limit);
        self.app.limiter().reset();
    }

    /// Applies to objects created from now on.
    pub fn set_consistency(&self, consistency: ConsistencyConfig) {
        self.app.update_config(|c| c.consistency = consistency);
    }

    /// Applies to deployments (and promotes) started from now on.
    pub fn set_deployment_config(&self, deployments: DeploymentConfig) {
        self.app.update_config(|c| c.deployments = deployments);
    }

    /// Applies to domains added from now on.
    pub fn set_domain_config(&self, domains: DomainConfig) {
        self.app.update_config(|c| c.domains = domains);
    }

    /// Moves the emulator clock forward: builds progress, windows and read lags expire.
    pub fn advance_clock(&self, by: Duration) {
        self.app.clock.advance(by);
    }

    /// Adds a record to the fake DNS used by domain verification and `/v6/domains/{d}/config`.
    pub fn add_dns_record(&self, name: &str, kind: &str, value: &str) {
        self.app.store().dns.push(domains::DnsRecord {
            name: name.to_owned(),
            kind: kind.to_owned(),
            value: value.to_owned(),
        });
    }

    /// Everything stored, including values the API never returns.
    pub fn state(&self) -> serde_json::Value {
        self.app.store().dump(&self.app.clock)
    }

    /// Stops accepting connections and waits (up to 5 s) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}
