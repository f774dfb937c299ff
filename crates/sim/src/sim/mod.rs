//! The simulator proper: N real nodes (each the daemon's own node core,
//! `nodecore::NodeCore`, around a real engine, on its own drifting clock) driven by one
//! event queue in simulated real time, with a simulated network, shared disk (and each
//! host's disk worker), arbitrator, resource agents and hosts, and the checkers fed at
//! every step.
//!
//! Event-driven: time jumps from one event to the next; nothing reads the OS clock or
//! OS randomness (one seeded ChaCha generator per run), and no iteration order depends
//! on a hash map. Two runs of one seed process the same events in the same order, which
//! the trace hash proves.
//!
//! Two ways to drive it: [`Sim::swarm`] draws a fault plan from the seed and runs a
//! safety phase then a liveness phase on its own; [`Sim::scripted`] injects nothing and
//! offers methods (`crash`, `cut`, `admin`, ...) for scenario tests. Like the daemon's
//! loop, the simulator decides nothing a node decides: what reaches a daemon goes to
//! its core, the core wakes and is polled until it waits, and every `Action` is carried
//! out in the simulated world; it keeps the ground truth.
//!
//! The fence guard (`Action::ArmFence`) models what outlives the daemon: armed with an
//! engine's last deadline, it stops every resource of the host when the deadline passes
//! unless an engine re-armed it first — also while the engine that armed it still runs
//! (a daemon whose loop stopped renews nothing; a live engine moves the deadline before
//! it comes, and the checker C counts a guard that fires under a live daemon as a
//! contract violation); it fires at once when the daemon that armed it dies after its
//! deadline. A daemon whose core finds the guard's deadline passed (`Action::Stalled`)
//! restarts, as the real one does.
//!
//! A paused daemon (`pause_daemon`: SIGSTOP, a call that hangs) takes nothing in: no
//! timer fires, and heartbeats, disk answers, witness replies, agent results and
//! commands wait in arrival order (the kernel would queue datagrams and drop them on
//! overflow: here up to [`PAUSED_BACKLOG_MAX`]). The world goes on: its resources run,
//! agent operations already started complete (agents are processes of their own), disk
//! writes already issued land, and its guard acts at its deadline (no contract
//! violation: the engine did not run). On resume its core gets what it missed (disk
//! answers stamped at the resume: the worker is a thread of the stopped process) and
//! wakes: past its guard's deadline it stalls and restarts (E3112).
//!
//! Where each part lives: this file holds [`Sim`], its [`Options`], the event type, the
//! event loop (`run_until`, `dispatch`), each daemon's wake-up and settle (`wake_node`,
//! `settle`, `apply`, the trace of its actions, its timer); `world` the hosts and
//! daemons (UDP heartbeats, agents' operations, ground truth, the fence guard, daemons'
//! starts and exits); `worker` the disk worker and the witness path; `swarm` the fault
//! plan's run (injection, healing, the liveness phase); `scripted` the public scripted
//! API; `tests` the unit tests on a greedy core.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use engine::{
    AdminCommand, ArbitrationKind, ClusterSpec, Engine, GroupId, Heartbeat, Instant, LeaseRequest,
    LeaseResult, LinkId, LinkKind, NodeId, OpId, OpKind, ResourceId, Status,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::agents::{AgentParams, Agents, Plan};
use crate::check::{Checkers, Guarantee, Violation};
use crate::clock::Clock;
use crate::core::Core;
use crate::net::{between, Network, PathParams};
use crate::queue::EventQueue;
use crate::shared_disk::{DiskParams, SharedDisk};
use crate::trace::{Timeline, TraceHash};
use arbiter::witness::{WitnessReply, WitnessRequest, WitnessServer};
use nodecore::shutdown::AfterStop;
use nodecore::Action;

mod scripted;
mod swarm;
#[cfg(test)]
mod tests;
mod worker;
mod world;

pub use swarm::liveness_bound;
use swarm::{FaultKind, Healing, Phase, Swarm};
use worker::Part;
pub use world::PAUSED_BACKLOG_MAX;
use world::{Arrival, Daemon, Host};

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000 * MS;

/// Outputs one engine may produce for one input before it is judged not to settle.
pub const OUTPUTS_PER_INPUT_MAX: usize = 100_000;
/// Wake-ups one engine may ask for at one instant before it is judged to busy-loop.
pub const TIMEOUTS_PER_INSTANT_MAX: u32 = 10_000;

