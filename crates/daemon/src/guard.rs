//! The fence guard: a small process that outlives the daemon and stops every resource
//! of the node if the daemon dies while the node may still run groups whose lease it
//! can no longer renew (the contract of `engine::Output::ArmFence`).
//!
//! **Process.** `tandem fence-guard --config F --name N --state-dir D` (started by the
//! daemon, in a new session so that a signal to the daemon's process group or terminal
//! does not reach it). It listens on `D/guard.sock`; its controller (the daemon) sends
//! one line per command: `arm <deadline>` (absolute `CLOCK_MONOTONIC` nanoseconds),
//! `disarm`, or `exit` (clean shutdown: nothing is left to guard). A newer daemon that
//! connects becomes the controller (it replaces a killed one). While a controller is
//! connected the guard only records the deadline: the daemon's engine enforces it
//! itself. When the controller's connection ends without `exit`:
//! - disarmed: nothing may run unleased, the guard exits;
//! - armed: at the deadline (at once if it has passed) it **fires**: every resource of
//!   every group this node may run is stopped with its agent, in reverse start order,
//!   the groups in parallel (virtual IPs removed, processes killed, file systems
//!   unmounted and set read-only when `lock_standby`), an E3109 entry goes to the
//!   journal, and the guard exits. A new controller connecting before the deadline
//!   cancels the firing (a restarted daemon took the leases back).
//!
//! **Watchdog, the last resort** (`tandem node --watchdog /dev/watchdog`). The guard
//! opens the device at start (the daemon refuses to start if it cannot) and feeds it
//! every [`WATCHDOG_FEED`] for as long as it lives. It closes it cleanly (the magic `V`
//! that disarms it) whenever nothing is left running unsafely: on `exit`, when its
//! controller left it disarmed, and after a firing that stopped everything. When a
//! firing fails to stop a resource, the guard stops feeding and exits without the magic
//! close: the watchdog resets the machine, as Pacemaker's SBD or sanlock would.
//!
//! **Daemon side.** [`GuardLink`] connects to the socket, starting the guard when
//! there is none, and sends the engine's `ArmFence` outputs.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use engine::{catalogue, GroupId, Instant, NodeId};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::clock::{monotonic_ns, wall_now};
use crate::journal::{Entry, Journal};

/// The guard's socket in the state directory.
pub const SOCKET_FILE: &str = "guard.sock";

/// How often the guard feeds the watchdog device (devices time out after 10 s or more
/// by default; softdog's default is 60 s).
pub const WATCHDOG_FEED: std::time::Duration = std::time::Duration::from_secs(1);

/// How long the daemon waits for a guard it started to listen.
const START_WAIT: Duration = Duration::from_secs(3);

/// What the guard needs to know.
#[derive(Clone, Debug)]
pub struct GuardOptions {
    pub config: PathBuf,
    pub node: String,
    pub state_dir: PathBuf,
    /// The watchdog device to feed (`/dev/watchdog`), if any.
    pub watchdog: Option<PathBuf>,
}

/// One command of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Arm(u64),
    Disarm,
    Exit,
}

fn parse(line: &str) -> Option<Cmd> {
    let mut words = line.split_whitespace();
    match (words.next()?, words.next(), words.next()) {
        ("arm", Some(ns), None) => ns.parse().ok().map(Cmd::Arm),
        ("disarm", None, None) => Some(Cmd::Disarm),
        ("exit", None, None) => Some(Cmd::Exit),
        _ => None,
    }
}

/// The guard process's main loop. Returns when it exits (after firing, on `exit`, or
/// when its controller left it disarmed).
pub fn run_guard(options: &GuardOptions) -> anyhow::Result<()> {
    let mut watchdog = match &options.watchdog {
        None => None,
        Some(path) => Some(Watchdog::open(path)?),
    };
    let safe = guard_loop(options, &mut watchdog)?;
    if let Some(watchdog) = watchdog {
        if safe {
            watchdog.disarm();
        } else {
            // Not fed any more and not disarmed: the machine resets.
            eprintln!("tandem fence-guard: resources could not be stopped; leaving the watchdog to reset the node");
        }
    }
    Ok(())
}

/// A watchdog device: any write feeds it, `V` before close disarms it.
struct Watchdog {
    file: File,
    fed_at: std::time::Instant,
}

impl Watchdog {
    fn open(path: &Path) -> anyhow::Result<Watchdog> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("opening the watchdog {}", path.display()))?;
        let mut watchdog = Watchdog { file, fed_at: std::time::Instant::now() };
        watchdog.feed();
        Ok(watchdog)
    }

    fn feed(&mut self) {
        let _ = self.file.write_all(b"1");
        self.fed_at = std::time::Instant::now();
    }

    fn feed_if_due(&mut self) {
        if self.fed_at.elapsed() >= WATCHDOG_FEED {
            self.feed();
        }
    }

    fn disarm(mut self) {
        let _ = self.file.write_all(b"V");
    }
}

