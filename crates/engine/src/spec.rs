//! The typed cluster specification: what the engine needs to know about the cluster,
//! already validated. The `config` crate builds it from `cluster.toml`; the simulator and
//! the daemon hand it to [`crate::Engine::new`]. Host details that only the shell and the
//! agents need (addresses, device paths, commands) live in the `config` crate, not here.
//!
//! Identifiers are indexes into the vectors of [`ClusterSpec`], so they are cheap to copy
//! and compare; names are for people.

use std::time::Duration;

use crate::time::scale;

/// Index of a node in [`ClusterSpec::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u16);
/// Index of a link in [`ClusterSpec::links`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u16);
/// Index of a group in [`ClusterSpec::groups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);
/// Index of a resource in its group's [`GroupSpec::resources`] (the listed order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(pub u16);

/// Upper bounds checked by the configuration and asserted by the engine (TigerStyle:
/// "put a limit on everything").
pub const NODES_MAX: usize = 32;
pub const LINKS_MAX: usize = 8;
pub const GROUPS_MAX: usize = 10_000;
pub const RESOURCES_PER_GROUP_MAX: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub name: String,
    pub timing: Timing,
    pub nodes: Vec<NodeSpec>,
    pub links: Vec<LinkSpec>,
    pub arbitration: ArbitrationKind,
    pub groups: Vec<GroupSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    pub name: String,
    pub kind: LinkKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Udp,
    Disk,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArbitrationKind {
    /// Leases on the disk link's area (delta leases).
    Disk,
    /// Leases granted by a witness process on a third host.
    Witness,
    /// No arbitration: every lease request is granted. Split brain is possible on a
    /// partition of every link; the configuration warns about it.
    None,
}

/// The `[timing]` section. Everything else the engine times is derived from these three
/// (see the methods), so that the lease arithmetic lives in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat_interval: Duration,
    pub peer_timeout: Duration,
    pub lease_timeout: Duration,
}

/// Largest clock-rate difference from real time assumed for any node's monotonic clock,
/// in parts per million (1 % — far above real quartz, to cover virtual machines).
pub const CLOCK_DRIFT_PPM_MAX: u64 = 10_000;

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_interval: Duration::from_millis(100),
            peer_timeout: Duration::from_secs(1),
            lease_timeout: Duration::from_secs(1),
        }
    }
}

