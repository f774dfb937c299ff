//! The real lab: several "hosts" on one machine, joined by two switched networks
//! (`private` for node-to-node traffic, `public` where clients are), plus a `client` on
//! the public network and an optional shared disk (a loop device per host over one image
//! file). Tests, benchmarks and `tandem demo` build a [`Lab`], run commands and
//! long-lived processes (a `tandem node` per host) inside its machines, and inject
//! faults: network cuts, cuts between two hosts, packet loss, carrier loss, a lost disk
//! path, a killed process, a host crash (see "Faults" on [`Lab`]).
//!
//! Each machine (host or client) is a network namespace plus a small init (the crate's
//! `testbed-init`, see [`init`]) that is PID 1 of the machine's own PID namespace, in a
//! private mount namespace of its own: `/etc/tandem`, `/var/lib/tandem` and `/run` there
//! are bind mounts of per-machine directories of the lab ([`Lab::host_dir`]), so that
//! tests can write a host's configuration from outside and nothing collides between
//! hosts; `/sys` shows the machine's own interfaces. [`Lab::exec`] and [`Lab::spawn`]
//! enter all three namespaces (`nsenter`). The init reaps every orphan at once, and
//! killing it kills everything in the machine, which makes a crash exact.
//!
//! It owns every namespace, interface, loop device, image file and directory it creates
//! and removes them all on `Drop`, also when a test fails or panics; [`sweep`] removes
//! what a killed test process left behind, by this crate's naming scheme only (see
//! `names.rs`). The only things it leaves on the machine are the empty mount points
//! `/etc/tandem` and `/var/lib/tandem`, created when missing (other labs may be using
//! them). It must not send traffic anywhere but inside its own namespaces (there is no
//! default route and no bridge is attached to a physical interface), and it never
//! signals a process except through a pidfd opened on a process found inside one of its
//! own machines, or by the PID of its own unreaped child.
//!
//! Built on the `ip`, `nft`, `losetup`, `mkfs.ext4`, `unshare` and `nsenter` commands
//! (iproute2, nftables, util-linux, e2fsprogs) rather than netlink crates: every step is
//! one readable command that can be replayed by hand when a lab misbehaves. Each network
//! is a bridge inside the lab's own "switch" namespace, so no interface of the lab ever
//! exists in the machine's root namespace and interface names (at most 15 bytes) never
//! collide between labs. Network faults are nftables rules on that bridge (`netfault.rs`),
//! except carrier loss, which downs the switch-side end of the machine's veth. A disk
//! path is lost by shrinking the host's own loop device to one sector (`loopctl.rs`,
//! the crate's only `unsafe` code), since this machine has no device-mapper.
//!
//! Running it needs root and `TANDEM_LAB=1`; [`availability`] says whether a lab can be
//! built here, and why not. The init program is found next to the running executable
//! (or its parent directory, for test binaries in `target/*/deps`), or named by
//! `TESTBED_INIT` or [`LabBuilder::init_command`].

mod command;
mod disk;
pub mod flood;
mod forward;
mod host;
pub mod init;
mod loopctl;
mod names;
mod netfault;

use std::ffi::OsString;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

pub use command::Output;
pub use disk::{SharedDisk, AREA_MIB_MAX, DISK_MIB_MAX, DISK_MIB_MIN};
pub use flood::{Flood, Flooded};
pub use forward::Forward;
pub use host::Spawned;
pub use names::{leftovers, sweep, Swept};

/// A directory for files whose synchronous writes must not wait for the machine's own
/// disk: `/dev/shm` when it is a tmpfs, the temporary directory otherwise. The lab keeps
/// its images there, and the file-backed disk areas of tests and of the loopback demo
/// belong there too: over a file on a busy system disk one `O_DSYNC` write took up to
/// 450 ms, fifteen disk I/O timeouts (measured 2026-12-06, docs/design-notes.md).
pub fn memory_dir() -> PathBuf {
    names::image_dir()
}

use command::run_ok;
use host::Init;
use netfault::NetFaults;

/// Most hosts one lab may have (addresses are `.10` to `.10 + HOSTS_MAX - 1`).
pub const HOSTS_MAX: usize = 16;

/// How long [`Lab::exec`] lets a command run before killing it.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// The tools a lab needs on `PATH`.
pub const TOOLS: &[&str] = &["ip", "nft", "losetup", "mkfs.ext4", "unshare", "nsenter"];

/// The Debian package that has each of [`TOOLS`].
pub const TOOL_PACKAGES: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("losetup", "mount"),
    ("mkfs.ext4", "e2fsprogs"),
    ("unshare", "util-linux"),
    ("nsenter", "util-linux"),
];

/// The Debian packages that have `tools` (each once, in order).
pub fn packages_for(tools: &[&str]) -> Vec<&'static str> {
    let mut packages = Vec::new();
    for tool in tools {
        if let Some((_, package)) = TOOL_PACKAGES.iter().find(|(t, _)| t == tool) {
            if !packages.contains(package) {
                packages.push(*package);
            }
        }
    }
    packages
}

