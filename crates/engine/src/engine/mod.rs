//! The engine: one node's decision core. This file holds the state and the run loop
//! (`handle`, `poll_output`, deadlines); each concern lives in a child module that adds
//! `impl Engine` blocks:
//! - `links`: heartbeats in and out, failure detection per link and per peer;
//! - `lease`: the node's view of its leases (renewal, expiry, self-fencing);
//! - `groups`: placement, the group life cycle, restart/failover policy;
//! - `admin`: operator commands and their cluster-wide replication;
//! - `report`: what this node tells its peers, and the status snapshot.
//!
//! Nothing here reads a clock or does I/O: `now` comes with every call and every effect
//! is an [`Output`] queued for the shell.

mod admin;
mod groups;
mod lease;
mod links;
mod report;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::CodeInfo;
use crate::io::{AdminState, Event, Input, NodeReport, OpId, Output};
use crate::spec::{ClusterSpec, GroupId, NodeId, ResourceId};
use crate::status::Status;
use crate::time::Instant;

pub use groups::Group;
use lease::HostLease;
use links::Peer;

/// What an outstanding operation id refers to.
#[derive(Clone, Copy, Debug)]
enum Pending {
    Agent { group: GroupId, resource: ResourceId, kind: crate::io::OpKind },
    Lease(crate::io::LeaseRequest),
}

/// Upper bound on outputs queued between two drains; a bug if exceeded (the shell drains
/// after every input).
const OUTPUTS_MAX: usize = 1_000_000;

pub struct Engine {
    spec: Arc<ClusterSpec>,
    me: NodeId,
    incarnation: u64,
    now: Instant,
    started_at: Instant,
    booting: bool,
    /// Set by a self-fence: the node must reset; the engine does nothing more.
    fenced: bool,
    outputs: VecDeque<Output>,
    next_op: u64,
    pending: BTreeMap<OpId, Pending>,

    // Heartbeats and failure detection (links.rs).
    sequence: u64,
    next_heartbeat_at: Instant,
    report: Arc<NodeReport>,
    peers: Vec<Peer>,
    storage_ok: bool,

    /// Per group: `Output::LockStandby` was given and still holds (see
    /// `update_standby_locks`).
    standby_locked: Vec<bool>,

    // Leases (lease.rs).
    lease: HostLease,
    fence_armed: Option<Instant>,
    /// The deadline last armed with `keep_earlier` (before `fence_armed` is set).
    fence_kept: Option<Instant>,

    // Groups (groups/).
    groups: Vec<Group>,
    /// Every group must be evaluated again before the next wait (peers, admin state,
    /// storage, leases changed).
    dirty_all: bool,
    /// Groups to evaluate again before the next wait (each also flagged in `Group`).
    touched: Vec<GroupId>,
    /// This node's entry for each group in its report, kept up to date by `evaluate`.
    report_groups: Vec<crate::io::GroupReport>,
    /// When the last heartbeat was sent, to pace the ones sent early on changes.
    last_heartbeat_at: Option<Instant>,

    // Administrative state (admin.rs).
    admin: AdminState,
    lamport: u64,
    maintenance: bool,
    /// The daemon is shutting down ([`Input::Shutdown`]): act as if drained.
    leaving: bool,
    /// Commands given while booting, applied once the node knows the cluster's state
    /// (its Lamport clock is then past every stamp its peers hold).
    queued_admin: Vec<crate::io::AdminCommand>,

    /// Heartbeats dropped because they came from an older incarnation.
    pub stale_heartbeats: u64,
}

