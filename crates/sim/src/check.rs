//! The checkers: one per guarantee of PRODUCT.md section 3 that a simulation can judge,
//! fed with ground truth (what really runs where, what the arbitrator really says) at
//! every step, never with an engine's opinion of itself — except S4 and L2, whose
//! guarantee is about what the engines report.
//!
//! - S1 one owner: a group's resources (not monitor-only ones) never run on two nodes at
//!   the same instant.
//! - S2 safe ordering: on each node a group's resources start in the effective order and
//!   stop in its exact reverse: a resource starts only when every resource before it is
//!   up (or crashed without the engine noticing yet) and none after it is; a resource
//!   stops only when none after it is up. "Up" is the engine's knowledge: started, not
//!   stopped, and not seen not running by a probe or monitor. A restart in place of resource i (stop the tail down to i,
//!   start it again) is allowed. Monitor-only resources are never started or stopped.
//! - S3 lease: a node starts a resource of a group only while the arbitrator names it
//!   the group's holder and its lease (last grant's `since` + lease_timeout on its own
//!   clock, converted to real time by the caller) has not expired.
//! - S4 migration lock: no node starts a group while another node that is up reports
//!   itself the group's owner, holding its lease, with the group locked (a node that
//!   lost its lease must let the group go, locked or not).
//! - S5 standby lock (PRODUCT.md guarantee 7): on a ready node of a group with
//!   `lock_standby` devices, the device is read-only whenever nothing of the group runs
//!   there, nothing is in flight, and its engine knows every resource stopped (a probe
//!   that timed out leaves the group's state unknown: locking a device that may be
//!   mounted would be wrong). The device's flag is the simulator's model of the block
//!   device: set by `Output::LockStandby`, by a file system's stop and by the fence
//!   guard's stops, cleared by a file system's start and by a reboot.
//! - L1, L2 after healing: every group runs on exactly one eligible node; no engine
//!   reports a group locked.
//!
//! Plus `Contract`: the engine broke its API contract (e.g. never settles).
//!
//! The checkers must not read simulator state: the simulator calls them with facts, so
//! that each can be tested on a hand-made history (see the tests below).

use std::sync::Arc;

use engine::{ClusterSpec, GroupId, NodeId, ResourceId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Guarantee {
    S1,
    S2,
    S3,
    S4,
    S5,
    L1,
    L2,
    Contract,
}

impl Guarantee {
    pub const ALL: [Guarantee; 8] = [
        Guarantee::S1,
        Guarantee::S2,
        Guarantee::S3,
        Guarantee::S4,
        Guarantee::S5,
        Guarantee::L1,
        Guarantee::L2,
        Guarantee::Contract,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Guarantee::S1 => "S1",
            Guarantee::S2 => "S2",
            Guarantee::S3 => "S3",
            Guarantee::S4 => "S4",
            Guarantee::S5 => "S5",
            Guarantee::L1 => "L1",
            Guarantee::L2 => "L2",
            Guarantee::Contract => "C",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Guarantee::S1 => "one owner: a group runs on at most one node",
            Guarantee::S2 => "start in effective order, stop in exact reverse",
            Guarantee::S3 => "start only as the arbitrator's holder with an unexpired lease",
            Guarantee::S4 => "a migration-locked group does not move",
            Guarantee::S5 => "lock_standby devices are read-only where their group does not run",
            Guarantee::L1 => "after healing every group runs on exactly one eligible node",
            Guarantee::L2 => "after healing no group is locked",
            Guarantee::Contract => "the engine keeps its API contract",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub guarantee: Guarantee,
    pub at_ns: u64,
    pub message: String,
}

/// Why a resource's ground truth changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A start (or a start the executor killed after it took effect) made it run.
    Started,
    /// A stop made it not run.
    Stopped,
    /// It died by itself; the node's engine still believes it started.
    Crashed,
}

/// What the arbitrator's ground truth says about a group's holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderTruth {
    /// `arbitration = none`: there is no holder to check.
    NotArbitrated,
    Holder(Option<NodeId>),
    /// The record names `holder` by a write that landed after its writer had given up on
    /// it (a stalled disk), over the claim of `displaced`. Both may start: `displaced`
    /// under the lease it was granted before (it learns of the overwrite at its next
    /// renewal, and the writer is granted nothing for a takeover wait; S1 is checked
    /// apart), the writer once that wait is over.
    Overwritten {
        holder: Option<NodeId>,
        displaced: Option<NodeId>,
    },
}

