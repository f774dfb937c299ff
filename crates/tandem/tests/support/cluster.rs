//! The lab cluster harness shared by the lab tests (`tests/lab.rs`) and the lab
//! benchmarks (`benches/lab.rs`), included by both with `#[path]`.
//!
//! tandem in the lab, as root (`TANDEM_LAB=1`, which the test command sets): real
//! `tandem node` daemons in network + mount + PID namespaces (crates/testbed), a private
//! and a public network, a client, a shared disk with ext4 (each host its own loop
//! device, `lock_standby`) and the heartbeat/lease area, a virtual IP and the `tandem
//! hello` HTTP service answering with its node's name (per [`Shape`], a second group and
//! VIP for mutual backup, or a group of real OCF agents). A sampler reads every host's
//! addresses (`/proc/PID/net/fib_trie`) and mounts (`/proc/PID/mountinfo`) every few
//! milliseconds and counts the instants at which two hosts hold a VIP or a mount at
//! once: that count must be zero in every scenario.
//!
//! Each test builds its own lab (unique names), and the lab removes everything on drop,
//! also when the test panics.

#![allow(dead_code, unused_imports, clippy::needless_range_loop)]

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use daemon::control::{call, Request};
use nix::sys::signal::Signal;
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
    pub timing: &'static str,
    /// Extra lines for the `web` group (after `nodes`).
    pub web_extra: &'static str,
    /// Extra resources for the `web` group, after the standard three.
    pub web_resources: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shape: Shape::ActiveStandby,
            timing:
                "heartbeat_interval = \"100ms\"\npeer_timeout = \"1s\"\nlease_timeout = \"1s\"\n",
            web_extra: "",
            web_resources: "",
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

pub fn config_text(options: &Options) -> String {
    let mut text = format!(
        r#"[cluster]
name = "labtest"
key_file = "/etc/tandem/cluster.key"
state_dir = "/var/lib/tandem"

[timing]
{timing}
[[node]]
name = "alpha"
addresses = {{ private = "192.168.250.10", public = "192.168.251.10" }}

[[node]]
name = "beta"
addresses = {{ private = "192.168.250.11", public = "192.168.251.11" }}

[[link]]
name = "private"
kind = "udp"

[[link]]
name = "public"
kind = "udp"

[[link]]
name = "disk"
kind = "disk"
path = "/etc/tandem/disk-area"

[arbitration]
kind = "disk"

[[group]]
name = "web"
nodes = ["alpha", "beta"]
{web_extra}
  [[group.resource]]
  name = "data"
  kind = "filesystem"
  device = "/etc/tandem/disk-data"
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
        timing = options.timing,
        web_extra = options.web_extra,
        web_resources = options.web_resources,
    );
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
    text
}

/// Whether the network namespace of `pid` has `address` as a local address.
pub fn holds_address(pid: i32, address: &str) -> bool {
    let Ok(trie) = std::fs::read_to_string(format!("/proc/{pid}/net/fib_trie")) else {
        return false;
    };
    let needle = format!("|-- {address}");
    let mut lines = trie.lines();
    while let Some(line) = lines.next() {
        if line.trim() == needle && lines.next().is_some_and(|l| l.contains("/32 host LOCAL")) {
            return true;
        }
    }
    false
}

/// Whether the mount namespace of `pid` has something mounted on `mountpoint`.
pub fn holds_mount(pid: i32, mountpoint: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map(|info| info.lines().any(|l| l.split(' ').nth(4) == Some(mountpoint)))
        .unwrap_or(false)
}

/// Whether one of `pids` is the service listening on `address` (`tandem hello --listen
/// ADDRESS`), stopped or not: its socket accepts connections while it exists. (Reading
/// `/proc/net/tcp` instead walks the kernel's whole connection table: 12 ms a read here.)
pub fn holds_service(pids: &[i32], address: &str) -> bool {
    pids.iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            args.windows(2).any(|w| w[0] == b"--listen" && w[1] == address.as_bytes())
                && !zombie_or_gone(*pid)
        })
    })
}

fn zombie_or_gone(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()).is_none_or(|s| s == "Z")
}

