//! Per-token fixed-window rate limiting with the documented 429 body and `Retry-After`.

use crate::clock::Clock;
use crate::config::RateLimitConfig;
use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: HashMap<String, Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: u64,
    used: u32,
}

/// The outcome of one check.
#[derive(Debug)]
pub(crate) enum Verdict {
    Unlimited,
    Allowed { limit: u32, remaining: u32, reset_epoch_s: i64 },
    Limited(ApiError),
}

/// The 429 error: VD's `rate_limited` code with `limit:{remaining,reset,resetMs,total}`.
pub(crate) fn limited_error(total: u32, reset_epoch_ms: i64, retry_after_s: u64) -> ApiError {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Rate limit exceeded").with(
        "limit",
        json!({
            "remaining": 0,
            "reset": ceil_secs(reset_epoch_ms),
            "resetMs": reset_epoch_ms,
            "total": total,
        }),
    );
    e.retry_after = Some(retry_after_s.max(1));
    e
}

impl RateLimiter {
    pub fn check(&mut self, token: &str, cfg: Option<RateLimitConfig>, clock: &Clock) -> Verdict {
        let Some(cfg) = cfg else {
            return Verdict::Unlimited;
        };
        let now = clock.now_ms();
        let w = self.windows.entry(token.to_owned()).or_insert(Window { start: now, used: 0 });
        if now >= w.start + cfg.window_ms {
            *w = Window { start: now, used: 0 };
        }
        let reset_tick = w.start + cfg.window_ms;
        if w.used >= cfg.requests {
            let wait_ms = reset_tick - now;
            return Verdict::Limited(limited_error(cfg.requests, clock.epoch_of(reset_tick), wait_ms.div_ceil(1000)));
        }
        w.used += 1;
        Verdict::Allowed {
            limit: cfg.requests,
            remaining: cfg.requests - w.used,
            reset_epoch_s: ceil_secs(clock.epoch_of(reset_tick)),
        }
    }

    pub fn reset(&mut self) {
        self.windows.clear();
    }
}

/// Epoch milliseconds to whole seconds, rounding up so `reset` is never before the real reset.
fn ceil_secs(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000)
}