/// The facts about a start that only the simulator knows, computed at the instant the
/// node asked for the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartContext {
    pub holder: HolderTruth,
    /// Real instant at which the node's lease on the group ends; `None`: it was never
    /// granted one (or lost or released it).
    pub lease_ends_ns: Option<u64>,
    /// Another node that is up and reports itself the group's owner, holding its lease,
    /// with the group migration-locked.
    pub locked_by: Option<NodeId>,
}

/// Violations stored with their message (all are counted).
pub const VIOLATIONS_KEPT: usize = 100;

pub struct Checkers {
    spec: Arc<ClusterSpec>,
    nodes: usize,
    groups: usize,
    /// Per group: the effective start order without monitor-only resources.
    order: Vec<Vec<ResourceId>>,
    /// Per group, per listed resource: its position in `order` (None: monitor-only).
    position: Vec<Vec<Option<usize>>>,
    /// [node * groups + group]: bit r set while resource r runs there (ground truth).
    running: Vec<u64>,
    /// [node * groups + group]: the S2 view, bit r set from a start until a stop or a
    /// wipe of the node (a crash does not clear it: the engine has not seen it yet).
    started: Vec<u64>,
    /// [node * groups + group]: resources the engine learnt were down (a probe or
    /// monitor) while it had not stopped them. A start already in flight when an earlier
    /// resource is found down cannot be recalled; its completion is not an S2 fault.
    seen_down: Vec<u64>,
    violations: Vec<Violation>,
    counts: [u64; 8],
}

impl Checkers {
    pub fn new(spec: Arc<ClusterSpec>) -> Checkers {
        let nodes = spec.nodes.len();
        let groups = spec.groups.len();
        let mut order = Vec::with_capacity(groups);
        let mut position = Vec::with_capacity(groups);
        for group in &spec.groups {
            assert!(group.resources.len() <= 64, "a group has at most 64 resources");
            let effective: Vec<ResourceId> = group
                .start_order()
                .into_iter()
                .filter(|r| !group.resource(*r).kind.is_monitor_only())
                .collect();
            let mut pos = vec![None; group.resources.len()];
            for (i, r) in effective.iter().enumerate() {
                pos[usize::from(r.0)] = Some(i);
            }
            order.push(effective);
            position.push(pos);
        }
        Checkers {
            spec,
            nodes,
            groups,
            order,
            position,
            running: vec![0; nodes * groups],
            started: vec![0; nodes * groups],
            seen_down: vec![0; nodes * groups],
            violations: Vec::new(),
            counts: [0; 8],
        }
    }

    fn slot(&self, node: NodeId, group: GroupId) -> usize {
        usize::from(node.0) * self.groups + group.0 as usize
    }

    fn name(&self, node: NodeId) -> &str {
        &self.spec.node(node).name
    }

    fn what(&self, group: GroupId, resource: ResourceId) -> String {
        let g = self.spec.group(group);
        format!("{}/{}", g.name, g.resource(resource).name)
    }

