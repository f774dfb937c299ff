//! Groups: placement and life cycle on this node.
//!
//! Life cycle. Resources of a group are always started as a prefix of the effective
//! start order (storage, network, applications). `started` is the length of the prefix
//! that may be running here, `goal` the length wanted; the group steps one agent
//! operation at a time towards its goal: stop the last started while `started > goal`
//! (exact reverse order), start the next while `started < goal` and the lease is usable.
//! A restart in place of resource `i` sets the goal to `i`, then back to all (`then_goal`).
//!
//! Placement. Each node decides only for itself, from the same replicated facts (peer
//! liveness, peers' reports, the administrative state): it starts a group when nobody
//! runs it and it is the designated node (a handoff target, a switch-over target, or the
//! first eligible node of the group's list); an owner gives a group away when it becomes
//! ineligible, on a switch-over or on failback — but only if another node can take it
//! (otherwise the group is migration-locked and stays). Views can differ for a moment;
//! the lease, not agreement, keeps a group on one node.
//!
//! This file holds a group's state (`Group`, what it reports and when it next needs
//! attention) and `evaluate`, which runs placement then the life cycle for each touched
//! group; the decisions live in placement.rs, lifecycle.rs, operations.rs (agent
//! results) and timers.rs (what falls due).

mod lifecycle;
mod operations;
mod placement;
mod timers;

use std::time::Duration;

use super::lease::GroupLease;
use super::{Engine, Pending};
use crate::io::{GroupState, OpId, OpKind};
use crate::spec::{GroupId, GroupSpec, NodeId, ResourceId};
use crate::status::ResourceState;
use crate::time::Instant;

/// What a probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probed {
    NotRunning,
    Running,
    /// The probe timed out: treat as possibly running, never as healthy.
    Unknown,
}

/// Whether placement finds a group stuck, as of its last decision about it (a decision
/// that waits for something, or is not taken, leaves it as it was). `evaluate` compares
/// it before and after the decision and tells each change into a stuck state once
/// (`Engine::announce_stuck`), not at every evaluation that finds it still so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stuck {
    No,
    /// Nobody runs the group and no node can; this node, the first alive member with
    /// none booting, speaks for the cluster (E4114).
    NoNode,
    /// This node runs the group and is ineligible for it, but no other node can take
    /// it (W4123).
    CannotMove,
}

/// At most this many failure times are kept per resource.
const FAILURES_KEPT_MAX: usize = 64;

/// One group as this node runs (or does not run) it.
pub struct Group {
    /// The effective start order.
    pub(super) order: Vec<ResourceId>,
    /// Resource id -> position in `order`.
    pos_of: Vec<usize>,
    /// By position in `order`: a monitor-only resource (`nic`), never started or stopped,
    /// so never "running" for probes and restarts.
    monitor_only: Vec<bool>,
    pub(super) lease: GroupLease,
    /// The lease expired here without being released: the arbitrator must be told, or
    /// the renewals of our host lease would keep it ours. Nothing is acquired meanwhile.
    pub(super) release_owed: bool,
    owed_release: Option<OpId>,
    /// This node's previous run parked the group's lease (it stopped in maintenance,
    /// leaving it running): once the probes have found nothing of it running, the
    /// lease is given back (`reconcile`); anything found is re-attached as usual.
    pub(super) parked_before: bool,
    /// The lease request in flight for this group and when to give up waiting for it.
    lease_deadline: Option<(OpId, Instant)>,
    /// Do not ask the arbitrator again (acquire or release) before this.
    retry_at: Option<Instant>,
    pub(super) started: usize,
    pub(super) goal: usize,
    then_goal: Option<usize>,
    /// A restart in place beyond the failure threshold (the group cannot move) waits
    /// until then, so that a resource that fails at once is not retried in a tight loop.
    restart_at: Option<Instant>,
    op: Option<GroupOp>,
    pub(super) resources: Vec<Res>,
    probes_pending: usize,
    /// What the last probes found, by resource id.
    probed: Vec<Probed>,
    /// Acquiring the lease for resources found running (restart, maintenance end).
    reattach: bool,
    pub(super) handoff_to: Option<NodeId>,
    handoff_until: Option<Instant>,
    stopping_reason: Option<String>,
    pub(super) failed: bool,
    /// The life-cycle step last told by an event (starting, running, stopped). A flag,
    /// not a difference of `state()`: a restart in place of the first resource passes
    /// through stopping and starting while the group is still the same run, and is not
    /// told as a new "running".
    announced: GroupState,
    pub(super) locked_since: Option<Instant>,
    /// This node announced the current lock (W4109) and owes its end (I4110). A flag,
    /// not a difference of `lock_reason`: the lock may begin before this node owns the
    /// group (it says so when it becomes the owner) and outlive its running it; what
    /// matters is what this node said.
    lock_announced: bool,
    pub(super) lock_reason: Option<String>,
    failback: Option<(NodeId, Instant)>,
    pub(super) clear_seen: u64,
    last_owner: Option<NodeId>,
    /// Placement's last finding that the group is stuck; events come from its changes.
    stuck: Stuck,
    /// A refused acquire was told (W3103/W3108) and no grant came since: one event per
    /// streak of refusals. A flag, not a state difference: a refusal is an answer that
    /// arrives, not a state the evaluation derives, and the event carries the answer's
    /// detail (the holder, the error) at the instant it arrives.
    announced_denied: bool,
    /// Queued for evaluation (see `Engine::touch`).
    pub(super) touched: bool,
    /// `deadline()` as of the last evaluation.
    pub(super) cached_deadline: Instant,
}

