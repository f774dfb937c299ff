//! The simulator proper: N real engines (one per node, each on its own drifting clock)
//! driven by one event queue in simulated real time, with a simulated network, shared
//! disk, arbitrator, resource agents and hosts, and the checkers fed at every step.
//!
//! Event-driven: time jumps from one event to the next; nothing reads the OS clock or
//! OS randomness (one seeded ChaCha generator per run), and no iteration order depends
//! on a hash map. Two runs of one seed process the same events in the same order, which
//! the trace hash proves.
//!
//! Two ways to drive it: [`Sim::swarm`] draws a fault plan from the seed and runs a
//! safety phase then a liveness phase on its own; [`Sim::scripted`] injects nothing and
//! offers methods (`crash`, `cut`, `admin`, ...) for scenario tests. This file must not
//! decide anything an engine decides: it only carries inputs and outputs and keeps the
//! ground truth.
//!
//! The fence guard (`Output::ArmFence`) models what outlives the daemon: armed with an
//! engine's last deadline, it stops every resource of the host when the deadline passes
//! unless an engine re-armed it first — also while the engine that armed it still runs
//! (a daemon whose loop stopped renews nothing; a live engine moves the deadline before
//! it comes, and the checker C counts a guard that fires under a live daemon as a
//! contract violation); it fires at once when the daemon that armed it dies after its
//! deadline. A daemon whose guard fired restarts, as the real one does when it wakes
//! past its guard's deadline.
//!
//! A paused daemon (`pause_daemon`: SIGSTOP, a call that hangs) takes nothing in: no
//! timer fires, and heartbeats, disk polls, lease replies and timers, witness replies,
//! agent results, storage news and commands wait in arrival order (the kernel would
//! queue datagrams and drop them on overflow: here up to [`PAUSED_BACKLOG_MAX`]). The
//! world goes on: its resources run, agent operations already started complete (agents
//! are processes of their own), lease writes reach the disk, and its guard acts at its
//! deadline (no contract violation: the engine did not run). On resume, a deadline it
//! gave that has passed restarts it (E3112); otherwise its engine gets what it missed,
//! then a Timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use engine::{
    AdminCommand, ArbitrationKind, ClusterSpec, Engine, GroupId, Heartbeat, Input, Instant,
    LeaseRequest, LeaseResult, LinkId, LinkKind, NodeId, OpId, OpKind, OpResult, Output,
    ResourceId, ResourceKind, ResourceState, Status,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::agents::{AgentParams, Agents, Forced, Plan};
use crate::check::{Change, Checkers, Guarantee, HolderTruth, StartContext, Violation};
use crate::clock::Clock;
use crate::core::Core;
use crate::faults::{Rate, SwarmPlan};
use crate::net::{between, Network, PathParams};
use crate::queue::EventQueue;
use crate::shared_disk::{DiskParams, SharedDisk};
use crate::trace::{Timeline, TraceHash};
use arbiter::disk::{IoId, IoOp, IoResult, Record};
use arbiter::witness::{WitnessReply, WitnessRequest, WitnessServer};
use nodecore::{LeaseClient, LeaseStep, SlotReader, StoragePath};

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
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Safety,
    Liveness,
    Done,
}

/// A fault the swarm injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultKind {
    Partition,
    HostCrash,
    DaemonCrash,
    StorageLoss,
    ResourceCrash,
    NicFault,
    WitnessCut,
    Admin,
    DaemonPause,
}

