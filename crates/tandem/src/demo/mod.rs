//! `tandem demo`: a complete two-node cluster on this one machine, with a live failover.
//!
//! As root (the lab's missing tools installed first with apt-get, unless
//! `--no-install`), it builds a lab (`testbed::Lab`, see
//! `lab.rs`): hosts `alpha` and `beta` and a client in network namespaces, a shared
//! disk (ext4 plus a heartbeat area, a loop device per host) and one group `web` — the
//! file system (`lock_standby`), a virtual IP and `tandem hello` on it. Otherwise
//! (`loopback.rs`) the same story runs on 127.0.0.1 ports with process resources only,
//! and says what it left out and why.
//!
//! The story ([`story`]) is the same for both, over a [`Stage`]: start both nodes, wait
//! until `web` runs on alpha, write a file through alpha, start a client that asks the
//! service every 20 ms, show the live state, crash alpha, show the events and the
//! client's view as they happen, then the outage the client saw, where `web` runs now
//! and that the file is still there. The demo owns only what it creates (the lab, or a
//! temporary directory and the processes it starts) and removes all of it at the end,
//! also on Ctrl-C; `--keep` leaves the cluster running (alpha back as standby) until
//! Ctrl-C. It decides nothing about the cluster: the nodes do, as in production.

mod lab;
mod loopback;
mod screen;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::bail;
use contract::{Event as Entry, GroupState, NodeState, ResourceState, Status};
use daemon::journal::read_journal;
use labcluster::probe::{monotonic_ms, parse_attempts, Attempt};

use screen::{Paint, Screen};

#[derive(clap::Args)]
pub struct Args {
    /// Leave the cluster running afterwards, to explore it (Ctrl-C removes it).
    #[arg(long)]
    keep: bool,
    /// A faster timing profile (heartbeat 50 ms, peer timeout 300 ms, lease 700 ms) for a
    /// shorter outage; the default timing otherwise (100 ms, 1 s, 1 s).
    #[arg(long)]
    fast: bool,
    /// Run on loopback ports with processes only, even where the lab could be built.
    #[arg(long)]
    loopback: bool,
    /// As root, do not install the lab's missing tools (iproute2, nftables, mount,
    /// e2fsprogs, util-linux) with apt-get: run on loopback instead.
    #[arg(long)]
    no_install: bool,
}

/// The nodes; the first runs `web` first and is crashed.
pub const NODES: [&str; 2] = ["alpha", "beta"];
/// The group.
const GROUP: &str = "web";
/// How often the client asks the service, and how long one attempt may take.
pub const CLIENT_INTERVAL_MS: u64 = 20;
pub const CLIENT_TIMEOUT_MS: u64 = 100;
/// Longest wait for the cluster to form, for the client's first answer, and for the
/// failover.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for every link to be heard before the first state is shown.
const LINKS_HEARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a cluster without faults before the crash.
const CALM_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client runs against alpha before the crash.
const BEFORE_CRASH: Duration = Duration::from_millis(1500);
/// How long events are still followed once the failover is complete.
const AFTER_FAILOVER: Duration = Duration::from_millis(800);
/// How often state, journals and the client's output are read.
const POLL: Duration = Duration::from_millis(50);

/// The `[timing]` section of the demo's configuration. The fast lease is 700 ms rather
/// than the 200 ms minimum: one disk I/O may take `lease_timeout / 20` (35 ms here), and
/// on a busy machine a loop device's `O_DIRECT` I/O takes longer than 15 or 25 ms often
/// enough that a shorter lease shows lease alarms (and a move) before the crash.
fn timing_toml(fast: bool) -> &'static str {
    if fast {
        "[timing]\nheartbeat_interval = \"50ms\"\npeer_timeout = \"300ms\"\nlease_timeout = \"700ms\"\n"
    } else {
        "# [timing] defaults: heartbeat_interval 100ms, peer_timeout 1s, lease_timeout 1s\n"
    }
}

