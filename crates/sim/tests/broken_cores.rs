//! Each checker is shown to fail on a deliberately broken core: the real engine with one
//! duty broken (a [`Broken`] wrapper that filters or alters its inputs, outputs or
//! status) must be caught by the guarantee's checker in a plain run, while the real
//! engine passes the same run with no violation at all. Without this, a checker that
//! never fires would look like a proof. One test per guarantee (S1-S5, L1, L2) and one
//! per breach of the engine's contract that C judges (an unknown resource, a heartbeat
//! to no peer, a busy loop, outputs that never settle, a guard deadline reached under a
//! live engine). The safety checkers are shown on scripted runs, L1 and L2 on a swarm
//! run without faults (only a swarm run heals and checks liveness). (S1 against greedy
//! nodes without arbitration is also in `sim/tests.rs`.) And one bug planted in the node
//! core rather than the engine (`nodecore::shutdown`'s exit rule, through
//! `nodecore::Rules`), which the simulator now runs: caught on a scripted run, and found
//! by the random swarm on its own.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use engine::{
    AdminCommand, ArbitrationKind, ClusterSpec, Engine, GroupId, Input, Instant, LeaseRequest,
    LeaseResult, NodeId, OpId, OpKind, Output, ResourceId, Status,
};
use nodecore::shutdown::AfterStop;
use sim::core::Core;
use sim::{Guarantee, Sim};

/// What a broken duty may use of its node: the engine, the cluster, which node it is,
/// and the instant of the input being handled (the engine's `now`).
struct Node {
    engine: Engine,
    spec: Arc<ClusterSpec>,
    me: NodeId,
    now: Instant,
}

/// One duty of the engine, broken: it sees every input before the engine, every output
/// after it, and the status it reports. Each hook does nothing by default.
trait Breakage: Default {
    /// The input the engine gets instead of `input`; `None`: the core swallows it. It
    /// may put outputs of its own in `out`.
    fn input(&mut self, _node: &Node, input: Input, _out: &mut VecDeque<Output>) -> Option<Input> {
        Some(input)
    }
    /// Puts in `out` what leaves the core instead of the engine's `output` (nothing,
    /// it, or other outputs); may hand the engine inputs of its own.
    fn output(&mut self, _node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        out.push_back(output);
    }
    fn status(&self, status: Status) -> Status {
        status
    }
}

/// The real engine with the duty `B` broken.
struct Broken<B> {
    node: Node,
    duty: B,
    out: VecDeque<Output>,
}

impl<B: Breakage> Core for Broken<B> {
    fn start(spec: Arc<ClusterSpec>, me: NodeId, incarnation: u64, now: Instant) -> Self {
        let engine = Engine::new(spec.clone(), me, incarnation, now);
        Broken { node: Node { engine, spec, me, now }, duty: B::default(), out: VecDeque::new() }
    }
    fn handle(&mut self, now: Instant, input: Input) {
        self.node.now = now;
        if let Some(input) = self.duty.input(&self.node, input, &mut self.out) {
            self.node.engine.handle(now, input);
        }
    }
    fn poll_output(&mut self) -> Output {
        loop {
            if let Some(output) = self.out.pop_front() {
                return output;
            }
            let output = self.node.engine.poll_output();
            self.duty.output(&mut self.node, output, &mut self.out);
        }
    }
    fn status(&self, now: Instant) -> Status {
        self.duty.status(self.node.engine.status(now))
    }
    fn is_quiescent(&self) -> bool {
        self.node.engine.is_quiescent()
    }
    fn admin_state(&self) -> Option<engine::AdminState> {
        Some(self.node.engine.admin_state().clone())
    }
    fn restore_admin(&mut self, admin: &engine::AdminState) {
        self.node.engine.restore_admin(admin)
    }
    fn due_at(&self, at: Instant) -> Vec<String> {
        self.node.engine.due_at(at)
    }
}

