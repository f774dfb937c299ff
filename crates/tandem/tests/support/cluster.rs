//! The lab scenarios' cluster, shared by the lab tests (`tests/lab.rs`) and the lab
//! benchmarks (`benches/lab.rs`), included by both with `#[path]`: what the scenarios
//! run (per [`Shape`]: a group `web` with the shared disk's ext4 (`lock_standby`), a
//! virtual IP and the `tandem hello` HTTP service answering with its node's name; a
//! second group and VIP for mutual backup, or a group of real OCF agents), on the lab
//! cluster of the `labcluster` crate (the harness `tandem demo` uses too: real `tandem
//! node` daemons in network + mount + PID namespaces, a private and a public network, a
//! client, the shared disk and its heartbeat/lease area), with its sampler watching
//! every VIP, mount and service: the count of instants at which two hosts hold one at
//! once must be zero in every scenario. Here too: the heartbeat capture and the
//! flooders of issue 18.
//!
//! Each test builds its own lab (unique names), and the lab removes everything on drop,
//! also when the test panics.

#![allow(dead_code, unused_imports)]

use std::net::SocketAddrV4;
use std::ops::{Deref, DerefMut};
use std::thread;
use std::time::Duration;

use labcluster::config::{lab_nodes, ClusterToml};
use labcluster::probe::parse_attempts;
pub use labcluster::sampler::{holds_address, holds_mount, holds_service, Watch};
use labcluster::{LabCluster, Setup, AREA_LINK, DATA_LINK};
pub use testbed::{HostDir, Lab, Network, Node, Spawned};

pub const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
pub const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];
pub const VIP: &str = "192.168.251.100";
pub const VIP2: &str = "192.168.251.101";
/// The address of the `ocf` group (`Shape::Ocf`), held by `ocf:heartbeat:IPaddr2`.
pub const VIP3: &str = "192.168.251.102";
/// The state file of the `ocf` group's `ocf:heartbeat:Dummy` (in each host's own `/run`).
pub const OCF_STATE: &str = "/run/tandem-lab-dummy.state";
/// Debian's resource-agents, which `Shape::Ocf` needs.
pub const IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
pub const MOUNT: &str = "/var/lib/tandem/web-data";
pub const MOUNT2: &str = "/var/lib/tandem/app-data";
pub const PORT: u16 = 8080;
/// `web`'s and `app`'s services, as the sampler looks for their listening sockets.
pub const SERVICE: &str = "192.168.251.100:8080";
pub const SERVICE2: &str = "192.168.251.101:8080";

pub fn lab_available(test: &str) -> bool {
    match testbed::availability() {
        Ok(()) => true,
        Err(why) => {
            testgate::cannot_run(test, &why);
            false
        }
    }
}

/// What a scenario's cluster looks like.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// One group `web` (filesystem + ip + hello) on alpha, beta standing by.
    ActiveStandby,
    /// `web` prefers alpha, `app` prefers beta (failback auto), each with its own VIP
    /// and file system... on one shared disk: `app` has ip + hello only.
    MutualBackup,
    /// `web` as in `ActiveStandby`, and a group `ocf` (alpha, then beta) of real OCF
    /// agents from resource-agents: `ocf:heartbeat:IPaddr2` holding [`VIP3`] on `pub0`
    /// and `ocf:heartbeat:Dummy` with its state file [`OCF_STATE`].
    Ocf,
}

/// The config's `[timing]` and group extras, per test.
#[derive(Clone, Debug)]
pub struct Options {
    pub shape: Shape,
    /// How many hosts (nodes named from [`NAMES`]): 2, or 3 for a standing-by gamma
    /// that is in no group's list.
    pub hosts: usize,
    pub timing: &'static str,
    /// Extra lines for the `web` group (after `nodes`).
    pub web_extra: &'static str,
    /// Extra resources for the `web` group, after the standard three.
    pub web_resources: &'static str,
    /// Appended to the configuration (e.g. `[[alert]]`s), `{client}` standing for the
    /// client's address on the public network.
    pub extra: &'static str,
    /// The HTTPS API on every node ([`LabCluster::enable_api`]), before they start.
    pub api: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shape: Shape::ActiveStandby,
            hosts: 2,
            timing:
                "heartbeat_interval = \"100ms\"\npeer_timeout = \"1s\"\nlease_timeout = \"1s\"\n",
            web_extra: "",
            web_resources: "",
            extra: "",
            api: false,
        }
    }
}