fn timing_words(fast: bool) -> &'static str {
    if fast {
        "fast timing (--fast): heartbeat 50 ms, peer timeout 300 ms, lease 700 ms"
    } else {
        "default timing: heartbeat 100 ms, peer timeout 1 s, lease 1 s (--fast: shorter)"
    }
}

/// Where the story runs: the lab or loopback.
pub trait Stage {
    /// How the client reaches the service.
    fn service(&self) -> String;
    /// The file written through the owner, as the service sees it.
    fn file_path(&self) -> String;
    /// `node`'s state directory, as this process reaches it (its journal is there).
    fn state_dir(&self, node: usize) -> PathBuf;
    /// `node`'s runtime directory, as this process reaches it (its control socket is
    /// there).
    fn runtime_dir(&self, node: usize) -> PathBuf;
    /// Starts `tandem node` for `node`.
    fn start_node(&mut self, node: usize) -> anyhow::Result<()>;
    /// Writes `text` into the file through `node` (which runs `web`).
    fn write_file(&self, node: usize, text: &str) -> anyhow::Result<()>;
    /// Reads the file through `node` (which runs `web`).
    fn read_file(&self, node: usize) -> anyhow::Result<String>;
    /// Starts the client (`tandem probe`), one line per attempt.
    fn start_client(&mut self) -> anyhow::Result<()>;
    /// The client's lines so far.
    fn client_output(&self) -> String;
    /// Stops the client; its whole output.
    fn stop_client(&mut self) -> String;
    /// Crashes `node`; says what happened to it.
    fn crash(&mut self, node: usize) -> anyhow::Result<String>;
    /// Brings a crashed `node` back (for `--keep`): its node starts again.
    fn recover(&mut self, node: usize) -> anyhow::Result<()>;
    /// The last lines of `node`'s daemon log (for errors).
    fn node_log(&self, node: usize) -> String;
    /// Commands to explore the running cluster by hand (for `--keep`), while `owner`
    /// runs the group.
    fn explore(&self, owner: usize) -> Vec<String>;
    /// Stops and removes everything; says what was removed.
    fn clean_up(&mut self) -> anyhow::Result<String>;
}

/// The error of a story stopped by Ctrl-C (or SIGTERM, SIGHUP).
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Ctrl-C, SIGTERM and SIGHUP, turned into a flag that every wait checks, so that the
/// clean-up always runs. The handlers are tokio's (on a thread of their own); signals
/// are not blocked, because processes inherit a blocked mask and the demo's daemons and
/// services must see SIGTERM.
#[derive(Clone)]
struct Stop(Arc<AtomicBool>);

impl Stop {
    fn install() -> anyhow::Result<Stop> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // Registered here, before the story starts, so that no signal is missed.
        let (mut interrupt, mut terminate, mut hangup) = runtime.block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            ))
        })?;
        let flag = Arc::new(AtomicBool::new(false));
        let seen = flag.clone();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                loop {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                        _ = hangup.recv() => {}
                    }
                    if seen.swap(true, Ordering::SeqCst) {
                        eprintln!("tandem demo: still cleaning up, one moment");
                    }
                }
            })
        });
        Ok(Stop(flag))
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.0.load(Ordering::SeqCst) {
            return Err(Interrupted.into());
        }
        Ok(())
    }

    fn sleep(&self, duration: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + duration;
        loop {
            self.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(POLL));
        }
    }

    /// Polls `done` until it says yes; fails after `within`, naming `what`.
    fn wait_for(
        &self,
        within: Duration,
        what: &str,
        mut done: impl FnMut() -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            self.check()?;
            if done()? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{what}: not within {} s", within.as_secs());
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Why the lab cannot be built here, if it cannot; as root, missing tools are installed
/// first (Debian's apt-get) unless `no_install`.
fn lab_unavailable(screen: &Screen, no_install: bool) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some(
            "not root (network namespaces, loop devices and mounts need root: \
             run `sudo tandem demo` for the full lab)"
                .to_string(),
        );
    }
    let missing = testbed::missing_tools();
    if missing.is_empty() {
        return None;
    }
    let packages = testbed::packages_for(&missing);
    let why = format!("missing tools: {} (packages {})", missing.join(", "), packages.join(" "));
    if no_install {
        return Some(format!("{why}; --no-install"));
    }
    // As root on Debian, the lab's tools are one apt-get away: install them, as the test
    // command does, rather than show a lesser demo.
    screen.step(&format!("{why}: installing them with apt-get"));
    if let Err(error) = apt_install(&packages) {
        return Some(format!("{why}; apt-get could not install them: {error}"));
    }
    let still = testbed::missing_tools();
    (!still.is_empty()).then(|| format!("missing tools after apt-get: {}", still.join(", ")))
}

