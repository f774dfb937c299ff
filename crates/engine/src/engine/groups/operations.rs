//! Operations: agent operations issued for a group and what their results mean.
//!
//! Start, stop, monitor and probe results: a failed start or monitor is counted and
//! restarts the group in place from that resource (placement moves the group once the
//! count reaches `migration_threshold`); a start refused because the resource is held
//! elsewhere is retried without counting; a stop that fails fences the node;
//! monitor-only (`nic`) resources report their interface up or down.

use super::{Probed, FAILURES_KEPT_MAX};
use crate::catalogue;
use crate::engine::{Engine, Pending};
use crate::io::{OpId, OpKind, OpResult, Output};
use crate::spec::{GroupId, ResourceId};
use crate::time::Instant;

impl Engine {
    pub(super) fn issue(
        &mut self,
        group: GroupId,
        resource: ResourceId,
        kind: OpKind,
    ) -> (OpId, Instant) {
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

    pub(in crate::engine) fn on_operation(&mut self, id: OpId, result: OpResult) {
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
        if self.groups[index].resources[r].in_use_since.is_none() {
            self.groups[index].resources[r].in_use_since = Some(now);
            self.resource_event(&catalogue::RESOURCE_IN_USE, group, resource, |path| {
                format!(
                    "{path} is still held elsewhere ({why}); its start is retried, no failure \
                     is counted"
                )
            });
        }
        let pace = self.timing().heartbeat_interval * 2;
        self.restart_in_place_from(group, resource, Some(now + pace));
    }

    /// Restarts the group in place from `resource` (it and those after it stop, then
    /// all start again), not before `restart_at`; nothing while the group is stopping.
    fn restart_in_place_from(
        &mut self,
        group: GroupId,
        resource: ResourceId,
        restart_at: Option<Instant>,
    ) {
        let index = group.0 as usize;
        let pos = self.groups[index].pos_of[usize::from(resource.0)];
        self.cancel_monitors_from(group, pos);
        let runtime = &mut self.groups[index];
        if runtime.goal > 0 {
            runtime.goal = runtime.goal.min(pos);
            runtime.then_goal = Some(runtime.len());
            runtime.restart_at = restart_at;
        }
    }

    /// An event about a resource of a group on this node, located as such; `text` is
    /// given the resource's path (`group/resource`).
    pub(super) fn resource_event(
        &mut self,
        code: &'static catalogue::CodeInfo,
        group: GroupId,
        resource: ResourceId,
        text: impl FnOnce(&str) -> String,
    ) {
        let path =
            format!("{}/{}", self.group_name(group), self.gspec(group).resource(resource).name);
        let location = format!("resource {path} on {}", self.name(self.me));
        let message = text(&path);
        self.event(code, Some(group), Some(resource), Some(location), message);
    }

    fn stop_failed(&mut self, group: GroupId, resource: ResourceId, detail: String) {
        self.groups[group.0 as usize].failed = true;
        let mut what = String::new();
        self.resource_event(&catalogue::RESOURCE_STOP_FAILED, group, resource, |path| {
            what = format!("{path} could not be stopped");
            format!("{path} failed to stop ({detail})")
        });
        self.self_fence(what);
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
        self.resource_event(code, group, resource, |path| {
            format!("{path} {what} failed ({detail}); failure {count} of {threshold}")
        });
        // Beyond the threshold the group should move; if it cannot, the restart in place
        // is paced by the monitor interval.
        let interval = self.gspec(group).resource(resource).monitor_interval;
        self.restart_in_place_from(group, resource, (count >= threshold).then(|| now + interval));
    }
}