impl Timing {
    /// How often a holder renews its lease: five chances within one lease timeout.
    pub fn lease_renew_interval(&self) -> Duration {
        self.lease_timeout / 5
    }
    /// How long before its lease would expire a holder that could not renew starts to
    /// stop its groups (it must be down before expiry, or it fences itself).
    pub fn lease_stop_budget(&self) -> Duration {
        scale(self.lease_timeout, 2, 5)
    }
    /// How long after the stop point (a lease's end less [`Timing::lease_stop_budget`])
    /// the fence guard acts when its daemon has not moved it: a heartbeat interval, at
    /// most a quarter of the stop budget. A live engine reaches the stop point first and
    /// moves the guard to the lease's end (it stops its groups itself); a daemon whose loop
    /// stopped (paused, hung) leaves the guard the rest of the stop budget, plus the
    /// takeover wait's margin, to stop everything before another node can be granted the
    /// lease.
    pub fn fence_guard_grace(&self) -> Duration {
        self.heartbeat_interval.min(self.lease_stop_budget() / 4)
    }
    /// How long an arbitrator must see a holder's lease record unchanged (on its own
    /// clock) before granting the lease to another node: the holder's lease timeout
    /// stretched by the worst clock-rate drift of both clocks, plus one renew interval.
    pub fn lease_takeover_wait(&self) -> Duration {
        let ppm = 1_000_000;
        scale(self.lease_timeout, ppm + CLOCK_DRIFT_PPM_MAX, ppm - CLOCK_DRIFT_PPM_MAX)
            + self.lease_renew_interval()
    }
    /// How long a starting node listens for peers before it acts alone.
    pub fn startup_wait(&self) -> Duration {
        self.peer_timeout * 2
    }
    /// Extra time the engine grants an agent operation beyond its own timeout before it
    /// declares the operation lost (the executor should have reported a timeout first).
    pub fn operation_grace(&self) -> Duration {
        self.peer_timeout
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    /// Preference order: the first is the production node, the next the standby, ...
    pub nodes: Vec<NodeId>,
    pub failback: Failback,
    pub failback_delay: Duration,
    pub migration_threshold: u32,
    pub failure_timeout: Duration,
    /// In the listed order; [`GroupSpec::start_order`] gives the effective order.
    pub resources: Vec<ResourceSpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failback {
    Manual,
    Auto,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceSpec {
    pub name: String,
    pub kind: ResourceKind,
    pub monitor_interval: Duration,
    pub monitor_timeout: Duration,
    pub start_timeout: Duration,
    pub stop_timeout: Duration,
    /// A file system's device is kept read-only on every node of the group that does not
    /// run it (`lock_standby`, guarantee 7): see [`crate::Output::LockStandby`].
    pub lock_standby: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Filesystem,
    Ip,
    Nic,
    Process,
    Script,
    Lsb,
    Systemd,
    Ocf,
    App,
}

/// The class of the implicit safe ordering (seed 3.5): storage, then network, then
/// applications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceClass {
    Storage,
    Network,
    Application,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 9] = [
        ResourceKind::Filesystem,
        ResourceKind::Ip,
        ResourceKind::Nic,
        ResourceKind::Process,
        ResourceKind::Script,
        ResourceKind::Lsb,
        ResourceKind::Systemd,
        ResourceKind::Ocf,
        ResourceKind::App,
    ];

    pub fn class(self) -> ResourceClass {
        match self {
            ResourceKind::Filesystem => ResourceClass::Storage,
            ResourceKind::Ip | ResourceKind::Nic => ResourceClass::Network,
            _ => ResourceClass::Application,
        }
    }

    /// A monitor-only resource is watched on every node that may run its group and is
    /// never started or stopped: its failure makes the node ineligible for the group
    /// (no restart in place can mend a lost carrier).
    pub fn is_monitor_only(self) -> bool {
        matches!(self, ResourceKind::Nic)
    }

    /// The name used in `cluster.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Filesystem => "filesystem",
            ResourceKind::Ip => "ip",
            ResourceKind::Nic => "nic",
            ResourceKind::Process => "process",
            ResourceKind::Script => "script",
            ResourceKind::Lsb => "lsb",
            ResourceKind::Systemd => "systemd",
            ResourceKind::Ocf => "ocf",
            ResourceKind::App => "app",
        }
    }

    pub fn from_name(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl GroupSpec {
    /// The effective start order (PRODUCT.md section 2): by class, keeping the listed
    /// order inside a class. Stop order is its exact reverse.
    pub fn start_order(&self) -> Vec<ResourceId> {
        let mut order: Vec<ResourceId> =
            (0..self.resources.len()).map(|i| ResourceId(i as u16)).collect();
        // A stable sort keeps the listed order within a class.
        order.sort_by_key(|r| self.resources[usize::from(r.0)].kind.class());
        order
    }

    pub fn resource(&self, id: ResourceId) -> &ResourceSpec {
        &self.resources[usize::from(id.0)]
    }

    /// Whether a resource of the group keeps its device read-only where the group does
    /// not run (`lock_standby`).
    pub fn locks_standby(&self) -> bool {
        self.resources.iter().any(|r| r.lock_standby)
    }

    /// Whether the group needs the shared storage path (it mounts a file system).
    pub fn uses_storage(&self) -> bool {
        self.resources.iter().any(|r| r.kind == ResourceKind::Filesystem)
    }
}

impl ClusterSpec {
    pub fn node(&self, id: NodeId) -> &NodeSpec {
        &self.nodes[usize::from(id.0)]
    }
    pub fn link(&self, id: LinkId) -> &LinkSpec {
        &self.links[usize::from(id.0)]
    }
    pub fn group(&self, id: GroupId) -> &GroupSpec {
        &self.groups[id.0 as usize]
    }
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name).map(|i| NodeId(i as u16))
    }
    pub fn group_id(&self, name: &str) -> Option<GroupId> {
        self.groups.iter().position(|g| g.name == name).map(|i| GroupId(i as u32))
    }
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.nodes.len()).map(|i| NodeId(i as u16))
    }
    pub fn link_ids(&self) -> impl Iterator<Item = LinkId> {
        (0..self.links.len()).map(|i| LinkId(i as u16))
    }
    pub fn group_ids(&self) -> impl Iterator<Item = GroupId> {
        (0..self.groups.len()).map(|i| GroupId(i as u32))
    }
    /// The longest a group's stop can take: the sum of its resources' stop timeouts, for
    /// the slowest group.
    pub fn slowest_group_stop(&self) -> Duration {
        let stops = self.groups.iter();
        stops.map(|g| g.resources.iter().map(|r| r.stop_timeout).sum()).max().unwrap_or_default()
    }
    /// How long a node given a stop signal waits for its engine to hand its groups over
    /// ([`crate::Engine::is_quiescent`]) before it exits with its fence guard armed: the
    /// slowest group's stop, a lease timeout (a renewal or release in flight) and 2 s.
    pub fn shutdown_budget(&self) -> Duration {
        self.slowest_group_stop() + self.timing.lease_timeout + Duration::from_secs(2)
    }
}
