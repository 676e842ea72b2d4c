//! The emulator's clock: tokio time (so paused test time works) plus an offset tests can advance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Monotonic "ticks" (milliseconds since start) and matching wall-clock epoch milliseconds.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
    epoch_at_start_ms: i64,
    offset_ms: AtomicU64,
}

impl Clock {
    pub fn new() -> Self {
        let epoch = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        Self { start: Instant::now(), epoch_at_start_ms: epoch, offset_ms: AtomicU64::new(0) }
    }

    /// Milliseconds since the emulator started, including any manual advance.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + self.offset_ms.load(Ordering::SeqCst)
    }

    /// Unix epoch milliseconds for a tick.
    pub fn epoch_of(&self, tick_ms: u64) -> i64 {
        self.epoch_at_start_ms + tick_ms as i64
    }

    pub fn epoch_ms(&self) -> i64 {
        self.epoch_of(self.now_ms())
    }

    /// Jumps the clock forward without waiting, so tests can skip build and window durations.
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}
