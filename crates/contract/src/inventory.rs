//! The inventory document: what one host has to choose from when a cluster or a group
//! is configured ([`Inventory`]): its network interfaces with their addresses, its block
//! devices and partitions with their file systems, the OCF resource agents installed with
//! the parameters of their `meta-data`, its systemd units and its LSB init scripts.
//! Answered by `GET /v1/nodes/{n}/inventory` (admin) and printed by `tandem inventory
//! --json`; the console's form editor offers its choices from it.
//!
//! A part that could not be read (fully) is not a failed document: it is listed in
//! [`Inventory::problems`] with the part, a catalogue code and the reason, and the part
//! holds what was found. Keys may be added, never renamed (like the status document).

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What one host has to choose from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Inventory {
    /// The host's name (uname's node name).
    pub host: String,
    /// The cluster node that answered (`GET /v1/nodes/{n}/inventory`); `null` when the
    /// inventory was taken by `tandem inventory` without a node.
    pub node: Option<String>,
    /// When it was taken, RFC 3339, UTC, to the second.
    pub taken_at: String,
    /// How long taking it took, milliseconds.
    pub took_ms: u64,
    /// Network interfaces, by name.
    pub interfaces: Vec<Interface>,
    /// Block devices and their partitions (those of size 0, such as unused loop
    /// devices, are left out), by name.
    pub block_devices: Vec<BlockDevice>,
    /// OCF resource agents, by provider then name.
    pub ocf_agents: Vec<OcfAgent>,
    /// systemd services, mounts and timers, by name.
    pub systemd_units: Vec<SystemdUnit>,
    /// Scripts in /etc/init.d, by name.
    pub lsb_scripts: Vec<LsbScript>,
    /// What could not be read: empty when every part is complete.
    pub problems: Vec<InventoryProblem>,
}

impl Inventory {
    /// The interface named `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The OCF agent `provider:name` (e.g. `heartbeat:Dummy`).
    pub fn ocf_agent(&self, provider: &str, name: &str) -> Option<&OcfAgent> {
        self.ocf_agents.iter().find(|a| a.provider == provider && a.name == name)
    }

    /// The problems of one part.
    pub fn problems_of(&self, part: InventoryPart) -> impl Iterator<Item = &InventoryProblem> {
        self.problems.iter().filter(move |p| p.part == part)
    }
}

/// A part of the inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InventoryPart {
    Interfaces,
    BlockDevices,
    OcfAgents,
    SystemdUnits,
    LsbScripts,
}

impl InventoryPart {
    /// Every part, in the document's order.
    pub const ALL: &'static [InventoryPart] = &[
        InventoryPart::Interfaces,
        InventoryPart::BlockDevices,
        InventoryPart::OcfAgents,
        InventoryPart::SystemdUnits,
        InventoryPart::LsbScripts,
    ];

    /// The word of the JSON form (the document's key).
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryPart::Interfaces => "interfaces",
            InventoryPart::BlockDevices => "block_devices",
            InventoryPart::OcfAgents => "ocf_agents",
            InventoryPart::SystemdUnits => "systemd_units",
            InventoryPart::LsbScripts => "lsb_scripts",
        }
    }
}

impl std::fmt::Display for InventoryPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Something a part could not read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryProblem {
    pub part: InventoryPart,
    /// The catalogue's code (docs/errors.md), e.g. `W5325`.
    pub code: String,
    pub message: String,
}

/// A network interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Interface {
    pub name: String,
    /// The kernel's interface index.
    pub index: u32,
    /// The operational state (RFC 2863, the kernel's `operstate`).
    pub state: OperState,
    /// Administratively up (`ip link set NAME up`).
    pub up: bool,
    /// The lower layer is up: a cable, a peer of a veth, a bridge with a port.
    pub carrier: bool,
    /// The hardware address, lowercase `aa:bb:cc:dd:ee:ff`; `null` when it has none.
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub loopback: bool,
    pub addresses: Vec<InterfaceAddress>,
}

/// An interface's operational state, the kernel's `operstate` word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

/// An address on an interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InterfaceAddress {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// `host`, `link`, `site` or `global`.
    pub scope: String,
}

/// A block device or a partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockDevice {
    /// The kernel's name (`vda`, `vda1`, `loop3`).
    pub name: String,
    /// Its device node, `/dev/NAME`.
    pub path: String,
    /// `major:minor`.
    pub dev: String,
    /// The disk a partition is on; `null` for a whole device.
    pub parent: Option<String>,
    pub size_bytes: u64,
    pub read_only: bool,
    /// The file system or other signature found on it (`ext4`, `xfs`, `swap`, `LVM2_member`).
    pub fs_type: Option<String>,
    pub uuid: Option<String>,
    pub label: Option<String>,
    /// Where it is mounted, in this host's mount namespace.
    pub mount_points: Vec<String>,
}

/// An OCF resource agent (`ocf:PROVIDER:NAME`) and its meta-data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OcfAgent {
    pub provider: String,
    pub name: String,
    pub path: String,
    pub version: Option<String>,
    pub shortdesc: Option<String>,
    pub longdesc: Option<String>,
    pub parameters: Vec<OcfParameter>,
    pub actions: Vec<OcfAction>,
    /// Why the meta-data is missing (its code and reason); the lists are then empty.
    pub meta_data_error: Option<String>,
}

/// A parameter of an OCF agent, from its meta-data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OcfParameter {
    pub name: String,
    pub required: bool,
    pub unique: bool,
    /// The content type: `string`, `integer`, `boolean`, `select`, ...
    #[serde(rename = "type")]
    pub value_type: Option<String>,
    pub default: Option<String>,
    pub shortdesc: Option<String>,
    pub longdesc: Option<String>,
    /// The choices of a `select` parameter.
    pub options: Vec<String>,
}

/// An action an OCF agent advertises, with its advised timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OcfAction {
    pub name: String,
    pub timeout: Option<String>,
    pub interval: Option<String>,
    pub depth: Option<String>,
}

/// A systemd unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SystemdUnit {
    /// `NAME.service`, `NAME.mount`, `NAME.timer`.
    pub name: String,
    pub description: Option<String>,
    /// `loaded`, `not-found`, `masked`, ...; `not-loaded` for a unit file systemd has
    /// not loaded.
    pub load_state: String,
    /// `active`, `inactive`, `failed`, `activating`, ...
    pub active_state: String,
    /// `running`, `exited`, `dead`, `mounted`, `waiting`, ...; `null` when not loaded.
    pub sub_state: Option<String>,
    /// The unit file's state: `enabled`, `disabled`, `static`, `masked`, ...; `null`
    /// for a unit without a file (generated, transient).
    pub file_state: Option<String>,
}

/// A script in /etc/init.d.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LsbScript {
    pub name: String,
    pub path: String,
    pub executable: bool,
    /// It has an LSB header (`### BEGIN INIT INFO` ... `### END INIT INFO`).
    pub lsb_header: bool,
    /// The header's `Short-Description`.
    pub short_description: Option<String>,
}