/// The fast profile's `[timing]` (heartbeat 50 ms, peer and lease timeout 300 ms).
pub const FAST_TIMING: &str =
    "heartbeat_interval = \"50ms\"\npeer_timeout = \"300ms\"\nlease_timeout = \"300ms\"\n";

impl Options {
    /// The default cluster at the fast profile's timing.
    pub fn fast() -> Options {
        Options { timing: FAST_TIMING, ..Options::default() }
    }
}

pub fn config_text(lab: &Lab, options: &Options) -> String {
    let names: Vec<String> = NAMES[..options.hosts].iter().map(|n| n.to_string()).collect();
    let mut text = ClusterToml {
        comment: String::new(),
        name: "labtest".into(),
        files: Some(("/etc/tandem/cluster.key".into(), "/var/lib/tandem".into())),
        timing: format!("[timing]\n{}", options.timing),
        nodes: lab_nodes(lab, &names),
        area: AREA_LINK.into(),
    }
    .text();
    text.push_str(&format!(
        r#"
[[group]]
name = "web"
nodes = ["alpha", "beta"]
{web_extra}
  [[group.resource]]
  name = "data"
  kind = "filesystem"
  device = "{DATA_LINK}"
  mountpoint = "{MOUNT}"
  fstype = "ext4"
  lock_standby = true

  [[group.resource]]
  name = "vip"
  kind = "ip"
  address = "{VIP}/24"
  interface = "pub0"

  [[group.resource]]
  name = "http"
  kind = "process"
  command = ["{TANDEM}", "hello", "--listen", "{VIP}:{PORT}", "--file", "{MOUNT}/hello.txt"]
  monitor = {{ interval = "500ms", timeout = "2s" }}
  stop_timeout = "2s"
{web_resources}"#,
        web_extra = options.web_extra,
        web_resources = options.web_resources,
    ));
    if options.shape == Shape::MutualBackup {
        text.push_str(&format!(
            r#"
[[group]]
name = "app"
nodes = ["beta", "alpha"]
failback = "auto"
failback_delay = "2s"

  [[group.resource]]
  name = "app-vip"
  kind = "ip"
  address = "{VIP2}/24"
  interface = "pub0"

  [[group.resource]]
  name = "app-http"
  kind = "process"
  command = ["{TANDEM}", "hello", "--listen", "{VIP2}:{PORT}"]
  monitor = {{ interval = "500ms", timeout = "2s" }}
  stop_timeout = "2s"
"#
        ));
    }
    if options.shape == Shape::Ocf {
        text.push_str(&format!(
            r#"
[[group]]
name = "ocf"
nodes = ["alpha", "beta"]

  [[group.resource]]
  name = "ocf-vip"
  kind = "ocf"
  agent = "heartbeat:IPaddr2"
  params = {{ ip = "{VIP3}", cidr_netmask = "24", nic = "pub0" }}
  monitor = {{ interval = "1s", timeout = "10s" }}

  [[group.resource]]
  name = "ocf-dummy"
  kind = "ocf"
  agent = "heartbeat:Dummy"
  params = {{ state = "{OCF_STATE}" }}
  monitor = {{ interval = "1s", timeout = "10s" }}
"#
        ));
    }
    let client = lab.address(Node::Client, Network::Public).map(|a| a.to_string());
    text.push_str(&options.extra.replace("{client}", &client.unwrap_or_default()));
    text
}

