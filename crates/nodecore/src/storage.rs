//! The verdict on this node's path to the shared disk, from the results of its disk I/O
//! (heartbeat slots, lease records, the mailbox): lost once I/O has failed for
//! [`STORAGE_FAIL_WINDOW_BEATS`](crate::timing::STORAGE_FAIL_WINDOW_BEATS) heartbeat
//! intervals with no success in between (one slow or failed I/O must not move groups),
//! working again at the first success. The engine hears of each change
//! ([`engine::Input::StoragePath`]); the daemon and the simulator feed it the same way.

use std::time::Duration;

use engine::Instant;

/// The disk path's verdict as last reported to the engine.
#[derive(Clone, Debug)]
pub struct StoragePath {
    window: Duration,
    ok: bool,
    failing_since: Option<Instant>,
}

impl StoragePath {
    /// Working until I/O says otherwise, for a cluster with this `timing`.
    pub fn new(timing: &engine::Timing) -> StoragePath {
        let window = timing.heartbeat_interval * crate::timing::STORAGE_FAIL_WINDOW_BEATS;
        StoragePath { window, ok: true, failing_since: None }
    }

    /// An I/O ended at `now`, `ok` or failed: the new verdict when it changes.
    pub fn result(&mut self, now: Instant, ok: bool) -> Option<bool> {
        if ok {
            self.failing_since = None;
            return (!self.ok).then(|| {
                self.ok = true;
                true
            });
        }
        let since = *self.failing_since.get_or_insert(now);
        (self.ok && now.saturating_since(since) >= self.window).then(|| {
            self.ok = false;
            false
        })
    }

    /// The verdict as last reported.
    pub fn is_ok(&self) -> bool {
        self.ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_after_failing_for_the_window_and_back_at_the_first_success() {
        let timing = engine::Timing::default();
        let mut path = StoragePath::new(&timing);
        let at = |ms: u64| Instant(ms * 1_000_000);
        assert_eq!(path.result(at(0), false), None);
        // One success in between starts the window again.
        assert_eq!(path.result(at(150), true), None);
        assert_eq!(path.result(at(160), false), None);
        assert_eq!(path.result(at(300), false), None);
        assert_eq!(path.result(at(360), false), Some(false));
        assert!(!path.is_ok());
        assert_eq!(path.result(at(400), false), None);
        assert_eq!(path.result(at(500), true), Some(true));
        assert_eq!(path.result(at(600), true), None);
    }
}