/// The end of a fault the swarm injected.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Healing {
    /// Heal these (link, from, to) UDP directions and disk-slot pairs.
    Links {
        udp: Vec<(LinkId, NodeId, NodeId)>,
        disk: Vec<(NodeId, NodeId)>,
    },
    Storage(NodeId),
    Nic(NodeId, GroupId, ResourceId),
    Witness {
        node: NodeId,
        up: bool,
        down: bool,
    },
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
    DiskPoll {
        node: NodeId,
        boot: u64,
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
    LeaseReply {
        node: NodeId,
        boot: u64,
        id: OpId,
        result: LeaseResult,
    },
    LeaseIo {
        node: NodeId,
        boot: u64,
        io: IoId,
        op: IoOp,
        ok: bool,
        /// It lands after the client's I/O timeout (the client gave up on it).
        stale: bool,
        /// Real instant of its deadline: issued + the I/O timeout.
        deadline_ns: u64,
    },
    LeaseTimer {
        node: NodeId,
        boot: u64,
        generation: u64,
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
    /// The shutdown deadline of this daemon (`boot`), given a stop signal.
    ShutdownDue {
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
            Ev::DiskPoll { .. } => 4,
            Ev::OpDone { .. } => 5,
            Ev::LeaseReply { .. } => 6,
            Ev::LeaseIo { .. } => 7,
            Ev::LeaseTimer { .. } => 8,
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
            Ev::ShutdownDue { .. } => 20,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Timer {
    at_ns: Option<u64>,
    generation: u64,
    /// The last local deadline converted and its real time (engines repeat deadlines).
    converted: Option<(Instant, u64)>,
}

struct Daemon<C> {
    core: C,
    boot: u64,
    timer: Timer,
    lease_timer: Timer,
    client: LeaseClient,
    /// The groups this node was granted and not told it lost or released, and the
    /// latest `since` of any grant (the engine keeps one lease for all its groups,
    /// extended by every grant; the clients make every `since` valid for all held
    /// groups): the S3 checker's view of its leases.
    held: BTreeSet<GroupId>,
    lease_since: Option<Instant>,
    requests: BTreeMap<OpId, LeaseRequest>,
    /// Which disk slots hold news, by (incarnation, sequence): the daemon's rule.
    disk_slots: SlotReader<(u64, u64)>,
    /// The verdict on its disk path from its I/O results: the daemon's rule.
    storage: StoragePath,
    /// (instant, count) of wake-ups asked for at one instant.
    busy: (u64, u32),
    /// The last deadline this daemon gave its fence guard (the real daemon checks it at
    /// every wake-up before anything else).
    fence_given: Option<Instant>,
    /// Its loop is stopped (SIGSTOP, a hung call): what reached it meanwhile.
    paused: Option<Paused>,
    /// Given a stop signal ([`Sim::shutdown`]): when it exits at the latest.
    shutdown_by: Option<Instant>,
}

/// The most inputs a paused daemon keeps for its resume: beyond it, heartbeats are
/// dropped, as a full socket buffer drops datagrams (agent results and lease answers,
/// which the real daemon receives over channels, are always kept).
pub const PAUSED_BACKLOG_MAX: usize = 1 << 16;

/// A paused daemon: the inputs that reached it, in arrival order, handed to its engine
/// when it resumes (the kernel queues UDP datagrams; agents and the lease I/O finish in
/// the world and their results wait in the daemon's channels).
#[derive(Default)]
struct Paused {
    since_ns: u64,
    backlog: Vec<Missed>,
}

enum Missed {
    /// An event for the daemon, carried out again at the resume (heartbeats, disk
    /// polls, lease replies and timers, witness replies).
    Event(Ev),
    /// An input its engine would have been given.
    Input(Input),
    /// A disk lease I/O that completed while the daemon was stopped.
    IoDone { io: IoId, result: IoResult, deadline_ns: u64 },
}

struct Host<C> {
    clock: Clock,
    powered: bool,
    daemon: Option<Daemon<C>>,
    incarnation: u64,
    boots: u64,
    guard: Option<Instant>,
    guard_generation: u64,
    /// The daemon (boot number) that armed the guard.
    guard_armed_by: u64,
    /// Agent operations in flight (daemon boot, id): the guard ends them when it fires
    /// (the real one SIGKILLs its daemon's operations before it stops anything), and
    /// those it ended land nowhere.
    ops_in_flight: BTreeMap<(u64, OpId), GroupId>,
    /// Per group: its `lock_standby` devices are read-only on this host (the block
    /// device's flag: set by the engine's `LockStandby`, by a file system's stop and by
    /// the fence guard's stops; cleared by a file system's start and by a reboot).
    locked: Vec<bool>,
    /// The guard's deadline when the current daemon started (a predecessor's), which
    /// an `ArmFence { keep_earlier }` keeps when it is earlier.
    guard_inherited: Option<Instant>,
    /// The guard's deadline is that inherited one, kept by a `keep_earlier` arm.
    guard_kept_inherited: bool,
    ops_ended: BTreeSet<(u64, OpId)>,
    /// The administrative state the daemon keeps in its state directory (the real
    /// daemon journals it): it survives daemon restarts and host crashes.
    persisted_admin: Option<Arc<engine::NodeReport>>,
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

struct Swarm {
    plan: SwarmPlan,
    heal_at_ns: u64,
    bound: Duration,
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
    outputs: Vec<Output>,
    codes: BTreeMap<&'static str, u64>,
    phase: Phase,
    swarm: Option<Swarm>,
}

/// The time after healing within which every group must run on exactly one eligible
/// node and no group may be locked (L1, L2): boot and peer detection, a lease takeover,
/// an operation hung at the moment of healing, a monitor interval, a failback delay and
/// two complete stops and starts of the largest group, plus ten seconds of margin.
pub fn liveness_bound(spec: &ClusterSpec, agents: &AgentParams) -> Duration {
    let t = &spec.timing;
    let mut op_timeout = Duration::ZERO;
    let mut monitor = Duration::ZERO;
    let mut group_cycle = 0u64;
    let mut failback = Duration::ZERO;
    for group in &spec.groups {
        failback = failback.max(group.failback_delay);
        let mut cycle = 0;
        for r in &group.resources {
            op_timeout = op_timeout.max(r.start_timeout).max(r.stop_timeout).max(r.monitor_timeout);
            monitor = monitor.max(r.monitor_interval + r.monitor_timeout);
            cycle += agents.start_latency_ns.1 + agents.stop_latency_ns.1;
        }
        group_cycle = group_cycle.max(cycle);
    }
    t.startup_wait()
        + t.peer_timeout * 2
        + t.lease_takeover_wait()
        + t.lease_timeout
        + op_timeout
        + monitor
        + failback
        + Duration::from_nanos(2 * group_cycle)
        + Duration::from_secs(10)
}

impl<C: Core> Sim<C> {
    /// A run with no injected faults, the timeline on, driven by the scripted methods.
    pub fn scripted(spec: ClusterSpec, options: Options) -> Sim<C> {
        Sim::new(spec, options)
    }

    /// A swarm run of `duration`: the seed draws the fault plan; faults strike until the
    /// liveness bound before the end, then everything heals and L1/L2 are checked.
    pub fn swarm(spec: ClusterSpec, seed: u64, duration: Duration, timeline: bool) -> Sim<C> {
        let plan = Self::swarm_plan(&spec, seed);
        Sim::swarm_with_plan(spec, seed, plan, duration, timeline)
    }

    /// The fault plan seed `seed` draws for `spec` ([`Sim::swarm`]).
    pub fn swarm_plan(spec: &ClusterSpec, seed: u64) -> SwarmPlan {
        let mut plan_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4152_4d00_0000);
        SwarmPlan::draw(&mut plan_rng, spec)
    }

    /// [`Sim::swarm`] with a given plan (a seed's, edited: a regression seed found
    /// before a fault kind existed runs without it, as it was found).
    pub fn swarm_with_plan(
        spec: ClusterSpec,
        seed: u64,
        plan: SwarmPlan,
        duration: Duration,
        timeline: bool,
    ) -> Sim<C> {
        let options = Options {
            seed,
            timeline,
            clocks: Some(plan.clocks.clone()),
            boot_ns: Some(plan.boot_ns.clone()),
            udp: plan.udp,
            witness: plan.witness,
            disk: plan.disk,
            agents: plan.agents,
            io_timeout: None,
            witness_reply_timeout: Duration::from_millis(150),
            reset_delay_ns: (SEC, 30 * SEC),
            fence_guard: FenceGuardRule::AtDeadline,
        };
        let bound = liveness_bound(&spec, &plan.agents);
        let total = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let bound_ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        // At least a minute of faults, whatever the duration asked for.
        let heal_at_ns = total.saturating_sub(bound_ns).max(60 * SEC);
        let witness = spec.arbitration == ArbitrationKind::Witness;
        let mut sim = Sim::new(spec, options);
        let kinds = [
            (FaultKind::Partition, plan.partitions),
            (FaultKind::HostCrash, plan.host_crashes),
            (FaultKind::DaemonCrash, plan.daemon_crashes),
            (FaultKind::StorageLoss, plan.storage_loss),
            (FaultKind::ResourceCrash, plan.resource_crashes),
            (FaultKind::NicFault, plan.nic_faults),
            (FaultKind::WitnessCut, plan.witness_cuts.filter(|_| witness)),
            (FaultKind::Admin, plan.admin),
            (FaultKind::DaemonPause, plan.daemon_pauses),
        ];
        for (kind, rate) in kinds {
            if let Some(rate) = rate {
                let gap = sim.gap(rate);
                sim.queue.push(gap, Ev::Inject(kind));
            }
        }
        sim.queue.push(heal_at_ns, Ev::HealAll);
        sim.queue.push(heal_at_ns + bound_ns, Ev::LivenessCheck);
        sim.swarm = Some(Swarm { plan, heal_at_ns, bound });
        sim
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
            outputs: Vec::with_capacity(64),
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
        self.hosts[usize::from(node.0)].daemon.as_ref().and_then(|d| d.core.admin_state())
    }

    pub fn status(&self, node: NodeId) -> Option<Status> {
        let host = &self.hosts[usize::from(node.0)];
        host.daemon.as_ref().map(|d| d.core.status(host.clock.local(self.now)))
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

    /// The swarm's fault plan, described.
    pub fn plan(&self) -> Option<String> {
        self.swarm.as_ref().map(|s| s.plan.to_string())
    }

    pub fn liveness(&self) -> Option<(u64, Duration)> {
        self.swarm.as_ref().map(|s| (s.heal_at_ns, s.bound))
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

    /// The paused daemon an event is for, if it is one of those a stopped loop does
    /// not take in (its own timers, its sockets, its disk reads, its lease client).
    fn paused_target(&self, ev: &Ev) -> Option<NodeId> {
        let (node, boot) = match ev {
            Ev::EngineTimer { node, boot, .. }
            | Ev::DiskPoll { node, boot }
            | Ev::LeaseReply { node, boot, .. }
            | Ev::LeaseTimer { node, boot, .. } => (*node, Some(*boot)),
            Ev::Heartbeat { to, .. } => (*to, None),
            Ev::FromWitness { node, .. } => (*node, None),
            _ => return None,
        };
        let daemon = self.hosts[usize::from(node.0)].daemon.as_ref()?;
        (daemon.paused.is_some() && boot.is_none_or(|b| b == daemon.boot)).then_some(node)
    }

    // Long because: one match over every simulator event (a paused daemon's first),
    // each arm that event's whole handling.
    fn dispatch(&mut self, ev: Ev) {
        if let Some(node) = self.paused_target(&ev) {
            let daemon = self.hosts[usize::from(node.0)].daemon.as_mut().expect("paused");
            let paused = daemon.paused.as_mut().expect("paused");
            match ev {
                // No timer fires in a stopped loop; the resume hands it a Timeout.
                Ev::EngineTimer { .. } => daemon.timer.at_ns = None,
                Ev::Heartbeat { .. } if paused.backlog.len() >= PAUSED_BACKLOG_MAX => {}
                ev => paused.backlog.push(Missed::Event(ev)),
            }
            return;
        }
        match ev {
            Ev::EngineTimer { node, boot, generation } => {
                self.trace.u64(u64::from(node.0));
                let Some(daemon) = self.daemon_mut(node, boot) else { return };
                if daemon.timer.generation != generation {
                    return;
                }
                daemon.timer.at_ns = None;
                self.feed(node, Some(Input::Timeout));
            }
            Ev::Heartbeat { link, to, message } => {
                self.trace.u64(u64::from(to.0));
                self.trace.u64(message.sequence);
                if self.hosts[usize::from(to.0)].daemon.is_some() {
                    let received = self.local_now(to);
                    self.feed(to, Some(Input::Heartbeat { link, message, received }));
                }
            }
            Ev::DiskPoll { node, boot } => self.disk_poll(node, boot),
            Ev::OpDone { node, boot, id, group, resource, op, plan } => {
                self.trace.u64(id.0);
                self.op_done(node, boot, id, group, resource, op, plan);
            }
            Ev::LeaseReply { node, boot, id, result } => {
                self.trace.u64(id.0);
                self.lease_reply(node, boot, id, result);
            }
            Ev::LeaseIo { node, boot, io, op, ok, stale, deadline_ns } => {
                self.trace.u64(io.0);
                self.lease_io(node, boot, io, op, ok, stale, deadline_ns);
            }
            Ev::LeaseTimer { node, boot, generation } => {
                let local = self.local(node);
                let Some(daemon) = self.daemon_mut(node, boot) else { return };
                if daemon.lease_timer.generation != generation {
                    return;
                }
                daemon.lease_timer.at_ns = None;
                daemon.client.timeout(local);
                self.drain_client(node);
            }
            Ev::ToWitness(request) => self.witness_request(request),
            Ev::FromWitness { node, reply } => {
                let local = self.local(node);
                let host = &mut self.hosts[usize::from(node.0)];
                if let Some(c) = host.daemon.as_mut().and_then(|d| d.client.witness()) {
                    c.reply(local, &reply);
                    self.drain_client(node);
                }
            }
            Ev::FenceGuard { node, generation } => {
                let host = &self.hosts[usize::from(node.0)];
                if host.guard_generation == generation {
                    let armer = host.daemon.as_ref().filter(|d| d.boot == host.guard_armed_by);
                    // A paused daemon renews nothing: its guard acts, and it restarts
                    // when it resumes (`resume`).
                    let armer_runs = armer.is_some_and(|d| d.paused.is_none());
                    if self.options.fence_guard == FenceGuardRule::OnlyWithoutDaemon {
                        if armer.is_none() {
                            self.fire_guard(node);
                        }
                        return;
                    }
                    let inherited = host.guard_kept_inherited;
                    // The deadline the running daemon knows (`fence_given`): past it, the
                    // real daemon finds at its next wake-up that its guard fired, and
                    // restarts.
                    let local = host.clock.local(self.now);
                    let known = host.daemon.as_ref().is_some_and(|d| {
                        d.paused.is_none() && d.fence_given.is_some_and(|at| at <= local)
                    });
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
                    if known {
                        self.kill_daemon(node);
                        self.start_daemon(node);
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
            Ev::ShutdownDue { node, boot } => {
                if self.daemon_mut(node, boot).is_some() {
                    self.feed(node, None); // a wake-up: `exit_if_shut_down` sees the deadline
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

    /// Hands one input (or none, right after start) to a node's engine and carries out
    /// everything it asks for until it waits.
    fn feed(&mut self, node: NodeId, input: Option<Input>) {
        let now = self.now;
        let mut outputs = std::mem::take(&mut self.outputs);
        let host = &mut self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_mut() else {
            self.outputs = outputs;
            return;
        };
        if let Some(paused) = daemon.paused.as_mut() {
            // A stopped loop takes nothing in: agent results, storage path news and
            // commands wait for the resume.
            paused.backlog.extend(input.map(Missed::Input));
            self.outputs = outputs;
            return;
        }
        let local = host.clock.local(now);
        if let Some(input) = input {
            daemon.core.handle(local, input);
        }
        let mut settled = false;
        for _ in 0..OUTPUTS_PER_INPUT_MAX {
            let out = daemon.core.poll_output();
            let wait = matches!(out, Output::Wait(_));
            outputs.push(out);
            if wait {
                settled = true;
                break;
            }
        }
        if !settled {
            let message = format!(
                "{} produced {OUTPUTS_PER_INPUT_MAX} outputs without waiting",
                self.node_name(node)
            );
            self.checkers.report(Guarantee::Contract, now, message);
        }
        for out in outputs.drain(..) {
            self.hash_output(node, &out);
            if self.apply(node, out) {
                break; // the node fenced itself: the rest is never carried out
            }
        }
        outputs.clear();
        self.outputs = outputs;
        self.check_standby_locks(node);
        self.exit_if_shut_down(node);
    }

    /// Carries out one engine output; true when the node fenced itself.
    fn apply(&mut self, node: NodeId, out: Output) -> bool {
        match out {
            Output::Heartbeat { link, to, message } => self.send_heartbeat(node, link, to, message),
            Output::Operation { id, group, resource, op, timeout } => {
                self.operation(node, id, group, resource, op, timeout)
            }
            Output::Lease { id, request } => self.lease_request(node, id, request),
            Output::ArmFence { deadline, keep_earlier } => {
                let host = &mut self.hosts[usize::from(node.0)];
                // With `keep_earlier` the guard keeps an earlier deadline it holds (a
                // predecessor's); the shell learns which one it keeps.
                let inherited = host.guard_inherited;
                let kept = inherited.filter(|d| keep_earlier && deadline.is_none_or(|n| *d < n));
                if !keep_earlier {
                    host.guard_inherited = None;
                }
                host.guard_kept_inherited = kept.is_some();
                let deadline = kept.or(deadline);
                host.guard = deadline;
                host.guard_generation += 1;
                host.guard_armed_by = host.daemon.as_ref().map_or(0, |d| d.boot);
                if let Some(daemon) = host.daemon.as_mut() {
                    daemon.fence_given = deadline;
                }
                if let Some(real) = deadline.and_then(|d| host.clock.real_at(d)) {
                    let generation = host.guard_generation;
                    self.queue.push(real.max(self.now), Ev::FenceGuard { node, generation });
                }
            }
            Output::SelfFence { reason } => {
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
            Output::Event(event) => {
                *self.codes.entry(event.code.code).or_default() += 1;
                if self.timeline.is_some() {
                    let name = self.node_name(node).to_owned();
                    let code = event.code.code;
                    let message = event.message;
                    self.note(|w| format!("{name:<w$}  {code}  {message}"));
                }
            }
            Output::LockStandby { group } => {
                if self.spec.group(group).locks_standby() {
                    self.hosts[usize::from(node.0)].locked[group.0 as usize] = true;
                }
            }
            Output::Wait(deadline) => self.set_engine_timer(node, deadline),
        }
        false
    }

    /// S5 on `node` after its engine's turn: see [`Checkers::standby_lock`].
    fn check_standby_locks(&mut self, node: NodeId) {
        let host = &self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_ref().filter(|_| host.powered) else { return };
        let mut groups =
            self.spec.group_ids().filter(|g| self.spec.group(*g).locks_standby()).peekable();
        if groups.peek().is_none() {
            return;
        }
        let status = daemon.core.status(host.clock.local(self.now));
        let ready =
            status.nodes.iter().any(|n| n.node == node && n.state != engine::NodeState::Booting);
        for group in groups {
            if !self.spec.group(group).nodes.contains(&node) {
                continue;
            }
            // Busy: an operation of the group in flight, or its engine does not know
            // every resource stopped here (a probe that timed out, a stop that failed).
            let unknown = status.groups.iter().any(|g| {
                g.group == group && g.resources.iter().any(|r| r.state != ResourceState::Stopped)
            });
            let busy = unknown || host.ops_in_flight.values().any(|g| *g == group);
            let locked = host.locked[group.0 as usize];
            self.checkers.standby_lock(self.now, node, group, ready, busy, locked);
        }
    }

    fn hash_output(&mut self, node: NodeId, out: &Output) {
        let t = &mut self.trace;
        t.u8(100);
        t.u64(u64::from(node.0));
        match out {
            Output::Heartbeat { link, to, message } => {
                t.u8(1);
                t.u64(u64::from(link.0) << 16 | u64::from(to.0));
                t.u64(message.incarnation);
                t.u64(message.sequence);
                t.u64(message.sent_at.0);
            }
            Output::Operation { id, group, resource, op, timeout } => {
                t.u8(2);
                t.u64(id.0);
                t.u64(u64::from(group.0) << 16 | u64::from(resource.0));
                t.u8(*op as u8);
                t.u64(timeout.as_nanos() as u64);
            }
            Output::Lease { id, request } => {
                t.u8(3);
                t.u64(id.0);
                let (kind, group) = match request {
                    LeaseRequest::Acquire(g) => (1, g.0),
                    LeaseRequest::Renew => (2, 0),
                    LeaseRequest::Release(g) => (3, g.0),
                };
                t.u8(kind);
                t.u64(u64::from(group));
            }
            Output::ArmFence { deadline, keep_earlier } => {
                t.u8(4);
                t.u64(deadline.map_or(u64::MAX, |d| d.0));
                t.u8(u8::from(*keep_earlier));
            }
            Output::SelfFence { reason } => {
                t.u8(5);
                t.bytes(reason.as_bytes());
            }
            Output::Event(e) => {
                t.u8(6);
                t.u64(e.at.0);
                t.bytes(e.code.code.as_bytes());
                t.bytes(e.message.as_bytes());
            }
            Output::Wait(at) => {
                t.u8(7);
                t.u64(at.0);
            }
            Output::LockStandby { group } => {
                t.u8(8);
                t.u64(u64::from(group.0));
            }
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
                let due = daemon.core.due_at(deadline).join("; ");
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

    /// The fence guard stops every resource of the host at once (if it is armed).
    fn fire_guard(&mut self, node: NodeId) {
        let host = &mut self.hosts[usize::from(node.0)];
        if host.guard.take().is_some() && host.powered {
            host.guard_generation += 1;
            let ended = std::mem::take(&mut host.ops_in_flight);
            host.ops_ended.extend(ended.into_keys());
            // Its stops of file systems lock their devices, as the agent's stop does.
            for (g, locked) in host.locked.iter_mut().enumerate() {
                *locked |= self.spec.groups[g].locks_standby();
            }
            // What it held is spent: a guard that fired exits, a new one holds nothing.
            host.guard_inherited = None;
            host.guard_kept_inherited = false;
            self.wipe(node, "fence guard");
        }
    }

    // ----- heartbeats ----------------------------------------------------------------

    fn send_heartbeat(&mut self, from: NodeId, link: LinkId, to: NodeId, message: Heartbeat) {
        let host = &mut self.hosts[usize::from(from.0)];
        if !host.persisted_admin.as_ref().is_some_and(|r| Arc::ptr_eq(r, &message.report)) {
            host.persisted_admin = Some(message.report.clone());
        }
        if usize::from(to.0) >= self.spec.nodes.len() || to == from {
            let message = format!("{} sent a heartbeat to node {}", self.node_name(from), to.0);
            self.checkers.report(Guarantee::Contract, self.now, message);
            return;
        }
        match self.spec.link(link).kind {
            LinkKind::Udp => {
                let path =
                    self.net.path(usize::from(link.0), usize::from(from.0), usize::from(to.0));
                let deliveries = path.send(&mut self.rng);
                if let Some(second) = deliveries.second {
                    let copy = message.clone();
                    self.queue.push(self.now + second, Ev::Heartbeat { link, to, message: copy });
                }
                if let Some(first) = deliveries.first {
                    self.queue.push(self.now + first, Ev::Heartbeat { link, to, message });
                }
            }
            LinkKind::Disk => {
                let (ok, latency) = self.disk.io(&mut self.rng, from);
                if ok {
                    self.disk.write_slot(from, to, message, self.now + latency);
                }
            }
        }
    }

    /// A node's disk transport reads the slots addressed to it (the event is the read's
    /// completion) and hands what is new to its engine.
    fn disk_poll(&mut self, node: NodeId, boot: u64) {
        let Some(link) = self.disk_link else { return };
        let interval = self.spec.timing.heartbeat_interval;
        let n = usize::from(node.0);
        if self.hosts[n].daemon.as_ref().filter(|d| d.boot == boot).is_none() {
            return;
        }
        let (ok, _) = self.disk.io(&mut self.rng, node);
        self.storage_result(node, ok);
        let mut news = Vec::new();
        if ok {
            let mut read = Vec::new();
            for from in self.spec.node_ids().filter(|from| *from != node) {
                let Some(message) = self.disk.read_slot(from, node, self.now) else { continue };
                read.push(message.clone());
            }
            let stamps = read.iter().map(|m| (usize::from(m.from.0), (m.incarnation, m.sequence)));
            let daemon = self.hosts[n].daemon.as_mut().expect("checked");
            let fresh = daemon.disk_slots.read(stamps);
            news = read.into_iter().filter(|m| fresh.contains(&usize::from(m.from.0))).collect();
        } else if let Some(daemon) = self.hosts[n].daemon.as_mut() {
            daemon.disk_slots.failed();
        }
        let host = &self.hosts[n];
        let next = host.clock.real_at(host.clock.local(self.now) + interval).expect("finite");
        self.queue.push(next.max(self.now + 1), Ev::DiskPoll { node, boot });
        for message in news {
            self.trace.u64(message.sequence);
            let received = self.local_now(node);
            self.feed(node, Some(Input::Heartbeat { link, message, received }));
        }
    }

    /// The disk lease client's I/O timeout ([`Options::io_timeout`]).
    fn io_timeout_ns(&self) -> u64 {
        match self.options.io_timeout {
            Some(timeout) => timeout.as_nanos() as u64,
            None => crate::faults::disk_io_timeout_ns(&self.spec),
        }
    }

    /// `node`'s clock now.
    fn local_now(&self, node: NodeId) -> Instant {
        self.hosts[usize::from(node.0)].clock.local(self.now)
    }

    // ----- agents --------------------------------------------------------------------

    fn operation(
        &mut self,
        node: NodeId,
        id: OpId,
        group: GroupId,
        resource: ResourceId,
        op: OpKind,
        timeout: Duration,
    ) {
        let valid = (group.0 as usize) < self.spec.groups.len()
            && usize::from(resource.0) < self.spec.group(group).resources.len();
        if !valid {
            let message = format!(
                "{} asked for {op:?} of unknown resource {group:?}/{resource:?}",
                self.node_name(node)
            );
            self.checkers.report(Guarantee::Contract, self.now, message);
            return;
        }
        match op {
            OpKind::Start => {
                let context = self.start_context(node, group);
                self.checkers.start_issued(self.now, node, group, resource, context);
            }
            OpKind::Stop => self.checkers.stop_issued(self.now, node, group, resource),
            OpKind::Monitor | OpKind::Probe => {}
        }
        let (mut plan, latency) = self.agents.plan(&mut self.rng, node, group, resource, op);
        let host = &self.hosts[usize::from(node.0)];
        let local = host.clock.local(self.now);
        let timeout_ns =
            host.clock.real_at(local + timeout).expect("finite").saturating_sub(self.now);
        let delay = match plan {
            Plan::Hang { .. } => timeout_ns,
            _ if latency > timeout_ns => {
                plan = Plan::Hang { took_effect: false };
                timeout_ns
            }
            _ => latency,
        };
        let boot = host.daemon.as_ref().expect("operations come from a live daemon").boot;
        let host = &mut self.hosts[usize::from(node.0)];
        host.ops_in_flight.insert((boot, id), group);
        let resource_spec = self.spec.group(group).resource(resource);
        if op == OpKind::Start && resource_spec.lock_standby {
            host.locked[group.0 as usize] = false; // the agent's start clears the flag first
        }
        self.queue.push(self.now + delay, Ev::OpDone { node, boot, id, group, resource, op, plan });
    }

    fn start_context(&mut self, node: NodeId, group: GroupId) -> StartContext {
        let holder = match self.spec.arbitration {
            ArbitrationKind::None => HolderTruth::NotArbitrated,
            ArbitrationKind::Disk => match self.disk.displaced(group) {
                None => HolderTruth::Holder(self.disk.owner(group)),
                Some(displaced) => {
                    HolderTruth::Overwritten { holder: self.disk.owner(group), displaced }
                }
            },
            ArbitrationKind::Witness => HolderTruth::Holder(
                self.witness.as_ref().and_then(|(server, _)| server.holder(group)),
            ),
        };
        let host = &self.hosts[usize::from(node.0)];
        let lease_timeout = self.spec.timing.lease_timeout;
        let lease_ends_ns = host
            .daemon
            .as_ref()
            .filter(|d| d.held.contains(&group))
            .and_then(|d| d.lease_since)
            .and_then(|since| host.clock.real_at(since + lease_timeout));
        let mut locked_by = None;
        for other in self.spec.node_ids().filter(|o| *o != node) {
            let h = &self.hosts[usize::from(other.0)];
            // A paused daemon, like a dead one, claims nothing: its peers hear nothing
            // from it, and its guard stops what it runs at its deadline.
            let Some(daemon) = h.daemon.as_ref().filter(|d| d.paused.is_none()) else {
                continue;
            };
            let status = daemon.core.status(h.clock.local(self.now));
            // The other node owns the group (active there), holds its lease and reports
            // it locked. (A node that lost its lease — say its storage path failed while
            // it saw no standby — may still call the group locked, yet must let it go.)
            let locked = status
                .groups
                .iter()
                .any(|g| g.group == group && g.locked && g.owner == Some(other))
                && status.leases.iter().any(|l| l.group == group && l.holder == other);
            if locked {
                locked_by = Some(other);
                break;
            }
        }
        StartContext { holder, lease_ends_ns, locked_by }
    }

    #[allow(clippy::too_many_arguments)]
    fn op_done(
        &mut self,
        node: NodeId,
        boot: u64,
        id: OpId,
        group: GroupId,
        resource: ResourceId,
        op: OpKind,
        plan: Plan,
    ) {
        let host = &mut self.hosts[usize::from(node.0)];
        host.ops_in_flight.remove(&(boot, id));
        if host.ops_ended.remove(&(boot, id)) {
            return; // ended by the fence guard: it has no effect
        }
        if self.daemon_mut(node, boot).is_none() {
            return; // the agent died with its daemon (or host)
        }
        let monitor_only = self.spec.group(group).resource(resource).kind.is_monitor_only();
        let (result, change) = self.agents.complete(node, group, resource, monitor_only, op, plan);
        let unmounted = matches!(result, OpResult::Ok | OpResult::NotRunning);
        if op == OpKind::Stop && unmounted && self.spec.group(group).resource(resource).lock_standby
        {
            // The agent's stop sets the flag once the file system is unmounted.
            self.hosts[usize::from(node.0)].locked[group.0 as usize] = true;
        }
        if let Some(change) = change {
            self.ground_truth(node, group, resource, change, "");
        }
        if result == OpResult::NotRunning && !monitor_only {
            self.checkers.seen_not_running(node, group, resource);
        }
        self.feed(node, Some(Input::Operation { id, result }));
    }

    fn ground_truth(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        change: Change,
        why: &str,
    ) {
        self.checkers.resource_changed(self.now, node, group, resource, change);
        if self.timeline.is_some() {
            let g = self.spec.group(group);
            let what = format!("{}/{}", g.name, g.resource(resource).name);
            let name = self.node_name(node).to_owned();
            let text = match change {
                Change::Started => format!("+{what} running"),
                Change::Stopped => format!("-{what} stopped"),
                Change::Crashed if why.is_empty() => format!("-{what} crashed"),
                Change::Crashed => format!("-{what} killed ({why})"),
            };
            self.note(|w| format!("{name:<w$}  {text}"));
        }
    }

    /// Every resource of the node dies at once.
    fn wipe(&mut self, node: NodeId, why: &str) {
        let killed = self.agents.wipe(node);
        for (group, resource) in killed {
            self.ground_truth(node, group, resource, Change::Crashed, why);
        }
        let engine_lost = self.hosts[usize::from(node.0)].daemon.is_none();
        self.checkers.host_wiped(node, engine_lost);
    }

    // ----- leases --------------------------------------------------------------------

    fn lease_request(&mut self, node: NodeId, id: OpId, request: LeaseRequest) {
        let local = self.local(node);
        let daemon = self.hosts[usize::from(node.0)].daemon.as_mut().expect("live daemon");
        daemon.requests.insert(id, request);
        daemon.client.request(local, id, request);
        self.drain_client(node);
    }

    /// Carries out what a node's lease client asks for. Replies go through the queue
    /// (at the current instant) so that an engine is never fed from inside its own
    /// output loop.
    fn drain_client(&mut self, node: NodeId) {
        let n = usize::from(node.0);
        loop {
            let Some(daemon) = self.hosts[n].daemon.as_mut() else { return };
            let boot = daemon.boot;
            let wait = match daemon.client.poll() {
                LeaseStep::DiskIo { io, op } => {
                    let (ok, latency) = self.disk.io(&mut self.rng, node);
                    let stale = latency >= self.io_timeout_ns();
                    let deadline_ns = self.now + self.io_timeout_ns();
                    let ev = Ev::LeaseIo { node, boot, io, op, ok, stale, deadline_ns };
                    self.queue.push(self.now + latency, ev);
                    continue;
                }
                LeaseStep::ToWitness(request) => {
                    let deliveries = self.net.to_witness[n].send(&mut self.rng);
                    for delay in [deliveries.first, deliveries.second].into_iter().flatten() {
                        self.queue.push(self.now + delay, Ev::ToWitness(request.clone()));
                    }
                    continue;
                }
                LeaseStep::Reply { id, result } => {
                    self.queue.push(self.now, Ev::LeaseReply { node, boot, id, result });
                    continue;
                }
                LeaseStep::Wait(at) => at,
            };
            let host = &mut self.hosts[n];
            let daemon = host.daemon.as_mut().expect("checked");
            match host.clock.real_at(wait) {
                None => daemon.lease_timer.at_ns = None,
                Some(real) => {
                    let real = real.max(self.now);
                    if daemon.lease_timer.at_ns != Some(real) {
                        daemon.lease_timer.at_ns = Some(real);
                        daemon.lease_timer.generation += 1;
                        let generation = daemon.lease_timer.generation;
                        self.queue.push(real, Ev::LeaseTimer { node, boot, generation });
                    }
                }
            }
            return;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn lease_io(
        &mut self,
        node: NodeId,
        boot: u64,
        io: IoId,
        op: IoOp,
        ok: bool,
        stale: bool,
        deadline_ns: u64,
    ) {
        // The device carries out a write whether or not its daemon still lives.
        let result = match (ok, op) {
            (false, _) => {
                let why =
                    if self.disk.path_ok[usize::from(node.0)] { "I/O error" } else { "path lost" };
                IoResult::Failed(why.into())
            }
            (true, IoOp::Read(block)) => IoResult::Read(self.disk.read(block)),
            (true, IoOp::Write(block, record)) => {
                if let Record::Group(g) = &record {
                    self.trace.u64(g.owner.map_or(u64::MAX, |o| u64::from(o.0)));
                }
                self.disk.write(block, record, stale);
                IoResult::Written
            }
        };
        self.io_done(node, boot, io, result, deadline_ns);
    }

    /// Hands a completed disk lease I/O to the node's lease client (kept for the resume
    /// while its daemon is paused). As the daemon's disk worker does (`diskio`), an
    /// answer its loop reads after the I/O's deadline counts as failed: a paused daemon
    /// learns of its I/O only when it resumes, and what a read found before the pause
    /// must not pass for what the disk holds after it (active-standby seed 273: a claim
    /// read from before a pause led to a claim over the peer's, S1).
    fn io_done(&mut self, node: NodeId, boot: u64, io: IoId, result: IoResult, deadline_ns: u64) {
        let local = self.local(node);
        let result = if self.now >= deadline_ns && !matches!(result, IoResult::Failed(_)) {
            IoResult::Failed("disk I/O did not finish within the I/O timeout".into())
        } else {
            result
        };
        match self.daemon_mut(node, boot) {
            Some(Daemon { paused: Some(paused), .. }) => {
                paused.backlog.push(Missed::IoDone { io, result, deadline_ns });
            }
            Some(Daemon { client, .. }) if client.disk().is_some() => {
                let ok = !matches!(result, IoResult::Failed(_));
                if let Some(c) = client.disk_mut() {
                    c.io_done(local, local, io, result);
                }
                self.drain_client(node);
                self.storage_result(node, ok);
            }
            _ => {}
        }
    }

    fn lease_reply(&mut self, node: NodeId, boot: u64, id: OpId, result: LeaseResult) {
        let local = self.local(node);
        let Some(daemon) = self.daemon_mut(node, boot) else { return };
        let mut granted = None;
        match (daemon.requests.remove(&id), &result) {
            (Some(LeaseRequest::Acquire(g)), LeaseResult::Granted { since }) => {
                daemon.held.insert(g);
                granted = Some(*since);
            }
            (Some(LeaseRequest::Renew), LeaseResult::Granted { since }) => granted = Some(*since),
            (Some(LeaseRequest::Renew), LeaseResult::Lost { groups }) => {
                for g in groups {
                    daemon.held.remove(g);
                }
            }
            (Some(LeaseRequest::Release(g)), LeaseResult::Released) => {
                daemon.held.remove(&g);
            }
            _ => {}
        }
        if let Some(since) = granted {
            // As the engine does: a `since` in the future is clamped to now.
            let since = since.min(local);
            daemon.lease_since = Some(daemon.lease_since.map_or(since, |s| s.max(since)));
        }
        self.feed(node, Some(Input::Lease { id, result }));
    }

    fn witness_request(&mut self, request: WitnessRequest) {
        let now = self.now;
        let Some((server, clock)) = self.witness.as_mut() else { return };
        let Some(reply) = server.handle(clock.local(now), &request) else { return };
        let node = reply.to;
        if usize::from(node.0) >= self.hosts.len() {
            return;
        }
        let deliveries = self.net.from_witness[usize::from(node.0)].send(&mut self.rng);
        for delay in [deliveries.first, deliveries.second].into_iter().flatten() {
            self.queue.push(now + delay, Ev::FromWitness { node, reply: reply.clone() });
        }
    }

    // ----- hosts ---------------------------------------------------------------------

    fn start_daemon(&mut self, node: NodeId) {
        let n = usize::from(node.0);
        let now = self.now;
        let io_timeout = Duration::from_nanos(self.io_timeout_ns());
        let host = &mut self.hosts[n];
        if !host.powered || host.daemon.is_some() {
            return;
        }
        host.incarnation += 1;
        host.boots += 1;
        host.guard_inherited = host.guard;
        let local = host.clock.local(now);
        // The daemon's own client (disk: watching ahead from the start).
        let client = LeaseClient::new(
            &self.spec,
            node,
            host.incarnation,
            local,
            io_timeout,
            self.options.witness_reply_timeout,
        );
        let mut core = C::start(self.spec.clone(), node, host.incarnation, local);
        if let Some(report) = &host.persisted_admin {
            core.restore_admin(&report.admin);
        }
        host.daemon = Some(Daemon {
            core,
            boot: host.boots,
            timer: Timer::default(),
            lease_timer: Timer::default(),
            client,
            held: BTreeSet::new(),
            lease_since: None,
            requests: BTreeMap::new(),
            disk_slots: SlotReader::new(self.spec.nodes.len()),
            storage: StoragePath::new(&self.spec.timing),
            busy: (0, 0),
            fence_given: None,
            paused: None,
            shutdown_by: None,
        });
        let boot = host.boots;
        let incarnation = host.incarnation;
        let name = self.node_name(node).to_owned();
        self.note(|w| format!("{name:<w$}  ** daemon starts (incarnation {incarnation})"));
        if self.disk_link.is_some() {
            self.queue.push(now, Ev::DiskPoll { node, boot });
        }
        self.feed(node, None);
    }

    /// A disk I/O of `node`'s daemon ended (`ok` or failed): its path's verdict, as the
    /// daemon reaches it from its jobs' results ([`StoragePath`]).
    fn storage_result(&mut self, node: NodeId, ok: bool) {
        let local = self.local(node);
        let Some(daemon) = self.hosts[usize::from(node.0)].daemon.as_mut() else { return };
        if daemon.paused.is_some() {
            return; // its loop reads the answers when it resumes (`Missed`)
        }
        if let Some(ok) = daemon.storage.result(local, ok) {
            self.feed(node, Some(Input::StoragePath { ok }));
        }
    }

    /// The host goes down: engine lost, resources dead, no heartbeats.
    fn power_off(&mut self, node: NodeId, why: &str, restart_after_ns: Option<u64>) {
        let host = &mut self.hosts[usize::from(node.0)];
        if !host.powered {
            return;
        }
        host.powered = false;
        host.daemon = None;
        host.guard = None;
        // A reboot clears every device's read-only flag.
        host.locked.iter_mut().for_each(|l| *l = false);
        host.guard_generation += 1;
        self.wipe(node, why);
        if let Some(delay) = restart_after_ns {
            self.queue.push(self.now + delay, Ev::PowerOn { node });
        }
    }

    // ----- scripted actions ----------------------------------------------------------

    /// The host crashes: its engine state is lost and its resources die at once. It stays
    /// down until [`Sim::restart`].
    pub fn crash(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("crash {name}"));
        self.power_off(node, "host crash", None);
        self
    }

    /// Powers a crashed host on, or starts a killed daemon again (new incarnation).
    pub fn restart(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("restart {name}"));
        let host = &mut self.hosts[usize::from(node.0)];
        if host.powered {
            self.start_daemon(node);
        } else {
            host.powered = true;
            self.start_daemon(node);
        }
        self
    }

    /// The daemon dies; the host and its resources keep running, and the last fence guard
    /// the engine armed stays armed.
    pub fn kill_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("kill daemon {name}"));
        self.daemon_gone(node);
        self
    }

    /// The daemon is gone, its guard left armed.
    fn daemon_gone(&mut self, node: NodeId) {
        let host = &mut self.hosts[usize::from(node.0)];
        host.daemon = None;
        // A guard whose deadline passed while the daemon lived fires as it dies.
        if host.guard.is_some_and(|deadline| deadline <= host.clock.local(self.now)) {
            self.fire_guard(node);
        }
    }

    /// The daemon gets a stop signal, as `tandem node` on SIGTERM: its engine gets
    /// `Input::Shutdown` and hands its groups over; the daemon exits once the engine is
    /// quiescent (its fence guard told to exit, disarmed) or at the shutdown deadline
    /// ([`ClusterSpec::shutdown_budget`] after the signal) with its guard left armed; a
    /// second signal makes it exit at once, the guard left armed. A paused daemon takes
    /// the signal when it resumes (its deadline counts from the signal). The host and
    /// whatever still runs on it stay; `restart` starts a daemon again.
    pub fn shutdown(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("shutdown {name}"));
        let local = self.local(node);
        let budget = self.spec.shutdown_budget();
        let host = &mut self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_mut() else { return self };
        if daemon.shutdown_by.is_some() {
            self.daemon_stopped(
                node,
                false,
                "second stop signal: exiting at once, the fence guard stays armed",
            );
            return self;
        }
        let by = local + budget;
        daemon.shutdown_by = Some(by);
        let boot = daemon.boot;
        if let Some(real) = host.clock.real_at(by) {
            self.queue.push(real.max(self.now), Ev::ShutdownDue { node, boot });
        }
        self.feed(node, Some(Input::Shutdown));
        self
    }

    /// A poison pill for `node`'s current daemon (the incarnation its disk slot shows)
    /// from `from` (`None`: an operator's `tandem disk fence`). The model reads it at
    /// once if the node's path to the shared disk works (the real daemon reads its
    /// mailbox with a disk job within a second), else it is lost, as a pill the node
    /// cannot read is: its peers cannot count on it.
    pub fn poison_pill(&mut self, node: NodeId, from: Option<NodeId>) -> &mut Self {
        let name = self.node_name(node).to_owned();
        let by = from.map_or("an operator".to_owned(), |f| self.node_name(f).to_owned());
        self.action(format!("poison pill for {name} from {by}"));
        let n = usize::from(node.0);
        let incarnation = self.hosts[n].incarnation;
        if self.hosts[n].daemon.is_some() && self.disk.path_ok[n] {
            self.feed(node, Some(Input::PoisonPill { incarnation, from }));
        }
        self
    }

    /// After each turn of a daemon given a stop signal, as its loop does: it exits when
    /// its engine is quiescent or past its deadline.
    fn exit_if_shut_down(&mut self, node: NodeId) {
        let local = self.local(node);
        let host = &self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_ref().filter(|d| d.paused.is_none()) else { return };
        let Some(by) = daemon.shutdown_by else { return };
        if daemon.core.is_quiescent() {
            self.daemon_stopped(
                node,
                true,
                "stopped cleanly: no group runs here any more, leases released",
            );
        } else if local >= by {
            self.daemon_stopped(
                node,
                false,
                "shutdown took too long: exiting with the fence guard armed; it stops what \
                 is left when the lease runs out",
            );
        }
    }

    /// The daemon exits after a stop signal (I2114): `clean`, its guard told to exit
    /// (disarmed); else with the guard left armed.
    fn daemon_stopped(&mut self, node: NodeId, clean: bool, why: &str) {
        if clean {
            let host = &mut self.hosts[usize::from(node.0)];
            host.daemon = None;
            host.guard = None;
            host.guard_generation += 1;
            host.guard_inherited = None;
            host.guard_kept_inherited = false;
        } else {
            self.daemon_gone(node);
        }
        let code = &engine::catalogue::DAEMON_STOPPED;
        *self.codes.entry(code.code).or_default() += 1;
        let name = self.node_name(node).to_owned();
        self.note(|w| format!("{name:<w$}  {}  {why}", code.code));
    }

    /// The daemon's loop stops (SIGSTOP, a call that hangs): its engine gets no input and
    /// none of its timers fire; what reaches it waits for [`Sim::resume_daemon`]. The
    /// host, its resources and its fence guard go on: the guard acts at its deadline.
    pub fn pause_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("pause daemon {name}"));
        let now = self.now;
        if let Some(daemon) = self.hosts[usize::from(node.0)].daemon.as_mut() {
            if daemon.paused.is_none() {
                daemon.paused = Some(Paused { since_ns: now, backlog: Vec::new() });
            }
        }
        self
    }

    /// [`Sim::pause_daemon`] for `lasting`, then [`Sim::resume_daemon`] (unless the
    /// daemon was replaced meanwhile).
    pub fn pause_daemon_for(&mut self, node: NodeId, lasting: Duration) -> &mut Self {
        self.pause_daemon(node);
        let lasting = u64::try_from(lasting.as_nanos()).unwrap_or(u64::MAX);
        if let Some(boot) = self.hosts[usize::from(node.0)].daemon.as_ref().map(|d| d.boot) {
            self.queue.push(self.now.saturating_add(lasting), Ev::DaemonResume { node, boot });
        }
        self
    }

    /// A paused daemon's loop runs again, its clock having jumped. As the real daemon
    /// does at every wake-up, it first checks the last deadline it gave its fence guard:
    /// if that has passed, the guard has stopped (or now stops) every resource and the
    /// daemon restarts as a new incarnation (E3112), which probes and rejoins as
    /// standby. Otherwise its engine is handed what it missed, in arrival order, then a
    /// Timeout.
    pub fn resume_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("resume daemon {name}"));
        let n = usize::from(node.0);
        let rule = self.options.fence_guard;
        let local = self.local(node);
        let host = &mut self.hosts[n];
        let armed_by = host.guard_armed_by;
        let Some(daemon) = host.daemon.as_mut() else { return self };
        let Some(paused) = daemon.paused.take() else { return self };
        let boot = daemon.boot;
        let deadline = daemon.fence_given.filter(|d| *d <= local);
        if let (FenceGuardRule::AtDeadline, Some(deadline)) = (rule, deadline) {
            // It waits for its guard (armed by this daemon, so its deadline is the one
            // that passed) and starts again in place.
            if armed_by == boot {
                self.fire_guard(node);
            }
            let stalled = Duration::from_nanos(self.now - paused.since_ns).as_millis();
            let late = local.saturating_since(deadline).as_millis();
            let code = &engine::catalogue::DAEMON_STALLED;
            *self.codes.entry(code.code).or_default() += 1;
            self.note(|w| {
                format!(
                    "{name:<w$}  {}  this daemon's loop did not run for {stalled}ms; the fence \
                     guard fired ({late}ms ago): restarting as standby",
                    code.code
                )
            });
            self.hosts[n].daemon = None;
            self.start_daemon(node);
            return self;
        }
        let daemon = self.hosts[n].daemon.as_mut().expect("checked");
        daemon.timer.at_ns = None;
        daemon.timer.generation += 1;
        for missed in paused.backlog {
            if self.daemon_mut(node, boot).is_none() {
                return self; // it fenced itself: nothing else reaches this engine
            }
            match missed {
                Missed::Event(ev) => self.dispatch(ev),
                Missed::Input(input) => self.feed(node, Some(input)),
                Missed::IoDone { io, result, deadline_ns } => {
                    self.io_done(node, boot, io, result, deadline_ns)
                }
            }
        }
        if self.daemon_mut(node, boot).is_some() {
            self.feed(node, Some(Input::Timeout));
        }
        self
    }

    /// Whether the node's daemon is paused.
    pub fn is_paused(&self, node: NodeId) -> bool {
        self.hosts[usize::from(node.0)].daemon.as_ref().is_some_and(|d| d.paused.is_some())
    }

    fn set_udp_cut(&mut self, link: LinkId, from: NodeId, to: NodeId, cut: bool) {
        self.net.set_cut(usize::from(link.0), usize::from(from.0), usize::from(to.0), cut);
    }

    fn set_link_cut(&mut self, link: LinkId, from: NodeId, to: NodeId, cut: bool) {
        match self.spec.link(link).kind {
            LinkKind::Udp => self.set_udp_cut(link, from, to, cut),
            LinkKind::Disk => self.disk.set_hidden(from, to, cut),
        }
    }

    /// Cuts a link between two nodes in both directions (the disk link: their heartbeat
    /// slots; the lease area stays reachable).
    pub fn cut(&mut self, link: LinkId, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!(
            "cut {} {}-{}",
            self.spec.link(link).name,
            self.node_name(a),
            self.node_name(b)
        );
        self.action(text);
        self.set_link_cut(link, a, b, true);
        self.set_link_cut(link, b, a, true);
        self
    }

    /// Cuts one direction of a link: `to` stops hearing `from`.
    pub fn cut_one_way(&mut self, link: LinkId, from: NodeId, to: NodeId) -> &mut Self {
        let text = format!(
            "cut {} {}->{}",
            self.spec.link(link).name,
            self.node_name(from),
            self.node_name(to)
        );
        self.action(text);
        self.set_link_cut(link, from, to, true);
        self
    }

    pub fn heal(&mut self, link: LinkId, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!(
            "heal {} {}-{}",
            self.spec.link(link).name,
            self.node_name(a),
            self.node_name(b)
        );
        self.action(text);
        self.set_link_cut(link, a, b, false);
        self.set_link_cut(link, b, a, false);
        self
    }

    /// Cuts every link between two nodes, both ways.
    pub fn cut_all(&mut self, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!("cut every link {}-{}", self.node_name(a), self.node_name(b));
        self.action(text);
        for link in self.spec.link_ids().collect::<Vec<_>>() {
            self.set_link_cut(link, a, b, true);
            self.set_link_cut(link, b, a, true);
        }
        self
    }

    pub fn heal_all_links(&mut self, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!("heal every link {}-{}", self.node_name(a), self.node_name(b));
        self.action(text);
        for link in self.spec.link_ids().collect::<Vec<_>>() {
            self.set_link_cut(link, a, b, false);
            self.set_link_cut(link, b, a, false);
        }
        self
    }

    fn set_storage(&mut self, node: NodeId, ok: bool) {
        let n = usize::from(node.0);
        if self.disk.path_ok[n] == ok {
            return;
        }
        // The daemon learns it from its own I/O (`storage_result`).
        self.disk.path_ok[n] = ok;
    }

    /// The node's path to the shared disk fails (disk heartbeats, leases, file systems).
    pub fn lose_storage(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("lose storage {name}"));
        self.set_storage(node, false);
        self
    }

    pub fn restore_storage(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("restore storage {name}"));
        self.set_storage(node, true);
        self
    }

    fn resource_name(&self, group: GroupId, resource: ResourceId) -> String {
        let g = self.spec.group(group);
        format!("{}/{}", g.name, g.resource(resource).name)
    }

    /// Injects `count` failures (u32::MAX: until healed) into the resource's next
    /// operations of one kind.
    pub fn force(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        what: &str,
        set: impl FnOnce(&mut Forced),
    ) -> &mut Self {
        let text =
            format!("{what} {} {}", self.node_name(node), self.resource_name(group, resource));
        self.action(text);
        self.agents.force(node, group, resource, set);
        self
    }

    /// The resource's next monitor answers "failed".
    pub fn fail_monitor(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
    ) -> &mut Self {
        self.force(node, group, resource, "fail monitor", |f| f.monitor_fail += 1)
    }

    /// The resource's next `count` starts fail.
    pub fn fail_start(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        count: u32,
    ) -> &mut Self {
        self.force(node, group, resource, "fail start", |f| f.start_fail = count)
    }

    /// The resource's next `count` stops fail.
    pub fn fail_stop(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        count: u32,
    ) -> &mut Self {
        self.force(node, group, resource, "fail stop", |f| f.stop_fail = count)
    }

    /// The resource's next `count` operations hang until their timeout.
    pub fn hang(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        count: u32,
    ) -> &mut Self {
        self.force(node, group, resource, "hang", |f| f.hang = count)
    }

    /// The resource dies by itself (a later monitor finds it not running).
    pub fn crash_resource(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
    ) -> &mut Self {
        let text = format!(
            "crash resource {} {}",
            self.node_name(node),
            self.resource_name(group, resource)
        );
        self.action(text);
        if self.agents.crash(node, group, resource) {
            self.ground_truth(node, group, resource, Change::Crashed, "");
        }
        self
    }

    /// The interface a `nic` resource watches goes down on one node.
    pub fn nic_down(&mut self, node: NodeId, group: GroupId, resource: ResourceId) -> &mut Self {
        let text =
            format!("nic down {} {}", self.node_name(node), self.resource_name(group, resource));
        self.action(text);
        self.agents.set_nic(node, group, resource, false);
        self
    }

    pub fn nic_up(&mut self, node: NodeId, group: GroupId, resource: ResourceId) -> &mut Self {
        let text =
            format!("nic up {} {}", self.node_name(node), self.resource_name(group, resource));
        self.action(text);
        self.agents.set_nic(node, group, resource, true);
        self
    }

    /// Gives an administrative command to a node (dropped if its daemon is down).
    pub fn admin(&mut self, node: NodeId, command: AdminCommand) -> &mut Self {
        let text = format!("admin {}: {}", self.node_name(node), self.describe_admin(&command));
        self.action(text);
        if self.hosts[usize::from(node.0)].daemon.is_some() {
            self.feed(node, Some(Input::Admin(command)));
        }
        self
    }

    fn describe_admin(&self, command: &AdminCommand) -> String {
        match command {
            AdminCommand::Switchover { group, to } => {
                let to = to.map_or(String::new(), |n| format!(" to {}", self.node_name(n)));
                format!("switchover {}{to}", self.spec.group(*group).name)
            }
            AdminCommand::Drain(n) => format!("drain {}", self.node_name(*n)),
            AdminCommand::Undrain(n) => format!("undrain {}", self.node_name(*n)),
            AdminCommand::Maintenance(on) => {
                format!("maintenance {}", if *on { "on" } else { "off" })
            }
            AdminCommand::Clear { group, resource } => match resource {
                Some(r) => format!("clear {}", self.resource_name(*group, *r)),
                None => format!("clear {}", self.spec.group(*group).name),
            },
        }
    }

    // ----- swarm ---------------------------------------------------------------------

    fn gap(&mut self, rate: Rate) -> u64 {
        self.rng.gen_range(1..=2 * rate.mean_gap_ns)
    }

    fn duration(&mut self, rate: Rate) -> u64 {
        between(&mut self.rng, rate.duration_ns.0, rate.duration_ns.1)
    }

    fn random_node(&mut self) -> NodeId {
        NodeId(self.rng.gen_range(0..self.spec.nodes.len()) as u16)
    }

    fn random_pair(&mut self) -> (NodeId, NodeId) {
        let a = self.random_node();
        let mut b = self.random_node();
        while b == a {
            b = self.random_node();
        }
        (a, b)
    }

    // Long because: one match over every fault kind of the swarm, each arm that
    // fault's whole injection and its healing scheduled.
    fn inject(&mut self, kind: FaultKind) {
        if self.phase != Phase::Safety {
            return;
        }
        let Some(swarm) = self.swarm.as_ref() else { return };
        let plan = &swarm.plan;
        let rate = match kind {
            FaultKind::Partition => plan.partitions,
            FaultKind::HostCrash => plan.host_crashes,
            FaultKind::DaemonCrash => plan.daemon_crashes,
            FaultKind::StorageLoss => plan.storage_loss,
            FaultKind::ResourceCrash => plan.resource_crashes,
            FaultKind::NicFault => plan.nic_faults,
            FaultKind::WitnessCut => plan.witness_cuts,
            FaultKind::Admin => plan.admin,
            FaultKind::DaemonPause => plan.daemon_pauses,
        }
        .expect("only enabled kinds are scheduled");
        let gap = self.gap(rate);
        self.queue.push(self.now + gap, Ev::Inject(kind));
        let lasting = self.duration(rate);
        match kind {
            FaultKind::Partition => self.inject_partition(lasting),
            FaultKind::HostCrash => {
                let node = self.random_node();
                if self.hosts[usize::from(node.0)].powered {
                    self.crash(node);
                    self.queue.push(self.now + lasting, Ev::PowerOn { node });
                }
            }
            FaultKind::DaemonCrash => {
                let node = self.random_node();
                if self.hosts[usize::from(node.0)].daemon.is_some() {
                    self.kill_daemon(node);
                    self.queue.push(self.now + lasting, Ev::DaemonStart { node });
                }
            }
            FaultKind::StorageLoss => {
                let node = self.random_node();
                if self.disk.path_ok[usize::from(node.0)] {
                    self.lose_storage(node);
                    self.queue.push(self.now + lasting, Ev::Heal(Healing::Storage(node)));
                }
            }
            FaultKind::ResourceCrash => {
                let running = self.agents.running_anywhere(self.spec.nodes.len());
                if let Some((node, group, resource)) = running.choose(&mut self.rng).copied() {
                    self.crash_resource(node, group, resource);
                }
            }
            FaultKind::NicFault => {
                let nics: Vec<(GroupId, ResourceId)> = self
                    .spec
                    .group_ids()
                    .flat_map(|g| {
                        let group = self.spec.group(g);
                        (0..group.resources.len())
                            .map(|r| ResourceId(r as u16))
                            .filter(|r| group.resource(*r).kind == ResourceKind::Nic)
                            .map(move |r| (g, r))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if let Some((group, resource)) = nics.choose(&mut self.rng).copied() {
                    let node = self.random_node();
                    if self.agents.nic_up(node, group, resource) {
                        self.nic_down(node, group, resource);
                        self.queue.push(
                            self.now + lasting,
                            Ev::Heal(Healing::Nic(node, group, resource)),
                        );
                    }
                }
            }
            FaultKind::WitnessCut => {
                let node = self.random_node();
                let n = usize::from(node.0);
                let (up, down) = match self.rng.gen_range(0..3) {
                    0 => (true, false),
                    1 => (false, true),
                    _ => (true, true),
                };
                self.net.to_witness[n].cut |= up;
                self.net.from_witness[n].cut |= down;
                let name = self.node_name(node).to_owned();
                self.action(format!("cut witness {name} (to: {up}, from: {down})"));
                self.queue.push(self.now + lasting, Ev::Heal(Healing::Witness { node, up, down }));
            }
            FaultKind::Admin => {
                let command = self.random_admin();
                let live = self.live_nodes();
                if let Some(node) = live.choose(&mut self.rng).copied() {
                    self.admin(node, command);
                }
            }
            FaultKind::DaemonPause => {
                let node = self.random_node();
                let runs = self.hosts[usize::from(node.0)].daemon.as_ref();
                if runs.is_some_and(|d| d.paused.is_none()) {
                    let lasting = self.pause_length(rate);
                    self.pause_daemon_for(node, Duration::from_nanos(lasting));
                }
            }
        }
    }

    /// How long one pause lasts: a quarter of them end before the lease's stop point
    /// (nothing may move), a quarter around the fence guard's deadline (the stop point
    /// plus the grace, give or take two graces), half of them later, up to the plan's
    /// longest (several lease timeouts).
    fn pause_length(&mut self, rate: Rate) -> u64 {
        let timing = &self.spec.timing;
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let stop_point = nanos(timing.lease_timeout - timing.lease_stop_budget());
        let grace = nanos(timing.fence_guard_grace());
        let (shortest, longest) = rate.duration_ns;
        let (low, high) = match self.rng.gen_range(0..4) {
            0 => (shortest, stop_point),
            1 => (stop_point.saturating_sub(grace), stop_point + 3 * grace),
            _ => (stop_point, longest),
        };
        between(&mut self.rng, low.min(high), high.max(low))
    }

    fn inject_partition(&mut self, lasting: u64) {
        let (a, b) = self.random_pair();
        let udp: Vec<LinkId> =
            self.spec.link_ids().filter(|l| self.spec.link(*l).kind == LinkKind::Udp).collect();
        let mut cut_udp = Vec::new();
        let mut cut_disk = Vec::new();
        match self.rng.gen_range(0..5) {
            // One UDP link, both ways.
            0 if !udp.is_empty() => {
                let link = *udp.choose(&mut self.rng).expect("non-empty");
                cut_udp.extend([(link, a, b), (link, b, a)]);
            }
            // One UDP link, one way.
            1 if !udp.is_empty() => {
                let link = *udp.choose(&mut self.rng).expect("non-empty");
                cut_udp.push((link, a, b));
            }
            // The disk heartbeat between the pair.
            2 => cut_disk.extend([(a, b), (b, a)]),
            // Every link between the pair.
            3 => {
                for link in &udp {
                    cut_udp.extend([(*link, a, b), (*link, b, a)]);
                }
                cut_disk.extend([(a, b), (b, a)]);
            }
            // Node a isolated from every peer on every link.
            _ => {
                for peer in self.spec.node_ids().filter(|p| *p != a) {
                    for link in &udp {
                        cut_udp.extend([(*link, a, peer), (*link, peer, a)]);
                    }
                    cut_disk.extend([(a, peer), (peer, a)]);
                }
            }
        }
        if self.disk_link.is_none() {
            cut_disk.clear();
        }
        if cut_udp.is_empty() && cut_disk.is_empty() {
            return;
        }
        if self.timeline.is_some() {
            let mut parts: Vec<String> = cut_udp
                .iter()
                .map(|(l, f, t)| {
                    format!(
                        "{} {}->{}",
                        self.spec.link(*l).name,
                        self.node_name(*f),
                        self.node_name(*t)
                    )
                })
                .collect();
            parts.extend(
                cut_disk
                    .iter()
                    .map(|(f, t)| format!("disk {}->{}", self.node_name(*f), self.node_name(*t))),
            );
            self.action(format!("partition {}", parts.join(", ")));
        }
        for (link, from, to) in &cut_udp {
            self.set_udp_cut(*link, *from, *to, true);
        }
        for (from, to) in &cut_disk {
            self.disk.set_hidden(*from, *to, true);
        }
        let healing = Healing::Links { udp: cut_udp, disk: cut_disk };
        self.queue.push(self.now + lasting, Ev::Heal(healing));
    }

    fn random_admin(&mut self) -> AdminCommand {
        let groups = self.spec.groups.len();
        let group = GroupId(self.rng.gen_range(0..groups.max(1)) as u32);
        match self.rng.gen_range(0..10) {
            0..=2 if groups > 0 => {
                let to = if self.rng.gen_bool(0.5) { Some(self.random_node()) } else { None };
                AdminCommand::Switchover { group, to }
            }
            3 => AdminCommand::Drain(self.random_node()),
            4 | 5 => AdminCommand::Undrain(self.random_node()),
            6 => AdminCommand::Maintenance(self.rng.gen_bool(0.4)),
            _ if groups > 0 => {
                let count = self.spec.group(group).resources.len();
                let resource = (count > 0 && self.rng.gen_bool(0.3))
                    .then(|| ResourceId(self.rng.gen_range(0..count) as u16));
                AdminCommand::Clear { group, resource }
            }
            _ => AdminCommand::Maintenance(false),
        }
    }

    fn heal_one(&mut self, healing: Healing) {
        match healing {
            Healing::Links { udp, disk } => {
                self.action("heal partition".to_owned());
                for (link, from, to) in udp {
                    self.set_udp_cut(link, from, to, false);
                }
                for (from, to) in disk {
                    self.disk.set_hidden(from, to, false);
                }
            }
            Healing::Storage(node) => {
                self.restore_storage(node);
            }
            Healing::Nic(node, group, resource) => {
                self.nic_up(node, group, resource);
            }
            Healing::Witness { node, up, down } => {
                let n = usize::from(node.0);
                if up {
                    self.net.to_witness[n].cut = false;
                }
                if down {
                    self.net.from_witness[n].cut = false;
                }
                let name = self.node_name(node).to_owned();
                self.action(format!("heal witness {name}"));
            }
        }
    }

    /// The start of the liveness phase: every fault healed, every host and daemon up,
    /// then maintenance off, every node undrained and every group cleared.
    fn heal_all(&mut self) {
        self.phase = Phase::Liveness;
        self.action("heal everything (liveness phase)".to_owned());
        self.net.heal_all();
        self.agents.heal();
        self.disk.params.error_ppm = 0;
        self.disk.params.stall_ppm = 0;
        for node in self.spec.node_ids().collect::<Vec<_>>() {
            self.set_storage(node, true);
        }
        self.disk.heal();
        for node in self.spec.node_ids().collect::<Vec<_>>() {
            if self.is_paused(node) {
                self.resume_daemon(node);
            }
            let host = &mut self.hosts[usize::from(node.0)];
            if !host.powered {
                host.powered = true;
            }
            self.start_daemon(node);
        }
        let mut commands = vec![AdminCommand::Maintenance(false)];
        commands.extend(self.spec.node_ids().map(AdminCommand::Undrain));
        commands.extend(
            self.spec.group_ids().map(|group| AdminCommand::Clear { group, resource: None }),
        );
        for (i, command) in commands.into_iter().enumerate() {
            self.queue.push(self.now + 100 * MS + i as u64, Ev::Admin(command));
        }
    }

    fn liveness_check(&mut self) {
        let mut locked = Vec::new();
        for node in self.spec.node_ids() {
            if let Some(status) = self.status(node) {
                for g in status.groups.iter().filter(|g| g.locked) {
                    locked.push((node, g.group));
                }
            }
        }
        self.checkers.check_liveness(self.now, &locked);
        self.phase = Phase::Done;
        self.action("liveness check".to_owned());
    }
}

#[cfg(test)]
mod tests {
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

    /// Arms `node`'s guard as if its current daemon had asked for `deadline_s`.
    fn arm(sim: &mut Sim<Greedy>, node: NodeId, deadline_s: u64) {
        let now = sim.now;
        let host = &mut sim.hosts[usize::from(node.0)];
        host.guard = Some(Instant(deadline_s * SEC));
        host.guard_generation += 1;
        host.guard_armed_by = host.daemon.as_ref().map_or(0, |d| d.boot);
        if let Some(daemon) = host.daemon.as_mut() {
            daemon.fence_given = host.guard;
        }
        let generation = host.guard_generation;
        sim.queue.push((deadline_s * SEC).max(now), Ev::FenceGuard { node, generation });
    }

    /// Two greedy nodes at 5 s, and the one that runs the groups.
    fn greedy_owner_at_5s() -> (Sim<Greedy>, NodeId) {
        let mut sim: Sim<Greedy> = Sim::scripted(two_node(), Options::scripted());
        sim.run_until(secs(5));
        let owner = sim
            .spec
            .node_ids()
            .find(|n| !sim.agents.running_on(*n).is_empty())
            .expect("a node runs");
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
        // Heartbeats, disk polls, lease timers wait; nothing it runs stops.
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
}
