//! Operator commands (switch-over, drain, maintenance, clear) and their replication.
//!
//! The administrative state is a set of last-writer-wins registers stamped with a Lamport
//! time and the writer; every heartbeat carries it and every node merges register by
//! register, so a command given to any node reaches all, and concurrent commands given on
//! both sides of a partition resolve the same way everywhere once it heals.

use super::Engine;
use crate::catalogue;
use crate::io::{AdminCommand, AdminState, ClearRequest, Lww, Stamp, SwitchoverRequest};
use crate::spec::{ClusterSpec, GroupId, NodeId, ResourceId};

/// Commands kept while booting, at most; more are dropped (a bug in the caller).
const QUEUED_ADMIN_MAX: usize = 64;

pub(super) fn empty_admin(spec: &ClusterSpec) -> AdminState {
    AdminState {
        maintenance: Lww::default(),
        drained: vec![Lww::default(); spec.nodes.len()],
        switchover: vec![Lww::default(); spec.groups.len()],
        clear: vec![Lww::default(); spec.groups.len()],
    }
}

fn merge_register<T: Copy>(mine: &mut Lww<T>, theirs: &Lww<T>) -> bool {
    if theirs.stamp > mine.stamp {
        *mine = *theirs;
        true
    } else {
        false
    }
}

impl Engine {
    pub(super) fn next_stamp(&mut self) -> Stamp {
        self.lamport += 1;
        Stamp { lamport: self.lamport, writer: self.me.0 + 1 }
    }

    pub(super) fn is_drained(&self, node: NodeId) -> bool {
        self.admin.drained[usize::from(node.0)].value
    }

    pub(super) fn merge_admin(&mut self, theirs: &AdminState) {
        let mut changed = merge_register(&mut self.admin.maintenance, &theirs.maintenance);
        let mut lamport = theirs.maintenance.stamp.lamport;
        for (mine, theirs) in self.admin.drained.iter_mut().zip(&theirs.drained) {
            changed |= merge_register(mine, theirs);
            lamport = lamport.max(theirs.stamp.lamport);
        }
        for (mine, theirs) in self.admin.switchover.iter_mut().zip(&theirs.switchover) {
            changed |= merge_register(mine, theirs);
            lamport = lamport.max(theirs.stamp.lamport);
        }
        for (mine, theirs) in self.admin.clear.iter_mut().zip(&theirs.clear) {
            changed |= merge_register(mine, theirs);
            lamport = lamport.max(theirs.stamp.lamport);
        }
        self.lamport = self.lamport.max(lamport);
        if changed {
            self.touch_all();
            self.apply_admin();
        }
    }

    /// Bring local behaviour in line with the administrative state.
    fn apply_admin(&mut self) {
        let maintenance = self.admin.maintenance.value;
        if maintenance != self.maintenance {
            self.set_maintenance(maintenance);
        }
        for index in 0..self.groups.len() {
            let request = self.admin.clear[index].value;
            if request.sequence > self.groups[index].clear_seen {
                self.groups[index].clear_seen = request.sequence;
                self.apply_clear(GroupId(index as u32), request.resource);
            }
        }
    }

    fn set_maintenance(&mut self, on: bool) {
        self.maintenance = on;
        self.touch_all();
        if !on {
            // Resources may have been changed by hand: look before acting again.
            self.start_probes();
        }
    }

    fn apply_clear(&mut self, group: GroupId, resource: Option<ResourceId>) {
        let runtime = &mut self.groups[group.0 as usize];
        for (r, res) in runtime.resources.iter_mut().enumerate() {
            if resource.is_none_or(|only| usize::from(only.0) == r) {
                res.failures.clear();
                res.last_failed = false;
            }
        }
        self.touch(group);
    }

