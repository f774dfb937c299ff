//! The whole node between the engine and the sockets, as one sans-IO state machine
//! ([`NodeCore`]) that the daemon's loop and the simulator both drive: the shell hands
//! it what arrived (decoded heartbeats, agents' results, the disk worker's answers,
//! admin commands, a stop signal, the guard's news) and the time, and carries out the
//! [`Action`]s it polls until [`Action::Wait`]. Everything the node decides is here or
//! in the engine: the engine's outputs, the lease client and its driving
//! ([`LeaseDriver`]), the disk jobs (their schedule, [`DiskSchedule`]; their deadlines,
//! [`Jobs`]; when their reads may start; which slots are news, [`SlotReader`]), the disk
//! path's verdict ([`StoragePath`]), the loop's wake-up ([`Deadlines`]), the fence
//! guard's deadline as the loop must check it, and the exit after a stop signal
//! ([`after_stop_signal`]). What stays in a shell is what touches the host: sockets and
//! the wire encoding, the disk worker's I/O, the guard process, agents, the journal.
//!
//! **One wake-up.** A shell that woke (any cause) hands over what woke it
//! ([`NodeCore::heartbeat`], [`NodeCore::operation_done`], [`NodeCore::disk_answer`],
//! ...), then calls [`NodeCore::wake`] with the answers that waited for the wake-up
//! (quiet disk answers, quiet monitors), then polls. The order of a wake-up is the
//! core's: the lease client's news first (a renewal granted since the last wake-up must
//! be known when the engine next ticks: the first input handled at or after a heartbeat
//! tick makes it tick), then overdue disk jobs, the engine's timeout, and only then what
//! woke the loop.
//!
//! **The fence guard.** The guard enforces the last deadline it was given whether or not
//! its daemon runs. Before every input and at every wake-up the core checks that
//! deadline; past it (the loop did not run: paused, hung) it does nothing more and says
//! [`Action::Stalled`]: the guard has fired, another node may run the groups.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use arbiter::disk::{Block, IoId, IoOp, IoResult, Record};
use arbiter::witness::{WitnessReply, WitnessRequest};
use engine::{
    AdminCommand, ClusterSpec, Engine, Event, GroupId, Heartbeat, Input, Instant, LeaseRequest,
    LeaseResult, LinkId, LinkKind, NodeId, OpId, OpKind, OpResult, Output, ResourceId, Status,
};

use crate::disk::{DiskSchedule, JobPlan};
use crate::driver::{Drive, LeaseDriver};
use crate::jobs::{JobShape, Jobs, Verdict};
use crate::lease::LeaseClient;
use crate::shutdown::{after_stop_signal, AfterStop};
use crate::slots::SlotReader;
use crate::storage::StoragePath;
use crate::timing::{disk_io_timeout, quiet_renewals, Deadlines, READ_HOLD_DIVISOR};

/// The decision core a node runs: the engine (`engine::Engine`, the only implementation
/// outside tests). A trait so that the simulator's own tests can run deliberately broken
/// cores; each method forwards to the engine's API of the same name.
pub trait Core {
    fn start(spec: Arc<ClusterSpec>, me: NodeId, incarnation: u64, now: Instant) -> Self;
    fn handle(&mut self, now: Instant, input: Input);
    fn poll_output(&mut self) -> Output;
    fn status(&self, now: Instant) -> Status;
    /// After `Input::Shutdown`: nothing left here that the daemon must stop; it may exit.
    fn is_quiescent(&self) -> bool;
    /// The administrative state the core holds (diagnostics).
    fn admin_state(&self) -> Option<engine::AdminState> {
        None
    }
    /// Restore the administrative state kept from the previous run on this node.
    fn restore_admin(&mut self, _admin: &engine::AdminState) {}
    /// The groups whose leases the previous run on this node parked.
    fn parked_at_start(&mut self, _groups: &[GroupId]) {}
    /// Leaving in maintenance, the leases were parked (the resources run on).
    fn leases_parked(&self) -> bool {
        false
    }
    /// Why the core wants to be woken at or before `at` (diagnostics of busy loops).
    fn due_at(&self, _at: Instant) -> Vec<String> {
        Vec::new()
    }
}