/// Counts of instants with two holders, and what was seen.
#[derive(Default)]
pub struct Sampled {
    pub samples: AtomicUsize,
    pub double_vip: AtomicUsize,
    pub double_mount: AtomicUsize,
    /// Instants when two hosts had the service's port open (both could answer).
    pub double_service: AtomicUsize,
    pub first_double: Mutex<Option<String>>,
}

pub struct Cluster {
    pub lab: Arc<Lab>,
    pub shape: Shape,
    pub hosts: usize,
    pub nodes: Vec<Option<Spawned>>,
    pub sampled: Arc<Sampled>,
    stop: Arc<AtomicBool>,
    sampler: Option<thread::JoinHandle<()>>,
}

impl Cluster {
    pub fn new(options: &Options) -> Cluster {
        let hosts = 2;
        let lab = Lab::builder()
            .hosts(hosts)
            .client(true)
            .shared_disk_mib(16)
            .area_mib(2)
            .init_command(vec![TANDEM.into(), "lab-init".into()])
            .build()
            .expect("lab");
        let config = config_text(options);
        let key_dir = lab.host_dir(Node::Host(0), HostDir::EtcTandem).unwrap();
        let keygen = std::process::Command::new(TANDEM)
            .args(["keygen", "--dir"])
            .arg(&key_dir)
            .output()
            .unwrap();
        assert!(keygen.status.success(), "{keygen:?}");
        let key = std::fs::read(key_dir.join("cluster.key")).unwrap();
        for host in 0..hosts {
            let etc = lab.host_dir(Node::Host(host), HostDir::EtcTandem).unwrap();
            std::fs::write(etc.join("cluster.toml"), &config).unwrap();
            // Private, as `tandem node` requires of a key (E5101).
            std::fs::write(etc.join("cluster.key"), &key).unwrap();
            std::fs::set_permissions(
                etc.join("cluster.key"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
            let link = |name: &str, target: &std::path::Path| {
                let path = etc.join(name);
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(target, path).unwrap();
            };
            link("disk-data", lab.disk_device(host).unwrap());
            link("disk-area", lab.area_device(host).unwrap());
        }
        let init = lab
            .exec(Node::Host(0), &[TANDEM, "disk", "init", "--config", "/etc/tandem/cluster.toml"])
            .unwrap();
        assert!(init.success(), "{init:?}");
        let lab = Arc::new(lab);
        let sampled = Arc::new(Sampled::default());
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (lab, sampled, stop) = (lab.clone(), sampled.clone(), stop.clone());
            thread::spawn(move || sample(&lab, hosts, &sampled, &stop))
        };
        Cluster {
            lab,
            shape: options.shape,
            hosts,
            nodes: (0..hosts).map(|_| None).collect(),
            sampled,
            stop,
            sampler: Some(sampler),
        }
    }

    pub fn start(&mut self, host: usize) {
        self.start_env(host, &[]);
    }

    /// Starts `host`'s daemon with `env` added to its environment.
    pub fn start_env(&mut self, host: usize, env: &[(&str, &str)]) {
        let log = std::env::var("TANDEM_LAB_LOG").unwrap_or_else(|_| "info".into());
        let mut env = env.to_vec();
        env.push(("RUST_LOG", &log));
        let spawned = self
            .lab
            .spawn_env(
                Node::Host(host),
                &[TANDEM, "node", "--config", "/etc/tandem/cluster.toml", "--name", NAMES[host]],
                &env,
            )
            .expect("start tandem node");
        self.nodes[host] = Some(spawned);
    }

    pub fn state_dir(&self, host: usize) -> PathBuf {
        self.lab.host_dir(Node::Host(host), HostDir::VarLibTandem).unwrap()
    }

    /// `host`'s runtime directory (its `/run/tandem`, where the control socket is).
    pub fn runtime_dir(&self, host: usize) -> PathBuf {
        self.lab.host_dir(Node::Host(host), HostDir::Run).unwrap().join("tandem")
    }

    /// The status document of `host`'s daemon (through its control socket).
    pub fn status(&self, host: usize) -> Option<serde_json::Value> {
        call(&self.runtime_dir(host), &Request::Status).ok().map(|a| a["status"].clone())
    }

    /// `group`'s (owner, state) as `host` sees it.
    pub fn group(&self, host: usize, group: &str) -> Option<(Option<String>, String)> {
        let doc = self.status(host)?;
        let g = doc["groups"].as_array()?.iter().find(|g| g["name"] == group)?.clone();
        Some((g["owner"].as_str().map(str::to_string), g["state"].as_str()?.to_string()))
    }

    pub fn codes(&self, host: usize) -> Vec<String> {
        daemon::journal::read_journal(&self.state_dir(host))
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.code)
            .collect()
    }