/// Everything about a run that is not the cluster.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Keep the transition summary (costs time; off in swarm runs).
    pub timeline: bool,
    /// Per node; `None`: every clock reads real time exactly.
    pub clocks: Option<Vec<Clock>>,
    /// Per node, when it powers on; `None`: all at time zero.
    pub boot_ns: Option<Vec<u64>>,
    pub udp: PathParams,
    pub witness: PathParams,
    pub disk: DiskParams,
    pub agents: AgentParams,
    /// The disk lease client's I/O timeout (the simulated disk answers sooner, but for
    /// stalls); `None`: the daemon's rule for the cluster's timing
    /// (`nodecore::timing::disk_io_timeout`).
    pub io_timeout: Option<Duration>,
    pub witness_reply_timeout: Duration,
    /// How long a host that fenced itself (or was reset) stays down.
    pub reset_delay_ns: (u64, u64),
    /// When the fence guard acts (the real rule, or an older one kept to show that the
    /// checkers catch what it allowed).
    pub fence_guard: FenceGuardRule,
    /// The node core's rules that tests replace by broken ones, to show that the
    /// checkers catch a bug in the node core ([`nodecore::Rules`]; the daemon runs the
    /// default ones).
    pub rules: nodecore::Rules,
    /// Each host has a wall clock (incarnations from wall-clock microseconds, as the
    /// daemon's); off in scripted runs, whose incarnations then read 1, 2, ...
    pub wall_clocks: bool,
}

/// When the simulated fence guard stops a host's resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceGuardRule {
    /// At its deadline, whether or not the daemon that armed it runs (issue 18): a live,
    /// running engine that lets it come breaks its contract (checker C); a daemon paused
    /// past it restarts when it resumes, as the real one does (E3112).
    AtDeadline,
    /// The rule before issue 18: only once the daemon that armed it is gone (at its
    /// deadline, or at once when the daemon dies after it). A paused daemon keeps its
    /// resources running past its lease, and the peer takes over beside them: kept for
    /// the test that shows checker S1 catches it.
    OnlyWithoutDaemon,
}

impl Options {
    /// Fixed, readable timing for scenario tests: exact clocks, 1 ms network, 5 ms disk,
    /// 100 ms starts and stops, 10 ms monitors, no random faults.
    pub fn scripted() -> Options {
        Options {
            seed: 0,
            timeline: true,
            clocks: None,
            boot_ns: None,
            udp: PathParams::fixed(MS),
            witness: PathParams::fixed(MS),
            disk: DiskParams {
                latency_ns: (5 * MS, 5 * MS),
                error_ppm: 0,
                stall_ppm: 0,
                stall_ns: (0, 0),
            },
            agents: AgentParams::fixed(100 * MS, 100 * MS, 10 * MS),
            io_timeout: None,
            witness_reply_timeout: Duration::from_millis(100),
            reset_delay_ns: (20 * SEC, 20 * SEC),
            fence_guard: FenceGuardRule::AtDeadline,
            rules: nodecore::Rules::default(),
            wall_clocks: false,
        }
    }
}

enum Ev {
    EngineTimer {
        node: NodeId,
        boot: u64,
        generation: u64,
    },
    Heartbeat {
        link: LinkId,
        to: NodeId,
        message: Heartbeat,
    },
    OpDone {
        node: NodeId,
        boot: u64,
        id: OpId,
        group: GroupId,
        resource: ResourceId,
        op: OpKind,
        plan: Plan,
    },
    /// One I/O of a disk job lands (`worker`).
    DiskIo {
        node: NodeId,
        job: u64,
        part: Part,
        ok: bool,
    },
    /// A disk job's last I/O returned: its answer.
    DiskJobEnd {
        node: NodeId,
        job: u64,
    },
    ToWitness(WitnessRequest),
    FromWitness {
        node: NodeId,
        reply: WitnessReply,
    },
    FenceGuard {
        node: NodeId,
        generation: u64,
    },
    PowerOn {
        node: NodeId,
    },
    DaemonStart {
        node: NodeId,
    },
    /// The end of a pause of this daemon (`boot`).
    DaemonResume {
        node: NodeId,
        boot: u64,
    },
    Inject(FaultKind),
    Heal(Healing),
    HealAll,
    LivenessCheck,
    /// An admin command for a random live node.
    Admin(AdminCommand),
}