impl Core for Engine {
    fn start(spec: Arc<ClusterSpec>, me: NodeId, incarnation: u64, now: Instant) -> Self {
        Engine::new(spec, me, incarnation, now)
    }
    fn handle(&mut self, now: Instant, input: Input) {
        Engine::handle(self, now, input)
    }
    fn poll_output(&mut self) -> Output {
        Engine::poll_output(self)
    }
    fn status(&self, now: Instant) -> Status {
        Engine::status(self, now)
    }
    fn is_quiescent(&self) -> bool {
        Engine::is_quiescent(self)
    }
    fn due_at(&self, at: Instant) -> Vec<String> {
        Engine::due_at(self, at)
    }
    fn restore_admin(&mut self, admin: &engine::AdminState) {
        Engine::restore_admin(self, admin)
    }
    fn parked_at_start(&mut self, groups: &[GroupId]) {
        Engine::parked_at_start(self, groups)
    }
    fn leases_parked(&self) -> bool {
        Engine::leases_parked(self)
    }
    fn admin_state(&self) -> Option<engine::AdminState> {
        Some(Engine::admin_state(self).clone())
    }
}

/// The rules of the core that the simulator's tests replace by broken ones, to show
/// that the checkers catch a bug in the node core (not only in the engine). Production
/// code uses [`Rules::default`].
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// The exit after a stop signal.
    pub after_stop: fn(Option<Instant>, Instant, bool) -> AfterStop,
    /// Whether a disk job that ended at `done_at` missed its `deadline` (its results
    /// then count as failed however late they are read).
    pub missed: fn(done_at: Instant, deadline: Instant) -> bool,
    /// Whether the fence guard's `deadline` has passed at `now` (the loop then stalls).
    pub guard_passed: fn(deadline: Instant, now: Instant) -> bool,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            after_stop: after_stop_signal,
            missed: |done_at, deadline| done_at > deadline,
            guard_passed: |deadline, now| now >= deadline,
        }
    }
}

/// Every peer's disk heartbeat slot as read (`None`: never written).
pub type Slots<S> = Vec<(NodeId, Option<S>)>;

/// A disk job's results, one per part asked for; `S` is a heartbeat slot as the shell
/// reads it (its bytes in the daemon).
#[derive(Clone, Debug)]
pub struct DiskDone<S> {
    pub lease: Vec<(IoId, IoResult)>,
    pub slot: Option<Result<(), String>>,
    /// Every peer's slot (`None`: never written).
    pub peers: Option<Result<Slots<S>, String>>,
    pub mail: Option<Result<Record, String>>,
    /// When the job's lease writes had all completed, if that was seen before its end
    /// (its reads held back): a renewal's settle counts from its write, not from the
    /// end of the reads that rode along.
    pub writes_done_at: Option<Instant>,
}

impl<S> DiskDone<S> {
    /// Every part of `plan` failed with `why`.
    pub fn failed(plan: &JobPlan, why: &str) -> DiskDone<S> {
        DiskDone::every_part(plan, why, IoResult::Failed)
    }

    /// Every part of `plan` failed with `why`, its lease I/O still in flight (a write
    /// of it may land later: the lease client is told when the job ends).
    pub fn unfinished(plan: &JobPlan, why: &str) -> DiskDone<S> {
        DiskDone::every_part(plan, why, IoResult::Unfinished)
    }