/// The name of the init program, and the variable that may name its path instead.
pub const INIT_PROGRAM: &str = "testbed-init";
/// See [`INIT_PROGRAM`].
pub const INIT_PROGRAM_VARIABLE: &str = "TESTBED_INIT";

/// How long a crashed host's old ext4 mount may take to go away before its disk path
/// comes back.
const MOUNT_GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// The size a lost disk path leaves of the host's loop device: one sector.
const LOST_DISK_BYTES: u64 = 512;

/// The error of any lab operation: what was being done and why it failed.
#[derive(Debug)]
pub struct LabError {
    message: String,
}

impl LabError {
    fn new(message: String) -> LabError {
        LabError { message }
    }

    fn io(doing: &str, error: std::io::Error) -> LabError {
        LabError { message: format!("{doing}: {error}") }
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LabError {}

/// The [`TOOLS`] not found on `PATH` (nor in /usr/sbin, /sbin).
pub fn missing_tools() -> Vec<&'static str> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    TOOLS
        .iter()
        .copied()
        .filter(|tool| {
            !std::env::split_paths(&path)
                .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
                .any(|dir| dir.join(tool).is_file())
        })
        .collect()
}

/// Whether a lab can be built here: `Ok` when `TANDEM_LAB=1`, the process is root and
/// every tool of [`TOOLS`] is installed; otherwise the reason, to print as a skip line.
pub fn availability() -> Result<(), String> {
    if std::env::var_os("TANDEM_LAB").as_deref() != Some("1".as_ref()) {
        return Err("TANDEM_LAB is not set to 1 (the lab tests are opt-in)".to_owned());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("the lab needs root (network namespaces, loop devices)".to_owned());
    }
    let missing = missing_tools();
    if !missing.is_empty() {
        return Err(format!("missing tools: {}", missing.join(", ")));
    }
    Ok(())
}

/// One of the lab's two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// Node-to-node traffic (heartbeats), 192.168.250.0/24.
    Private,
    /// Where clients reach the services, 192.168.251.0/24.
    Public,
}

impl Network {
    /// Both networks.
    pub const ALL: [Network; 2] = [Network::Private, Network::Public];

    /// The short name used in interface names.
    pub fn name(self) -> &'static str {
        match self {
            Network::Private => "priv",
            Network::Public => "pub",
        }
    }

    /// The third octet of the network's /24 (a range kept for the lab's tests only).
    fn octet(self) -> u8 {
        match self {
            Network::Private => 250,
            Network::Public => 251,
        }
    }

    /// The bridge's name inside the switch namespace.
    fn bridge(self) -> String {
        format!("br-{}", self.name())
    }

    /// The interface's name inside a host or the client.
    pub fn interface(self) -> String {
        format!("{}0", self.name())
    }
}

/// A machine of the lab: one of the hosts (numbered from 0) or the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// Host number `n` (0-based), where a tandem node runs.
    Host(usize),
    /// The client, on the public network only.
    Client,
}

impl Node {
    /// The namespace suffix and switch-port prefix: `h0`, `h1`, ..., `cl`.
    fn tag(self) -> String {
        match self {
            Node::Host(n) => format!("h{n}"),
            Node::Client => "cl".to_owned(),
        }
    }

    /// The last octet of the node's addresses.
    fn octet(self) -> u8 {
        match self {
            // HOSTS_MAX keeps this within 10..26.
            Node::Host(n) => 10 + n as u8,
            Node::Client => 200,
        }
    }

    /// The switch-side end of the node's veth on `network` (at most 8 bytes).
    pub(crate) fn port(self, network: Network) -> String {
        format!("{}-{}", self.tag(), network.name())
    }
}

/// A directory every lab machine has of its own: a bind mount, inside the machine, of a
/// directory of the lab that tests read and write from outside ([`Lab::host_dir`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostDir {
    /// `/etc/tandem`: the configuration (kept across a crash, as on a disk).
    EtcTandem,
    /// `/var/lib/tandem`: the state directory (kept across a crash).
    VarLibTandem,
    /// `/run`: runtime state such as PID files (emptied by a crash, as a tmpfs is).
    Run,
}

impl HostDir {
    /// All of them.
    pub const ALL: [HostDir; 3] = [HostDir::EtcTandem, HostDir::VarLibTandem, HostDir::Run];

    /// Where the machine sees it.
    pub fn inside(self) -> &'static str {
        match self {
            HostDir::EtcTandem => "/etc/tandem",
            HostDir::VarLibTandem => "/var/lib/tandem",
            HostDir::Run => "/run",
        }
    }

    /// Its name under the machine's directory of the lab.
    fn name(self) -> &'static str {
        match self {
            HostDir::EtcTandem => "etc-tandem",
            HostDir::VarLibTandem => "var-lib-tandem",
            HostDir::Run => "run",
        }
    }
}

/// How to build a [`Lab`]; from [`Lab::builder`].
#[derive(Clone, Debug)]
pub struct LabBuilder {
    hosts: usize,
    client: bool,
    disk_mib: Option<u64>,
    area_mib: u64,
    init_command: Option<Vec<OsString>>,
}

impl LabBuilder {
    /// The number of hosts, 1 to [`HOSTS_MAX`] (default 2).
    pub fn hosts(mut self, hosts: usize) -> LabBuilder {
        self.hosts = hosts;
        self
    }

