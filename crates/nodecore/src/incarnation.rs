//! A daemon's incarnation: the number that changes at every start and tells a node's
//! peers (and the lease records on the shared disk) which run a heartbeat or a record
//! comes from. Peers drop heartbeats of an incarnation lower than one they have seen (a
//! replay, or an older run's), so a new run must never take a lower one: a node whose
//! incarnation went back would be deaf to its peers' view of it (they call it offline
//! while it hears them), and its groups would stay locked for want of a standby.
//!
//! Three sources, each of which can be wrong alone: the last incarnation kept in the
//! state directory (lost with the directory, or older when it is restored from a
//! backup), the wall clock in microseconds (wrong after a step back, or on a host whose
//! clock was not set yet) and the incarnation this node last wrote in its host record on
//! the shared disk (none without a disk link, or when the disk cannot be read at the
//! start). The next incarnation is above all three; the simulator runs this rule with
//! wall clocks that step and state directories that are lost or restored.

/// The incarnation of a start: above the `previous` one kept in the state directory,
/// at least the wall clock in microseconds, and above the one this node's host record
/// on the shared disk shows (`on_disk`, 0 if none could be read).
pub fn next_incarnation(previous: u64, wall_micros: u64, on_disk: u64) -> u64 {
    previous.saturating_add(1).max(wall_micros).max(on_disk.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn above_every_source_even_when_the_state_dir_and_the_clock_went_back() {
        // A normal restart: the clock has moved on.
        assert_eq!(next_incarnation(1_000, 2_000, 1_000), 2_000);
        // A restart within the same microsecond, or a clock stepped back: the kept one + 1.
        assert_eq!(next_incarnation(1_000, 500, 1_000), 1_001);
        // The state dir lost and the clock stepped back: the host record on the disk.
        assert_eq!(next_incarnation(0, 500, 1_000), 1_001);
        // Nothing kept anywhere: the clock.
        assert_eq!(next_incarnation(0, 500, 0), 500);
        assert_eq!(next_incarnation(u64::MAX, 0, 0), u64::MAX);
    }
}