const DB: GroupId = GroupId(0);
const WEB: GroupId = GroupId(1);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A group's resources in effective start order, without monitor-only ones.
fn start_order(spec: &ClusterSpec, group: GroupId) -> Vec<ResourceId> {
    let g = spec.group(group);
    g.start_order().into_iter().filter(|r| !g.resource(*r).kind.is_monitor_only()).collect()
}

/// Operation ids a broken core makes up itself, far above the engine's.
const OWN_OPS: u64 = 1 << 62;

/// The broken run finds a violation of `guarantee`; the real engine's run finds none.
fn caught<C: Core>(broken: &Sim<C>, real: &Sim<Engine>, guarantee: Guarantee) {
    assert!(
        broken.violation_count(guarantee) > 0,
        "{} missed the broken core: {:?}\n{}",
        guarantee.code(),
        broken.violations(),
        broken.summary()
    );
    assert_eq!(real.violations(), &[], "{}", real.summary());
}

/// The built-in two-node cluster with `arbitration`, run without faults for `run`.
fn plain<C: Core>(arbitration: ArbitrationKind, run: Duration) -> Sim<C> {
    let mut spec = sim::cluster::two_node();
    spec.arbitration = arbitration;
    let mut sim: Sim<C> = Sim::scripted(spec, sim::Options::scripted());
    sim.run_until(run);
    sim
}

/// [`caught`] on [`plain`] runs.
fn plain_caught<B: Breakage>(arbitration: ArbitrationKind, run: Duration, guarantee: Guarantee) {
    let broken = plain::<Broken<B>>(arbitration, run);
    caught(&broken, &plain::<Engine>(arbitration, run), guarantee);
}

/// [`caught`] on [`quiet_swarm`] runs.
fn swarm_caught<B: Breakage>(seed: u64, guarantee: Guarantee) {
    caught(&quiet_swarm::<Broken<B>>(seed), &quiet_swarm::<Engine>(seed), guarantee);
}

/// A swarm run of the two-node cluster with every fault kind off: the seed draws only
/// the world (clocks, boot times, latencies, packet loss, disk errors and stalls);
/// everything heals at one minute and L1/L2 are checked after the liveness bound.
fn quiet_swarm<C: Core>(seed: u64) -> Sim<C> {
    let spec = sim::cluster::two_node();
    let mut plan = Sim::<C>::swarm_plan(&spec, seed);
    plan.partitions = None;
    plan.host_crashes = None;
    plan.daemon_crashes = None;
    plan.storage_loss = None;
    plan.resource_crashes = None;
    plan.nic_faults = None;
    plan.witness_cuts = None;
    plan.admin = None;
    plan.daemon_pauses = None;
    let mut sim: Sim<C> = Sim::swarm_with_plan(spec, seed, plan, Duration::ZERO, true);
    let report = sim.run_to_end();
    let checked_at = report.heal_at_ns + report.liveness_bound.as_nanos() as u64;
    assert!(report.simulated_ns >= checked_at, "the run reached its liveness check");
    sim
}

// ----- S1 --------------------------------------------------------------------------

/// Beta is deaf: every heartbeat it gets is dropped on arrival, on every link, while
/// its own go out (alpha is not broken). Without arbitration beta sees alpha offline
/// and takes over `db` beside it; alpha, which hears beta well and eligible, reports no
/// lock (S4 quiet) and beta asks for its lease, which `none` grants (S3 quiet).
#[derive(Default)]
struct Deaf;

impl Breakage for Deaf {
    fn input(&mut self, node: &Node, input: Input, _: &mut VecDeque<Output>) -> Option<Input> {
        let deaf = node.me == NodeId(1);
        (!(deaf && matches!(input, Input::Heartbeat { .. }))).then_some(input)
    }
}

/// S1 must catch a group that runs on two nodes at once: a deaf node takes over a group
/// that still runs, while the real engine, hearing its peer, never does.
#[test]
fn s1_catches_a_core_deaf_to_its_peers() {
    plain_caught::<Deaf>(ArbitrationKind::None, secs(10), Guarantee::S1);
}