/// `apt-get install` of `packages`, unattended; after an `apt-get update` if the first try
/// fails (a fresh machine's package lists may be missing or stale).
fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let install = || {
        std::process::Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
    };
    if install()?.success() {
        return Ok(());
    }
    let update = std::process::Command::new("apt-get")
        .args(["update", "-q"])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(update.success(), "apt-get update failed ({update})");
    let status = install()?;
    anyhow::ensure!(status.success(), "apt-get install failed ({status})");
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = Stop::install()?;
    let screen = Screen::new();
    let exe = std::env::current_exe()?;
    screen.title("tandem demo: a two-node cluster on this machine, a crash and a failover");
    let reason = if args.loopback {
        Some("--loopback asked for it".to_string())
    } else {
        lab_unavailable(&screen, args.no_install)
    };
    let stage: Box<dyn Stage> = match reason {
        None => match lab::LabStage::build(&screen, &exe, args.fast) {
            Ok(stage) => Box::new(stage),
            Err(error) => {
                screen.warning(&format!("could not build the lab: {error:#}"));
                loopback_stage(&screen, &exe, args.fast, "the lab could not be built")?
            }
        },
        Some(reason) => loopback_stage(&screen, &exe, args.fast, &reason)?,
    };
    screen.detail(timing_words(args.fast));
    drive(stage, &screen, &args, &stop)
}

fn loopback_stage(
    screen: &Screen,
    exe: &Path,
    fast: bool,
    reason: &str,
) -> anyhow::Result<Box<dyn Stage>> {
    screen.step(&format!("loopback mode: {reason}"));
    Ok(Box::new(loopback::LoopbackStage::build(screen, exe, fast)?))
}

/// Runs the story on `stage`, then `--keep`'s pause, then the clean-up, whatever
/// happened.
fn drive(
    mut stage: Box<dyn Stage>,
    screen: &Screen,
    args: &Args,
    stop: &Stop,
) -> anyhow::Result<ExitCode> {
    let result = match story(stage.as_mut(), screen, stop) {
        Ok(crashed) if args.keep => keep(stage.as_mut(), screen, stop, crashed),
        other => other.map(|_| ()),
    };
    let code = match &result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<Interrupted>().is_some() => {
            screen.warning("interrupted: cleaning up");
            ExitCode::from(130)
        }
        Err(error) => {
            screen.warning(&format!("the demo failed: {error:#}"));
            for node in 0..NODES.len() {
                if let Some(view) = status(stage.as_ref(), node) {
                    screen.state(&view, Some(&view));
                }
            }
            let client = stage.client_output();
            let lines: Vec<&str> = client.lines().collect();
            if !lines.is_empty() {
                screen.detail("the client's last attempts:");
                for line in &lines[lines.len().saturating_sub(5)..] {
                    screen.detail(&format!("  {line}"));
                }
            }
            for (node, name) in NODES.iter().enumerate() {
                let log = stage.node_log(node);
                if !log.trim().is_empty() {
                    screen.detail(&format!("last lines of {name}'s log:"));
                    for line in log.lines() {
                        screen.detail(&format!("  {line}"));
                    }
                }
            }
            ExitCode::from(1)
        }
    };
    match stage.clean_up() {
        Ok(removed) => screen.step(&format!("cleaned up: {removed}")),
        Err(error) => {
            screen.warning(&format!("clean-up incomplete: {error:#}"));
            return Ok(ExitCode::from(1));
        }
    }
    Ok(code)
}

