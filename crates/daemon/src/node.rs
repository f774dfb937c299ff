//! The daemon's loop: one task that owns the engine and carries out its outputs. Every
//! input (heartbeat packets read from the UDP sockets, disk slots read, agent results,
//! lease I/O, control requests, signals, the loop's timer) goes to the engine in
//! arrival order; after each one the engine's outputs are drained until `Wait`. Blocking
//! work comes back as a message (agents run on tokio's blocking pool, disk I/O on the
//! disk worker), so the loop itself never blocks for long (the fence guard's socket is
//! the exception: a local write of one line). Disk I/O goes to the disk link's worker thread
//! ([`crate::diskio`]) as *jobs*: what one moment needs (the lease client's I/O, our
//! heartbeat slot, the peers' slots, our mailbox) in one hand-off, and an unchanged
//! heartbeat report or a peers' read that is nearly due rides along with a job that
//! goes anyway ([`nodecore::DiskSchedule`]): at idle a node touches the disk a few times
//! per lease renewal, not once per record.
//!
//! What the loop decides beyond carrying outputs out is in the `nodecore` crate, whose
//! rules the simulator runs too: the disk jobs' schedule ([`nodecore::DiskSchedule`]) and
//! deadlines ([`nodecore::Jobs`], through `diskio`), the lease client's glue
//! ([`nodecore::LeaseDriver`]), which disk slots are news ([`nodecore::SlotReader`]), the
//! disk path's verdict ([`nodecore::StoragePath`]) and the exit after SIGTERM
//! ([`nodecore::shutdown`]). The simulator does not yet run the schedule, the deadlines
//! and the driver (issue 19); the loop itself still wires them together.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arbiter::disk::Record;
use config::{Config, LinkConfig, ResourceParams};
use diskarea::Area;
use engine::catalogue::{self, CodeInfo, Severity};
use engine::{
    AdminState, ArbitrationKind, ClusterSpec, Engine, Event, GroupId, Input, Instant, LinkId,
    LinkKind, NodeId, Output,
};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::access::{self, Local};
use crate::alarm::Alarm;
use crate::clock::{wall_now, Clock};
use crate::control::{self, Call, Request};
use crate::diskio::{self, DiskIo, Slot};
use crate::executor::{self, Agents, Done};
use crate::guard::{GuardLink, GuardNews, GuardOptions};
use crate::journal;
use crate::net::{LossCounter, UdpLink};
use crate::seen::Seen;
use nodecore::shutdown::{after_stop_signal, AfterStop};
use nodecore::timing::{disk_io_timeout, quiet_renewals, Deadlines};
use nodecore::{DiskSchedule, Drive, LeaseClient, LeaseDriver, SlotReader, StoragePath};

/// How often at most a link's rejected packets are reported (W2111).
const REJECT_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// How long the daemon, on its way out, waits for the journal's last entries to sync.
const JOURNAL_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// What `tandem node` needs.
#[derive(Clone, Debug)]
pub struct Options {
    pub config: PathBuf,
    /// Default: the host name.
    pub name: Option<String>,
    /// Default: `cluster.state_dir` of the configuration.
    pub state_dir: Option<PathBuf>,
    /// Where the control and guard sockets live; default [`access::DEFAULT_RUNTIME_DIR`].
    pub runtime_dir: Option<PathBuf>,
    /// The group whose members may use the control socket besides root and the
    /// daemon's user (`--admin-group`).
    pub admin_group: Option<String>,
    /// The `tandem` executable, to start the fence guard with.
    pub program: PathBuf,
    /// A watchdog device for the fence guard to feed (`--watchdog /dev/watchdog`).
    pub watchdog: Option<PathBuf>,
}

struct DiskLink {
    link: LinkId,
    io: DiskIo,
    receiver: wire::Receiver,
    /// Its jobs: what each settle asks of the disk, and when slots and the mailbox
    /// are due ([`DiskSchedule`]).
    schedule: DiskSchedule,
    /// Which slots hold news (by their bytes): see [`SlotReader`].
    slots: SlotReader<Vec<u8>>,
    /// The path's verdict, as reported to the engine.
    path: StoragePath,
}

pub struct Node {
    spec: Arc<ClusterSpec>,
    me: NodeId,
    clock: Clock,
    engine: Engine,
    /// The journal and `admin.json`, written by their own thread (`journal::Writer`).
    journal: journal::Writer,
    /// Answers to admin commands taken in this turn: sent once what the command caused
    /// is durable in the journal (`settle`).
    replies: Vec<(tokio::sync::oneshot::Sender<serde_json::Value>, serde_json::Value)>,
    agents: Arc<Agents>,
    key: wire::Key,
    cluster_id: wire::ClusterId,
    udp: BTreeMap<LinkId, UdpLink>,
    disk: Option<DiskLink>,
    /// Each peer's newest accepted incarnation and sequence, kept across restarts.
    seen: Seen,
    /// The lease client and how it is driven ([`LeaseDriver`]).
    lease: LeaseDriver,
    guard: GuardLink,
    done_tx: mpsc::UnboundedSender<Done>,
    /// Monitors' answers that need no wake-up of their own (see `executor`).
    quiet_ops: executor::Quiet,
    inputs: VecDeque<Input>,
    engine_wait: Instant,
    loss: BTreeMap<(LinkId, NodeId), LossCounter>,
    rejects_reported: BTreeMap<LinkId, (u64, Instant)>,
    too_large_reported: bool,
    admin_saved: AdminState,
    shutdown_by: Option<Instant>,
    /// Devices to set read-only on this node while their group does not run here.
    lock_standby: BTreeMap<GroupId, Vec<PathBuf>>,
    watchdog: Option<Duration>,
    next_watchdog: Instant,
    alarm: Alarm,
    /// A heartbeat was sent in this settle.
    beat_now: bool,
    /// When the loop last went to wait: the start of a stall, when one is found.
    loop_ran: Instant,
}