/// The guard's loop; `Ok(false)` when a firing left resources running (the watchdog
/// must not be disarmed).
fn guard_loop(options: &GuardOptions, watchdog: &mut Option<Watchdog>) -> anyhow::Result<bool> {
    let (config, _) = config::load(&options.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let me = config
        .cluster
        .node_id(&options.node)
        .with_context(|| format!("node `{}` is not in the configuration", options.node))?;
    let agents = crate::executor::Agents::build(&config, me, &options.state_dir)?;
    let path = options.state_dir.join(SOCKET_FILE);
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
    listener.set_nonblocking(true)?;
    // The controller, and a connection that has not said anything yet (a daemon
    // checking whether a guard exists must not become the controller).
    let mut controller: Option<BufReader<UnixStream>> = None;
    let mut candidate: Option<BufReader<UnixStream>> = None;
    let mut ever_controlled = false;
    let started = monotonic_ns();
    let mut armed: Option<u64> = None;
    loop {
        // Wait for: a connection, a line, or the deadline.
        if let Some(watchdog) = watchdog.as_mut() {
            watchdog.feed_if_due();
        }
        let timeout = match (&controller, armed) {
            (Some(_), _) => PollTimeout::NONE,
            (None, None) if ever_controlled => return Ok(true),
            (None, None) => {
                // Started but not yet connected to: give the daemon a while.
                let left = (started + FIRST_CONTACT_WAIT_NS).saturating_sub(monotonic_ns());
                if left == 0 {
                    return Ok(true);
                }
                poll_timeout(left)
            }
            (None, Some(deadline)) => {
                let left = deadline.saturating_sub(monotonic_ns());
                if left == 0 {
                    return Ok(fire(&config, me, &agents, &options.state_dir));
                }
                poll_timeout(left)
            }
        };
        let timeout = match watchdog {
            Some(_) => {
                let feed = PollTimeout::try_from(WATCHDOG_FEED.as_millis() as i32)
                    .unwrap_or(PollTimeout::MAX);
                if timeout == PollTimeout::NONE {
                    feed
                } else {
                    timeout.min(feed)
                }
            }
            None => timeout,
        };
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        for c in [&controller, &candidate].into_iter().flatten() {
            fds.push(PollFd::new(c.get_ref().as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<bool> =
            fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut index = 1;
        if controller.is_some() {
            if ready[index] {
                let reader = controller.as_mut().expect("polled");
                match read_command(reader) {
                    Read::Gone => controller = None,
                    Read::Command(Cmd::Exit) => return Ok(true),
                    Read::Command(command) => apply(&mut armed, command),
                    Read::Nothing => {}
                }
            }
            index += 1;
        }
        if candidate.is_some() && ready[index] {
            let mut reader = candidate.take().expect("polled");
            match read_command(&mut reader) {
                Read::Gone => {}
                Read::Command(Cmd::Exit) => return Ok(true),
                Read::Command(command) => {
                    // It spoke: it is the daemon now in charge.
                    apply(&mut armed, command);
                    controller = Some(reader);
                    ever_controlled = true;
                }
                Read::Nothing => candidate = Some(reader),
            }
        }
        if ready[0] {
            if let Ok((stream, _)) = listener.accept() {
                stream.set_nonblocking(false)?;
                candidate = Some(BufReader::new(stream));
            }
        }
    }
}

/// How long a new guard waits for its daemon's first command.
const FIRST_CONTACT_WAIT_NS: u64 = 10_000_000_000;

fn poll_timeout(nanos: u64) -> PollTimeout {
    let ms = (nanos / 1_000_000).clamp(1, 60_000);
    PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
}

enum Read {
    Gone,
    Command(Cmd),
    Nothing,
}

fn read_command(reader: &mut BufReader<UnixStream>) -> Read {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => Read::Gone,
        Ok(_) => parse(&line).map_or(Read::Nothing, Read::Command),
    }
}

fn apply(armed: &mut Option<u64>, command: Cmd) {
    match command {
        Cmd::Arm(deadline) => *armed = Some(deadline),
        Cmd::Disarm => *armed = None,
        Cmd::Exit => {}
    }
}

/// Stops every resource of every group this node may run; whether every stop worked.
fn fire(
    config: &config::Config,
    me: NodeId,
    agents: &crate::executor::Agents,
    state_dir: &Path,
) -> bool {
    let spec = &config.cluster;
    let failed: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = spec
            .group_ids()
            .filter(|g| spec.group(*g).nodes.contains(&me))
            .map(|g| {
                let group = spec.group(g);
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for r in group.start_order().into_iter().rev() {
                        if group.resource(r).kind.is_monitor_only() {
                            continue;
                        }
                        if let Some(agent) = agents.get(g, r) {
                            let result = agent.stop(group.resource(r).stop_timeout);
                            if !matches!(
                                result,
                                engine::OpResult::Ok | engine::OpResult::NotRunning
                            ) {
                                failed.push(format!("{}/{}", group.name, group.resource(r).name));
                            }
                        }
                    }
                    failed
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    if let Ok(mut journal) = Journal::open_as(state_dir, &spec.node(me).name) {
        let code = &catalogue::GUARD_FIRED;
        let _ = journal.append(Entry {
            id: 0,
            time: wall_now(),
            code: code.code.to_string(),
            severity: code.severity.as_str().to_string(),
            node: spec.node(me).name.clone(),
            group: None,
            resource: None,
            location: Some(format!("node {}", spec.node(me).name)),
            message: if failed.is_empty() {
                "the daemon died holding leases: the fence guard stopped every resource".to_string()
            } else {
                format!(
                    "the daemon died holding leases: the fence guard could not stop {}; \
                     the watchdog (if configured) resets the node",
                    failed.join(", ")
                )
            },
        });
    }
    failed.is_empty()
}

/// The daemon's end of the guard.
pub struct GuardLink {
    options: GuardOptions,
    program: PathBuf,
    stream: Option<UnixStream>,
    /// The last command sent (resent to a guard started anew).
    armed: Option<Instant>,
}

impl GuardLink {
    /// `program` is the `tandem` executable to start the guard with.
    pub fn new(options: GuardOptions, program: PathBuf) -> GuardLink {
        GuardLink { options, program, stream: None, armed: None }
    }

    fn socket(&self) -> PathBuf {
        self.options.state_dir.join(SOCKET_FILE)
    }

    fn connect(&mut self) -> io::Result<&mut UnixStream> {
        if self.stream.is_none() {
            let stream = match UnixStream::connect(self.socket()) {
                Ok(stream) => stream,
                Err(_) => self.start()?,
            };
            stream.set_write_timeout(Some(Duration::from_secs(1)))?;
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("just set"))
    }

    /// At daemon start: starts a guard unless one is running (a predecessor's, maybe
    /// armed: it is left in charge until the engine first arms the guard), so that
    /// arming later never waits for a process to start.
    pub fn prepare(&mut self) -> io::Result<()> {
        if UnixStream::connect(self.socket()).is_ok() {
            return Ok(()); // closed without a word: the old guard keeps its controller state
        }
        let mut stream = self.start()?;
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"disarm\n")?;
        self.stream = Some(stream);
        Ok(())
    }

    fn start(&self) -> io::Result<UnixStream> {
        let _ = std::fs::remove_file(self.socket());
        let mut command = Command::new(&self.program);
        command
            .arg("fence-guard")
            .arg("--config")
            .arg(&self.options.config)
            .arg("--name")
            .arg(&self.options.node)
            .arg("--state-dir")
            .arg(&self.options.state_dir)
            .args(
                self.options
                    .watchdog
                    .iter()
                    .flat_map(|w| [std::ffi::OsStr::new("--watchdog"), w.as_os_str()]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        let child = command.spawn()?;
        // The guard is not our child to wait for: it must outlive us. A thread reaps it
        // if it exits while we live (no zombie).
        let mut child = child;
        thread::spawn(move || {
            let _ = child.wait();
        });
        let deadline = std::time::Instant::now() + START_WAIT;
        loop {
            match UnixStream::connect(self.socket()) {
                Ok(stream) => return Ok(stream),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        let result = self.connect().and_then(|s| s.write_all(line.as_bytes()));
        if result.is_ok() {
            return result;
        }
        // The guard died: start another, once.
        self.stream = None;
        self.connect()?.write_all(line.as_bytes())
    }

    /// Carries out `ArmFence { deadline }`.
    pub fn arm(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        self.armed = deadline;
        match deadline {
            Some(at) => self.send(&format!("arm {}\n", at.as_nanos())),
            // Nothing to disarm when no guard was ever needed.
            None if self.stream.is_none() => Ok(()),
            None => self.send("disarm\n"),
        }
    }

    /// Arms the guard to fire now and leaves it: the self-fence path.
    pub fn fire_now(&mut self) -> io::Result<()> {
        self.send(&format!("arm {}\n", monotonic_ns()))?;
        self.stream = None;
        Ok(())
    }

    /// Clean shutdown: the guard exits.
    pub fn exit(&mut self) {
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.write_all(b"exit\n");
        }
        self.stream = None;
    }

    pub fn is_armed(&self) -> bool {
        self.armed.is_some()
    }
}

/// Groups of `spec` this node may run (the guard's and the executor's scope).
pub fn member_groups(spec: &engine::ClusterSpec, me: NodeId) -> Vec<GroupId> {
    spec.group_ids().filter(|g| spec.group(*g).nodes.contains(&me)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_strictly() {
        assert_eq!(parse("arm 123\n"), Some(Cmd::Arm(123)));
        assert_eq!(parse("disarm"), Some(Cmd::Disarm));
        assert_eq!(parse("exit\n"), Some(Cmd::Exit));
        assert_eq!(parse("arm"), None);
        assert_eq!(parse("arm x"), None);
        assert_eq!(parse("arm 1 2"), None);
        assert_eq!(parse("fire"), None);
    }
}