    /// Whether to add the client on the public network (default yes).
    pub fn client(mut self, client: bool) -> LabBuilder {
        self.client = client;
        self
    }

    /// Adds a shared disk of `size_mib` MiB, formatted with ext4, one loop device per host.
    /// A heartbeat area of `size_mib` MiB on the shared disk, after its file system, for
    /// tandem's disk link (see [`Lab::area_device`]); needs a shared disk.
    pub fn area_mib(mut self, size_mib: u64) -> LabBuilder {
        self.area_mib = size_mib;
        self
    }

    pub fn shared_disk_mib(mut self, size_mib: u64) -> LabBuilder {
        self.disk_mib = Some(size_mib);
        self
    }

    /// The program (and leading arguments) that runs [`init::main`] as each machine's
    /// init, for a binary that carries it under another name (e.g. a hidden subcommand);
    /// by default `testbed-init`, found as the crate doc says.
    pub fn init_command(mut self, command: Vec<OsString>) -> LabBuilder {
        self.init_command = Some(command);
        self
    }

    /// Builds the lab. On failure everything created so far is removed again.
    pub fn build(self) -> Result<Lab, LabError> {
        if !(1..=HOSTS_MAX).contains(&self.hosts) {
            return Err(LabError::new(format!(
                "a lab of {} hosts: must be 1..={HOSTS_MAX}",
                self.hosts
            )));
        }
        if let Some(size_mib) = self.disk_mib.filter(|s| !(DISK_MIB_MIN..=DISK_MIB_MAX).contains(s))
        {
            return Err(LabError::new(format!(
                "shared disk of {size_mib} MiB: must be {DISK_MIB_MIN}..={DISK_MIB_MAX} MiB"
            )));
        }
        let init_command = match self.init_command {
            Some(command) if !command.is_empty() => command,
            Some(_) => return Err(LabError::new("an empty init command".to_owned())),
            None => vec![find_init_program()?.into_os_string()],
        };
        for dir in [HostDir::EtcTandem, HostDir::VarLibTandem] {
            std::fs::create_dir_all(dir.inside())
                .map_err(|e| LabError::io(&format!("creating mount point {}", dir.inside()), e))?;
        }
        let prefix = names::new_lab_prefix();
        let mut lab = Lab {
            dir: names::lab_dir(&prefix),
            prefix,
            hosts: self.hosts,
            client: false,
            created: Vec::new(),
            init_command,
            machines: Mutex::new((0..=self.hosts).map(|_| Machine::default()).collect()),
            faults: Mutex::new(NetFaults::default()),
            disk: None,
        };
        std::fs::create_dir(&lab.dir)
            .map_err(|e| LabError::io(&format!("creating {}", lab.dir.display()), e))?;
        let switch = lab.switch();
        lab.add_namespace(&switch)?;
        for network in Network::ALL {
            let bridge = network.bridge();
            run_ok("ip", &["-n", &switch, "link", "add", &bridge, "type", "bridge"])?;
            run_ok("ip", &["-n", &switch, "link", "set", &bridge, "up"])?;
        }
        for host in 0..self.hosts {
            lab.add_node(Node::Host(host), &Network::ALL)?;
        }
        if self.client {
            lab.client = true;
            lab.add_node(Node::Client, &[Network::Public])?;
        }
        if let Some(size_mib) = self.disk_mib {
            lab.disk = Some(SharedDisk::create_with_area(
                &lab.prefix,
                size_mib,
                self.area_mib,
                self.hosts,
            )?);
        }
        Ok(lab)
    }
}

/// The init program: `TESTBED_INIT`, else `testbed-init` next to the running executable
/// or in its parent directory (test binaries live in `target/*/deps`).
fn find_init_program() -> Result<PathBuf, LabError> {
    if let Some(path) = std::env::var_os(INIT_PROGRAM_VARIABLE) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(LabError::new(format!(
            "{INIT_PROGRAM_VARIABLE}={} is not a file",
            path.display()
        )));
    }
    let exe =
        std::env::current_exe().map_err(|e| LabError::io("finding the running executable", e))?;
    let dirs: Vec<&Path> = exe.ancestors().skip(1).take(2).collect();
    dirs.iter().map(|dir| dir.join(INIT_PROGRAM)).find(|path| path.is_file()).ok_or_else(|| {
        LabError::new(format!(
            "{INIT_PROGRAM} not found next to {} or in its parent directory: build it with \
             `cargo build -p testbed --bin {INIT_PROGRAM}` (the test command builds it), or \
             name it with {INIT_PROGRAM_VARIABLE}",
            exe.display()
        ))
    })
}

/// What the lab knows about one machine beyond its namespace.
#[derive(Debug, Default)]
struct Machine {
    /// Its init; `None` while the host is crashed.
    init: Option<Init>,
    /// Whether its disk path is lost now.
    disk_lost: bool,
    /// Whether the crash took the disk path (the restart brings it back).
    disk_lost_by_crash: bool,
}