/// A scenario's cluster: the harness, with the scenario's shape.
pub struct Cluster {
    pub inner: LabCluster,
    pub shape: Shape,
}

impl Deref for Cluster {
    type Target = LabCluster;
    fn deref(&self) -> &LabCluster {
        &self.inner
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut LabCluster {
        &mut self.inner
    }
}

impl Cluster {
    /// The lab and both hosts prepared (configuration, key, disk area), the sampler
    /// running; no node started.
    pub fn new(options: &Options) -> Cluster {
        let watch = Watch {
            addresses: [VIP, VIP2, VIP3].map(String::from).to_vec(),
            mounts: [MOUNT, MOUNT2].map(String::from).to_vec(),
            services: [SERVICE, SERVICE2].map(String::from).to_vec(),
        };
        let log = std::env::var("TANDEM_LAB_LOG").unwrap_or_else(|_| "info".into());
        let setup = Setup {
            exe: TANDEM.into(),
            names: NAMES[..options.hosts].iter().map(|n| n.to_string()).collect(),
            disk_mib: 16,
            area_mib: 2,
            service_port: PORT,
            node_env: vec![("RUST_LOG".into(), log)],
            watch: Some(watch),
        };
        let inner = LabCluster::build(setup, |lab, _| Ok(config_text(lab, options)))
            .unwrap_or_else(|e| panic!("building the lab cluster: {e:#}"));
        Cluster { inner, shape: options.shape }
    }

    /// Every daemon up, `web` running on alpha and served to the client (and, per shape,
    /// `app` on beta served on [`VIP2`], or `ocf` on alpha); with `options.api`, the API's
    /// files are made first.
    pub fn formed(options: &Options) -> Cluster {
        let mut cluster = Cluster::new(options);
        if options.api {
            cluster.enable_api().unwrap_or_else(|e| panic!("the API's files: {e:#}"));
        }
        cluster.form(options);
        cluster
    }

    /// [`Cluster::formed`]'s second half, for a test that prepares more (receivers, the
    /// API's users) between building the lab and starting the daemons.
    pub fn form(&mut self, options: &Options) {
        for (host, name) in NAMES[..options.hosts].iter().enumerate() {
            self.start(host).unwrap_or_else(|e| panic!("starting {name}: {e:#}"));
        }
        self.wait_owner(1, "web", "alpha", Duration::from_secs(30));
        self.wait_served_by(VIP, "alpha", Duration::from_secs(10));
        match options.shape {
            Shape::ActiveStandby => {}
            Shape::MutualBackup => {
                self.wait_owner(0, "app", "beta", Duration::from_secs(30));
                self.wait_served_by(VIP2, "beta", Duration::from_secs(10));
            }
            Shape::Ocf => self.wait_owner(1, "ocf", "alpha", Duration::from_secs(30)),
        }
    }

    /// A client asking `address` every 10 ms, `count` times: [`Cluster::probed`] reads
    /// what it saw.
    pub fn probe_every_10ms(&self, address: &str, count: u64) -> Spawned {
        self.start_client(address, 10, None, Some(count)).expect("start the client")
    }

    /// What a client of [`Cluster::probe_every_10ms`] saw once it ended: the answers
    /// (node names, or `fail`) in order.
    pub fn probed(mut client: Spawned) -> Vec<String> {
        let _ = client.wait_timeout(Duration::from_secs(60));
        let attempts = parse_attempts(&client.stdout().unwrap_or_default());
        attempts.into_iter().map(|a| a.answer.unwrap_or_else(|_| "fail".into())).collect()
    }
}

/// The owner's (host 0's) public heartbeat port, where the flood goes.
pub const HEARTBEAT_PORT: &str = "5405";

impl Cluster {
    /// What beta (host 1) sends to alpha's (host 0's) public heartbeat port during
    /// `seconds`, captured on alpha: one hex line per frame.
    pub fn capture_heartbeats(&self, seconds: f64) -> String {
        let peer = self.lab.address(Node::Host(1), Network::Public).expect("peer").to_string();
        let seconds = seconds.to_string();
        let args = ["python3", "-c", CAPTURE, &peer, HEARTBEAT_PORT, &seconds];
        let captured = self.lab.exec(Node::Host(0), &args).expect("capture");
        assert!(captured.stdout.lines().count() >= 5, "captured too little: {captured:?}");
        captured.stdout
    }