impl Engine {
    /// A new engine for node `me`. `incarnation` must grow with every start of the
    /// daemon on this node (the shell uses the wall clock at start, or a counter kept on
    /// disk); `now` is the local monotonic clock.
    pub fn new(spec: Arc<ClusterSpec>, me: NodeId, incarnation: u64, now: Instant) -> Engine {
        assert!(usize::from(me.0) < spec.nodes.len(), "node id out of range");
        assert!(spec.nodes.len() <= crate::spec::NODES_MAX);
        assert!(spec.groups.len() <= crate::spec::GROUPS_MAX);
        let peers = spec.nodes.iter().map(|_| Peer::new(spec.links.len())).collect();
        let groups = spec.groups.iter().map(Group::new).collect();
        let admin = admin::empty_admin(&spec);
        let mut engine = Engine {
            me,
            incarnation,
            now,
            started_at: now,
            booting: true,
            fenced: false,
            outputs: VecDeque::new(),
            next_op: 1,
            pending: BTreeMap::new(),
            sequence: 0,
            next_heartbeat_at: now,
            report: Arc::new(NodeReport {
                state: crate::io::NodeState::Booting,
                storage_ok: true,
                groups: Vec::new(),
                links_up: Vec::new(),
                admin: AdminState::default(),
            }),
            peers,
            storage_ok: true,
            standby_locked: vec![false; spec.groups.len()],
            lease: HostLease::default(),
            fence_armed: None,
            fence_kept: None,
            report_groups: Vec::new(),
            groups,
            dirty_all: true,
            touched: Vec::new(),
            last_heartbeat_at: None,
            admin,
            lamport: 0,
            maintenance: false,
            leaving: false,
            queued_admin: Vec::new(),
            stale_heartbeats: 0,
            spec,
        };
        engine.event(
            &crate::catalogue::NODE_BOOTING,
            None,
            None,
            None,
            format!("node {} starting (incarnation {incarnation})", engine.name(me)),
        );
        engine.start_probes();
        engine
    }

    /// The groups whose leases this node's previous run parked (it stopped in
    /// maintenance; the shell learns them from the arbitrator at start, e.g. its host
    /// record on the shared disk). Call right after [`Engine::new`]. Each is given back
    /// once the probes find nothing of it running here, and re-attached otherwise.
    pub fn parked_at_start(&mut self, groups: &[GroupId]) {
        for group in groups {
            if let Some(runtime) = self.groups.get_mut(group.0 as usize) {
                runtime.parked_before = true;
            }
        }
    }

    /// Whether this node, leaving in maintenance, parked its leases: its resources run
    /// on, and no other node may take their groups until it runs again.
    pub fn leases_parked(&self) -> bool {
        self.lease.parked
    }

    /// Restore the administrative state this node held before it restarted (the shell
    /// keeps it with the journal). Call right after [`Engine::new`]: a restarted node
    /// must not lose the commands it alone knew, nor stamp new ones below old ones.
    pub fn restore_admin(&mut self, admin: &AdminState) {
        let spec = &self.spec;
        let fits = admin.drained.len() == spec.nodes.len()
            && admin.switchover.len() == spec.groups.len()
            && admin.clear.len() == spec.groups.len();
        if fits {
            self.merge_admin(admin);
        }
    }

    /// The administrative state as this node knows it (maintenance, drains, pending
    /// switch-overs, clears), with the stamps that order concurrent commands.
    pub fn admin_state(&self) -> &AdminState {
        &self.admin
    }

    pub fn node(&self) -> NodeId {
        self.me
    }

