//! The demo in the lab (as root, with the lab's tools): hosts `alpha` and `beta` and a
//! client, each a network namespace with its own PID and mount namespaces
//! ([`testbed::Lab`]), a private network (heartbeats) and a public one (clients, the
//! virtual IP), and a shared disk seen by each host as its own loop devices: an ext4
//! file system and, like a partition after it, the heartbeat and lease area.
//!
//! Each host gets the configuration at the production paths (`/etc/tandem/cluster.toml`,
//! the key beside it, state in `/var/lib/tandem`), the same text on every host: the
//! shared disk is named by links in `/etc/tandem` to each host's own loop devices. The group `web` mounts the file system (`lock_standby`: read-only on the
//! standby), adds the virtual IP on the public interface and runs `tandem hello` on it.
//! The crash is [`testbed::Lab::crash`]: the host is frozen, its disk and network cut
//! and everything in it killed. This process reaches each node's control socket (in the
//! host's `/run/tandem`) and journal (in its state directory) from outside, and runs the
//! client
//! (`tandem probe`) in the client's namespace.
//!
//! The lab cluster is the harness the lab tests and benchmarks use too
//! ([`labcluster::LabCluster`]: it builds the lab, writes the configuration and key,
//! formats the area and starts the nodes). It owns the lab, and through it everything
//! inside; dropping the lab removes it all.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use labcluster::config::{lab_nodes, ClusterToml};
use labcluster::{Lab, LabCluster, Network, Node, Setup, Spawned, AREA_LINK, DATA_LINK};

use super::screen::Screen;
use super::{timing_toml, Stage, CLIENT_INTERVAL_MS, CLIENT_TIMEOUT_MS, NODES};

/// The virtual IP, on the public network.
const VIP: Ipv4Addr = Ipv4Addr::new(192, 168, 251, 100);
/// The shared disk's file system and heartbeat area, in MiB.
const DISK_MIB: u64 = 64;
const AREA_MIB: u64 = 4;
/// Where the group mounts the shared file system on its node, and the file the service
/// reads from it (under the host's own /run, so that nothing appears on this machine).
const MOUNTPOINT: &str = "/run/web";
const FILE: &str = "/run/web/hello.txt";

pub struct LabStage {
    client: Option<Spawned>,
    /// Dropped last; `None` once removed.
    cluster: Option<LabCluster>,
    prefix: String,
}

/// The configuration, the same text on every host (as in production: its generation's
/// hash must match): the shared disk's file system and heartbeat area through the links
/// `/etc/tandem/disk-data` and `disk-area`, which point at each host's own loop devices.
fn config(lab: &Lab, exe: &str, fast: bool) -> anyhow::Result<String> {
    let public = Network::Public.interface();
    let head = ClusterToml {
        comment: "Written by `tandem demo`.".into(),
        name: "demo".into(),
        files: None,
        timing: timing_toml(fast).into(),
        nodes: lab_nodes(lab, &NODES.map(String::from)),
        area: AREA_LINK.into(),
    };
    Ok(format!(
        r#"{head}
[[group]]
name = "web"
nodes = ["{alpha}", "{beta}"]

  [[group.resource]]
  name = "data"
  kind = "filesystem"
  device = "{device}"
  mountpoint = "{MOUNTPOINT}"
  fstype = "ext4"
  lock_standby = true

  [[group.resource]]
  name = "vip"
  kind = "ip"
  address = "{VIP}/24"
  interface = "{public}"

  [[group.resource]]
  name = "hello"
  kind = "process"
  command = [{exe:?}, "hello", "--listen", "{VIP}:80", "--file", "{FILE}"]
  stop_timeout = "2s"
"#,
        head = head.text(),
        alpha = NODES[0],
        beta = NODES[1],
        device = DATA_LINK,
    ))
}

impl LabStage {
    pub fn build(screen: &Screen, exe: &Path, fast: bool) -> anyhow::Result<LabStage> {
        let exe = exe.to_str().context("the path of tandem is not UTF-8")?.to_string();
        let setup = Setup {
            exe: exe.clone(),
            names: NODES.map(String::from).to_vec(),
            disk_mib: DISK_MIB,
            area_mib: AREA_MIB,
            service_port: 80,
            node_env: Vec::new(),
            watch: None,
        };
        let cluster = LabCluster::build(setup, |lab, _| config(lab, &exe, fast))?;
        let lab = &cluster.lab;
        screen.step(&format!("built the lab {}:", lab.prefix()));
        for (host, name) in NODES.iter().enumerate() {
            let node = Node::Host(host);
            screen.detail(&format!(
                "host {name}: namespace {}, private {}, public {}, disk {} + area {}",
                lab.namespace(node),
                lab.address(node, Network::Private).map(|a| a.to_string()).unwrap_or_default(),
                lab.address(node, Network::Public).map(|a| a.to_string()).unwrap_or_default(),
                lab.disk_device(host).map(|p| p.display().to_string()).unwrap_or_default(),
                lab.area_device(host).map(|p| p.display().to_string()).unwrap_or_default(),
            ));
        }
        screen.detail(&format!(
            "client: namespace {}, public {}",
            lab.namespace(Node::Client),
            lab.address(Node::Client, Network::Public).map(|a| a.to_string()).unwrap_or_default()
        ));
        screen.step(
            "wrote /etc/tandem/cluster.toml on both hosts, the key (tandem keygen, copied), \
             formatted the area (tandem disk init)",
        );
        screen.detail(&format!(
            "group web: data (ext4 on the shared disk at {MOUNTPOINT}, read-only on the \
             standby) -> vip ({VIP}/24 on {}) -> hello (tandem hello on {VIP}:80)",
            Network::Public.interface()
        ));
        Ok(LabStage { client: None, prefix: lab.prefix().to_string(), cluster: Some(cluster) })
    }

