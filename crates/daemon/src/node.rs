//! The daemon's loop: a thin shell around one [`nodecore::NodeCore`], which holds the
//! engine and every rule between it and the sockets (the lease client and its driving,
//! the disk jobs' schedule and deadlines, which disk slots are news, the disk path's
//! verdict, the loop's wake-up, the fence guard's deadline, the exit after SIGTERM);
//! the simulator runs the very same core. The loop decides nothing: it waits for what
//! comes (datagrams, the disk worker's answers, agents' results, control calls, the
//! guard's news, signals, its timer), hands it to the core, calls
//! [`nodecore::NodeCore::wake`], then carries out every [`Action`] the core polls until
//! it says [`Action::Wait`] (`settle`).
//!
//! The loop touches the host only through its platform `P` ([`crate::platform`]: one
//! small trait per concern): heartbeat links, the disk worker (a job is what one moment
//! needs from the disk, in one hand-off), the fence guard, agents, the standby lock, its
//! timer, stop requests and the service manager's watchdog, the clock. Linux's
//! implementations are `net`, `diskio`, `guard`, `executor`, `alarm`, ... wired up in
//! [`crate::linux`]; another platform implements the same traits and runs this very
//! loop (an in-memory one does, in `platform`'s test). Besides, the loop keeps the wire
//! encoding, the journal and `admin.json` (`journal`), the peers' newest sequences
//! (`seen`) and the control calls (`control`). Blocking work comes back as a message,
//! so the loop itself never blocks for long (Linux's fence guard socket is the
//! exception: a local write of one line). Starting the node is [`crate::start`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use engine::catalogue::{self, CodeInfo, Severity};
use engine::{AdminState, ClusterSpec, Engine, Event, GroupId, Heartbeat, Instant, LinkId, NodeId};
use nodecore::shutdown::AfterStop;
use nodecore::{Action, DiskAnswer, DiskDone, JobPlan, NodeCore};

use crate::clock::wall_now;
use crate::control::Call;
use crate::diskio;
use crate::executor::Done;
use crate::guard::GuardNews;
use crate::journal;
use crate::loss::LossCounter;
use crate::platform::{
    AgentRunner, Clock, DiskWorker, FenceGuard, Links, LoopTimer, Platform, Receivers, Service,
    StandbyLock,
};
use crate::seen::Seen;

pub(crate) struct DiskLink<D> {
    pub(crate) link: LinkId,
    pub(crate) io: D,
    pub(crate) receiver: wire::Receiver,
}

/// The loop over platform `P`'s parts.
pub(crate) struct Node<P: Platform> {
    pub(crate) spec: Arc<ClusterSpec>,
    pub(crate) me: NodeId,
    pub(crate) clock: P::Clock,
    /// The engine and every rule between it and the sockets.
    pub(crate) core: NodeCore<Engine, Vec<u8>>,
    /// The journal and `admin.json`, written by their own thread (`journal::Writer`).
    pub(crate) journal: journal::Writer,
    /// Answers to admin commands taken in this turn: sent once what the command caused
    /// is durable in the journal (`settle`).
    pub(crate) replies: Vec<(tokio::sync::oneshot::Sender<contract::Answer>, contract::Answer)>,
    pub(crate) agents: P::Agents,
    pub(crate) key: wire::Key,
    pub(crate) cluster_id: wire::ClusterId,
    pub(crate) links: P::Links,
    pub(crate) disk: Option<DiskLink<P::Disk>>,
    /// Each peer's newest accepted incarnation and sequence, kept across restarts.
    pub(crate) seen: Seen,
    pub(crate) guard: P::Guard,
    pub(crate) loss: BTreeMap<(LinkId, NodeId), LossCounter>,
    pub(crate) too_large_reported: bool,
    pub(crate) admin_saved: AdminState,
    /// Devices to set read-only on this node while their group does not run here.
    pub(crate) lock_standby: BTreeMap<GroupId, Vec<PathBuf>>,
    pub(crate) standby: P::Standby,
    pub(crate) service: P::Service,
    pub(crate) next_watchdog: Instant,
    pub(crate) timer: P::Timer,
    /// When the loop last went to wait: the start of a stall, when one is found.
    pub(crate) loop_ran: Instant,
    /// When the core next wants to be woken (its last [`Action::Wait`]).
    pub(crate) wait_until: Instant,
    /// The guard said it fired (a renewal reached it too late): how a stall is told.
    pub(crate) guard_fired: bool,
    /// The `[[alert]]` threads: every journaled event is offered to them.
    pub(crate) alerts: crate::alerting::Alerting,
    /// What `GET /metrics` counts (atomics: nothing here waits on a scrape).
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The configuration store and push (`configstore`), where the platform has one.
    pub(crate) configs: Option<std::sync::Arc<crate::configstore::Service>>,
    /// The other nodes' configuration generations, as their heartbeats carry them.
    pub(crate) peer_configs: crate::configsync::PeerConfigs,
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

/// The core's `decode` for the peers' disk slots that are news: a slot holds its node's
/// frames only; an accepted one is noted in `seen`.
fn decoder<'a, D>(
    disk: &'a mut Option<DiskLink<D>>,
    seen: &'a mut Seen,
) -> impl FnMut(NodeId, &Vec<u8>) -> Option<Heartbeat> + 'a {
    let at = std::time::Instant::now();
    move |node, bytes| {
        let message = disk.as_mut()?.receiver.receive_from(bytes, Some(node), |_| true).ok()?;
        seen.note(message.from, message.incarnation, message.sequence, at);
        Some(message)
    }
}

