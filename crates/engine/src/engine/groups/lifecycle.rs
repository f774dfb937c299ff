//! Life cycle: stepping a group towards its goal, and its lease.
//!
//! `drive` issues at most one start or stop at a time (a prefix of the start order up,
//! exact reverse down), only under a held, usable lease; a group all down gives its lease
//! back, one all up is announced running and monitored. Also the group's lease requests
//! and their answers (a grant starts the group or re-attaches what the probes found), and
//! the reconciliation after probes (adopt what runs here, restart from the first resource
//! the probes did not confirm).

use super::{GroupOp, Probed};
use crate::catalogue;
use crate::engine::lease::GroupLease;
use crate::engine::Engine;
use crate::io::{GroupState, OpId, OpKind};
use crate::spec::{GroupId, NodeId, ResourceId};

impl Engine {
    /// Start stopping the group (reverse order); hand it to `handoff` afterwards.
    pub(in crate::engine) fn begin_stop(
        &mut self,
        group: GroupId,
        reason: String,
        handoff: Option<NodeId>,
    ) {
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
    pub(super) fn cancel_monitors_from(&mut self, group: GroupId, from: usize) {
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

    /// Step the group towards its goal: at most one start or stop in flight.
    pub(super) fn drive(&mut self, group: GroupId) {
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

    /// Probe every resource of every group this node may run (start-up, end of
    /// maintenance), and check the monitored interfaces.
    pub(in crate::engine) fn start_probes(&mut self) {
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
    pub(super) fn group_lease_request(
        &mut self,
        group: GroupId,
        request: crate::io::LeaseRequest,
    ) -> OpId {
        let id = self.request_lease(request);
        let deadline = self.now + self.timing().lease_timeout * 2;
        self.groups[group.0 as usize].lease_deadline = Some((id, deadline));
        id
    }

    /// After probing: adopt what runs here.
    pub(super) fn reconcile(&mut self, group: GroupId) {
        let index = group.0 as usize;
        let runtime = &self.groups[index];
        let maybe: Vec<usize> = (0..runtime.len())
            .filter(|pos| {
                !runtime.monitor_only[*pos] && runtime.probed_at(*pos) != Probed::NotRunning
            })
            .collect();
        let parked_before = std::mem::take(&mut self.groups[index].parked_before);
        let runtime = &self.groups[index];
        let Some(&last) = maybe.last() else {
            if parked_before && !runtime.lease.is_held() {
                // Parked by this node's previous run, and nothing of it runs: give the
                // lease back, so that another node may take the group (placement).
                self.groups[index].release_owed = true;
                self.touch(group);
                return;
            }
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
        self.resource_event(&catalogue::RESOURCE_FAILED, group, resource, |path| {
            format!("{path} found not running by its probe: restarting from it")
        });
    }

    /// Acquire/release answers for one group.
    pub(in crate::engine) fn clear_lease_deadline(&mut self, group: GroupId, id: OpId) {
        let runtime = &mut self.groups[group.0 as usize];
        if runtime.lease_deadline.is_some_and(|(pending, _)| pending == id) {
            runtime.lease_deadline = None;
        }
    }

    pub(in crate::engine) fn on_acquire_result(
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
                    self.reattached(group);
                } else {
                    self.start_granted(group);
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

    /// The lease of a group found running here (restart, end of maintenance) is ours:
    /// keep what the probes confirmed, restart from the first resource they did not.
    fn reattached(&mut self, group: GroupId) {
        let name = self.group_name(group).to_string();
        let runtime = &mut self.groups[group.0 as usize];
        let n = runtime.len();
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
    }

    /// The lease of a group nobody runs is ours: start it (a takeover from a node that
    /// lost it by a fault is said so).
    fn start_granted(&mut self, group: GroupId) {
        let index = group.0 as usize;
        let name = self.group_name(group).to_string();
        self.groups[index].goal = self.groups[index].len();
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
        self.event(&catalogue::GROUP_STARTING, Some(group), None, None, format!("starting {name}"));
        self.groups[index].announced = GroupState::Starting;
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

    pub(in crate::engine) fn on_release_result(
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
}
