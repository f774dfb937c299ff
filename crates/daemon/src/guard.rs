//! The fence guard: a small process that outlives the daemon and stops every resource
//! of the node when the daemon can no longer be trusted to: it died, or its loop stopped
//! (paused, hung) while the node may still run groups whose lease it is not renewing
//! (the contract of `engine::Output::ArmFence`).
//!
//! **Process.** `tandem fence-guard --config F --name N --state-dir D --runtime-dir R`
//! (started by the daemon, in a new session so that a signal to the daemon's process
//! group or terminal does not reach it). It listens on `R/guard.sock` (0600 from its
//! creation) and takes a connection only from a process of its own user whose first
//! line is `hello <token>`, the token of `R/guard.token` that the daemon wrote before
//! starting it (`crate::access`); anything else is closed (W5105). Its controller (the
//! daemon) then sends one line per command: `arm <deadline>` (absolute
//! `CLOCK_MONOTONIC` nanoseconds), `arm-min <deadline>` (the same, but the deadline the
//! previous controller left stands while it is earlier: a restarted daemon's engine that
//! does not yet hold the lease of everything that may run here), `keep` (only that
//! previous deadline stands, if any), `disarm`, `ping`
//! (answered `armed <deadline>` or `disarmed`), or `exit` (clean shutdown: nothing is
//! left to guard). A newer daemon
//! that connects (a restarted one reads the same token file) becomes the controller (it
//! replaces a killed one).
//!
//! **The rule: the last deadline given is enforced, whether or not the controller is
//! connected.** The daemon renews by sending a later deadline (with every lease renewal,
//! the engine's `ArmFence`). When the deadline comes, the guard first reads whatever
//! its controller sent before it (a renewal written just in time counts), and if the
//! deadline still stands it **fires**: it tells a connected controller `fired`, ends
//! the operations its daemon still has in flight (`agents::exec::end_operations_of`:
//! a start landing after the stops would run a resource again), then stops every
//! resource of every group this node may run with its agent, in reverse
//! start order, the groups in parallel (virtual IPs removed, processes killed, file
//! systems unmounted and set read-only when `lock_standby`), journals E3109 saying
//! whether the daemon was gone or stalled, and exits. A guard that wakes more than
//! [`engine::Timing::fence_guard_grace`] after its deadline (the whole host was frozen,
//! and another node may already run the groups) removes the groups' virtual IPs first,
//! then stops the rest in reverse order. When the controller's connection ends without
//! `exit`: disarmed, the guard exits (nothing may run unleased); armed, it waits for its
//! deadline (at once if it has passed), and a new controller connecting before it
//! sends its own deadline (a restarted daemon took the leases back).
//!
//! **Watchdog, the last resort** (`tandem node --watchdog /dev/watchdog`). The guard
//! opens the device at start (the daemon refuses to start if it cannot) and feeds it
//! every [`WATCHDOG_FEED`] for as long as it lives. It closes it cleanly (the magic `V`
//! that disarms it) whenever nothing is left running unsafely: on `exit`, when its
//! controller left it disarmed, and after a firing that stopped everything. When a
//! firing fails to stop a resource, the guard stops feeding and exits without the magic
//! close: the watchdog resets the machine, as Pacemaker's SBD or sanlock would.
//!
//! **Daemon side.** [`GuardLink`] owns the connection on a thread of its own (starting
//! a guard can wait up to [`START_WAIT`]; the daemon's loop never does): the loop hands
//! it the node core's `ArmFence` actions without waiting, and the core checks at every
//! wake-up, before anything else, whether the deadline it last gave has passed
//! (`nodecore::NodeCore::guard_deadline`): then the guard has fired or is firing, and
//! the daemon does nothing more but journal E3112, wait for the guard to finish and start
//! again as a new incarnation. A deadline sent so late that it may have reached the
//! guard after the previous one passed is followed by a `ping`, whose answer settles it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use anyhow::Context as _;
use engine::{catalogue, Instant, NodeId};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::access;
use crate::clock::{monotonic_ns, wall_now};
use crate::journal::{Entry, Journal};

