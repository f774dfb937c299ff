//! Leases as their holder sees them. The arbitrator (disk, witness or none) lives in the
//! shell; the engine only asks ([`LeaseRequest`]) and hears results ([`LeaseResult`]).
//!
//! The holder's arithmetic, all on its own clock: a lease granted or renewed by a write
//! issued at `since` is valid until `since + lease_timeout`. Renewal runs every
//! `lease_renew_interval`, on the heartbeat tick nearest before that (or just after:
//! a tenth of an interval late at most) so that both go together. When less than
//! `lease_stop_budget` is left, the node stops its groups (E3105); if anything still
//! runs when the lease expires, it fences itself (E3106). The arbitrator waits `lease_takeover_wait` (longer than `lease_timeout`
//! under the worst clock drift) before granting to anyone else, so the holder is always
//! down first. The fence guard is armed a little after the stop point, so that a daemon
//! that died or whose loop stopped is covered (`update_fence`).

use std::time::Duration;

use super::{Engine, Pending};
use crate::catalogue;
use crate::io::{LeaseRequest, LeaseResult, OpId, Output};
use crate::spec::GroupId;
use crate::time::Instant;

#[derive(Default)]
pub(super) struct HostLease {
    /// Until when this node's leases are valid, on its own clock.
    pub(super) valid_until: Option<Instant>,
    /// The renewal in flight and when it was issued.
    renew: Option<(OpId, Instant)>,
    pub(super) last_renew_issued: Option<Instant>,
    /// Renewals are failing (announced once per streak).
    renew_failing: bool,
    /// The arbitrator answered `Unavailable` to the last request.
    pub(super) unavailable: bool,
    /// Stopping every group because the lease can no longer be renewed.
    pub(super) expiring: bool,
    /// Leaving in maintenance: the last renewal granted parked the leases held
    /// (`LeaseRequest::Park`).
    pub(super) parked: bool,
}

/// One group's lease, as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GroupLease {
    None,
    Acquiring(OpId),
    Held,
    Releasing(OpId),
}

impl GroupLease {
    pub(crate) fn is_held(self) -> bool {
        matches!(self, GroupLease::Held | GroupLease::Releasing(_))
    }
}

impl Engine {
    pub(super) fn request_lease(&mut self, request: LeaseRequest) -> OpId {
        let id = self.new_op(Pending::Lease(request));
        self.push(Output::Lease { id, request });
        id
    }

    /// Whether the lease leaves enough time to start something now.
    pub(super) fn lease_usable(&self) -> bool {
        let budget = self.timing().lease_stop_budget();
        !self.lease.expiring
            && self.lease.valid_until.is_some_and(|until| self.now + budget < until)
    }

    pub(super) fn holds_any(&self) -> bool {
        self.groups.iter().any(|g| g.lease.is_held())
    }

    fn acquiring_any(&self) -> bool {
        self.groups.iter().any(|g| matches!(g.lease, GroupLease::Acquiring(_)))
    }

    fn anything_started(&self) -> bool {
        self.groups.iter().any(|g| g.may_run())
    }

    pub(super) fn on_lease(&mut self, id: OpId, result: LeaseResult) {
        let Some(Pending::Lease(request)) = self.pending.remove(&id) else {
            return;
        };
        match request {
            LeaseRequest::Renew | LeaseRequest::Park => {
                if matches!(result, LeaseResult::Granted { .. }) {
                    self.lease.parked = request == LeaseRequest::Park;
                }
                self.on_renew_result(id, result);
            }
            LeaseRequest::Acquire(group) => {
                self.clear_lease_deadline(group, id);
                self.on_acquire_result(group, id, result)
            }
            LeaseRequest::Release(group) => {
                self.clear_lease_deadline(group, id);
                self.on_release_result(group, id, result)
            }
        }
    }