/// A running lab. Dropping it kills every process inside its machines and removes the
/// namespaces (with their interfaces, bridges and nftables rules), the loop devices, the
/// image and the lab's directory.
///
/// # Faults
///
/// | fault | start | end |
/// | --- | --- | --- |
/// | a machine cut off one network, carrier up (a fault beyond the switch port) | [`Lab::cut`] | [`Lab::heal`] |
/// | a machine cut off every network | [`Lab::cut_all`] | [`Lab::heal_all`] |
/// | only host-to-host traffic cut on one network; clients reach both | [`Lab::cut_between`] | [`Lab::heal_between`] |
/// | random loss of frames to and from a machine on one network | [`Lab::loss`] | `loss(.., 0)` |
/// | NIC carrier lost (cable pulled: the host's link goes down) | [`Lab::carrier_off`] | [`Lab::carrier_on`] |
/// | one host's disk path lost (I/O fails, also on open descriptors and mounts) | [`Lab::lose_disk`] | [`Lab::restore_disk`] |
/// | one process killed (SIGKILL), e.g. a resource or the daemon | [`Lab::kill_process`], [`Spawned::kill`] | |
/// | host crash | [`Lab::crash`] | [`Lab::restart`] |
///
/// Network faults add up: a cut, a cut between and a loss may hold at once, and each
/// ends on its own.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    hosts: usize,
    client: bool,
    /// The lab's working directory (per-machine directories, the ruleset).
    dir: PathBuf,
    /// Namespaces created so far, in creation order (removed in reverse).
    created: Vec<String>,
    init_command: Vec<OsString>,
    /// Indexed by [`Lab::index`]: the hosts, then the client.
    machines: Mutex<Vec<Machine>>,
    faults: Mutex<NetFaults>,
    disk: Option<SharedDisk>,
}

impl Lab {
    /// A builder for two hosts and a client, without a shared disk.
    pub fn builder() -> LabBuilder {
        LabBuilder { hosts: 2, client: true, disk_mib: None, area_mib: 0, init_command: None }
    }

    /// The prefix of every name this lab created (for [`leftovers`]).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// The network namespace of `node` (for `ip netns exec` by hand).
    pub fn namespace(&self, node: Node) -> String {
        format!("{}-{}", self.prefix, node.tag())
    }

    /// The namespace holding the bridges.
    fn switch(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    /// `node`'s address on `network`, or `None` when the node is not on that network.
    pub fn address(&self, node: Node, network: Network) -> Option<Ipv4Addr> {
        self.check_node(node).ok()?;
        if node == Node::Client && network != Network::Public {
            return None;
        }
        Some(Ipv4Addr::new(192, 168, network.octet(), node.octet()))
    }

    /// The networks `node` is on.
    fn networks(&self, node: Node) -> Vec<Network> {
        Network::ALL.into_iter().filter(|n| self.address(node, *n).is_some()).collect()
    }

    /// The directory of the lab that `node` sees as `dir.inside()` (write a host's
    /// `/etc/tandem/cluster.toml` here before starting its node).
    pub fn host_dir(&self, node: Node, dir: HostDir) -> Result<PathBuf, LabError> {
        self.check_node(node)?;
        Ok(self.dir.join(node.tag()).join(dir.name()))
    }

    /// The shared disk, when the lab has one.
    pub fn shared_disk(&self) -> Option<&SharedDisk> {
        self.disk.as_ref()
    }

    /// Host `host`'s own block device over the shared disk.
    pub fn disk_device(&self, host: usize) -> Option<&Path> {
        self.disk.as_ref()?.device(host)
    }

    /// Runs `command` (program and arguments) inside `node` (its network, mount and PID
    /// namespaces), waits for it (at most [`EXEC_TIMEOUT`]; killed after that) and
    /// returns its output, whatever its exit status.
    pub fn exec(&self, node: Node, command: &[&str]) -> Result<Output, LabError> {
        self.exec_timeout(node, command, EXEC_TIMEOUT)
    }

    /// [`Lab::exec`] with a chosen time limit.
    pub fn exec_timeout(
        &self,
        node: Node,
        command: &[&str],
        timeout: Duration,
    ) -> Result<Output, LabError> {
        let mut process = self.spawn(node, command)?;
        match process.wait_timeout(timeout)? {
            Some(status) => {
                Ok(Output { status, stdout: process.stdout()?, stderr: process.stderr()? })
            }
            None => {
                let _ = process.kill();
                Err(LabError::new(format!(
                    "`{}` did not finish within {} ms in {node:?}",
                    command.join(" "),
                    timeout.as_millis()
                )))
            }
        }
    }

    /// Starts the long-running `command` inside `node` (its network, mount and PID
    /// namespaces). The handle gives its PID, its output (in files readable meanwhile)
    /// and kills it when dropped; a crash of the host kills it too.
    pub fn spawn(&self, node: Node, command: &[&str]) -> Result<Spawned, LabError> {
        self.spawn_env(node, command, &[])
    }

    /// [`Lab::spawn`] with `env` added to the command's environment, e.g. a tandem node:
    /// `spawn_env(Node::Host(0), &["tandem", "node", "--config", ...], &[("RUST_LOG", "debug")])`.
    pub fn spawn_env(
        &self,
        node: Node,
        command: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Spawned, LabError> {
        let machines = self.machines(node)?;
        let init = machines[self.index(node)].init.as_ref().ok_or_else(|| {
            LabError::new(format!("{node:?} is crashed: restart it before running anything"))
        })?;
        init.enter(command, env)
    }

    /// Starts `flood` on a thread of this process that has moved into `node`'s network
    /// namespace (that thread only) and lowered its own priority to nice 19; join the
    /// handle for what it sent. See [`flood`].
    pub fn flood(
        &self,
        node: Node,
        flood: Flood,
    ) -> Result<thread::JoinHandle<std::io::Result<Flooded>>, LabError> {
        self.check_node(node)?;
        let path = format!("/run/netns/{}", self.namespace(node));
        let namespace = std::fs::File::open(&path).map_err(|e| LabError::io(&path, e))?;
        let name = format!("flood-{}", node.tag());
        thread::Builder::new()
            .name(name)
            .spawn(move || {
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&namespace),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                drop(namespace);
                // Linux's nice value is per thread: this one only.
                rustix::process::setpriority_process(None, 19)?;
                flood.run()
            })
            .map_err(|e| LabError::io("starting a flood thread", e))
    }

    /// A TCP listener bound to `node`'s address on `network`, port `port` (0: any), in
    /// `node`'s network namespace: a short-lived thread of this process moves into it,
    /// binds, and ends; the socket stays in that namespace, so this process serves
    /// there (a receiver that stands for another machine, e.g. an alert's webhook).
    pub fn tcp_listener(
        &self,
        node: Node,
        network: Network,
        port: u16,
    ) -> Result<std::net::TcpListener, LabError> {
        self.check_node(node)?;
        let address = self.address(node, network).ok_or_else(|| {
            LabError::io("binding a listener", std::io::Error::other("no address there"))
        })?;
        let path = format!("/run/netns/{}", self.namespace(node));
        let namespace = std::fs::File::open(&path).map_err(|e| LabError::io(&path, e))?;
        thread::spawn(move || -> std::io::Result<std::net::TcpListener> {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&namespace),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            std::net::TcpListener::bind((address, port))
        })
        .join()
        .map_err(|_| LabError::io("binding a listener", std::io::Error::other("thread panicked")))?
        .map_err(|e| LabError::io("binding a listener", e))
    }