impl Ev {
    fn tag(&self) -> u8 {
        match self {
            Ev::EngineTimer { .. } => 1,
            Ev::Heartbeat { .. } => 2,
            Ev::OpDone { .. } => 5,
            Ev::DiskIo { .. } => 7,
            Ev::DiskJobEnd { .. } => 8,
            Ev::ToWitness(_) => 9,
            Ev::FromWitness { .. } => 10,
            Ev::FenceGuard { .. } => 11,
            Ev::PowerOn { .. } => 12,
            Ev::DaemonStart { .. } => 13,
            Ev::Inject(_) => 14,
            Ev::Heal(_) => 15,
            Ev::HealAll => 16,
            Ev::LivenessCheck => 17,
            Ev::Admin(_) => 18,
            Ev::DaemonResume { .. } => 19,
        }
    }
}

/// What one run found and how much it simulated.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub seed: u64,
    pub simulated_ns: u64,
    pub events: u64,
    /// Violations per guarantee, in `Guarantee::ALL` order.
    pub counts: Vec<(Guarantee, u64)>,
    /// The first violations with their messages.
    pub violations: Vec<Violation>,
    pub trace_hash: String,
    /// Engine events by code.
    pub codes: BTreeMap<&'static str, u64>,
    pub liveness_bound: Duration,
    pub heal_at_ns: u64,
}

impl RunReport {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, c)| c).sum()
    }
}

pub struct Sim<C: Core = Engine> {
    spec: Arc<ClusterSpec>,
    options: Options,
    now: u64,
    queue: EventQueue<Ev>,
    rng: ChaCha8Rng,
    hosts: Vec<Host<C>>,
    net: Network,
    disk: SharedDisk,
    disk_link: Option<LinkId>,
    witness: Option<(WitnessServer, Clock)>,
    agents: Agents,
    checkers: Checkers,
    trace: TraceHash,
    timeline: Option<Timeline>,
    name_width: usize,
    events: u64,
    codes: BTreeMap<&'static str, u64>,
    phase: Phase,
    swarm: Option<Swarm>,
}

impl<C: Core> Sim<C> {
    /// A run with no injected faults, the timeline on, driven by the scripted methods.
    pub fn scripted(spec: ClusterSpec, options: Options) -> Sim<C> {
        Sim::new(spec, options)
    }