/// The guard's socket in the runtime directory.
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
    /// Where its socket and token are (`tandem node --runtime-dir`).
    pub runtime_dir: PathBuf,
    /// The watchdog device to feed (`/dev/watchdog`), if any.
    pub watchdog: Option<PathBuf>,
}

/// One command of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Arm(u64),
    /// Arm at this deadline unless the one the previous controller left is earlier.
    ArmMin(u64),
    /// Only the deadline the previous controller left (if any) stands.
    Keep,
    Disarm,
    Ping,
    Exit,
}

fn parse(line: &str) -> Option<Cmd> {
    let mut words = line.split_whitespace();
    match (words.next()?, words.next(), words.next()) {
        ("arm", Some(ns), None) => ns.parse().ok().map(Cmd::Arm),
        ("arm-min", Some(ns), None) => ns.parse().ok().map(Cmd::ArmMin),
        ("disarm", None, None) => Some(Cmd::Disarm),
        ("keep", None, None) => Some(Cmd::Keep),
        ("ping", None, None) => Some(Cmd::Ping),
        ("exit", None, None) => Some(Cmd::Exit),
        _ => None,
    }
}

/// The longest line a controller may send; a connection that sends more is dropped.
const LINE_MAX: usize = 256;

/// One connection to the guard, read without blocking: the lines it sent so far.
struct Conn {
    stream: UnixStream,
    pending: Vec<u8>,
    /// The connected process (SO_PEERCRED): the daemon, once it speaks.
    pid: Option<u32>,
}

impl Conn {
    fn new(stream: UnixStream) -> io::Result<Conn> {
        stream.set_nonblocking(true)?;
        let pid = access::peer(&stream).ok().and_then(|p| u32::try_from(p.pid).ok());
        Ok(Conn { stream, pending: Vec::new(), pid })
    }

    /// Every complete command it sent so far, in order, and whether it is gone (closed,
    /// failed, or over [`LINE_MAX`]). Unknown lines are skipped.
    fn commands(&mut self) -> (Vec<Cmd>, bool) {
        let mut chunk = [0u8; 512];
        let gone = loop {
            match io::Read::read(&mut self.stream, &mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        let mut commands = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Some(command) = std::str::from_utf8(&line).ok().and_then(parse) {
                commands.push(command);
            }
        }
        (commands, gone || self.pending.len() > LINE_MAX)
    }

    /// Best effort: a controller that cannot take a short answer is as good as gone.
    fn say(&mut self, line: &str) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = self.stream.write_all(line.as_bytes());
        let _ = self.stream.set_nonblocking(true);
    }
}

/// What a controller's commands lead to.
enum Flow {
    Go,
    /// `exit`: nothing is left to guard.
    Exit,
}

/// The guard's deadline, and the one the previous controller left (which `arm-min`
/// keeps when it is earlier, until an `arm` or `disarm` replaces it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Deadline {
    armed: Option<u64>,
    inherited: Option<u64>,
}

/// Applies `commands` in order (a `ping` is answered with the state at that point).
fn apply_all(conn: &mut Conn, deadline: &mut Deadline, commands: &[Cmd]) -> Flow {
    let armed = &mut deadline.armed;
    for command in commands {
        match command {
            Cmd::Arm(at) => {
                *armed = Some(*at);
                deadline.inherited = None;
            }
            Cmd::ArmMin(at) => *armed = Some(deadline.inherited.map_or(*at, |i| i.min(*at))),
            Cmd::Keep => *armed = deadline.inherited,
            Cmd::Disarm => {
                *armed = None;
                deadline.inherited = None;
            }
            Cmd::Ping => match armed {
                Some(deadline) => conn.say(&format!("armed {deadline}\n")),
                None => conn.say("disarmed\n"),
            },
            Cmd::Exit => return Flow::Exit,
        }
    }
    Flow::Go
}