/// The status document of `node`, if its daemon answers.
fn status(stage: &dyn Stage, node: usize) -> Option<Status> {
    labcluster::status_at(&stage.runtime_dir(node))
}

/// The group's owner and state in `doc`, and whether every one of its resources is
/// running there (as the owner itself reports them).
fn group_in(doc: &Status) -> (Option<String>, Option<GroupState>, bool) {
    let Some(group) = doc.group(GROUP) else { return (None, None, false) };
    let rs = &group.resources;
    let all_running = !rs.is_empty() && rs.iter().all(|r| r.state == ResourceState::Running);
    (group.owner.clone(), Some(group.state), all_running)
}

/// Whether `node` runs the group, every resource started, as it says itself.
fn runs_group(stage: &dyn Stage, node: usize) -> bool {
    status(stage, node).is_some_and(|doc| {
        let (owner, state, all_running) = group_in(&doc);
        owner.as_deref() == Some(NODES[node]) && state == Some(GroupState::Running) && all_running
    })
}

/// New entries of both nodes' journals, followed by id.
#[derive(Default)]
struct Journals {
    seen: [u64; 2],
}

impl Journals {
    /// Every entry journaled since the last call, oldest first.
    fn fresh(&mut self, stage: &dyn Stage) -> Vec<Entry> {
        let mut fresh = Vec::new();
        for (node, seen) in self.seen.iter_mut().enumerate() {
            let entries = read_journal(&stage.state_dir(node)).unwrap_or_default();
            let since = *seen;
            for entry in entries.into_iter().filter(|e| e.id > since) {
                *seen = entry.id;
                fresh.push(entry);
            }
        }
        fresh.sort_by(|a, b| a.time.cmp(&b.time));
        fresh
    }
}

/// Milliseconds since the Unix epoch.
fn wall_ms(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Wall-clock ms for the journals' times and monotonic ms for the client's stamps, on
/// one scale: the wall clock, from a pair of readings taken together.
struct Clocks {
    wall_ms: i64,
    monotonic_ms: i64,
}

impl Clocks {
    fn now() -> Clocks {
        Clocks { wall_ms: wall_ms(SystemTime::now()), monotonic_ms: monotonic_ms() }
    }

    /// A client stamp on the wall clock.
    fn of_monotonic(&self, ms: i64) -> i64 {
        self.wall_ms + (ms - self.monotonic_ms)
    }
}

/// An entry's wall-clock time in ms.
fn entry_ms(entry: &Entry) -> Option<i64> {
    humantime::parse_rfc3339(&entry.time).ok().map(wall_ms)
}

/// The interruption the client saw around a crash at `crash_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// The last answer before the interruption (it may come after the crash: a crashed
    /// daemon's service lives until its fence guard stops it).
    pub last: (i64, String),
    /// The first answer after it.
    pub first: (i64, String),
    /// Attempts without an answer in between.
    pub failed: usize,
}

impl Outage {
    pub fn ms(&self) -> i64 {
        self.first.0 - self.last.0
    }
}

/// The outage: from the last answer of the node that answered before the crash to the
/// first answer after the first attempt that was not answered by it. `None` while
/// there is no answer after the interruption yet.
pub fn outage(attempts: &[Attempt], crash_ms: i64) -> Option<Outage> {
    let old = attempts
        .iter()
        .filter(|a| a.at_ms <= crash_ms)
        .rev()
        .find_map(|a| a.answer.as_ref().ok())?
        .clone();
    let broken =
        attempts.iter().position(|a| a.at_ms > crash_ms && a.answer.as_ref() != Ok(&old))?;
    let last = attempts[..broken].iter().rev().find(|a| a.answer.is_ok())?;
    let first = attempts[broken..].iter().find(|a| a.answer.is_ok())?;
    let failed = attempts[broken..].iter().take_while(|a| a.answer.is_err()).count();
    let name = |a: &Attempt| a.answer.clone().unwrap_or_default();
    Some(Outage { last: (last.at_ms, name(last)), first: (first.at_ms, name(first)), failed })
}

