//! Built-in cluster specifications for tests and for `tandem simulate` without a
//! configuration file: a small builder over [`engine::ClusterSpec`] and two ready-made
//! clusters (two nodes, three nodes) that exercise every resource class, both failback
//! modes, a `nic` resource and the three kinds of heartbeat link.
//!
//! This module only builds specs; it must not validate them the way the `config` crate
//! does (names are trusted here) nor know anything about the simulator.

use std::time::Duration;

use engine::{
    ArbitrationKind, ClusterSpec, Failback, GroupSpec, LinkKind, LinkSpec, NodeSpec, ResourceKind,
    ResourceSpec, Timing,
};

/// Builds a [`ClusterSpec`] by names. Panics on unknown node names: it is for tests and
/// built-in clusters, whose names are written in the code.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    spec: ClusterSpec,
}

impl ClusterBuilder {
    pub fn new(name: &str) -> ClusterBuilder {
        ClusterBuilder {
            spec: ClusterSpec {
                name: name.to_owned(),
                timing: Timing::default(),
                nodes: Vec::new(),
                links: Vec::new(),
                arbitration: ArbitrationKind::Disk,
                groups: Vec::new(),
            },
        }
    }

    pub fn timing(mut self, timing: Timing) -> Self {
        self.spec.timing = timing;
        self
    }

    pub fn node(mut self, name: &str) -> Self {
        self.spec.nodes.push(NodeSpec { name: name.to_owned() });
        self
    }

    pub fn link(mut self, name: &str, kind: LinkKind) -> Self {
        self.spec.links.push(LinkSpec { name: name.to_owned(), kind });
        self
    }

    pub fn arbitration(mut self, kind: ArbitrationKind) -> Self {
        self.spec.arbitration = kind;
        self
    }

    /// Adds a group with the defaults of the configuration file (failback delay 30 s,
    /// migration threshold 3, failure timeout 10 min) and no resources yet.
    pub fn group(mut self, name: &str, nodes: &[&str], failback: Failback) -> Self {
        let nodes = nodes
            .iter()
            .map(|n| self.spec.node_id(n).unwrap_or_else(|| panic!("unknown node {n}")))
            .collect();
        self.spec.groups.push(GroupSpec {
            name: name.to_owned(),
            nodes,
            failback,
            failback_delay: Duration::from_secs(30),
            migration_threshold: 3,
            failure_timeout: Duration::from_secs(600),
            resources: Vec::new(),
        });
        self
    }

    /// Adds a resource to the last group added, with moderate operation timeouts.
    pub fn resource(mut self, name: &str, kind: ResourceKind) -> Self {
        let group = self.spec.groups.last_mut().expect("resource() before group()");
        group.resources.push(ResourceSpec {
            name: name.to_owned(),
            kind,
            monitor_interval: Duration::from_secs(5),
            monitor_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(20),
            stop_timeout: Duration::from_secs(20),
            // Every file system of the built-in clusters is locked on standbys, so that
            // the simulator checks guarantee 7 on them.
            lock_standby: kind == ResourceKind::Filesystem,
        });
        self
    }

    pub fn build(self) -> ClusterSpec {
        self.spec
    }
}

/// Two nodes (alpha, beta), links private/public (UDP) and disk, disk arbitration.
/// Group `db` (alpha then beta, manual failback): a file system, an address and a
/// database listed out of class order, so that the effective order matters. Group `web`
/// (beta then alpha, automatic failback): an application listed before a `nic` watch.
pub fn two_node() -> ClusterSpec {
    ClusterBuilder::new("sim-two")
        .node("alpha")
        .node("beta")
        .link("private", LinkKind::Udp)
        .link("public", LinkKind::Udp)
        .link("disk", LinkKind::Disk)
        .group("db", &["alpha", "beta"], Failback::Manual)
        .resource("postgres", ResourceKind::Systemd)
        .resource("data", ResourceKind::Filesystem)
        .resource("vip", ResourceKind::Ip)
        .group("web", &["beta", "alpha"], Failback::Auto)
        .resource("app", ResourceKind::Process)
        .resource("uplink", ResourceKind::Nic)
        .build()
}

/// Three nodes (alpha, beta, gamma) with the links of [`two_node`]; `db` may run on all
/// three, `web` on beta then gamma, `batch` on gamma then alpha.
pub fn three_node() -> ClusterSpec {
    ClusterBuilder::new("sim-three")
        .node("alpha")
        .node("beta")
        .node("gamma")
        .link("private", LinkKind::Udp)
        .link("public", LinkKind::Udp)
        .link("disk", LinkKind::Disk)
        .group("db", &["alpha", "beta", "gamma"], Failback::Manual)
        .resource("data", ResourceKind::Filesystem)
        .resource("vip", ResourceKind::Ip)
        .resource("postgres", ResourceKind::Systemd)
        .group("web", &["beta", "gamma"], Failback::Auto)
        .resource("uplink", ResourceKind::Nic)
        .resource("app", ResourceKind::Process)
        .group("batch", &["gamma", "alpha"], Failback::Manual)
        .resource("worker", ResourceKind::Ocf)
        .build()
}

/// A built-in cluster by name: `two-node` or `three-node`.
pub fn builtin(name: &str) -> Option<ClusterSpec> {
    match name {
        "two-node" => Some(two_node()),
        "three-node" => Some(three_node()),
        _ => None,
    }
}

/// The names [`builtin`] accepts.
pub const BUILTIN_NAMES: [&str; 2] = ["two-node", "three-node"];

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{GroupId, ResourceId};

    #[test]
    fn two_node_orders_resources_by_class() {
        let spec = two_node();
        let db = spec.group(GroupId(0));
        let names: Vec<&str> =
            db.start_order().into_iter().map(|r| db.resource(r).name.as_str()).collect();
        assert_eq!(names, ["data", "vip", "postgres"]);
        assert_eq!(spec.group(GroupId(1)).resource(ResourceId(1)).kind, ResourceKind::Nic);
    }

    #[test]
    fn builtin_names_resolve() {
        for name in BUILTIN_NAMES {
            let spec = builtin(name).unwrap();
            assert!(spec.nodes.len() >= 2);
            for group in &spec.groups {
                assert!(group.nodes.iter().all(|n| usize::from(n.0) < spec.nodes.len()));
            }
        }
        assert!(builtin("four-node").is_none());
    }
}