/// Starts `tandem node`: checks everything, then runs until SIGTERM. Errors before the
/// loop starts (configuration, host checks, sockets, disk area) are returned with their
/// codes; nothing has been changed on the host then.
pub fn run(options: Options) -> anyhow::Result<()> {
    let (config, warnings) = config::load(&options.config).map_err(|invalid| {
        anyhow::anyhow!(
            "the configuration has errors; nothing was started\n{}",
            invalid.render(false)
        )
    })?;
    for w in &warnings {
        tracing::warn!("{}", w.render(&config.source).trim_end());
    }
    let problems = config::host_checks(&config, config::Strictness::Deny);
    let errors: Vec<_> = problems.iter().filter(|d| d.code.severity == Severity::Error).collect();
    for d in problems.iter().filter(|d| d.code.severity != Severity::Error) {
        tracing::warn!("{}", d.render(&config.source).trim_end());
    }
    if !errors.is_empty() {
        let text: Vec<String> = errors.iter().map(|d| d.render(&config.source)).collect();
        anyhow::bail!(
            "this host cannot be a node of the cluster as configured; nothing was started\n{}",
            text.join("\n")
        );
    }
    let name = match &options.name {
        Some(name) => name.clone(),
        None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
    };
    let spec = Arc::new(config.cluster.clone());
    let me = spec.node_id(&name).with_context(|| {
        let names: Vec<_> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
        format!(
            "this node's name `{name}` is not in the configuration (nodes: {}); pass --name",
            names.join(", ")
        )
    })?;
    let state_dir = options.state_dir.clone().unwrap_or_else(|| config.state_dir.clone());
    let local = access::prepare(
        &state_dir,
        &config.key_file,
        options.runtime_dir.as_deref(),
        options.admin_group.as_deref(),
    )?;
    let key = wire::Key::from_file(&config.key_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the cluster key {}: {e} (create it with `tandem keygen` and copy it \
             to every node)",
            config.key_file.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()?;
    runtime.block_on(async move {
        let (mut node, receivers) =
            Node::start(config, spec, me, state_dir, local, key, &options).await?;
        node.run(receivers).await
    })
}

impl Node {
    // Long because: it opens every part of the node in the order their starts depend
    // on (links, journal, lease client, engine, control socket, guard) and fills in the
    // node's fields once.
    async fn start(
        config: Config,
        spec: Arc<ClusterSpec>,
        me: NodeId,
        state_dir: PathBuf,
        local: Local,
        key: wire::Key,
        options: &Options,
    ) -> anyhow::Result<(Node, Receivers)> {
        let config = Arc::new(config);
        let clock = Clock::new();
        let cluster_id = wire::ClusterId::from_name(&spec.name);
        let agents = Arc::new(Agents::build_with(&config, me, &state_dir, false)?);
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        let mut udp = BTreeMap::new();
        let mut disk = None;
        let now = clock.now();
        for link in spec.link_ids() {
            match config.link(link) {
                LinkConfig::Udp { .. } => {
                    let route = wire::Route { link, to: Some(me) };
                    let receiver = wire::Receiver::new(key.clone(), cluster_id, route);
                    let open = UdpLink::open(&config, me, link, receiver)?;
                    udp.insert(link, open);
                }
                LinkConfig::Disk { path } => {
                    let area = open_area(path, &spec)?;
                    disk = Some(DiskLink {
                        link,
                        io: DiskIo::new(
                            Arc::new(area),
                            me,
                            spec.nodes.len(),
                            disk_io_timeout(&spec.timing),
                            answers_tx.clone(),
                        ),
                        receiver: wire::Receiver::new(
                            key.clone(),
                            cluster_id,
                            wire::Route { link, to: None },
                        ),
                        schedule: DiskSchedule::new(&spec.timing),
                        slots: SlotReader::new(spec.nodes.len()),
                        path: StoragePath::new(&spec.timing),
                    });
                }
            }
        }
        // What an earlier run accepted stays refused (captured frames are replays).
        let (loaded, unread) = match crate::seen::load(&state_dir, &spec) {
            Ok(loaded) => (loaded, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        let receivers = udp.values_mut().map(|u: &mut UdpLink| &mut u.receiver);
        for receiver in receivers.chain(disk.as_mut().map(|d: &mut DiskLink| &mut d.receiver)) {
            for (node, newest) in &loaded {
                receiver.remember(*node, newest.incarnation, newest.sequence);
            }
        }
        let seen = Seen::start(&state_dir, &spec, &loaded)
            .context("starting the thread that keeps the peers' heartbeat state")?;
        if spec.arbitration == ArbitrationKind::Witness {
            anyhow::bail!(
                "arbitration = \"witness\" needs the witness process (`tandem witness`), which \
                 this version does not have yet; use arbitration = \"disk\""
            );
        }
        let mut journal = journal::Writer::start(&state_dir, &spec.node(me).name)
            .with_context(|| format!("opening the journal in {}", state_dir.display()))?;
        let wall_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let incarnation = journal::next_incarnation(&state_dir, wall_micros)?;
        // A disk client watches ahead the groups this node may run, so that a takeover
        // waits only for the lease to run out (arbiter::disk, "Watching ahead").
        let io_timeout = disk_io_timeout(&spec.timing);
        let lease =
            LeaseClient::new(&spec, me, incarnation, clock.now(), io_timeout, Duration::ZERO);
        let quiet = lease.disk().is_none_or(|c| quiet_renewals(&spec.timing, c.config()));
        let lease = LeaseDriver::new(lease, quiet, clock.now());
        let mut engine = Engine::new(spec.clone(), me, incarnation, clock.now());
        if let Some(admin) = journal::load_admin(&state_dir) {
            engine.restore_admin(&admin);
        }
        let admin_saved = engine.admin_state().clone();
        let (calls_tx, calls_rx) = mpsc::channel::<Call>(64);
        control::serve(&local.runtime_dir, local.access, calls_tx)?;
        let (guard, guard_news) = GuardLink::start(
            GuardOptions {
                config: std::fs::canonicalize(&options.config)
                    .unwrap_or_else(|_| options.config.clone()),
                node: spec.node(me).name.clone(),
                state_dir: std::fs::canonicalize(&state_dir).unwrap_or_else(|_| state_dir.clone()),
                runtime_dir: local.runtime_dir,
                watchdog: options.watchdog.clone(),
            },
            options.program.clone(),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot start the fence guard ({} fence-guard): {e}",
                catalogue::GUARD_UNAVAILABLE.code,
                options.program.display()
            )
        })?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let lock_standby = lock_standby_devices(&config, me);
        let code = &catalogue::DAEMON_STARTED;
        let message = format!(
            "tandem {} started as node {} (incarnation {incarnation})",
            env!("CARGO_PKG_VERSION"),
            spec.node(me).name
        );
        tracing::info!(code = code.code, "{message}");
        journal.append(journal::Entry::own(code, &spec.node(me).name, message));
        journal.commit();
        let watchdog = watchdog_interval();
        let unread = unread.map(|e| {
            let path = state_dir.join(crate::seen::FILE);
            format!("cannot read {}: {e}; starting without it", path.display())
        });
        let mut node = Node {
            spec,
            me,
            clock,
            engine,
            journal,
            replies: Vec::new(),
            agents,
            key,
            cluster_id,
            udp,
            disk,
            seen,
            lease,
            guard,
            done_tx,
            quiet_ops: executor::Quiet::default(),
            inputs: VecDeque::new(),
            engine_wait: now,
            loss: BTreeMap::new(),
            rejects_reported: BTreeMap::new(),
            too_large_reported: false,
            admin_saved,
            shutdown_by: None,
            lock_standby,
            watchdog,
            next_watchdog: now,
            alarm: Alarm::new()?,
            beat_now: false,
            loop_ran: now,
        };
        if let Some(message) = unread {
            node.journal_own(&catalogue::SEEN_UNKEPT, None, message);
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let receivers =
            Receivers { answers: answers_rx, done: done_rx, calls: calls_rx, guard: guard_news };
        Ok((node, receivers))
    }

    async fn run(&mut self, receivers: Receivers) -> anyhow::Result<()> {
        let Receivers { mut answers, mut done, mut calls, guard: mut guard_news } = receivers;
        let mut batch = crate::net::Batch::default();
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut signals = 0u32;
        loop {
            self.settle();
            let now = self.clock.now();
            match after_stop_signal(self.shutdown_by, now, self.engine.is_quiescent()) {
                AfterStop::Stay => {}
                AfterStop::ExitClean => {
                    self.stopped("stopped cleanly: no group runs here any more, leases released");
                    self.guard.exit();
                    return Ok(());
                }
                AfterStop::ExitArmed => {
                    self.stopped(
                        "shutdown took too long: exiting with the fence guard armed; it stops \
                         what is left when the lease runs out",
                    );
                    return Ok(());
                }
            }
            let wake_at = self.wake_at();
            if let Err(e) = self.alarm.set(wake_at) {
                // Never seen; without the timer no deadline would be kept.
                anyhow::bail!("cannot set the loop's timer: {e}");
            }
            self.loop_ran = self.clock.now();
            let links: Vec<&UdpLink> = self.udp.values().collect();
            // In this order: the disk's answers first (every wake-up checks the disk I/O
            // deadlines, `on_time`, and an answer left waiting behind a datagram would
            // count as late), then agents' results, the guard's news, control calls,
            // then datagrams (a batch at a time): a flooded socket delays none of the
            // others, and after a full batch the loop yields to the runtime, whose other
            // tasks serve the control socket. The order in which inputs reach the engine
            // is `on_time`'s.
            let mut busy = false;
            let woke = tokio::select! {
                biased;
                _ = sigterm.recv() => Woke::Signal,
                _ = sigint.recv() => Woke::Signal,
                Some(answer) = answers.recv() => Woke::Answer(answer),
                Some(result) = done.recv() => Woke::Done(result),
                Some(news) = guard_news.recv() => Woke::Guard(news),
                Some(call) = calls.recv() => Woke::Call(call),
                link = crate::net::receive(&links, &mut batch) => Woke::Packets(link),
                () = self.alarm.expired() => Woke::Timer,
            };
            // Before anything else: if the guard's deadline passed while this loop did not
            // run (paused, hung), the guard has stopped (or is stopping) every resource
            // and another node may run the groups; nothing here may act on the old view.
            let now = self.clock.now();
            self.stop_if_guard_fired(now, "its deadline passed");
            match woke {
                Woke::Signal => signals += 1,
                Woke::Answer(answer) => self.on_answer(answer),
                Woke::Done(result) => self.on_done(result),
                Woke::Call(call) => self.on_call(call),
                Woke::Packets(link) => {
                    self.on_packets(link, &batch);
                    busy = batch.is_full();
                }
                Woke::Guard(GuardNews::Fired) => {
                    self.stalled(now, now, "a renewal reached it too late");
                }
                Woke::Guard(GuardNews::Keeps { sent, kept }) => {
                    self.guard.keeps(Instant::from_nanos(sent), Instant::from_nanos(kept));
                }
                Woke::Guard(GuardNews::Unavailable(e)) => self.journal_own(
                    &catalogue::GUARD_UNAVAILABLE,
                    None,
                    format!("cannot reach or start the fence guard: {e}"),
                ),
                Woke::Timer => {}
            }
            if busy {
                // More datagrams wait (a flood): let the runtime poll its I/O driver and
                // run the control socket's tasks before the next batch.
                tokio::task::yield_now().await;
            }
            if signals == 1 && self.shutdown_by.is_none() {
                self.begin_shutdown();
            } else if signals > 1 {
                self.stopped("second stop signal: exiting at once, the fence guard stays armed");
                return Ok(());
            }
            self.on_time();
        }
    }

    /// When the loop must wake next: see [`Deadlines::wake_at`].
    fn wake_at(&self) -> Instant {
        let lease = self.lease.wake();
        let mut deadlines = Deadlines {
            soft: self.engine_wait,
            lease: lease.at,
            lease_quiet: lease.quiet,
            lease_idle: lease.idle,
            expected: Instant::MAX,
            exact: Instant::MAX,
        };
        if let Some(disk) = &self.disk {
            deadlines.soft = deadlines.soft.min(disk.schedule.next_due());
            deadlines.exact = disk.io.next_deadline();
            if let Some(sent) = disk.io.quiet_lease_write() {
                deadlines.expected = self.lease.expected_after(sent);
            }
        }
        if self.watchdog.is_some() {
            deadlines.soft = deadlines.soft.min(self.next_watchdog);
        }
        if let Some(by) = self.shutdown_by {
            deadlines.soft = deadlines.soft.min(by);
        }
        deadlines.wake_at(&self.spec.timing)
    }

    /// If the guard's deadline has passed at `now`, the guard fired: nothing more is done
    /// but [`Node::stalled`].
    fn stop_if_guard_fired(&mut self, now: Instant, how: &str) {
        if let Some(deadline) = self.guard.deadline_passed(now) {
            self.stalled(now, deadline, how);
        }
    }

    fn begin_shutdown(&mut self) {
        let now = self.clock.now();
        self.shutdown_by = Some(now + self.spec.shutdown_budget());
        tracing::info!("stop signal: handing groups over, then exiting");
        self.inputs.push_back(Input::Shutdown);
    }

    fn stopped(&mut self, why: &str) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        self.journal_own(&catalogue::DAEMON_STOPPED, None, why.to_string());
        self.flush_journal();
    }

    /// On the way out: what is queued reaches the disk (blocking, bounded).
    fn flush_journal(&mut self) {
        if !self.journal.flush(JOURNAL_FLUSH_WAIT) {
            tracing::error!("the journal's last entries may be lost: its disk did not sync them");
        }
    }

    fn on_time(&mut self) {
        // What woke the loop (a peer's heartbeat, say) is handled after the lease
        // client's news: a renewal granted since the last wake-up (by a quiet answer or a
        // settle that ended) must be known when the engine next ticks — the first input
        // handled at or after a heartbeat tick makes it tick, a peer's heartbeat too
        // (`Engine::keep_in_step`) — or the next renewal misses the tick and goes a
        // tenth of an interval later, on a wake-up of its own.
        let woke = std::mem::take(&mut self.inputs);
        // Quiet disk jobs answered since the last wake-up, with the instants they ended.
        let quiet = self.disk.as_mut().map(|d| d.io.quiet_answers()).unwrap_or_default();
        for answer in quiet {
            self.on_answer(answer);
        }
        // So do monitors that found their resources running: before any deadline of
        // theirs is checked.
        for done in self.quiet_ops.take() {
            self.on_done(done);
        }
        self.drain_lease_client();
        let now = self.clock.now();
        // At every wake-up: the deadlines of quiet I/O are not in the lease's wake-up.
        self.lease.tick(now);
        if let Some(disk) = self.disk.as_mut() {
            for done in disk.io.expire(now) {
                self.on_disk_done(done, now);
            }
        }
        self.drain_lease_client();
        if now >= self.engine_wait {
            self.inputs.push_back(Input::Timeout);
        }
        self.inputs.extend(woke);
        if let Some(disk) = self.disk.as_mut() {
            if now >= disk.schedule.next_due() {
                // Something is due: a job goes (what else is nearly due rides along).
                disk.schedule.job(now);
            }
        }
        if let Some(interval) = self.watchdog {
            if now >= self.next_watchdog {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                self.next_watchdog = now + interval;
            }
        }
        self.check_rejects(now);
        self.seen.flush(std::time::Instant::now());
        if let Some(why) = self.seen.take_failure() {
            self.journal_own(&catalogue::SEEN_UNKEPT, None, format!("cannot write {why}"));
        }
    }

    /// Feeds queued inputs and carries out outputs until the engine and the lease
    /// client both wait.
    fn settle(&mut self) {
        loop {
            let now = self.clock.now();
            // A stop can come anywhere, also in the middle of a turn (SIGSTOP): nothing
            // reaches the engine once the guard's deadline has passed.
            self.stop_if_guard_fired(now, "its deadline passed");
            if let Some(input) = self.inputs.pop_front() {
                self.engine.handle(now, input);
            }
            loop {
                match self.engine.poll_output() {
                    Output::Wait(at) => {
                        self.engine_wait = at;
                        break;
                    }
                    output => self.carry_out(now, output),
                }
            }
            self.prompt_mode();
            self.drain_lease_client();
            if self.inputs.is_empty() {
                // What this settle wants from the disk goes as one job (an answer
                // given at once, when no worker can take it, brings new inputs).
                self.flush_disk();
                if self.inputs.is_empty() {
                    break;
                }
            }
        }
        if self.engine.admin_state() != &self.admin_saved {
            self.admin_saved = self.engine.admin_state().clone();
            self.journal.save_admin(&self.admin_saved);
        }
        // What this turn journaled goes to the writer thread as one batch; answers to
        // the commands it took go out once that batch (and admin.json) is durable.
        for (answer_tx, mut answer) in self.replies.drain(..) {
            self.journal.after_durable(move |written| {
                if let Err(e) = written {
                    answer["journal_error"] = serde_json::Value::String(e);
                }
                let _ = answer_tx.send(answer);
            });
        }
        self.journal.commit();
    }

    fn carry_out(&mut self, now: Instant, output: Output) {
        match output {
            Output::Heartbeat { link, to, message } => {
                self.beat_now = true;
                self.send_heartbeat(link, to, &message);
            }
            Output::Operation { id, group, resource, op, timeout } => {
                executor::spawn(
                    &self.agents,
                    id,
                    group,
                    resource,
                    op,
                    timeout,
                    self.done_tx.clone(),
                    &self.quiet_ops,
                );
            }
            // Without an arbitrator the answer waits in the client for
            // `drain_lease_client`, which follows every batch of outputs.
            Output::Lease { id, request } => self.lease.request(now, id, request),
            Output::ArmFence { deadline, keep_earlier } => self.guard.arm(deadline, keep_earlier),
            Output::LockStandby { group } => self.lock_standby(group),
            Output::SelfFence { reason } => self.self_fence(&reason),
            Output::Event(event) => self.on_event(&event),
            Output::Wait(_) => unreachable!("handled by settle"),
        }
    }

    /// The loop did not run past the guard's deadline (it was last seen running at
    /// `self.loop_ran`): the guard fired. Journals it (E3112), waits for the guard to
    /// finish stopping every resource, and starts this daemon again in the same process
    /// (same arguments, a new incarnation) so that it probes and rejoins as standby.
    /// Nothing else is done: not a heartbeat, not an agent call, not a lease write.
    fn stalled(&mut self, now: Instant, deadline: Instant, how: &str) -> ! {
        let ran = self.loop_ran;
        self.journal_own(
            &catalogue::DAEMON_STALLED,
            None,
            format!(
                "this daemon's loop did not run for {} (from {} to {} on the monotonic \
                 clock); the fence guard fired ({how}, {} ago) and stops every resource; \
                 restarting as standby",
                fmt_ms(now.saturating_since(ran)),
                fmt_ms(Duration::from_nanos(ran.as_nanos())),
                fmt_ms(Duration::from_nanos(now.as_nanos())),
                fmt_ms(now.saturating_since(deadline)),
            ),
        );
        let bound = self.spec.slowest_group_stop() + Duration::from_secs(2);
        if !self.guard.wait_gone(bound) {
            tracing::error!("the fence guard did not finish within {bound:?}; restarting anyway");
        }
        self.flush_journal();
        let error = restart_in_place();
        tracing::error!("cannot restart the daemon in place: {error}; exiting");
        std::process::exit(70);
    }

    /// The engine could not stop resources before its lease runs out: the guard stops
    /// everything now and the daemon exits (and, where a hardware watchdog is armed by
    /// systemd, stops feeding it).
    fn self_fence(&mut self, reason: &str) {
        // The engine decided on a turn that began before its guard's deadline and ended
        // after it (the loop stopped within the turn): the guard fired already.
        self.stop_if_guard_fired(self.clock.now(), "its deadline passed within a turn");
        // The engine journaled why (E3106, E3111); here only what the shell does.
        tracing::error!("fencing this node: {reason}");
        if let Err(e) = self.guard.fire_now() {
            tracing::error!("cannot reach the fence guard to self-fence: {e}");
        }
        self.flush_journal();
        std::process::exit(70);
    }

    fn on_event(&mut self, event: &Event) {
        let entry = journal::entry_of(&self.spec, event, wall_now());
        match event.code.severity {
            Severity::Error => tracing::error!(code = entry.code, "{}", entry.message),
            Severity::Warning => tracing::warn!(code = entry.code, "{}", entry.message),
            Severity::Info => tracing::info!(code = entry.code, "{}", entry.message),
        }
        self.journal.append(entry);
    }

    /// The engine's standby lock (guarantee 7): `group`'s `lock_standby` devices
    /// read-only here.
    fn lock_standby(&mut self, group: GroupId) {
        let Some(devices) = self.lock_standby.get(&group) else { return };
        // An ioctl on a device whose path hangs blocks: never on the loop's thread.
        let devices = devices.clone();
        tokio::task::spawn_blocking(move || {
            crate::stall::point("read_only");
            for device in devices {
                if let Err(e) = agents::filesystem::set_read_only(&device, true) {
                    tracing::warn!("cannot set {} read-only (lock_standby): {e}", device.display());
                }
            }
        });
    }

    fn journal_own(&mut self, code: &'static CodeInfo, group: Option<GroupId>, message: String) {
        let event = Event {
            at: self.clock.now(),
            node: self.me,
            code,
            group,
            resource: None,
            location: Some(format!("node {}", self.spec.node(self.me).name)),
            message,
        };
        self.on_event(&event);
    }

    fn send_heartbeat(&mut self, link: LinkId, to: NodeId, message: &engine::Heartbeat) {
        match self.spec.link(link).kind {
            LinkKind::Udp => {
                let route = wire::Route { link, to: Some(to) };
                let frame = match wire::encode(&self.key, self.cluster_id, route, message) {
                    Ok(frame) => frame,
                    Err(e) => return self.too_large(link, e.to_string()),
                };
                if let Some(udp) = self.udp.get_mut(&link) {
                    udp.send(to, &frame);
                }
            }
            LinkKind::Disk => {
                let now = self.clock.now();
                let Some(disk) = self.disk.as_mut() else { return };
                disk.schedule.heartbeat(now, message);
            }
        }
    }

    fn too_large(&mut self, link: LinkId, why: String) {
        if !self.too_large_reported {
            self.too_large_reported = true;
            let name = self.spec.link(link).name.clone();
            self.journal_own(
                &catalogue::HEARTBEAT_TOO_LARGE,
                None,
                format!("heartbeat not sent on link {name}: {why}"),
            );
        }
    }

    /// Hands the job of this settle to the disk worker, with what rides along: our newest
    /// heartbeat if a write is nearly due (or its report changed), the peers' slots if
    /// a read is nearly due, the mailbox once per `nodecore::timing::MAILBOX_READ_EVERY`
    /// ([`DiskSchedule::take_job`]).
    fn flush_disk(&mut self) {
        let now = self.clock.now();
        let Some(disk) = self.disk.as_mut() else { return };
        let Some((issued, plan)) = disk.schedule.take_job(now) else { return };
        let mut job = diskio::Job {
            lease: plan.lease,
            slot: None,
            peers: plan.peers,
            mail: plan.mail,
            time_writes: plan.time_writes,
        };
        let mut too_large = None;
        if let Some(message) = plan.slot {
            let route = wire::Route { link: disk.link, to: None };
            match wire::encode(&self.key, self.cluster_id, route, &message) {
                Ok(frame) if frame.len() <= diskarea::HEARTBEAT_BYTES_MAX => {
                    job.slot = Some((message.sequence, frame));
                }
                Ok(frame) => {
                    too_large = Some(format!(
                        "{} bytes, the slot holds {}",
                        frame.len(),
                        diskarea::HEARTBEAT_BYTES_MAX
                    ));
                }
                Err(e) => too_large = Some(e.to_string()),
            }
            if job.slot.is_none() {
                disk.schedule.slot_not_written();
            }
        }
        let link = disk.link;
        let failed_at_once = disk.io.submit(issued, job);
        if let Some(why) = too_large {
            self.too_large(link, why);
        }
        if let Some(done) = failed_at_once {
            self.on_disk_done(done, now);
        }
    }

    fn storage_result(&mut self, ok: bool) {
        let now = self.clock.now();
        let Some(disk) = self.disk.as_mut() else { return };
        if let Some(ok) = disk.path.result(now, ok) {
            self.inputs.push_back(Input::StoragePath { ok });
        }
    }

    /// Disk answers wake the loop at once while an acquire or release is in flight (see
    /// `diskio`): entering that mode, the quiet answers already given are read now.
    fn prompt_mode(&mut self) {
        let Some(disk) = self.disk.as_mut() else { return };
        let Some(on) = self.lease.prompt_changed() else { return };
        disk.io.set_prompt_mode(on);
        if on {
            for answer in disk.io.quiet_answers() {
                self.on_answer(answer);
            }
        }
    }

    fn on_answer(&mut self, answer: diskio::Answer) {
        let Some(disk) = self.disk.as_mut() else { return };
        let ended = answer.done_at;
        match disk.io.answered(answer) {
            diskio::Answered::Done(done) => self.on_disk_done(done, ended),
            diskio::Answered::Ended(lease) => {
                // A job answered as unfinished at its deadline has ended: its writes
                // may have landed only now (`DiskLeaseClient::acquire_blocked`).
                tracing::debug!(ended = ended.0, "late lease I/O ended: {lease:?}");
                self.lease.late_done(self.clock.now(), ended, lease);
                self.drain_lease_client();
            }
            diskio::Answered::Nothing => {}
        }
    }

    /// A disk job's results (or its failure: missed deadline, no worker), `ended` when
    /// its last I/O returned.
    fn on_disk_done(&mut self, done: diskio::Done, ended: Instant) {
        let now = self.clock.now();
        let (_, failed) = done.outcome();
        if failed {
            tracing::debug!("disk I/O failed: {done:?}");
        }
        self.storage_result(!failed);
        if self.lease.client().disk().is_some() {
            // The lease protocol counts from completions: the true one (a quiet job's
            // answer is read later), never before what the client saw last
            // (`LeaseDriver::job_done`).
            tracing::debug!(ended = ended.0, now = now.0, "lease I/O done: {:?}", done.lease);
            self.lease.job_done(now, ended, done.writes_done_at, done.lease);
            // The lease client's replies go to the engine before what the rest of this
            // job brings (the peers' slots are heartbeats): the first input handled at
            // or after a heartbeat tick makes the engine tick, and a renewal granted by
            // this job must be known then, or the next renewal misses the tick and goes
            // a tenth of an interval later, on a wake-up of its own (seen in the lab:
            // every renewal 10 ms after its tick, and a standby's watch read issued with
            // the tick never saw the latest one).
            self.drain_lease_client();
        }
        let Some(disk) = self.disk.as_mut() else { return };
        if done.slot.is_some() {
            disk.schedule.slot_done(now);
        }
        if let Some(peers) = done.peers {
            disk.schedule.peers_done();
            match peers {
                // Read at the job's end: the answer of a quiet job waits for the next
                // wake-up, which must not count as hearing the peer later.
                Ok(slots) => self.read_slots(slots, ended.min(now)),
                Err(_) => disk.slots.failed(),
            }
        }
        if let Some(mail) = done.mail {
            if let Some(disk) = self.disk.as_mut() {
                disk.schedule.mail_done();
            }
            if let Ok(mail) = mail {
                self.read_mail(mail);
            }
        }
    }

    fn read_slots(&mut self, slots: Vec<Slot>, received: Instant) {
        let Some(disk) = self.disk.as_mut() else { return };
        let written: Vec<(NodeId, Vec<u8>)> =
            slots.into_iter().filter_map(|(node, bytes)| Some((node, bytes?))).collect();
        let news = disk.slots.read(written.iter().map(|(n, b)| (usize::from(n.0), b.clone())));
        for (node, bytes) in written.iter().filter(|(n, _)| news.contains(&usize::from(n.0))) {
            let node = *node;
            // A slot holds its node's frames only.
            if let Ok(message) = disk.receiver.receive_from(bytes, Some(node), |_| true) {
                let link = disk.link;
                let at = std::time::Instant::now();
                self.seen.note(message.from, message.incarnation, message.sequence, at);
                self.inputs.push_back(Input::Heartbeat { link, message, received });
            }
        }
    }

    /// A poison pill in our mailbox: the engine decides (it fences for its own
    /// incarnation's).
    fn read_mail(&mut self, mail: Record) {
        let Record::Pill(pill) = mail else { return };
        self.inputs.push_back(Input::PoisonPill { incarnation: pill.incarnation, from: pill.from });
    }

    fn on_done(&mut self, done: Done) {
        let group = &self.spec.group(done.group);
        let resource = &group.resource(done.resource).name;
        tracing::debug!(
            "{}/{resource} {:?}: {:?} in {:?}{}",
            group.name,
            done.op,
            done.result,
            done.took,
            done.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
        );
        if let (Some(detail), engine::OpResult::NotRunning) = (&done.detail, &done.result) {
            if done.op == engine::OpKind::Monitor {
                tracing::warn!("{}/{resource} not running: {detail}", group.name);
            }
        }
        self.inputs.push_back(Input::Operation { id: done.id, result: done.result });
    }

    /// A batch of datagrams read from `link`: the heartbeats among them go to the
    /// engine (the rest is counted by `net`).
    fn on_packets(&mut self, link: LinkId, batch: &crate::net::Batch) {
        let Some(udp) = self.udp.get_mut(&link) else { return };
        let received = self.clock.now();
        let at = std::time::Instant::now();
        for message in udp.check(batch) {
            self.loss.entry((link, message.from)).or_default().record(&message);
            self.seen.note(message.from, message.incarnation, message.sequence, at);
            self.inputs.push_back(Input::Heartbeat { link, message, received });
        }
    }

    /// Reports rejected packets, at most once per link per interval.
    fn check_rejects(&mut self, now: Instant) {
        crate::net::read_kernel_drops(self.udp.values_mut(), now, crate::net::DropsRead::WhenDue);
        let mut reports = Vec::new();
        for (link, udp) in &self.udp {
            let counters = udp.receiver.counters();
            let total = counters.rejected_total();
            let (reported, at) =
                self.rejects_reported.get(link).copied().unwrap_or((0, Instant(0)));
            if total > reported
                && (at == Instant(0) || now.saturating_since(at) >= REJECT_REPORT_INTERVAL)
            {
                self.rejects_reported.insert(*link, (total, now));
                reports.push((
                    &catalogue::PACKETS_REJECTED,
                    format!(
                        "link {}: {} packets dropped so far ({}; from {})",
                        self.spec.link(*link).name,
                        total,
                        crate::net::describe_reasons(counters),
                        udp.rejected_by.describe(4)
                    ),
                ));
            }
        }
        for (link, udp) in &mut self.udp {
            reports.extend(udp.flood_news(now, &self.spec.link(*link).name));
        }
        for (code, message) in reports {
            self.journal_own(code, None, message);
        }
    }

    fn on_call(&mut self, call: Call) {
        let answer = match control::command_of(&self.spec, &call.request) {
            Err(error) => serde_json::json!({"ok": false, "error": error}),
            Ok(None) => {
                let now = self.clock.now();
                let status = self.engine.status(now);
                let loss = &self.loss;
                let lookup = |link: LinkId, node: NodeId| {
                    loss.get(&(link, node)).and_then(|c| c.loss_percent())
                };
                let mut document = control::status_json(&self.spec, &status, now, lookup);
                document["journal"] = self.journal.status();
                // The status shows the kernel's drops as of now (a procfs read).
                crate::net::read_kernel_drops(
                    self.udp.values_mut(),
                    now,
                    crate::net::DropsRead::Now,
                );
                let receiving =
                    self.udp.values().map(|u| control::receiving_json(&self.spec, u, now));
                document["receiving"] = serde_json::Value::Array(receiving.collect());
                serde_json::json!({"ok": true, "status": document})
            }
            Ok(Some(command)) => {
                if self.shutdown_by.is_some() && !matches!(call.request, Request::Status) {
                    serde_json::json!({"ok": false, "error": "the daemon is shutting down"})
                } else {
                    let (group, audit) = (control::group_of(&command), control::audit(&call));
                    self.journal_own(&catalogue::ADMIN_COMMAND, group, audit);
                    self.inputs.push_back(Input::Admin(command));
                    // Answered when what it causes is journaled (`settle`).
                    self.replies.push((call.answer, serde_json::json!({"ok": true})));
                    return;
                }
            }
        };
        let _ = call.answer.send(answer);
    }

    /// Carries out the lease client's outputs: its reads and writes join the disk job of
    /// this settle, in issue order (each still lands within the I/O timeout of its issue
    /// or counts as failed).
    fn drain_lease_client(&mut self) {
        let beat_now = std::mem::take(&mut self.beat_now);
        let now = self.clock.now();
        if beat_now {
            // A heartbeat went now (and the disk job with it): a watch round due within
            // half an interval goes too, instead of waking the loop and the disk again.
            self.lease.heartbeat_sent(now, self.spec.timing.heartbeat_interval / 2);
        }
        while let Some(drive) = self.lease.poll() {
            match drive {
                Drive::DiskIo { io, op, renewal_write } => {
                    tracing::debug!(io = io.0, now = now.0, "lease I/O: {op:?}");
                    if let Some(disk) = self.disk.as_mut() {
                        let job = disk.schedule.job(now);
                        job.time_writes |= renewal_write;
                        job.lease.push((io, op));
                    }
                }
                Drive::ToWitness(_) => {
                    unreachable!("the daemon refuses witness arbitration at its start")
                }
                Drive::Reply { id, result } => {
                    tracing::debug!(now = now.0, "lease reply: {result:?}");
                    self.inputs.push_back(Input::Lease { id, result });
                }
            }
        }
    }
}

/// The loop's inputs.
struct Receivers {
    answers: mpsc::UnboundedReceiver<diskio::Answer>,
    done: mpsc::UnboundedReceiver<Done>,
    calls: mpsc::Receiver<Call>,
    guard: mpsc::UnboundedReceiver<GuardNews>,
}

/// What woke the loop.
enum Woke {
    Signal,
    Answer(diskio::Answer),
    Done(Done),
    /// Datagrams of this link, in the loop's batch.
    Packets(LinkId),
    Call(Call),
    Guard(GuardNews),
    Timer,
}

/// Replaces this process with a new run of the same program and arguments (the PID,
/// hence a supervisor's view of it, stays); returns only on failure.
fn restart_in_place() -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => return e,
    };
    std::process::Command::new(program).args(std::env::args_os().skip(1)).exec()
}

