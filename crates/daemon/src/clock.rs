//! The daemon's clocks. The engine's [`Instant`] is this host's `CLOCK_MONOTONIC` in
//! absolute nanoseconds, so that a deadline handed to the fence guard (another process)
//! means the same instant there. Wall-clock time is used only to stamp journal entries.

use std::time::SystemTime;

use engine::Instant;
use nix::time::{clock_gettime, ClockId};

/// The engine's clock: `CLOCK_MONOTONIC` read as an [`Instant`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock;

/// `CLOCK_MONOTONIC` now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

impl Clock {
    pub fn new() -> Clock {
        Clock
    }

    pub fn now(&self) -> Instant {
        Instant(monotonic_ns())
    }
}

/// Wall-clock time as RFC 3339 with milliseconds (UTC), for journal entries.
pub fn wall_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
