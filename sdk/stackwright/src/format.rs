//! Small text formats shared by errors and renderings, below both so neither imports the other.

use std::time::Duration;

/// A short human duration: `850ms`, `1.2s`, `3m04s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}