    pub fn new(spec: ClusterSpec, options: Options) -> Sim<C> {
        let spec = Arc::new(spec);
        let nodes = spec.nodes.len();
        let groups = spec.groups.len();
        let clocks = options.clocks.clone().unwrap_or_else(|| vec![Clock::EXACT; nodes]);
        assert_eq!(clocks.len(), nodes, "one clock per node");
        let hosts = clocks
            .into_iter()
            .map(|clock| Host {
                clock,
                powered: false,
                daemon: None,
                incarnation: 0,
                kept_incarnation: 0,
                wall_offset_ns: 0,
                backup: None,
                boots: 0,
                guard: None,
                guard_generation: 0,
                guard_armed_by: 0,
                ops_in_flight: BTreeMap::new(),
                locked: vec![false; groups],
                guard_inherited: None,
                guard_kept_inherited: false,
                ops_ended: BTreeSet::new(),
                persisted_admin: None,
                worker_free_ns: 0,
                restart_after_stop: None,
                jobs: BTreeMap::new(),
                next_job: 0,
            })
            .collect();
        let disk_link = spec.link_ids().find(|l| spec.link(*l).kind == LinkKind::Disk);
        let witness = (spec.arbitration == ArbitrationKind::Witness).then(|| {
            let server = WitnessServer::new(groups, spec.timing.lease_takeover_wait());
            (server, Clock::new(7 * SEC, 1_234))
        });
        let mut queue = EventQueue::default();
        let boot = options.boot_ns.clone().unwrap_or_else(|| vec![0; nodes]);
        for (n, at) in boot.into_iter().enumerate() {
            queue.push(at, Ev::PowerOn { node: NodeId(n as u16) });
        }
        Sim {
            net: Network::new(spec.links.len(), nodes, options.udp),
            disk: SharedDisk::new(nodes, groups, options.disk),
            agents: Agents::new(nodes, groups, options.agents),
            checkers: Checkers::new(spec.clone()),
            name_width: spec.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0),
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            timeline: options.timeline.then(Timeline::default),
            now: 0,
            queue,
            hosts,
            disk_link,
            witness,
            trace: TraceHash::default(),
            events: 0,
            codes: BTreeMap::new(),
            phase: Phase::Safety,
            swarm: None,
            spec,
            options,
        }
        .with_witness_paths()
    }

    fn with_witness_paths(mut self) -> Self {
        for path in self.net.to_witness.iter_mut().chain(&mut self.net.from_witness) {
            path.params = self.options.witness;
        }
        self
    }

    // ----- observation ---------------------------------------------------------------

    pub fn spec(&self) -> &Arc<ClusterSpec> {
        &self.spec
    }

    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    pub fn violations(&self) -> &[Violation] {
        self.checkers.violations()
    }

    pub fn violation_count(&self, guarantee: Guarantee) -> u64 {
        self.checkers.count(guarantee)
    }

    pub fn trace_hash(&self) -> String {
        self.trace.finish()
    }

    /// The transition summary so far (empty when the timeline is off).
    pub fn summary(&self) -> String {
        self.timeline.as_ref().map(Timeline::render).unwrap_or_default()
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Node `name`'s id; panics on an unknown name (scripts are checked before).
    pub fn node(&self, name: &str) -> NodeId {
        self.spec.node_id(name).unwrap_or_else(|| panic!("no node named {name}"))
    }

    /// Whether a resource runs on a node (ground truth).
    pub fn is_running(&self, node: NodeId, group: GroupId, resource: ResourceId) -> bool {
        self.agents.is_running(node, group, resource)
    }

    /// The node's engine's status, if its daemon runs.
    /// The administrative state a live node holds (diagnostics).
    pub fn admin_state(&self, node: NodeId) -> Option<engine::AdminState> {
        self.hosts[usize::from(node.0)].daemon.as_ref().and_then(|d| d.core.engine().admin_state())
    }

    pub fn status(&self, node: NodeId) -> Option<Status> {
        let host = &self.hosts[usize::from(node.0)];
        host.daemon.as_ref().map(|d| d.core.engine().status(host.clock.local(self.now)))
    }

    /// Each live engine's view (its status), one line per node, for people reading a
    /// failed run: node states, each group's state, owner and lock, and current faults.
    pub fn views(&self) -> String {
        let mut out = String::new();
        for node in self.spec.node_ids() {
            let name = self.node_name(node);
            let Some(status) = self.status(node) else {
                out.push_str(&format!("{name}: daemon down\n"));
                continue;
            };
            let nodes: Vec<String> = status
                .nodes
                .iter()
                .map(|n| format!("{}={}", self.node_name(n.node), n.state.as_str()))
                .collect();
            let groups: Vec<String> = status
                .groups
                .iter()
                .map(|g| {
                    let owner = g.owner.map_or("-".to_owned(), |o| self.node_name(o).to_owned());
                    let lock = g
                        .lock_reason
                        .as_deref()
                        .map_or(String::new(), |r| format!(", locked: {r}"));
                    format!(
                        "{} {} on {owner}{lock}",
                        self.spec.group(g.group).name,
                        g.state.as_str()
                    )
                })
                .collect();
            let faults: Vec<String> =
                status.faults.iter().map(|f| format!("{} {}", f.code.code, f.location)).collect();
            out.push_str(&format!(
                "{name}: nodes {}; groups {}; faults [{}]\n",
                nodes.join(" "),
                groups.join("; "),
                faults.join("; ")
            ));
        }
        out
    }

    pub fn report(&self) -> RunReport {
        RunReport {
            seed: self.options.seed,
            simulated_ns: self.now,
            events: self.events,
            counts: Guarantee::ALL.iter().map(|g| (*g, self.checkers.count(*g))).collect(),
            violations: self.checkers.violations().to_vec(),
            trace_hash: self.trace.finish(),
            codes: self.codes.clone(),
            liveness_bound: self.swarm.as_ref().map_or(Duration::ZERO, |s| s.bound),
            heal_at_ns: self.swarm.as_ref().map_or(0, |s| s.heal_at_ns),
        }
    }

    fn note(&mut self, text: impl FnOnce(usize) -> String) {
        if let Some(timeline) = self.timeline.as_mut() {
            timeline.push(self.now, text(self.name_width));
        }
    }

    fn node_name(&self, node: NodeId) -> &str {
        &self.spec.node(node).name
    }

    fn action(&mut self, what: String) {
        self.note(|w| format!("{:<w$}  ** {what}", ""));
    }

    // ----- running -------------------------------------------------------------------

    /// Runs every event up to and including `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Duration) -> &mut Self {
        let until = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        while let Some(at) = self.queue.peek_time() {
            if at > until || self.phase == Phase::Done {
                break;
            }
            self.step();
        }
        self.now = self.now.max(until);
        self
    }

    /// Alias of [`Sim::run_until`] that reads well in scripts: `sim.at(secs(5)).crash(a)`.
    pub fn at(&mut self, time: Duration) -> &mut Self {
        self.run_until(time)
    }

    /// Runs a swarm run to its liveness check.
    pub fn run_to_end(&mut self) -> RunReport {
        while self.phase != Phase::Done {
            if self.queue.is_empty() {
                break;
            }
            self.step();
        }
        self.report()
    }

    fn step(&mut self) {
        let (at, ev) = self.queue.pop().expect("step with an empty queue");
        debug_assert!(at >= self.now, "time went backwards");
        self.now = at;
        self.events += 1;
        self.trace.u8(ev.tag());
        self.trace.u64(at);
        self.dispatch(ev);
    }

    // Long because: one match over every simulator event, each arm that event's whole
    // handling.
    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::EngineTimer { node, boot, generation } => {
                self.trace.u64(u64::from(node.0));
                let Some(daemon) = self.daemon_mut(node, boot) else { return };
                if daemon.timer.generation != generation {
                    return;
                }
                daemon.timer.at_ns = None;
                // No timer fires in a stopped loop; the resume wakes it.
                if daemon.paused.is_none() {
                    self.wake_node(node, Arrival::Nothing);
                }
            }
            Ev::Heartbeat { link, to, message } => {
                self.trace.u64(u64::from(to.0));
                self.trace.u64(message.sequence);
                self.wake_node(to, Arrival::Heartbeat { link, message });
            }
            Ev::OpDone { node, boot, id, group, resource, op, plan } => {
                self.trace.u64(id.0);
                self.op_done(node, boot, id, group, resource, op, plan);
            }
            Ev::DiskIo { node, job, part, ok } => {
                self.trace.u64(job);
                self.disk_io_lands(node, job, part, ok);
            }
            Ev::DiskJobEnd { node, job } => self.disk_job_ends(node, job),
            Ev::ToWitness(request) => self.witness_request(request),
            Ev::FromWitness { node, reply } => self.wake_node(node, Arrival::Witness(reply)),
            Ev::FenceGuard { node, generation } => {
                let host = &self.hosts[usize::from(node.0)];
                if host.guard_generation == generation {
                    let armer = host.daemon.as_ref().filter(|d| d.boot == host.guard_armed_by);
                    // A paused daemon renews nothing: its guard acts, and its core finds
                    // it at its next wake-up (`Action::Stalled`).
                    let armer_runs = armer.is_some_and(|d| d.paused.is_none());
                    if self.options.fence_guard == FenceGuardRule::OnlyWithoutDaemon {
                        if armer.is_none() {
                            self.fire_guard(node);
                        }
                        return;
                    }
                    let inherited = host.guard_kept_inherited;
                    self.fire_guard(node);
                    if armer_runs && !inherited {
                        // A live engine lets its own guard deadline come only when its
                        // loop stopped; this one did not. (A predecessor's deadline it
                        // kept, `keep_earlier`, may come: it bounds what it does not hold.)
                        let message = format!(
                            "{}'s fence guard reached its deadline under its live engine",
                            self.node_name(node)
                        );
                        self.checkers.report(Guarantee::Contract, self.now, message);
                    }
                }
            }
            Ev::PowerOn { node } => {
                let host = &mut self.hosts[usize::from(node.0)];
                if !host.powered {
                    host.powered = true;
                    self.start_daemon(node);
                }
            }
            Ev::DaemonStart { node } => self.start_daemon(node),
            Ev::DaemonResume { node, boot } => {
                if self.daemon_mut(node, boot).is_some_and(|d| d.paused.is_some()) {
                    self.resume_daemon(node);
                }
            }
            Ev::Inject(kind) => self.inject(kind),
            Ev::Heal(healing) => {
                if self.phase == Phase::Safety {
                    self.heal_one(healing);
                }
            }
            Ev::HealAll => self.heal_all(),
            Ev::LivenessCheck => self.liveness_check(),
            Ev::Admin(command) => {
                let live: Vec<NodeId> = self.live_nodes();
                if let Some(node) = live.choose(&mut self.rng).copied() {
                    self.admin(node, command);
                }
            }
        }
    }

    fn local(&self, node: NodeId) -> Instant {
        self.hosts[usize::from(node.0)].clock.local(self.now)
    }

    fn daemon_mut(&mut self, node: NodeId, boot: u64) -> Option<&mut Daemon<C>> {
        self.hosts[usize::from(node.0)].daemon.as_mut().filter(|d| d.boot == boot)
    }

    fn live_nodes(&self) -> Vec<NodeId> {
        self.spec.node_ids().filter(|n| self.hosts[usize::from(n.0)].daemon.is_some()).collect()
    }

    /// Something reaches `node`'s daemon: as the daemon's loop does, it is handed to the
    /// node core, the loop wakes (the core's `wake`, with the disk answers that waited)
    /// and settles. A paused daemon keeps it for its resume.
    fn wake_node(&mut self, node: NodeId, arrival: Arrival) {
        let host = &mut self.hosts[usize::from(node.0)];
        let local = host.clock.local(self.now);
        let Some(daemon) = host.daemon.as_mut() else { return };
        if let Some(paused) = daemon.paused.as_mut() {
            match arrival {
                Arrival::Nothing => {}
                Arrival::Heartbeat { .. } if paused.backlog.len() >= PAUSED_BACKLOG_MAX => {}
                arrival => paused.backlog.push(arrival),
            }
            return;
        }
        daemon.arrive(local, arrival);
        daemon.wake(local);
        self.settle(node);
    }

    /// Carries out what `node`'s core asks for until it waits.
    fn settle(&mut self, node: NodeId) {
        let n = usize::from(node.0);
        for _ in 0..OUTPUTS_PER_INPUT_MAX {
            let now = self.now;
            let host = &mut self.hosts[n];
            let local = host.clock.local(now);
            let Some(daemon) = host.daemon.as_mut() else { return };
            let action = daemon.core.poll(local);
            self.hash_action(node, &action);
            if let Action::Wait(at) = action {
                self.hosts[n].daemon.as_mut().expect("polled").loop_ran_ns = now;
                self.set_engine_timer(node, at);
                self.check_standby_locks(node);
                return;
            }
            if self.apply(node, action) {
                return; // the daemon is gone (fenced, stalled, exited)
            }
        }
        let message = format!(
            "{} produced {OUTPUTS_PER_INPUT_MAX} actions without waiting",
            self.node_name(node)
        );
        self.checkers.report(Guarantee::Contract, self.now, message);
    }

    /// Carries out one action of a node core; true when its daemon is gone.
    // Long because: one match over every action of the node core, each arm what the
    // shell does with it.
    fn apply(&mut self, node: NodeId, action: Action) -> bool {
        match action {
            Action::Send { link, to, message } => self.send_heartbeat(node, link, to, message),
            Action::DiskJob { id, plan, deadline, reads_after } => {
                self.disk_job(node, id, plan, deadline, reads_after)
            }
            Action::DiskStuck => {
                // The worker is abandoned: the next job goes to a new one at once.
                self.hosts[usize::from(node.0)].worker_free_ns = self.now;
            }
            Action::DiskPrompt(on) => {
                let local = self.local(node);
                if let Some(daemon) = self.hosts[usize::from(node.0)].daemon.as_mut() {
                    daemon.prompt(local, on);
                }
            }
            Action::ToWitness(request) => self.send_to_witness(node, request),
            Action::Operation { id, group, resource, op, timeout } => {
                self.operation(node, id, group, resource, op, timeout)
            }
            Action::LeaseAnswered { request, result } => {
                self.lease_answered(node, request, &result)
            }
            Action::ArmFence { deadline, keep_earlier } => {
                self.arm_guard(node, deadline, keep_earlier)
            }
            Action::SelfFence { reason } => {
                let name = self.node_name(node).to_owned();
                self.note(|w| format!("{name:<w$}  ** self-fence: {reason}"));
                let delay = between(
                    &mut self.rng,
                    self.options.reset_delay_ns.0,
                    self.options.reset_delay_ns.1,
                );
                self.power_off(node, "self-fence", Some(delay));
                return true;
            }
            Action::Stalled { deadline } => {
                self.stalled(node, deadline);
                return true;
            }
            Action::Exit(exit) => {
                let parked = self.hosts[usize::from(node.0)]
                    .daemon
                    .as_ref()
                    .is_some_and(|d| d.core.engine().leases_parked());
                let (clean, why) = match exit {
                    AfterStop::ExitClean => (true, nodecore::shutdown::clean_exit_text(parked)),
                    _ => (
                        false,
                        "shutdown took too long: exiting with the fence guard armed; it stops \
                         what is left when the lease runs out",
                    ),
                };
                self.daemon_stopped(node, clean, why);
                return true;
            }
            Action::Event(event) => {
                *self.codes.entry(event.code.code).or_default() += 1;
                if self.timeline.is_some() {
                    let name = self.node_name(node).to_owned();
                    let code = event.code.code;
                    let message = event.message;
                    self.note(|w| format!("{name:<w$}  {code}  {message}"));
                }
            }
            Action::LockStandby { group } => {
                if self.spec.group(group).locks_standby() {
                    self.hosts[usize::from(node.0)].locked[group.0 as usize] = true;
                }
            }
            Action::Wait(_) => unreachable!("handled by settle"),
        }
        false
    }

    /// The engine's deadline for the host's fence guard.
    fn arm_guard(&mut self, node: NodeId, deadline: Option<Instant>, keep_earlier: bool) {
        let host = &mut self.hosts[usize::from(node.0)];
        // With `keep_earlier` the guard keeps an earlier deadline it holds (a
        // predecessor's); the shell learns which one it keeps.
        let inherited = host.guard_inherited;
        let kept = inherited.filter(|d| keep_earlier && deadline.is_none_or(|n| *d < n));
        if !keep_earlier {
            host.guard_inherited = None;
        }
        host.guard_kept_inherited = kept.is_some();
        if let (Some(kept), Some(sent), Some(daemon)) = (kept, deadline, host.daemon.as_mut()) {
            daemon.core.guard_keeps(sent, kept);
        }
        let deadline = kept.or(deadline);
        host.guard = deadline;
        host.guard_generation += 1;
        host.guard_armed_by = host.daemon.as_ref().map_or(0, |d| d.boot);
        if let Some(real) = deadline.and_then(|d| host.clock.real_at(d)) {
            let generation = host.guard_generation;
            self.queue.push(real.max(self.now), Ev::FenceGuard { node, generation });
        }
    }

    /// The core found its guard's deadline passed (its loop did not run): as the daemon
    /// does, it waits for its guard (armed by this daemon, so its deadline is the one
    /// that passed) and starts again in place, as a new incarnation (E3112), which
    /// probes and rejoins as standby.
    fn stalled(&mut self, node: NodeId, deadline: Instant) {
        let n = usize::from(node.0);
        let local = self.local(node);
        let host = &self.hosts[n];
        let Some(daemon) = host.daemon.as_ref() else { return };
        if host.guard_armed_by == daemon.boot {
            self.fire_guard(node);
        }
        let ran = self.hosts[n].daemon.as_ref().map_or(self.now, |d| d.loop_ran_ns);
        let stalled = Duration::from_nanos(self.now - ran).as_millis();
        let late = local.saturating_since(deadline).as_millis();
        let code = &engine::catalogue::DAEMON_STALLED;
        *self.codes.entry(code.code).or_default() += 1;
        let name = self.node_name(node).to_owned();
        self.note(|w| {
            format!(
                "{name:<w$}  {}  this daemon's loop did not run for {stalled}ms; the fence \
                 guard fired ({late}ms ago): restarting as standby",
                code.code
            )
        });
        self.hosts[n].daemon = None;
        self.start_daemon(node);
    }

    fn hash_action(&mut self, node: NodeId, action: &Action) {
        let t = &mut self.trace;
        t.u8(100);
        t.u64(u64::from(node.0));
        match action {
            Action::Send { link, to, message } => {
                t.u8(1);
                t.u64(u64::from(link.0) << 16 | u64::from(to.0));
                t.u64(message.incarnation);
                t.u64(message.sequence);
                t.u64(message.sent_at.0);
            }
            Action::Operation { id, group, resource, op, timeout } => {
                t.u8(2);
                t.u64(id.0);
                t.u64(u64::from(group.0) << 16 | u64::from(resource.0));
                t.u8(*op as u8);
                t.u64(timeout.as_nanos() as u64);
            }
            Action::LeaseAnswered { request, result } => {
                t.u8(3);
                let (kind, group) = match request {
                    Some(LeaseRequest::Acquire(g)) => (1, g.0),
                    Some(LeaseRequest::Renew) => (2, 0),
                    Some(LeaseRequest::Release(g)) => (3, g.0),
                    Some(LeaseRequest::Park) => (4, 0),
                    None => (0, 0),
                };
                t.u8(kind);
                t.u64(u64::from(group));
                t.u8(matches!(result, LeaseResult::Granted { .. }) as u8);
            }
            Action::ArmFence { deadline, keep_earlier } => {
                t.u8(4);
                t.u64(deadline.map_or(u64::MAX, |d| d.0));
                t.u8(u8::from(*keep_earlier));
            }
            Action::SelfFence { reason } => {
                t.u8(5);
                t.bytes(reason.as_bytes());
            }
            Action::Event(e) => {
                t.u8(6);
                t.u64(e.at.0);
                t.bytes(e.code.code.as_bytes());
                t.bytes(e.message.as_bytes());
            }
            Action::Wait(at) => {
                t.u8(7);
                t.u64(at.0);
            }
            Action::LockStandby { group } => {
                t.u8(8);
                t.u64(u64::from(group.0));
            }
            Action::DiskJob { id, plan, deadline, .. } => {
                t.u8(9);
                t.u64(*id);
                t.u64(deadline.0);
                t.u64(plan.lease.len() as u64);
            }
            Action::DiskStuck => t.u8(10),
            Action::DiskPrompt(on) => t.u8(11 + u8::from(*on)),
            Action::ToWitness(_) => t.u8(13),
            Action::Stalled { deadline } => {
                t.u8(14);
                t.u64(deadline.0);
            }
            Action::Exit(exit) => t.u8(15 + *exit as u8),
        }
    }

    fn set_engine_timer(&mut self, node: NodeId, deadline: Instant) {
        let now = self.now;
        let host = &mut self.hosts[usize::from(node.0)];
        let daemon = host.daemon.as_mut().expect("a timer for a live daemon");
        let converted = match daemon.timer.converted {
            Some((local, real)) if local == deadline => Some(real),
            _ => host.clock.real_at(deadline),
        };
        let Some(mut real) = converted else {
            daemon.timer.at_ns = None;
            daemon.timer.generation += 1;
            return;
        };
        daemon.timer.converted = Some((deadline, real));
        real = real.max(now);
        if real == now {
            if daemon.busy.0 == now {
                daemon.busy.1 += 1;
            } else {
                // Sticky once the limit was reached.
                let stuck = daemon.busy.1 >= TIMEOUTS_PER_INSTANT_MAX;
                daemon.busy = (now, if stuck { TIMEOUTS_PER_INSTANT_MAX + 1 } else { 1 });
            }
            if daemon.busy.1 == TIMEOUTS_PER_INSTANT_MAX {
                let due = daemon.core.engine().due_at(deadline).join("; ");
                let message = format!(
                    "{} asked to wake at the same instant {TIMEOUTS_PER_INSTANT_MAX} times (busy loop): {due}",
                    self.spec.node(node).name
                );
                self.checkers.report(Guarantee::Contract, now, message);
            }
            if daemon.busy.1 >= TIMEOUTS_PER_INSTANT_MAX {
                // Throttled from now on: the run goes on, the violation is reported.
                real = now + MS;
            }
        }
        if daemon.timer.at_ns == Some(real) {
            return;
        }
        daemon.timer.at_ns = Some(real);
        daemon.timer.generation += 1;
        let (boot, generation) = (daemon.boot, daemon.timer.generation);
        self.queue.push(real, Ev::EngineTimer { node, boot, generation });
    }
}