// ----- S2 --------------------------------------------------------------------------

/// Starts (and stops, probes, monitors) `db`'s resources in reverse effective order:
/// every operation the engine asks for resource number i of the order is carried out
/// on number n-1-i. The engine's own view stays consistent (results come back by
/// operation id), so nothing but the order is wrong.
#[derive(Default)]
struct Reversed;

impl Breakage for Reversed {
    fn output(&mut self, node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        out.push_back(match output {
            Output::Operation { id, group: DB, resource, op, timeout } => {
                let order = start_order(&node.spec, DB);
                let i = order.iter().position(|r| *r == resource).expect("in the order");
                let resource = order[order.len() - 1 - i];
                Output::Operation { id, group: DB, resource, op, timeout }
            }
            output => output,
        });
    }
}

/// S2 must catch a group started out of its effective order: `db` (data, vip,
/// postgres) comes up as postgres, vip, data.
#[test]
fn s2_catches_a_core_that_starts_in_reverse_order() {
    plain_caught::<Reversed>(ArbitrationKind::Disk, secs(10), Guarantee::S2);
}

// ----- S3 --------------------------------------------------------------------------

/// Does not wait for the arbitrator: it forwards each lease acquisition and at once
/// answers the engine itself with a grant, so the engine starts the group before the
/// disk lease is won (the arbitrator's late answer to that id is ignored).
#[derive(Default)]
struct NoLeaseWait;

impl Breakage for NoLeaseWait {
    fn output(&mut self, node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        if let Output::Lease { id, request: LeaseRequest::Acquire(_) } = output {
            let result = LeaseResult::Granted { since: node.now };
            node.engine.handle(node.now, Input::Lease { id, result });
        }
        out.push_back(output);
    }
}

/// S3 must catch a start made before the arbitrator named the node holder: with a disk
/// arbitrator, nodes that grant themselves their leases start with none granted.
#[test]
fn s3_catches_a_core_that_starts_without_waiting_for_the_lease() {
    plain_caught::<NoLeaseWait>(ArbitrationKind::Disk, secs(10), Guarantee::S3);
}

// ----- S4 --------------------------------------------------------------------------

/// Ignores the migration lock: when its engine sees a group it may run owned by another
/// node and locked there, the core takes it itself, by the book otherwise: it asks for
/// the group's lease and, once granted, starts the group's first resource (requests of
/// its own, whose answers it keeps from the engine).
#[derive(Default)]
struct IgnoresLock {
    taken: BTreeSet<GroupId>,
    /// Own lease requests in flight, by id.
    acquiring: BTreeMap<OpId, GroupId>,
    ops: u64,
}

impl IgnoresLock {
    fn op(&mut self) -> OpId {
        self.ops += 1;
        OpId(OWN_OPS + self.ops)
    }
}

impl Breakage for IgnoresLock {
    fn input(&mut self, node: &Node, input: Input, out: &mut VecDeque<Output>) -> Option<Input> {
        match input {
            Input::Lease { id, result } if id.0 >= OWN_OPS => {
                let group = self.acquiring.remove(&id).expect("an own lease request");
                if let LeaseResult::Granted { .. } = result {
                    let id = self.op();
                    let resource = start_order(&node.spec, group)[0];
                    let timeout = node.spec.group(group).resource(resource).start_timeout;
                    out.push_back(Output::Operation {
                        id,
                        group,
                        resource,
                        op: OpKind::Start,
                        timeout,
                    });
                }
                None
            }
            Input::Operation { id, .. } if id.0 >= OWN_OPS => None,
            input => Some(input),
        }
    }
    fn output(&mut self, node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        if matches!(output, Output::Wait(_)) {
            let status = node.engine.status(node.now);
            for g in &status.groups {
                let mine = node.spec.group(g.group).nodes.contains(&node.me);
                let elsewhere = g.owner.is_some_and(|o| o != node.me);
                if mine && elsewhere && g.locked && self.taken.insert(g.group) {
                    let id = self.op();
                    self.acquiring.insert(id, g.group);
                    out.push_back(Output::Lease { id, request: LeaseRequest::Acquire(g.group) });
                }
            }
        }
        out.push_back(output);
    }
}

