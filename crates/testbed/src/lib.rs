//! The real lab: several "hosts" on one machine, each a Linux network namespace, joined
//! by two switched networks (`private` for node-to-node traffic, `public` where clients
//! are), plus a `client` namespace on the public network and an optional shared disk (a
//! loop device per host over one image file). Tests, benchmarks and `tandem demo` build
//! a [`Lab`], run commands and long-lived processes inside its hosts, and inject faults:
//! [`Lab::cut`] / [`Lab::heal`] a host's cable, [`Lab::crash`] a host.
//!
//! It owns every namespace, interface, loop device and image file it creates and removes
//! them all on `Drop`, also when a test fails or panics; [`sweep`] removes what a killed
//! test process left behind, by this crate's naming scheme only (see `names.rs`). It must
//! not send traffic anywhere but inside its own namespaces (there is no default route
//! and no bridge is attached to a physical interface), and it never signals a process
//! except by PID, after finding it inside one of its own namespaces or having started it.
//!
//! Built on the `ip`, `losetup`, `mkfs.ext4` commands (iproute2, util-linux, e2fsprogs)
//! rather than netlink crates: every step is one readable command that can be replayed
//! by hand when a lab misbehaves, and the tools are on every machine the tests run on.
//! Each network is a bridge inside the lab's own "switch" namespace, so no interface of
//! the lab ever exists in the machine's root namespace and interface names (at most 15
//! bytes) never collide between labs. A cut downs the switch-side end of the host's veth,
//! like pulling the cable: the host sees its link lose carrier.
//!
//! Not here yet (later parts of issue 3): losing one host's disk path (shrink its loop
//! device with `LOOP_SET_STATUS64`), partial cuts and packet loss with nftables, a mount
//! namespace per host with its own `/etc/tandem`, `/var/lib/tandem` and `/run`, and a
//! tandem node per host.
//!
//! Running it needs root and `TANDEM_LAB=1`; [`availability`] says whether a lab can be
//! built here, and why not.

mod command;
mod disk;
mod names;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

pub use command::Output;
pub use disk::{SharedDisk, DISK_MIB_MAX, DISK_MIB_MIN};
pub use names::{leftovers, sweep, Swept};

use command::{run, run_ok};

/// Most hosts one lab may have (addresses are `.10` to `.10 + HOSTS_MAX - 1`).
pub const HOSTS_MAX: usize = 16;

/// How long [`Lab::exec`] lets a command run before killing it.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// The tools a lab needs on `PATH`.
pub const TOOLS: &[&str] = &["ip", "losetup", "mkfs.ext4", "unshare", "nsenter"];

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

/// Whether a lab can be built here: `Ok` when `TANDEM_LAB=1`, the process is root and
/// every tool of [`TOOLS`] is installed; otherwise the reason, to print as a skip line.
pub fn availability() -> Result<(), String> {
    if std::env::var_os("TANDEM_LAB").as_deref() != Some("1".as_ref()) {
        return Err("TANDEM_LAB is not set to 1 (the lab tests are opt-in)".to_owned());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err("the lab needs root (network namespaces, loop devices)".to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing tools: {}", missing.join(", ")));
    }
    Ok(())
}

/// One of the lab's two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    fn port(self, network: Network) -> String {
        format!("{}-{}", self.tag(), network.name())
    }
}

/// How to build a [`Lab`]; from [`Lab::builder`].
#[derive(Clone, Debug)]
pub struct LabBuilder {
    hosts: usize,
    client: bool,
    disk_mib: Option<u64>,
}

impl LabBuilder {
    /// The number of hosts, 1 to [`HOSTS_MAX`] (default 2).
    pub fn hosts(mut self, hosts: usize) -> LabBuilder {
        self.hosts = hosts;
        self
    }

    /// Whether to add the client namespace on the public network (default yes).
    pub fn client(mut self, client: bool) -> LabBuilder {
        self.client = client;
        self
    }

    /// Adds a shared disk of `size_mib` MiB, formatted with ext4, one loop device per host.
    pub fn shared_disk_mib(mut self, size_mib: u64) -> LabBuilder {
        self.disk_mib = Some(size_mib);
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
        let mut lab = Lab {
            prefix: names::new_lab_prefix(),
            hosts: self.hosts,
            client: false,
            created: Vec::new(),
            disk: None,
        };
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
            lab.add_node(Node::Client, &[Network::Public])?;
            lab.client = true;
        }
        if let Some(size_mib) = self.disk_mib {
            lab.disk = Some(SharedDisk::create(&lab.prefix, size_mib, self.hosts)?);
        }
        Ok(lab)
    }
}

/// A running lab. Dropping it kills every process inside its namespaces and removes
/// the namespaces (with their interfaces and bridges), the loop devices and the image.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    hosts: usize,
    client: bool,
    /// Namespaces created so far, in creation order (removed in reverse).
    created: Vec<String>,
    disk: Option<SharedDisk>,
}

