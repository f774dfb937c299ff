//! After a stop signal (SIGTERM): the engine hands its groups over
//! ([`engine::Input::Shutdown`]) and the daemon exits once nothing runs here any more
//! and its leases are released, its fence guard disarmed; or, if that takes longer than
//! [`engine::ClusterSpec::shutdown_budget`], it exits with the guard armed, which stops
//! what is left when the lease runs out. The daemon and the simulator both ask
//! [`after_stop_signal`] after every turn.

use engine::Instant;

/// What a daemon given a stop signal does after a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStop {
    /// No stop signal, or still handing over.
    Stay,
    /// Nothing runs here, leases released: exit with the guard disarmed.
    ExitClean,
    /// The budget ran out: exit with the guard armed.
    ExitArmed,
}

/// `by`: the deadline set when the signal came (`None`: no signal); `quiescent`:
/// [`engine::Engine::is_quiescent`].
pub fn after_stop_signal(by: Option<Instant>, now: Instant, quiescent: bool) -> AfterStop {
    match by {
        None => AfterStop::Stay,
        Some(_) if quiescent => AfterStop::ExitClean,
        Some(by) if now >= by => AfterStop::ExitArmed,
        Some(_) => AfterStop::Stay,
    }
}

/// What a clean exit says: `parked`, the engine parked its leases (it leaves in
/// maintenance; [`engine::Engine::leases_parked`]).
pub fn clean_exit_text(parked: bool) -> &'static str {
    match parked {
        true => {
            "stopped cleanly in maintenance: resources left running, their leases parked \
             for this node (no other node takes them until it runs again)"
        }
        false => "stopped cleanly: no group runs here any more, leases released",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_clean_once_quiescent_armed_past_the_budget_else_stay() {
        assert_eq!(after_stop_signal(None, Instant(9), true), AfterStop::Stay);
        assert_eq!(after_stop_signal(Some(Instant(5)), Instant(1), false), AfterStop::Stay);
        assert_eq!(after_stop_signal(Some(Instant(5)), Instant(1), true), AfterStop::ExitClean);
        assert_eq!(after_stop_signal(Some(Instant(5)), Instant(5), true), AfterStop::ExitClean);
        assert_eq!(after_stop_signal(Some(Instant(5)), Instant(5), false), AfterStop::ExitArmed);
    }
}