/// Beta is drained at 5 s: alpha keeps `db` and takes `web`, both migration-locked
/// there (no standby). Without arbitration, so that the lease a broken core asks for is
/// granted and S3 has nothing to report.
fn drained_beta<C: Core>() -> Sim<C> {
    let mut sim = plain::<C>(ArbitrationKind::None, secs(5));
    let beta = sim.node("beta");
    sim.admin(beta, AdminCommand::Drain(beta));
    sim.run_until(secs(15));
    sim
}

/// S4 must catch a node that starts a group while its owner, up and holding the lease,
/// reports it migration-locked. (The start also puts the group on two nodes, which S1
/// reports in its turn; the real engine's drained node starts nothing.) S3 stays quiet:
/// S4 is not caught only as a side effect of a start without a lease.
#[test]
fn s4_catches_a_core_that_ignores_the_migration_lock() {
    let broken = drained_beta::<Broken<IgnoresLock>>();
    let real = drained_beta::<Engine>();
    assert!(real.status(real.node("alpha")).is_some_and(|s| s.groups[0].locked));
    caught(&broken, &real, Guarantee::S4);
    assert_eq!(broken.violation_count(Guarantee::S3), 0, "{:?}", broken.violations());
}

// ----- S5 --------------------------------------------------------------------------

/// Never locks the standby: `Output::LockStandby` never leaves the core.
#[derive(Default)]
struct NoStandbyLock;

impl Breakage for NoStandbyLock {
    fn output(&mut self, _: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        if !matches!(output, Output::LockStandby { .. }) {
            out.push_back(output);
        }
    }
}

fn formed_and_switched<C: Core>() -> Sim<C> {
    let mut sim = plain::<C>(ArbitrationKind::Disk, secs(20));
    assert!(sim.spec().groups.iter().any(|g| g.locks_standby()), "the cluster locks standbys");
    // The group moves to beta and back: each node is a standby in turn.
    let beta = sim.node("beta");
    sim.admin(beta, AdminCommand::Switchover { group: DB, to: Some(beta) });
    sim.run_until(secs(40));
    let alpha = sim.node("alpha");
    sim.admin(alpha, AdminCommand::Switchover { group: DB, to: Some(alpha) });
    sim.run_until(secs(60));
    sim
}

/// S5 must catch a standby whose `lock_standby` device stays writable.
#[test]
fn s5_catches_a_core_that_never_locks_the_standby() {
    let broken = formed_and_switched::<Broken<NoStandbyLock>>();
    let real = formed_and_switched::<Engine>();
    caught(&broken, &real, Guarantee::S5);
}

// ----- L1 --------------------------------------------------------------------------

/// Never finishes starting `db`: the start of its last resource (postgres) is neither
/// carried out nor answered, so the group stays half up for ever.
#[derive(Default)]
struct NeverFinishes;

impl Breakage for NeverFinishes {
    fn output(&mut self, node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        let last = start_order(&node.spec, DB).last().copied();
        let dropped = matches!(
            output,
            Output::Operation { group: DB, resource, op: OpKind::Start, .. } if Some(resource) == last
        );
        if !dropped {
            out.push_back(output);
        }
    }
}

/// L1 must catch a group that, after healing, does not run complete on one node. (L2
/// fires too in this run: both engines still report the half-started `db` locked.)
#[test]
fn l1_catches_a_core_that_never_finishes_starting_a_group() {
    swarm_caught::<NeverFinishes>(1, Guarantee::L1);
}

// ----- L2 --------------------------------------------------------------------------

/// Its status always reports `web` migration-locked, whatever its engine knows.
#[derive(Default)]
struct AlwaysLocked;

impl Breakage for AlwaysLocked {
    fn status(&self, mut status: Status) -> Status {
        for g in status.groups.iter_mut().filter(|g| g.group == WEB) {
            g.locked = true;
            g.lock_reason = Some("broken core".to_owned());
        }
        status
    }
}

