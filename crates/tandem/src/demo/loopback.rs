//! The demo without the lab (no root, or missing tools, or `--loopback`): both nodes are
//! `tandem node` processes on this machine with UDP links on 127.0.0.1 ports, a plain
//! file as the shared-disk area (disk heartbeats and leases as on a real disk), and one
//! group `web` whose only resource is `tandem hello` on a 127.0.0.1 port. The crash is a
//! SIGKILL of alpha's daemon: its fence guard stops the service when alpha's lease runs
//! out, and beta takes over once the lease has expired.
//!
//! It owns a temporary directory (configuration, key, area, state and runtime
//! directories, logs) and the processes it starts; every one of them carries that
//! directory's path in its command line, which is how the clean-up finds what the
//! daemons started (fence guards, the service) after stopping the daemons. It signals
//! no other process.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use labcluster::config::{free_udp_ports, ClusterToml, NodeToml};
use labcluster::sampler::processes_with;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::screen::Screen;
use super::{timing_toml, Stage, CLIENT_INTERVAL_MS, CLIENT_TIMEOUT_MS, NODES};

/// How long a daemon may take to stop after SIGTERM (it stops its groups first).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of the plain file that stands in for the shared disk's area.
const AREA_BYTES: u64 = 1 << 20;

pub struct LoopbackStage {
    /// `None` once removed.
    dir: Option<tempfile::TempDir>,
    /// The directory's path, in every command line of the demo's processes.
    token: String,
    exe: PathBuf,
    config: PathBuf,
    service: SocketAddr,
    daemons: [Option<Child>; 2],
    client: Option<Child>,
}