    /// What host `host`'s node wrote to stderr (its log) so far.
    pub fn log(&self, host: usize) -> String {
        self.nodes[host].as_ref().and_then(|n| n.stderr().ok()).unwrap_or_default()
    }

    pub fn journal(&self, host: usize) -> Vec<daemon::journal::Entry> {
        daemon::journal::read_journal(&self.state_dir(host)).unwrap_or_default()
    }

    /// Everything useful when a scenario fails.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for host in 0..self.hosts {
            out.push_str(&format!("--- {} journal\n", NAMES[host]));
            for e in self.journal(host) {
                out.push_str(&format!("{} {} {}\n", e.time, e.code, e.message));
            }
            if let Some(node) = &self.nodes[host] {
                out.push_str(&format!(
                    "--- {} stderr\n{}\n",
                    NAMES[host],
                    node.stderr().unwrap_or_default()
                ));
            }
            let logs = self.state_dir(host).join("resources");
            for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
                if entry.path().extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(10).collect();
                    out.push_str(&format!("--- {} {}\n", NAMES[host], entry.path().display()));
                    for line in tail.into_iter().rev() {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// Waits until `observer` sees `group` running on `owner`.
    pub fn wait_owner(&self, observer: usize, group: &str, owner: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some((Some(o), state)) = self.group(observer, group) {
                if o == owner && state == "running" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{group} not running on {owner}\n{}", self.report());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that `observer` sees `group` running on `owner` right now.
    pub fn assert_runs(&self, observer: usize, group: &str, owner: &str) {
        let seen = self.group(observer, group);
        assert!(
            seen == Some((Some(owner.to_string()), "running".to_string())),
            "{} sees {group} as {seen:?}, not running on {owner}\n{}",
            NAMES[observer],
            self.report()
        );
    }

    pub fn wait_code(&self, host: usize, code: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.codes(host).iter().any(|c| c == code) {
            assert!(Instant::now() < deadline, "no {code} on {}\n{}", NAMES[host], self.report());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many entries `host`'s journal has: a mark for [`Cluster::wait_code_after`].
    pub fn mark(&self, host: usize) -> usize {
        self.journal(host).len()
    }

    /// Waits for `code` among the entries of `host`'s journal after `mark`.
    pub fn wait_code_after(&self, host: usize, code: &str, mark: usize, within: Duration) {
        self.wait_for(&format!("{code} on {} after entry {mark}", NAMES[host]), within, || {
            self.journal(host).iter().skip(mark).any(|e| e.code == code)
        });
    }

    /// One HTTP GET from the client to `address`: the serving node's name and the rest.
    pub fn get(&self, address: &str) -> Option<String> {
        let out = self
            .lab
            .exec_timeout(
                Node::Client,
                &[
                    TANDEM,
                    "probe",
                    "--target",
                    &format!("{address}:{PORT}"),
                    "--count",
                    "1",
                    "--timeout-ms",
                    "500",
                ],
                Duration::from_secs(5),
            )
            .ok()?;
        let line = out.stdout.lines().next()?.to_string();
        let mut words = line.splitn(3, ' ');
        let (_, ok, rest) = (words.next()?, words.next()?, words.next()?);
        (ok == "ok").then(|| rest.to_string())
    }

    /// Waits until the client is served on `address` by `node`.
    pub fn wait_served_by(&self, address: &str, node: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.get(address).as_deref() == Some(node) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "client not served by {node} on {address}\n{}",
                self.report()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn exec_ok(&self, host: usize, script: &str) -> String {
        let out = self.lab.exec(Node::Host(host), &["sh", "-c", script]).unwrap();
        assert!(out.success(), "{script}: {out:?}");
        out.stdout
    }

    /// Waits until `condition` holds, checking every 50 ms; fails with `what` and the
    /// report after `within`.
    pub fn wait_for(&self, what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out: {what}\n{}", self.report());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The journal entries of `host` with `code`.
    pub fn entries(&self, host: usize, code: &str) -> Vec<daemon::journal::Entry> {
        self.journal(host).into_iter().filter(|e| e.code == code).collect()
    }

    /// Whether `host`'s daemon reports `group` migration-locked.
    pub fn locked(&self, host: usize, group: &str) -> Option<bool> {
        let doc = self.status(host)?;
        let g = doc["groups"].as_array()?.iter().find(|g| g["name"] == group)?.clone();
        g["locked"].as_bool()
    }

    /// The hosts (numbers) whose network namespace has `address` right now.
    pub fn address_holders(&self, address: &str) -> Vec<usize> {
        self.holders(|pid| holds_address(pid, address))
    }

    /// The hosts whose mount namespace has something mounted on `mountpoint` right now.
    pub fn mount_holders(&self, mountpoint: &str) -> Vec<usize> {
        self.holders(|pid| holds_mount(pid, mountpoint))
    }

    fn holders(&self, check: impl Fn(i32) -> bool) -> Vec<usize> {
        (0..self.hosts)
            .filter(|h| {
                let pids = self.lab.pids(Node::Host(*h)).unwrap_or_default();
                pids.first().is_some_and(|pid| check(*pid))
            })
            .collect()
    }

    /// The PIDs (seen from outside) of `host`'s processes whose command line contains
    /// every one of `words` (e.g. `["hello", VIP]` for web's `tandem hello`).
    pub fn pids_running(&self, host: usize, words: &[&str]) -> Vec<i32> {
        let pids = self.lab.pids(Node::Host(host)).unwrap_or_default();
        pids.into_iter()
            .filter(|pid| {
                let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    return false;
                };
                let args: Vec<String> =
                    raw.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into()).collect();
                words.iter().all(|w| args.iter().any(|a| a.contains(w)))
            })
            .collect()
    }

    /// Both daemons up, `web` running on alpha and served to the client (and, per shape,
    /// `app` on beta served on [`VIP2`], or `ocf` on alpha).
    pub fn formed(options: &Options) -> Cluster {
        let mut cluster = Cluster::new(options);
        cluster.start(0);
        cluster.start(1);
        cluster.wait_owner(1, "web", "alpha", Duration::from_secs(30));
        cluster.wait_served_by(VIP, "alpha", Duration::from_secs(10));
        match options.shape {
            Shape::ActiveStandby => {}
            Shape::MutualBackup => {
                cluster.wait_owner(0, "app", "beta", Duration::from_secs(30));
                cluster.wait_served_by(VIP2, "beta", Duration::from_secs(10));
            }
            Shape::Ocf => cluster.wait_owner(1, "ocf", "alpha", Duration::from_secs(30)),
        }
        cluster
    }

    /// The daemon of `host`, as the lab sees its PID.
    pub fn daemon_pid(&self, host: usize) -> i32 {
        self.nodes[host].as_ref().expect("the daemon runs").pid() as i32
    }

    /// Pauses `host`'s daemon (SIGSTOP) for `pause`, then resumes it (SIGCONT): its
    /// loop stops, nothing else on the host does.
    pub fn pause_daemon(&self, host: usize, pause: Duration) {
        let pid = self.daemon_pid(host);
        self.lab.signal_process(Node::Host(host), pid, Signal::SIGSTOP).expect("SIGSTOP");
        thread::sleep(pause);
        self.lab.signal_process(Node::Host(host), pid, Signal::SIGCONT).expect("SIGCONT");
    }

    /// A client asking `address` every 10 ms, `count` times: [`Cluster::probed`] reads
    /// what it saw.
    pub fn probe_every_10ms(&self, address: &str, count: u64) -> Spawned {
        let target = format!("{address}:{PORT}");
        let count = count.to_string();
        let args = [TANDEM, "probe", "--target", &target, "--interval-ms", "10", "--count", &count];
        self.lab.spawn(Node::Client, &args).expect("start the client")
    }

    /// What a client of [`Cluster::probe_every_10ms`] saw once it ended: the answers
    /// (node names, or `fail`) in order.
    pub fn probed(mut client: Spawned) -> Vec<String> {
        let _ = client.wait_timeout(Duration::from_secs(60));
        let out = client.stdout().unwrap_or_default();
        out.lines()
            .filter_map(|line| {
                let mut words = line.split(' ');
                let (_, ok, node) = (words.next()?, words.next()?, words.next().unwrap_or(""));
                Some(if ok == "ok" { node.to_string() } else { "fail".to_string() })
            })
            .collect()
    }

    /// Stops the sampler (for good): a benchmark that measures the nodes' own cost does
    /// not want a thread reading every host's addresses and mounts 200 times a second
    /// on the same cores. What it sampled so far still counts.
    pub fn stop_sampler(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }

    /// Asserts that no two hosts ever held the VIP or the mount at once (so far).
    pub fn assert_never_double(&self) {
        let s = &self.sampled;
        assert!(s.samples.load(Ordering::Relaxed) > 10, "the sampler did not run");
        let (vip, mount, service) = (
            s.double_vip.load(Ordering::Relaxed),
            s.double_mount.load(Ordering::Relaxed),
            s.double_service.load(Ordering::Relaxed),
        );
        assert!(
            vip == 0 && mount == 0 && service == 0,
            "two holders at once: {vip} VIP samples, {mount} mount samples, {service} service \
             samples; first: {:?}\n{}",
            s.first_double.lock().unwrap(),
            self.report()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_sampler();
        // Daemons die with their hosts when the lab is dropped.
        self.nodes.clear();
    }
}

/// The sampler: every few milliseconds, which hosts hold each VIP and mount.
pub fn sample(lab: &Lab, hosts: usize, sampled: &Sampled, stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let all: Vec<Vec<i32>> =
            (0..hosts).map(|h| lab.pids(Node::Host(h)).unwrap_or_default()).collect();
        let pids: Vec<Option<i32>> = all.iter().map(|p| p.first().copied()).collect();
        let note = |what: &str, holders: Vec<usize>, counter: &AtomicUsize| {
            if holders.len() > 1 {
                counter.fetch_add(1, Ordering::Relaxed);
                let mut first = sampled.first_double.lock().unwrap();
                first.get_or_insert_with(|| {
                    format!("{what} on hosts {holders:?} at {:?}", started.elapsed())
                });
            }
        };
        for (what, check, counter) in [
            (VIP, holds_address as fn(i32, &str) -> bool, &sampled.double_vip),
            (VIP2, holds_address, &sampled.double_vip),
            (VIP3, holds_address, &sampled.double_vip),
            (MOUNT, holds_mount, &sampled.double_mount),
            (MOUNT2, holds_mount, &sampled.double_mount),
        ] {
            let holders: Vec<usize> =
                (0..hosts).filter(|h| pids[*h].is_some_and(|pid| check(pid, what))).collect();
            note(what, holders, counter);
        }
        for service in [SERVICE, SERVICE2] {
            let holders: Vec<usize> =
                (0..hosts).filter(|h| holds_service(&all[*h], service)).collect();
            note(service, holders, &sampled.double_service);
        }
        sampled.samples.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(5));
    }
}

/// The owner's (host 0's) public heartbeat port, where the flood goes.
pub const HEARTBEAT_PORT: &str = "5405";

impl Cluster {
    /// The `receiving` entries of `links` (what the UDP links accepted and rejected) in
    /// one status document of `host`.
    pub fn receiving<const N: usize>(
        &self,
        host: usize,
        links: [&str; N],
    ) -> [serde_json::Value; N] {
        let doc = self.status(host).unwrap_or_default();
        let all = doc["receiving"].as_array().cloned().unwrap_or_default();
        links.map(|link| all.iter().find(|l| l["link"] == link).cloned().unwrap_or_default())
    }

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