    /// Two flooders in the client namespace (threads of this process there, niced, see
    /// [`testbed::flood`]), `rate` datagrams a second each for at most `seconds` (and
    /// `rate × seconds` datagrams), to alpha's public heartbeat port only: one as beta
    /// (its address and port, through a raw socket), one from the client's own address.
    /// `large: false`: `frames` (from [`Cluster::capture_heartbeats`]), every other one
    /// with a random byte flipped; `large: true`: the largest datagrams, with the first
    /// frame's header, a payload length to match, fresh sequence numbers and noise.
    pub fn flood(
        &self,
        large: bool,
        rate: u32,
        seconds: u32,
        frames: &str,
    ) -> Vec<std::thread::JoinHandle<std::io::Result<testbed::Flooded>>> {
        let owner = self.lab.address(Node::Host(0), Network::Public).expect("owner");
        let peer = self.lab.address(Node::Host(1), Network::Public).expect("peer");
        let port: u16 = HEARTBEAT_PORT.parse().unwrap();
        let frames: Vec<Vec<u8>> = frames
            .split_whitespace()
            .map(|line| {
                (0..line.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
                    .collect()
            })
            .collect();
        assert!(!frames.is_empty(), "no frames to flood with");
        let mut rng = fastrand::Rng::with_seed(7);
        let payloads: Vec<Vec<u8>> = if large {
            // The header: 40 bytes, the sequence number (little endian) at 28, the
            // payload's length at 36; the 32-byte tag is part of the noise.
            let head = &frames[0][..40];
            let sequence = u64::from_le_bytes(head[28..36].try_into().unwrap());
            (0..64u64)
                .map(|i| {
                    let mut datagram = head.to_vec();
                    datagram[28..36].copy_from_slice(&(sequence + 1000 + i).to_le_bytes());
                    let length = (testbed::flood::MAX_PAYLOAD - 40 - 32) as u32;
                    datagram[36..40].copy_from_slice(&length.to_le_bytes());
                    datagram.extend(testbed::flood::noise(i, testbed::flood::MAX_PAYLOAD - 40));
                    datagram
                })
                .collect()
        } else {
            (0..4000)
                .map(|i| {
                    let mut frame = frames[i % frames.len()].clone();
                    if i % 2 == 1 {
                        let at = rng.usize(..frame.len());
                        frame[at] ^= rng.u8(1..);
                    }
                    frame
                })
                .collect()
        };
        [Some(SocketAddrV4::new(peer, port)), None]
            .into_iter()
            .map(|spoof| {
                let flood = testbed::Flood {
                    target: SocketAddrV4::new(owner, port),
                    payloads: payloads.clone(),
                    spoof,
                    rate,
                    duration: Duration::from_secs(seconds.into()),
                };
                self.lab.flood(Node::Client, flood).expect("flooder")
            })
            .collect()
    }
}

/// Captures, in the owner's namespace, the UDP payloads that `source` sends to `port`
/// for `seconds`: one hex line each.
const CAPTURE: &str = r#"
import socket, struct, sys, time
source, port, seconds = socket.inet_aton(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
s.settimeout(0.1)
end = time.time() + seconds
while time.time() < end:
    try:
        p = s.recv(70000)
    except socket.timeout:
        continue
    if len(p) < 28 or p[9] != 17 or p[12:16] != source:
        continue
    ihl = (p[0] & 15) * 4
    if struct.unpack("!H", p[ihl + 2:ihl + 4])[0] == port:
        print(p[ihl + 8:].hex(), flush=True)
"#;