    /// A forwarder from the test machine's loopback to `127.0.0.1:port` inside `node`'s
    /// network namespace: connect to [`Forward::port`] on `127.0.0.1` to reach a service
    /// that listens on the machine's own loopback (e.g. a WebDriver server whose browser
    /// runs in the client). Each connection is made by a thread that moved into the
    /// namespace; no route out of the lab is added. Ends when dropped (`forward.rs`).
    pub fn forward_tcp(&self, node: Node, port: u16) -> Result<Forward, LabError> {
        self.check_node(node)?;
        let path = format!("/run/netns/{}", self.namespace(node));
        let namespace = std::fs::File::open(&path).map_err(|e| LabError::io(&path, e))?;
        Forward::start(namespace, port)
    }

    /// The live processes of `node` (its PID namespace, without its init), by the PIDs
    /// seen from outside; empty while the host is crashed.
    pub fn pids(&self, node: Node) -> Result<Vec<i32>, LabError> {
        let machines = self.machines(node)?;
        match &machines[self.index(node)].init {
            Some(init) => init.pids(),
            None => Ok(Vec::new()),
        }
    }

    /// The PID (seen from outside, as [`Lab::pids`] lists it) of the process of `node`
    /// whose PID inside the host is `pid_in_host` (as a PID file there says).
    pub fn pid_outside(&self, node: Node, pid_in_host: i32) -> Result<Option<i32>, LabError> {
        Ok(self.pids(node)?.into_iter().find(|pid| host::pid_inside(*pid) == Some(pid_in_host)))
    }

    /// Kills (SIGKILL) process `pid` (seen from outside, see [`Lab::pid_outside`]) of
    /// `node`: a resource dies, or the daemon. Refuses a process of another machine and
    /// the machine's init (that is [`Lab::crash`]).
    pub fn kill_process(&self, node: Node, pid: i32) -> Result<(), LabError> {
        let machines = self.machines(node)?;
        let init = machines[self.index(node)]
            .init
            .as_ref()
            .ok_or_else(|| LabError::new(format!("{node:?} is crashed: no process {pid}")))?;
        init.kill_process(pid)
    }

    /// Sends `signal` to process `pid` (seen from outside) of `node`: SIGSTOP and
    /// SIGCONT pause and resume a daemon. Refuses a process of another machine and the
    /// machine's init (see [`Lab::freeze`]).
    pub fn signal_process(
        &self,
        node: Node,
        pid: i32,
        signal: nix::sys::signal::Signal,
    ) -> Result<(), LabError> {
        let machines = self.machines(node)?;
        let init = machines[self.index(node)]
            .init
            .as_ref()
            .ok_or_else(|| LabError::new(format!("{node:?} is crashed: no process {pid}")))?;
        init.signal_process(pid, signal)
    }

