//! How the daemon ends: a stop after SIGTERM (journaled, the journal
//! flushed), the self-fence the engine asks for (the guard stops everything now), and
//! the restart in place after a stall (the loop did not run past the fence guard's
//! deadline, so the guard fired: E3112, wait for the guard, then a new incarnation in
//! the same process). The core says which ([`nodecore::Action`]); this is the doing,
//! through the platform's guard and service manager ([`crate::platform`]).

use std::time::Duration;

use engine::catalogue;
use engine::Instant;

use crate::node::Node;
use crate::platform::{Clock, FenceGuard, Platform, Service};

/// How long the daemon, on its way out, waits for the journal's last entries to sync.
const JOURNAL_FLUSH_WAIT: Duration = Duration::from_secs(2);

impl<P: Platform> Node<P> {
    /// The loop did not run past the guard's deadline (it was last seen running at
    /// `self.loop_ran`): the guard fired. Journals it (E3112), waits for the guard to
    /// finish stopping every resource, and starts this daemon again in the same process
    /// (same arguments, a new incarnation) so that it probes and rejoins as standby.
    /// Nothing else is done: not a heartbeat, not an agent call, not a lease write.
    pub(crate) fn stalled(&mut self, now: Instant, deadline: Instant, how: &str) -> ! {
        let ran = self.loop_ran;
        self.journal_own(
            &catalogue::DAEMON_STALLED,
            None,
            format!(
                "this daemon's loop did not run for {} (from {} to {} on the monotonic \
                 clock); the fence guard fired ({how}, {} ago) and stops every resource; \
                 restarting as standby",
                fmt_ms(now.saturating_since(ran)),
                fmt_ms(Duration::from_nanos(ran.as_nanos())),
                fmt_ms(Duration::from_nanos(now.as_nanos())),
                fmt_ms(now.saturating_since(deadline)),
            ),
        );
        let bound = self.spec.slowest_group_stop() + Duration::from_secs(2);
        if !self.guard.wait_gone(bound) {
            tracing::error!("the fence guard did not finish within {bound:?}; restarting anyway");
        }
        self.flush_journal();
        let error = self.service.restart_in_place();
        tracing::error!("cannot restart the daemon in place: {error}; exiting");
        self.service.exit(70);
    }

    /// The engine could not stop resources before its lease runs out: the guard stops
    /// everything now and the daemon exits (and, where a hardware watchdog is armed by
    /// systemd, stops feeding it).
    pub(crate) fn self_fence(&mut self, reason: &str) {
        // The engine decided on a turn that began before its guard's deadline and ended
        // after it (the loop stopped within the turn): the guard fired already.
        let now = self.clock.now();
        if self.core.guard_passed(now) {
            let deadline = self.core.guard_deadline().unwrap_or(now);
            self.stalled(now, deadline, "its deadline passed within a turn");
        }
        // The engine journaled why (E3106, E3111); here only what the shell does.
        tracing::error!("fencing this node: {reason}");
        if let Err(e) = self.guard.fire_now() {
            tracing::error!("cannot reach the fence guard to self-fence: {e}");
        }
        self.flush_journal();
        self.service.exit(70);
    }

    pub(crate) fn stopped(&mut self, why: &str) {
        self.service.stopping();
        self.journal_own(&catalogue::DAEMON_STOPPED, None, why.to_string());
        self.flush_journal();
    }

    /// On the way out: what is queued reaches the disk (blocking, bounded).
    fn flush_journal(&mut self) {
        if !self.journal.flush(JOURNAL_FLUSH_WAIT) {
            tracing::error!("the journal's last entries may be lost: its disk did not sync them");
        }
    }
}

/// `d` in milliseconds, for messages.
fn fmt_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
