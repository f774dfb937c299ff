//! A read-only snapshot of the cluster as one node's engine sees it: the source of
//! `GET /v1/status`, `tandem status` and the simulator's checks of its own view.

use std::time::Duration;

use crate::catalogue::CodeInfo;
use crate::io::{GroupState, NodeState};
use crate::spec::{GroupId, LinkId, NodeId, ResourceId};
use crate::time::Instant;

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub reported_by: NodeId,
    pub nodes: Vec<NodeStatus>,
    /// One entry per link and node pair.
    pub links: Vec<LinkStatus>,
    pub groups: Vec<GroupStatus>,
    pub leases: Vec<LeaseStatus>,
    /// What is wrong now.
    pub faults: Vec<Fault>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeStatus {
    pub node: NodeId,
    pub state: NodeState,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkStatus {
    pub link: LinkId,
    pub nodes: (NodeId, NodeId),
    pub up: bool,
    /// Time since the last heartbeat on this link (only for pairs with this node).
    pub last_heard: Option<Duration>,
    pub rtt: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupStatus {
    pub group: GroupId,
    /// This node's view of the group as a whole: the owner's state, `stopped` without one.
    pub state: GroupState,
    pub owner: Option<NodeId>,
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub resources: Vec<ResourceStatus>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceStatus {
    pub resource: ResourceId,
    /// On this node.
    pub state: ResourceState,
    /// Failures on this node within failure_timeout.
    pub fail_count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceState {
    Stopped,
    Starting,
    Running,
    Stopping,
    Failed,
}

impl ResourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Stopped => "stopped",
            ResourceState::Starting => "starting",
            ResourceState::Running => "running",
            ResourceState::Stopping => "stopping",
            ResourceState::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaseStatus {
    pub group: GroupId,
    pub holder: NodeId,
    /// Known only for leases this node holds.
    pub expires_in: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub code: &'static CodeInfo,
    pub location: String,
    pub since: Instant,
    /// The nodes that see it: the reporting node, and for a link down the peer too when
    /// its own report says it does not hear this node on that link either (a link down
    /// seen by one side only fails in one direction).
    pub seen_by: Vec<NodeId>,
}
