//! What this node tells its peers (its [`NodeReport`]) and what it shows operators (its
//! [`Status`]). Both are pure functions of the engine's state.

use super::Engine;
use crate::catalogue;
use crate::io::{GroupReport, GroupState, NodeReport, NodeState};
use crate::spec::{GroupId, LinkId, NodeId, ResourceId};
use crate::status::{
    Fault, GroupStatus, LeaseStatus, LinkStatus, NodeStatus, ResourceStatus, Status,
};
use crate::time::Instant;

impl Engine {
    pub(super) fn local_node_state(&self) -> NodeState {
        if self.booting {
            NodeState::Booting
        } else if self.maintenance {
            NodeState::Maintenance
        } else if self.is_drained(self.me) || self.leaving {
            NodeState::Drained
        } else if self.groups.iter().any(|g| g.state().is_active()) {
            NodeState::Working
        } else {
            NodeState::Standby
        }
    }

    pub(super) fn group_report(&self, group: GroupId) -> GroupReport {
        let runtime = &self.groups[group.0 as usize];
        let state = runtime.state();
        GroupReport {
            state,
            ineligible: self.local_ineligible(group),
            holds_lease: runtime.lease.is_held(),
            handoff_to: if state == GroupState::Stopped { runtime.handoff_to } else { None },
        }
    }

    pub(super) fn build_report(&self) -> NodeReport {
        let groups = self.report_groups.clone();
        let mut links_up = Vec::new();
        for (peer_index, peer) in self.peers.iter().enumerate() {
            for (link_index, link) in peer.links.iter().enumerate() {
                if link.up {
                    links_up.push((LinkId(link_index as u16), NodeId(peer_index as u16)));
                }
            }
        }
        NodeReport {
            state: self.local_node_state(),
            storage_ok: self.storage_ok,
            groups,
            links_up,
            admin: self.admin.clone(),
        }
    }

    /// Rebuild the report; when it changed, tell the peers at once rather than at the
    /// next heartbeat, so that hand-overs are not slowed by the heartbeat interval.
    pub(super) fn refresh_report(&mut self) {
        let report = self.build_report();
        if report != *self.report {
            self.report = std::sync::Arc::new(report);
            // Pace early heartbeats: at most five per heartbeat interval.
            let gap = self.timing().heartbeat_interval / 5;
            match self.last_heartbeat_at {
                Some(last) if self.now < last + gap => {
                    self.next_heartbeat_at = self.next_heartbeat_at.min(last + gap);
                }
                _ => self.send_heartbeats(),
            }
        }
    }

    pub(super) fn build_status(&self, now: Instant) -> Status {
        let spec = &self.spec;
        let nodes = spec
            .node_ids()
            .map(|node| NodeStatus { node, state: self.node_state_seen(node) })
            .collect();

        let mut links = Vec::new();
        for link in spec.link_ids() {
            for a in spec.node_ids() {
                for b in spec.node_ids().filter(|b| *b > a) {
                    links.push(self.link_status(link, a, b, now));
                }
            }
        }

        let mut groups = Vec::new();
        let mut leases = Vec::new();
        for group in spec.group_ids() {
            let runtime = &self.groups[group.0 as usize];
            let owner = self.owner(group);
            let state = match owner {
                Some(node) if node == self.me => runtime.state(),
                Some(node) => self.peers[usize::from(node.0)]
                    .live_report()
                    .and_then(|r| r.groups.get(group.0 as usize))
                    .map_or(GroupState::Stopped, |g| g.state),
                None if runtime.failed => GroupState::Failed,
                None => GroupState::Stopped,
            };
            let gspec = spec.group(group);
            let resources = (0..gspec.resources.len())
                .map(|r| {
                    let resource = ResourceId(r as u16);
                    ResourceStatus {
                        resource,
                        state: runtime.resource_state(resource),
                        fail_count: runtime.fail_count(resource, now, gspec.failure_timeout),
                    }
                })
                .collect();
            groups.push(GroupStatus {
                group,
                state,
                owner,
                locked: runtime.lock_reason.is_some(),
                lock_reason: runtime.lock_reason.clone(),
                resources,
            });
            if runtime.lease.is_held() {
                leases.push(LeaseStatus {
                    group,
                    holder: self.me,
                    expires_in: self.lease.valid_until.map(|u| u.saturating_since(now)),
                });
            } else if let Some(holder) = self.peers.iter().enumerate().find_map(|(i, p)| {
                let g = p.live_report()?.groups.get(group.0 as usize)?;
                g.holds_lease.then_some(NodeId(i as u16))
            }) {
                leases.push(LeaseStatus { group, holder, expires_in: None });
            }
        }

        Status { reported_by: self.me, nodes, links, groups, leases, faults: self.faults() }
    }