    pub(super) fn extend_lease(&mut self, since: Instant) {
        let was_usable = self.lease_usable();
        let was_unavailable = self.lease.unavailable;
        // A result claiming a write issued in the future is a shell bug: clamp it.
        let since = since.min(self.now);
        let until = since + self.timing().lease_timeout;
        self.lease.valid_until = Some(self.lease.valid_until.map_or(until, |u| u.max(until)));
        self.lease.unavailable = false;
        if self.lease.expiring && self.lease_usable_ignoring_expiry() {
            self.lease.expiring = false;
        }
        if was_usable != self.lease_usable() || was_unavailable {
            self.touch_all(); // groups waiting to start, eligibility
        }
        // The guard follows every renewal: it acts at its deadline even while this
        // daemon runs.
        self.update_fence();
    }

    fn lease_usable_ignoring_expiry(&self) -> bool {
        let budget = self.timing().lease_stop_budget();
        self.lease.valid_until.is_some_and(|until| self.now + budget < until)
    }

    fn on_renew_result(&mut self, id: OpId, result: LeaseResult) {
        if self.lease.renew.is_some_and(|(pending, _)| pending == id) {
            self.lease.renew = None;
        }
        match result {
            LeaseResult::Granted { since } => {
                // A renewal covers the groups held; holding none, it proves only that
                // the arbitrator is reachable.
                if self.holds_any() {
                    self.extend_lease(since);
                } else if self.lease.unavailable {
                    self.lease.unavailable = false;
                    self.touch_all();
                }
                self.lease.renew_failing = false;
            }
            LeaseResult::Lost { groups } => {
                for group in groups {
                    self.lease_lost(group);
                }
            }
            LeaseResult::Denied { .. } | LeaseResult::Released | LeaseResult::Unavailable(_) => {
                let detail = match result {
                    LeaseResult::Unavailable(why) => {
                        // An owner whose lease still has time retries at the next
                        // renewal instead of giving its groups away at the first failed
                        // I/O (a slow disk under load); it stops them before the lease
                        // runs out if renewals keep failing (E3105).
                        let owner_can_wait = self.holds_any() && self.lease_usable();
                        if !owner_can_wait {
                            if !self.lease.unavailable {
                                self.touch_all();
                            }
                            self.lease.unavailable = true;
                        }
                        why
                    }
                    other => format!("unexpected answer {other:?}"),
                };
                if !self.lease.renew_failing {
                    self.lease.renew_failing = true;
                    if self.holds_any() {
                        let left = self
                            .lease
                            .valid_until
                            .map(|u| u.saturating_since(self.now))
                            .unwrap_or_default();
                        self.event(
                            &catalogue::LEASE_RENEW_FAILED,
                            None,
                            None,
                            None,
                            format!(
                                "lease renewal failed ({detail}); valid for {} more",
                                super::ms(left)
                            ),
                        );
                    } else {
                        self.event(
                            &catalogue::LEASE_UNAVAILABLE,
                            None,
                            None,
                            None,
                            format!(
                                "arbitrator unreachable ({detail}): this node cannot take groups"
                            ),
                        );
                    }
                }
            }
        }
    }

    /// Whether this node's leases are to be parked: it leaves in maintenance (its
    /// resources stay running) holding leases. Its daemon exits once they are
    /// (`is_quiescent`), its fence guard disarmed; without the park the leases would run
    /// out while the resources run on, and another node would take the groups once
    /// maintenance ends, or at once if it never heard of it (S1; the simulator found it).
    pub(super) fn parking(&self) -> bool {
        self.leaving && self.maintenance && self.holds_any()
    }

    /// The arbitrator gave one of our groups to another node: stop it at once.
    fn lease_lost(&mut self, group: GroupId) {
        let index = group.0 as usize;
        if index >= self.groups.len() || !self.groups[index].lease.is_held() {
            return;
        }
        self.groups[index].lease = GroupLease::None;
        let name = self.group_name(group).to_string();
        self.event(
            &catalogue::LEASE_LOST,
            Some(group),
            None,
            None,
            format!("lease of {name} lost to another node: stopping it"),
        );
        self.begin_stop(group, "lease lost".to_string(), None);
    }

