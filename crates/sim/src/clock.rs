//! One node's simulated monotonic clock: `local = offset + real × (1 + drift)`, in whole
//! nanoseconds with integer arithmetic only (so a run reproduces on every platform).
//!
//! It converts both ways: real to local for every call into an engine, and a local
//! deadline back to the earliest real instant at which the clock reads it, for timers.
//! It must not know about engines or events.

use engine::Instant;

/// The largest drift the simulator gives a clock, in parts per million (±0.5 %: half of
/// what the engine assumes, `engine::CLOCK_DRIFT_PPM_MAX`).
pub const SIM_DRIFT_PPM_MAX: i64 = 5_000;

const PPM: i128 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// The local reading at real time zero.
    pub offset_ns: u64,
    /// Rate error in parts per million; positive runs fast.
    pub drift_ppm: i64,
}

impl Clock {
    /// A perfect clock that reads real time.
    pub const EXACT: Clock = Clock { offset_ns: 0, drift_ppm: 0 };

    pub fn new(offset_ns: u64, drift_ppm: i64) -> Clock {
        assert!(drift_ppm.abs() <= SIM_DRIFT_PPM_MAX, "drift {drift_ppm} ppm out of range");
        Clock { offset_ns, drift_ppm }
    }

    /// The local reading at real time `real_ns` (non-decreasing in `real_ns`).
    pub fn local(&self, real_ns: u64) -> Instant {
        // floor(real × drift / 1e6) without 128-bit division (it was a tenth of the
        // simulator's time): split real into whole and partial millions.
        let whole = (real_ns / PPM as u64) as i64;
        let part = (real_ns % PPM as u64) as i64;
        let skew = whole * self.drift_ppm + (part * self.drift_ppm).div_euclid(PPM as i64);
        let local = i128::from(self.offset_ns) + i128::from(real_ns) + i128::from(skew);
        Instant(u64::try_from(local.max(0)).unwrap_or(u64::MAX))
    }

    /// The earliest real time at which the clock reads at least `local`; `None` for
    /// [`Instant::MAX`] (never).
    pub fn real_at(&self, local: Instant) -> Option<u64> {
        if local == Instant::MAX {
            return None;
        }
        if self.local(0) >= local {
            return Some(0);
        }
        // A floating-point guess, then an exact walk: the answer does not depend on
        // the guess, so it is the same on every platform.
        let target = local.0.saturating_sub(self.offset_ns) as f64;
        let guess = target * 1e6 / (1e6 + self.drift_ppm as f64);
        let mut real = (guess.max(0.0) as u64).min(u64::MAX / 2);
        let mut steps = 0;
        while self.local(real) < local {
            real += 1;
            steps += 1;
            assert!(steps < 100_000, "clock inverse diverged");
        }
        while real > 0 && self.local(real - 1) >= local {
            real -= 1;
            steps += 1;
            assert!(steps < 100_000, "clock inverse diverged");
        }
        Some(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_clock_reads_real_time() {
        assert_eq!(Clock::EXACT.local(1234), Instant(1234));
        assert_eq!(Clock::EXACT.real_at(Instant(1234)), Some(1234));
        assert_eq!(Clock::EXACT.real_at(Instant::MAX), None);
    }

    #[test]
    fn inverse_is_the_earliest_real_instant() {
        for drift in [-5_000, -1, 0, 7, 4_999, 5_000] {
            let clock = Clock::new(987_654_321, drift);
            for local in [987_654_321u64, 987_654_322, 1_000_000_000, 5_000_000_000_123] {
                let real = clock.real_at(Instant(local)).unwrap();
                assert!(clock.local(real) >= Instant(local), "drift {drift} local {local}");
                if real > 0 {
                    assert!(clock.local(real - 1) < Instant(local), "drift {drift}");
                }
            }
        }
    }

    #[test]
    fn drift_changes_the_rate() {
        let fast = Clock::new(0, 5_000);
        let slow = Clock::new(0, -5_000);
        let hour = 3_600_000_000_000u64;
        assert_eq!(fast.local(hour).0, hour + hour / 200);
        assert_eq!(slow.local(hour).0, hour - hour / 200);
        assert_eq!(Clock::new(0, 0).real_at(Instant(5)), Some(5));
        // Before the offset the inverse is time zero.
        assert_eq!(Clock::new(100, 0).real_at(Instant(50)), Some(0));
    }
}
