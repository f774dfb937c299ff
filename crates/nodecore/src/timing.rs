//! The node's timing rules, in one place for the daemon and the simulator: the disk
//! link's I/O timeout (which every takeover waits for three times), when renewals may be
//! answered quietly and how late that lets them be granted, how often an unchanged disk
//! heartbeat is rewritten, how late a soft deadline may be met to share a wake-up with
//! the lease client's next step ([`Deadlines::wake_at`]), and when the shared disk's
//! path counts as lost. Pure arithmetic on [`engine::Timing`]: no clock, no I/O.

use std::time::Duration;

use arbiter::disk::DiskLeaseConfig;
use engine::Instant;

/// The shared disk counts as lost after I/O failed for this many heartbeat intervals
/// with no success in between (one slow I/O must not move groups).
pub const STORAGE_FAIL_WINDOW_BEATS: u32 = 2;

/// How many heartbeat intervals apart an unchanged report is rewritten to the disk slot
/// (and the peers' slots are read), on average: 2 when `peer_timeout` spans at least 8
/// heartbeat intervals (the defaults: 10), else 1. Each write (and read) may come half
/// an interval early, with a job that goes to the disk anyway, or half an interval late
/// at most (the daemon's disk link), so a peer sees a new write at least every 2.5
/// intervals: three or more within its timeout. A changed report is written at once.
pub fn disk_beat_every(timing: &engine::Timing) -> u32 {
    let ratio = timing.peer_timeout.as_nanos() / timing.heartbeat_interval.as_nanos().max(1);
    if ratio >= 8 {
        2
    } else {
        1
    }
}

/// How late the loop may meet a deadline of the engine to meet it together with the
/// lease client's next one ([`Deadlines::wake_at`]): 5 ms, or a tenth of the heartbeat
/// interval if that is less. Enough for the lease client's read after a renewal (due a
/// settle time after the write completed, a few milliseconds after the heartbeat tick
/// that issued it) to go with the next tick; nothing the engine decides is that precise.
pub fn coalesce_window(timing: &engine::Timing) -> Duration {
    (timing.heartbeat_interval / 10).min(Duration::from_millis(5))
}

/// How long a quiet lease write is expected to take, from its job's submission to its
/// end (lab, loop device: 0.2–0.5 ms), for [`Deadlines::wake_at`].
pub const EXPECTED_WRITE: Duration = Duration::from_millis(1);

/// A quiet disk job that reads a peer's host record (a standby's watch round) starts
/// its reads a `1 / READ_HOLD_DIVISOR` of the I/O timeout after it was submitted (6.3 ms
/// with the default 1 s lease): long enough for a write issued on another node at the
/// same tick to land on a healthy disk, short against the deadline. Nodes tick together
/// (the engine phase-locks their heartbeats), and a holder's renewal goes out with its
/// tick: a standby's watch read issued at the same instant landed before the renewal's
/// write about half the time, saw the old record, and saw the new one only a heartbeat
/// interval later (lab: default failovers bimodal, lease at 1.23 s or 1.33 s after the
/// crash). Reading later is always safe: what a read shows counts from when it ended.
pub const READ_HOLD_DIVISOR: u32 = 5;

/// How often this node's mailbox is read for a poison pill (with a job that goes anyway).
pub const MAILBOX_READ_EVERY: Duration = Duration::from_secs(1);

