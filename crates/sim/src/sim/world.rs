//! The simulated world around the engines: hosts (power, the fence guard, the read-only
//! flags of standby devices, the admin state a daemon persists) and their daemons (the
//! engine, its timers, its lease client, what it holds, a pause's backlog), and what the
//! daemons do in it: heartbeats over UDP and disk slots, disk polls, the disk path's
//! verdict, agents' operations and their results, the ground truth fed to the checkers
//! (S5's standby locks included), the guard firing, a daemon's start and its exit after a
//! stop signal. It must not decide anything an engine decides, and leaves the driving of
//! the lease client to `leases`.

use nodecore::shutdown::AfterStop;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use engine::{
    ArbitrationKind, GroupId, Heartbeat, Input, Instant, LeaseRequest, LinkId, LinkKind, NodeId,
    OpId, OpKind, OpResult, ResourceId, ResourceState,
};

use super::{Ev, Sim};
use crate::agents::Plan;
use crate::check::{Change, Guarantee, HolderTruth, StartContext};
use crate::clock::Clock;
use crate::core::Core;
use arbiter::disk::{IoId, IoResult};
use nodecore::{LeaseClient, SlotReader, StoragePath};

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Timer {
    pub(super) at_ns: Option<u64>,
    pub(super) generation: u64,
    /// The last local deadline converted and its real time (engines repeat deadlines).
    pub(super) converted: Option<(Instant, u64)>,
}

pub(super) struct Daemon<C> {
    pub(super) core: C,
    pub(super) boot: u64,
    pub(super) timer: Timer,
    pub(super) lease_timer: Timer,
    pub(super) client: LeaseClient,
    /// The groups this node was granted and not told it lost or released, and the
    /// latest `since` of any grant (the engine keeps one lease for all its groups,
    /// extended by every grant; the clients make every `since` valid for all held
    /// groups): the S3 checker's view of its leases.
    pub(super) held: BTreeSet<GroupId>,
    pub(super) lease_since: Option<Instant>,
    pub(super) requests: BTreeMap<OpId, LeaseRequest>,
    /// Which disk slots hold news, by (incarnation, sequence): the daemon's rule.
    pub(super) disk_slots: SlotReader<(u64, u64)>,
    /// The verdict on its disk path from its I/O results: the daemon's rule.
    pub(super) storage: StoragePath,
    /// (instant, count) of wake-ups asked for at one instant.
    pub(super) busy: (u64, u32),
    /// The last deadline this daemon gave its fence guard (the real daemon checks it at
    /// every wake-up before anything else).
    pub(super) fence_given: Option<Instant>,
    /// Its loop is stopped (SIGSTOP, a hung call): what reached it meanwhile.
    pub(super) paused: Option<Paused>,
    /// Given a stop signal ([`Sim::shutdown`]): when it exits at the latest.
    pub(super) shutdown_by: Option<Instant>,
}

/// The most inputs a paused daemon keeps for its resume: beyond it, heartbeats are
/// dropped, as a full socket buffer drops datagrams (agent results and lease answers,
/// which the real daemon receives over channels, are always kept).
pub const PAUSED_BACKLOG_MAX: usize = 1 << 16;

/// A paused daemon: the inputs that reached it, in arrival order, handed to its engine
/// when it resumes (the kernel queues UDP datagrams; agents and the lease I/O finish in
/// the world and their results wait in the daemon's channels).
#[derive(Default)]
pub(super) struct Paused {
    pub(super) since_ns: u64,
    pub(super) backlog: Vec<Missed>,
}

pub(super) enum Missed {
    /// An event for the daemon, carried out again at the resume (heartbeats, disk
    /// polls, lease replies and timers, witness replies).
    Event(Ev),
    /// An input its engine would have been given.
    Input(Input),
    /// A disk lease I/O that completed while the daemon was stopped.
    IoDone { io: IoId, result: IoResult, deadline_ns: u64 },
}

pub(super) struct Host<C> {
    pub(super) clock: Clock,
    pub(super) powered: bool,
    pub(super) daemon: Option<Daemon<C>>,
    pub(super) incarnation: u64,
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
    pub(super) fn disk_poll(&mut self, node: NodeId, boot: u64) {
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

    /// `node`'s clock now.
    pub(super) fn local_now(&self, node: NodeId) -> Instant {
        self.hosts[usize::from(node.0)].clock.local(self.now)
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
        self.feed(node, Some(Input::Operation { id, result }));
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
    pub(super) fn storage_result(&mut self, node: NodeId, ok: bool) {
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
    pub(super) fn power_off(&mut self, node: NodeId, why: &str, restart_after_ns: Option<u64>) {
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

    /// The daemon is gone, its guard left armed.
    pub(super) fn daemon_gone(&mut self, node: NodeId) {
        let host = &mut self.hosts[usize::from(node.0)];
        host.daemon = None;
        // A guard whose deadline passed while the daemon lived fires as it dies.
        if host.guard.is_some_and(|deadline| deadline <= host.clock.local(self.now)) {
            self.fire_guard(node);
        }
    }

    /// After each turn of a daemon given a stop signal, as its loop does: it exits when
    /// its engine is quiescent or past its deadline.
    pub(super) fn exit_if_shut_down(&mut self, node: NodeId) {
        let local = self.local(node);
        let host = &self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_ref().filter(|d| d.paused.is_none()) else { return };
        // The daemon's own rule (`Options::after_stop`).
        let rule = self.options.after_stop;
        match rule(daemon.shutdown_by, local, daemon.core.is_quiescent()) {
            AfterStop::Stay => {}
            AfterStop::ExitClean => self.daemon_stopped(
                node,
                true,
                "stopped cleanly: no group runs here any more, leases released",
            ),
            AfterStop::ExitArmed => self.daemon_stopped(
                node,
                false,
                "shutdown took too long: exiting with the fence guard armed; it stops what \
                 is left when the lease runs out",
            ),
        }
    }

    /// The daemon exits after a stop signal (I2114): `clean`, its guard told to exit
    /// (disarmed); else with the guard left armed.
    pub(super) fn daemon_stopped(&mut self, node: NodeId, clean: bool, why: &str) {
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