    fn cluster(&self) -> &LabCluster {
        self.cluster.as_ref().expect("the lab lives until clean_up")
    }

    fn cluster_mut(&mut self) -> &mut LabCluster {
        self.cluster.as_mut().expect("the lab lives until clean_up")
    }
}

impl Stage for LabStage {
    fn service(&self) -> String {
        format!("http://{VIP}/")
    }

    fn file_path(&self) -> String {
        FILE.to_string()
    }

    fn state_dir(&self, node: usize) -> PathBuf {
        self.cluster().state_dir(node)
    }

    fn runtime_dir(&self, node: usize) -> PathBuf {
        self.cluster().runtime_dir(node)
    }

    fn start_node(&mut self, node: usize) -> anyhow::Result<()> {
        self.cluster_mut().start(node)
    }

    fn write_file(&self, node: usize, text: &str) -> anyhow::Result<()> {
        // `sync FILE` flushes that file only: a bare `sync` flushes every file system of
        // the machine, and on a machine with gigabytes of fresh build output that stalls
        // all disk I/O (the heartbeats too) for seconds.
        let script = format!("printf '%s\\n' \"$1\" > {FILE} && sync {FILE}");
        self.cluster().run_ok(node, &["sh", "-c", &script, "sh", text])?;
        Ok(())
    }

    fn read_file(&self, node: usize) -> anyhow::Result<String> {
        self.cluster().run_ok(node, &["cat", FILE])
    }

    fn start_client(&mut self) -> anyhow::Result<()> {
        let vip = VIP.to_string();
        let client =
            self.cluster().start_client(&vip, CLIENT_INTERVAL_MS, Some(CLIENT_TIMEOUT_MS), None)?;
        self.client = Some(client);
        Ok(())
    }

    fn client_output(&self) -> String {
        self.client.as_ref().and_then(|c| c.stdout().ok()).unwrap_or_default()
    }

    fn stop_client(&mut self) -> String {
        let output = self.client_output();
        self.client = None;
        output
    }

    fn crash(&mut self, node: usize) -> anyhow::Result<String> {
        self.cluster().lab.crash(node)?;
        Ok(format!(
            "host {} crashed: frozen, disk and network cut, every process killed, addresses \
             lost",
            NODES[node]
        ))
    }

    fn recover(&mut self, node: usize) -> anyhow::Result<()> {
        self.cluster().lab.restart(node)?;
        self.start_node(node)
    }

    fn node_log(&self, node: usize) -> String {
        let text = self.cluster().log(node);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn explore(&self, owner: usize) -> Vec<String> {
        let lab = &self.cluster().lab;
        let client = lab.namespace(Node::Client);
        let state = |n: usize| self.state_dir(n).display().to_string();
        let run = |n: usize| self.runtime_dir(n).display().to_string();
        let other = NODES[1 - owner];
        let dirs: Vec<String> = (0..NODES.len())
            .map(|n| self.cluster().etc_dir(n))
            .map(|p| p.parent().unwrap_or(&p).display().to_string())
            .collect();
        vec![
            format!(
                "ip netns exec {client} curl -s http://{VIP}/   # the service, from the client"
            ),
            format!("tandem status --runtime-dir {}   # {}'s view", run(owner), NODES[owner]),
            format!("tandem events --follow --state-dir {}", state(1 - owner)),
            format!("tandem switchover web --to {other} --runtime-dir {}", run(owner)),
            format!(
                "ip netns exec {} ip addr show {}   # the virtual IP on {}",
                lab.namespace(Node::Host(owner)),
                Network::Public.interface(),
                NODES[owner]
            ),
            format!("the hosts' /etc/tandem, /var/lib/tandem and /run: {}", dirs.join(", ")),
        ]
    }

    fn clean_up(&mut self) -> anyhow::Result<String> {
        self.client = None;
        let Some(cluster) = self.cluster.take() else { return Ok("nothing left".to_string()) };
        // Its nodes first, then its lab (the last reference: there is no sampler).
        drop(cluster);
        let left = testbed::leftovers(&self.prefix)?;
        if !left.is_empty() {
            bail!("the lab {} left {}", self.prefix, left.join(", "));
        }
        Ok(format!(
            "removed the lab {} (its namespaces and every process in them, loop devices, \
             image, directories)",
            self.prefix
        ))
    }
}

impl Drop for LabStage {
    fn drop(&mut self) {
        if let Err(error) = self.clean_up() {
            eprintln!("tandem demo: {error:#}");
        }
    }
}
