//! The simulated world around the node cores: hosts (power, the fence guard, the
//! read-only flags of standby devices, the admin state a daemon persists, the disk
//! worker's jobs) and their daemons (the node core, its timer, what it holds, a pause's
//! backlog), and what the daemons do in it: heartbeats over UDP, agents' operations and
//! their results, the ground truth fed to the checkers (S5's standby locks included),
//! the guard firing, a daemon's start and its exit. It must not decide anything a node
//! core decides; the disk jobs and the witness path are `worker`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arbiter::witness::WitnessReply;
use engine::{
    AdminCommand, ArbitrationKind, GroupId, Heartbeat, Instant, LinkId, LinkKind, NodeId, OpId,
    OpKind, OpResult, ResourceId, ResourceState,
};

use super::worker::SimJob;
use super::{Ev, Sim, SEC};
use crate::agents::Plan;
use crate::check::{Change, Guarantee, HolderTruth, StartContext};
use crate::clock::Clock;
use crate::core::Core;
use arbiter::disk::{Block, Record};
use nodecore::incarnation::next_incarnation;
use nodecore::{DiskAnswer, NodeCore};

/// The swarm's wall clocks start near this many nanoseconds since the Unix epoch
/// (2026): incarnations then look like the daemon's (wall-clock microseconds).
const WALL_EPOCH_NS: i64 = 1_780_000_000_000_000_000;

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Timer {
    pub(super) at_ns: Option<u64>,
    pub(super) generation: u64,
    /// The last local deadline converted and its real time (engines repeat deadlines).
    pub(super) converted: Option<(Instant, u64)>,
}

pub(super) struct Daemon<C> {
    /// The node core (the engine and everything between it and the sockets), the very
    /// one the daemon runs; a disk slot is read as the heartbeat it holds.
    pub(super) core: NodeCore<C, Heartbeat>,
    pub(super) boot: u64,
    pub(super) timer: Timer,
    /// The groups this node was granted and not told it lost or released, and the
    /// latest `since` of any grant (the engine keeps one lease for all its groups,
    /// extended by every grant; the clients make every `since` valid for all held
    /// groups): the S3 checker's view of its leases.
    pub(super) held: BTreeSet<GroupId>,
    pub(super) lease_since: Option<Instant>,
    /// The disk worker's answers that wait for the loop's next wake-up (quiet mode).
    pub(super) quiet: Vec<DiskAnswer<Heartbeat>>,
    /// The worker's answers wake the loop ([`nodecore::Action::DiskPrompt`]).
    pub(super) prompt: bool,
    /// (instant, count) of wake-ups asked for at one instant.
    pub(super) busy: (u64, u32),
    /// When its loop last settled (real ns): the start of a stall, when one is found.
    pub(super) loop_ran_ns: u64,
    /// Its loop is stopped (SIGSTOP, a hung call): what reached it meanwhile.
    pub(super) paused: Option<Paused>,
}

/// The most arrivals a paused daemon keeps for its resume: beyond it, heartbeats are
/// dropped, as a full socket buffer drops datagrams (agent results, disk answers and
/// the rest, which the real daemon receives over channels, are always kept).
pub const PAUSED_BACKLOG_MAX: usize = 1 << 16;

/// A paused daemon: what reached it, in arrival order, handed to its core when it
/// resumes (the kernel queues UDP datagrams; agents and the disk I/O finish in the
/// world and their results wait in the daemon's channels).
#[derive(Default)]
pub(super) struct Paused {
    pub(super) backlog: Vec<Arrival>,
}

/// What reaches a daemon's loop: handed to its core before the wake-up.
pub(super) enum Arrival {
    /// A timer: nothing but the wake-up.
    Nothing,
    Heartbeat {
        link: LinkId,
        message: Heartbeat,
    },
    Operation {
        id: OpId,
        result: OpResult,
    },
    Disk(DiskAnswer<Heartbeat>),
    Witness(WitnessReply),
    Admin(AdminCommand),
    /// A stop signal (SIGTERM).
    Stop,
}

/// A disk slot read is the heartbeat it holds (the daemon authenticates its bytes).
fn decode_slot(_: NodeId, slot: &Heartbeat) -> Option<Heartbeat> {
    Some(slot.clone())
}

impl<C: Core> Daemon<C> {
    /// Hands `arrival` to the core at local time `local`.
    pub(super) fn arrive(&mut self, local: Instant, arrival: Arrival) {
        let core = &mut self.core;
        match arrival {
            Arrival::Nothing => {}
            Arrival::Heartbeat { link, message } => core.heartbeat(link, message, local),
            Arrival::Operation { id, result } => core.operation_done(id, result),
            Arrival::Disk(answer) => core.disk_answer(local, answer, &mut decode_slot),
            Arrival::Witness(reply) => core.witness_reply(local, &reply),
            Arrival::Admin(command) => core.admin(command),
            Arrival::Stop => core.stop_signal(local),
        }
    }