/// What the client saw, as changes only: who answers, and when it stops answering
/// (with the first reason).
#[derive(Default)]
struct ClientWatch {
    seen: usize,
    last: Option<Result<String, ()>>,
}

impl ClientWatch {
    /// The changes since the last call: (monotonic ms, what).
    fn changes(&mut self, output: &str) -> Vec<(i64, String)> {
        let attempts = parse_attempts(output);
        let mut changes = Vec::new();
        for attempt in attempts.iter().skip(self.seen) {
            let now = attempt.answer.clone().map_err(|_| ());
            if self.last.as_ref() != Some(&now) {
                let text = match &attempt.answer {
                    Ok(node) => format!("answered by {node}"),
                    Err(why) => format!(
                        "no answer ({}); trying every {CLIENT_INTERVAL_MS} ms",
                        why_words(why)
                    ),
                };
                changes.push((attempt.at_ms, text));
                self.last = Some(now);
            }
        }
        self.seen = attempts.len();
        changes
    }
}

/// The client's reason for a failed attempt, for people: a connect or read timeout is
/// reported by the OS as EAGAIN (`Resource temporarily unavailable`).
fn why_words(why: &str) -> String {
    if why.contains("os error 11") || why.contains("timed out") {
        format!("nothing within {CLIENT_TIMEOUT_MS} ms")
    } else {
        why.split(" (os error").next().unwrap_or(why).to_lowercase()
    }
}

/// The nodes' events and the client's view, merged in time order as they arrive.
struct Timeline {
    clocks: Clocks,
    journals: Journals,
    client: ClientWatch,
    /// The crash, on the wall clock: later lines show their time from it.
    crash_ms: Option<i64>,
}

impl Timeline {
    /// Prints what is new: every event with `all`, else only the group's events and
    /// warnings and errors.
    fn show(&mut self, stage: &dyn Stage, screen: &Screen, all: bool) {
        enum Line {
            Event(Entry),
            Client(String),
        }
        let mut lines: Vec<(i64, Line)> = Vec::new();
        for entry in self.journals.fresh(stage) {
            if all || entry.group.is_some() || entry.severity != "info" {
                lines.push((entry_ms(&entry).unwrap_or(0), Line::Event(entry)));
            }
        }
        for (at, text) in self.client.changes(&stage.client_output()) {
            lines.push((self.clocks.of_monotonic(at), Line::Client(text)));
        }
        lines.sort_by_key(|(at, _)| *at);
        for (at, line) in lines {
            let offset = self.crash_ms.map(|crash| at - crash);
            match line {
                Line::Event(entry) => screen.event(&entry, offset),
                Line::Client(text) => screen.client(offset, &text),
            }
        }
    }
}