    /// Freezes host `host` whole: every process of it, its init included, is stopped
    /// (SIGSTOP) and nothing else changes — its addresses, mounts and links stay, and
    /// its kernel still answers for its addresses, as a VM paused by its hypervisor or
    /// a host in a long stall. [`Lab::thaw`] resumes it.
    pub fn freeze(&self, host: usize) -> Result<(), LabError> {
        self.signal_host(host, nix::sys::signal::Signal::SIGSTOP)
    }

    /// Resumes every process of a frozen host (SIGCONT).
    pub fn thaw(&self, host: usize) -> Result<(), LabError> {
        self.signal_host(host, nix::sys::signal::Signal::SIGCONT)
    }

    fn signal_host(&self, host: usize, signal: nix::sys::signal::Signal) -> Result<(), LabError> {
        let node = Node::Host(host);
        let machines = self.machines(node)?;
        let init = machines[host]
            .init
            .as_ref()
            .ok_or_else(|| LabError::new(format!("host {host} is crashed")))?;
        init.signal_all(signal)
    }

    /// Cuts `node` off `network` in the switch: every frame to or from it is dropped,
    /// while its link stays up (carrier on), as when a switch or cable further away
    /// fails. For a pulled cable see [`Lab::carrier_off`].
    pub fn cut(&self, node: Node, network: Network) -> Result<(), LabError> {
        self.check_network(node, network)?;
        self.change_faults(|faults| {
            faults.cut.insert((node, network));
        })
    }

    /// Ends [`Lab::cut`] of `node` on `network`.
    pub fn heal(&self, node: Node, network: Network) -> Result<(), LabError> {
        self.check_network(node, network)?;
        self.change_faults(|faults| {
            faults.cut.remove(&(node, network));
        })
    }

    /// Cuts `node` off every network it is on (see [`Lab::cut`]).
    pub fn cut_all(&self, node: Node) -> Result<(), LabError> {
        self.check_node(node)?;
        let networks = self.networks(node);
        self.change_faults(|faults| faults.cut.extend(networks.iter().map(|n| (node, *n))))
    }

    /// Ends every [`Lab::cut`] of `node`.
    pub fn heal_all(&self, node: Node) -> Result<(), LabError> {
        self.check_node(node)?;
        self.change_faults(|faults| faults.cut.retain(|(cut, _)| *cut != node))
    }

    /// Cuts the traffic between hosts `a` and `b` on `network` (both directions), while
    /// both still reach and are reached by every other machine, the client included.
    pub fn cut_between(&self, a: usize, b: usize, network: Network) -> Result<(), LabError> {
        let pair = self.host_pair(a, b)?;
        self.change_faults(|faults| {
            faults.between.insert((pair.0, pair.1, network));
        })
    }

    /// Ends [`Lab::cut_between`] of `a` and `b` on `network`.
    pub fn heal_between(&self, a: usize, b: usize, network: Network) -> Result<(), LabError> {
        let pair = self.host_pair(a, b)?;
        self.change_faults(|faults| {
            faults.between.remove(&(pair.0, pair.1, network));
        })
    }

    /// Drops `percent` % of the frames to and of the frames from `node` on `network`, at
    /// random (nftables `numgen random`); 0 ends the loss. A round trip then fails with
    /// about `1 - (1 - p)²`.
    pub fn loss(&self, node: Node, network: Network, percent: u8) -> Result<(), LabError> {
        self.check_network(node, network)?;
        if percent > 100 {
            return Err(LabError::new(format!("a loss of {percent} %: must be 0..=100")));
        }
        self.change_faults(|faults| {
            if percent == 0 {
                faults.loss.remove(&(node, network));
            } else {
                faults.loss.insert((node, network), percent);
            }
        })
    }

    /// Pulls `node`'s cable to `network`: the switch-side end of its veth goes down, so
    /// the node's interface loses carrier (its `nic` resource sees it) and nothing passes
    /// either way.
    pub fn carrier_off(&self, node: Node, network: Network) -> Result<(), LabError> {
        self.set_port(node, network, "down")
    }

    /// Plugs `node`'s cable to `network` back in (undoes [`Lab::carrier_off`]).
    pub fn carrier_on(&self, node: Node, network: Network) -> Result<(), LabError> {
        self.set_port(node, network, "up")
    }

    /// Host `host`'s own block device over the shared disk's heartbeat area (see
    /// [`LabBuilder::area_mib`]); lost with the disk path.
    pub fn area_device(&self, host: usize) -> Option<&Path> {
        self.disk.as_ref()?.area_device(host)
    }

    /// Takes host `host`'s path to the shared disk away: its own loop device shrinks to
    /// one sector, so reads past it return nothing and writes fail, on descriptors
    /// already open (`O_DIRECT` too) and under a mounted file system alike. The other
    /// hosts keep their paths.
    pub fn lose_disk(&self, host: usize) -> Result<(), LabError> {
        let mut machines = self.machines(Node::Host(host))?;
        self.set_disk_path(host, false)?;
        machines[host].disk_lost = true;
        Ok(())
    }

