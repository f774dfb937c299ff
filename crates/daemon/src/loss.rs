//! Per link and peer, the loss seen in the peer's sequence numbers: every heartbeat goes
//! out on every link with the same sequence number, so a gap on one link is a packet
//! lost on that link. Counters start again every [`LOSS_WINDOW`] and with each new
//! incarnation of the peer. Portable (no socket): any platform's links feed it the
//! heartbeats they accept.

use std::time::Duration;

use engine::Heartbeat;

/// Loss counters start again after this long.
pub const LOSS_WINDOW: Duration = Duration::from_secs(60);

/// Sequence-number bookkeeping of one peer on one link.
#[derive(Clone, Copy, Debug, Default)]
pub struct LossCounter {
    incarnation: u64,
    first: u64,
    newest: u64,
    received: u64,
    started: Option<std::time::Instant>,
}

impl LossCounter {
    pub fn record(&mut self, heartbeat: &Heartbeat) {
        let now = std::time::Instant::now();
        let expired = self.started.is_none_or(|s| now.duration_since(s) > LOSS_WINDOW);
        if heartbeat.incarnation != self.incarnation || expired {
            *self = LossCounter {
                incarnation: heartbeat.incarnation,
                first: heartbeat.sequence,
                newest: heartbeat.sequence,
                received: 1,
                started: Some(now),
            };
            return;
        }
        self.newest = self.newest.max(heartbeat.sequence);
        self.received += 1;
    }

    /// Percent of the peer's heartbeats in the window that did not arrive on this link.
    pub fn loss_percent(&self) -> Option<f64> {
        let expected = self.newest.checked_sub(self.first)? + 1;
        if expected < 2 {
            return None;
        }
        let lost = expected.saturating_sub(self.received);
        Some(lost as f64 * 100.0 / expected as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tests::beat;

    #[test]
    fn loss_counts_gaps_and_restarts_with_a_new_incarnation() {
        let mut counter = LossCounter::default();
        for seq in [1, 2, 4, 5, 8, 9, 10] {
            counter.record(&beat(7, seq));
        }
        // 10 sent, 7 arrived.
        assert_eq!(counter.loss_percent(), Some(30.0));
        counter.record(&beat(8, 1));
        assert_eq!(counter.loss_percent(), None);
        counter.record(&beat(8, 2));
        assert_eq!(counter.loss_percent(), Some(0.0));
    }
}