    fn every_part(plan: &JobPlan, why: &str, lease: fn(String) -> IoResult) -> DiskDone<S> {
        DiskDone {
            lease: plan.lease.iter().map(|(io, _)| (*io, lease(why.into()))).collect(),
            slot: plan.slot.as_ref().map(|_| Err(why.into())),
            peers: plan.peers.then(|| Err(why.into())),
            mail: plan.mail.then(|| Err(why.into())),
            writes_done_at: None,
        }
    }

    /// No part: nothing was asked of the disk.
    pub fn is_empty(&self) -> bool {
        self.lease.is_empty() && self.slot.is_none() && self.peers.is_none() && self.mail.is_none()
    }

    /// Whether any I/O of the job failed (for the storage path's verdict).
    pub fn failed_any(&self) -> bool {
        let lease = self
            .lease
            .iter()
            .any(|(_, r)| matches!(r, IoResult::Failed(_) | IoResult::Unfinished(_)));
        lease
            || self.slot.as_ref().is_some_and(Result::is_err)
            || self.peers.as_ref().is_some_and(Result::is_err)
            || self.mail.as_ref().is_some_and(Result::is_err)
    }
}

/// The disk worker's answer to job `id`, which it ended at `done_at`.
#[derive(Clone, Debug)]
pub struct DiskAnswer<S> {
    pub id: u64,
    pub done: DiskDone<S>,
    pub done_at: Instant,
}

impl JobShape for JobPlan {
    fn has_lease_io(&self) -> bool {
        !self.lease.is_empty()
    }
    fn writes_lease(&self) -> bool {
        self.lease.iter().any(|(_, op)| matches!(op, IoOp::Write(..)))
    }
}

/// What the shell must do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send this heartbeat on the UDP link `link` to `to`.
    Send { link: LinkId, to: NodeId, message: Heartbeat },
    /// Hand job `id` to the disk worker: no I/O of it may start at or after `deadline`,
    /// no read before `reads_after`; answer with [`NodeCore::disk_answer`] (at once,
    /// failed, if no worker can take it).
    DiskJob { id: u64, plan: JobPlan, deadline: Instant, reads_after: Instant },
    /// Jobs missed their deadlines: the worker holding them may be blocked in the
    /// kernel; the next job goes to a new one.
    DiskStuck,
    /// Whether the disk worker's answers must wake the loop from now on. Entering it,
    /// the shell hands over the quiet answers already given ([`NodeCore::disk_answer`]).
    DiskPrompt(bool),
    /// A message for the witness.
    ToWitness(WitnessRequest),
    /// Run an agent operation; answer with [`NodeCore::operation_done`].
    Operation { id: OpId, group: GroupId, resource: ResourceId, op: OpKind, timeout: Duration },
    /// Give the fence guard this deadline (see `engine::Output::ArmFence`).
    ArmFence { deadline: Option<Instant>, keep_earlier: bool },
    /// Set `group`'s `lock_standby` devices read-only on this host.
    LockStandby { group: GroupId },
    /// The engine answered a lease request: for the shell's log (and the simulator's
    /// checkers); nothing to carry out.
    LeaseAnswered { request: Option<LeaseRequest>, result: LeaseResult },
    /// Journal this event.
    Event(Event),
    /// The node fences itself: the guard stops everything now and the daemon exits.
    /// Nothing more comes.
    SelfFence { reason: String },
    /// The guard's deadline passed while the loop did not run: the guard fired. Nothing
    /// more comes; the daemon starts again (a new incarnation) once the guard is done.
    Stalled { deadline: Instant },
    /// After a stop signal: exit now (see [`AfterStop`]). Nothing more comes.
    Exit(AfterStop),
    /// Nothing to do before `at` (or until something arrives).
    Wait(Instant),
}

/// The disk link's side of the core.
struct DiskSide<S> {
    /// The disk heartbeat link (a configuration with disk arbitration has one; the
    /// simulator's test clusters may not).
    link: Option<LinkId>,
    schedule: DiskSchedule,
    jobs: Jobs<JobPlan>,
    slots: SlotReader<S>,
    path: StoragePath,
    /// As last told to the shell ([`Action::DiskPrompt`]).
    prompt: bool,
}