    /// Gives host `host` its disk path back (undoes [`Lab::lose_disk`]).
    pub fn restore_disk(&self, host: usize) -> Result<(), LabError> {
        let mut machines = self.machines(Node::Host(host))?;
        self.set_disk_path(host, true)?;
        machines[host].disk_lost = false;
        machines[host].disk_lost_by_crash = false;
        Ok(())
    }

    /// Crashes host `host`, as LAB-NOTES says a crash must be: every process of the host
    /// is frozen (SIGSTOP), its disk path is cut (if the lab has a disk and it was not
    /// lost already), its interfaces go down, everything in it is SIGKILLed (its init
    /// first, so the kernel kills the rest), and its addresses are flushed (RAM state,
    /// virtual IPs included, is lost). Unsynced data is lost as in a real crash. Its
    /// mounts vanish with its mount namespace; [`Lab::restart`] waits for that.
    pub fn crash(&self, host: usize) -> Result<(), LabError> {
        let node = Node::Host(host);
        let mut machines = self.machines(node)?;
        let machine = &mut machines[host];
        let init = machine
            .init
            .take()
            .ok_or_else(|| LabError::new(format!("host {host} is crashed already")))?;
        init.signal_all(Signal::SIGSTOP)?;
        if self.disk.is_some() && !machine.disk_lost {
            self.set_disk_path(host, false)?;
            machine.disk_lost = true;
            machine.disk_lost_by_crash = true;
        }
        let namespace = self.namespace(node);
        for network in Network::ALL {
            let interface = network.interface();
            run_ok("ip", &["-n", &namespace, "link", "set", &interface, "down"])?;
        }
        init.kill()?;
        for network in Network::ALL {
            run_ok("ip", &["-n", &namespace, "addr", "flush", "dev", &network.interface()])?;
        }
        Ok(())
    }

    /// Boots a crashed host again: once its old ext4 mounts of the shared disk are gone
    /// (so it cannot write stale data), the disk path the crash took comes back (one lost
    /// by [`Lab::lose_disk`] stays lost), its `/run` starts empty, its addresses and
    /// links come back up, and a new init starts. Nothing else runs: start its node again
    /// with [`Lab::spawn`].
    pub fn restart(&self, host: usize) -> Result<(), LabError> {
        let node = Node::Host(host);
        let mut machines = self.machines(node)?;
        if machines[host].init.is_some() {
            return Err(LabError::new(format!("host {host} is running: crash it first")));
        }
        if machines[host].disk_lost_by_crash {
            self.wait_until_unmounted(host)?;
            self.set_disk_path(host, true)?;
            machines[host].disk_lost = false;
            machines[host].disk_lost_by_crash = false;
        }
        let run = self.host_dir(node, HostDir::Run)?;
        std::fs::remove_dir_all(&run)
            .and_then(|()| std::fs::create_dir(&run))
            .map_err(|e| LabError::io(&format!("emptying {}", run.display()), e))?;
        let namespace = self.namespace(node);
        for network in Network::ALL {
            let interface = network.interface();
            let address = format!("192.168.{}.{}/24", network.octet(), node.octet());
            run_ok("ip", &["-n", &namespace, "addr", "add", &address, "dev", &interface])?;
            run_ok("ip", &["-n", &namespace, "link", "set", &interface, "up"])?;
        }
        machines[host].init = Some(self.start_init(node)?);
        Ok(())
    }