    fn node_state_seen(&self, node: NodeId) -> NodeState {
        if node == self.me {
            return self.local_node_state();
        }
        match self.peers[usize::from(node.0)].live_report() {
            Some(report) => report.state,
            None if self.peers[usize::from(node.0)].alive => NodeState::Booting,
            None => NodeState::Offline,
        }
    }

    fn link_status(&self, link: LinkId, a: NodeId, b: NodeId, now: Instant) -> LinkStatus {
        let other = if a == self.me {
            Some(b)
        } else if b == self.me {
            Some(a)
        } else {
            None
        };
        match other {
            Some(peer) => {
                let state = &self.peers[usize::from(peer.0)].links[usize::from(link.0)];
                LinkStatus {
                    link,
                    nodes: (a, b),
                    up: state.up,
                    last_heard: state.last_heard.map(|t| now.saturating_since(t)),
                    rtt: state.rtt,
                }
            }
            None => {
                let up = self.peers[usize::from(a.0)]
                    .live_report()
                    .is_some_and(|r| r.links_up.contains(&(link, b)));
                LinkStatus { link, nodes: (a, b), up, last_heard: None, rtt: None }
            }
        }
    }

    /// What is wrong now, as this node sees it.
    fn faults(&self) -> Vec<Fault> {
        let mut faults = Vec::new();
        let now = self.now;
        for (peer_index, peer) in self.peers.iter().enumerate() {
            let node = NodeId(peer_index as u16);
            if node == self.me {
                continue;
            }
            if !peer.alive {
                faults.push(Fault {
                    code: &catalogue::PEER_LOST,
                    location: format!("node {}", self.name(node)),
                    since: peer
                        .links
                        .iter()
                        .filter_map(|l| l.last_heard)
                        .max()
                        .unwrap_or(self.started_at),
                    seen_by: vec![self.me],
                });
                continue;
            }
            // A link not heard yet since this node started is not down before it has
            // had the time a heard link has (`peer_timeout`): right after a start, a
            // healthy link whose first heartbeat is on its way is no fault.
            let starting = now < self.started_at + self.timing().peer_timeout;
            for (link_index, link) in peer.links.iter().enumerate() {
                let not_heard_yet = starting && link.last_heard.is_none();
                if !link.up && !not_heard_yet {
                    let id = LinkId(link_index as u16);
                    // The peer's report lists whom it hears on which link.
                    let peer_hears_me =
                        peer.live_report().is_some_and(|r| r.links_up.contains(&(id, self.me)));
                    let seen_by = if peer_hears_me { vec![self.me] } else { vec![self.me, node] };
                    faults.push(Fault {
                        code: &catalogue::LINK_DOWN,
                        location: self.link_location(id, node),
                        since: link.last_heard.unwrap_or(self.started_at),
                        seen_by,
                    });
                }
            }
        }
        if !self.storage_ok {
            faults.push(Fault {
                code: &catalogue::STORAGE_PATH_LOST,
                location: format!("storage path of {}", self.name(self.me)),
                since: now,
                seen_by: vec![self.me],
            });
        }
        if self.maintenance {
            faults.push(Fault {
                code: &catalogue::MAINTENANCE_ON,
                location: "cluster".into(),
                since: now,
                seen_by: vec![self.me],
            });
        }
        for (index, runtime) in self.groups.iter().enumerate() {
            let gspec = &self.spec.groups[index];
            if let (Some(_), Some(since)) = (&runtime.lock_reason, runtime.locked_since) {
                faults.push(Fault {
                    code: &catalogue::GROUP_LOCKED,
                    location: format!("group {}", gspec.name),
                    since,
                    seen_by: vec![self.me],
                });
            }
            for (r, res) in runtime.resources.iter().enumerate() {
                if let Some(since) = res.nic_down_since {
                    faults.push(Fault {
                        code: &catalogue::NIC_DOWN,
                        location: format!("{} on {}", gspec.resources[r].name, self.name(self.me)),
                        since,
                        seen_by: vec![self.me],
                    });
                }
                if res.last_failed {
                    faults.push(Fault {
                        code: &catalogue::RESOURCE_FAILED,
                        location: format!(
                            "resource {}/{} on {}",
                            gspec.name,
                            gspec.resources[r].name,
                            self.name(self.me)
                        ),
                        since: res.failures.last().copied().unwrap_or(now),
                        seen_by: vec![self.me],
                    });
                }
            }
        }
        faults
    }
}