    pub fn report(&mut self, guarantee: Guarantee, at_ns: u64, message: String) {
        self.counts[guarantee.index()] += 1;
        if self.violations.len() < VIOLATIONS_KEPT {
            self.violations.push(Violation { guarantee, at_ns, message });
        }
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    pub fn count(&self, guarantee: Guarantee) -> u64 {
        self.counts[guarantee.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether resource `resource` of `group` runs on `node` (ground truth).
    pub fn is_running(&self, node: NodeId, group: GroupId, resource: ResourceId) -> bool {
        self.running[self.slot(node, group)] & (1 << resource.0) != 0
    }

    /// S5 (PRODUCT.md guarantee 7) on `node` for `group`, which has `lock_standby`
    /// devices and may run there: once the node is `ready` (its probes answered), the
    /// device must be read-only (`locked`) whenever nothing of the group runs there and
    /// nothing is in the works: no resource running (ground truth) or started as the
    /// engine knows it (a resource that died by itself is the engine's to find), no
    /// operation of the group in flight (`busy`: a start clears the lock first, a stop
    /// sets it last).
    pub fn standby_lock(
        &mut self,
        at_ns: u64,
        node: NodeId,
        group: GroupId,
        ready: bool,
        busy: bool,
        locked: bool,
    ) {
        let slot = self.slot(node, group);
        let active = self.running[slot] != 0 || self.started[slot] != 0;
        if ready && !busy && !active && !locked {
            let message = format!(
                "{}'s lock_standby device of {} is writable while the group does not run there",
                self.name(node),
                self.spec.group(group).name
            );
            self.report(Guarantee::S5, at_ns, message);
        }
    }

    /// A resource's ground truth changed on a node.
    pub fn resource_changed(
        &mut self,
        at_ns: u64,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        change: Change,
    ) {
        let slot = self.slot(node, group);
        let bit = 1u64 << resource.0;
        match change {
            Change::Started => {
                if self.position[group.0 as usize][usize::from(resource.0)].is_none() {
                    // Monitor-only resources have no ground truth to run; S2 reported
                    // the start itself.
                    return;
                }
                self.running[slot] |= bit;
                self.check_one_owner(at_ns, node, group, resource);
                let tolerated = self.seen_down[slot];
                self.check_predecessors(
                    at_ns,
                    node,
                    group,
                    resource,
                    "finished starting",
                    tolerated,
                );
                self.started[slot] |= bit;
                self.seen_down[slot] &= !bit;
            }
            Change::Stopped => {
                self.running[slot] &= !bit;
                self.started[slot] &= !bit;
                self.seen_down[slot] &= !bit;
            }
            Change::Crashed => {
                self.running[slot] &= !bit;
            }
        }
    }

    /// Every resource of the node died at once (host crash, reset, fence guard). With
    /// `engine_lost` the node's engine died too, so the S2 view starts afresh; otherwise
    /// the deaths are crashes the engine has yet to see.
    pub fn host_wiped(&mut self, node: NodeId, engine_lost: bool) {
        for g in 0..self.groups {
            let slot = self.slot(node, GroupId(g as u32));
            self.running[slot] = 0;
            if engine_lost {
                self.started[slot] = 0;
                self.seen_down[slot] = 0;
            }
        }
    }

    /// The node's engine learnt (a probe or monitor answered "not running") that a
    /// resource is down: from now on S2 no longer expects it to be stopped.
    pub fn seen_not_running(&mut self, node: NodeId, group: GroupId, resource: ResourceId) {
        let slot = self.slot(node, group);
        if self.running[slot] & (1 << resource.0) == 0 {
            if self.started[slot] & (1 << resource.0) != 0 {
                self.seen_down[slot] |= 1 << resource.0;
            }
            self.started[slot] &= !(1 << resource.0);
        }
    }

    fn check_one_owner(&mut self, at_ns: u64, node: NodeId, group: GroupId, resource: ResourceId) {
        for other in 0..self.nodes {
            let other = NodeId(other as u16);
            if other == node {
                continue;
            }
            let theirs = self.running[self.slot(other, group)];
            if theirs != 0 {
                let mut bits = theirs;
                let mut names = Vec::new();
                while bits != 0 {
                    let r = bits.trailing_zeros() as u16;
                    bits &= bits - 1;
                    names.push(self.spec.group(group).resource(ResourceId(r)).name.clone());
                }
                let message = format!(
                    "{} started on {} while {} runs {}",
                    self.what(group, resource),
                    self.name(node),
                    self.name(other),
                    names.join(", ")
                );
                self.report(Guarantee::S1, at_ns, message);
            }
        }
    }

    /// S2: every resource before `resource` in the effective order must be started.
    fn check_predecessors(
        &mut self,
        at_ns: u64,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        moment: &str,
        tolerated: u64,
    ) {
        let Some(pos) = self.position[group.0 as usize][usize::from(resource.0)] else {
            return;
        };
        let started = self.started[self.slot(node, group)] | tolerated;
        let missing: Vec<ResourceId> = self.order[group.0 as usize][..pos]
            .iter()
            .copied()
            .filter(|r| started & (1 << r.0) == 0)
            .collect();
        for r in missing {
            let message = format!(
                "{} {moment} on {} before {} was up",
                self.what(group, resource),
                self.name(node),
                self.what(group, r)
            );
            self.report(Guarantee::S2, at_ns, message);
        }
    }

    /// S2: no resource after `resource` in the effective order may be started.
    fn check_successors(
        &mut self,
        at_ns: u64,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        verb: &str,
    ) {
        let Some(pos) = self.position[group.0 as usize][usize::from(resource.0)] else {
            return;
        };
        let started = self.started[self.slot(node, group)];
        let up: Vec<ResourceId> = self.order[group.0 as usize][pos + 1..]
            .iter()
            .copied()
            .filter(|r| started & (1 << r.0) != 0)
            .collect();
        for r in up {
            let message = format!(
                "{} {verb} on {} while {} (after it) is up",
                self.what(group, resource),
                self.name(node),
                self.what(group, r)
            );
            self.report(Guarantee::S2, at_ns, message);
        }
    }

    fn check_not_monitor_only(
        &mut self,
        at_ns: u64,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        verb: &str,
    ) -> bool {
        if self.position[group.0 as usize][usize::from(resource.0)].is_some() {
            return true;
        }
        let message = format!(
            "monitor-only resource {} {verb} on {}",
            self.what(group, resource),
            self.name(node)
        );
        self.report(Guarantee::S2, at_ns, message);
        false
    }

    /// A node asked its executor to start a resource.
    pub fn start_issued(
        &mut self,
        at_ns: u64,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        context: StartContext,
    ) {
        if self.check_not_monitor_only(at_ns, node, group, resource, "started") {
            self.check_predecessors(at_ns, node, group, resource, "asked to start", 0);
            self.check_successors(at_ns, node, group, resource, "asked to start");
        }
        let what = self.what(group, resource);
        let me = self.name(node).to_owned();
        let named = match context.holder {
            HolderTruth::NotArbitrated => None,
            HolderTruth::Holder(holder) => Some(holder),
            HolderTruth::Overwritten { holder, displaced } => {
                (displaced != Some(node)).then_some(holder)
            }
        };
        if let Some(holder) = named {
            if holder != Some(node) {
                let named = holder.map_or("no node".to_owned(), |h| self.name(h).to_owned());
                let message =
                    format!("{me} starts {what} but the arbitrator names {named} the holder");
                self.report(Guarantee::S3, at_ns, message);
            }
        }
        match context.lease_ends_ns {
            None => {
                let message = format!("{me} starts {what} without a granted lease");
                self.report(Guarantee::S3, at_ns, message);
            }
            Some(end) if end <= at_ns => {
                let message = format!(
                    "{me} starts {what} with a lease that expired at {} ms",
                    end / 1_000_000
                );
                self.report(Guarantee::S3, at_ns, message);
            }
            Some(_) => {}
        }
        if let Some(owner) = context.locked_by {
            let message = format!(
                "{me} starts {what} while {} owns the group and reports it migration-locked",
                self.name(owner)
            );
            self.report(Guarantee::S4, at_ns, message);
        }
    }

    /// A node asked its executor to stop a resource.
    pub fn stop_issued(&mut self, at_ns: u64, node: NodeId, group: GroupId, resource: ResourceId) {
        if self.check_not_monitor_only(at_ns, node, group, resource, "stopped") {
            self.check_successors(at_ns, node, group, resource, "asked to stop");
        }
    }

    /// L1 and L2, once the liveness bound has passed after healing. `locked` lists what
    /// the engines report locked.
    pub fn check_liveness(&mut self, at_ns: u64, locked: &[(NodeId, GroupId)]) {
        for g in 0..self.groups {
            let group = GroupId(g as u32);
            let full: u64 = self.order[g].iter().fold(0, |m, r| m | (1 << r.0));
            if full == 0 {
                continue; // only monitor-only resources: nothing can run
            }
            let mut complete = Vec::new();
            let mut partial = Vec::new();
            for n in 0..self.nodes {
                let node = NodeId(n as u16);
                let bits = self.running[self.slot(node, group)];
                if bits == full {
                    complete.push(node);
                } else if bits != 0 {
                    partial.push(node);
                }
            }
            let spec_group = self.spec.group(group);
            let name = spec_group.name.clone();
            let eligible: Vec<NodeId> =
                complete.iter().copied().filter(|n| spec_group.nodes.contains(n)).collect();
            let fine = complete.len() == 1 && eligible.len() == 1 && partial.is_empty();
            if !fine {
                let list = |v: &[NodeId]| {
                    if v.is_empty() {
                        "none".to_owned()
                    } else {
                        v.iter().map(|n| self.name(*n)).collect::<Vec<_>>().join(", ")
                    }
                };
                let message = format!(
                    "{name} is not running on exactly one eligible node: complete on {}, partly on {}",
                    list(&complete),
                    list(&partial)
                );
                self.report(Guarantee::L1, at_ns, message);
            }
        }
        for &(node, group) in locked {
            let message = format!(
                "{} still reports {} migration-locked",
                self.name(node),
                self.spec.group(group).name
            );
            self.report(Guarantee::L2, at_ns, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::two_node;

    // two_node(): group db = [postgres(app), data(fs), vip(ip)], effective order
    // data, vip, postgres; group web = [app, uplink(nic)].
    const ALPHA: NodeId = NodeId(0);
    const BETA: NodeId = NodeId(1);
    const DB: GroupId = GroupId(0);
    const WEB: GroupId = GroupId(1);
    const POSTGRES: ResourceId = ResourceId(0);
    const DATA: ResourceId = ResourceId(1);
    const VIP: ResourceId = ResourceId(2);
    const APP: ResourceId = ResourceId(0);
    const UPLINK: ResourceId = ResourceId(1);

    fn checkers() -> Checkers {
        Checkers::new(Arc::new(two_node()))
    }

    fn ok_context(end: u64) -> StartContext {
        StartContext {
            holder: HolderTruth::Holder(Some(ALPHA)),
            lease_ends_ns: Some(end),
            locked_by: None,
        }
    }

    fn codes(c: &Checkers) -> Vec<Guarantee> {
        c.violations().iter().map(|v| v.guarantee).collect()
    }

    /// A clean history: start in order, stop in reverse, restart in place of the tail.
    #[test]
    fn clean_history_has_no_violation() {
        let mut c = checkers();
        for (t, r) in [(1, DATA), (2, VIP), (3, POSTGRES)] {
            c.start_issued(t, ALPHA, DB, r, ok_context(100));
            c.resource_changed(t, ALPHA, DB, r, Change::Started);
        }
        // vip crashes: the tail (postgres) stops, vip restarts, postgres starts again.
        c.resource_changed(10, ALPHA, DB, VIP, Change::Crashed);
        c.stop_issued(11, ALPHA, DB, POSTGRES);
        c.resource_changed(11, ALPHA, DB, POSTGRES, Change::Stopped);
        c.stop_issued(12, ALPHA, DB, VIP);
        c.resource_changed(12, ALPHA, DB, VIP, Change::Stopped);
        c.start_issued(13, ALPHA, DB, VIP, ok_context(100));
        c.resource_changed(13, ALPHA, DB, VIP, Change::Started);
        c.start_issued(14, ALPHA, DB, POSTGRES, ok_context(100));
        c.resource_changed(14, ALPHA, DB, POSTGRES, Change::Started);
        for (t, r) in [(20, POSTGRES), (21, VIP), (22, DATA)] {
            c.stop_issued(t, ALPHA, DB, r);
            c.resource_changed(t, ALPHA, DB, r, Change::Stopped);
        }
        // Then beta takes it over.
        let beta = StartContext { holder: HolderTruth::Holder(Some(BETA)), ..ok_context(100) };
        c.start_issued(30, BETA, DB, DATA, beta);
        c.resource_changed(30, BETA, DB, DATA, Change::Started);
        assert_eq!(c.total(), 0, "{:?}", c.violations());
    }

    #[test]
    fn s3_a_record_overwritten_by_a_stale_write_names_two_possible_holders_only() {
        // Beta's claim, given up on, landed over alpha's: alpha still holds its lease
        // and may start; beta may too (once its wait is over).
        let mut c = checkers();
        let overwritten = HolderTruth::Overwritten { holder: Some(BETA), displaced: Some(ALPHA) };
        let context = StartContext { holder: overwritten, ..ok_context(100) };
        c.start_issued(1, ALPHA, DB, DATA, context);
        c.resource_changed(1, ALPHA, DB, DATA, Change::Started);
        c.start_issued(2, BETA, WEB, APP, context);
        assert_eq!(c.total(), 0, "{:?}", c.violations());
        // Anyone else may not: here the record was free before the stale write.
        let free_before = HolderTruth::Overwritten { holder: Some(BETA), displaced: None };
        c.start_issued(3, ALPHA, DB, VIP, StartContext { holder: free_before, ..ok_context(100) });
        assert_eq!(codes(&c), [Guarantee::S3]);
    }

    #[test]
    fn s1_two_nodes_at_once() {
        let mut c = checkers();
        c.resource_changed(1, ALPHA, DB, DATA, Change::Started);
        c.resource_changed(2, BETA, DB, DATA, Change::Started);
        assert_eq!(codes(&c), [Guarantee::S1]);
        assert!(
            c.violations()[0].message.contains("while alpha runs data"),
            "{:?}",
            c.violations()
        );
        // Different resources of one group count too; a crash ends the overlap.
        c.resource_changed(3, ALPHA, DB, DATA, Change::Crashed);
        c.resource_changed(3, BETA, DB, DATA, Change::Stopped);
        c.resource_changed(4, BETA, DB, DATA, Change::Started);
        assert_eq!(c.count(Guarantee::S1), 1);
        c.resource_changed(5, ALPHA, DB, VIP, Change::Started);
        assert_eq!(c.count(Guarantee::S1), 2);
    }

    #[test]
    fn s1_a_wiped_host_runs_nothing() {
        let mut c = checkers();
        c.resource_changed(1, ALPHA, DB, DATA, Change::Started);
        c.host_wiped(ALPHA, true);
        c.resource_changed(2, BETA, DB, DATA, Change::Started);
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn s2_out_of_order_start() {
        let mut c = checkers();
        c.start_issued(1, ALPHA, DB, DATA, ok_context(100));
        c.resource_changed(1, ALPHA, DB, DATA, Change::Started);
        // postgres before vip
        c.start_issued(2, ALPHA, DB, POSTGRES, ok_context(100));
        assert_eq!(codes(&c), [Guarantee::S2]);
        assert!(c.violations()[0].message.contains("before db/vip was up"));
    }

    #[test]
    fn s2_parallel_start_is_out_of_order() {
        let mut c = checkers();
        c.start_issued(1, ALPHA, DB, DATA, ok_context(100));
        // vip asked before data finished
        c.start_issued(2, ALPHA, DB, VIP, ok_context(100));
        assert_eq!(codes(&c), [Guarantee::S2]);
    }

    #[test]
    fn s2_stop_not_in_reverse() {
        let mut c = checkers();
        for r in [DATA, VIP, POSTGRES] {
            c.resource_changed(1, ALPHA, DB, r, Change::Started);
        }
        c.stop_issued(2, ALPHA, DB, DATA);
        assert_eq!(codes(&c), [Guarantee::S2, Guarantee::S2]);
    }

    #[test]
    fn s2_a_crash_is_not_a_stop() {
        let mut c = checkers();
        for r in [DATA, VIP, POSTGRES] {
            c.resource_changed(1, ALPHA, DB, r, Change::Started);
        }
        // postgres crashed, but the engine must still stop it before vip.
        c.resource_changed(2, ALPHA, DB, POSTGRES, Change::Crashed);
        c.stop_issued(3, ALPHA, DB, VIP);
        assert_eq!(codes(&c), [Guarantee::S2]);
        // Once a monitor told the engine, stopping vip is in order.
        c.seen_not_running(ALPHA, DB, POSTGRES);
        c.stop_issued(4, ALPHA, DB, VIP);
        assert_eq!(c.total(), 1);
    }

    #[test]
    fn s2_a_start_in_flight_when_an_earlier_resource_is_found_down() {
        let mut c = checkers();
        for r in [DATA, VIP] {
            c.resource_changed(1, ALPHA, DB, r, Change::Started);
        }
        c.start_issued(2, ALPHA, DB, POSTGRES, ok_context(100));
        // vip crashes and a monitor says so while postgres is starting: the start
        // cannot be recalled, so its completion is in order...
        c.resource_changed(3, ALPHA, DB, VIP, Change::Crashed);
        c.seen_not_running(ALPHA, DB, VIP);
        c.resource_changed(4, ALPHA, DB, POSTGRES, Change::Started);
        assert_eq!(c.total(), 0);
        // ...but a new start of postgres before vip is up again is not.
        c.start_issued(5, ALPHA, DB, POSTGRES, ok_context(100));
        assert_eq!(codes(&c), [Guarantee::S2]);
    }

    #[test]
    fn s2_a_wipe_under_a_live_engine_is_a_crash() {
        let mut c = checkers();
        for r in [DATA, VIP, POSTGRES] {
            c.resource_changed(1, ALPHA, DB, r, Change::Started);
        }
        c.host_wiped(ALPHA, false);
        c.start_issued(2, ALPHA, DB, VIP, ok_context(100));
        assert_eq!(codes(&c), [Guarantee::S2]); // postgres still up as far as it knows
        c.host_wiped(ALPHA, true);
        c.start_issued(3, ALPHA, DB, DATA, ok_context(100));
        assert_eq!(c.total(), 1);
    }

    #[test]
    fn s2_monitor_only_is_never_started_or_stopped() {
        let mut c = checkers();
        let ctx = StartContext { holder: HolderTruth::NotArbitrated, ..ok_context(100) };
        c.start_issued(1, BETA, WEB, UPLINK, ctx);
        c.stop_issued(2, BETA, WEB, UPLINK);
        assert_eq!(codes(&c), [Guarantee::S2, Guarantee::S2]);
        // The app resource alone is fine.
        c.start_issued(3, BETA, WEB, APP, ctx);
        assert_eq!(c.total(), 2);
    }

    #[test]
    fn s3_not_the_holder_no_lease_expired_lease() {
        let mut c = checkers();
        let not_holder =
            StartContext { holder: HolderTruth::Holder(Some(BETA)), ..ok_context(100) };
        c.start_issued(1, ALPHA, DB, DATA, not_holder);
        let no_lease = StartContext { lease_ends_ns: None, ..ok_context(0) };
        c.start_issued(2, ALPHA, DB, DATA, no_lease);
        c.start_issued(100, ALPHA, DB, DATA, ok_context(100));
        assert_eq!(codes(&c), [Guarantee::S3, Guarantee::S3, Guarantee::S3]);
        // Without arbitration only the lease is checked.
        let none = StartContext { holder: HolderTruth::NotArbitrated, ..ok_context(200) };
        c.start_issued(150, ALPHA, DB, DATA, none);
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn s4_start_while_the_owner_reports_a_lock() {
        let mut c = checkers();
        let ctx = StartContext {
            holder: HolderTruth::Holder(Some(BETA)),
            lease_ends_ns: Some(100),
            locked_by: Some(ALPHA),
        };
        c.start_issued(1, BETA, DB, DATA, ctx);
        assert_eq!(codes(&c), [Guarantee::S4]);
    }

    #[test]
    fn l1_l2_after_healing() {
        let mut c = checkers();
        // db complete on alpha; web's app on both nodes; then a lock report.
        for r in [DATA, VIP, POSTGRES] {
            c.resource_changed(1, ALPHA, DB, r, Change::Started);
        }
        c.resource_changed(1, ALPHA, WEB, APP, Change::Started);
        c.resource_changed(1, BETA, WEB, APP, Change::Started);
        c.check_liveness(9, &[(BETA, DB)]);
        // (the S1 report of web's app aside)
        let l: Vec<_> =
            codes(&c).into_iter().filter(|g| matches!(g, Guarantee::L1 | Guarantee::L2)).collect();
        assert_eq!(l, [Guarantee::L1, Guarantee::L2]);
        // Partly started counts as not running.
        let mut c = checkers();
        c.resource_changed(1, ALPHA, DB, DATA, Change::Started);
        c.resource_changed(1, BETA, WEB, APP, Change::Started);
        c.check_liveness(9, &[]);
        assert_eq!(codes(&c), [Guarantee::L1]);
        // Everything in place: nothing to report.
        let mut c = checkers();
        for r in [DATA, VIP, POSTGRES] {
            c.resource_changed(1, ALPHA, DB, r, Change::Started);
        }
        c.resource_changed(1, BETA, WEB, APP, Change::Started);
        c.check_liveness(9, &[]);
        assert_eq!(c.total(), 0);
    }
}
