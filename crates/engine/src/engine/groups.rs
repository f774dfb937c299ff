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

use std::time::Duration;

use super::lease::GroupLease;
use super::{ms, Engine, Pending};
use crate::catalogue;
use crate::io::{GroupState, Ineligible, Lww, OpId, OpKind, OpResult, Output};
use crate::spec::{Failback, GroupId, GroupSpec, NodeId, ResourceId};
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
    /// State last announced by an event (running/stopped).
    announced: GroupState,
    pub(super) locked_since: Option<Instant>,
    /// This node announced the current lock (W4109) and owes its end (I4110).
    lock_announced: bool,
    pub(super) lock_reason: Option<String>,
    failback: Option<(NodeId, Instant)>,
    pub(super) clear_seen: u64,
    last_owner: Option<NodeId>,
    announced_no_node: bool,
    announced_blocked: bool,
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
            announced_no_node: false,
            announced_blocked: false,
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

    /// Why this node may not run the group now.
    pub(super) fn local_ineligible(&self, group: GroupId) -> Option<Ineligible> {
        let spec = self.gspec(group);
        let runtime = &self.groups[group.0 as usize];
        if !spec.nodes.contains(&self.me) {
            return Some(Ineligible::NotMember);
        }
        if self.booting {
            return Some(Ineligible::Booting);
        }
        if self.maintenance {
            return Some(Ineligible::Maintenance);
        }
        if self.is_drained(self.me) || self.leaving {
            return Some(Ineligible::Drained);
        }
        let needs_storage =
            spec.uses_storage() || self.spec.arbitration == crate::spec::ArbitrationKind::Disk;
        if needs_storage && !self.storage_ok {
            return Some(Ineligible::StorageLost);
        }
        if self.lease.unavailable {
            return Some(Ineligible::NoArbitrator);
        }
        if runtime
            .resources
            .iter()
            .zip(&spec.resources)
            .any(|(r, s)| s.kind.is_monitor_only() && !r.nic_up)
        {
            return Some(Ineligible::NicDown);
        }
        let over = (0..spec.resources.len()).any(|r| {
            runtime.fail_count(ResourceId(r as u16), self.now, spec.failure_timeout)
                >= spec.migration_threshold
        });
        if over {
            return Some(Ineligible::Failures);
        }
        None
    }

    /// Why `node` may not run the group, as this node sees it (offline counts).
    pub(super) fn node_ineligible(&self, node: NodeId, group: GroupId) -> Result<(), String> {
        if node == self.me {
            return self
                .local_ineligible(group)
                .map_or(Ok(()), |why| Err(why.as_str().to_string()));
        }
        let peer = &self.peers[usize::from(node.0)];
        if !peer.alive {
            return Err("offline".to_string());
        }
        if self.is_drained(node) {
            return Err(Ineligible::Drained.as_str().to_string());
        }
        match peer.report.as_deref() {
            None => Err(Ineligible::Booting.as_str().to_string()),
            Some(report) => match report.groups.get(group.0 as usize).and_then(|g| g.ineligible) {
                Some(why) => Err(why.as_str().to_string()),
                None => Ok(()),
            },
        }
    }

    /// Why the previous owner of a group lost it, when that was a fault (offline,
    /// storage, network, failures) rather than a plan (switch-over, failback, drain).
    fn failed_owner(&self, previous: NodeId, group: GroupId) -> Option<String> {
        if previous == self.me {
            return None;
        }
        let peer = &self.peers[usize::from(previous.0)];
        let Some(report) = peer.live_report() else {
            return Some("offline".to_string());
        };
        match report.groups.get(group.0 as usize).and_then(|g| g.ineligible) {
            None | Some(Ineligible::Drained | Ineligible::Maintenance) => None,
            Some(why) => Some(why.as_str().to_string()),
        }
    }

    fn eligible(&self, node: NodeId, group: GroupId) -> bool {
        self.node_ineligible(node, group).is_ok()
    }

    fn peer_booting(&self, node: NodeId) -> bool {
        let peer = &self.peers[usize::from(node.0)];
        peer.alive
            && peer.report.as_deref().is_none_or(|r| r.state == crate::io::NodeState::Booting)
    }

    /// Alive peers that report the group active, those holding its lease first.
    fn active_peer(&self, group: GroupId) -> Option<NodeId> {
        let mut found = None;
        for (index, peer) in self.peers.iter().enumerate() {
            let Some(report) = peer.live_report() else { continue };
            let Some(g) = report.groups.get(group.0 as usize) else { continue };
            if g.state.is_active() {
                let node = NodeId(index as u16);
                if g.holds_lease {
                    return Some(node);
                }
                found.get_or_insert(node);
            }
        }
        found
    }

    /// The node running the group, as this node sees it.
    pub(super) fn owner(&self, group: GroupId) -> Option<NodeId> {
        if self.groups[group.0 as usize].state().is_active() {
            Some(self.me)
        } else {
            self.active_peer(group)
        }
    }

    /// The group's state on `node` as this node knows it.
    fn group_state_on(&self, node: NodeId, group: GroupId) -> GroupState {
        if node == self.me {
            return self.groups[group.0 as usize].state();
        }
        self.peers[usize::from(node.0)]
            .live_report()
            .and_then(|r| r.groups.get(group.0 as usize))
            .map_or(GroupState::Stopped, |g| g.state)
    }

    /// Why the group could not move away from `owner` now; `None` when some other node
    /// of the group is alive and eligible (or booting, on its way to be).
    pub(super) fn lock_reason(&self, group: GroupId, owner: NodeId) -> Option<String> {
        let spec = self.gspec(group);
        let mut reasons = Vec::new();
        for &node in &spec.nodes {
            if node == owner {
                continue;
            }
            if node != self.me && self.peer_booting(node) {
                return None;
            }
            match self.node_ineligible(node, group) {
                Ok(()) => return None,
                Err(why) => reasons.push(format!("{} {why}", self.name(node))),
            }
        }
        if reasons.is_empty() {
            Some("the group has no other node".to_string())
        } else {
            Some(format!("no standby: {}", reasons.join(", ")))
        }
    }

    /// Which node should start the group now that nobody runs it; `None`: wait.
    fn designated(&self, group: GroupId) -> Option<NodeId> {
        let spec = self.gspec(group);
        let own = &self.groups[group.0 as usize];
        // Hand-over offers (from, to) of stopped nodes. An offer to a node that has
        // since made an offer of its own is stale: that node took the group and passed
        // it on.
        let mut offers: Vec<(NodeId, NodeId)> = Vec::new();
        if own.state() == GroupState::Stopped {
            offers.extend(own.handoff_to.map(|to| (self.me, to)));
        }
        for (index, peer) in self.peers.iter().enumerate() {
            if let Some(g) = peer.live_report().and_then(|r| r.groups.get(group.0 as usize)) {
                if g.state == GroupState::Stopped {
                    offers.extend(g.handoff_to.map(|to| (NodeId(index as u16), to)));
                }
            }
        }
        let current = offers
            .iter()
            .map(|(_, to)| *to)
            .filter(|to| !offers.iter().any(|(from, _)| from == to))
            .find(|to| self.eligible(*to, group));
        if let Some(target) = current {
            return Some(target);
        }
        if let Some(request) = self.admin.switchover[group.0 as usize].value {
            if let Some(to) = request.to.filter(|to| self.eligible(*to, group)) {
                return Some(to);
            }
        }
        for &node in &spec.nodes {
            if !self.peer_alive(node) {
                continue;
            }
            if node != self.me && self.peer_booting(node) {
                return None; // the preferred node is starting: let it decide
            }
            if self.eligible(node, group) {
                return Some(node);
            }
        }
        None
    }

    /// Placement and stepping of the groups touched since the last call (all of them
    /// after a cluster-wide change); refreshes their report entries and deadlines.
    pub(super) fn evaluate(&mut self) {
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
                if !self.booting && !self.maintenance && self.groups[index].probes_pending == 0 {
                    self.decide(group);
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

    fn decide(&mut self, group: GroupId) {
        let index = group.0 as usize;
        if self.lease.expiring || self.groups[index].failed {
            return;
        }
        let runtime = &self.groups[index];
        if runtime.owns() && runtime.lease == GroupLease::Held {
            self.decide_as_owner(group);
            return;
        }
        if runtime.state().is_active() {
            return; // acquiring, stopping or releasing: wait for it
        }
        if let Some(peer) = self.active_peer(group) {
            self.groups[index].last_owner = Some(peer);
            self.groups[index].announced_no_node = false;
            if self.groups[index].handoff_to == Some(peer) {
                // The hand-over is done: the offer must not outlive it.
                self.groups[index].handoff_to = None;
                self.groups[index].handoff_until = None;
            }
            return;
        }
        if self.groups[index].retry_at.is_some_and(|t| self.now < t) {
            return;
        }
        if self.groups[index].release_owed {
            if self.groups[index].owed_release.is_none() {
                let id = self.group_lease_request(group, crate::io::LeaseRequest::Release(group));
                self.groups[index].owed_release = Some(id);
            }
            return;
        }
        match self.designated(group) {
            Some(node) if node == self.me => {
                let id = self.group_lease_request(group, crate::io::LeaseRequest::Acquire(group));
                self.groups[index].lease = GroupLease::Acquiring(id);
                self.groups[index].reattach = false;
            }
            Some(_) => self.groups[index].announced_no_node = false,
            None => self.announce_no_node(group),
        }
    }

    fn announce_no_node(&mut self, group: GroupId) {
        let all = self.spec.clone();
        let spec = all.group(group);
        let any_alive_member = spec.nodes.iter().any(|n| self.peer_alive(*n));
        let first_alive = spec.nodes.iter().copied().find(|n| self.peer_alive(*n));
        let anyone_booting = spec.nodes.iter().any(|n| *n != self.me && self.peer_booting(*n));
        if !any_alive_member || first_alive != Some(self.me) || anyone_booting {
            return;
        }
        if self.groups[group.0 as usize].announced_no_node {
            return;
        }
        self.groups[group.0 as usize].announced_no_node = true;
        let reasons: Vec<String> = spec
            .nodes
            .iter()
            .filter_map(|n| {
                self.node_ineligible(*n, group).err().map(|why| format!("{} {why}", self.name(*n)))
            })
            .collect();
        let name = self.group_name(group).to_string();
        self.event(
            &catalogue::GROUP_NO_NODE,
            Some(group),
            None,
            Some(format!("group {name}")),
            format!("no node can run {name}: {}", reasons.join(", ")),
        );
    }

    // Long because: an owner's one decision in order: yield after a split brain, the
    // reason to leave, the target, and what to do when there is none.
    fn decide_as_owner(&mut self, group: GroupId) {
        let index = group.0 as usize;
        let all = self.spec.clone();
        let spec = all.group(group);
        // Split brain healed (possible only without arbitration): the node later in the
        // group's list gives way.
        if let Some(peer) = self.active_peer(group) {
            let peer_holds = self.peers[usize::from(peer.0)]
                .live_report()
                .and_then(|r| r.groups.get(index))
                .is_some_and(|g| g.holds_lease && g.state.is_active());
            let rank = |node: NodeId| spec.nodes.iter().position(|n| *n == node);
            if peer_holds && rank(peer) < rank(self.me) {
                self.begin_stop(group, format!("{} runs it too", self.name(peer)), None);
                return;
            }
        }

        let mut switchover_target = None;
        let mut reason = None;
        if let Some(why) = self.local_ineligible(group) {
            reason = Some((format!("{} on this node", why.as_str()), why == Ineligible::Failures));
        } else if let Some(request) = self.admin.switchover[index].value {
            if request.from == self.me && request.to != Some(self.me) {
                switchover_target = Some(request.to);
                reason = Some(("switch-over requested".to_string(), false));
            }
        }
        let mut failback_target = None;
        if reason.is_none() && spec.failback == Failback::Auto {
            failback_target = self.failback_due(group);
            if let Some(target) = failback_target {
                reason = Some((format!("failback to {}", self.name(target)), false));
            }
        }
        let Some((reason, threshold)) = reason else {
            self.groups[index].announced_blocked = false;
            return;
        };

        let target = match (switchover_target, failback_target) {
            (Some(Some(to)), _) => Some(to).filter(|to| self.eligible(*to, group)),
            (_, Some(to)) => Some(to),
            _ => spec.nodes.iter().copied().find(|n| *n != self.me && self.eligible(*n, group)),
        };
        let name = self.group_name(group).to_string();
        match target {
            Some(target) => {
                if threshold {
                    self.event(
                        &catalogue::MIGRATION_THRESHOLD,
                        Some(group),
                        None,
                        None,
                        format!(
                            "{name} reached migration_threshold here: moving it to {}",
                            self.name(target)
                        ),
                    );
                }
                if failback_target.is_some() {
                    self.event(
                        &catalogue::FAILBACK,
                        Some(group),
                        None,
                        None,
                        format!("{name} returns to its preferred node {}", self.name(target)),
                    );
                }
                self.groups[index].failback = None;
                self.begin_stop(group, reason, Some(target));
            }
            None if switchover_target.is_some() => {
                let why = match switchover_target.flatten() {
                    Some(to) => format!(
                        "target {} cannot run it ({})",
                        self.name(to),
                        self.node_ineligible(to, group).err().unwrap_or_default()
                    ),
                    None => "no other node can run it".to_string(),
                };
                self.event(
                    &catalogue::SWITCHOVER_REFUSED,
                    Some(group),
                    None,
                    None,
                    format!("switch-over of {name} refused: {why}"),
                );
                self.write_switchover(group, None);
            }
            None if self.leaving => {
                // The daemon stops: the group stops with it even if nobody takes it.
                self.begin_stop(group, "the node is shutting down".to_string(), None);
            }
            None => {
                if !self.groups[index].announced_blocked {
                    self.groups[index].announced_blocked = true;
                    let lock = self.lock_reason(group, self.me).unwrap_or_default();
                    self.event(
                        &catalogue::MIGRATION_BLOCKED,
                        Some(group),
                        None,
                        None,
                        format!("{name} should leave this node ({reason}) but cannot move: {lock}"),
                    );
                }
            }
        }
    }

    /// The preferred node to fail back to, once it has been eligible for failback_delay.
    fn failback_due(&mut self, group: GroupId) -> Option<NodeId> {
        let index = group.0 as usize;
        let spec = self.gspec(group);
        let preferred = spec
            .nodes
            .iter()
            .copied()
            .take_while(|n| *n != self.me)
            .find(|n| self.eligible(*n, group));
        let delay = spec.failback_delay;
        match (preferred, self.groups[index].failback) {
            (None, _) => {
                self.groups[index].failback = None;
                None
            }
            (Some(p), Some((q, since))) if p == q => (self.now >= since + delay).then_some(p),
            (Some(p), _) => {
                self.groups[index].failback = Some((p, self.now));
                (delay.is_zero()).then_some(p)
            }
        }
    }

    /// Start stopping the group (reverse order); hand it to `handoff` afterwards.
    pub(super) fn begin_stop(&mut self, group: GroupId, reason: String, handoff: Option<NodeId>) {
        let index = group.0 as usize;
        self.touch(group);
        let runtime = &mut self.groups[index];
        if runtime.goal == 0 && runtime.then_goal.is_none() && runtime.handoff_to == handoff {
            return;
        }
        runtime.goal = 0;
        runtime.then_goal = None;
        runtime.handoff_to = handoff;
        runtime.handoff_until = None;
        runtime.stopping_reason = Some(reason.clone());
        self.cancel_monitors(group);
        let name = self.group_name(group).to_string();
        self.event(
            &catalogue::GROUP_STOPPING,
            Some(group),
            None,
            None,
            format!("stopping {name}: {reason}"),
        );
    }

    fn cancel_monitors(&mut self, group: GroupId) {
        self.cancel_monitors_from(group, 0);
    }

    /// Cancel the monitors of the resources at `from` and after in the start order (they
    /// are being stopped); the earlier ones keep reporting.
    fn cancel_monitors_from(&mut self, group: GroupId, from: usize) {
        let index = group.0 as usize;
        let spec = self.spec.clone();
        let gspec = spec.group(group);
        let runtime = &mut self.groups[index];
        for (r, res) in runtime.resources.iter_mut().enumerate() {
            if gspec.resources[r].kind.is_monitor_only() || runtime.pos_of[r] < from {
                continue;
            }
            if let Some((id, _)) = res.monitor.take() {
                self.pending.remove(&id);
            }
            res.next_monitor_at = None;
        }
    }

    fn issue(&mut self, group: GroupId, resource: ResourceId, kind: OpKind) -> (OpId, Instant) {
        let rspec = self.gspec(group).resource(resource);
        let timeout = match kind {
            OpKind::Start => rspec.start_timeout,
            OpKind::Stop => rspec.stop_timeout,
            OpKind::Monitor | OpKind::Probe => rspec.monitor_timeout,
        };
        let deadline = self.now + timeout + self.timing().operation_grace();
        let id = self.new_op(Pending::Agent { group, resource, kind });
        self.push(Output::Operation { id, group, resource, op: kind, timeout });
        (id, deadline)
    }

    /// Step the group towards its goal: at most one start or stop in flight.
    fn drive(&mut self, group: GroupId) {
        let index = group.0 as usize;
        loop {
            let runtime = &self.groups[index];
            if runtime.op.is_some()
                || (self.maintenance && !self.lease.expiring)
                || runtime.failed
                || runtime.probes_pending > 0
                || matches!(runtime.lease, GroupLease::Acquiring(_) | GroupLease::Releasing(_))
            {
                return;
            }
            let (started, goal) = (runtime.started, runtime.goal);
            if started > goal {
                let pos = started - 1;
                let resource = runtime.order[pos];
                if self.gspec(group).resource(resource).kind.is_monitor_only() {
                    self.groups[index].started -= 1;
                    continue;
                }
                let (id, deadline) = self.issue(group, resource, OpKind::Stop);
                self.groups[index].op = Some(GroupOp { id, pos, kind: OpKind::Stop, deadline });
                return;
            }
            if started < goal {
                if runtime.lease != GroupLease::Held || !self.lease_usable() {
                    return; // wait for the lease (renewal in flight)
                }
                if runtime.restart_at.is_some_and(|t| self.now < t) {
                    return;
                }
                let resource = runtime.order[started];
                if self.gspec(group).resource(resource).kind.is_monitor_only() {
                    self.groups[index].started += 1;
                    continue;
                }
                let (id, deadline) = self.issue(group, resource, OpKind::Start);
                self.groups[index].op =
                    Some(GroupOp { id, pos: started, kind: OpKind::Start, deadline });
                return;
            }
            if let Some(next) = self.groups[index].then_goal.take() {
                self.groups[index].goal = next;
                continue;
            }
            if goal == 0 {
                self.stopped(group);
            } else {
                self.running(group);
            }
            return;
        }
    }

    /// Every resource is down: give the lease back, announce.
    fn stopped(&mut self, group: GroupId) {
        let index = group.0 as usize;
        if self.groups[index].lease == GroupLease::Held {
            if self.groups[index].retry_at.is_some_and(|t| self.now < t) {
                return;
            }
            let id = self.group_lease_request(group, crate::io::LeaseRequest::Release(group));
            self.groups[index].lease = GroupLease::Releasing(id);
            return;
        }
        if self.groups[index].handoff_to.is_some() && self.groups[index].handoff_until.is_none() {
            // A hand-over offer lasts long enough for the target to take the lease, and
            // no longer: a stale one could point two nodes at each other.
            let hold = self.timing().lease_takeover_wait() + self.timing().peer_timeout * 2;
            self.groups[index].handoff_until = Some(self.now + hold);
        }
        if self.groups[index].announced != GroupState::Stopped {
            self.groups[index].announced = GroupState::Stopped;
            let name = self.group_name(group).to_string();
            let target = self.groups[index]
                .handoff_to
                .map(|t| format!("; handed to {}", self.name(t)))
                .unwrap_or_default();
            self.event(
                &catalogue::GROUP_STOPPED,
                Some(group),
                None,
                None,
                format!("{name} stopped{target}"),
            );
        }
        self.groups[index].stopping_reason = None;
    }

    /// Every resource runs: announce, keep the monitors going.
    fn running(&mut self, group: GroupId) {
        let index = group.0 as usize;
        if self.groups[index].announced != GroupState::Running {
            self.groups[index].announced = GroupState::Running;
            let name = self.group_name(group).to_string();
            self.event(
                &catalogue::GROUP_RUNNING,
                Some(group),
                None,
                None,
                format!("{name} running"),
            );
        }
        let now = self.now;
        let spec = self.spec.clone();
        for (r, res) in self.groups[index].resources.iter_mut().enumerate() {
            let rspec = &spec.group(group).resources[r];
            if !rspec.kind.is_monitor_only()
                && res.monitor.is_none()
                && res.next_monitor_at.is_none()
            {
                res.next_monitor_at = Some(now + rspec.monitor_interval);
            }
        }
    }

    /// Lock state changes, announced by the owner.
    fn track_lock(&mut self, group: GroupId) {
        let index = group.0 as usize;
        let owner = self.owner(group);
        // A lock holds a group where it runs; a group being stopped (planned, or for
        // safety when its lease cannot be renewed) is not held in place.
        let in_place = owner.is_some_and(|o| {
            matches!(self.group_state_on(o, group), GroupState::Running | GroupState::Starting)
        });
        let reason = owner.filter(|_| in_place).and_then(|o| self.lock_reason(group, o));
        let was = self.groups[index].lock_reason.is_some();
        match (&reason, was) {
            (Some(_), false) => self.groups[index].locked_since = Some(self.now),
            (None, true) => self.groups[index].locked_since = None,
            _ => {}
        }
        // The owner announces a lock while it runs the group, whenever the lock began
        // (also when it became the owner of an already locked group by a takeover), and
        // the end of every lock it announced.
        let mine = owner == Some(self.me) && self.groups[index].state() == GroupState::Running;
        let name = self.group_name(group).to_string();
        match (&reason, self.groups[index].lock_announced) {
            (Some(why), false) if mine => {
                self.groups[index].lock_announced = true;
                self.event(
                    &catalogue::GROUP_LOCKED,
                    Some(group),
                    None,
                    Some(format!("group {name}")),
                    format!("{name} migration-locked: {why}"),
                );
            }
            (None, true) => {
                self.groups[index].lock_announced = false;
                if owner == Some(self.me) {
                    self.event(
                        &catalogue::GROUP_UNLOCKED,
                        Some(group),
                        None,
                        None,
                        format!("{name} unlocked"),
                    );
                }
            }
            _ => {}
        }
        self.groups[index].lock_reason = reason;
    }

    /// Probe every resource of every group this node may run (start-up, end of
    /// maintenance), and check the monitored interfaces.
    pub(super) fn start_probes(&mut self) {
        for index in 0..self.groups.len() {
            let group = GroupId(index as u32);
            if !self.is_member(group) {
                continue;
            }
            for r in 0..self.gspec(group).resources.len() {
                let resource = ResourceId(r as u16);
                if self.groups[index].resources[r].probe.is_some() {
                    continue;
                }
                if let Some((id, _)) = self.groups[index].resources[r].monitor.take() {
                    self.pending.remove(&id);
                }
                self.touch(group);
                let probe = self.issue(group, resource, OpKind::Probe);
                self.groups[index].resources[r].probe = Some(probe);
                self.groups[index].probes_pending += 1;
            }
        }
    }

    /// Ask the arbitrator about one group, with a deadline for the answer.
    fn group_lease_request(&mut self, group: GroupId, request: crate::io::LeaseRequest) -> OpId {
        let id = self.request_lease(request);
        let deadline = self.now + self.timing().lease_timeout * 2;
        self.groups[group.0 as usize].lease_deadline = Some((id, deadline));
        id
    }

    pub(super) fn on_operation(&mut self, id: OpId, result: OpResult) {
        let Some(Pending::Agent { group, resource, kind }) = self.pending.remove(&id) else {
            return;
        };
        self.touch(group);
        let monitor_only = self.gspec(group).resource(resource).kind.is_monitor_only();
        match kind {
            OpKind::Probe => self.on_probe(group, resource, result, monitor_only),
            OpKind::Monitor if monitor_only => {
                self.groups[group.0 as usize].resources[usize::from(resource.0)].monitor = None;
                self.on_nic(group, resource, result == OpResult::Ok);
            }
            OpKind::Monitor => self.on_monitor(group, resource, result),
            OpKind::Start => self.on_start(group, resource, result),
            OpKind::Stop => self.on_stop(group, resource, result),
        }
    }

    fn on_probe(
        &mut self,
        group: GroupId,
        resource: ResourceId,
        result: OpResult,
        monitor_only: bool,
    ) {
        let index = group.0 as usize;
        let r = usize::from(resource.0);
        self.groups[index].resources[r].probe = None;
        self.groups[index].probes_pending -= 1;
        if monitor_only {
            self.on_nic(group, resource, result == OpResult::Ok);
        } else {
            // A probe that times out leaves the state unknown: the resource is stopped
            // (and restarted under the lease), never trusted. An agent error means
            // "cannot run here", not "running".
            self.groups[index].probed[r] = match result {
                OpResult::Ok => Probed::Running,
                OpResult::Timeout => Probed::Unknown,
                OpResult::NotRunning | OpResult::Failed(_) | OpResult::InUse(_) => {
                    Probed::NotRunning
                }
            };
        }
        if self.groups[index].probes_pending == 0 {
            self.reconcile(group);
        }
    }

    /// After probing: adopt what runs here.
    fn reconcile(&mut self, group: GroupId) {
        let index = group.0 as usize;
        let runtime = &self.groups[index];
        let maybe: Vec<usize> = (0..runtime.len())
            .filter(|pos| {
                !runtime.monitor_only[*pos] && runtime.probed_at(*pos) != Probed::NotRunning
            })
            .collect();
        let Some(&last) = maybe.last() else {
            if runtime.lease.is_held() && runtime.goal > 0 && runtime.started > 0 {
                // Stopped behind our back during maintenance: stop what we had started
                // (each stop of a stopped resource is harmless), then start again.
                let first = runtime.order
                    [(0..runtime.len()).find(|p| !runtime.monitor_only[*p]).unwrap_or(0)];
                self.announce_probe_restart(group, first);
                let runtime = &mut self.groups[index];
                runtime.goal = 0;
                runtime.then_goal = Some(runtime.len());
            }
            return;
        };
        let top = last + 1;
        let n = runtime.len();
        let runtime = &mut self.groups[index];
        // Everything that may run is counted as started (so that it is stopped in
        // order); the restart begins at the first resource the probes did not confirm.
        runtime.started = runtime.started.max(top);
        let first_gap = runtime.first_unconfirmed(runtime.started);
        if let (true, Some(gap)) = (runtime.lease.is_held(), first_gap) {
            let resource = runtime.order[gap];
            self.announce_probe_restart(group, resource);
        }
        let runtime = &mut self.groups[index];
        if runtime.lease.is_held() {
            runtime.goal = n;
            if let Some(gap) = first_gap {
                runtime.goal = gap;
                runtime.then_goal = Some(n);
            }
        } else {
            runtime.goal = 0;
            runtime.reattach = true;
            let id = self.group_lease_request(group, crate::io::LeaseRequest::Acquire(group));
            self.groups[index].lease = GroupLease::Acquiring(id);
        }
    }

    /// Probes found resources of a group this node runs not running (they stopped while
    /// tandem was not acting on them): say so before restarting them. Not counted as a
    /// failure: the operator may have stopped them during maintenance.
    fn announce_probe_restart(&mut self, group: GroupId, resource: ResourceId) {
        let gname = self.group_name(group).to_string();
        let rname = self.gspec(group).resource(resource).name.clone();
        self.event(
            &catalogue::RESOURCE_FAILED,
            Some(group),
            Some(resource),
            Some(format!("resource {gname}/{rname} on {}", self.name(self.me))),
            format!("{gname}/{rname} found not running by its probe: restarting from it"),
        );
    }

    fn on_nic(&mut self, group: GroupId, resource: ResourceId, up: bool) {
        let index = group.0 as usize;
        let r = usize::from(resource.0);
        let interval = self.gspec(group).resource(resource).monitor_interval;
        let now = self.now;
        let res = &mut self.groups[index].resources[r];
        res.next_monitor_at = Some(now + interval);
        if res.nic_up == up {
            return;
        }
        res.nic_up = up;
        res.nic_down_since = if up { None } else { Some(now) };
        let rname = self.gspec(group).resource(resource).name.clone();
        let location = format!("{} on {}", rname, self.name(self.me));
        if up {
            self.event(
                &catalogue::NIC_UP,
                Some(group),
                Some(resource),
                Some(location),
                format!("{rname} up"),
            );
        } else {
            self.event(
                &catalogue::NIC_DOWN,
                Some(group),
                Some(resource),
                Some(location),
                format!("{rname} down: this node cannot serve {}", self.group_name(group)),
            );
        }
    }

    fn on_monitor(&mut self, group: GroupId, resource: ResourceId, result: OpResult) {
        let index = group.0 as usize;
        let r = usize::from(resource.0);
        let runtime = &mut self.groups[index];
        runtime.resources[r].monitor = None;
        let pos = runtime.pos_of[r];
        // A result counts while this node owns the group and the resource is among those
        // it started and is not operating on: also during a restart in place of a later
        // resource, so that an earlier failure is never ignored.
        let relevant = runtime.lease.is_held()
            && runtime.goal > 0
            && pos < runtime.started
            && runtime.op.is_none_or(|op| op.pos != pos);
        if !relevant || self.maintenance {
            return;
        }
        match result {
            OpResult::Ok => {
                let interval = self.gspec(group).resource(resource).monitor_interval;
                let steady = self.groups[index].steady();
                let res = &mut self.groups[index].resources[r];
                res.last_failed = false;
                if steady {
                    res.next_monitor_at = Some(self.now + interval);
                }
            }
            other => self.resource_failed(group, resource, OpKind::Monitor, other),
        }
    }

    fn on_start(&mut self, group: GroupId, resource: ResourceId, result: OpResult) {
        let index = group.0 as usize;
        let Some(op) = self.groups[index].op.take() else { return };
        match result {
            OpResult::Ok => {
                self.groups[index].started = op.pos + 1;
                let res = &mut self.groups[index].resources[usize::from(resource.0)];
                res.last_failed = false;
                res.in_use_since = None;
            }
            OpResult::InUse(why) => {
                // It may be half started: count it as started so that it is stopped.
                self.groups[index].started = op.pos + 1;
                self.resource_in_use(group, resource, why);
            }
            other => {
                // It may be half started: count it as started so that it is stopped.
                self.groups[index].started = op.pos + 1;
                self.resource_failed(group, resource, OpKind::Start, other);
            }
        }
    }

    fn on_stop(&mut self, group: GroupId, resource: ResourceId, result: OpResult) {
        let index = group.0 as usize;
        let Some(op) = self.groups[index].op.take() else { return };
        match result {
            OpResult::Ok | OpResult::NotRunning => {
                self.groups[index].started = op.pos;
            }
            OpResult::Failed(detail) | OpResult::InUse(detail) => {
                self.stop_failed(group, resource, detail)
            }
            OpResult::Timeout => self.stop_failed(group, resource, "timed out".to_string()),
        }
    }

    /// A start found what it takes held elsewhere: no failure. What was started of the
    /// group stays; the resource is stopped (it may be half started) and started again
    /// every two heartbeat intervals until it is free; said once per streak (W4124).
    fn resource_in_use(&mut self, group: GroupId, resource: ResourceId, why: String) {
        let index = group.0 as usize;
        let r = usize::from(resource.0);
        let now = self.now;
        let n = self.gspec(group).resources.len();
        if self.groups[index].resources[r].in_use_since.is_none() {
            self.groups[index].resources[r].in_use_since = Some(now);
            let gname = self.group_name(group).to_string();
            let rname = self.gspec(group).resource(resource).name.clone();
            self.event(
                &catalogue::RESOURCE_IN_USE,
                Some(group),
                Some(resource),
                Some(format!("resource {gname}/{rname} on {}", self.name(self.me))),
                format!(
                    "{gname}/{rname} is still held elsewhere ({why}); its start is retried, \
                     no failure is counted"
                ),
            );
        }
        let pos = self.groups[index].pos_of[r];
        self.cancel_monitors_from(group, pos);
        let pace = self.timing().heartbeat_interval * 2;
        let runtime = &mut self.groups[index];
        if runtime.goal > 0 {
            runtime.goal = runtime.goal.min(pos);
            runtime.then_goal = Some(n);
            runtime.restart_at = Some(now + pace);
        }
    }

    fn stop_failed(&mut self, group: GroupId, resource: ResourceId, detail: String) {
        let index = group.0 as usize;
        self.groups[index].failed = true;
        let gname = self.group_name(group).to_string();
        let rname = self.gspec(group).resource(resource).name.clone();
        self.event(
            &catalogue::RESOURCE_STOP_FAILED,
            Some(group),
            Some(resource),
            Some(format!("resource {gname}/{rname} on {}", self.name(self.me))),
            format!("{gname}/{rname} failed to stop ({detail})"),
        );
        self.self_fence(format!("{gname}/{rname} could not be stopped"));
    }

    /// A start or monitor failed: count it, restart in place (placement moves the group
    /// when the count reaches the threshold).
    fn resource_failed(
        &mut self,
        group: GroupId,
        resource: ResourceId,
        op: OpKind,
        result: OpResult,
    ) {
        let index = group.0 as usize;
        let r = usize::from(resource.0);
        let now = self.now;
        let spec = self.gspec(group);
        let threshold = spec.migration_threshold;
        let failure_timeout = spec.failure_timeout;
        let n = spec.resources.len();
        let rname = spec.resource(resource).name.clone();
        let gname = spec.name.clone();
        {
            let res = &mut self.groups[index].resources[r];
            res.last_failed = true;
            res.failures.push(now);
            if res.failures.len() > FAILURES_KEPT_MAX {
                res.failures.remove(0);
            }
        }
        let count = self.groups[index].fail_count(resource, now, failure_timeout);
        let detail = match &result {
            OpResult::Failed(why) => why.clone(),
            OpResult::NotRunning => "not running".to_string(),
            OpResult::Timeout => "timed out".to_string(),
            OpResult::Ok => "ok".to_string(),
            OpResult::InUse(why) => format!("held elsewhere: {why}"),
        };
        let code = match (op, &result) {
            (_, OpResult::Timeout) => &catalogue::OPERATION_TIMEOUT,
            (OpKind::Start, _) => &catalogue::RESOURCE_START_FAILED,
            _ => &catalogue::RESOURCE_FAILED,
        };
        let what = if op == OpKind::Start { "start" } else { "monitor" };
        self.event(
            code,
            Some(group),
            Some(resource),
            Some(format!("resource {gname}/{rname} on {}", self.name(self.me))),
            format!("{gname}/{rname} {what} failed ({detail}); failure {count} of {threshold}"),
        );
        let pos = self.groups[index].pos_of[r];
        self.cancel_monitors_from(group, pos);
        let interval = self.gspec(group).resource(resource).monitor_interval;
        let runtime = &mut self.groups[index];
        if runtime.goal > 0 {
            runtime.goal = runtime.goal.min(pos);
            runtime.then_goal = Some(n);
            // Beyond the threshold the group should move; if it cannot, the restart in
            // place is paced by the monitor interval.
            runtime.restart_at = (count >= threshold).then(|| now + interval);
        }
    }

    /// Deadlines of operations, monitors, expiries and retries.
    pub(super) fn group_timers(&mut self) {
        let now = self.now;
        // Monitors go with heartbeat ticks, so that the shell wakes once for both: at a
        // tick, a monitor due before the one after next goes now (up to one and a half
        // intervals early: a resource is only checked more often). Its next one is due
        // an interval after its result, so it stays on the ticks. A monitor not taken
        // by a tick (none came while it was due) goes when due, as before.
        let interval = self.timing().heartbeat_interval;
        let monitor_horizon =
            if now >= self.next_heartbeat_at { now + interval + interval / 2 } else { now };
        for index in 0..self.groups.len() {
            let due = self.groups[index].cached_deadline;
            if due > monitor_horizon {
                continue;
            }
            let group = GroupId(index as u32);
            if due > now {
                self.monitors_ahead(group, monitor_horizon);
                continue;
            }
            self.touch(group);
            if let Some(op) = self.groups[index].op {
                if now >= op.deadline {
                    self.on_operation(op.id, OpResult::Timeout);
                }
            }
            if let Some((id, deadline)) = self.groups[index].lease_deadline {
                if now >= deadline {
                    self.groups[index].lease_deadline = None;
                    // The arbitrator may still grant an acquire we stop waiting for: owe
                    // it a release, or our renewals would keep the group ours unused.
                    if matches!(
                        self.pending.get(&id),
                        Some(super::Pending::Lease(crate::io::LeaseRequest::Acquire(_)))
                    ) {
                        self.groups[index].release_owed = true;
                    }
                    let why = "no answer from the arbitrator".to_string();
                    self.on_lease(id, crate::io::LeaseResult::Unavailable(why));
                }
            }
            for r in 0..self.groups[index].resources.len() {
                let res = &self.groups[index].resources[r];
                if let Some((id, deadline)) = res.probe.or(res.monitor) {
                    if now >= deadline {
                        self.on_operation(id, OpResult::Timeout);
                        continue;
                    }
                }
                self.monitor_if_due(group, r, monitor_horizon);
            }
            self.expire_failures(group);
            let runtime = &mut self.groups[index];
            if runtime.restart_at.is_some_and(|t| now >= t) {
                runtime.restart_at = None;
            }
            if runtime.retry_at.is_some_and(|t| now >= t) {
                runtime.retry_at = None;
            }
            if runtime.handoff_until.is_some_and(|t| now >= t) {
                runtime.handoff_until = None;
                runtime.handoff_to = None;
            }
        }
    }

    /// Monitors of `group` due by `horizon` (a heartbeat tick's), before the group's
    /// own deadline: nothing else of the group is due yet.
    fn monitors_ahead(&mut self, group: GroupId, horizon: Instant) {
        for r in 0..self.groups[group.0 as usize].resources.len() {
            if self.monitor_if_due(group, r, horizon) {
                self.touch(group);
            }
        }
    }

    /// Issues resource `r`'s monitor if it is due by `horizon` and none (nor a probe) is
    /// in flight (in maintenance, or while the group is not steady, the monitor is
    /// dropped instead, as when it falls due); whether anything changed.
    fn monitor_if_due(&mut self, group: GroupId, r: usize, horizon: Instant) -> bool {
        let index = group.0 as usize;
        let res = &self.groups[index].resources[r];
        if res.monitor.is_some()
            || res.probe.is_some()
            || res.next_monitor_at.is_none_or(|t| horizon < t)
        {
            return false;
        }
        self.groups[index].resources[r].next_monitor_at = None;
        let resource = ResourceId(r as u16);
        let monitor_only = self.gspec(group).resource(resource).kind.is_monitor_only();
        if self.maintenance || (!monitor_only && !self.groups[index].steady()) {
            return true;
        }
        let op = self.issue(group, resource, OpKind::Monitor);
        self.groups[index].resources[r].monitor = Some(op);
        true
    }

    fn expire_failures(&mut self, group: GroupId) {
        let index = group.0 as usize;
        let spec = self.gspec(group);
        let timeout = spec.failure_timeout;
        let threshold = spec.migration_threshold;
        let now = self.now;
        for r in 0..self.groups[index].resources.len() {
            let failures = &self.groups[index].resources[r].failures;
            let expired = failures.iter().take_while(|t| now >= **t + timeout).count();
            if expired == 0 {
                continue;
            }
            let before = failures.len() as u32;
            self.groups[index].resources[r].failures.drain(..expired);
            let after = self.groups[index].resources[r].failures.len() as u32;
            if after == 0 {
                self.groups[index].resources[r].last_failed = false;
            }
            let rname = self.gspec(group).resources[r].name.clone();
            let gname = self.group_name(group).to_string();
            let note =
                if before >= threshold && after < threshold { "; eligible again" } else { "" };
            self.event(
                &catalogue::FAILURES_EXPIRED,
                Some(group),
                Some(ResourceId(r as u16)),
                None,
                format!(
                    "{gname}/{rname}: {expired} failure(s) older than {} forgotten{note}",
                    ms(timeout)
                ),
            );
        }
    }

    /// Acquire/release answers for one group.
    pub(super) fn clear_lease_deadline(&mut self, group: GroupId, id: OpId) {
        let runtime = &mut self.groups[group.0 as usize];
        if runtime.lease_deadline.is_some_and(|(pending, _)| pending == id) {
            runtime.lease_deadline = None;
        }
    }

    pub(super) fn on_acquire_result(
        &mut self,
        group: GroupId,
        id: OpId,
        result: crate::io::LeaseResult,
    ) {
        use crate::io::LeaseResult;
        let index = group.0 as usize;
        if self.groups[index].lease != GroupLease::Acquiring(id) {
            return;
        }
        self.touch(group);
        let name = self.group_name(group).to_string();
        let reattach = self.groups[index].reattach;
        match result {
            LeaseResult::Granted { since } => {
                self.extend_lease(since);
                let n = self.groups[index].len();
                let runtime = &mut self.groups[index];
                runtime.lease = GroupLease::Held;
                runtime.reattach = false;
                runtime.failed = false;
                runtime.announced_denied = false;
                runtime.handoff_to = None;
                runtime.handoff_until = None;
                self.event(
                    &catalogue::LEASE_ACQUIRED,
                    Some(group),
                    None,
                    None,
                    format!("lease of {name} acquired"),
                );
                if self.admin.switchover[index].value.is_some() {
                    self.write_switchover(group, None);
                }
                if reattach {
                    let runtime = &mut self.groups[index];
                    let first_gap = runtime.first_unconfirmed(runtime.started);
                    runtime.goal = n;
                    if let Some(gap) = first_gap {
                        runtime.goal = gap;
                        runtime.then_goal = Some(n);
                    }
                    let found = runtime.probed.iter().filter(|p| **p == Probed::Running).count();
                    let managed = runtime.monitor_only.iter().filter(|m| !**m).count();
                    let gap_resource = first_gap.map(|gap| runtime.order[gap]);
                    let text = match gap_resource {
                        None => format!("{name}: all {managed} resources found running; kept"),
                        Some(resource) => {
                            let from = &self.gspec(group).resource(resource).name;
                            format!(
                                "{name}: {found} of {managed} resources found running; kept, restarting from {from}"
                            )
                        }
                    };
                    self.event(&catalogue::REATTACHED, Some(group), None, None, text);
                } else {
                    self.groups[index].goal = n;
                    if let Some(previous) = self.groups[index].last_owner.take() {
                        if let Some(why) = self.failed_owner(previous, group) {
                            self.event(
                                &catalogue::FAILOVER,
                                Some(group),
                                None,
                                Some(format!("node {}", self.name(previous))),
                                format!("taking over {name} from {} ({why})", self.name(previous)),
                            );
                        }
                    }
                    self.event(
                        &catalogue::GROUP_STARTING,
                        Some(group),
                        None,
                        None,
                        format!("starting {name}"),
                    );
                    self.groups[index].announced = GroupState::Starting;
                }
            }
            LeaseResult::Denied { holder } => {
                let holder = holder.map(|h| self.name(h).to_string());
                self.lease_refused(group, reattach, holder, None);
            }
            LeaseResult::Unavailable(why) => {
                self.lease.unavailable = true;
                self.lease_refused(group, reattach, None, Some(why));
            }
            other => self.lease_refused(
                group,
                reattach,
                None,
                Some(format!("unexpected answer {other:?}")),
            ),
        }
    }

    fn lease_refused(
        &mut self,
        group: GroupId,
        reattach: bool,
        holder: Option<String>,
        error: Option<String>,
    ) {
        let index = group.0 as usize;
        let name = self.group_name(group).to_string();
        let retry = self.timing().lease_renew_interval();
        let runtime = &mut self.groups[index];
        runtime.lease = GroupLease::None;
        runtime.retry_at = Some(self.now + retry);
        if reattach {
            runtime.reattach = false;
            runtime.goal = 0;
            self.event(
                &catalogue::RESOURCE_FOUND_RUNNING,
                Some(group),
                None,
                None,
                format!("{name} found running here without its lease: stopping it"),
            );
            return;
        }
        if runtime.announced_denied {
            return;
        }
        runtime.announced_denied = true;
        match error {
            Some(why) => self.event(
                &catalogue::LEASE_UNAVAILABLE,
                Some(group),
                None,
                None,
                format!("lease of {name} not available: {why}"),
            ),
            None => self.event(
                &catalogue::LEASE_DENIED,
                Some(group),
                None,
                None,
                format!(
                    "lease of {name} is held by {}",
                    holder.unwrap_or_else(|| "another node".into())
                ),
            ),
        }
    }

    pub(super) fn on_release_result(
        &mut self,
        group: GroupId,
        id: OpId,
        result: crate::io::LeaseResult,
    ) {
        let index = group.0 as usize;
        if self.groups[index].owed_release == Some(id) {
            self.touch(group);
            let retry = self.timing().lease_renew_interval();
            let runtime = &mut self.groups[index];
            runtime.owed_release = None;
            match result {
                crate::io::LeaseResult::Unavailable(_) => runtime.retry_at = Some(self.now + retry),
                _ => runtime.release_owed = false,
            }
            return;
        }
        if self.groups[index].lease != GroupLease::Releasing(id) {
            return;
        }
        self.touch(group);
        match result {
            crate::io::LeaseResult::Released => {
                let hold = self.timing().lease_takeover_wait() + self.timing().peer_timeout * 2;
                let runtime = &mut self.groups[index];
                runtime.lease = GroupLease::None;
                if runtime.handoff_to.is_some() {
                    runtime.handoff_until = Some(self.now + hold);
                }
                let name = self.group_name(group).to_string();
                self.event(
                    &catalogue::LEASE_RELEASED,
                    Some(group),
                    None,
                    None,
                    format!("lease of {name} released"),
                );
            }
            _ => {
                // Nothing runs here any more: report the group stopped (so that its next
                // node starts waiting out the lease now, not when it expires here) and
                // owe the release, retried until the arbitrator answers.
                let retry = self.timing().lease_renew_interval();
                let runtime = &mut self.groups[index];
                runtime.lease = GroupLease::None;
                runtime.release_owed = true;
                runtime.retry_at = Some(self.now + retry);
            }
        }
    }

    pub(super) fn write_switchover(
        &mut self,
        group: GroupId,
        value: Option<crate::io::SwitchoverRequest>,
    ) {
        let stamp = self.next_stamp();
        self.admin.switchover[group.0 as usize] = Lww { value, stamp };
        self.touch(group);
    }
}
