//! Unit tests of the simulator on a greedy core (`core::greedy`, a core that takes every
//! group it can): arbitration keeps greedy nodes apart, and without it checker S1 catches
//! the split; determinism of the trace; drifting clocks; the fence guard's rules; a paused
//! daemon's backlog and its restart past its guard's deadline.

use super::*;
use crate::cluster::{three_node, two_node};
use crate::core::greedy::Greedy;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn with_arbitration(mut spec: ClusterSpec, kind: ArbitrationKind) -> ClusterSpec {
    spec.arbitration = kind;
    spec
}

#[test]
fn greedy_nodes_with_a_disk_arbitrator_do_not_split() {
    let mut sim: Sim<Greedy> = Sim::scripted(two_node(), Options::scripted());
    sim.run_until(secs(30));
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
    // Every group runs, each on exactly one node.
    let running = sim.agents.running_anywhere(2);
    assert!(running.iter().any(|(_, g, _)| *g == GroupId(0)), "{}", sim.summary());
    assert!(running.iter().any(|(_, g, _)| *g == GroupId(1)), "{}", sim.summary());
}

#[test]
fn greedy_nodes_with_a_witness_do_not_split() {
    let spec = with_arbitration(three_node(), ArbitrationKind::Witness);
    let mut sim: Sim<Greedy> = Sim::scripted(spec, Options::scripted());
    sim.run_until(secs(30));
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
    assert_eq!(sim.agents.running_anywhere(3).len(), 5, "{}", sim.summary());
}

/// The checker-can-fail test: without arbitration, greedy nodes split at once.
#[test]
fn greedy_nodes_without_arbitration_split() {
    let spec = with_arbitration(two_node(), ArbitrationKind::None);
    let mut sim: Sim<Greedy> = Sim::scripted(spec, Options::scripted());
    sim.run_until(secs(5));
    assert!(sim.violation_count(Guarantee::S1) > 0, "{}", sim.summary());
}