impl<P: Platform> Node<P> {
    /// Runs until SIGTERM (or a stall, a self-fence): one wake-up per turn.
    pub(crate) async fn run(&mut self, receivers: Receivers) -> anyhow::Result<()> {
        let Receivers { mut answers, mut done, mut calls, guard: mut guard_news } = receivers;
        let mut signals = 0u32;
        loop {
            self.check_configs();
            match self.settle() {
                None | Some(AfterStop::Stay) => {}
                Some(AfterStop::ExitClean) => {
                    let parked = self.core.engine().leases_parked();
                    self.stopped(nodecore::shutdown::clean_exit_text(parked));
                    self.guard.exit();
                    return Ok(());
                }
                Some(AfterStop::ExitArmed) => {
                    self.stopped(
                        "shutdown took too long: exiting with the fence guard armed; it stops \
                         what is left when the lease runs out",
                    );
                    return Ok(());
                }
            }
            let wake_at = match self.service.watchdog_interval() {
                Some(_) => self.wait_until.min(self.next_watchdog),
                None => self.wait_until,
            };
            if let Err(e) = self.timer.set(wake_at) {
                // Never seen; without the timer no deadline would be kept.
                anyhow::bail!("cannot set the loop's timer: {e}");
            }
            self.loop_ran = self.clock.now();
            // In this order: the disk's answers first (an answer left waiting behind a
            // datagram would be read later than it came), then agents' results, the
            // guard's news, control calls, then datagrams (a batch at a time): a flooded
            // socket delays none of the others, and after a full batch the loop yields to
            // the runtime, whose other tasks serve the control socket. The order in which
            // inputs reach the engine is the core's (`NodeCore::wake`).
            let mut busy = false;
            let woke = tokio::select! {
                biased;
                () = self.service.stop_requested() => Woke::Signal,
                Some(answer) = answers.recv() => Woke::Answer(answer),
                Some(result) = done.recv() => Woke::Done(result),
                Some(news) = guard_news.recv() => Woke::Guard(news),
                Some(call) = calls.recv() => Woke::Call(call),
                link = self.links.receive() => Woke::Packets(link),
                () = self.timer.expired() => Woke::Timer,
            };
            let now = self.clock.now();
            if self.core.guard_passed(now) {
                // The loop did not run past the guard's deadline (paused, hung): nothing
                // is taken in; the core says it stalled at once (`settle`).
                continue;
            }
            match woke {
                Woke::Signal => signals += 1,
                Woke::Answer(answer) => self.disk_answers(now, vec![answer]),
                Woke::Done(result) => self.on_done(result),
                Woke::Call(call) => self.on_call(call),
                Woke::Packets(link) => {
                    self.on_packets(link);
                    busy = self.links.batch_full();
                }
                Woke::Guard(GuardNews::Fired) => {
                    self.guard_fired = true;
                    self.core.guard_fired(now);
                }
                Woke::Guard(GuardNews::Keeps { sent, kept }) => {
                    let (sent, kept) = (Instant::from_nanos(sent), Instant::from_nanos(kept));
                    self.core.guard_keeps(sent, kept);
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
            if signals == 1 && self.core.shutdown_by().is_none() {
                tracing::info!("stop signal: handing groups over, then exiting");
                self.core.stop_signal(now);
            } else if signals > 1 {
                self.stopped("second stop signal: exiting at once, the fence guard stays armed");
                return Ok(());
            }
            self.on_time(now);
        }
    }

    /// A wake-up: what waited for it goes to the core (quiet disk answers, monitors that
    /// found their resources running), then the shell's own periodic work.
    fn on_time(&mut self, now: Instant) {
        let quiet = self.disk.as_mut().map(|d| d.io.quiet_answers()).unwrap_or_default();
        let quiet_ops: Vec<_> =
            self.agents.quiet().into_iter().map(|done| self.log_done(done)).collect();
        self.core.wake(now, quiet, quiet_ops, &mut decoder(&mut self.disk, &mut self.seen));
        if let Some(interval) = self.service.watchdog_interval() {
            if now >= self.next_watchdog {
                self.service.feed_watchdog();
                self.next_watchdog = now + interval;
            }
        }
        for (code, message) in self.links.news(&self.spec, now) {
            self.journal_own(code, None, message);
        }
        self.seen.flush(std::time::Instant::now());
        if let Some(why) = self.seen.take_failure() {
            self.journal_own(&catalogue::SEEN_UNKEPT, None, format!("cannot write {why}"));
        }
    }

    /// Disk answers read at `now` go to the core.
    fn disk_answers(&mut self, now: Instant, answers: Vec<diskio::Answer>) {
        let mut decode = decoder(&mut self.disk, &mut self.seen);
        for answer in answers {
            let (ended, lease) = (answer.done_at.0, &answer.done.lease);
            tracing::debug!(
                id = answer.id,
                ended,
                now = now.0,
                "disk job done, lease I/O: {lease:?}"
            );
            self.metrics.disk_job_done(answer.id, answer.done_at);
            self.core.disk_answer(now, answer, &mut decode);
        }
    }

    /// Carries out what the core asks until it waits; then what this turn journaled
    /// goes to the writer thread. `Some` when the daemon must exit after a stop signal.
    fn settle(&mut self) -> Option<AfterStop> {
        let exit = loop {
            let now = self.clock.now();
            match self.core.poll(now) {
                Action::Wait(at) => {
                    self.wait_until = at;
                    break None;
                }
                Action::Exit(how) => break Some(how),
                action => self.carry_out(now, action),
            }
        };
        self.alerts.journal_reports(&mut self.journal);
        if self.core.engine().admin_state() != &self.admin_saved {
            self.admin_saved = self.core.engine().admin_state().clone();
            self.journal.save_admin(&self.admin_saved);
        }
        // What this turn journaled goes to the writer thread as one batch; answers to
        // the commands it took go out once that batch (and admin.json) is durable.
        for (answer_tx, mut answer) in self.replies.drain(..) {
            self.journal.after_durable(move |written| {
                if let Err(e) = written {
                    answer.journal_error = Some(e);
                }
                let _ = answer_tx.send(answer);
            });
        }
        self.journal.commit();
        exit
    }

    fn carry_out(&mut self, now: Instant, action: Action) {
        match action {
            Action::Send { link, to, message } => self.send_heartbeat(link, to, &message),
            Action::DiskJob { id, plan, deadline, reads_after } => {
                self.disk_job(now, id, plan, deadline, reads_after);
            }
            Action::DiskStuck => {
                if let Some(disk) = self.disk.as_mut() {
                    disk.io.abandon();
                }
            }
            Action::DiskPrompt(on) => {
                let Some(disk) = self.disk.as_mut() else { return };
                disk.io.set_prompt_mode(on);
                if on {
                    // Entering prompt mode: the quiet answers already given are read now.
                    let quiet = disk.io.quiet_answers();
                    self.disk_answers(now, quiet);
                }
            }
            Action::ToWitness(_) => {
                unreachable!("the daemon refuses witness arbitration at its start")
            }
            Action::Operation { id, group, resource, op, timeout } => {
                self.agents.start(id, group, resource, op, timeout);
            }
            Action::ArmFence { deadline, keep_earlier } => self.guard.arm(deadline, keep_earlier),
            Action::LockStandby { group } => self.lock_standby(group),
            Action::LeaseAnswered { request, result } => {
                tracing::debug!(now = now.0, "lease reply to {request:?}: {result:?}");
                if let Some(engine::LeaseRequest::Renew | engine::LeaseRequest::Park) = request {
                    let granted = matches!(result, engine::LeaseResult::Granted { .. });
                    self.metrics.renewal(granted);
                }
            }
            Action::Event(event) => self.on_event(&event),
            Action::SelfFence { reason } => self.self_fence(&reason),
            Action::Stalled { deadline } => {
                let how = match self.guard_fired {
                    true => "a renewal reached it too late",
                    false => "its deadline passed",
                };
                self.stalled(self.clock.now(), deadline, how)
            }
            Action::Exit(_) | Action::Wait(_) => unreachable!("handled by settle"),
        }
    }

    /// Hands disk job `id` to the worker, our heartbeat slot encoded; a job no worker
    /// can take is answered as failed at once.
    fn disk_job(
        &mut self,
        now: Instant,
        id: u64,
        plan: JobPlan,
        deadline: Instant,
        reads_after: Instant,
    ) {
        let stamp = self.config_stamp();
        let Some(disk) = self.disk.as_mut() else { return };
        tracing::debug!(id, now = now.0, "disk job, lease I/O: {:?}", plan.lease);
        self.metrics.disk_job_issued(id, now);
        let mut job = diskio::Job {
            lease: plan.lease.clone(),
            slot: None,
            peers: plan.peers,
            mail: plan.mail,
            time_writes: plan.time_writes,
        };
        let mut too_large = None;
        if let Some(message) = &plan.slot {
            let link = disk.link;
            let route = wire::Route { link, to: None };
            match wire::encode_with_config(
                &self.key,
                self.cluster_id,
                route,
                message,
                stamp.as_ref(),
            ) {
                Ok(frame) if frame.len() <= diskarea::HEARTBEAT_BYTES_MAX => {
                    job.slot = Some((message.sequence, frame));
                    self.metrics.heartbeat_sent(&self.spec.link(link).name);
                }
                Ok(frame) => {
                    let max = diskarea::HEARTBEAT_BYTES_MAX;
                    too_large =
                        Some((link, format!("{} bytes, the slot holds {max}", frame.len())));
                }
                Err(e) => too_large = Some((link, e.to_string())),
            }
        }
        let answer = if job.is_empty() {
            // Only our slot was asked for, and it cannot be written: nothing to do.
            Some(DiskDone {
                lease: Vec::new(),
                slot: None,
                peers: None,
                mail: None,
                writes_done_at: None,
            })
        } else {
            disk.io
                .submit(id, deadline, reads_after, job)
                .err()
                .map(|why| DiskDone::failed(&plan, &why))
        };
        if let Some((link, why)) = too_large {
            self.core.slot_not_written();
            self.too_large(link, why);
        }
        if let Some(done) = answer {
            self.disk_answers(now, vec![DiskAnswer { id, done, done_at: now }]);
        }
    }

    fn on_event(&mut self, event: &Event) {
        let entry = journal::entry_of(&self.spec, event, wall_now());
        match event.code.severity {
            Severity::Error => tracing::error!(code = entry.code, "{}", entry.message),
            Severity::Warning => tracing::warn!(code = entry.code, "{}", entry.message),
            Severity::Info => tracing::info!(code = entry.code, "{}", entry.message),
        }
        self.alerts.offer(&entry);
        let group = event.group.map(|g| (g.0, self.spec.group(g).name.as_str()));
        self.metrics.event(event.code, group, event.at);
        self.journal.append(entry);
    }

    /// The engine's standby lock (guarantee 7): `group`'s `lock_standby` devices
    /// read-only here.
    fn lock_standby(&mut self, group: GroupId) {
        let Some(devices) = self.lock_standby.get(&group) else { return };
        self.standby.set_read_only(devices.clone());
    }

    pub(crate) fn journal_own(
        &mut self,
        code: &'static CodeInfo,
        group: Option<GroupId>,
        message: String,
    ) {
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

    fn send_heartbeat(&mut self, link: LinkId, to: NodeId, message: &Heartbeat) {
        let route = wire::Route { link, to: Some(to) };
        let stamp = self.config_stamp();
        let frame = match wire::encode_with_config(
            &self.key,
            self.cluster_id,
            route,
            message,
            stamp.as_ref(),
        ) {
            Ok(frame) => frame,
            Err(e) => return self.too_large(link, e.to_string()),
        };
        self.links.send(link, to, &frame);
        self.metrics.heartbeat_sent(&self.spec.link(link).name);
    }

    /// This node's configuration generation and hash, for its heartbeats.
    fn config_stamp(&self) -> Option<wire::ConfigStamp> {
        self.configs.as_ref().and_then(|c| c.stamp())
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

    /// An agent's answer, logged: what goes to the core.
    fn log_done(&self, done: Done) -> (engine::OpId, engine::OpResult) {
        let group = &self.spec.group(done.group);
        let resource = &group.resource(done.resource).name;
        self.metrics.operation(group.resource(done.resource).kind.as_str(), done.op, done.took);
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
        (done.id, done.result)
    }

    fn on_done(&mut self, done: Done) {
        let (id, result) = self.log_done(done);
        self.core.operation_done(id, result);
    }

    /// A batch of datagrams read from `link`: the heartbeats among them go to the core
    /// (the rest is counted by the links).
    fn on_packets(&mut self, link: LinkId) {
        let received = self.clock.now();
        let at = std::time::Instant::now();
        for message in self.links.accepted(link) {
            self.loss.entry((link, message.from)).or_default().record(&message);
            self.seen.note(message.from, message.incarnation, message.sequence, at);
            self.core.heartbeat(link, message, received);
        }
    }
}
