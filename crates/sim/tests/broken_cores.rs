//! Each checker is shown to fail on a deliberately broken core: a core that leaves out
//! one duty of the real engine (its outputs filtered) must be caught by the guarantee's
//! checker in a plain run, while the real engine passes the same run. Without this, a
//! checker that never fires would look like a proof. (S1 against arbitration "none" is
//! in `sim/tests.rs`, with a greedy core.)

use std::sync::Arc;
use std::time::Duration;

use engine::{ClusterSpec, Engine, Input, Instant, NodeId, Output, Status};
use sim::core::Core;
use sim::{Guarantee, Options, Sim};

/// The real engine without its standby lock: `Output::LockStandby` never leaves it.
struct NoStandbyLock(Engine);

impl Core for NoStandbyLock {
    fn start(spec: Arc<ClusterSpec>, me: NodeId, incarnation: u64, now: Instant) -> Self {
        NoStandbyLock(Engine::new(spec, me, incarnation, now))
    }
    fn handle(&mut self, now: Instant, input: Input) {
        self.0.handle(now, input)
    }
    fn poll_output(&mut self) -> Output {
        loop {
            match self.0.poll_output() {
                Output::LockStandby { .. } => continue,
                output => return output,
            }
        }
    }
    fn status(&self, now: Instant) -> Status {
        self.0.status(now)
    }
    fn is_quiescent(&self) -> bool {
        self.0.is_quiescent()
    }
}

fn formed_and_switched<C: Core>() -> Sim<C> {
    let spec = sim::cluster::two_node();
    assert!(spec.groups.iter().any(|g| g.locks_standby()), "the built-in cluster locks standbys");
    let mut sim: Sim<C> = Sim::scripted(spec, Options::scripted());
    sim.run_until(Duration::from_secs(20));
    // The group moves to beta and back: each node is a standby in turn.
    let beta = sim.node("beta");
    let group = engine::GroupId(0);
    sim.admin(beta, engine::AdminCommand::Switchover { group, to: Some(beta) });
    sim.run_until(Duration::from_secs(40));
    let alpha = sim.node("alpha");
    sim.admin(alpha, engine::AdminCommand::Switchover { group, to: Some(alpha) });
    sim.run_until(Duration::from_secs(60));
    sim
}

#[test]
fn s5_catches_a_core_that_never_locks_the_standby() {
    let sim = formed_and_switched::<NoStandbyLock>();
    assert!(sim.violation_count(Guarantee::S5) > 0, "{}", sim.summary());
}

#[test]
fn s5_passes_the_real_engine_on_the_same_run() {
    let sim = formed_and_switched::<Engine>();
    assert_eq!(sim.violation_count(Guarantee::S5), 0, "{}", sim.summary());
    assert_eq!(sim.violations(), &[], "{}", sim.summary());
}