    /// The loop wakes at `local`: the answers that waited go to the core with it.
    pub(super) fn wake(&mut self, local: Instant) {
        let quiet = std::mem::take(&mut self.quiet);
        self.core.wake(local, quiet, Vec::new(), &mut decode_slot);
    }

    /// Prompt mode from now on: the quiet answers already given are read now.
    pub(super) fn prompt(&mut self, local: Instant, on: bool) {
        self.prompt = on;
        if on {
            for answer in std::mem::take(&mut self.quiet) {
                self.core.disk_answer(local, answer, &mut decode_slot);
            }
        }
    }
}

pub(super) struct Host<C> {
    pub(super) clock: Clock,
    pub(super) powered: bool,
    pub(super) daemon: Option<Daemon<C>>,
    /// The current (or last) daemon's incarnation
    /// ([`nodecore::incarnation::next_incarnation`]).
    pub(super) incarnation: u64,
    /// The incarnation kept in its state directory (0: none; lost or restored by the
    /// swarm's state-dir faults).
    pub(super) kept_incarnation: u64,
    /// Its wall clock, from the simulator's real time (swarm runs; scripted runs have
    /// none, so that their incarnations read 1, 2, ...): stepped by the swarm.
    pub(super) wall_offset_ns: i64,
    /// Its state directory as last backed up (the incarnation kept, the admin state):
    /// what a restore brings back.
    pub(super) backup: Option<(u64, Option<Arc<engine::NodeReport>>)>,
    pub(super) boots: u64,
    pub(super) guard: Option<Instant>,
    pub(super) guard_generation: u64,
    /// The daemon (boot number) that armed the guard.
    pub(super) guard_armed_by: u64,
    /// Agent operations in flight (daemon boot, id): the guard ends them when it fires
    /// (the real one SIGKILLs its daemon's operations before it stops anything), and
    /// those it ended land nowhere.
    pub(super) ops_in_flight: BTreeMap<(u64, OpId), GroupId>,
    /// Per group: its `lock_standby` devices are read-only on this host (the block
    /// device's flag: set by the engine's `LockStandby`, by a file system's stop and by
    /// the fence guard's stops; cleared by a file system's start and by a reboot).
    pub(super) locked: Vec<bool>,
    /// The guard's deadline when the current daemon started (a predecessor's), which
    /// an `ArmFence { keep_earlier }` keeps when it is earlier.
    pub(super) guard_inherited: Option<Instant>,
    /// The guard's deadline is that inherited one, kept by a `keep_earlier` arm.
    pub(super) guard_kept_inherited: bool,
    pub(super) ops_ended: BTreeSet<(u64, OpId)>,
    /// The administrative state the daemon keeps in its state directory (the real
    /// daemon journals it): it survives daemon restarts and host crashes.
    pub(super) persisted_admin: Option<Arc<engine::NodeReport>>,
    /// The disk worker: free from this real instant (jobs run one at a time), the jobs
    /// in flight by key, the last key given.
    pub(super) worker_free_ns: u64,
    /// Its daemon, given a stop signal by the swarm, starts again this long after it
    /// exits (systemd's `Restart=`).
    pub(super) restart_after_stop: Option<u64>,
    pub(super) jobs: BTreeMap<u64, SimJob>,
    pub(super) next_job: u64,
}