    /// Renewal, early stop and self-fence, due at `self.now`.
    pub(super) fn lease_timers(&mut self) {
        let now = self.now;
        let timing = self.timing();
        if let Some((_, issued)) = self.lease.renew {
            // An answer that never comes must not block renewal for ever.
            if now >= issued + timing.lease_timeout {
                self.lease.renew = None;
            }
        }
        if !self.holds_any() && !self.acquiring_any() && !self.anything_started() {
            self.lease.valid_until = None;
            if std::mem::take(&mut self.lease.expiring) {
                // Placement waited for the expiry to be over (`decide`): it runs again
                // (loopback seed 3872: web stopped here for good while the peer waited
                // for this node, its preferred one, to take it).
                self.touch_all();
            }
        }
        // The host lease is renewed whether or not the node holds groups (sanlock's
        // delta lease): the arbitrator sees the node alive, and the node learns at once
        // whether it can reach the arbitrator (it is not eligible while it cannot).
        // Renewals go with heartbeats, so that the shell wakes once for both: at a
        // heartbeat tick, a renewal due before the next tick goes now (up to 9/10 of an
        // interval early: always safe, a lease counts from the issue of its write); one
        // due just before a tick waits for it (a tenth of an interval at most). Every
        // phase thus ends up on a tick, and stays there (ticks keep to their grid).
        let (early, late) = renewal_slack(&timing);
        let heartbeat_now = now >= self.next_heartbeat_at;
        let due = self.lease.last_renew_issued.map(|t| t + timing.lease_renew_interval());
        if self.lease.renew.is_none()
            && due.is_none_or(|due| (heartbeat_now && now + early >= due) || now >= due + late)
        {
            // Leaving in maintenance, each renewal parks the leases (`parking`): the
            // daemon may still wait for an operation in flight before it exits.
            let request = if self.parking() { LeaseRequest::Park } else { LeaseRequest::Renew };
            let id = self.request_lease(request);
            self.lease.renew = Some((id, now));
            self.lease.last_renew_issued = Some(now);
        }

        let Some(until) = self.lease.valid_until else {
            return;
        };
        if now >= until {
            self.lease_expired();
            return;
        }
        if now + timing.lease_stop_budget() >= until && self.fence_early(until) {
            // The stop point: the guard moves off its early deadline (`update_fence`).
            self.update_fence();
        }
        if !self.lease.expiring
            && now + timing.lease_stop_budget() >= until
            && self.anything_started()
        {
            self.lease.expiring = true;
            self.event(
                &catalogue::LEASE_EXPIRING,
                None,
                None,
                None,
                format!(
                    "lease not renewed; it expires in {}: stopping every group",
                    super::ms(until.saturating_since(now))
                ),
            );
            for index in 0..self.groups.len() {
                if self.groups[index].may_run() || self.groups[index].goal > 0 {
                    self.begin_stop(GroupId(index as u32), "lease expiring".to_string(), None);
                }
            }
        }
    }

