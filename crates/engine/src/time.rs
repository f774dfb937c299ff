//! Time as data. The engine never reads a clock: every call carries `now`, a reading of
//! the node's own monotonic clock, and every deadline the engine hands back is on that
//! same clock. Two nodes' instants are never compared with each other.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A reading of one node's local monotonic clock, in nanoseconds since an arbitrary
/// origin (the shell uses `CLOCK_MONOTONIC`/`CLOCK_BOOTTIME`, the simulator its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);
    pub const MAX: Instant = Instant(u64::MAX);

    pub fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    /// Time from `earlier` to `self`, zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        let nanos = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(nanos))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 / 1_000_000;
        write!(f, "{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// Multiply a duration by `num / den` without floating point (deterministic everywhere).
pub fn scale(d: Duration, num: u64, den: u64) -> Duration {
    let nanos = d.as_nanos().saturating_mul(u128::from(num)) / u128::from(den.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