impl Lab {
    /// A builder for two hosts and a client, without a shared disk.
    pub fn builder() -> LabBuilder {
        LabBuilder { hosts: 2, client: true, disk_mib: None }
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

    /// The shared disk, when the lab has one.
    pub fn shared_disk(&self) -> Option<&SharedDisk> {
        self.disk.as_ref()
    }

    /// Host `host`'s own block device over the shared disk.
    pub fn disk_device(&self, host: usize) -> Option<&Path> {
        self.disk.as_ref()?.device(host)
    }

    /// Runs `command` (program and arguments) inside `node`'s network namespace, waits
    /// for it (at most [`EXEC_TIMEOUT`]; killed after that) and returns its output,
    /// whatever its exit status.
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
        self.check_node(node)?;
        let namespace = self.namespace(node);
        let mut args = vec!["netns", "exec", &namespace];
        args.extend_from_slice(command);
        run("ip", &args, timeout)
    }

    /// Starts the long-running `command` inside `node`'s network namespace. The handle
    /// kills it (by PID) when dropped; its output goes to files readable meanwhile.
    pub fn spawn(&self, node: Node, command: &[&str]) -> Result<Spawned, LabError> {
        self.check_node(node)?;
        let stdout =
            tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
        let stderr =
            tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
        // `ip netns exec` enters the namespace and then execs the command, so the child's
        // PID is the command's own.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace(node)])
            .args(command)
            .stdin(Stdio::null())
            .stdout(command::clone(&stdout)?)
            .stderr(command::clone(&stderr)?)
            .spawn()
            .map_err(|e| LabError::io(&format!("starting `{}`", command.join(" ")), e))?;
        Ok(Spawned { child, stdout, stderr })
    }

    /// Pulls `node`'s cable to `network`: the switch-side end of its veth goes down, so
    /// the node's interface loses carrier and nothing passes either way.
    pub fn cut(&self, node: Node, network: Network) -> Result<(), LabError> {
        self.set_port(node, network, "down")
    }

    /// Plugs `node`'s cable to `network` back in (undoes [`Lab::cut`]).
    pub fn heal(&self, node: Node, network: Network) -> Result<(), LabError> {
        self.set_port(node, network, "up")
    }

    /// Crashes host `host`: freezes every process in its namespace (SIGSTOP), takes its
    /// interfaces down, then SIGKILLs everything there until nothing is left. The
    /// host's addresses stay configured; [`Lab::restart`] brings its links back up.
    pub fn crash(&self, host: usize) -> Result<(), LabError> {
        let node = Node::Host(host);
        self.check_node(node)?;
        let namespace = self.namespace(node);
        names::signal_namespace(&namespace, Signal::SIGSTOP)?;
        for network in Network::ALL {
            run_ok("ip", &["-n", &namespace, "link", "set", &network.interface(), "down"])?;
        }
        names::kill_namespace(&namespace)
    }

    /// Brings a crashed host's interfaces back up (its processes stay dead: start what
    /// it should run again with [`Lab::spawn`]).
    pub fn restart(&self, host: usize) -> Result<(), LabError> {
        let node = Node::Host(host);
        self.check_node(node)?;
        let namespace = self.namespace(node);
        for network in Network::ALL {
            run_ok("ip", &["-n", &namespace, "link", "set", &network.interface(), "up"])?;
        }
        Ok(())
    }

    /// The live processes inside `node`'s namespace.
    pub fn pids(&self, node: Node) -> Result<Vec<i32>, LabError> {
        self.check_node(node)?;
        Ok(names::namespace_pids(&self.namespace(node))?.into_iter().map(|p| p.as_raw()).collect())
    }

    fn set_port(&self, node: Node, network: Network, state: &str) -> Result<(), LabError> {
        if self.address(node, network).is_none() {
            return Err(LabError::new(format!("{node:?} is not on the {network:?} network")));
        }
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

    /// Creates `node`'s namespace and plugs it into `networks`: a veth pair is made in
    /// the switch namespace, one end moved into the node and addressed, the other
    /// enslaved to the network's bridge. No default route is ever added.
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
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Hosts and client first, the switch (created first) last.
        for namespace in self.created.iter().rev() {
            if let Err(error) = names::remove_namespace(namespace) {
                eprintln!("testbed: could not remove namespace {namespace}: {error}");
            }
        }
        // The disk's own Drop detaches the loop devices and removes the image.
        self.disk = None;
    }
}

/// A process started by [`Lab::spawn`]. Dropping the handle SIGKILLs it by PID (if it
/// still runs) and reaps it; processes it forked are killed when their host crashes or
/// the lab is dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    stdout: std::fs::File,
    stderr: std::fs::File,
}

impl Spawned {
    /// The process's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, LabError> {
        self.child.try_wait().map_err(|e| LabError::io("checking a spawned process", e))
    }

    /// Waits at most `timeout` for it to exit; `None` when it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        command::wait_timeout(&mut self.child, timeout)
    }

    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> Result<String, LabError> {
        command::read_all(&self.stdout)
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> Result<String, LabError> {
        command::read_all(&self.stderr)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // `Child::kill` targets this PID only, and the unreaped child keeps the PID from
        // being reused, so this never hits another process.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