fn free_tcp_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// Runs `tandem ARGS` to completion; its error output when it fails.
fn tandem(exe: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(exe).args(args).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        bail!(
            "`tandem {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl LoopbackStage {
    pub fn build(screen: &Screen, exe: &Path, fast: bool) -> anyhow::Result<LoopbackStage> {
        // The disk area is a file here: in memory where the machine has a tmpfs, so that
        // its synchronous writes never wait for a busy system disk (testbed::memory_dir).
        let dir =
            tempfile::Builder::new().prefix("tandem-demo-").tempdir_in(testbed::memory_dir())?;
        let d = dir.path().display().to_string();
        let ports = free_udp_ports(4)?;
        let service = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()?));
        let exe_text = exe.display().to_string();
        let node = |name: &str, ports: &[u16]| -> anyhow::Result<NodeToml> {
            Ok(NodeToml::loopback(name, ports, &format!("127.0.0.1:{}", free_tcp_port()?)))
        };
        let head = ClusterToml {
            comment: "Written by `tandem demo` (loopback mode).".into(),
            name: "demo".into(),
            files: Some((format!("{d}/cluster.key"), format!("{d}/state"))),
            timing: timing_toml(fast).into(),
            nodes: vec![node(NODES[0], &ports[..2])?, node(NODES[1], &ports[2..])?],
            area: format!("{d}/area"),
        };
        let config = format!(
            r#"{head}
[[group]]
name = "web"
nodes = ["{alpha}", "{beta}"]

  [[group.resource]]
  name = "hello"
  kind = "process"
  command = [{exe:?}, "hello", "--listen", "{service}", "--file", "{d}/www/hello.txt"]
  stop_timeout = "2s"
"#,
            head = head.text(),
            alpha = NODES[0],
            beta = NODES[1],
            exe = exe_text,
        );
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, config)?;
        std::fs::create_dir(dir.path().join("www"))?;
        let stage = LoopbackStage {
            token: d.clone(),
            dir: Some(dir),
            exe: exe.to_path_buf(),
            config: path.clone(),
            service,
            daemons: [None, None],
            client: None,
        };
        let config_text = path.display().to_string();
        tandem(exe, &["keygen", "--dir", &d])?;
        std::fs::File::create(format!("{d}/area"))?.set_len(AREA_BYTES)?;
        tandem(exe, &["disk", "init", "--config", &config_text])?;
        screen.step(&format!(
            "set up {d}: cluster.toml, cluster.key (tandem keygen), area (tandem disk init)"
        ));
        screen.detail(&format!(
            "nodes {} and {} on 127.0.0.1 (links net1, net2: UDP; disk: a plain file with \
             disk arbitration); service: tandem hello on {service}",
            NODES[0], NODES[1]
        ));
        let why = "needs root and network namespaces";
        screen.skipped("separate machines", &format!("{why}; both nodes are processes here, and the crash is a SIGKILL of alpha's daemon"));
        screen.skipped(
            "a virtual IP",
            &format!("{why}; the service listens on a 127.0.0.1 port that both nodes share"),
        );
        screen.skipped(
            "a shared file system",
            "needs root and loop devices; the service reads a plain file",
        );
        Ok(stage)
    }

    fn dir(&self) -> &Path {
        Path::new(&self.token)
    }

    /// Stops daemon `node` with SIGTERM (as an operator would), killing it if it does not
    /// exit in time.
    fn stop_daemon(&mut self, node: usize) {
        let Some(mut child) = self.daemons[node].take() else { return };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Stage for LoopbackStage {
    fn service(&self) -> String {
        format!("http://{}/", self.service)
    }

    fn file_path(&self) -> String {
        format!("{}/www/hello.txt", self.token)
    }

    fn state_dir(&self, node: usize) -> PathBuf {
        self.dir().join(NODES[node])
    }

    fn runtime_dir(&self, node: usize) -> PathBuf {
        self.dir().join(format!("run-{}", NODES[node]))
    }

    fn start_node(&mut self, node: usize) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join(format!("{}.log", NODES[node])))?;
        let child = Command::new(&self.exe)
            .arg("node")
            .arg("--config")
            .arg(&self.config)
            .args(["--name", NODES[node], "--state-dir"])
            .arg(self.state_dir(node))
            .arg("--runtime-dir")
            .arg(self.runtime_dir(node))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Its own process group: a Ctrl-C on the terminal reaches the demo only,
            // which then stops everything in order.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}'s node", NODES[node]))?;
        self.daemons[node] = Some(child);
        Ok(())
    }

    fn write_file(&self, _node: usize, text: &str) -> anyhow::Result<()> {
        let mut file = std::fs::File::create(self.file_path())?;
        writeln!(file, "{text}")?;
        file.sync_all()?;
        Ok(())
    }

    fn read_file(&self, _node: usize) -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(self.file_path())?)
    }

    fn start_client(&mut self) -> anyhow::Result<()> {
        let output = std::fs::File::create(self.dir().join("client.out"))?;
        let child = Command::new(&self.exe)
            .args(["probe", "--target", &self.service.to_string()])
            .args(["--interval-ms", &CLIENT_INTERVAL_MS.to_string()])
            .args(["--timeout-ms", &CLIENT_TIMEOUT_MS.to_string()])
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting the client")?;
        self.client = Some(child);
        Ok(())
    }

    fn client_output(&self) -> String {
        std::fs::read_to_string(self.dir().join("client.out")).unwrap_or_default()
    }

    fn stop_client(&mut self) -> String {
        if let Some(mut child) = self.client.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.client_output()
    }

    fn crash(&mut self, node: usize) -> anyhow::Result<String> {
        let mut child = self.daemons[node].take().context("the node is not running")?;
        child.kill()?;
        child.wait()?;
        Ok(format!(
            "{}'s daemon killed (SIGKILL); its fence guard stops the service when its lease \
             runs out",
            NODES[node]
        ))
    }

    fn recover(&mut self, node: usize) -> anyhow::Result<()> {
        self.start_node(node)
    }

    fn node_log(&self, node: usize) -> String {
        let text = std::fs::read_to_string(self.dir().join(format!("{}.log", NODES[node])))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn explore(&self, owner: usize) -> Vec<String> {
        let d = &self.token;
        let other = NODES[1 - owner];
        vec![
            format!("curl -s {}   # the service", self.service()),
            format!(
                "tandem status --runtime-dir {d}/run-{}   # {}'s view",
                NODES[owner], NODES[owner]
            ),
            format!("tandem events --follow --state-dir {d}/{other}"),
            format!("tandem switchover web --to {other} --runtime-dir {d}/run-{}", NODES[owner]),
            format!("configuration: {d}/cluster.toml; daemon logs: {d}/*.log"),
        ]
    }

    fn clean_up(&mut self) -> anyhow::Result<String> {
        let Some(dir) = self.dir.take() else { return Ok("nothing left".to_string()) };
        self.stop_client();
        for node in 0..NODES.len() {
            self.stop_daemon(node);
        }
        // A fence guard outlives its daemon by design; tell it to go.
        for node in 0..NODES.len() {
            let _ = daemon::guard::stop_guard(&self.runtime_dir(node));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut left = processes_with(&self.token);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            left = processes_with(&self.token);
        }
        // Whatever is still there (a service whose daemon died) is ours: it carries the
        // directory's path.
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while !processes_with(&self.token).is_empty() {
            if Instant::now() >= deadline {
                bail!("processes of {} still run: {:?}", self.token, processes_with(&self.token));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        dir.close().with_context(|| format!("removing {}", self.token))?;
        Ok(format!(
            "stopped both nodes, their fence guards and the service; removed {}",
            self.token
        ))
    }
}

impl Drop for LoopbackStage {
    fn drop(&mut self) {
        if let Err(error) = self.clean_up() {
            eprintln!("tandem demo: {error:#}");
        }
    }
}