/// One node: the engine and everything between it and the sockets. `C` is the engine,
/// `S` a disk heartbeat slot as the shell reads it.
pub struct NodeCore<C, S> {
    spec: Arc<ClusterSpec>,
    me: NodeId,
    rules: Rules,
    engine: C,
    lease: LeaseDriver,
    disk: Option<DiskSide<S>>,
    inputs: VecDeque<Input>,
    actions: VecDeque<Action>,
    /// The lease requests in flight (for [`Action::LeaseAnswered`]).
    requests: BTreeMap<OpId, LeaseRequest>,
    engine_wait: Instant,
    /// The engine may have outputs: poll it before waiting.
    dirty: bool,
    /// In the middle of the engine's outputs for the last input.
    draining: bool,
    /// The disk path's verdict as the engine was last told it (it starts out up).
    path_told: bool,
    shutdown_by: Option<Instant>,
    /// A heartbeat went in this settle (a watch round nearly due goes with it).
    beat_now: bool,
    /// The deadline the fence guard enforces, as far as the loop knows.
    guard: Option<Instant>,
    /// Nothing more is done (self-fenced, stalled, exited).
    halted: bool,
}

impl<C: Core, S: PartialEq + Clone> NodeCore<C, S> {
    /// Node `me` of `spec`, started at `now` with `incarnation`; `io_timeout`: the disk
    /// lease client's (`None`: the daemon's, [`disk_io_timeout`]).
    pub fn new(
        spec: Arc<ClusterSpec>,
        me: NodeId,
        incarnation: u64,
        now: Instant,
        io_timeout: Option<Duration>,
        witness_reply_timeout: Duration,
    ) -> NodeCore<C, S> {
        let io_timeout = io_timeout.unwrap_or_else(|| disk_io_timeout(&spec.timing));
        // A disk client watches ahead the groups this node may run, so that a takeover
        // waits only for the lease to run out (arbiter::disk, "Watching ahead").
        let client =
            LeaseClient::new(&spec, me, incarnation, now, io_timeout, witness_reply_timeout);
        let quiet = client.disk().is_none_or(|c| quiet_renewals(&spec.timing, c.config()));
        let link = spec.link_ids().find(|l| spec.link(*l).kind == LinkKind::Disk);
        let disk = (link.is_some() || client.disk().is_some()).then(|| DiskSide {
            link,
            schedule: DiskSchedule::new(&spec.timing),
            jobs: Jobs::new(io_timeout),
            slots: SlotReader::new(spec.nodes.len()),
            path: StoragePath::new(&spec.timing),
            prompt: false,
        });
        NodeCore {
            engine: C::start(spec.clone(), me, incarnation, now),
            lease: LeaseDriver::new(client, quiet, now),
            spec,
            me,
            rules: Rules::default(),
            disk,
            inputs: VecDeque::new(),
            actions: VecDeque::new(),
            requests: BTreeMap::new(),
            engine_wait: now,
            dirty: true,
            draining: false,
            path_told: true,
            shutdown_by: None,
            beat_now: false,
            guard: None,
            halted: false,
        }
    }

    /// The groups whose leases this node's previous run parked (it stopped in
    /// maintenance), as its arbitrator told at start (the disk: its host record). Call
    /// right after [`NodeCore::new`]. The lease client keeps them listed as this node's
    /// until the engine takes or gives back each; the engine gives back those it finds
    /// nothing of running.
    pub fn parked_at_start(&mut self, groups: Vec<GroupId>) {
        self.engine.parked_at_start(&groups);
        if let Some(client) = self.lease.disk_mut() {
            client.inherit(groups);
        }
    }

