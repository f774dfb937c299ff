//! The lease client's state machine: requests (acquire, renew, release) become tasks
//! that step through their reads and writes (the claim path, the host-write path, the
//! watch of a dead owner before a claim, a release), I/O completions and timeouts move
//! them on, and every reply, I/O and wake-up leaves through `poll_output`. Watching
//! ahead is in `watch.rs`; the argument why it is safe in the module doc (`mod.rs`).

use std::collections::{BTreeMap, VecDeque};

use engine::{GroupId, Instant, LeaseRequest, LeaseResult, NodeId, OpId};

use super::{
    Block, ClientOutput, DiskLeaseClient, DiskLeaseConfig, GroupRecord, HostRecord, IoId, IoOp,
    IoResult, Kind, Record, Step, Task, HOST_WRITE, TASKS_MAX,
};

impl DiskLeaseClient {
    pub fn new(me: NodeId, incarnation: u64, config: DiskLeaseConfig) -> DiskLeaseClient {
        DiskLeaseClient {
            me,
            watched: Vec::new(),
            observed: BTreeMap::new(),
            watch_ios: BTreeMap::new(),
            next_watch: Instant::MAX,
            watch_rounds: 0,
            incarnation,
            config,
            counter: 0,
            held: BTreeMap::new(),
            inherited: Default::default(),
            parking: false,
            tasks: BTreeMap::new(),
            next_task: 0,
            ios: BTreeMap::new(),
            next_io: 0,
            host_flight: None,
            host_waiting: Vec::new(),
            host_write_out: None,
            writes_out: BTreeMap::new(),
            late_write_wait: None,
            out: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &DiskLeaseConfig {
        &self.config
    }

    /// The groups this node's previous run parked (its host record at start): listed in
    /// every host write until an acquire of each is granted or its release asked.
    pub fn inherit(&mut self, groups: Vec<GroupId>) {
        self.inherited.extend(groups);
    }

    /// The groups this client believes it holds.
    pub fn held(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.held.keys().copied()
    }

    /// Why no acquire may be granted at `now`, if so: a group-record write of ours (a
    /// claim or a release) is still in flight after its deadline, or finished after it
    /// less than a takeover wait ago.
    ///
    /// The protocol's argument assumes every I/O lands within the I/O timeout; a disk
    /// that stalls breaks that, and the shell cannot call a write back once it gave up
    /// on it. Such a write may land on the record of a group another node has claimed
    /// meanwhile: our own claim then names us, and our release frees it, while that node
    /// still holds the lease it was granted before. It learns of it at its next renewal
    /// (which reads the record) and stops, its lease running out at most `L/(1−ρ)` after
    /// the landing; this client is granted nothing until a takeover wait (measured from
    /// the write's end, which is no earlier than its landing) is over, which is longer.
    /// Another node that finds a record freed this way may claim it at once, though: with
    /// three nodes or more, late writes are not covered (the randomized check covers two).
    pub fn acquire_blocked(&self, now: Instant) -> Option<String> {
        if self.writes_out.values().any(|deadline| *deadline <= now) {
            return Some(
                "shared disk: a lease write of this node is still in flight after its \
                 deadline; no new lease until it finishes and a takeover wait has passed"
                    .into(),
            );
        }
        self.late_write_wait.filter(|until| now < *until).map(|until| {
            let left = until.saturating_since(now).as_millis();
            format!(
                "shared disk: a lease write of this node finished after its deadline; \
                 no new lease for {left} ms (a takeover wait from its end)"
            )
        })
    }

    pub fn request(&mut self, now: Instant, id: OpId, request: LeaseRequest) {
        if self.tasks.len() >= TASKS_MAX {
            let result = LeaseResult::Unavailable("too many lease requests in flight".into());
            self.out.push_back(ClientOutput::Reply { id, result });
            return;
        }
        if let (LeaseRequest::Acquire(_), Some(why)) = (request, self.acquire_blocked(now)) {
            self.out.push_back(ClientOutput::Reply { id, result: LeaseResult::Unavailable(why) });
            return;
        }
        let key = self.next_task;
        self.next_task += 1;
        let (kind, step, check) = match request {
            LeaseRequest::Renew => {
                self.parking = false;
                (Kind::Renew, Step::HostWrite, self.held.keys().copied().collect())
            }
            LeaseRequest::Park => {
                self.parking = true;
                (Kind::Park, Step::HostWrite, self.held.keys().copied().collect())
            }
            LeaseRequest::Acquire(g) => (Kind::Acquire(g), Step::ReadGroup, vec![g]),
            LeaseRequest::Release(g) => {
                self.held.remove(&g);
                self.inherited.remove(&g);
                // An acquire of the group still running would put it back in `held`
                // after this release (the engine gave up on it): it ends here.
                let acquiring: Vec<u64> = self
                    .tasks
                    .iter()
                    .filter(|(_, t)| t.kind == Kind::Acquire(g))
                    .map(|(k, _)| *k)
                    .collect();
                for key in acquiring {
                    self.finish(key, LeaseResult::Unavailable("superseded by a release".into()));
                }
                (Kind::Release(g), Step::ReleaseRead, Vec::new())
            }
        };
        self.tasks.insert(key, Task { id, kind, step, check, wake: None });
        match kind {
            Kind::Renew | Kind::Park => self.want_host_write(now, key),
            Kind::Acquire(g) | Kind::Release(g) => {
                self.issue(now, key, IoOp::Read(Block::Group(g)), None)
            }
        }
    }

    fn issue(&mut self, now: Instant, key: u64, op: IoOp, reads: Option<GroupId>) {
        let io = IoId(self.next_io);
        self.next_io += 1;
        if matches!(op, IoOp::Write(Block::Group(_), _)) {
            self.writes_out.insert(io, now + self.config.io_timeout);
        }
        self.ios.insert(io, (key, reads, now + self.config.io_timeout));
        self.out.push_back(ClientOutput::Io { io, op });
    }

    /// A stamp for a group-record write: unique across this node's writes and daemons.
    fn stamp(&mut self) -> (u64, u64) {
        self.counter += 1;
        (self.incarnation, self.counter)
    }

    /// Queues the task for the next host write, and issues it if none is in flight.
    fn want_host_write(&mut self, now: Instant, key: u64) {
        self.tasks.get_mut(&key).expect("task").step = Step::HostWrite;
        self.host_waiting.push(key);
        if self.host_flight.is_none() {
            self.issue_host_write(now);
        }
    }

    /// Host writes are one at a time: two in flight could land out of order, and a
    /// write that omits a group could then hide from a contender the write that listed
    /// it. Each lists the held groups and every group an acquire is claiming through
    /// the host record (from its write until it is answered).
    fn issue_host_write(&mut self, now: Instant) {
        if self.host_waiting.is_empty() {
            return;
        }
        if self.host_write_out.is_some() {
            // The last one may still land (`host_write_out`): its tasks fail, and so do
            // these, until its true end is known.
            for key in std::mem::take(&mut self.host_waiting) {
                if self.tasks.contains_key(&key) {
                    let why = "shared disk: an earlier host write of this node may still land";
                    self.finish(key, LeaseResult::Unavailable(why.into()));
                }
            }
            return;
        }
        let served = std::mem::take(&mut self.host_waiting);
        let held: Vec<GroupId> = self.held.keys().copied().collect();
        for key in &served {
            let task = self.tasks.get_mut(key).expect("waiting task");
            task.step = Step::HostWrite;
            if matches!(task.kind, Kind::Renew | Kind::Park) {
                task.check = held.clone();
            }
        }
        let mut groups = held;
        groups.extend(self.inherited.iter().copied());
        for task in self.tasks.values() {
            let via_host = matches!(
                task.step,
                Step::HostWrite | Step::HostSettle { .. } | Step::HostCheck { .. }
            );
            if let (Kind::Acquire(g), true) = (task.kind, via_host) {
                groups.push(g);
            }
        }
        groups.sort();
        groups.dedup();
        self.counter += 1;
        let record = Record::Host(HostRecord {
            incarnation: self.incarnation,
            counter: self.counter,
            groups,
            parked: self.parking,
        });
        self.host_flight = Some((served, now));
        self.host_write_out = Some(IoId(self.next_io));
        self.issue(now, HOST_WRITE, IoOp::Write(Block::Host(self.me), record), None);
    }

    /// The host write ended: its tasks settle (or fail), and the next one goes out.
    fn host_written(&mut self, now: Instant, failure: Option<String>) {
        let (served, since) = self.host_flight.take().expect("a host write in flight");
        for key in served {
            if !self.tasks.contains_key(&key) {
                continue;
            }
            match &failure {
                Some(why) => {
                    self.finish(key, LeaseResult::Unavailable(format!("shared disk: {why}")))
                }
                None => {
                    let task = self.tasks.get_mut(&key).expect("checked");
                    task.step = Step::HostSettle { since };
                    task.wake = Some(now + self.config.settle);
                }
            }
        }
        self.issue_host_write(now);
    }

    fn finish(&mut self, key: u64, result: LeaseResult) {
        let task = self.tasks.remove(&key).expect("finished task exists");
        self.ios.retain(|_, (k, _, _)| *k != key);
        self.host_waiting.retain(|k| *k != key);
        self.out.push_back(ClientOutput::Reply { id: task.id, result });
    }

    /// An I/O ended at `ended` (on this clock) and its result is read `now` (a shell
    /// that reads answers as they come gives the same instant twice; one that reads
    /// them later, see [`DiskLeaseClient::next_step_at`], gives each its true end).
    ///
    /// A task (acquire, renewal, release) goes on from `ended`, as if the answer had been
    /// read then: the I/O it issues next takes its deadline from there. Fischer's step
    /// needs that for a claim, which must land within an I/O timeout of the read that
    /// found the group free (every contender's settle counts on it). So a shell that
    /// reads answers late must read those of acquires and releases as they come (the
    /// daemon's prompt mode): otherwise an I/O's deadline could pass before it is even
    /// issued, and the task would fail with that I/O still to land (a claim, or a host
    /// write that could then land after the next one). Watching ahead only reads: what
    /// it saw counts from `ended`, and its next read goes out `now` with a deadline from
    /// `now` (with one from `ended`, a read issued on a late answer would count as failed
    /// at once, and every observation would be dropped).
    ///
    /// `ended` must be true: never later than the I/O really ended. A shell that learns
    /// of an I/O only long after (its loop was stopped) must count it as failed once its
    /// deadline has passed, as the daemon's disk worker does (`diskio`): a claim read
    /// that found the group free before a stop, handed over after it as if it had just
    /// ended, would lead to a claim over the one a peer made meanwhile (found by the
    /// simulator, active-standby seed 273).
    pub fn io_done(&mut self, now: Instant, ended: Instant, io: IoId, result: IoResult) {
        let ended = ended.min(now);
        if !matches!(result, IoResult::Unfinished(_)) {
            if self.host_write_out == Some(io) {
                self.host_write_out = None;
            }
            if let Some(deadline) = self.writes_out.remove(&io) {
                if ended >= deadline {
                    let until = ended + self.config.takeover_wait;
                    self.late_write_wait =
                        Some(self.late_write_wait.map_or(until, |u| u.max(until)));
                }
            }
        }
        if let Some((group, before, _)) = self.watch_ios.remove(&io) {
            self.watch_done(now, ended, group, before, result);
            return;
        }
        let now = ended;
        let Some((key, reads, _)) = self.ios.remove(&io) else {
            return; // timed out earlier, or its task ended
        };
        if key == HOST_WRITE {
            let failure = match result {
                IoResult::Failed(why) | IoResult::Unfinished(why) => Some(why),
                _ => None,
            };
            self.host_written(now, failure);
            return;
        }
        let record = match result {
            IoResult::Failed(why) | IoResult::Unfinished(why) => {
                self.finish(key, LeaseResult::Unavailable(format!("shared disk: {why}")));
                return;
            }
            IoResult::Read(record) => record,
            IoResult::Written => Record::Blank,
        };
        self.step_done(now, key, reads, record);
    }

    /// A task's I/O ended at `now` with `record` (blank for a write): its next step.
    /// `reads` is the group a host check read.
    fn step_done(&mut self, now: Instant, key: u64, reads: Option<GroupId>, record: Record) {
        let task = self.tasks.get_mut(&key).expect("io of a live task");
        let me = self.me;
        match task.step.clone() {
            Step::HostWrite => unreachable!("host writes complete in host_written"),
            Step::HostSettle { .. } => unreachable!("no I/O while settling"),
            Step::HostCheck { since, pending, mut lost, mut other } => {
                let group = reads.expect("host checks read a group");
                let owner = record.owner();
                if owner != Some(me) {
                    lost.push(group);
                    other = other.or(owner);
                }
                let pending = pending - 1;
                if pending > 0 {
                    task.step = Step::HostCheck { since, pending, lost, other };
                } else {
                    self.host_checked(now, key, since, lost, other);
                }
            }
            Step::ReadGroup => self.group_read(now, key, record),
            step @ Step::Watch { .. } => self.watch_read(now, key, step, record),
            Step::ClaimRead { expected } => match record.owner() {
                None => self.claim(now, key),
                _ if record == expected => self.claim(now, key),
                Some(owner) if owner == me => self.want_host_write(now, key),
                holder => self.finish(key, LeaseResult::Denied { holder }),
            },
            Step::ClaimWrite { since } => {
                task.step = Step::ClaimSettle { since };
                task.wake = Some(now + self.config.settle);
            }
            Step::ClaimSettle { .. } => unreachable!("no I/O while settling"),
            Step::ClaimCheck { since } => {
                let Kind::Acquire(group) = task.kind else { unreachable!("only acquires claim") };
                match (record.owner(), self.acquire_blocked(now)) {
                    (Some(_), Some(why)) => self.finish(key, LeaseResult::Unavailable(why)),
                    (Some(owner), None) if owner == me => {
                        self.held.insert(group, since);
                        self.inherited.remove(&group);
                        let since = self.earliest_covered(since);
                        self.finish(key, LeaseResult::Granted { since });
                    }
                    (holder, _) => self.finish(key, LeaseResult::Denied { holder }),
                }
            }
            Step::ReleaseRead => {
                let Kind::Release(group) = task.kind else { unreachable!("only releases") };
                if record.owner() == Some(me) {
                    task.step = Step::ReleaseWrite;
                    let free = Record::Group(GroupRecord { owner: None, stamp: self.stamp() });
                    self.issue(now, key, IoOp::Write(Block::Group(group), free), None);
                } else {
                    self.finish(key, LeaseResult::Released);
                }
            }
            Step::ReleaseWrite => self.finish(key, LeaseResult::Released),
        }
    }

    /// An acquire read the group's record: claim it if free, else watch its owner (from
    /// what watching ahead saw, when the record is unchanged since).
    fn group_read(&mut self, now: Instant, key: u64, record: Record) {
        let task = self.tasks.get_mut(&key).expect("io of a live task");
        let me = self.me;
        match record.owner() {
            None => self.claim(now, key),
            Some(owner) if owner == me => self.want_host_write(now, key),
            Some(owner) => {
                // Watched ahead and unchanged since: the window is already open.
                let group = match task.kind {
                    Kind::Acquire(g) => g,
                    _ => unreachable!("only acquires read the group first"),
                };
                task.step = match self.observed.get(&group) {
                    Some(seen) if seen.record == record && seen.owner == owner => Step::Watch {
                        owner,
                        record,
                        version: Some(seen.version),
                        first_seen: seen.first_seen,
                        read_at: now,
                        ahead: true,
                    },
                    _ => Step::Watch {
                        owner,
                        record,
                        version: None,
                        first_seen: now,
                        read_at: now,
                        ahead: false,
                    },
                };
                self.issue(now, key, IoOp::Read(Block::Host(owner)), None);
            }
        }
    }

    /// An acquire's watch read the owner's host record: the window opens, runs on, or
    /// the owner renewed and the acquire is denied.
    fn watch_read(&mut self, now: Instant, key: u64, step: Step, record: Record) {
        let task = self.tasks.get_mut(&key).expect("io of a live task");
        let Step::Watch { owner, record: before, version, first_seen, read_at, ahead } = step
        else {
            unreachable!("only a watching task reads the owner's host record")
        };
        let Kind::Acquire(group) = task.kind else { unreachable!("only acquires watch") };
        if record.parks(group) {
            // Its owner stopped in maintenance and left it running: never dead.
            self.finish(key, LeaseResult::Denied { holder: Some(owner) });
            return;
        }
        let seen = record.version_for(group);
        // The window starts when the first read completes; and again from this
        // read when an observation made ahead turns out old (the group record
        // `before` was read before it).
        match version.filter(|v| !(ahead && *v != seen)) {
            None => {
                task.step = Step::Watch {
                    owner,
                    record: before,
                    version: Some(seen),
                    first_seen: now,
                    read_at,
                    ahead: false,
                };
                task.wake = Some(now + self.config.watch_poll_interval);
            }
            Some(v) if v != seen => {
                self.finish(key, LeaseResult::Denied { holder: Some(owner) });
            }
            Some(_) if read_at.saturating_since(first_seen) >= self.config.takeover_wait => {
                task.step = Step::ClaimRead { expected: before };
                self.issue(now, key, IoOp::Read(Block::Group(group)), None);
            }
            Some(_) => {
                // Poll on, and read again the moment the window is long enough.
                let due = first_seen + self.config.takeover_wait;
                task.wake = Some((now + self.config.watch_poll_interval).min(due).max(now));
            }
        }
    }

    /// Fischer's step: write our claim right after the read that found the group free.
    fn claim(&mut self, now: Instant, key: u64) {
        let task = self.tasks.get_mut(&key).expect("task");
        let Kind::Acquire(group) = task.kind else { unreachable!("only acquires claim") };
        task.step = Step::ClaimWrite { since: now };
        let record = Record::Group(GroupRecord { owner: Some(self.me), stamp: self.stamp() });
        self.issue(now, key, IoOp::Write(Block::Group(group), record), None);
    }

    /// The `since` to report: no later than the latest write covering each held group,
    /// because the engine keeps one lease for all its groups and extends it with every
    /// grant (acquire or renewal).
    fn earliest_covered(&self, since: Instant) -> Instant {
        self.held.values().copied().min().map_or(since, |c| c.min(since))
    }

    fn host_checked(
        &mut self,
        now: Instant,
        key: u64,
        since: Instant,
        lost: Vec<GroupId>,
        other: Option<NodeId>,
    ) {
        let task = &self.tasks[&key];
        match task.kind {
            Kind::Renew | Kind::Park => {
                for g in &task.check {
                    if !lost.contains(g) {
                        if let Some(covered) = self.held.get_mut(g) {
                            *covered = (*covered).max(since);
                        }
                    }
                }
                for g in &lost {
                    self.held.remove(g);
                }
                let result = if lost.is_empty() {
                    LeaseResult::Granted { since: self.earliest_covered(since) }
                } else {
                    LeaseResult::Lost { groups: lost }
                };
                self.finish(key, result);
            }
            Kind::Acquire(group) => {
                if let Some(why) = self.acquire_blocked(now) {
                    self.finish(key, LeaseResult::Unavailable(why));
                } else if lost.is_empty() {
                    self.held.insert(group, since);
                    self.inherited.remove(&group);
                    let since = self.earliest_covered(since);
                    self.finish(key, LeaseResult::Granted { since });
                } else {
                    self.finish(key, LeaseResult::Denied { holder: other });
                }
            }
            Kind::Release(_) => unreachable!("releases do not write the host record"),
        }
    }

    pub fn timeout(&mut self, now: Instant) {
        let late: Vec<(IoId, GroupId)> = self
            .watch_ios
            .iter()
            .filter(|(_, (_, _, deadline))| *deadline <= now)
            .map(|(io, (g, _, _))| (*io, *g))
            .collect();
        for (io, group) in late {
            self.watch_ios.remove(&io);
            self.observed.remove(&group);
        }
        if self.next_watch_round() <= now {
            self.watch_round(now);
        }
        let expired: Vec<(IoId, u64)> = self
            .ios
            .iter()
            .filter(|(_, (_, _, deadline))| *deadline <= now)
            .map(|(io, (k, _, _))| (*io, *k))
            .collect();
        for (io, key) in expired {
            if key == HOST_WRITE {
                self.ios.remove(&io);
                self.host_written(now, Some("I/O timed out".into()));
            } else if self.tasks.contains_key(&key) {
                self.finish(key, LeaseResult::Unavailable("shared disk: I/O timed out".into()));
            }
        }
        let due: Vec<u64> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.wake.is_some_and(|w| w <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let task = self.tasks.get_mut(&key).expect("due task");
            task.wake = None;
            match task.step.clone() {
                Step::HostSettle { since } => {
                    let check = task.check.clone();
                    if check.is_empty() {
                        self.host_checked(now, key, since, Vec::new(), None);
                        continue;
                    }
                    task.step = Step::HostCheck {
                        since,
                        pending: check.len() as u32,
                        lost: Vec::new(),
                        other: None,
                    };
                    for g in check {
                        self.issue(now, key, IoOp::Read(Block::Group(g)), Some(g));
                    }
                }
                Step::Watch { owner, record, version, first_seen, ahead, .. } => {
                    task.step =
                        Step::Watch { owner, record, version, first_seen, read_at: now, ahead };
                    self.issue(now, key, IoOp::Read(Block::Host(owner)), None);
                }
                Step::ClaimSettle { since } => {
                    let Kind::Acquire(group) = task.kind else { unreachable!("only acquires") };
                    task.step = Step::ClaimCheck { since };
                    self.issue(now, key, IoOp::Read(Block::Group(group)), None);
                }
                other => unreachable!("a task woke in step {other:?}"),
            }
        }
    }

    pub fn poll_output(&mut self) -> ClientOutput {
        if let Some(out) = self.out.pop_front() {
            return out;
        }
        let deadlines = self.ios.values().map(|(_, _, d)| *d);
        let watching = self.watch_ios.values().map(|(_, _, d)| *d);
        ClientOutput::Wait(deadlines.chain(watching).fold(self.next_step_at(), Instant::min))
    }

    /// When the client next acts by itself (a settle ends, a watch round is due), leaving
    /// out the deadlines of its outstanding I/O. A shell that answers every I/O itself —
    /// as failed once its deadline has passed, with the true completion instant
    /// otherwise ([`DiskLeaseClient::io_done`]'s `ended`), before it calls
    /// [`DiskLeaseClient::timeout`] at every wake-up — may wait for this instead of
    /// [`ClientOutput::Wait`]: an I/O failure is then learned later, which only delays
    /// what follows it (a lease counts from the issue of its write, and every window is
    /// bounded by I/O the client saw complete).
    pub fn next_step_at(&self) -> Instant {
        let (tasks, watch) = self.next_steps();
        tasks.min(watch)
    }

    /// [`DiskLeaseClient::next_step_at`] in two: when a task (an acquire, renewal or
    /// release) next acts by itself, and when the next watch round is due.
    pub fn next_steps(&self) -> (Instant, Instant) {
        let tasks = self.tasks.values().filter_map(|t| t.wake).fold(Instant::MAX, Instant::min);
        (tasks, self.next_watch_round())
    }
}