    /// The lease ran out: nothing held is ours any more; what still runs is fenced.
    fn lease_expired(&mut self) {
        // Expired: nothing we hold is ours any more.
        // The arbitrator may still count them as ours (our host lease is renewed
        // again once it is reachable): give them back explicitly.
        let mut dropped = false;
        for group in &mut self.groups {
            if group.lease.is_held() {
                group.lease = GroupLease::None;
                group.release_owed = true;
                // Not ours any more: nothing may be started (what runs is fenced).
                group.goal = 0;
                group.clear_restart();
                dropped = true;
            }
        }
        if dropped {
            self.touch_all();
        }
        if self.anything_started() {
            let still: Vec<String> = self
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.may_run())
                .map(|(i, _)| self.spec.groups[i].name.clone())
                .collect();
            self.self_fence(format!("lease expired while groups still ran: {}", still.join(", ")));
        }
        // Expired and acted upon: no deadline may stay in the past.
        self.lease.valid_until = None;
        self.lease.expiring = false;
    }

    pub(super) fn lease_deadline(&self) -> Instant {
        let timing = self.timing();
        let mut next = Instant::MAX;
        if let Some((_, issued)) = self.lease.renew {
            next = next.min(issued + timing.lease_timeout);
        } else {
            let (_, late) = renewal_slack(&timing);
            next = next.min(
                self.lease
                    .last_renew_issued
                    .map_or(self.now, |t| t + timing.lease_renew_interval() + late),
            );
        }
        if let Some(until) = self.lease.valid_until {
            let stop_at = until - timing.lease_stop_budget();
            // The stop point: this engine stops its groups, or, with nothing started,
            // moves the fence guard off its early deadline (`update_fence`).
            let guard_early = self.fence_early(until);
            if (!self.lease.expiring && self.anything_started()) || guard_early {
                next = next.min(stop_at.max(self.now));
            }
            next = next.min(until);
        }
        next
    }

    /// Whether the guard holds a deadline of this engine's before the lease's end `until`
    /// (the stop point's): it must move when the stop point comes.
    fn fence_early(&self, until: Instant) -> bool {
        self.fence_armed.or(self.fence_kept).is_some_and(|d| d < until)
    }

    /// Keeps the fence guard armed while anything may run. The guard acts at its deadline
    /// whether or not the daemon that armed it still runs (a daemon whose loop stopped
    /// renews nothing and stops nothing), so the deadline is what this engine would do
    /// itself, a little later: while the lease is renewed, the stop point (the lease's
    /// end less the stop budget) plus [`Timing::fence_guard_grace`]; from the stop point
    /// on, when this engine stops its groups itself (E3105), the lease's end, where it
    /// would fence itself (E3106), plus the grace — and once nothing is started, nothing.
    /// A live engine thus always acts before its guard would.
    ///
    /// [`Timing::fence_guard_grace`]: crate::spec::Timing::fence_guard_grace
    pub(super) fn update_fence(&mut self) {
        // Nothing may run past the lease.
        let started = self.anything_started();
        let may_run = started || self.holds_any();
        // While resources of a group may run here without its lease (started, or not
        // yet probed: a restarted daemon found them running and asks for the lease)
        // before this engine armed the guard itself, the deadline its predecessor armed
        // is the only bound this node knows for them: this engine's own deadline only
        // joins it (`keep_earlier`: the guard keeps the earlier one; with nothing of its
        // own, only the predecessor's stays). Once this engine has armed the guard, a
        // lease lost while its group stops here changes nothing: the guard keeps
        // following this engine's own lease.
        let predecessor_bounds = self.fence_armed.is_none()
            && self
                .groups
                .iter()
                .any(|g| (g.may_run() || g.probes_pending() > 0) && !g.lease.is_held());
        let timing = self.timing();
        let own = match (may_run, self.lease.valid_until) {
            (false, _) => None,
            (true, Some(until))
                if self.lease.expiring || self.now >= until - timing.lease_stop_budget() =>
            {
                // Past the stop point this engine stops what runs itself, and fences
                // itself at the lease's end if anything still runs (E3106); the guard
                // backs it up a grace later, and has nothing to do once nothing is
                // started (a lease held with nothing started must not make the guard
                // fire at the end of a lease this engine let run out).
                started.then_some(until + timing.fence_guard_grace())
            }
            (true, Some(until)) => {
                Some(until - timing.lease_stop_budget() + timing.fence_guard_grace())
            }
            (true, None) => return,
        };
        if predecessor_bounds {
            // With nothing of its own to guard, only the predecessor's deadline stays.
            if own != self.fence_kept {
                self.fence_kept = own;
                self.push(Output::ArmFence { deadline: own, keep_earlier: true });
            }
            return;
        }
        // Leaving `keep_earlier` the guard gets this engine's own deadline (or is
        // disarmed), whatever it held.
        if own != self.fence_armed || self.fence_kept.is_some() {
            self.fence_armed = own;
            self.fence_kept = None;
            self.push(Output::ArmFence { deadline: own, keep_earlier: false });
        }
    }
}

/// How much earlier than due (at a heartbeat tick) and how much later (waiting for the
/// tick) a renewal may go: 9/10 and 1/10 of a heartbeat interval, bounded by a half and
/// a tenth of the renew interval.
fn renewal_slack(timing: &crate::spec::Timing) -> (Duration, Duration) {
    let (interval, renew) = (timing.heartbeat_interval, timing.lease_renew_interval());
    ((interval * 9 / 10).min(renew / 2), (interval / 10).min(renew / 10))
}