/// Why the guard fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// The daemon is gone (its connection ended) and did not come back.
    Gone,
    /// The daemon is connected but did not move the deadline: its loop stopped.
    Stalled,
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
// Long because: the guard's one poll loop; the order of its steps (the controller's
// commands read before firing, the poll, a candidate's first words) is the guard's
// protocol, read in one place.
fn guard_loop(options: &GuardOptions, watchdog: &mut Option<Watchdog>) -> anyhow::Result<bool> {
    let (config, _) = config::load(&options.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let me = config
        .cluster
        .node_id(&options.node)
        .with_context(|| format!("node `{}` is not in the configuration", options.node))?;
    let agents = crate::executor::Agents::build(&config, me, &options.state_dir)?;
    let grace = config.cluster.timing.fence_guard_grace().as_nanos() as u64;
    let path = options.runtime_dir.join(SOCKET_FILE);
    let token = access::read_guard_token(&options.runtime_dir)
        .with_context(|| format!("reading the guard token in {}", options.runtime_dir.display()))?;
    let listener = access::bind(&options.runtime_dir, SOCKET_FILE, 0o600, None)
        .with_context(|| format!("binding {}", path.display()))?;
    listener.set_nonblocking(true)?;
    // The controller, and a connection that has not said anything yet (a daemon
    // checking whether a guard exists must not become the controller).
    let mut controller: Option<Conn> = None;
    let mut candidate: Option<Conn> = None;
    let mut ever_controlled = false;
    let started = monotonic_ns();
    let mut state = Deadline::default();
    // The daemon in charge (or last in charge): its operations in flight end when the
    // guard fires.
    let mut daemon: Option<u32> = None;
    loop {
        if let Some(watchdog) = watchdog.as_mut() {
            watchdog.feed_if_due();
        }
        if let Some(deadline) = state.armed {
            let now = monotonic_ns();
            if now >= deadline {
                // What the controller wrote before the deadline counts: read it first.
                if let Some(conn) = controller.as_mut() {
                    let (commands, gone) = conn.commands();
                    if let Flow::Exit = apply_all(conn, &mut state, &commands) {
                        return Ok(true);
                    }
                    if gone {
                        controller = None;
                    }
                }
                if state.armed == Some(deadline) {
                    let cause = match controller.as_mut() {
                        Some(conn) => {
                            conn.say("fired\n");
                            Cause::Stalled
                        }
                        None => Cause::Gone,
                    };
                    let late = now - deadline > grace;
                    let how = Firing { cause, late, daemon };
                    return Ok(fire(&config, me, &agents, &options.state_dir, how));
                }
                continue;
            }
        }
        let timeout = match (&controller, state.armed) {
            (_, Some(deadline)) => poll_timeout(deadline.saturating_sub(monotonic_ns())),
            (Some(_), None) => PollTimeout::NONE,
            (None, None) if ever_controlled => return Ok(true),
            (None, None) => {
                // Started but not yet connected to: give the daemon a while.
                let left = (started + FIRST_CONTACT_WAIT_NS).saturating_sub(monotonic_ns());
                if left == 0 {
                    return Ok(true);
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
            fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
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
        if let Some(conn) = controller.as_mut() {
            if ready[index] {
                let (commands, gone) = conn.commands();
                if let Flow::Exit = apply_all(conn, &mut state, &commands) {
                    return Ok(true);
                }
                if gone {
                    controller = None;
                }
            }
            index += 1;
        }
        if candidate.is_some() && ready[index] {
            let mut conn = candidate.take().expect("polled");
            let (commands, gone) = conn.commands();
            if !commands.is_empty() {
                // It spoke: it is the daemon now in charge; what its predecessor left
                // stands for `arm-min`.
                state.inherited = state.armed;
                if let Flow::Exit = apply_all(&mut conn, &mut state, &commands) {
                    return Ok(true);
                }
                ever_controlled = true;
                daemon = conn.pid.or(daemon);
                if !gone {
                    controller = Some(conn);
                }
            } else if !gone {
                candidate = Some(conn);
            }
        }
        if ready[0] {
            if let Some(stream) = access::accept_controller(&listener, &token) {
                candidate = Some(Conn::new(stream)?);
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

/// How the guard fires.
struct Firing {
    cause: Cause,
    /// The deadline passed long ago (the host was frozen) and another node may run the
    /// groups already, so their virtual IPs go first (the kernel answers for them).
    late: bool,
    /// The daemon that was (last) in charge.
    daemon: Option<u32>,
}

/// Ends the operations in flight of the daemon in charge (a start landing after the
/// stops would run a resource again), then stops every resource of every group this
/// node may run; whether every stop worked.
fn fire(
    config: &config::Config,
    me: NodeId,
    agents: &crate::executor::Agents,
    state_dir: &Path,
    how: Firing,
) -> bool {
    let Firing { cause, late, daemon } = how;
    let ended = daemon.map_or(0, agents::exec::end_operations_of);
    let spec = &config.cluster;
    let failed: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = spec
            .group_ids()
            .filter(|g| spec.group(*g).nodes.contains(&me))
            .map(|g| {
                let group = spec.group(g);
                scope.spawn(move || {
                    let mut order = group.start_order();
                    order.reverse();
                    if late {
                        // Stable: the addresses first, the rest in reverse start order.
                        order.sort_by_key(|r| group.resource(*r).kind != engine::ResourceKind::Ip);
                    }
                    let mut failed = Vec::new();
                    for r in order {
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
    let why = match cause {
        Cause::Gone => "the daemon died holding leases",
        Cause::Stalled => {
            "the daemon stopped renewing its deadline (its loop is paused or hung) while \
             holding leases"
        }
    };
    let mut order = if late {
        " (woken past its deadline: virtual IPs first)".to_string()
    } else {
        String::new()
    };
    if ended > 0 {
        order.push_str(&format!(" after ending {ended} operation(s) in flight"));
    }
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
                format!("{why}: the fence guard stopped every resource{order}")
            } else {
                format!(
                    "{why}: the fence guard could not stop {}{order}; the watchdog (if \
                     configured) resets the node",
                    failed.join(", ")
                )
            },
        });
    }
    failed.is_empty()
}

/// The daemon's connection to the guard: blocking calls, made on [`GuardLink`]'s thread
/// (and at daemon start, before the loop runs).
struct GuardConn {
    options: GuardOptions,
    program: PathBuf,
    stream: Option<UnixStream>,
    /// The last deadline sent (or the one the guard said it keeps).
    armed: Option<u64>,
}

impl GuardConn {
    fn socket(&self) -> PathBuf {
        self.options.runtime_dir.join(SOCKET_FILE)
    }

    fn connect(&mut self) -> io::Result<&mut UnixStream> {
        if self.stream.is_none() {
            let stream = match UnixStream::connect(self.socket()) {
                Ok(stream) => self.greet(stream)?,
                Err(_) => self.start()?,
            };
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("just set"))
    }

    /// Sets a connection's timeouts and says hello (the token) on it.
    fn greet(&self, mut stream: UnixStream) -> io::Result<UnixStream> {
        stream.set_write_timeout(Some(Duration::from_secs(1)))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        access::hello(&mut stream, &self.options.runtime_dir)?;
        Ok(stream)
    }

    /// At daemon start: starts a guard unless one is running (a predecessor's, maybe
    /// armed: it is left in charge until the engine first arms the guard), so that
    /// arming later never waits for a process to start.
    fn prepare(&mut self) -> io::Result<()> {
        if UnixStream::connect(self.socket()).is_ok() {
            return Ok(()); // closed without a word: the old guard keeps its controller state
        }
        let mut stream = self.start()?;
        stream.write_all(b"disarm\n")?;
        self.stream = Some(stream);
        Ok(())
    }

    /// Starts a guard with a new token and connects to it ([`GuardConn::greet`]).
    fn start(&self) -> io::Result<UnixStream> {
        crate::stall::point("guard_start");
        let _ = std::fs::remove_file(self.socket());
        access::new_guard_token(&self.options.runtime_dir)?;
        let mut command = Command::new(&self.program);
        command
            .arg("fence-guard")
            .arg("--config")
            .arg(&self.options.config)
            .arg("--name")
            .arg(&self.options.node)
            .arg("--state-dir")
            .arg(&self.options.state_dir)
            .arg("--runtime-dir")
            .arg(&self.options.runtime_dir)
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
                Ok(stream) => return self.greet(stream),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Sends `line`, to a guard started anew (once) if this one is gone.
    fn send(&mut self, line: &str) -> io::Result<()> {
        let result = self.connect().and_then(|s| s.write_all(line.as_bytes()));
        if result.is_ok() {
            return result;
        }
        self.stream = None;
        self.connect()?.write_all(line.as_bytes())
    }

    /// Sends the deadline (`None`: disarm; `keep`: `arm-min`, the previous controller's
    /// deadline stands if earlier). [`Armed::Fired`] when the guard fired (or may have)
    /// before it could take it: the write ended after the previous deadline and the
    /// guard's answer to a `ping` (or its closing the connection) says it fired, or the
    /// guard is gone and the previous deadline has passed. A guard that died before its
    /// deadline (killed) is started anew — which waits — and given the newest deadline
    /// `newer` has by then. After an `arm-min` the guard is asked which deadline it keeps
    /// ([`Armed::Keeps`]).
    fn arm(&mut self, mut ask: ArmAsk, newer: impl FnOnce(&mut ArmAsk)) -> io::Result<Armed> {
        let previous = self.armed;
        let line = |ask: ArmAsk| match ask.deadline {
            None if ask.keep => "keep\n".to_string(),
            None => "disarm\n".to_string(),
            Some(at) if ask.keep => format!("arm-min {at}\n"),
            Some(at) => format!("arm {at}\n"),
        };
        if ask.deadline.is_none() && self.stream.is_none() {
            // Nothing to disarm when no guard was ever needed.
            self.armed = None;
            return Ok(Armed::Taken);
        }
        let sent = self.stream.as_mut().map(|s| s.write_all(line(ask).as_bytes()));
        if !matches!(sent, Some(Ok(()))) {
            // Not connected yet (a predecessor's guard), or the guard is gone.
            let gone = sent.is_some();
            self.stream = None;
            if gone && previous.is_some_and(|p| monotonic_ns() >= p) {
                return Ok(Armed::Fired);
            }
            self.connect()?;
            newer(&mut ask);
            let stream = self.stream.as_mut().expect("connected");
            stream.write_all(line(ask).as_bytes())?;
        }
        self.armed = ask.deadline;
        let late = previous.is_some_and(|p| monotonic_ns() >= p);
        if !late && !ask.keep {
            return Ok(Armed::Taken);
        }
        Ok(match self.state() {
            None => Armed::Fired,
            Some(kept) if ask.keep => {
                self.armed = kept;
                match (ask.deadline, kept) {
                    (Some(sent), Some(kept)) if kept != sent => Armed::Keeps { sent, kept },
                    _ => Armed::Taken,
                }
            }
            Some(_) => Armed::Taken,
        })
    }

    /// Asks the guard its deadline: `None` when it fired (or is gone).
    fn state(&mut self) -> Option<Option<u64>> {
        let stream = self.stream.as_mut()?;
        stream.write_all(b"ping\n").ok()?;
        let mut reader = BufReader::new(&*stream);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) if line.starts_with("fired") => return None,
                Ok(_) if line.starts_with("disarmed") => return Some(None),
                Ok(_) => {
                    if let Some(at) = line.strip_prefix("armed ") {
                        return at.trim().parse().ok().map(Some);
                    }
                }
            }
        }
    }

    /// Waits, at most `bound`, until the guard has ended (after firing: it exits once
    /// every resource is stopped); whether it did.
    fn wait_gone(&mut self, bound: Duration) -> bool {
        let until = std::time::Instant::now() + bound;
        let stream = match self.stream.take() {
            Some(stream) => stream,
            None => match UnixStream::connect(self.socket()) {
                Ok(mut stream) => {
                    if access::hello(&mut stream, &self.options.runtime_dir).is_err() {
                        return true;
                    }
                    stream
                }
                Err(_) => return true,
            },
        };
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = reader.get_ref().set_read_timeout(Some(left));
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// A deadline for the guard (`keep`: `arm-min`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ArmAsk {
    deadline: Option<u64>,
    keep: bool,
}

/// What came of an arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Armed {
    Taken,
    /// The guard fired before it took the new deadline.
    Fired,
    /// After an `arm-min` of `sent`: the earlier deadline the guard keeps.
    Keeps {
        sent: u64,
        kept: u64,
    },
}

/// What the loop asks of the guard's thread.
enum Ask {
    Arm(ArmAsk),
    /// Arm to fire now and leave it (the self-fence path); answered when sent.
    FireNow(std::sync::mpsc::Sender<io::Result<()>>),
    /// Clean shutdown: the guard exits; answered when sent.
    Exit(std::sync::mpsc::Sender<()>),
    /// Wait for the guard to end, at most this long; answered whether it did.
    WaitGone(Duration, std::sync::mpsc::Sender<bool>),
}

pub use crate::platform::GuardNews;

/// The daemon's end of the guard, as the loop sees it: arming never waits (a thread
/// owns the connection, and starts a guard anew if it died). The deadline the guard
/// enforces, as the loop must check it, is the node core's
/// (`nodecore::NodeCore::guard_deadline`, told of [`GuardNews::Keeps`]).
pub struct GuardLink {
    asks: std::sync::mpsc::Sender<Ask>,
}

impl GuardLink {
    /// Connects to the node's guard, starting one unless one runs (a predecessor's,
    /// maybe armed, is left in charge until the engine first arms the guard), before the
    /// loop runs; then hands the connection to a thread. `program` is the `tandem`
    /// executable to start the guard with. News comes on the receiver.
    pub fn start(
        options: GuardOptions,
        program: PathBuf,
    ) -> io::Result<(GuardLink, tokio::sync::mpsc::UnboundedReceiver<GuardNews>)> {
        let mut conn = GuardConn { options, program, stream: None, armed: None };
        conn.prepare()?;
        let (asks, asked) = std::sync::mpsc::channel();
        let (news, heard) = tokio::sync::mpsc::unbounded_channel();
        thread::Builder::new()
            .name("fence-guard-link".into())
            .spawn(move || serve_link(conn, &asked, &news))?;
        Ok((GuardLink { asks }, heard))
    }

    /// Carries out `ArmFence { deadline, keep_earlier }` without waiting. With
    /// `keep_earlier` the guard keeps its predecessor's deadline when that is earlier,
    /// and says so ([`GuardNews::Keeps`], for the node core).
    pub fn arm(&mut self, deadline: Option<Instant>, keep_earlier: bool) {
        let ask = ArmAsk { deadline: deadline.map(Instant::as_nanos), keep: keep_earlier };
        let _ = self.asks.send(Ask::Arm(ask));
    }

    /// Arms the guard to fire now and leaves it: the self-fence path.
    pub fn fire_now(&mut self) -> io::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = self.asks.send(Ask::FireNow(tx));
        rx.recv().unwrap_or_else(|_| Err(io::Error::other("the guard's thread is gone")))
    }

    /// Clean shutdown: the guard exits.
    pub fn exit(&mut self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = self.asks.send(Ask::Exit(tx));
        let _ = rx.recv();
    }

    /// Waits at most `bound` for the guard to end (it exits when it has stopped every
    /// resource after firing); whether it did.
    pub fn wait_gone(&mut self, bound: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = self.asks.send(Ask::WaitGone(bound, tx));
        rx.recv().unwrap_or(true)
    }
}

/// The guard's thread: carries out the loop's asks in order; of several arms waiting,
/// only the last is sent.
fn serve_link(
    mut conn: GuardConn,
    asked: &std::sync::mpsc::Receiver<Ask>,
    news: &tokio::sync::mpsc::UnboundedSender<GuardNews>,
) {
    let mut next = None;
    loop {
        let ask = match next.take() {
            Some(ask) => ask,
            None => match asked.recv() {
                Ok(ask) => ask,
                Err(_) => return,
            },
        };
        match ask {
            Ask::Arm(mut deadline) => {
                // Coalesce: a newer deadline replaces one not sent yet (again after a
                // guard had to be started anew, which waits).
                let mut coalesce = |deadline: &mut ArmAsk| {
                    if next.is_some() {
                        return;
                    }
                    while let Ok(ask) = asked.try_recv() {
                        match ask {
                            Ask::Arm(later) => *deadline = later,
                            other => {
                                next = Some(other);
                                break;
                            }
                        }
                    }
                };
                coalesce(&mut deadline);
                match conn.arm(deadline, coalesce) {
                    Ok(Armed::Taken) => {}
                    Ok(Armed::Fired) => {
                        let _ = news.send(GuardNews::Fired);
                    }
                    Ok(Armed::Keeps { sent, kept }) => {
                        let _ = news.send(GuardNews::Keeps { sent, kept });
                    }
                    Err(e) => {
                        let _ = news.send(GuardNews::Unavailable(e.to_string()));
                    }
                }
            }
            Ask::FireNow(answer) => {
                let result = conn.send(&format!("arm {}\n", monotonic_ns()));
                conn.stream = None;
                let _ = answer.send(result);
            }
            Ask::Exit(answer) => {
                if let Some(stream) = conn.stream.as_mut() {
                    let _ = stream.write_all(b"exit\n");
                }
                conn.stream = None;
                let _ = answer.send(());
            }
            Ask::WaitGone(bound, answer) => {
                let _ = answer.send(conn.wait_gone(bound));
            }
        }
    }
}

/// Tells the guard whose runtime directory is `runtime_dir` to exit, as its controller
/// would (with the token): how tests and the demo clean up a guard whose daemon is gone.
pub fn stop_guard(runtime_dir: &Path) -> io::Result<()> {
    let mut stream = UnixStream::connect(runtime_dir.join(SOCKET_FILE))?;
    access::hello(&mut stream, runtime_dir)?;
    stream.write_all(b"exit\n")
}

/// Groups of `spec` this node may run (the guard's and the executor's scope).
pub use nodecore::lease::member_groups;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_min_keeps_the_deadline_the_previous_controller_left_while_it_is_earlier() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut conn = Conn::new(ours).unwrap();
        // The previous controller left 100; the new one speaks.
        let mut state = Deadline { armed: Some(100), inherited: None };
        state.inherited = state.armed;
        let mut step = |command: Cmd, state: &mut Deadline| {
            apply_all(&mut conn, state, &[command]);
            state.armed
        };
        assert_eq!(step(Cmd::ArmMin(200), &mut state), Some(100));
        assert_eq!(step(Cmd::ArmMin(300), &mut state), Some(100), "renewals keep it too");
        assert_eq!(step(Cmd::ArmMin(50), &mut state), Some(50));
        assert_eq!(step(Cmd::ArmMin(250), &mut state), Some(100), "not the last arm-min's");
        assert_eq!(step(Cmd::Arm(400), &mut state), Some(400), "a plain arm replaces it");
        assert_eq!(step(Cmd::ArmMin(500), &mut state), Some(500));
        // A new controller with nothing of its own keeps only its predecessor's.
        state.inherited = state.armed;
        assert_eq!(step(Cmd::ArmMin(600), &mut state), Some(500));
        assert_eq!(step(Cmd::Keep, &mut state), Some(500));
    }

    #[test]
    fn commands_parse_strictly() {
        assert_eq!(parse("arm 123\n"), Some(Cmd::Arm(123)));
        assert_eq!(parse("disarm"), Some(Cmd::Disarm));
        assert_eq!(parse("exit\n"), Some(Cmd::Exit));
        assert_eq!(parse("ping\n"), Some(Cmd::Ping));
        assert_eq!(parse("arm-min 7\n"), Some(Cmd::ArmMin(7)));
        assert_eq!(parse("keep\n"), Some(Cmd::Keep));
        assert_eq!(parse("arm"), None);
        assert_eq!(parse("arm x"), None);
        assert_eq!(parse("arm 1 2"), None);
        assert_eq!(parse("fire"), None);
    }
}
