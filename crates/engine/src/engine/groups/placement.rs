//! Placement: which node should run each group, decided by each node for itself.
//!
//! Eligibility (this node's and, from their reports, the peers'), the owner as this node
//! sees it, the designated node for a group nobody runs (a hand-over offer, a switch-over
//! target, else the first eligible node of the list), and the owner's reasons to give a
//! group away (ineligible, switch-over, failback, a healed split brain) — only to a node
//! that can take it, else the group is migration-locked (`track_lock`). It decides; the
//! life cycle (lifecycle.rs) carries the decision out. A group found stuck (no node can
//! run it, or its owner cannot move) is recorded in `Group::stuck`, and told from its
//! change (`announce_stuck`), not from inside the decision.

use super::Stuck;
use crate::catalogue;
use crate::engine::lease::GroupLease;
use crate::engine::Engine;
use crate::io::{GroupState, Ineligible, Lww};
use crate::spec::{Failback, GroupId, NodeId, ResourceId};

impl Engine {
    /// Why this node may not run the group now.
    pub(in crate::engine) fn local_ineligible(&self, group: GroupId) -> Option<Ineligible> {
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
    pub(in crate::engine) fn node_ineligible(
        &self,
        node: NodeId,
        group: GroupId,
    ) -> Result<(), String> {
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
    pub(super) fn failed_owner(&self, previous: NodeId, group: GroupId) -> Option<String> {
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
    pub(in crate::engine) fn owner(&self, group: GroupId) -> Option<NodeId> {
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
    pub(in crate::engine) fn lock_reason(&self, group: GroupId, owner: NodeId) -> Option<String> {
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

    pub(super) fn decide(&mut self, group: GroupId) {
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
            self.groups[index].stuck = Stuck::No;
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
            Some(_) => self.groups[index].stuck = Stuck::No,
            None if self.speaks_for(group) => self.groups[index].stuck = Stuck::NoNode,
            None => {} // another node says so, or a node boots that may yet run it
        }
    }

    /// This node is the one that tells the cluster about the group: the first alive
    /// member of its list, with no other member booting.
    fn speaks_for(&self, group: GroupId) -> bool {
        let spec = self.gspec(group);
        let first_alive = spec.nodes.iter().copied().find(|n| self.peer_alive(*n));
        let anyone_booting = spec.nodes.iter().any(|n| *n != self.me && self.peer_booting(*n));
        first_alive == Some(self.me) && !anyone_booting
    }

    /// Tells the change of `Group::stuck` that the last decision made: the event of the
    /// state it entered (leaving a stuck state is told by what follows: a start, a move).
    pub(super) fn announce_stuck(&mut self, group: GroupId) {
        let name = self.group_name(group).to_string();
        match self.groups[group.0 as usize].stuck {
            Stuck::No => {}
            Stuck::NoNode => {
                let reasons: Vec<String> = self
                    .gspec(group)
                    .nodes
                    .iter()
                    .filter_map(|n| {
                        let why = self.node_ineligible(*n, group).err()?;
                        Some(format!("{} {why}", self.name(*n)))
                    })
                    .collect();
                self.event(
                    &catalogue::GROUP_NO_NODE,
                    Some(group),
                    None,
                    Some(format!("group {name}")),
                    format!("no node can run {name}: {}", reasons.join(", ")),
                );
            }
            Stuck::CannotMove => {
                let why = self.local_ineligible(group).map(|why| why.as_str()).unwrap_or_default();
                let lock = self.lock_reason(group, self.me).unwrap_or_default();
                self.event(
                    &catalogue::MIGRATION_BLOCKED,
                    Some(group),
                    None,
                    None,
                    format!(
                        "{name} should leave this node ({why} on this node) but cannot move: {lock}"
                    ),
                );
            }
        }
    }

    /// A split brain healed (possible only without arbitration): the peer earlier in
    /// the group's list that runs it too, holding its lease, to which this owner gives
    /// way.
    fn gives_way_to(&self, group: GroupId) -> Option<NodeId> {
        let peer = self.active_peer(group)?;
        let peer_holds = self.peers[usize::from(peer.0)]
            .live_report()
            .and_then(|r| r.groups.get(group.0 as usize))
            .is_some_and(|g| g.holds_lease && g.state.is_active());
        let nodes = &self.gspec(group).nodes;
        let rank = |node: NodeId| nodes.iter().position(|n| *n == node);
        (peer_holds && rank(peer) < rank(self.me)).then_some(peer)
    }

    fn decide_as_owner(&mut self, group: GroupId) {
        let index = group.0 as usize;
        let all = self.spec.clone();
        let spec = all.group(group);
        if let Some(peer) = self.gives_way_to(group) {
            self.begin_stop(group, format!("{} runs it too", self.name(peer)), None);
            return;
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
            self.groups[index].stuck = Stuck::No;
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
                self.groups[index].stuck = Stuck::No;
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
            // Only a reason of this node's own is left: a switch-over is refused above
            // and a failback always has its target.
            None => self.groups[index].stuck = Stuck::CannotMove,
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

    /// Lock state changes, announced by the owner.
    pub(super) fn track_lock(&mut self, group: GroupId) {
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

    pub(in crate::engine) fn write_switchover(
        &mut self,
        group: GroupId,
        value: Option<crate::io::SwitchoverRequest>,
    ) {
        let stamp = self.next_stamp();
        self.admin.switchover[group.0 as usize] = Lww { value, stamp };
        self.touch(group);
    }
}
