//! Timers: what falls due for each group at `now`.
//!
//! Operations, probes and lease answers that outlived their deadline become timeouts;
//! monitors fall due (taken early at a heartbeat tick so that the shell wakes once for
//! both); failures older than `failure_timeout` are forgotten; retry, restart and
//! hand-over waits end. Only groups whose cached deadline has come are looked at.

use crate::catalogue;
use crate::engine::{ms, Engine};
use crate::io::{OpKind, OpResult};
use crate::spec::{GroupId, ResourceId};
use crate::time::Instant;

impl Engine {
    /// Deadlines of operations, monitors, expiries and retries.
    pub(in crate::engine) fn group_timers(&mut self) {
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
}
