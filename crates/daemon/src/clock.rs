//! The daemon's clocks. The engine's [`Instant`] is this host's `CLOCK_MONOTONIC` in
//! absolute nanoseconds, so that a deadline handed to the fence guard (another process)
//! means the same instant there. Wall-clock time is used only to stamp journal entries.

use std::time::{Duration, SystemTime};

use engine::Instant;
use nix::time::{clock_gettime, ClockId};

/// Converts between the engine's instants and tokio's, both on `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base_tokio: tokio::time::Instant,
    base_ns: u64,
}

/// `CLOCK_MONOTONIC` now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

impl Clock {
    pub fn new() -> Clock {
        Clock { base_tokio: tokio::time::Instant::now(), base_ns: monotonic_ns() }
    }

    pub fn now(&self) -> Instant {
        Instant(monotonic_ns())
    }

    /// The tokio instant of an engine instant (far future for [`Instant::MAX`]).
    pub fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        let ahead = at.0.saturating_sub(self.base_ns);
        let ahead =
            Duration::from_nanos(ahead.min(u64::MAX / 4)).min(Duration::from_secs(86_400 * 365));
        if at.0 < self.base_ns {
            return self.base_tokio;
        }
        self.base_tokio + ahead
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Wall-clock time as RFC 3339 with milliseconds (UTC), for journal entries.
pub fn wall_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