#[test]
fn takeover_after_a_crash_waits_for_the_lease() {
    let mut sim: Sim<Greedy> = Sim::scripted(two_node(), Options::scripted());
    sim.run_until(secs(5));
    let db = GroupId(0);
    let data = ResourceId(1);
    let owner = sim.spec.node_ids().find(|n| sim.is_running(*n, db, data)).expect("db runs");
    let other = NodeId(1 - owner.0);
    sim.crash(owner).run_until(secs(6));
    assert!(!sim.is_running(other, db, data));
    sim.run_until(secs(10));
    assert!(sim.is_running(other, db, data), "{}", sim.summary());
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let run = |seed| {
        let mut sim: Sim<Greedy> = Sim::swarm(three_node(), seed, secs(200), false);
        sim.run_to_end().trace_hash
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn clocks_drift_within_bounds_and_timers_fire_on_local_time() {
    let mut options = Options::scripted();
    options.clocks = Some(vec![Clock::new(5 * SEC, 5_000), Clock::new(0, -5_000)]);
    let mut sim: Sim<Greedy> = Sim::scripted(two_node(), options);
    sim.run_until(secs(20));
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
    assert!(sim.events() > 100);
}

/// Arms `node`'s guard as if its current daemon had asked for `deadline_s` (its core
/// carries the `ArmFence` out at once).
fn arm(sim: &mut Sim<Greedy>, node: NodeId, deadline_s: u64) {
    let host = &mut sim.hosts[usize::from(node.0)];
    let daemon = host.daemon.as_mut().expect("a live daemon");
    daemon.core.engine_mut().arm_fence(Instant(deadline_s * SEC));
    sim.wake_node(node, Arrival::Nothing);
}

/// Two greedy nodes at 5 s, and the one that runs the groups.
fn greedy_owner_at_5s() -> (Sim<Greedy>, NodeId) {
    let mut sim: Sim<Greedy> = Sim::scripted(two_node(), Options::scripted());
    sim.run_until(secs(5));
    let owner =
        sim.spec.node_ids().find(|n| !sim.agents.running_on(*n).is_empty()).expect("a node runs");
    (sim, owner)
}

#[test]
fn fence_guard_fires_at_its_deadline_unless_an_engine_moved_it() {
    let (mut sim, alpha) = greedy_owner_at_5s();
    let before = sim.agents.running_on(alpha).len();
    // The daemon that armed it lives but does not move it (this core never arms a
    // guard; a real engine moves it with every renewal): it fires all the same,
    // that counts against the engine's contract, and the daemon restarts.
    arm(&mut sim, alpha, 6);
    sim.run_until(Duration::from_millis(5_900));
    assert_eq!(sim.agents.running_on(alpha).len(), before);
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
    let boot = sim.hosts[usize::from(alpha.0)].daemon.as_ref().map(|d| d.boot);
    sim.run_until(Duration::from_millis(6_000));
    assert_eq!(sim.agents.running_on(alpha).len(), 0, "{}", sim.summary());
    assert_eq!(sim.checkers.count(Guarantee::Contract), 1, "{:?}", sim.violations());
    let rebooted = sim.hosts[usize::from(alpha.0)].daemon.as_ref().map(|d| d.boot);
    assert_ne!(boot, rebooted, "the daemon did not restart");
    // A daemon that dies leaves it armed: it fires at the deadline.
    let mut sim: Sim<Greedy> = Sim::scripted(two_node(), Options::scripted());
    sim.run_until(secs(5));
    arm(&mut sim, alpha, 6);
    sim.kill_daemon(alpha).run_until(Duration::from_millis(5_500));
    assert_eq!(sim.agents.running_on(alpha).len(), before, "resources outlive the daemon");
    sim.run_until(Duration::from_millis(6_100));
    assert_eq!(sim.agents.running_on(alpha).len(), 0, "{}", sim.summary());

    // A new daemon that has not re-armed it does not hold it off.
    let mut sim: Sim<Greedy> = Sim::scripted(two_node(), Options::scripted());
    sim.run_until(secs(5));
    arm(&mut sim, alpha, 9);
    sim.kill_daemon(alpha).run_until(secs(6));
    assert_eq!(sim.agents.running_on(alpha).len(), before, "resources outlive the daemon");
    sim.restart(alpha).run_until(secs(8));
    assert_eq!(sim.agents.running_on(alpha).len(), before);
    sim.run_until(secs(10));
    assert_eq!(sim.agents.running_on(alpha).len(), 0, "{}", sim.summary());
}

fn backlog(sim: &Sim<Greedy>, node: NodeId) -> usize {
    let daemon = sim.hosts[usize::from(node.0)].daemon.as_ref().expect("daemon");
    daemon.paused.as_ref().map_or(0, |p| p.backlog.len())
}

fn boot(sim: &Sim<Greedy>, node: NodeId) -> Option<u64> {
    sim.hosts[usize::from(node.0)].daemon.as_ref().map(|d| d.boot)
}

#[test]
fn a_paused_daemon_takes_nothing_in_until_it_resumes() {
    let mut sim: Sim<Greedy> = Sim::scripted(two_node(), Options::scripted());
    sim.run_until(secs(5));
    let (alpha, beta) = (NodeId(0), NodeId(1));
    let running = sim.agents.running_on(alpha).len();
    sim.pause_daemon(alpha).run_until(secs(7));
    // Heartbeats and disk answers wait; nothing it runs stops.
    assert!(sim.is_paused(alpha));
    assert!(backlog(&sim, alpha) > 20, "{}", backlog(&sim, alpha));
    assert_eq!(sim.agents.running_on(alpha).len(), running);
    let before = boot(&sim, alpha);
    sim.resume_daemon(alpha);
    assert!(!sim.is_paused(alpha));
    assert_eq!(boot(&sim, alpha), before, "no guard deadline passed: same daemon");
    sim.run_until(secs(12));
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
    assert!(sim.status(beta).is_some());
}

#[test]
fn a_guard_fires_under_a_paused_daemon_without_a_contract_violation() {
    let (mut sim, alpha) = greedy_owner_at_5s();
    arm(&mut sim, alpha, 6);
    let before = boot(&sim, alpha);
    sim.pause_daemon_for(alpha, secs(3)).run_until(Duration::from_millis(6_500));
    assert_eq!(sim.agents.running_on(alpha).len(), 0, "{}", sim.summary());
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
    assert_eq!(boot(&sim, alpha), before, "a paused daemon restarts only when it resumes");
    sim.run_until(Duration::from_millis(8_100));
    assert_ne!(boot(&sim, alpha), before, "it resumed past its deadline: restarted");
    assert!(sim.summary().contains("E3112"), "{}", sim.summary());
    assert_eq!(sim.checkers.total(), 0, "{:?}", sim.violations());
}