/// The story; returns the node it crashed.
// Long because: the demo's story told in order, one step of the screen after another,
// as a script reads.
fn story(stage: &mut dyn Stage, screen: &Screen, stop: &Stop) -> anyhow::Result<usize> {
    let (alpha, beta) = (NODES[0], NODES[1]);
    let mut timeline = Timeline {
        clocks: Clocks::now(),
        journals: Journals::default(),
        client: ClientWatch::default(),
        crash_ms: None,
    };

    screen.step(&format!("starting `tandem node` on {alpha} and {beta}; group `{GROUP}`:"));
    stage.start_node(0)?;
    stage.start_node(1)?;
    // Alpha comes first in the group's list, so it normally takes the group; an early
    // alarm (a slow disk I/O on a busy machine) may move it, and the story follows.
    let owner = |stage: &dyn Stage| (0..NODES.len()).find(|n| runs_group(stage, *n));
    let mut first = None;
    stop.wait_for(FORM_TIMEOUT, &format!("{GROUP} running"), || {
        timeline.show(stage, screen, false);
        first = owner(stage).filter(|&n| {
            status(stage, 1 - n).is_some_and(|doc| group_in(&doc).0.as_deref() == Some(NODES[n]))
        });
        Ok(first.is_some())
    })?;
    let first = first.expect("waited for");
    timeline.show(stage, screen, false);
    let (runs, stands_by) = (NODES[first], NODES[1 - first]);
    screen.step(&format!("{GROUP} runs on {runs}, {stands_by} stands by"));

    let text = format!(
        "written through {runs} at {}",
        humantime::format_rfc3339_seconds(SystemTime::now())
    );
    stage.write_file(first, &text)?;
    screen.step(&format!("wrote {} through {runs}: \"{text}\"", stage.file_path()));

    screen.step(&format!(
        "a client asks {} every {CLIENT_INTERVAL_MS} ms (each attempt gives up after \
         {CLIENT_TIMEOUT_MS} ms)",
        stage.service()
    ));
    stage.start_client()?;
    stop.wait_for(FORM_TIMEOUT, "the client's first answer", || {
        timeline.show(stage, screen, false);
        Ok(parse_attempts(&stage.client_output()).iter().any(|a| a.answer.is_ok()))
    })?;
    // The first state shown is the formed cluster's: every link heard (the disk link's
    // first heartbeat may come a moment after the networks'), within a while.
    let heard = Instant::now() + LINKS_HEARD_TIMEOUT;
    while Instant::now() < heard
        && !status(stage, 1 - first)
            .is_some_and(|doc| doc.links.iter().all(|l| l.state == contract::LinkState::Up))
    {
        stop.sleep(POLL)?;
        timeline.show(stage, screen, false);
    }
    if let Some(view) = status(stage, 1 - first) {
        screen.state(&view, status(stage, first).as_ref());
    }
    let calm = Instant::now() + BEFORE_CRASH;
    while Instant::now() < calm {
        stop.sleep(POLL)?;
        timeline.show(stage, screen, false);
    }
    // Crash a calm cluster (no alarm left from the start, such as a slow disk I/O), so
    // that what follows is the crash's doing; after a while, crash anyway. The node that
    // runs the group then is the one crashed: an alarm may have moved it already.
    let calm = |stage: &dyn Stage| {
        owner(stage).is_some()
            && (0..NODES.len()).all(|n| {
                status(stage, n).is_some_and(|doc| {
                    doc.faults.is_empty() && doc.groups.iter().all(|g| !g.locked)
                })
            })
    };
    let patience = Instant::now() + CALM_TIMEOUT;
    while !calm(stage) {
        if Instant::now() >= patience {
            screen.warning(&format!(
                "the nodes still report faults after {} s; crashing anyway",
                CALM_TIMEOUT.as_secs()
            ));
            break;
        }
        stop.sleep(POLL)?;
        timeline.show(stage, screen, false);
    }
    let victim = owner(stage).unwrap_or(0);
    let survivor = 1 - victim;
    let (gone, heir) = (NODES[victim], NODES[survivor]);
    let before = parse_attempts(&stage.client_output());
    let answered = before.iter().filter(|a| a.answer.as_deref() == Ok(gone)).count();
    screen.detail(&format!("{answered} of {} attempts answered by {gone} so far", before.len()));

    let crash_ms = monotonic_ms();
    timeline.crash_ms = Some(timeline.clocks.of_monotonic(crash_ms));
    let what = stage.crash(victim)?;
    screen.headline(&format!("CRASH: {what}"));
    screen.detail(&screen.paint(Paint::Dim, "events and the client's view, timed from the crash:"));
    let deadline = Instant::now() + FAILOVER_TIMEOUT;
    let mut done: Option<Instant> = None;
    loop {
        stop.check()?;
        timeline.show(stage, screen, true);
        if done.is_none()
            && runs_group(stage, survivor)
            && outage(&parse_attempts(&stage.client_output()), crash_ms).is_some()
        {
            done = Some(Instant::now());
        }
        if done.is_some_and(|at| at.elapsed() >= AFTER_FAILOVER) {
            break;
        }
        if Instant::now() >= deadline {
            bail!("no failover to {heir} within {} s", FAILOVER_TIMEOUT.as_secs());
        }
        std::thread::sleep(POLL);
    }
    let output = stage.stop_client();
    let attempts = parse_attempts(&output);
    let Some(outage) = outage(&attempts, crash_ms) else {
        bail!("the client saw no answer after the crash");
    };

    screen.headline(&format!(
        "failover complete: {GROUP} runs on {}, outage seen by the client {} ms",
        outage.first.1,
        outage.ms()
    ));
    screen.detail(&format!(
        "last answer from {} at {:+.3}s, first from {} at {:+.3}s; {} attempts in between \
         got no answer",
        outage.last.1,
        (outage.last.0 - crash_ms) as f64 / 1000.0,
        outage.first.1,
        (outage.first.0 - crash_ms) as f64 / 1000.0,
        outage.failed
    ));
    if let Some(view) = status(stage, survivor) {
        screen.state(&view, Some(&view));
    }
    let now = stage.read_file(survivor)?;
    if now.trim_end() != text {
        bail!("{} through {heir} holds {now:?}, not {text:?}", stage.file_path());
    }
    screen.step(&format!(
        "{} read through {heir}: \"{}\" (still there)",
        stage.file_path(),
        now.trim_end()
    ));
    Ok(victim)
}