/// L2 must catch a group still reported locked after healing.
#[test]
fn l2_catches_a_core_that_always_reports_a_group_locked() {
    swarm_caught::<AlwaysLocked>(1, Guarantee::L2);
}

// ----- C ---------------------------------------------------------------------------

/// Once, beside the engine's first operation, asks for a monitor of a resource `db`
/// does not have.
#[derive(Default)]
struct UnknownResource {
    asked: bool,
}

impl Breakage for UnknownResource {
    fn output(&mut self, _: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        if let Output::Operation { timeout, .. } = output {
            if !self.asked {
                self.asked = true;
                let (id, resource) = (OpId(OWN_OPS), ResourceId(99));
                out.push_back(Output::Operation {
                    id,
                    group: DB,
                    resource,
                    op: OpKind::Monitor,
                    timeout,
                });
            }
        }
        out.push_back(output);
    }
}

/// C must catch an operation on a resource the cluster does not have.
#[test]
fn c_catches_a_core_that_asks_for_an_unknown_resource() {
    plain_caught::<UnknownResource>(ArbitrationKind::Disk, secs(5), Guarantee::Contract);
}

/// Never really waits: every `Output::Wait` asks to be woken at once.
#[derive(Default)]
struct BusyLoop;

impl Breakage for BusyLoop {
    fn output(&mut self, node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        out.push_back(match output {
            Output::Wait(_) => Output::Wait(node.now),
            output => output,
        });
    }
}

/// C must catch a core that busy-loops (a wake-up asked for the same instant over and
/// over), which would burn a CPU in the daemon.
#[test]
fn c_catches_a_core_that_never_waits() {
    plain_caught::<BusyLoop>(ArbitrationKind::Disk, secs(1), Guarantee::Contract);
}

/// Once, two seconds in, does not settle: instead of waiting it repeats the last event
/// its engine gave, for as long as it is polled in that turn.
#[derive(Default)]
struct Chatters {
    last: Option<Output>,
    /// In the turn in which it chatters; `done` once that turn is over.
    chattering: bool,
    done: bool,
}

impl Breakage for Chatters {
    fn input(&mut self, _: &Node, input: Input, _: &mut VecDeque<Output>) -> Option<Input> {
        self.done |= self.chattering;
        self.chattering = false;
        Some(input)
    }
    fn output(&mut self, node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        if matches!(output, Output::Event(_)) {
            self.last = Some(output.clone());
        }
        let due = !self.done && node.now >= Instant(2_000_000_000) && self.last.is_some();
        match (output, self.last.clone()) {
            (Output::Wait(_), Some(event)) if due => {
                self.chattering = true;
                out.push_back(event);
            }
            (output, _) => out.push_back(output),
        }
    }
}

/// C must catch a core that does not settle: the simulator polls a bounded number of
/// outputs per input, then reports it (the daemon's loop would spin in that turn).
#[test]
fn c_catches_a_core_that_never_settles() {
    plain_caught::<Chatters>(ArbitrationKind::Disk, secs(3), Guarantee::Contract);
}

/// Arms its fence guard once and never moves it: every later `Output::ArmFence` is
/// dropped, so the guard reaches its first deadline while the engine still runs and
/// renews its lease.
#[derive(Default)]
struct GuardNeverMoved {
    armed: bool,
}

impl Breakage for GuardNeverMoved {
    fn output(&mut self, _: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        if let Output::ArmFence { deadline, .. } = output {
            if self.armed {
                return;
            }
            self.armed = deadline.is_some();
        }
        out.push_back(output);
    }
}

/// C must catch a guard deadline reached under a live engine: a running engine keeps
/// its guard ahead of it with every renewal.
#[test]
fn c_catches_a_core_that_never_moves_its_guard() {
    plain_caught::<GuardNeverMoved>(ArbitrationKind::Disk, secs(5), Guarantee::Contract);
}

