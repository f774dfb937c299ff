//! The inventory of this host: what a node has to choose from when a cluster or a group
//! is configured ([`contract::Inventory`]): network interfaces with their addresses
//! (rtnetlink, [`interfaces`]), block devices and partitions with their file systems and
//! mount points (sysfs, mountinfo, `blkid`, [`block`]), OCF agents with their
//! parameters from `meta-data` ([`ocf`]), systemd units over D-Bus ([`systemd`]) and LSB
//! init scripts ([`lsb`]). Served by `GET /v1/nodes/{n}/inventory` (admin) and printed
//! by `tandem inventory`.
//!
//! **Bounded in time.** Each part runs on a thread of its own; every call a part makes
//! has its own timeout ([`Sources::call_timeout`]: an agent's `meta-data`, one `blkid`,
//! a D-Bus or netlink answer) and none starts past the inventory's deadline
//! ([`Sources::deadline`]). [`take`] waits for the parts until the deadline plus
//! [`PART_MARGIN`] (time for a killed call's process group to be reaped) and reports a
//! part not finished by then as late (W5324) with nothing found: a hung agent, disk or
//! systemd never hangs the request. A part that fails is a problem inside the document
//! (W5323 and the part's own codes), never a failed request.
//!
//! It reads only; it changes nothing on the host (the agents' `meta-data` action is
//! the one program of theirs it runs).

pub mod block;
pub mod interfaces;
pub mod lsb;
pub mod ocf;
pub mod systemd;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use contract::{Inventory, InventoryPart, InventoryProblem};
use engine::catalogue::{
    CodeInfo, INVENTORY_BLKID, INVENTORY_META_DATA, INVENTORY_NO_SYSTEMD, INVENTORY_PART_FAILED,
    INVENTORY_PART_LATE,
};

pub use block::BlockSources;
pub use systemd::SystemdBus;

/// The whole inventory's deadline: well within the API's answer time (30 s).
pub const DEADLINE: Duration = Duration::from_secs(20);
/// One call's timeout: an agent's `meta-data` (the OCF agents advise 5 s for it), one
/// `blkid`, a D-Bus or netlink answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long past the deadline a part may take to end: a call killed at the deadline
/// has its process group reaped within 2 s.
pub const PART_MARGIN: Duration = Duration::from_millis(2500);

/// Where the inventory looks: this host's places by default ([`Sources::host`]), others
/// in tests.
#[derive(Clone, Debug)]
pub struct Sources {
    /// `OCF_ROOT`: the agents are under `resource.d`.
    pub ocf_root: PathBuf,
    /// The LSB init scripts' directory.
    pub init_dir: PathBuf,
    pub block: BlockSources,
    pub systemd: SystemdBus,
    pub call_timeout: Duration,
    pub deadline: Duration,
}

impl Sources {
    /// This host: /usr/lib/ocf, /etc/init.d, /sys, /proc/self/mountinfo, /dev, `blkid`
    /// if installed, systemd on the system bus.
    pub fn host() -> Sources {
        Sources {
            ocf_root: PathBuf::from(agents::DEFAULT_OCF_ROOT),
            init_dir: PathBuf::from(agents::DEFAULT_INIT_DIR),
            block: BlockSources {
                sys: PathBuf::from("/sys"),
                mountinfo: PathBuf::from("/proc/self/mountinfo"),
                dev: PathBuf::from("/dev"),
                blkid: find_program("blkid"),
            },
            systemd: SystemdBus::System,
            call_timeout: CALL_TIMEOUT,
            deadline: DEADLINE,
        }
    }
}

/// Where `program` is: on `PATH`, or in /usr/sbin or /sbin (where blkid lives and a
/// daemon's PATH may not reach).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// What one part found: its entries into the document, and its problems.
struct Found {
    part: InventoryPart,
    fill: Box<dyn FnOnce(&mut Inventory) + Send>,
    problems: Vec<(&'static CodeInfo, String)>,
}

impl Found {
    fn new(part: InventoryPart, fill: impl FnOnce(&mut Inventory) + Send + 'static) -> Found {
        Found { part, fill: Box::new(fill), problems: Vec::new() }
    }

    fn failed(part: InventoryPart, code: &'static CodeInfo, why: String) -> Found {
        Found { part, fill: Box::new(|_| {}), problems: vec![(code, why)] }
    }

