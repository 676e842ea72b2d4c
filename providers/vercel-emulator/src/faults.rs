//! Fault injection: latency, error statuses (before or after the request takes effect),
//! bursts of 429s and connection resets, drawn from a seeded generator so runs are repeatable.

use crate::app::AppState;
use crate::config::FaultConfig;
use crate::error::ApiError;
use crate::ratelimit;
use crate::server::ConnKiller;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;

/// Keeps the fault stream independent of the id stream even when both use the same seed.
const FAULT_SEED_SALT: u64 = 0x5eed_fa17_0000_0001;

pub(crate) struct FaultState {
    cfg: FaultConfig,
    rng: StdRng,
    burst_left: u32,
    base_seed: Option<u64>,
}

/// What to do to one request.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    pub delay: Option<Duration>,
    pub burst_429: Option<u64>,
    pub reset: bool,
    pub error_before: Option<u16>,
    pub error_after: Option<u16>,
}

impl FaultState {
    pub fn new(cfg: FaultConfig, base_seed: Option<u64>) -> Self {
        let mut s = Self { cfg: FaultConfig::default(), rng: StdRng::seed_from_u64(0), burst_left: 0, base_seed };
        s.set(cfg);
        s
    }

    /// Replaces the configuration and restarts the random stream, so a test that sets faults
    /// at runtime gets the same decisions every run.
    pub fn set(&mut self, cfg: FaultConfig) {
        self.rng = match cfg.seed.or(self.base_seed) {
            Some(seed) => StdRng::seed_from_u64(seed ^ FAULT_SEED_SALT),
            None => StdRng::from_os_rng(),
        };
        self.burst_left = cfg.burst_429;
        self.cfg = cfg;
    }

    pub fn config(&self) -> FaultConfig {
        let mut c = self.cfg.clone();
        c.burst_429 = self.burst_left;
        c
    }

    fn applies(&self, method: &Method, path: &str) -> bool {
        (self.cfg.methods.is_empty() || self.cfg.methods.iter().any(|m| m.eq_ignore_ascii_case(method.as_str())))
            && (self.cfg.path_prefixes.is_empty() || self.cfg.path_prefixes.iter().any(|p| path.starts_with(p)))
    }

    fn pick_status(&mut self) -> u16 {
        let n = self.cfg.error_statuses.len();
        if n == 0 {
            return 500;
        }
        self.cfg.error_statuses[self.rng.random_range(0..n)]
    }

    pub fn plan(&mut self, method: &Method, path: &str) -> Plan {
        let mut plan = Plan::default();
        if !self.applies(method, path) {
            return plan;
        }
        if self.burst_left > 0 {
            self.burst_left -= 1;
            plan.burst_429 = Some(self.cfg.retry_after_secs);
            return plan;
        }
        let jitter =
            if self.cfg.latency_jitter_ms > 0 { self.rng.random_range(0..=self.cfg.latency_jitter_ms) } else { 0 };
        if self.cfg.latency_ms + jitter > 0 {
            plan.delay = Some(Duration::from_millis(self.cfg.latency_ms + jitter));
        }
        if self.cfg.reset_rate > 0.0 && self.rng.random_bool(self.cfg.reset_rate) {
            plan.reset = true;
            return plan;
        }
        if self.cfg.error_rate > 0.0 && self.rng.random_bool(self.cfg.error_rate) {
            plan.error_before = Some(self.pick_status());
            return plan;
        }
        if self.cfg.fail_after_commit_rate > 0.0 && self.rng.random_bool(self.cfg.fail_after_commit_rate) {
            plan.error_after = Some(self.pick_status());
        }
        plan
    }
}

fn injected(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::for_status(status).into_response()
}

pub(crate) async fn faults_mw(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let plan = app.faults().plan(req.method(), req.uri().path());
    if let Some(delay) = plan.delay {
        app.stats().delayed += 1;
        tokio::time::sleep(delay).await;
    }
    if plan.reset
        && let Some(killer) = req.extensions().get::<Arc<ConnKiller>>()
    {
        app.stats().connection_resets += 1;
        killer.kill();
        // The connection task drops this future together with the socket.
        std::future::pending::<()>().await;
    }
    if let Some(retry) = plan.burst_429 {
        let total = app.config().rate_limit.map_or(0, |r| r.requests);
        let reset_ms = app.clock.epoch_ms() + retry as i64 * 1000;
        return ratelimit::limited_error(total, reset_ms, retry).into_response();
    }
    if let Some(status) = plan.error_before {
        app.stats().injected_errors += 1;
        return injected(status);
    }
    let resp = next.run(req).await;
    if let Some(status) = plan.error_after {
        app.stats().injected_after_commit += 1;
        return injected(status);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rate: f64) -> FaultConfig {
        FaultConfig { error_rate: rate, ..FaultConfig::default() }
    }

    #[test]
    fn same_seed_same_decisions() {
        let mut a = FaultState::new(cfg(0.3), Some(9));
        let mut b = FaultState::new(cfg(0.3), Some(9));
        let plans_a: Vec<_> = (0..200).map(|_| a.plan(&Method::GET, "/x")).collect();
        let plans_b: Vec<_> = (0..200).map(|_| b.plan(&Method::GET, "/x")).collect();
        assert_eq!(plans_a, plans_b);
        let errors = plans_a.iter().filter(|p| p.error_before.is_some()).count();
        assert!((30..=90).contains(&errors), "{errors} errors out of 200");
    }

    #[test]
    fn filters_by_method_and_prefix() {
        let mut s = FaultState::new(
            FaultConfig {
                error_rate: 1.0,
                methods: vec!["post".into()],
                path_prefixes: vec!["/v11/".into()],
                ..FaultConfig::default()
            },
            Some(1),
        );
        assert!(s.plan(&Method::GET, "/v11/projects").error_before.is_none());
        assert!(s.plan(&Method::POST, "/v9/projects").error_before.is_none());
        assert!(s.plan(&Method::POST, "/v11/projects").error_before.is_some());
    }
}