/// The disk link's I/O timeout: every read or write must land or fail within it (the
/// delta-lease proof assumes so), and a claim waits three of them before it reads its
/// record back, so it is part of every takeover. A thirtieth of the lease, between
/// 10 ms and 250 ms — far above what a healthy shared disk needs for a 4 KiB direct
/// I/O, and a renewal that times out now and then is retried, not acted upon — or up to
/// a tenth less, so that the settle after a renewal's write (three I/O timeouts on a
/// clock 1 % fast, plus 1 ms) ends [`SETTLE_AHEAD`] before a whole number of heartbeat
/// intervals: the renewal's read then goes out with a heartbeat tick instead of on a
/// wake-up of its own a few milliseconds after it ([`Deadlines::wake_at`]). With the defaults
/// (lease 1 s, heartbeat 100 ms): 31.4 ms instead of 33.3 ms, a settle of 96 ms.
pub fn disk_io_timeout(timing: &engine::Timing) -> Duration {
    let by_lease = timing.lease_timeout / 30;
    let settle = |io: Duration| DiskLeaseConfig::new(timing, io).settle.as_nanos();
    let interval = timing.heartbeat_interval.max(Duration::from_millis(1)).as_nanos();
    let ticks = (settle(by_lease) + SETTLE_AHEAD.as_nanos()) / interval;
    // The settle grows linearly with the I/O timeout above its margin: the timeout
    // whose settle ends SETTLE_AHEAD before `ticks` intervals.
    let (margin, full) = (settle(Duration::ZERO), settle(by_lease));
    let target = (ticks * interval).saturating_sub(SETTLE_AHEAD.as_nanos());
    let in_step = by_lease.as_nanos() * target.saturating_sub(margin) / (full - margin).max(1);
    let in_step = Duration::from_nanos(in_step as u64);
    let io = if in_step >= by_lease * 9 / 10 { in_step.min(by_lease) } else { by_lease };
    io.clamp(Duration::from_millis(10), Duration::from_millis(250))
}

/// How long before a heartbeat tick a renewal's settle should end
/// ([`disk_io_timeout`]): the write's own time (0.2–1 ms on a healthy disk) and a
/// follower's tick, which comes a little before its timer (the engine keeps the nodes'
/// ticks in step), both fit; so does the [`coalesce_window`] the read then waits for
/// the tick.
pub const SETTLE_AHEAD: Duration = Duration::from_millis(4);

/// How long after its write goes out a renewal answered quietly is granted at most:
/// its write's answer is read at the next wake-up (a heartbeat tick at the latest), its
/// read goes out after the settle (at most a [`coalesce_window`] later, with a tick, or
/// at that first tick if the settle is already over), and the read's answer is read at
/// the tick after it. Every I/O lands within `io_timeout`. In heartbeat intervals:
/// `⌈(max(settle + io + window, interval) + io) / interval⌉` (2 with the default
/// timing: 200 ms; 2 with the fast profile: 100 ms).
pub fn quiet_renewal_lag(timing: &engine::Timing, config: &DiskLeaseConfig) -> Duration {
    let interval = timing.heartbeat_interval.max(Duration::from_millis(1));
    let late = coalesce_window(timing);
    let read_out = (config.settle + config.io_timeout + late).max(interval);
    let ticks = (read_out + config.io_timeout).as_nanos().div_ceil(interval.as_nanos());
    interval * ticks as u32
}

/// Whether renewals may be answered quietly (their disk answers wait for the next
/// wake-up instead of waking the loop: the main saving at idle) or must be answered
/// promptly, as acquires and releases always are. The engine renews a fifth of the
/// lease after the previous renewal went out, or when it is granted if that is later,
/// and stops every group when less than two fifths of the lease are left
/// (`Timing::lease_stop_budget`): renewals granted `lag` after their write keep the
/// lease above that while two of them in a row fit in three fifths of the lease, that
/// is `lag < 3L/10`. Quiet only with a margin for late ticks: `lag ≤ L/4`. With the fast
/// profile (heartbeat 50 ms, lease 300 ms) the quiet lag is 100 ms, more than 75 ms:
/// quiet renewals there let the lease run down to its stop budget every few hundred
/// milliseconds and the holder stopped its groups (found by the lab benchmark,
/// regression test `lab::fast_profile_holder_keeps_its_lease_at_idle_and_fails_over`).
pub fn quiet_renewals(timing: &engine::Timing, config: &DiskLeaseConfig) -> bool {
    quiet_renewal_lag(timing, config) <= timing.lease_timeout / 4
}

/// What the loop must meet, for [`Deadlines::wake_at`].
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// Deadlines that may be met a little late: the engine's (heartbeat ticks), the
    /// disk slots', the watchdog's, the shutdown's.
    pub soft: Instant,
    /// The lease client's next step (or, unless quiet, its I/O deadlines too).
    pub lease: Instant,
    /// `lease` is a step of quiet work: a renewal's read after its settle, a watch round.
    pub lease_quiet: bool,
    /// A quiet renewal's next step while no group is held.
    pub lease_idle: Instant,
    /// When the lease client is expected to step after a quiet renewal write whose
    /// answer is not read yet.
    pub expected: Instant,
    /// Met exactly, never moved: the disk I/O deadlines in prompt mode.
    pub exact: Instant,
}

