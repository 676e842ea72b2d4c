//! Request counters per route and status, plus counts of injected faults and 429s, so tests can
//! assert things like "the project was created exactly once".

use crate::app::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Counters for one route (`"METHOD /path/{param}"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStats {
    /// Requests received (including ones that failed or were dropped).
    pub requests: u64,
    /// Responses sent, by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
}

/// Everything the emulator counted since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// All API requests that matched a route.
    pub requests_total: u64,
    /// Requests to paths that match no route.
    pub unmatched: u64,
    /// Per route, keyed like `"POST /v11/projects"` or `"GET /v9/projects/{id_or_name}"`.
    pub routes: BTreeMap<String, RouteStats>,
    /// 429 responses served (rate limiter and injected bursts).
    pub rate_limited: u64,
    /// Injected errors returned before the request was handled.
    pub injected_errors: u64,
    /// Injected errors returned after the request had taken effect.
    pub injected_after_commit: u64,
    /// Connections reset on purpose.
    pub connection_resets: u64,
    /// Requests that got injected latency.
    pub delayed: u64,
}

impl Stats {
    /// Requests received on `route` (e.g. `"POST /v11/projects"`).
    pub fn requests(&self, route: &str) -> u64 {
        self.routes.get(route).map_or(0, |r| r.requests)
    }

    /// Responses on `route` with exactly `status`.
    pub fn status_count(&self, route: &str, status: u16) -> u64 {
        self.routes.get(route).and_then(|r| r.statuses.get(&status)).copied().unwrap_or(0)
    }

    /// 2xx responses on `route`.
    pub fn successes(&self, route: &str) -> u64 {
        self.routes
            .get(route)
            .map_or(0, |r| r.statuses.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, n)| n).sum())
    }
}

pub(crate) async fn stats_mw(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let key = format!("{} {}", req.method(), path);
    {
        let mut s = app.stats();
        s.requests_total += 1;
        s.routes.entry(key.clone()).or_default().requests += 1;
    }
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let mut s = app.stats();
    *s.routes.entry(key).or_default().statuses.entry(status).or_default() += 1;
    if status == 429 {
        s.rate_limited += 1;
    }
    resp
}
