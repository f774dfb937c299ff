//! The two-daemon cluster on loopback that the tests of `node.rs`, `alerts.rs` and
//! others share (no root): two real `tandem node`s (and their fence guards) on 127.0.0.1,
//! UDP links, a plain file in memory as the shared disk with disk arbitration, one group
//! `web` whose `process` resource is a `sleep` with an argument unique to the test, and
//! a sampler that scans /proc every few milliseconds and remembers the most copies of it
//! seen at once. Extra resources and whole sections (`[[alert]]`, ...) are added by the
//! test. Dropping the cluster stops the daemons, their guards and what they left, by PID.

// Each test file that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use contract::{GroupState, Status};
use labcluster::config::{free_udp_ports, ClusterToml, NodeToml};
use labcluster::sampler::processes_with;

pub const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
pub const NODES: [&str; 2] = ["alpha", "beta"];

pub fn free_port() -> u16 {
    free_udp_ports(1).unwrap()[0]
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub token: String,
    pub daemons: Vec<Option<Child>>,
    /// Most copies of the group's process seen at once.
    most: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    sampler: Option<thread::JoinHandle<()>>,
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster::with_resources("")
    }

    /// A cluster whose group has `extra` resources (TOML) after its process.
    pub fn with_resources(extra: &str) -> Cluster {
        Cluster::with_config(extra, "")
    }

    /// A cluster whose group has `extra` resources after its process, and whose file
    /// ends with `sections` (`[[alert]]`s, ...).
    pub fn with_config(extra: &str, sections: &str) -> Cluster {
        // The disk area is a file here: in memory, not on the machine's busy disk.
        let dir = tempfile::Builder::new()
            .prefix("tandem-node-")
            .tempdir_in(testbed::memory_dir())
            .unwrap();
        let token = format!("86400.{}{}", std::process::id(), free_port());
        let d = dir.path().display().to_string();
        let ports = free_udp_ports(4).unwrap();
        let head = ClusterToml {
            comment: String::new(),
            name: "looptest".into(),
            files: Some((format!("{d}/cluster.key"), format!("{d}/state"))),
            timing: "[timing]\nheartbeat_interval = \"50ms\"\npeer_timeout = \"500ms\"\n\
                     lease_timeout = \"1s\"\n"
                .into(),
            nodes: vec![
                NodeToml::loopback("alpha", &ports[..2], "127.0.0.1:1"),
                NodeToml::loopback("beta", &ports[2..], "127.0.0.1:2"),
            ],
            area: format!("{d}/disk"),
        };
        let config = format!(
            r#"{head}
[[group]]
name = "web"
nodes = ["alpha", "beta"]

  [[group.resource]]
  name = "sleeper"
  kind = "process"
  command = ["/bin/sleep", "{token}"]
  monitor = {{ interval = "200ms", timeout = "1s" }}
  stop_timeout = "1s"
{extra}
{sections}
"#,
            head = head.text(),
        );
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, config).unwrap();
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        ok(Command::new(TANDEM).args(["keygen", "--dir"]).arg(dir.path()).stdout(Stdio::null()));
        std::fs::File::create(dir.path().join("disk")).unwrap().set_len(1 << 20).unwrap();
        ok(Command::new(TANDEM)
            .args(["disk", "init", "--config"])
            .arg(&path)
            .stdout(Stdio::null()));
        let most = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (most, stop, token) = (most.clone(), stop.clone(), token.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    most.fetch_max(processes_with(&token).len(), Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Cluster {
            dir,
            config: path,
            token,
            daemons: vec![None, None],
            most,
            stop,
            sampler: Some(sampler),
        }
    }

    pub fn state(&self, node: usize) -> PathBuf {
        self.dir.path().join(NODES[node])
    }

    /// The node's runtime directory (its control and guard sockets).
    pub fn run_dir(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("run-{}", NODES[node]))
    }

    pub fn start(&mut self, node: usize) {
        self.start_with(node, &[]);
    }

    pub fn start_with(&mut self, node: usize, extra: &[&str]) {
        self.start_env(node, extra, &[]);
    }

    /// Starts the node with `env` added to its environment.
    pub fn start_env(&mut self, node: usize, extra: &[&str], env: &[(&str, &str)]) {
        let mut command = Command::new(TANDEM);
        command.envs(env.iter().copied());
        self.start_from(node, command, extra);
    }

    /// Starts the node with `command` (`tandem`, or a shell that runs it).
    pub fn start_from(&mut self, node: usize, mut command: Command, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", NODES[node])))
            .unwrap();
        let child = command
            .args(["node", "--config"])
            .arg(&self.config)
            .args(["--name", NODES[node], "--state-dir"])
            .arg(self.state(node))
            .arg("--runtime-dir")
            .arg(self.run_dir(node))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemons[node] = Some(child);
    }

    pub fn signal(&mut self, node: usize, signal: nix::sys::signal::Signal) {
        let child = self.daemons[node].as_ref().expect("running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    }

    pub fn wait_exit(&mut self, node: usize, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.daemons[node].as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.daemons[node] = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The status document (`tandem status --json`, which must fit the contract's type);
    /// waits (a little) for a daemon that is starting.
    pub fn status(&self, node: usize) -> Status {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new(TANDEM)
                .args(["status", "--json", "--runtime-dir"])
                .arg(self.run_dir(node))
                .output()
                .unwrap();
            if out.status.success() {
                // The document as the daemon rendered it fits the type, and the type
                // renders the very same JSON back.
                let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let doc: Status = serde_json::from_value(json.clone()).unwrap();
                assert_eq!(serde_json::to_value(&doc).unwrap(), json);
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The group's owner and state as `node` sees them.
    pub fn group(&self, node: usize) -> (Option<String>, GroupState) {
        let doc = self.status(node);
        let g = &doc.groups[0];
        (g.owner.clone(), g.state)
    }

    pub fn wait_running_on(&self, observer: usize, owner: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (o, state) = self.group(observer);
            if o.as_deref() == Some(owner)
                && state == GroupState::Running
                && processes_with(&self.token).len() == 1
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not running on {owner}: {o:?} {state}\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn codes(&self, node: usize) -> Vec<String> {
        daemon::journal::read_journal(&self.state(node))
            .unwrap()
            .into_iter()
            .map(|e| e.code)
            .collect()
    }

    pub fn wait_code(&self, node: usize, code: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.codes(node).iter().any(|c| c == code) {
            assert!(
                Instant::now() < deadline,
                "no {code}: {:?}\n{}",
                self.codes(node),
                self.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        NODES
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(self.dir.path().join(format!("{n}.log")))
                    .unwrap_or_default();
                format!("--- {n}\n{text}")
            })
            .collect()
    }

    pub fn most_at_once(&self) -> usize {
        self.most.load(Ordering::Relaxed)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop the daemons as an operator would, then what may be left: guards (told to
        // exit on their socket) and the group's processes (by PID, found by the token).
        for node in 0..2 {
            if self.daemons[node].is_some() {
                self.signal(node, nix::sys::signal::Signal::SIGTERM);
            }
        }
        for node in 0..2 {
            if self.daemons[node].is_some()
                && self.wait_exit(node, Duration::from_secs(5)).is_none()
            {
                if let Some(mut child) = self.daemons[node].take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        for node in 0..2 {
            let _ = daemon::guard::stop_guard(&self.run_dir(node));
        }
        for pid in processes_with(&self.token) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }
}

/// The cluster formed: both nodes up, the group running on alpha.
pub fn formed() -> Cluster {
    let mut cluster = Cluster::new();
    cluster.start(0);
    cluster.start(1);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(15));
    cluster
}