    /// The daemon stops: hand every group away as a drain would, for this run only.
    pub(super) fn on_shutdown(&mut self) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        if self.maintenance {
            // Park the leases at once (`lease_timers`), not at the next renewal.
            self.lease.last_renew_issued = None;
        }
        self.touch_all();
        let name = self.name(self.me).to_string();
        let text = if self.maintenance {
            format!("node {name} shutting down in maintenance: resources are left running")
        } else {
            format!("node {name} shutting down: its groups stop here and move to another node")
        };
        self.event(&catalogue::NODE_LEAVING, None, None, Some(format!("node {name}")), text);
    }

    pub(super) fn on_admin(&mut self, command: AdminCommand) {
        if self.booting && !self.knows_cluster() {
            if self.queued_admin.len() < QUEUED_ADMIN_MAX {
                self.queued_admin.push(command);
            }
            return;
        }
        self.apply_queued_admin(); // commands keep the order they were given in
        self.admin_command(command);
    }

    /// Apply the commands queued while this node did not know the cluster's state yet.
    pub(super) fn apply_queued_admin(&mut self) {
        for command in std::mem::take(&mut self.queued_admin) {
            self.admin_command(command);
        }
    }

    fn admin_command(&mut self, command: AdminCommand) {
        self.touch_all(); // and so the new state goes out at once
        match command {
            AdminCommand::Switchover { group, to } => self.admin_switchover(group, to),
            AdminCommand::Drain(node) | AdminCommand::Undrain(node) => {
                if usize::from(node.0) >= self.spec.nodes.len() {
                    return;
                }
                let drain = matches!(command, AdminCommand::Drain(_));
                let stamp = self.next_stamp();
                self.admin.drained[usize::from(node.0)] = Lww { value: drain, stamp };
                self.touch_all();
                let name = self.name(node).to_string();
                let (code, text) = if drain {
                    (&catalogue::NODE_DRAINED, format!("node {name} drained: its groups move away"))
                } else {
                    (&catalogue::NODE_UNDRAINED, format!("node {name} may run groups again"))
                };
                self.event(code, None, None, Some(format!("node {name}")), text);
            }
            AdminCommand::Maintenance(on) => {
                let stamp = self.next_stamp();
                self.admin.maintenance = Lww { value: on, stamp };
                if on != self.maintenance {
                    self.set_maintenance(on);
                }
                let (code, text) = if on {
                    (&catalogue::MAINTENANCE_ON, "maintenance on: resources are left as they are")
                } else {
                    (
                        &catalogue::MAINTENANCE_OFF,
                        "maintenance off: probing resources, then managing them",
                    )
                };
                self.event(code, None, None, None, text.to_string());
            }
            AdminCommand::Clear { group, resource } => {
                let index = group.0 as usize;
                if index >= self.groups.len() {
                    return;
                }
                let sequence =
                    self.admin.clear[index].value.sequence.max(self.groups[index].clear_seen) + 1;
                let stamp = self.next_stamp();
                self.admin.clear[index] = Lww { value: ClearRequest { sequence, resource }, stamp };
                self.groups[index].clear_seen = sequence;
                self.apply_clear(group, resource);
                let name = self.group_name(group).to_string();
                let what = match resource {
                    Some(r) => format!("{name}/{}", self.spec.group(group).resource(r).name),
                    None => name,
                };
                self.event(
                    &catalogue::GROUP_CLEARED,
                    Some(group),
                    resource,
                    None,
                    format!("failures of {what} cleared"),
                );
            }
        }
    }

    fn admin_switchover(&mut self, group: GroupId, to: Option<NodeId>) {
        let index = group.0 as usize;
        if index >= self.groups.len() {
            return;
        }
        let name = self.group_name(group).to_string();
        let spec = self.spec.clone();
        let gspec = spec.group(group);
        let refuse = |engine: &mut Engine, why: String| {
            engine.event(
                &catalogue::SWITCHOVER_REFUSED,
                Some(group),
                None,
                None,
                format!("switch-over of {name} refused: {why}"),
            );
        };
        let Some(owner) = self.owner(group) else {
            return refuse(self, "the group is not running".to_string());
        };
        let target = match to {
            Some(to) if to == owner => {
                return refuse(self, format!("it already runs on {}", self.name(to)))
            }
            Some(to) if !gspec.nodes.contains(&to) => {
                return refuse(self, format!("{} is not in the group's node list", self.name(to)))
            }
            Some(to) => match self.node_ineligible(to, group) {
                Ok(()) => to,
                Err(why) => return refuse(self, format!("{}: {why}", self.name(to))),
            },
            None => match gspec
                .nodes
                .iter()
                .copied()
                .find(|n| *n != owner && self.node_ineligible(*n, group).is_ok())
            {
                Some(node) => node,
                None => {
                    let why =
                        self.lock_reason(group, owner).unwrap_or_else(|| "no other node".into());
                    return refuse(self, why);
                }
            },
        };
        self.write_switchover(group, Some(SwitchoverRequest { from: owner, to: Some(target) }));
        let text = format!(
            "switch-over of {name} from {} to {} requested",
            self.name(owner),
            self.name(target)
        );
        self.event(&catalogue::SWITCHOVER, Some(group), None, None, text);
    }
}