#[derive(Clone, Copy, Debug)]
struct GroupOp {
    id: OpId,
    pos: usize,
    kind: OpKind,
    deadline: Instant,
}

#[derive(Default)]
pub(super) struct Res {
    pub(super) failures: Vec<Instant>,
    monitor: Option<(OpId, Instant)>,
    next_monitor_at: Option<Instant>,
    probe: Option<(OpId, Instant)>,
    /// For monitor-only (`nic`) resources: the interface is up here.
    pub(super) nic_up: bool,
    pub(super) nic_down_since: Option<Instant>,
    pub(super) last_failed: bool,
    /// Its start found it held elsewhere ([`OpResult::InUse`]) since then.
    in_use_since: Option<Instant>,
}

impl Group {
    pub(super) fn new(spec: &GroupSpec) -> Group {
        let order = spec.start_order();
        let mut pos_of = vec![0; order.len()];
        for (pos, r) in order.iter().enumerate() {
            pos_of[usize::from(r.0)] = pos;
        }
        let monitor_only = order.iter().map(|r| spec.resource(*r).kind.is_monitor_only()).collect();
        Group {
            order,
            pos_of,
            monitor_only,
            lease: GroupLease::None,
            release_owed: false,
            owed_release: None,
            parked_before: false,
            lease_deadline: None,
            retry_at: None,
            started: 0,
            goal: 0,
            then_goal: None,
            restart_at: None,
            op: None,
            resources: spec
                .resources
                .iter()
                .map(|_| Res { nic_up: true, ..Res::default() })
                .collect(),
            probes_pending: 0,
            probed: vec![Probed::NotRunning; spec.resources.len()],
            reattach: false,
            handoff_to: None,
            handoff_until: None,
            stopping_reason: None,
            failed: false,
            announced: GroupState::Stopped,
            locked_since: None,
            lock_announced: false,
            lock_reason: None,
            failback: None,
            clear_seen: 0,
            last_owner: None,
            stuck: Stuck::No,
            announced_denied: false,
            touched: false,
            cached_deadline: Instant::ZERO,
        }
    }