    /// Replaces the core's rules (the simulator's tests of broken cores).
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    pub fn engine(&self) -> &C {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut C {
        &mut self.engine
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The lease client (diagnostics).
    pub fn lease_client(&self) -> &LeaseClient {
        self.lease.client()
    }

    /// When the stop signal's budget runs out, once one came.
    pub fn shutdown_by(&self) -> Option<Instant> {
        self.shutdown_by
    }

    /// Nothing more will be done: the node fenced itself, stalled or exited.
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// The deadline the fence guard enforces, as far as the loop knows (diagnostics).
    pub fn guard_deadline(&self) -> Option<Instant> {
        self.guard
    }

    /// Whether the fence guard's deadline has passed at `now`: the loop did not run in
    /// time, the guard has fired, and nothing that arrives may be taken in (the next
    /// poll says [`Action::Stalled`]).
    pub fn guard_passed(&self, now: Instant) -> bool {
        let passed = self.rules.guard_passed;
        self.guard.is_some_and(|deadline| passed(deadline, now))
    }

    // ----- what arrives ------------------------------------------------------------

    /// A heartbeat on `link`, authenticated and decoded by the shell, `received` then.
    pub fn heartbeat(&mut self, link: LinkId, message: Heartbeat, received: Instant) {
        self.input(Input::Heartbeat { link, message, received });
    }

    /// An agent operation ended.
    pub fn operation_done(&mut self, id: OpId, result: OpResult) {
        self.input(Input::Operation { id, result });
    }

    /// An admin command (the shell audited it).
    pub fn admin(&mut self, command: AdminCommand) {
        self.input(Input::Admin(command));
    }

    /// The first stop signal, at `now`: hand the groups over, then exit
    /// ([`Action::Exit`]) — at the latest when the budget runs out.
    pub fn stop_signal(&mut self, now: Instant) {
        if self.shutdown_by.is_none() {
            self.shutdown_by = Some(now + self.spec.shutdown_budget());
            self.input(Input::Shutdown);
        }
    }

    /// The witness answered at `now`.
    pub fn witness_reply(&mut self, now: Instant, reply: &WitnessReply) {
        if !self.check_guard(now) {
            self.lease.witness_reply(now, reply);
            self.dirty = true;
        }
    }

    /// The guard keeps `kept` after the arm of `sent` with `keep_earlier`: the loop
    /// checks `kept`, unless it has armed another deadline since (news of the past).
    pub fn guard_keeps(&mut self, sent: Instant, kept: Instant) {
        if self.guard == Some(sent) {
            self.guard = Some(kept);
        }
    }

    /// The guard says it fired (a renewal reached it too late).
    pub fn guard_fired(&mut self, now: Instant) {
        if !self.halted {
            self.halted = true;
            self.actions.push_back(Action::Stalled { deadline: self.guard.unwrap_or(now) });
        }
    }

    fn input(&mut self, input: Input) {
        if !self.halted {
            self.inputs.push_back(input);
        }
    }

    /// The disk worker's answer, read at `now` (at once in prompt mode, else at the next
    /// wake-up). `decode` turns a peer's slot that is news into its heartbeat (the shell
    /// authenticates it; `None`: rejected).
    pub fn disk_answer(
        &mut self,
        now: Instant,
        answer: DiskAnswer<S>,
        decode: &mut dyn FnMut(NodeId, &S) -> Option<Heartbeat>,
    ) {
        if self.check_guard(now) {
            return;
        }
        let Some(disk) = self.disk.as_mut() else { return };
        let missed = self.rules.missed;
        match disk.jobs.answered_by(answer.id, answer.done_at, missed) {
            Verdict::OnTime => self.disk_done(now, answer.done, answer.done_at, decode),
            Verdict::Late(plan) => {
                let why = format!("disk I/O did not finish within {:?}", disk.jobs.timeout());
                self.disk_done(now, DiskDone::failed(&plan, &why), answer.done_at, decode);
            }
            Verdict::Ended => {
                // A job answered as unfinished at its deadline has ended: its writes may
                // have landed only now (`DiskLeaseClient::acquire_blocked`).
                self.lease.late_done(now, answer.done_at, answer.done.lease);
                self.drain_lease_client(now);
            }
            Verdict::Unknown => {}
        }
        self.dirty = true;
    }

    /// A wake-up of the loop at `now`, after what woke it was handed over: `quiet`, the
    /// disk answers that waited for it, `quiet_ops` the monitors that did.
    pub fn wake(
        &mut self,
        now: Instant,
        quiet: Vec<DiskAnswer<S>>,
        quiet_ops: Vec<(OpId, OpResult)>,
        decode: &mut dyn FnMut(NodeId, &S) -> Option<Heartbeat>,
    ) {
        if self.check_guard(now) {
            return;
        }
        self.dirty = true;
        // What woke the loop (a peer's heartbeat, say) is handled after the lease
        // client's news (module doc).
        let woke = std::mem::take(&mut self.inputs);
        for answer in quiet {
            self.disk_answer(now, answer, decode);
        }
        for (id, result) in quiet_ops {
            self.inputs.push_back(Input::Operation { id, result });
        }
        self.drain_lease_client(now);
        // At every wake-up: the deadlines of quiet I/O are not in the lease's wake-up.
        self.lease.tick(now);
        let expired = self.disk.as_mut().map(|d| d.jobs.expire(now)).unwrap_or_default();
        if !expired.is_empty() {
            self.actions.push_back(Action::DiskStuck);
            let timeout = self.disk.as_ref().map(|d| d.jobs.timeout()).unwrap_or_default();
            let why = format!("disk I/O did not finish within {timeout:?}");
            for plan in expired {
                self.disk_done(now, DiskDone::unfinished(&plan, &why), now, decode);
            }
        }
        self.drain_lease_client(now);
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
    }

    // ----- what the shell carries out ----------------------------------------------

    /// The next action at `now`. Feeds queued inputs to the engine one at a time and
    /// turns its outputs, the lease client's steps and the disk jobs into actions;
    /// [`Action::Wait`] once everything waits.
    pub fn poll(&mut self, now: Instant) -> Action {
        loop {
            if let Some(action) = self.actions.pop_front() {
                return action;
            }
            if self.halted {
                return Action::Wait(Instant::MAX);
            }
            // A stop can come anywhere, also in the middle of a turn (SIGSTOP): nothing
            // reaches the engine once the guard's deadline has passed.
            if self.check_guard(now) {
                continue;
            }
            if self.draining {
                // One engine output at a time: an engine that never settles makes
                // actions without end, never a loop in here.
                match self.engine.poll_output() {
                    Output::Wait(at) => {
                        self.engine_wait = at;
                        self.draining = false;
                        self.prompt_mode();
                        self.drain_lease_client(now);
                        if self.inputs.is_empty() {
                            // What this settle wants from the disk goes as one job.
                            self.flush_disk(now);
                        }
                    }
                    output => self.carry(now, output),
                }
                continue;
            }
            if let Some(ok) = self.disk.as_ref().map(|d| d.path.is_ok()) {
                if ok != self.path_told {
                    // The disk path's verdict changed: the engine learns the current one
                    // before anything else (never an older one queued behind it).
                    self.path_told = ok;
                    self.engine.handle(now, Input::StoragePath { ok });
                    self.draining = true;
                    continue;
                }
            }
            if self.dirty || !self.inputs.is_empty() {
                self.dirty = false;
                if let Some(input) = self.inputs.pop_front() {
                    self.engine.handle(now, input);
                }
                self.draining = true;
                continue;
            }
            let rule = self.rules.after_stop;
            match rule(self.shutdown_by, now, self.engine.is_quiescent()) {
                AfterStop::Stay => return Action::Wait(self.wake_at()),
                exit => {
                    self.halted = true;
                    return Action::Exit(exit);
                }
            }
        }
    }

    /// Past the guard's deadline at `now`: halts with [`Action::Stalled`] (once).
    fn check_guard(&mut self, now: Instant) -> bool {
        if self.halted {
            return true;
        }
        let passed = self.rules.guard_passed;
        match self.guard.filter(|deadline| passed(*deadline, now)) {
            Some(deadline) => {
                self.halted = true;
                self.inputs.clear();
                self.actions.push_back(Action::Stalled { deadline });
                true
            }
            None => false,
        }
    }

    /// Carries one engine output (not `Wait`) into the core's actions or state.
    fn carry(&mut self, now: Instant, output: Output) {
        match output {
            Output::Wait(_) => unreachable!("handled by poll"),
            Output::Heartbeat { link, to, message } => {
                self.beat_now = true;
                match self.disk.as_mut().filter(|d| d.link == Some(link)) {
                    // One slot for every peer: the schedule writes the newest.
                    Some(disk) => disk.schedule.heartbeat(now, &message),
                    None => self.actions.push_back(Action::Send { link, to, message }),
                }
            }
            Output::Operation { id, group, resource, op, timeout } => {
                self.actions.push_back(Action::Operation { id, group, resource, op, timeout });
            }
            // Without an arbitrator the answer waits in the client for
            // `drain_lease_client`, which follows every batch of outputs.
            Output::Lease { id, request } => {
                self.requests.insert(id, request);
                self.lease.request(now, id, request);
            }
            Output::ArmFence { deadline, keep_earlier } => {
                self.guard = deadline;
                self.actions.push_back(Action::ArmFence { deadline, keep_earlier });
            }
            Output::LockStandby { group } => {
                self.actions.push_back(Action::LockStandby { group });
            }
            Output::Event(event) => self.actions.push_back(Action::Event(event)),
            Output::SelfFence { reason } => {
                // The rest is never carried out.
                self.halted = true;
                self.inputs.clear();
                self.actions.push_back(Action::SelfFence { reason });
            }
        }
    }

    /// Disk answers wake the loop while an acquire or release is in flight.
    fn prompt_mode(&mut self) {
        let Some(disk) = self.disk.as_mut() else { return };
        if let Some(on) = self.lease.prompt_changed() {
            disk.prompt = on;
            self.actions.push_back(Action::DiskPrompt(on));
        }
    }

    /// The lease client's steps: its reads and writes join the disk job of this settle,
    /// in issue order; its replies go to the engine.
    fn drain_lease_client(&mut self, now: Instant) {
        if std::mem::take(&mut self.beat_now) {
            // A heartbeat went now (and the disk job with it): a watch round due within
            // half an interval goes too, instead of waking the loop and the disk again.
            self.lease.heartbeat_sent(now, self.spec.timing.heartbeat_interval / 2);
        }
        while let Some(drive) = self.lease.poll() {
            match drive {
                Drive::DiskIo { io, op, renewal_write } => {
                    if let Some(disk) = self.disk.as_mut() {
                        let job = disk.schedule.job(now);
                        job.time_writes |= renewal_write;
                        job.lease.push((io, op));
                    }
                }
                Drive::ToWitness(request) => self.actions.push_back(Action::ToWitness(request)),
                Drive::Reply { id, result } => {
                    let request = self.requests.remove(&id);
                    let answered = Action::LeaseAnswered { request, result: result.clone() };
                    self.actions.push_back(answered);
                    self.inputs.push_back(Input::Lease { id, result });
                }
            }
        }
    }

    /// The job of this settle, with what rides along, goes to the disk worker.
    fn flush_disk(&mut self, now: Instant) {
        let me = self.me;
        let Some(disk) = self.disk.as_mut() else { return };
        let Some((issued, plan)) = disk.schedule.take_job(now) else { return };
        // Prompt jobs are part of a lease step (an acquire, say): they go at once. So do
        // quiet jobs that read no peer's host record (a holder's renewal read, the
        // slots, the mailbox): what a peer writes at our tick matters to them no more
        // than what it writes a moment later. A standby's watch read waits a little
        // for a write issued elsewhere at the same tick (`READ_HOLD_DIVISOR`).
        let watches = plan
            .lease
            .iter()
            .any(|(_, op)| matches!(op, IoOp::Read(Block::Host(node)) if *node != me));
        let hold = if disk.prompt || !watches {
            Duration::ZERO
        } else {
            disk.jobs.timeout() / READ_HOLD_DIVISOR
        };
        let id = disk.jobs.submitted(issued, plan.clone());
        let deadline = issued + disk.jobs.timeout();
        self.actions.push_back(Action::DiskJob { id, plan, deadline, reads_after: issued + hold });
    }

    /// A disk job's results (or its failure), `ended` when its last I/O returned.
    fn disk_done(
        &mut self,
        now: Instant,
        done: DiskDone<S>,
        ended: Instant,
        decode: &mut dyn FnMut(NodeId, &S) -> Option<Heartbeat>,
    ) {
        let failed = done.failed_any();
        let Some(disk) = self.disk.as_mut() else { return };
        // A job left with no I/O (its only part, our slot, did not fit) says nothing
        // about the path. The engine learns the verdict when it changes (`poll`).
        if !done.is_empty() {
            disk.path.result(now, !failed);
        }
        if self.lease.client().disk().is_some() {
            // The lease protocol counts from completions: the true one (a quiet job's
            // answer is read later), never before what the client saw last. Its replies
            // go to the engine before what the rest of this job brings (the peers'
            // slots are heartbeats), see the module doc.
            self.lease.job_done(now, ended, done.writes_done_at, done.lease);
            self.drain_lease_client(now);
        }
        let Some(disk) = self.disk.as_mut() else { return };
        if done.slot.is_some() {
            disk.schedule.slot_done(now);
        }
        if let Some(peers) = done.peers {
            disk.schedule.peers_done();
            match peers {
                Ok(slots) => {
                    let written: Vec<(NodeId, S)> =
                        slots.into_iter().filter_map(|(node, slot)| Some((node, slot?))).collect();
                    let news =
                        disk.slots.read(written.iter().map(|(n, s)| (usize::from(n.0), s.clone())));
                    // Read at the job's end: the answer of a quiet job waits for the
                    // next wake-up, which must not count as hearing the peer later.
                    let received = ended.min(now);
                    for (node, slot) in written {
                        let Some(link) = disk.link else { break };
                        if news.contains(&usize::from(node.0)) {
                            if let Some(message) = decode(node, &slot) {
                                self.inputs.push_back(Input::Heartbeat { link, message, received });
                            }
                        }
                    }
                }
                Err(_) => disk.slots.failed(),
            }
        }
        if let Some(mail) = done.mail {
            if let Some(disk) = self.disk.as_mut() {
                disk.schedule.mail_done();
            }
            // A poison pill in our mailbox: the engine decides (it fences for its own
            // incarnation's).
            if let Ok(Record::Pill(pill)) = mail {
                let (incarnation, from) = (pill.incarnation, pill.from);
                self.inputs.push_back(Input::PoisonPill { incarnation, from });
            }
        }
    }

    /// The job of this settle that the shell could not write its slot into (the frame
    /// does not fit): nothing is being written.
    pub fn slot_not_written(&mut self) {
        if let Some(disk) = self.disk.as_mut() {
            disk.schedule.slot_not_written();
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
            deadlines.exact = disk.jobs.next_deadline(disk.prompt);
            if let Some(sent) = disk.jobs.quiet_lease_write(disk.prompt) {
                deadlines.expected = self.lease.expected_after(sent);
            }
        }
        if let Some(by) = self.shutdown_by {
            deadlines.soft = deadlines.soft.min(by);
        }
        deadlines.wake_at(&self.spec.timing)
    }
}
