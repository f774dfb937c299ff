//! The parsed configuration: [`Config`] holds the engine's typed [`ClusterSpec`] plus
//! everything the engine does not need (addresses, paths, commands, agent parameters,
//! alerts, API files), kept in vectors parallel to the spec's so that an engine id
//! (`NodeId`, `LinkId`, `GroupId`, `ResourceId`) indexes both.
//!
//! These are plain data types with no parsing or I/O: `parse/` (one file per section)
//! builds them, the daemon, agents and simulator read them. A [`Config`] exists only
//! for a file without errors, so every field here is valid (names unique, references
//! resolved, durations positive where they must be).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Deref, Range};
use std::path::PathBuf;
use std::time::Duration;

use engine::catalogue::Severity;
use engine::{ClusterSpec, GroupId, GroupSpec, LinkId, NodeId, ResourceId};

/// A byte range in the configuration file.
pub type Span = Range<usize>;

/// A value with the place in the file it came from, kept for the values that host checks
/// look at (paths, interfaces, agents), so that a missing file can be shown at its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// A whole, valid configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// What the engine needs, validated. Node, link and group ids index the vectors
    /// below as well.
    pub cluster: ClusterSpec,
    /// The file name given to [`crate::parse`], used in diagnostics.
    pub file_name: String,
    /// The file's text, so that later diagnostics (host checks) can be rendered.
    pub source: String,
    /// `cluster.key_file`, default `/etc/tandem/cluster.key`.
    pub key_file: Spanned<PathBuf>,
    /// `cluster.state_dir`, default `/var/lib/tandem`.
    pub state_dir: PathBuf,
    /// Parallel to `cluster.nodes`.
    pub nodes: Vec<NodeConfig>,
    /// Parallel to `cluster.links`.
    pub links: Vec<LinkConfig>,
    pub arbitration: ArbitrationConfig,
    /// Parallel to `cluster.groups`.
    pub groups: Vec<GroupConfig>,
    pub alerts: Vec<AlertConfig>,
    pub api: ApiConfig,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The node's heartbeat address on each link, indexed by `LinkId`: `Some` for every
    /// UDP link (the link's port unless overridden by "ip:port"), `None` for disk links.
    pub addresses: Vec<Option<SocketAddr>>,
    /// Where the node serves the API and console: `api`, or by default the node's
    /// address on the first UDP link with port [`crate::API_PORT_DEFAULT`].
    pub api: SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkConfig {
    /// Heartbeats over UDP; each node's address is in [`NodeConfig::addresses`].
    Udp {
        /// `port`, default [`crate::LINK_PORT_DEFAULT`].
        port: u16,
    },
    /// Heartbeats (and, with disk arbitration, leases) in an area of a shared disk or,
    /// for tests, a plain file.
    Disk { path: Spanned<PathBuf> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArbitrationConfig {
    /// The arbitrator's kind is `cluster.arbitration`; this is the witness's address,
    /// present exactly when the kind is `Witness`.
    pub witness: Option<SocketAddr>,
    /// With disk arbitration, the disk link holding the leases.
    pub disk_link: Option<LinkId>,
    /// Where the kind was written (diagnostics of [`crate::not_in_this_version`]).
    pub kind_span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// Parallel to the spec's `GroupSpec::resources` (the listed order).
    pub resources: Vec<ResourceConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceConfig {
    /// The `[[group.resource]]` table's place in the file.
    pub span: Span,
    pub params: ResourceParams,
}

/// The kind-specific keys of a resource; the variant always matches the spec's
/// `ResourceSpec::kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceParams {
    Filesystem(FilesystemParams),
    Ip(IpParams),
    Nic {
        interface: Spanned<String>,
    },
    Process(ProcessParams),
    /// One executable called with `start`, `stop` or `status`, LSB exit codes.
    Script {
        path: Spanned<PathBuf>,
    },
    /// A script under /etc/init.d.
    Lsb {
        service: Spanned<String>,
    },
    Systemd {
        unit: Spanned<String>,
    },
    Ocf(OcfParams),
    /// The application reports its own health; failed after `deadline` without a
    /// heartbeat.
    App {
        deadline: Duration,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilesystemParams {
    pub device: Spanned<PathBuf>,
    pub mountpoint: PathBuf,
    pub fstype: String,
    /// `options` as given to mount(8) `-o`, if any.
    pub options: Option<String>,
    /// The device is read-only on every node not running the group.
    pub lock_standby: bool,
    /// Run fsck before mounting.
    pub fsck: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpParams {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// `None`: the interface whose network contains the address.
    pub interface: Option<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessParams {
    /// Program and arguments; never empty.
    pub command: Spanned<Vec<String>>,
    pub cwd: Option<Spanned<PathBuf>>,
    pub env: BTreeMap<String, String>,
    /// Run as this user; `None`: as the daemon's user.
    pub user: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcfParams {
    /// `provider` of "provider:type".
    pub provider: String,
    /// `type` of "provider:type".
    pub agent_type: String,
    /// Where the pair was written, for host checks.
    pub agent_span: Span,
    /// Passed to the agent as `OCF_RESKEY_<name>`.
    pub params: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertConfig {
    /// Events below this severity are not sent. Default `warning`.
    pub min_severity: Severity,
    /// How long the first event waits for others to go out with it. Default 2 s.
    pub gather: Duration,
    /// At most one message per this interval after the first; a storm ends after one
    /// interval without a qualifying event. Default 60 s.
    pub rate_limit: Duration,
    pub target: AlertTarget,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertTarget {
    Email {
        smtp: HostPort,
        /// Default `true`.
        starttls: bool,
        from: String,
        /// Never empty.
        to: Vec<String>,
        /// SMTP AUTH user; given together with `password_file`.
        username: Option<String>,
        /// A file readable by root only, holding the password (one line).
        password_file: Option<Spanned<PathBuf>>,
        /// PEM certificates to trust instead of the built-in public roots.
        ca_file: Option<Spanned<PathBuf>>,
    },
    Webhook {
        url: String,
        /// PEM certificates to trust instead of the built-in public roots.
        ca_file: Option<Spanned<PathBuf>>,
    },
    /// Receives the event in environment variables `TANDEM_EVENT_*`.
    Script { path: Spanned<PathBuf> },
}

/// A "host:port" pair whose host may be a name (resolved when used).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// Default `/etc/tandem/tls.crt`.
    pub tls_cert: PathBuf,
    /// Default `/etc/tandem/tls.key`.
    pub tls_key: PathBuf,
    /// Default `/etc/tandem/users.toml`.
    pub users_file: PathBuf,
    /// The cluster CA (`tandem keygen`'s ca.crt) that signed every node's certificate:
    /// what a node trusts when it calls another's API (configuration push). Default
    /// `/etc/tandem/ca.crt`.
    pub ca_file: PathBuf,
}

impl Config {
    pub fn node(&self, id: NodeId) -> &NodeConfig {
        &self.nodes[usize::from(id.0)]
    }
    pub fn link(&self, id: LinkId) -> &LinkConfig {
        &self.links[usize::from(id.0)]
    }
    pub fn group(&self, id: GroupId) -> &GroupConfig {
        &self.groups[id.0 as usize]
    }
    pub fn resource(&self, group: GroupId, resource: ResourceId) -> &ResourceConfig {
        &self.group(group).resources[usize::from(resource.0)]
    }
    /// The engine's spec and this file's parameters of one group, side by side.
    pub fn group_pair(&self, id: GroupId) -> (&GroupSpec, &GroupConfig) {
        (self.cluster.group(id), self.group(id))
    }
}