impl<C: Core> Sim<C> {
    /// S5 on `node` after its engine's turn: see
    /// [`Checkers::standby_lock`](crate::check::Checkers::standby_lock).
    pub(super) fn check_standby_locks(&mut self, node: NodeId) {
        let host = &self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_ref().filter(|_| host.powered) else { return };
        let mut groups =
            self.spec.group_ids().filter(|g| self.spec.group(*g).locks_standby()).peekable();
        if groups.peek().is_none() {
            return;
        }
        let status = daemon.core.engine().status(host.clock.local(self.now));
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

    /// The fence guard stops every resource of the host at once (if it is armed).
    pub(super) fn fire_guard(&mut self, node: NodeId) {
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

    pub(super) fn send_heartbeat(
        &mut self,
        from: NodeId,
        link: LinkId,
        to: NodeId,
        message: Heartbeat,
    ) {
        let host = &mut self.hosts[usize::from(from.0)];
        if !host.persisted_admin.as_ref().is_some_and(|r| Arc::ptr_eq(r, &message.report)) {
            host.persisted_admin = Some(message.report.clone());
        }
        if usize::from(to.0) >= self.spec.nodes.len() || to == from {
            let message = format!("{} sent a heartbeat to node {}", self.node_name(from), to.0);
            self.checkers.report(Guarantee::Contract, self.now, message);
            return;
        }
        // The core writes the disk link's heartbeats into its slot with its disk jobs.
        debug_assert_eq!(self.spec.link(link).kind, LinkKind::Udp);
        let path = self.net.path(usize::from(link.0), usize::from(from.0), usize::from(to.0));
        let deliveries = path.send(&mut self.rng);
        if let Some(second) = deliveries.second {
            let copy = message.clone();
            self.queue.push(self.now + second, Ev::Heartbeat { link, to, message: copy });
        }
        if let Some(first) = deliveries.first {
            self.queue.push(self.now + first, Ev::Heartbeat { link, to, message });
        }
    }

    // ----- agents --------------------------------------------------------------------

    pub(super) fn operation(
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
            let status = daemon.core.engine().status(h.clock.local(self.now));
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
    pub(super) fn op_done(
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
        self.wake_node(node, Arrival::Operation { id, result });
    }

    pub(super) fn ground_truth(
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

    // ----- hosts ---------------------------------------------------------------------

    pub(super) fn start_daemon(&mut self, node: NodeId) {
        let n = usize::from(node.0);
        let now = self.now;
        let host = &mut self.hosts[n];
        if !host.powered || host.daemon.is_some() {
            return;
        }
        // As the daemon does: its host record on the shared disk is read first, and a
        // node that cannot read it does not join yet (it retries every second).
        // The leases its previous run parked come from there too (disk: the host record;
        // witness: the server, which the witness process to come answers at start).
        let (on_disk, mut parked) = match self.disk_link {
            Some(_) if !self.disk.path_ok[n] => {
                self.queue.push(now + SEC, Ev::DaemonStart { node });
                return;
            }
            Some(_) => match self.disk.read(Block::Host(node)) {
                Record::Host(record) if record.parked => (record.incarnation, record.groups),
                Record::Host(record) => (record.incarnation, Vec::new()),
                _ => (0, Vec::new()),
            },
            None => (0, Vec::new()),
        };
        if let Some((server, _)) = &self.witness {
            parked = server.parked_for(node);
        }
        let wall_micros = match self.options.wall_clocks {
            true => (WALL_EPOCH_NS + now as i64 + host.wall_offset_ns).max(0) as u64 / 1_000,
            false => 0,
        };
        host.incarnation = next_incarnation(host.kept_incarnation, wall_micros, on_disk);
        host.kept_incarnation = host.incarnation;
        host.boots += 1;
        host.restart_after_stop = None;
        host.guard_inherited = host.guard;
        let local = host.clock.local(now);
        // The daemon's own node core (disk: watching ahead from the start).
        let mut core = NodeCore::<C, Heartbeat>::new(
            self.spec.clone(),
            node,
            host.incarnation,
            local,
            self.options.io_timeout,
            self.options.witness_reply_timeout,
        )
        .with_rules(self.options.rules);
        if let Some(report) = &host.persisted_admin {
            core.engine_mut().restore_admin(&report.admin);
        }
        core.parked_at_start(parked);
        host.daemon = Some(Daemon {
            core,
            boot: host.boots,
            timer: Timer::default(),
            held: BTreeSet::new(),
            lease_since: None,
            quiet: Vec::new(),
            prompt: false,
            busy: (0, 0),
            loop_ran_ns: now,
            paused: None,
        });
        let incarnation = host.incarnation;
        let name = self.node_name(node).to_owned();
        self.note(|w| format!("{name:<w$}  ** daemon starts (incarnation {incarnation})"));
        self.wake_node(node, Arrival::Nothing);
    }

    /// The host goes down: engine lost, resources dead, no heartbeats.
    pub(super) fn power_off(&mut self, node: NodeId, why: &str, restart_after_ns: Option<u64>) {
        let host = &mut self.hosts[usize::from(node.0)];
        if !host.powered {
            return;
        }
        host.powered = false;
        host.daemon = None;
        host.restart_after_stop = None;
        host.guard = None;
        // A reboot clears every device's read-only flag.
        host.locked.iter_mut().for_each(|l| *l = false);
        host.guard_generation += 1;
        self.wipe(node, why);
        if let Some(delay) = restart_after_ns {
            self.queue.push(self.now + delay, Ev::PowerOn { node });
        }
    }

    /// The daemon is gone, its guard left armed.
    pub(super) fn daemon_gone(&mut self, node: NodeId) {
        let host = &mut self.hosts[usize::from(node.0)];
        host.daemon = None;
        // A guard whose deadline passed while the daemon lived fires as it dies.
        if host.guard.is_some_and(|deadline| deadline <= host.clock.local(self.now)) {
            self.fire_guard(node);
        }
    }

    /// The daemon exits after a stop signal (I2114): `clean`, its guard told to exit
    /// (disarmed); else with the guard left armed.
    pub(super) fn daemon_stopped(&mut self, node: NodeId, clean: bool, why: &str) {
        if let Some(delay) = self.hosts[usize::from(node.0)].restart_after_stop.take() {
            self.queue.push(self.now + delay, Ev::DaemonStart { node });
        }
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
}