impl Deadlines {
    /// When the loop must wake next. A soft deadline may be met up to
    /// [`coalesce_window`] late when the lease client's step comes within that window
    /// after it, so that both are met in one wake-up (the read after a renewal and the
    /// next heartbeat tick, say); the other way round, a step of quiet lease work due
    /// within that window before a soft deadline waits for it (with the default timing
    /// a renewal's settle ends a few milliseconds before a tick, see
    /// [`disk_io_timeout`]: its read goes with the tick). Steps of acquires and releases
    /// are never moved (a takeover is a chain of them), nor the disk I/O deadlines,
    /// which the lease protocol needs met exactly. A quiet renewal's step while no group
    /// is held waits for the next wake-up, at most a heartbeat interval: nothing counts
    /// on its grant.
    ///
    /// The lease client's step after a quiet renewal write is due a settle after the
    /// write ends, which the loop learns only when it reads the answer, at its next
    /// wake-up. Were that the heartbeat tick just before, the read after the settle
    /// would go out on a wake-up of its own a few milliseconds later; so the tick waits
    /// for the expected instant instead ([`EXPECTED_WRITE`] after the job went out,
    /// plus the settle). A write that takes longer only leaves things as they were.
    pub fn wake_at(self, timing: &engine::Timing) -> Instant {
        let window = coalesce_window(timing);
        let mut soft = self.soft.min(self.lease_idle + timing.heartbeat_interval);
        let expected = self.expected.min(self.lease);
        if soft < expected && expected.saturating_since(soft) <= window {
            soft = expected;
        }
        let mut lease = self.lease;
        if self.lease_quiet && lease < soft && soft.saturating_since(lease) <= window {
            lease = soft;
        }
        soft.min(lease).min(self.exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(heartbeat_ms: u64, lease_ms: u64) -> engine::Timing {
        engine::Timing {
            heartbeat_interval: Duration::from_millis(heartbeat_ms),
            peer_timeout: Duration::from_millis(lease_ms),
            lease_timeout: Duration::from_millis(lease_ms),
        }
    }

    fn lag_and_quiet(timing: &engine::Timing) -> (Duration, bool) {
        let config = DiskLeaseConfig::new(timing, disk_io_timeout(timing));
        (quiet_renewal_lag(timing, &config), quiet_renewals(timing, &config))
    }

    const MS: u64 = 1_000_000;

    fn settle(timing: &engine::Timing) -> Duration {
        DiskLeaseConfig::new(timing, disk_io_timeout(timing)).settle
    }

    #[test]
    fn the_io_timeout_lets_a_renewals_settle_end_just_before_a_tick_where_the_lease_allows() {
        // Defaults: 31.35 ms instead of 33.3; the settle ends 4 ms before 100 ms.
        let defaults = timing(100, 1000);
        let io = disk_io_timeout(&defaults);
        assert!(io < Duration::from_millis(1000) / 30 && io >= Duration::from_millis(30));
        let ahead = Duration::from_millis(100) - settle(&defaults);
        assert!(ahead.abs_diff(SETTLE_AHEAD) < Duration::from_micros(50), "{ahead:?}");
        // A 2 s lease: the settle ends 4 ms before two intervals.
        let ahead = Duration::from_millis(200) - settle(&timing(100, 2000));
        assert!(ahead.abs_diff(SETTLE_AHEAD) < Duration::from_micros(50), "{ahead:?}");
        // Where that would take more than a tenth off, a thirtieth of the lease stays.
        assert_eq!(disk_io_timeout(&timing(50, 700)), Duration::from_millis(700) / 30);
        // The fast profile: the 10 ms floor.
        assert_eq!(disk_io_timeout(&timing(50, 300)), Duration::from_millis(10));
        for heartbeat_ms in [10, 20, 50, 100, 200, 500, 1000] {
            for lease_ms in [300, 500, 700, 1000, 2000, 5000, 10_000] {
                let timing = timing(heartbeat_ms, lease_ms);
                let io = disk_io_timeout(&timing);
                let by_lease = (timing.lease_timeout / 30)
                    .clamp(Duration::from_millis(10), Duration::from_millis(250));
                assert!(io <= by_lease && io >= by_lease * 9 / 10, "{timing:?}: {io:?}");
            }
        }
    }

    fn deadlines(soft: u64, lease: u64) -> Deadlines {
        Deadlines {
            soft: Instant(soft * MS),
            lease: Instant(lease * MS),
            lease_quiet: true,
            lease_idle: Instant::MAX,
            expected: Instant::MAX,
            exact: Instant::MAX,
        }
    }

    #[test]
    fn a_quiet_lease_step_just_before_a_tick_waits_for_it_and_nothing_else_moves() {
        let t = timing(100, 1000);
        // A renewal's read due 3 ms before the tick goes with it.
        assert_eq!(deadlines(100, 97).wake_at(&t), Instant(100 * MS));
        // Not 6 ms before (the window is 5 ms).
        assert_eq!(deadlines(100, 94).wake_at(&t), Instant(94 * MS));
        // Never the step of an acquire or release.
        let prompt = Deadlines { lease_quiet: false, ..deadlines(100, 97) };
        assert_eq!(prompt.wake_at(&t), Instant(97 * MS));
        // Never a disk I/O deadline.
        let exact = Deadlines { exact: Instant(98 * MS), ..deadlines(100, 97) };
        assert_eq!(exact.wake_at(&t), Instant(98 * MS));
        // A step just after the tick: the tick waits for it.
        assert_eq!(deadlines(100, 103).wake_at(&t), Instant(103 * MS));
        assert_eq!(deadlines(100, 106).wake_at(&t), Instant(100 * MS));
        // So for the step expected after a quiet renewal write not answered yet.
        let expected = Deadlines { expected: Instant(102 * MS), ..deadlines(100, 500) };
        assert_eq!(expected.wake_at(&t), Instant(102 * MS));
    }

    #[test]
    fn a_quiet_renewals_step_with_no_group_held_waits_for_the_next_tick_within_an_interval() {
        let t = timing(100, 1000);
        let idle = Deadlines { lease_idle: Instant(9 * MS), ..deadlines(100, 150) };
        assert_eq!(idle.wake_at(&t), Instant(100 * MS));
        // With no tick to wait for, an interval at most.
        let alone = Deadlines { lease_idle: Instant(9 * MS), ..deadlines(500, 500) };
        assert_eq!(alone.wake_at(&t), Instant(109 * MS));
    }

    #[test]
    fn renewals_are_quiet_only_where_two_quiet_lags_leave_the_stop_budget_alone() {
        // Defaults: granted two ticks after the write, well inside 3L/10.
        assert_eq!(lag_and_quiet(&timing(100, 1000)), (Duration::from_millis(200), true));
        // The fast profile of the benchmark: 100 ms against a 300 ms lease. Quiet, the
        // holder's lease fell to its stop budget and it stopped its groups (E3105).
        assert_eq!(lag_and_quiet(&timing(50, 300)), (Duration::from_millis(100), false));
        // `tandem demo --fast` (lease 700 ms): three ticks, still inside L/4.
        assert_eq!(lag_and_quiet(&timing(50, 700)), (Duration::from_millis(150), true));
        // A slow heartbeat against a short lease: prompt.
        assert!(!lag_and_quiet(&timing(500, 1000)).1);
    }

    #[test]
    fn the_quiet_lag_bounds_two_renewals_in_a_row_inside_the_stop_budget_when_quiet() {
        for heartbeat_ms in [10, 20, 50, 100, 200, 500, 1000] {
            for lease_ms in [300, 500, 700, 1000, 2000, 5000, 10_000] {
                let timing = timing(heartbeat_ms, lease_ms);
                let (lag, quiet) = lag_and_quiet(&timing);
                if quiet {
                    // Renewal k+1 goes out when k is granted (or a fifth later), and is
                    // granted `lag` after: before 3/5 of the lease since k's write.
                    let renew = timing.lease_renew_interval();
                    let worst = lag.max(renew) + lag;
                    let budget = timing.lease_timeout - timing.lease_stop_budget();
                    assert!(worst < budget, "{timing:?}: {worst:?} vs {budget:?}");
                }
            }
        }
    }
}