    /// Locks the machines' table after checking that `node` exists.
    fn machines(&self, node: Node) -> Result<MutexGuard<'_, Vec<Machine>>, LabError> {
        self.check_node(node)?;
        // A panic while holding the lock left consistent data: every change is one step.
        Ok(self.machines.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The index of `node` in the machines' table.
    fn index(&self, node: Node) -> usize {
        match node {
            Node::Host(n) => n,
            Node::Client => self.hosts,
        }
    }

    /// Shrinks (`restore` false) or restores host `host`'s loop devices (data and area).
    fn set_disk_path(&self, host: usize, restore: bool) -> Result<(), LabError> {
        let disk = self
            .disk
            .as_ref()
            .ok_or_else(|| LabError::new("the lab has no shared disk".to_owned()))?;
        let devices = disk.host_devices(host);
        if devices.is_empty() {
            return Err(LabError::new(format!("host {host} has no shared disk")));
        }
        for device in devices {
            let limit = if restore { 0 } else { LOST_DISK_BYTES };
            loopctl::set_size_limit(device, limit).map_err(|e| {
                LabError::io(
                    &format!("setting the size limit of {} to {limit}", device.display()),
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Waits until no ext4 file system is mounted from host `host`'s loop device any more
    /// (its superblock leaves `/sys/fs/ext4` once the last mount namespace holding it is
    /// gone).
    fn wait_until_unmounted(&self, host: usize) -> Result<(), LabError> {
        let Some(name) = self.disk_device(host).and_then(Path::file_name) else {
            return Ok(());
        };
        let entry = Path::new("/sys/fs/ext4").join(name);
        let deadline = Instant::now() + MOUNT_GONE_TIMEOUT;
        while entry.exists() {
            if Instant::now() >= deadline {
                return Err(LabError::new(format!(
                    "host {host}'s ext4 mount of {} still exists {} ms after its crash",
                    name.to_string_lossy(),
                    MOUNT_GONE_TIMEOUT.as_millis()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Applies `change` to the network faults and loads the resulting ruleset into the
    /// switch; on failure the faults stay as they were.
    fn change_faults(&self, change: impl FnOnce(&mut NetFaults)) -> Result<(), LabError> {
        let mut faults = self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = NetFaults {
            cut: faults.cut.clone(),
            between: faults.between.clone(),
            loss: faults.loss.clone(),
        };
        change(&mut next);
        let file = self.dir.join("switch.nft");
        std::fs::write(&file, next.ruleset())
            .map_err(|e| LabError::io(&format!("writing {}", file.display()), e))?;
        let file = file.to_string_lossy();
        run_ok("ip", &["netns", "exec", &self.switch(), "nft", "-f", &file])?;
        *faults = next;
        Ok(())
    }

    fn host_pair(&self, a: usize, b: usize) -> Result<(usize, usize), LabError> {
        self.check_node(Node::Host(a))?;
        self.check_node(Node::Host(b))?;
        if a == b {
            return Err(LabError::new(format!("a cut between host {a} and itself")));
        }
        Ok((a.min(b), a.max(b)))
    }

    fn check_network(&self, node: Node, network: Network) -> Result<(), LabError> {
        if self.address(node, network).is_none() {
            return Err(LabError::new(format!("{node:?} is not on the {network:?} network")));
        }
        Ok(())
    }

    fn set_port(&self, node: Node, network: Network, state: &str) -> Result<(), LabError> {
        self.check_network(node, network)?;
        run_ok("ip", &["-n", &self.switch(), "link", "set", &node.port(network), state])?;
        Ok(())
    }

    fn check_node(&self, node: Node) -> Result<(), LabError> {
        match node {
            Node::Host(n) if n < self.hosts => Ok(()),
            Node::Client if self.client => Ok(()),
            _ => Err(LabError::new(format!("this lab has no {node:?}"))),
        }
    }

    /// Creates namespace `name` with its loopback up, and records it for removal.
    fn add_namespace(&mut self, name: &str) -> Result<(), LabError> {
        run_ok("ip", &["netns", "add", name])?;
        self.created.push(name.to_owned());
        run_ok("ip", &["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Starts `node`'s init over its directories (creating them when missing).
    fn start_init(&self, node: Node) -> Result<Init, LabError> {
        let mut binds = Vec::new();
        for dir in HostDir::ALL {
            let source = self.host_dir(node, dir)?;
            std::fs::create_dir_all(&source)
                .map_err(|e| LabError::io(&format!("creating {}", source.display()), e))?;
            binds.push((source, dir.inside()));
        }
        Init::start(&self.namespace(node), &self.init_command, &binds)
    }

    /// Creates `node`'s namespace, plugs it into `networks` and starts its init: a veth
    /// pair is made in the switch namespace, one end moved into the node and addressed,
    /// the other enslaved to the network's bridge. No default route is ever added.
    fn add_node(&mut self, node: Node, networks: &[Network]) -> Result<(), LabError> {
        let namespace = self.namespace(node);
        let switch = self.switch();
        self.add_namespace(&namespace)?;
        for &network in networks {
            let port = node.port(network);
            let interface = network.interface();
            let address = format!("192.168.{}.{}/24", network.octet(), node.octet());
            run_ok(
                "ip",
                &["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", &interface],
            )?;
            run_ok("ip", &["-n", &switch, "link", "set", &interface, "netns", &namespace])?;
            run_ok("ip", &["-n", &switch, "link", "set", &port, "master", &network.bridge()])?;
            run_ok("ip", &["-n", &switch, "link", "set", &port, "up"])?;
            run_ok("ip", &["-n", &namespace, "addr", "add", &address, "dev", &interface])?;
            run_ok("ip", &["-n", &namespace, "link", "set", &interface, "up"])?;
        }
        let init = self.start_init(node)?;
        let index = self.index(node);
        self.machines.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner())[index].init =
            Some(init);
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Every machine's init first (the kernel kills the rest of the machine), then the
        // namespaces: hosts and client, the switch (created first) last.
        let machines = self.machines.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        for machine in machines.iter_mut() {
            if let Some(init) = machine.init.take() {
                if let Err(error) = init.kill() {
                    eprintln!("testbed: {error}");
                }
            }
        }
        for namespace in self.created.iter().rev() {
            if let Err(error) = names::remove_namespace(namespace) {
                eprintln!("testbed: could not remove namespace {namespace}: {error}");
            }
        }
        // The disk's own Drop detaches the loop devices and removes the image.
        self.disk = None;
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            if error.kind() != std::io::ErrorKind::NotFound {
                eprintln!("testbed: could not remove {}: {error}", self.dir.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_its_package_and_each_package_is_named_once() {
        for tool in TOOLS {
            assert_eq!(packages_for(&[tool]).len(), 1, "{tool}");
        }
        assert_eq!(packages_for(&["unshare", "nft", "nsenter"]), ["util-linux", "nftables"]);
        assert!(packages_for(&["no-such-tool"]).is_empty());
    }
}