/// Once, beside the engine's first heartbeat, sends a copy of it to itself.
#[derive(Default)]
struct TalksToItself {
    sent: bool,
}

impl Breakage for TalksToItself {
    fn output(&mut self, node: &mut Node, output: Output, out: &mut VecDeque<Output>) {
        if let Output::Heartbeat { link, message, .. } = &output {
            if !self.sent {
                self.sent = true;
                let (link, message) = (*link, message.clone());
                out.push_back(Output::Heartbeat { link, to: node.me, message });
            }
        }
        out.push_back(output);
    }
}

/// C must catch a heartbeat addressed to no peer (here the sender itself).
#[test]
fn c_catches_a_core_that_sends_a_heartbeat_to_itself() {
    plain_caught::<TalksToItself>(ArbitrationKind::Disk, secs(2), Guarantee::Contract);
}

/// The planted bug of the two tests below: once told to stop, exit at once and cleanly
/// (the fence guard disarmed), whatever still runs.
fn exits_at_once(by: Option<Instant>, _now: Instant, _quiescent: bool) -> AfterStop {
    if by.is_some() {
        AfterStop::ExitClean
    } else {
        AfterStop::Stay
    }
}

/// A planted bug in the node core, not in the engine: `nodecore::shutdown`'s rule made to
/// exit cleanly (the fence guard disarmed) as soon as the daemon is told to stop, with its
/// group still running. The simulator runs the node core's rule, as the daemon does, so
/// the owner's resources outlive their daemon and their guard, beta takes the group over
/// once the lease runs out, and S1 catches it; the real rule hands the group over first.
/// (Before the node core, this rule lived only in the daemon's loop: no seed could see it.)
#[test]
fn s1_catches_a_planted_bug_in_the_node_core_s_exit_rule() {
    use nodecore::shutdown::after_stop_signal;
    let run = |rule: fn(Option<Instant>, Instant, bool) -> AfterStop| {
        let mut options = sim::Options::scripted();
        options.rules.after_stop = rule;
        let mut sim: Sim<Engine> = Sim::scripted(sim::cluster::two_node(), options);
        sim.run_until(secs(10));
        let alpha = sim.node("alpha");
        sim.shutdown(alpha);
        sim.run_until(secs(40));
        sim
    };
    caught(&run(exits_at_once), &run(after_stop_signal), Guarantee::S1);
}

/// The same planted bug found by the random swarm, with no script: the swarm restarts
/// daemons with a stop signal (`daemon restarts` in its plans, as `systemctl restart`
/// does), each node runs the node core's exit rule, and the first seed of the
/// active-standby example whose plan restarts daemons catches it (S1: the owner exits
/// at once with its guard disarmed and its group running; beta takes the group once the
/// lease runs out). The real rule passes the same seed. Before the node core the
/// simulator ran its own copy of this rule and the swarm gave no stop signal: no seed
/// could find it.
#[test]
fn the_swarm_finds_a_planted_bug_in_the_node_core_s_exit_rule() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/active-standby.toml");
    let spec = config::load(&path).map(|(config, _)| config.cluster).expect("the example loads");
    let run = |rules: nodecore::Rules| {
        let sim: Sim<Engine> = Sim::swarm(spec.clone(), 0, secs(360), false).with_rules(rules);
        let mut sim = sim;
        (sim.plan().unwrap_or_default(), sim.run_to_end())
    };
    let planted = nodecore::Rules { after_stop: exits_at_once, ..nodecore::Rules::default() };
    let (plan, broken) = run(planted);
    assert!(plan.contains("daemon restarts: every"), "{plan}");
    let s1 = broken.counts.iter().find(|(g, _)| *g == Guarantee::S1).map_or(0, |(_, n)| *n);
    assert!(s1 > 0, "the planted exit rule went unseen: {:?}", broken.counts);
    let (_, real) = run(nodecore::Rules::default());
    assert_eq!(real.total(), 0, "the real rule: {:?}", real.violations);
}
