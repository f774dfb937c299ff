//! One harness for an N-host tandem cluster on the lab ([`testbed::Lab`]), shared by
//! `tandem demo`, the lab tests (`crates/tandem/tests/lab.rs`) and the lab benchmarks
//! (`crates/tandem/benches/lab.rs`): it builds the lab (hosts, a client, the shared
//! disk and its heartbeat area), writes each host's `/etc/tandem/cluster.toml` (the
//! caller's text, per host; [`config`] writes everything but the groups), the key
//! (`tandem keygen` on the first host, copied, private) and the links
//! `/etc/tandem/disk-data` and `/etc/tandem/disk-area` to the host's own loop devices,
//! formats the area (`tandem disk init`), starts, kills and pauses `tandem node` per
//! host, reads each node's status document through its control socket and its journal
//! from its state directory, runs `tandem` commands (switch-over and the other admin
//! calls) inside a host, runs the client (`tandem probe`, [`probe`]) and, when asked
//! to, the sampler of VIPs, mounts and services that counts two holders at once
//! ([`sampler`]).
//!
//! Why a crate of its own: it speaks the daemon's control protocol and reads its
//! journal (`daemon::control`, `daemon::journal`), which `testbed` must not know (the
//! lab is tandem-agnostic and depends on no workspace crate), and every user of it
//! lives in the `tandem` package (the demo in the binary, the tests and benchmarks
//! beside it), which the binary's own modules could not share with them. Like `testbed`
//! it is a leaf: only `tandem` depends on it (xtask's dependency rules).
//!
//! The `Result` methods are for the demo, which reports errors and cleans up; the
//! waits and assertions (`wait_*`, `assert_*`, [`LabCluster::exec_ok`]) are for tests
//! and benchmarks and panic with [`LabCluster::report`] (the journals, logs and
//! resource logs of every host). Dropping the cluster stops the sampler and the
//! daemons; dropping its lab (the last [`Arc`]) removes everything.

pub mod config;
pub mod probe;
pub mod sampler;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use contract::{Event as Entry, GroupEntry, GroupState, Receiving, Request, Status};
use daemon::control::call;
use daemon::journal::read_journal;
use nix::sys::signal::Signal;
pub use testbed::{HostDir, Lab, Network, Node, Spawned};

use sampler::{Sampled, Watch};

/// Each host's configuration, as `tandem node` reads it by default.
pub const CONFIG: &str = "/etc/tandem/cluster.toml";
/// Links, in each host's `/etc/tandem`, to its own loop devices over the shared disk:
/// the file system and the heartbeat and lease area.
pub const DATA_LINK: &str = "/etc/tandem/disk-data";
pub const AREA_LINK: &str = "/etc/tandem/disk-area";
/// The port of every node's HTTPS API, on its public address ([`config::lab_nodes`]):
/// the default port, so the client reaches `https://ADDRESS:7400`.
pub const API_PORT: u16 = 7400;

/// The status document of the node whose runtime directory is `runtime_dir`, if its
/// daemon answers on its control socket.
pub fn status_at(runtime_dir: &std::path::Path) -> Option<Status> {
    call(runtime_dir, &Request::Status).ok().and_then(|answer| answer.status).map(|s| *s)
}

/// What to build.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The `tandem` binary (the hosts see this machine's files, so one path serves).
    pub exe: String,
    /// The nodes' names, host 0 first: one host each.
    pub names: Vec<String>,
    /// The shared disk's file system and its heartbeat area, in MiB.
    pub disk_mib: u64,
    pub area_mib: u64,
    /// The port of the services the client asks ([`LabCluster::get`]).
    pub service_port: u16,
    /// Added to the environment of every `tandem node` started.
    pub node_env: Vec<(String, String)>,
    /// What the sampler watches, or `None` for no sampler.
    pub watch: Option<Watch>,
}

pub struct LabCluster {
    pub lab: Arc<Lab>,
    pub exe: String,
    pub names: Vec<String>,
    /// Each host's `tandem node`, while started here.
    pub nodes: Vec<Option<Spawned>>,
    pub sampled: Arc<Sampled>,
    service_port: u16,
    node_env: Vec<(String, String)>,
    stop: Arc<AtomicBool>,
    sampler: Option<thread::JoinHandle<()>>,
}