/// `--keep`: brings the crashed node back as the standby, says how to explore, and
/// waits for Ctrl-C.
fn keep(stage: &mut dyn Stage, screen: &Screen, stop: &Stop, crashed: usize) -> anyhow::Result<()> {
    let (back, owner) = (NODES[crashed], NODES[1 - crashed]);
    screen.step(&format!("--keep: bringing {back} back; it rejoins as the standby"));
    stage.recover(crashed)?;
    stop.wait_for(FORM_TIMEOUT, &format!("{back} back as standby"), || {
        Ok(status(stage, 1 - crashed)
            .is_some_and(|doc| doc.node(back).is_some_and(|n| n.state == NodeState::Standby)))
    })?;
    if let Some(view) = status(stage, 1 - crashed) {
        screen.state(&view, Some(&view));
    }
    screen.step(&format!("the cluster keeps running ({GROUP} on {owner}); explore it:"));
    for line in stage.explore(1 - crashed) {
        screen.detail(&line);
    }
    screen.step("press Ctrl-C to stop it and clean up");
    loop {
        match stop.sleep(Duration::from_secs(3600)) {
            Err(error) if error.downcast_ref::<Interrupted>().is_some() => return Ok(()),
            other => other?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts(text: &str) -> Vec<Attempt> {
        parse_attempts(text)
    }

    #[test]
    fn the_outage_runs_from_the_old_nodes_last_answer_to_the_first_answer_after() {
        // Alpha still answers after the crash (its guard stops the service later).
        let text = "100 ok alpha\n120 ok alpha\n140 ok alpha\n160 fail refused\n180 fail refused\n\
                    200 ok beta\n220 ok beta\n";
        let got = outage(&attempts(text), 130).unwrap();
        assert_eq!(got.last, (140, "alpha".to_string()));
        assert_eq!(got.first, (200, "beta".to_string()));
        assert_eq!((got.failed, got.ms()), (2, 60));
        // Not over yet: no answer after the interruption.
        assert_eq!(outage(&attempts("100 ok alpha\n160 fail refused\n"), 130), None);
        // No answer before the crash: nothing to measure from.
        assert_eq!(outage(&attempts("100 fail x\n160 ok beta\n"), 130), None);
        // A direct change of node counts as well.
        let direct = outage(&attempts("100 ok alpha\n160 ok beta\n"), 130).unwrap();
        assert_eq!((direct.failed, direct.ms()), (0, 60));
    }
}