/// `d` in milliseconds, for messages.
fn fmt_ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn open_area(path: &Path, spec: &ClusterSpec) -> anyhow::Result<Area> {
    let fail = |e: diskarea::AreaError| {
        anyhow::anyhow!(
            "{}: the disk link's area {} cannot be used: {e}\n  = help: {}",
            catalogue::DISK_FOREIGN.code,
            path.display(),
            catalogue::DISK_FOREIGN.fix
        )
    };
    let area = Area::open(path, &spec.name).map_err(fail)?;
    area.check_layout(spec.nodes.len(), spec.groups.len()).map_err(fail)?;
    Ok(area)
}

/// The `lock_standby` file systems' devices of the groups this node may run.
fn lock_standby_devices(config: &Config, me: NodeId) -> BTreeMap<GroupId, Vec<PathBuf>> {
    let spec = &config.cluster;
    let mut out = BTreeMap::new();
    for g in spec.group_ids().filter(|g| spec.group(*g).nodes.contains(&me)) {
        let devices: Vec<PathBuf> = config
            .group(g)
            .resources
            .iter()
            .filter_map(|r| match &r.params {
                ResourceParams::Filesystem(fs) if fs.lock_standby => Some(fs.device.value.clone()),
                _ => None,
            })
            .collect();
        if !devices.is_empty() {
            out.insert(g, devices);
        }
    }
    out
}

/// Half the systemd watchdog interval when systemd set one for us.
fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec / 2))
    } else {
        None
    }
}