impl LabCluster {
    /// Builds the lab and prepares every host (configuration from `config(lab, host)`,
    /// key, device links), formats the area; no node runs yet. On failure the lab built
    /// so far is removed.
    pub fn build(
        setup: Setup,
        config: impl Fn(&Lab, usize) -> anyhow::Result<String>,
    ) -> anyhow::Result<LabCluster> {
        let hosts = setup.names.len();
        let lab = Lab::builder()
            .hosts(hosts)
            .client(true)
            .shared_disk_mib(setup.disk_mib)
            .area_mib(setup.area_mib)
            .init_command(vec![setup.exe.clone().into(), "lab-init".into()])
            .build()?;
        let mut cluster = LabCluster {
            lab: Arc::new(lab),
            exe: setup.exe,
            names: setup.names,
            nodes: (0..hosts).map(|_| None).collect(),
            sampled: Arc::new(Sampled::default()),
            service_port: setup.service_port,
            node_env: setup.node_env,
            stop: Arc::new(AtomicBool::new(false)),
            sampler: None,
        };
        for host in 0..hosts {
            let etc = cluster.etc_dir(host);
            let path = etc.join("cluster.toml");
            std::fs::write(&path, config(&cluster.lab, host)?)
                .with_context(|| format!("writing {}", path.display()))?;
            let link = |inside: &str, target: Option<&std::path::Path>| {
                let target = target.context("the lab has no shared disk")?;
                let path = etc.join(inside.trim_start_matches("/etc/tandem/"));
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(target, &path)
                    .with_context(|| format!("linking {}", path.display()))
            };
            link(DATA_LINK, cluster.lab.disk_device(host))?;
            link(AREA_LINK, cluster.lab.area_device(host))?;
        }
        cluster.tandem_ok(0, &["keygen", "--dir", "/etc/tandem"])?;
        let key = std::fs::read(cluster.etc_dir(0).join("cluster.key")).context("the key")?;
        for host in 1..hosts {
            let path = cluster.etc_dir(host).join("cluster.key");
            // Private, as `tandem node` requires of a key (E5101).
            std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
        cluster.tandem_ok(0, &["disk", "init", "--config", CONFIG])?;
        if let Some(watch) = setup.watch {
            let (lab, sampled, stop) =
                (cluster.lab.clone(), cluster.sampled.clone(), cluster.stop.clone());
            cluster.sampler =
                Some(thread::spawn(move || sampler::sample(&lab, hosts, &watch, &sampled, &stop)));
        }
        Ok(cluster)
    }

    /// The HTTPS API on every host, as an operator sets it up: `tandem keygen --config`
    /// on host 0 (the cluster CA and one certificate per node, for its public address),
    /// each node's pair copied to its `/etc/tandem/tls.crt` and `tls.key` (the `[api]`
    /// defaults), and an empty users file (see [`LabCluster::add_user`]). Before the
    /// daemons start. Returns the CA certificate's path, as this process reaches it.
    pub fn enable_api(&self) -> anyhow::Result<PathBuf> {
        self.tandem_ok(0, &["keygen", "--dir", "/etc/tandem", "--config", CONFIG])?;
        let etc0 = self.etc_dir(0);
        for (host, name) in self.names.iter().enumerate() {
            let etc = self.etc_dir(host);
            for (from, to) in
                [(format!("{name}.crt"), "tls.crt"), (format!("{name}.key"), "tls.key")]
            {
                std::fs::copy(etc0.join(&from), etc.join(to))
                    .with_context(|| format!("copying {from} to {}", etc.display()))?;
            }
            std::fs::set_permissions(
                etc.join("tls.key"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )?;
            std::fs::write(etc.join("users.toml"), "")?;
        }
        Ok(etc0.join("ca.crt"))
    }

    /// `tandem user add NAME --role ROLE` on host 0, the users file then copied to every
    /// host (running nodes read it again when it changes); the token.
    pub fn add_user(&self, name: &str, role: &str) -> anyhow::Result<String> {
        let token =
            self.tandem_ok(0, &["user", "add", name, "--role", role, "--config", CONFIG])?;
        let users = std::fs::read(self.etc_dir(0).join("users.toml"))?;
        for host in 1..self.hosts() {
            let path = self.etc_dir(host).join("users.toml");
            let temp = path.with_extension("toml.new");
            std::fs::write(&temp, &users)?;
            std::fs::rename(&temp, &path)?;
        }
        Ok(token.trim().to_string())
    }

    /// `host`'s API endpoint, `https://PUBLIC-ADDRESS:7400`.
    pub fn api_endpoint(&self, host: usize) -> String {
        let address = self.lab.address(Node::Host(host), testbed::Network::Public);
        format!("https://{}:{API_PORT}", address.map(|a| a.to_string()).unwrap_or_default())
    }

    /// The number of hosts.
    pub fn hosts(&self) -> usize {
        self.names.len()
    }

    /// Starts `host`'s daemon.
    pub fn start(&mut self, host: usize) -> anyhow::Result<()> {
        self.start_env(host, &[])
    }

    /// Starts `host`'s daemon with `env` added to its environment.
    pub fn start_env(&mut self, host: usize, env: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut all: Vec<(&str, &str)> =
            self.node_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(env);
        let command = [self.exe.as_str(), "node", "--config", CONFIG, "--name", &self.names[host]];
        let spawned = self
            .lab
            .spawn_env(Node::Host(host), &command, &all)
            .with_context(|| format!("starting tandem node on {}", self.names[host]))?;
        self.nodes[host] = Some(spawned);
        Ok(())
    }

    /// Runs `command` inside `host`, to completion, whatever its exit status.
    pub fn run(&self, host: usize, command: &[&str]) -> anyhow::Result<testbed::Output> {
        Ok(self.lab.exec(Node::Host(host), command)?)
    }

    /// Runs `command` inside `host`, to completion; its stdout, or an error with its
    /// stderr when it fails.
    pub fn run_ok(&self, host: usize, command: &[&str]) -> anyhow::Result<String> {
        let out = self.run(host, command)?;
        if !out.success() {
            bail!("`{}` on {} failed: {}", command.join(" "), self.names[host], out.stderr.trim());
        }
        Ok(out.stdout)
    }

    /// Runs `tandem ARGS` inside `host` (e.g. `switchover web --to beta`: through the
    /// host's control socket, as root), to completion, whatever its exit status.
    pub fn tandem(&self, host: usize, args: &[&str]) -> anyhow::Result<testbed::Output> {
        self.run(host, &self.with_exe(args))
    }

    /// [`LabCluster::tandem`], failing when the command fails; its stdout.
    pub fn tandem_ok(&self, host: usize, args: &[&str]) -> anyhow::Result<String> {
        self.run_ok(host, &self.with_exe(args))
    }

    fn with_exe<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut command = vec![self.exe.as_str()];
        command.extend_from_slice(args);
        command
    }

    /// `host`'s `/etc/tandem`, as this process reaches it.
    pub fn etc_dir(&self, host: usize) -> PathBuf {
        self.host_dir(host, HostDir::EtcTandem)
    }

    /// `host`'s state directory (its journal is there), as this process reaches it.
    pub fn state_dir(&self, host: usize) -> PathBuf {
        self.host_dir(host, HostDir::VarLibTandem)
    }

    /// `host`'s runtime directory (its `/run/tandem`, where the control socket is).
    pub fn runtime_dir(&self, host: usize) -> PathBuf {
        self.host_dir(host, HostDir::Run).join("tandem")
    }

    fn host_dir(&self, host: usize, dir: HostDir) -> PathBuf {
        self.lab.host_dir(Node::Host(host), dir).expect("a host of the lab")
    }

    /// The status document of `host`'s daemon (through its control socket).
    pub fn status(&self, host: usize) -> Option<Status> {
        status_at(&self.runtime_dir(host))
    }

    /// `group` in `host`'s status document.
    fn group_doc(&self, host: usize, group: &str) -> Option<GroupEntry> {
        self.status(host)?.group(group).cloned()
    }

    /// `group`'s (owner, state) as `host` sees it.
    pub fn group(&self, host: usize, group: &str) -> Option<(Option<String>, GroupState)> {
        let g = self.group_doc(host, group)?;
        Some((g.owner, g.state))
    }

    /// Whether `host`'s daemon reports `group` migration-locked.
    pub fn locked(&self, host: usize, group: &str) -> Option<bool> {
        Some(self.group_doc(host, group)?.locked)
    }

    /// The `receiving` entries of `links` (what the UDP links accepted and rejected) in
    /// one status document of `host`; `None` for a link it does not report (or when it
    /// does not answer).
    pub fn receiving<const N: usize>(
        &self,
        host: usize,
        links: [&str; N],
    ) -> [Option<Receiving>; N] {
        let doc = self.status(host);
        links.map(|link| doc.as_ref().and_then(|d| d.receiving(link)).cloned())
    }

    /// `host`'s journal (empty while it has none).
    pub fn journal(&self, host: usize) -> Vec<Entry> {
        read_journal(&self.state_dir(host)).unwrap_or_default()
    }

    /// The codes of `host`'s journal, in order.
    pub fn codes(&self, host: usize) -> Vec<String> {
        self.journal(host).into_iter().map(|e| e.code).collect()
    }

    /// The journal entries of `host` with `code`.
    pub fn entries(&self, host: usize, code: &str) -> Vec<Entry> {
        self.journal(host).into_iter().filter(|e| e.code == code).collect()
    }

    /// How many entries `host`'s journal has: a mark for [`LabCluster::wait_code_after`].
    pub fn mark(&self, host: usize) -> usize {
        self.journal(host).len()
    }

    /// What `host`'s node wrote to stderr (its log) so far.
    pub fn log(&self, host: usize) -> String {
        self.nodes[host].as_ref().and_then(|n| n.stderr().ok()).unwrap_or_default()
    }

    /// Everything useful when a scenario fails: each host's journal, its node's log and
    /// the last lines of its resources' logs.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for host in 0..self.hosts() {
            let name = &self.names[host];
            out.push_str(&format!("--- {name} journal\n"));
            for e in self.journal(host) {
                out.push_str(&format!("{} {} {}\n", e.time, e.code, e.message));
            }
            if self.nodes[host].is_some() {
                out.push_str(&format!("--- {name} stderr\n{}\n", self.log(host)));
            }
            let logs = self.state_dir(host).join("resources");
            for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
                if entry.path().extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(10).collect();
                    out.push_str(&format!("--- {name} {}\n", entry.path().display()));
                    for line in tail.into_iter().rev() {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// The daemon of `host`, as the lab sees its PID.
    pub fn daemon_pid(&self, host: usize) -> i32 {
        self.nodes[host].as_ref().expect("the daemon runs").pid() as i32
    }

    /// Kills `host`'s daemon (SIGKILL) and nothing else: its fence guard and resources
    /// live on. Its log stays readable.
    pub fn kill_daemon(&self, host: usize) -> anyhow::Result<()> {
        Ok(self.lab.kill_process(Node::Host(host), self.daemon_pid(host))?)
    }

    /// Pauses `host`'s daemon (SIGSTOP) for `pause`, then resumes it (SIGCONT): its
    /// loop stops, nothing else on the host does.
    pub fn pause_daemon(&self, host: usize, pause: Duration) {
        let pid = self.daemon_pid(host);
        self.lab.signal_process(Node::Host(host), pid, Signal::SIGSTOP).expect("SIGSTOP");
        thread::sleep(pause);
        self.lab.signal_process(Node::Host(host), pid, Signal::SIGCONT).expect("SIGCONT");
    }

    /// Starts the client in the client namespace: `tandem probe` asking
    /// `address:service_port` every `interval_ms`, each attempt given `timeout_ms` where
    /// set, `count` attempts where set (else until it is dropped).
    pub fn start_client(
        &self,
        address: &str,
        interval_ms: u64,
        timeout_ms: Option<u64>,
        count: Option<u64>,
    ) -> anyhow::Result<Spawned> {
        let target = format!("{address}:{}", self.service_port);
        let interval = interval_ms.to_string();
        let mut command = vec![self.exe.as_str(), "probe", "--target", &target];
        command.extend(["--interval-ms", &interval]);
        let (timeout, count) = (timeout_ms.map(|t| t.to_string()), count.map(|c| c.to_string()));
        if let Some(timeout) = &timeout {
            command.extend(["--timeout-ms", timeout]);
        }
        if let Some(count) = &count {
            command.extend(["--count", count]);
        }
        Ok(self.lab.spawn(Node::Client, &command)?)
    }

    /// One HTTP GET from the client to `address`: the serving node's name and the rest.
    pub fn get(&self, address: &str) -> Option<String> {
        let target = format!("{address}:{}", self.service_port);
        let command = [
            self.exe.as_str(),
            "probe",
            "--target",
            &target,
            "--count",
            "1",
            "--timeout-ms",
            "500",
        ];
        let out = self.lab.exec_timeout(Node::Client, &command, Duration::from_secs(5)).ok()?;
        let line = out.stdout.lines().next()?.to_string();
        let mut words = line.splitn(3, ' ');
        let (_, ok, rest) = (words.next()?, words.next()?, words.next()?);
        (ok == "ok").then(|| rest.to_string())
    }

    /// Waits until `condition` holds, checking every 50 ms; panics with `what` and the
    /// report after `within`.
    pub fn wait_for(&self, what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out: {what}\n{}", self.report());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `observer` sees `group` running on `owner`.
    pub fn wait_owner(&self, observer: usize, group: &str, owner: &str, within: Duration) {
        let runs = Some((Some(owner.to_string()), GroupState::Running));
        self.wait_for(&format!("{group} running on {owner}"), within, || {
            self.group(observer, group) == runs
        });
    }

    /// Asserts that `observer` sees `group` running on `owner` right now.
    pub fn assert_runs(&self, observer: usize, group: &str, owner: &str) {
        let seen = self.group(observer, group);
        assert!(
            seen == Some((Some(owner.to_string()), GroupState::Running)),
            "{} sees {group} as {seen:?}, not running on {owner}\n{}",
            self.names[observer],
            self.report()
        );
    }

    /// Waits for `code` in `host`'s journal.
    pub fn wait_code(&self, host: usize, code: &str, within: Duration) {
        self.wait_code_after(host, code, 0, within);
    }

    /// Waits for `code` among the entries of `host`'s journal after `mark`.
    pub fn wait_code_after(&self, host: usize, code: &str, mark: usize, within: Duration) {
        self.wait_for(
            &format!("{code} on {} after entry {mark}", self.names[host]),
            within,
            || self.journal(host).iter().skip(mark).any(|e| e.code == code),
        );
    }

    /// Waits until the client is served on `address` by `node`, asking every 100 ms.
    pub fn wait_served_by(&self, address: &str, node: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.get(address).as_deref() != Some(node) {
            assert!(
                Instant::now() < deadline,
                "client not served by {node} on {address}\n{}",
                self.report()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `script` with `sh -c` inside `host`; panics when it fails; its stdout.
    pub fn exec_ok(&self, host: usize, script: &str) -> String {
        self.run_ok(host, &["sh", "-c", script]).unwrap_or_else(|e| panic!("{script}: {e:#}"))
    }

    /// The hosts (numbers) whose network namespace has `address` right now.
    pub fn address_holders(&self, address: &str) -> Vec<usize> {
        self.holders(|pid| sampler::holds_address(pid, address))
    }

    /// The hosts whose mount namespace has something mounted on `mountpoint` right now.
    pub fn mount_holders(&self, mountpoint: &str) -> Vec<usize> {
        self.holders(|pid| sampler::holds_mount(pid, mountpoint))
    }

    fn holders(&self, check: impl Fn(i32) -> bool) -> Vec<usize> {
        (0..self.hosts())
            .filter(|h| {
                let pids = self.lab.pids(Node::Host(*h)).unwrap_or_default();
                pids.first().is_some_and(|pid| check(*pid))
            })
            .collect()
    }

    /// The PIDs (seen from outside) of `host`'s processes whose command line contains
    /// every one of `words` (e.g. `["hello", VIP]` for a group's `tandem hello`).
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

    /// Stops the sampler (for good): a benchmark that measures the nodes' own cost does
    /// not want a thread reading every host's addresses and mounts 200 times a second
    /// on the same cores. What it sampled so far still counts.
    pub fn stop_sampler(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
    }

    /// Asserts that the sampler ran and never saw two hosts hold a watched address,
    /// mount or service at once (so far).
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

impl Drop for LabCluster {
    fn drop(&mut self) {
        self.stop_sampler();
        // Daemons die with their hosts when the lab is dropped.
        self.nodes.clear();
    }
}