    fn with(mut self, problem: Option<(&'static CodeInfo, String)>) -> Found {
        self.problems.extend(problem);
        self
    }
}

/// The inventory of this host from `sources`, answered as `node` (`None`: without a
/// node); back within the deadline plus [`PART_MARGIN`] whatever the parts do.
pub fn take(sources: &Sources, node: Option<&str>) -> Inventory {
    let began = Instant::now();
    let deadline = began + sources.deadline;
    let (tx, rx) = mpsc::channel::<Found>();
    for part in InventoryPart::ALL {
        let (sender, sources, part) = (tx.clone(), sources.clone(), *part);
        let spawned =
            std::thread::Builder::new().name(format!("inventory-{part}")).spawn(move || {
                let _ = sender.send(discover(part, &sources, deadline));
            });
        if let Err(e) = spawned {
            let why = format!("{part}: cannot start a thread: {e}");
            let _ = tx.send(Found::failed(part, &INVENTORY_PART_FAILED, why));
        }
    }
    drop(tx);
    let mut inventory = Inventory {
        host: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        node: node.map(str::to_string),
        taken_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        took_ms: 0,
        interfaces: Vec::new(),
        block_devices: Vec::new(),
        ocf_agents: Vec::new(),
        systemd_units: Vec::new(),
        lsb_scripts: Vec::new(),
        problems: Vec::new(),
    };
    let mut done = Vec::new();
    while done.len() < InventoryPart::ALL.len() {
        let wait = (deadline + PART_MARGIN).saturating_duration_since(Instant::now());
        let Ok(found) = rx.recv_timeout(wait) else { break };
        done.push(found.part);
        (found.fill)(&mut inventory);
        inventory.problems.extend(found.problems.into_iter().map(|(code, message)| {
            InventoryProblem { part: found.part, code: code.code.to_string(), message }
        }));
    }
    for part in InventoryPart::ALL.iter().filter(|p| !done.contains(p)) {
        inventory.problems.push(InventoryProblem {
            part: *part,
            code: INVENTORY_PART_LATE.code.to_string(),
            message: format!(
                "{part}: not finished within the inventory's deadline ({:?})",
                sources.deadline
            ),
        });
    }
    inventory.problems.sort_by_key(|p| InventoryPart::ALL.iter().position(|q| *q == p.part));
    inventory.took_ms = began.elapsed().as_millis() as u64;
    inventory
}

/// One part, run to its end (on its own thread).
fn discover(part: InventoryPart, sources: &Sources, deadline: Instant) -> Found {
    let failed =
        |why: String| Found::failed(part, &INVENTORY_PART_FAILED, format!("{part}: {why}"));
    let timeout = sources.call_timeout;
    match part {
        InventoryPart::Interfaces => {
            match interfaces::discover(deadline.min(Instant::now() + timeout)) {
                Ok(found) => Found::new(part, move |i| i.interfaces = found),
                Err(why) => failed(why),
            }
        }
        InventoryPart::BlockDevices => match block::discover(&sources.block, timeout, deadline) {
            Ok((found, problem)) => Found::new(part, move |i| i.block_devices = found)
                .with(problem.map(|p| (&INVENTORY_BLKID, p))),
            Err(why) => failed(why),
        },
        InventoryPart::OcfAgents => match ocf::discover(&sources.ocf_root, timeout, deadline) {
            Ok((found, problems)) => {
                let mut found = Found::new(part, move |i| i.ocf_agents = found);
                found.problems.extend(problems.into_iter().map(|p| (&INVENTORY_META_DATA, p)));
                found
            }
            Err(why) => failed(why),
        },
        InventoryPart::SystemdUnits => {
            match systemd::discover(&sources.systemd, deadline.min(Instant::now() + timeout)) {
                Ok(found) => Found::new(part, move |i| i.systemd_units = found),
                Err(systemd::Failure::NotRunning) => Found::failed(
                    part,
                    &INVENTORY_NO_SYSTEMD,
                    "systemd is not running on this host (no /run/systemd/system): no units \
                     to choose from"
                        .into(),
                ),
                Err(systemd::Failure::Failed(why)) => failed(why),
            }
        }
        InventoryPart::LsbScripts => match lsb::discover(&sources.init_dir) {
            Ok(found) => Found::new(part, move |i| i.lsb_scripts = found),
            Err(why) => failed(why),
        },
    }
}

/// The node-only route on which a node answers its own inventory to another node
/// (signed with the cluster key, like the push's calls).
pub const NODE_PATH: &str = "/v1/config/node/inventory";
/// How long a node waits for another node's inventory: that node's deadline and margin,
/// and time for the call itself.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(25);

/// Node `node`'s inventory, fetched from it by this node over the node call signed with
/// the cluster key (`GET` [`NODE_PATH`]; its certificate checked against the cluster
/// CA): `GET /v1/nodes/{n}/inventory` asked of another node. Blocking.
pub fn fetch(configs: &crate::configstore::Service, node: &str) -> Result<Inventory, String> {
    configs.node_get(node, NODE_PATH, FETCH_TIMEOUT)
}

/// `GET /v1/nodes/{n}/inventory`'s side of the node: who it is, where the other nodes'
/// APIs are (a request for another node is sent there: 421, E5321), where it looks,
/// and one inventory at a time.
pub struct Service {
    /// This node's name.
    pub node: String,
    /// Every node's name and API address, this one's too, in the configuration's order.
    pub apis: Vec<(String, SocketAddr)>,
    pub sources: Sources,
    /// One inventory at a time: a second request waits for the first one's end.
    pub slot: tokio::sync::Semaphore,
}

impl Service {
    /// The service of node `node` among `apis`, looking at this host.
    pub fn new(node: String, apis: Vec<(String, SocketAddr)>) -> Service {
        Service::with_sources(node, apis, Sources::host())
    }

    pub fn with_sources(
        node: String,
        apis: Vec<(String, SocketAddr)>,
        sources: Sources,
    ) -> Service {
        Service { node, apis, sources, slot: tokio::sync::Semaphore::new(1) }
    }
}