    pub fn spec(&self) -> &Arc<ClusterSpec> {
        &self.spec
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// After [`Input::Shutdown`]: nothing runs here any more that the daemon must stop
    /// (every group stopped, or left running on purpose in maintenance), no lease is
    /// held and no operation is in flight. The shell may exit.
    pub fn is_quiescent(&self) -> bool {
        self.leaving
            && (self.maintenance && (self.lease.parked || !self.holds_any())
                || self.groups.iter().all(|g| !g.state().is_active() && !g.lease.is_held()))
            && !self.pending.values().any(|p| matches!(p, Pending::Agent { .. }))
    }

    /// Whether the engine fenced itself (the shell must reset the node).
    pub fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// Feed one input. `now` must not go backwards.
    pub fn handle(&mut self, now: Instant, input: Input) {
        debug_assert!(now >= self.now, "time went backwards");
        self.now = self.now.max(now);
        if self.fenced {
            return;
        }
        match input {
            Input::Timeout => {}
            Input::Heartbeat { link, message, received } => {
                self.on_heartbeat(link, message, received)
            }
            Input::StoragePath { ok } => self.on_storage_path(ok),
            Input::Operation { id, result } => self.on_operation(id, result),
            Input::Lease { id, result } => self.on_lease(id, result),
            Input::Admin(command) => self.on_admin(command),
            Input::Shutdown => self.on_shutdown(),
            Input::PoisonPill { incarnation, from } => self.on_poison_pill(incarnation, from),
        }
        self.on_time();
    }

    /// The next effect to carry out, or [`Output::Wait`] when there is none.
    pub fn poll_output(&mut self) -> Output {
        if let Some(output) = self.outputs.pop_front() {
            return output;
        }
        if self.fenced {
            return Output::Wait(Instant::MAX);
        }
        if self.dirty_all || !self.touched.is_empty() {
            self.evaluate();
            self.update_fence();
            self.update_standby_locks();
            self.refresh_report();
            if let Some(output) = self.outputs.pop_front() {
                return output;
            }
        }
        Output::Wait(self.next_deadline())
    }

    /// The cluster as this node sees it now.
    pub fn status(&self, now: Instant) -> Status {
        self.build_status(now.max(self.now))
    }

    /// Guarantee 7 from the difference between what was last told and what holds now: a
    /// group with `lock_standby` devices that does not run here, on a ready node, gets
    /// [`Output::LockStandby`] once each time that becomes true.
    fn update_standby_locks(&mut self) {
        for (index, group) in self.groups.iter().enumerate() {
            let spec = &self.spec.groups[index];
            if !spec.locks_standby() || !spec.nodes.contains(&self.me) {
                continue;
            }
            let lock = !self.booting && !group.may_run() && group.probes_pending() == 0;
            if lock && !self.standby_locked[index] {
                self.outputs.push_back(Output::LockStandby { group: GroupId(index as u32) });
            }
            self.standby_locked[index] = lock;
        }
    }

    /// Everything that is due at `self.now`.
    fn on_time(&mut self) {
        self.link_timers();
        self.boot_timer();
        self.lease_timers();
        self.group_timers();
        self.heartbeat_timer();
    }

    /// Evaluate this group again before the next wait.
    fn touch(&mut self, group: GroupId) {
        let runtime = &mut self.groups[group.0 as usize];
        if !runtime.touched {
            runtime.touched = true;
            self.touched.push(group);
        }
    }

    /// Evaluate every group again before the next wait.
    fn touch_all(&mut self) {
        self.dirty_all = true;
    }

    fn next_deadline(&self) -> Instant {
        let mut next = self.next_heartbeat_at;
        next = next.min(self.link_deadline());
        let boot_wait = self.started_at + self.spec.timing.startup_wait();
        if self.booting && self.now < boot_wait {
            next = next.min(boot_wait); // afterwards booting waits for probe answers
        }
        next = next.min(self.lease_deadline());
        for group in &self.groups {
            next = next.min(group.cached_deadline);
        }
        next.max(self.now)
    }

    /// What makes the engine want to be woken at or before `at`: for diagnosing an
    /// engine that asks to be woken again and again at one instant (a bug).
    pub fn due_at(&self, at: Instant) -> Vec<String> {
        let mut due = Vec::new();
        if self.next_heartbeat_at <= at {
            due.push(format!("heartbeat at {}", self.next_heartbeat_at));
        }
        if self.link_deadline() <= at {
            due.push(format!("link timeout at {}", self.link_deadline()));
        }
        if self.lease_deadline() <= at {
            due.push(format!(
                "lease at {} (valid until {:?}, expiring {})",
                self.lease_deadline(),
                self.lease.valid_until,
                self.lease.expiring
            ));
        }
        for (index, group) in self.groups.iter().enumerate() {
            let deadline = group.deadline(&self.spec.groups[index]);
            if deadline <= at || group.cached_deadline <= at {
                due.push(format!(
                    "group {} at {deadline} (cached {}): {}",
                    self.spec.groups[index].name,
                    group.cached_deadline,
                    group.describe_deadlines(&self.spec.groups[index])
                ));
            }
        }
        due
    }

    fn push(&mut self, output: Output) {
        assert!(self.outputs.len() < OUTPUTS_MAX, "outputs not drained");
        self.outputs.push_back(output);
    }

    fn new_op(&mut self, what: Pending) -> OpId {
        let id = OpId(self.next_op);
        self.next_op += 1;
        self.pending.insert(id, what);
        id
    }

    fn event(
        &mut self,
        code: &'static CodeInfo,
        group: Option<GroupId>,
        resource: Option<ResourceId>,
        location: Option<String>,
        message: String,
    ) {
        let event = Event { at: self.now, node: self.me, code, group, resource, location, message };
        self.push(Output::Event(event));
    }

    fn name(&self, node: NodeId) -> &str {
        &self.spec.node(node).name
    }

    fn group_name(&self, group: GroupId) -> &str {
        &self.spec.group(group).name
    }

    fn timing(&self) -> crate::spec::Timing {
        self.spec.timing
    }

    /// Whether this node knows the cluster's administrative state: it heard every peer
    /// (each heartbeat carries the state, merged on receipt) or the start-up wait passed.
    /// Its Lamport clock is then past every stamp its peers hold, so commands can be
    /// stamped.
    fn knows_cluster(&self) -> bool {
        self.now >= self.started_at + self.spec.timing.startup_wait() || self.all_peers_heard()
    }

    /// Booting ends once every peer was heard (or the start-up wait passed) and every
    /// probe answered. Commands queued while booting are applied as soon as the node
    /// knows the cluster's state, without waiting for its probes: a probe can take as
    /// long as its timeout, and a command stamped only then would overtake commands
    /// given to other nodes in the meantime (found by the simulator: an operator's
    /// "maintenance on" given to a booting node beat a later "maintenance off").
    fn boot_timer(&mut self) {
        if !self.booting {
            return;
        }
        let knows_cluster = self.knows_cluster();
        if knows_cluster {
            self.apply_queued_admin();
        }
        let probing = self.groups.iter().any(|g| g.probes_pending() > 0);
        if knows_cluster && !probing {
            self.booting = false;
            self.touch_all();
            let heard = self.peers.iter().filter(|p| p.alive).count();
            self.event(
                &crate::catalogue::NODE_READY,
                None,
                None,
                None,
                format!("node {} ready ({heard} peer(s) online)", self.name(self.me)),
            );
        }
    }

    /// A pill for this daemon fences the node at once; one for an earlier daemon of
    /// this node (a pill that outlived its target) is left alone.
    fn on_poison_pill(&mut self, incarnation: u64, from: Option<NodeId>) {
        if incarnation != self.incarnation || self.fenced {
            return;
        }
        let from = match from {
            Some(node) => format!("node {}", self.name(node)),
            None => "an operator".to_string(),
        };
        let reason = format!("poison pill from {from}: stopping everything and exiting");
        self.event(&crate::catalogue::POISON_PILL, None, None, None, reason.clone());
        self.push(Output::SelfFence { reason });
        self.fenced = true;
    }

    fn self_fence(&mut self, reason: String) {
        if self.fenced {
            return;
        }
        self.event(&crate::catalogue::SELF_FENCE, None, None, None, reason.clone());
        self.push(Output::SelfFence { reason });
        self.fenced = true;
    }
}

/// `d` as milliseconds with a unit, for messages.
fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests;