    pub(super) fn probes_pending(&self) -> usize {
        self.probes_pending
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    /// This node's state of the group.
    pub(super) fn state(&self) -> GroupState {
        if self.failed {
            GroupState::Failed
        } else if matches!(self.lease, GroupLease::Acquiring(_)) && !self.reattach {
            GroupState::Starting
        } else if self.goal == 0 {
            // Resources still up, or all down but the lease not yet given back.
            if self.may_run() || self.lease.is_held() || self.reattach {
                GroupState::Stopping
            } else {
                GroupState::Stopped
            }
        } else if (self.started == self.len()
            && self.goal == self.len()
            && self.then_goal.is_none())
            || (self.then_goal.is_some() && self.started > 0)
        {
            // All up, or restarting in place: still the owner, still serving the rest.
            GroupState::Running
        } else {
            GroupState::Starting
        }
    }

    /// Some resource of the group may be running here: started, or an operation on it
    /// in flight (a start that times out may still have started it).
    pub(super) fn may_run(&self) -> bool {
        self.started > 0 || self.op.is_some()
    }

    fn probed_at(&self, pos: usize) -> Probed {
        self.probed[usize::from(self.order[pos].0)]
    }

    /// The first position before `top` not confirmed running by its probe.
    fn first_unconfirmed(&self, top: usize) -> Option<usize> {
        (0..top).find(|pos| !self.monitor_only[*pos] && self.probed_at(*pos) != Probed::Running)
    }

    /// Forget a pending restart in place.
    pub(super) fn clear_restart(&mut self) {
        self.then_goal = None;
        self.restart_at = None;
    }

    /// This node holds the group and wants it running.
    pub(super) fn owns(&self) -> bool {
        self.lease.is_held() && self.goal > 0
    }

    fn steady(&self) -> bool {
        self.op.is_none()
            && self.then_goal.is_none()
            && self.goal == self.len()
            && self.started == self.len()
            && self.lease.is_held()
    }

    pub(super) fn fail_count(&self, resource: ResourceId, now: Instant, timeout: Duration) -> u32 {
        self.resources[usize::from(resource.0)]
            .failures
            .iter()
            .filter(|t| now < **t + timeout)
            .count() as u32
    }

    pub(super) fn resource_state(&self, resource: ResourceId) -> ResourceState {
        let pos = self.pos_of[usize::from(resource.0)];
        if let Some(op) = self.op {
            if op.pos == pos {
                return match op.kind {
                    OpKind::Start => ResourceState::Starting,
                    _ => ResourceState::Stopping,
                };
            }
        }
        if self.resources[usize::from(resource.0)].last_failed {
            ResourceState::Failed
        } else if pos < self.started {
            ResourceState::Running
        } else {
            ResourceState::Stopped
        }
    }

    /// Every pending deadline of the group, in words (diagnostics).
    pub(super) fn describe_deadlines(&self, spec: &GroupSpec) -> String {
        let mut parts = Vec::new();
        if let Some(op) = self.op {
            parts.push(format!("{:?} op until {}", op.kind, op.deadline));
        }
        for (r, res) in self.resources.iter().enumerate() {
            let name = &spec.resources[r].name;
            if let Some((_, at)) = res.monitor {
                parts.push(format!("{name} monitor until {at}"));
            }
            if let Some((_, at)) = res.probe {
                parts.push(format!("{name} probe until {at}"));
            }
            if let Some(at) = res.next_monitor_at {
                parts.push(format!("{name} next monitor {at}"));
            }
            if let Some(first) = res.failures.first() {
                parts.push(format!("{name} failure expires {}", *first + spec.failure_timeout));
            }
        }
        for (what, at) in [
            ("retry", self.retry_at),
            ("hand-over ends", self.handoff_until),
            ("restart", self.restart_at),
            ("lease answer due", self.lease_deadline.map(|(_, at)| at)),
            ("failback", self.failback.map(|(_, since)| since + spec.failback_delay)),
        ] {
            if let Some(at) = at {
                parts.push(format!("{what} {at}"));
            }
        }
        parts.join(", ")
    }

    /// The earliest instant at which this group has something to do.
    pub(super) fn deadline(&self, spec: &GroupSpec) -> Instant {
        let mut next = Instant::MAX;
        if let Some(op) = self.op {
            next = next.min(op.deadline);
        }
        for res in &self.resources {
            for (_, deadline) in res.monitor.iter().chain(res.probe.iter()) {
                next = next.min(*deadline);
            }
            if res.monitor.is_none() && res.probe.is_none() {
                if let Some(at) = res.next_monitor_at {
                    next = next.min(at);
                }
            }
            if let Some(first) = res.failures.first() {
                next = next.min(*first + spec.failure_timeout);
            }
        }
        if let Some((_, at)) = self.lease_deadline {
            next = next.min(at);
        }
        for at in [self.retry_at, self.handoff_until, self.restart_at].into_iter().flatten() {
            next = next.min(at);
        }
        if let (true, Some((_, since))) = (self.owns(), self.failback) {
            next = next.min(since + spec.failback_delay);
        }
        next
    }
}

impl Engine {
    fn gspec(&self, group: GroupId) -> &GroupSpec {
        self.spec.group(group)
    }

    fn is_member(&self, group: GroupId) -> bool {
        self.gspec(group).nodes.contains(&self.me)
    }

    /// Placement and stepping of the groups touched since the last call (all of them
    /// after a cluster-wide change); refreshes their report entries and deadlines.
    pub(in crate::engine) fn evaluate(&mut self) {
        if self.report_groups.len() != self.groups.len() {
            self.dirty_all = true;
            self.report_groups = (0..self.groups.len())
                .map(|index| self.group_report(GroupId(index as u32)))
                .collect();
        }
        // Evaluating a group may touch it again (a stop begun, a lease asked): a few
        // rounds settle it; the bound only guards against a bug.
        for _round in 0..8 {
            let list: Vec<GroupId> = if self.dirty_all {
                self.dirty_all = false;
                self.touched.clear();
                (0..self.groups.len()).map(|index| GroupId(index as u32)).collect()
            } else {
                std::mem::take(&mut self.touched)
            };
            if list.is_empty() {
                return;
            }
            for &group in &list {
                self.groups[group.0 as usize].touched = false;
            }
            for group in list {
                let index = group.0 as usize;
                let stuck = self.groups[index].stuck;
                if !self.booting && !self.maintenance && self.groups[index].probes_pending == 0 {
                    self.decide(group);
                }
                if self.groups[index].stuck != stuck {
                    self.announce_stuck(group);
                }
                self.drive(group);
                self.track_lock(group);
                // A failback due but not acted upon (maintenance, the move blocked) is
                // disarmed; it is armed afresh, with a full delay, once it can happen.
                let delay = self.spec.groups[index].failback_delay;
                if self.groups[index].failback.is_some_and(|(_, since)| since + delay <= self.now) {
                    self.groups[index].failback = None;
                }
                self.report_groups[index] = self.group_report(group);
                let deadline = self.groups[index].deadline(&self.spec.groups[index]);
                self.groups[index].cached_deadline = deadline;
            }
        }
    }
}
