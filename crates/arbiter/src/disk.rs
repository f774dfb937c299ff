//! Delta leases on a shared disk: the pure protocol of one node's lease client, with no
//! simulator types, so that the real daemon can drive the same state machine over real
//! block I/O. Like the engine it reads no clock and does no I/O itself: requests, I/O
//! completions and time go in ([`DiskLeaseClient::request`], [`DiskLeaseClient::io_done`],
//! [`DiskLeaseClient::timeout`]); I/O to issue, replies and the next wake-up come out of
//! [`DiskLeaseClient::poll_output`].
//!
//! The disk holds one host record per node and one group record per group:
//! - host record `{incarnation, counter, groups}`: rewritten with a new counter by every
//!   renewal, listing the groups the node claims to hold;
//! - group record `{owner, stamp}`: who holds the group (none: free), and a stamp
//!   unique to each write (the writer's incarnation and write counter), so that a
//!   record rewritten with the same owner still reads as changed.
//!
//! A grant of group g to node A at local instant `since` (the issue of A's write) always
//! follows one of two paths, and a lease is valid `lease_timeout` from `since`:
//! - **claim** (the record is free, or its owner is dead): read the record, write
//!   `owner = A`, wait `settle`, read it back; granted if it still names A (Fischer's
//!   mutual exclusion: `settle` exceeds the longest read-to-write landing time of any
//!   contender, so of two contenders at most one reads itself back);
//! - **host write** (renewal, and an acquire of a group whose record already names A, e.g.
//!   after a daemon restart): write A's host record listing g, wait `settle`, read g's
//!   record; granted if it names A.
//!
//! A contender B decides that the owner A is dead when A's host record, as far as g is
//! concerned (its counter if it lists g, "absent" otherwise), stays unchanged from the
//! completion of B's first read to the issue of a later read at least
//! `Timing::lease_takeover_wait` apart on B's clock, and g's record, read again just
//! before B's claim, is still exactly (owner and stamp) the one B read before watching:
//! a claim-path grant to A in between (say A released g and claimed it again) would
//! otherwise go unseen, as it does not touch A's host record. Why that is safe, assuming every
//! I/O lands or fails within `io_timeout` (the real daemon must enforce it): a host
//! write of A that lands inside B's window is seen; one that lands after it is followed
//! by A's read of g's record more than `settle >= 3 io_timeout` later, by which time B's
//! claim (read g, write) has landed, so A is refused (`Lost`/`Denied`); one that landed
//! before the window began was issued before it, so the lease it granted ends (even on
//! a clock 1 % slow) before the takeover wait, measured on a clock 1 % fast, runs out.
//! Listing the groups in the host record makes an abandoned claim (a request whose
//! answer nobody awaited) expire instead of being renewed forever.
//!
//! **Watching ahead** ([`DiskLeaseClient::watch`]). The watch above may start long before
//! an acquire: a client told which groups it may run polls, every watch poll interval
//! (`L/10`), each such group's record and then its owner's host record — exactly
//! the two reads an acquire's first steps do — and remembers since when (the completion
//! of the first host read that saw them) both are unchanged. Once a group is observed,
//! most rounds read only the owner's host record: the group's record read in an earlier
//! round was read before, which is all the window needs, and the claim re-reads it. An acquire whose first
//! read finds the group's record as observed continues in the watch step with that
//! window, so that a standby that learns of its peer's death after `peer_timeout` claims
//! the group as soon as the peer's lease has run out instead of a whole takeover wait
//! later. The argument above holds unchanged (the window is still bounded by reads of
//! the same records in the same order, and the claim still re-reads the group's record
//! first); if the acquire's first host read finds the record changed since the
//! observation, the window starts again once from that read. Nothing is watched beyond
//! [`WATCH_GROUPS_MAX`] groups (the cost is two reads per group per poll).
//!
//! The engine keeps one lease for all its groups and extends it with every `Granted`
//! (acquire or renewal), so every `Granted` carries the earliest `since` over the groups
//! the client holds: a group is never credited with a write that did not cover it (a
//! group granted while a renewal was in flight, an old group when a new one is claimed).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use engine::time::scale;
use engine::{GroupId, Instant, LeaseRequest, LeaseResult, NodeId, OpId, Timing};

/// Concurrent requests a client accepts; more are answered `Unavailable`.
pub const TASKS_MAX: usize = 1024;

/// Most groups watched ahead ([`DiskLeaseClient::watch`]); beyond, none is.
pub const WATCH_GROUPS_MAX: usize = 32;

/// Watching ahead reads a group's record again every this many rounds (the other rounds
/// read only its owner's host record).
pub const WATCH_GROUP_READ_EVERY: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLeaseConfig {
    pub lease_timeout: Duration,
    pub takeover_wait: Duration,
    /// Every read or write completes or fails within this (the device's promise; the
    /// client also gives up after it).
    pub io_timeout: Duration,
    /// The pause between a write and the read that checks it.
    pub settle: Duration,
    /// How often a contender reads the owner's host record.
    pub watch_poll_interval: Duration,
}

impl DiskLeaseConfig {
    pub fn new(timing: &Timing, io_timeout: Duration) -> DiskLeaseConfig {
        // Three I/O times (a contender's last host read, its group read, its claim
        // write) measured on a clock that may run 1 % fast, plus a margin.
        let ppm = 1_000_000;
        let settle = scale(io_timeout * 3, ppm + engine::CLOCK_DRIFT_PPM_MAX, ppm)
            + Duration::from_millis(1);
        DiskLeaseConfig {
            lease_timeout: timing.lease_timeout,
            takeover_wait: timing.lease_takeover_wait(),
            io_timeout,
            settle,
            watch_poll_interval: timing.lease_renew_interval() / 2,
        }
    }
}

/// A block of the lease area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Block {
    Host(NodeId),
    Group(GroupId),
    /// The node's mailbox: where a poison pill for it is left (never a lease).
    Mailbox(NodeId),
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Record {
    /// Never written.
    #[default]
    Blank,
    Host(HostRecord),
    Group(GroupRecord),
    /// In a mailbox: the node must fence itself (see [`Pill`]).
    Pill(Pill),
}

/// A poison pill (SBD's "message slot"): left in a node's mailbox by another node or an
/// operator (`tandem fence NODE`), it tells that node to stop every resource at once
/// and exit. It names the incarnation it is meant for, so a node restarted after it
/// ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pill {
    /// Who left it (`None`: an operator).
    pub from: Option<NodeId>,
    /// The target's incarnation (from its host record) when the pill was left.
    pub incarnation: u64,
    /// Wall-clock seconds when it was left (for the journal).
    pub at_unix: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRecord {
    pub incarnation: u64,
    pub counter: u64,
    /// Sorted.
    pub groups: Vec<GroupId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    pub owner: Option<NodeId>,
    /// The writer's (incarnation, write counter): unique to each write.
    pub stamp: (u64, u64),
}

impl Record {
    /// The owner a group record names (a blank record: none).
    pub fn owner(&self) -> Option<NodeId> {
        match self {
            Record::Group(g) => g.owner,
            _ => None,
        }
    }

    /// What a contender for `group` compares: the host record's version if it lists the
    /// group, `None` ("absent") otherwise.
    fn version_for(&self, group: GroupId) -> Option<(u64, u64)> {
        match self {
            Record::Host(h) if h.groups.binary_search(&group).is_ok() => {
                Some((h.incarnation, h.counter))
            }
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IoId(pub u64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoOp {
    Read(Block),
    Write(Block, Record),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoResult {
    Read(Record),
    Written,
    Failed(String),
    /// Not finished by its deadline and still in flight: a write may yet land. The
    /// shell reports the I/O again (with its true end) when it finishes.
    Unfinished(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    Io {
        io: IoId,
        op: IoOp,
    },
    Reply {
        id: OpId,
        result: LeaseResult,
    },
    /// Nothing to do before this local instant (or the next input).
    Wait(Instant),
}

#[derive(Clone, Debug)]
enum Step {
    /// Waiting for, or in, the host write (see `issue_host_write`); then settle from its
    /// issue, then read the records of `check`.
    HostWrite,
    HostSettle {
        since: Instant,
    },
    /// Reading the records of `check`; `pending` reads outstanding.
    HostCheck {
        since: Instant,
        pending: u32,
        lost: Vec<GroupId>,
        other: Option<NodeId>,
    },
    /// Acquire: the first read of the group's record.
    ReadGroup,
    /// Acquire: watching `owner`'s host record; `record` is g's record read before.
    /// `ahead`: the window comes from watching ahead; a change restarts it once.
    Watch {
        owner: NodeId,
        record: Record,
        version: Option<Option<(u64, u64)>>,
        first_seen: Instant,
        read_at: Instant,
        ahead: bool,
    },
    /// Acquire: the read before the claim; it must find `expected` (the record read
    /// before watching its dead owner) or a free record.
    ClaimRead {
        expected: Record,
    },
    ClaimWrite {
        since: Instant,
    },
    ClaimSettle {
        since: Instant,
    },
    ClaimCheck {
        since: Instant,
    },
    ReleaseRead,
    ReleaseWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Renew,
    Acquire(GroupId),
    Release(GroupId),
}

#[derive(Clone, Debug)]
struct Task {
    id: OpId,
    kind: Kind,
    step: Step,
    /// The groups a host write covers (renewal: all held; acquire: the group).
    check: Vec<GroupId>,
    wake: Option<Instant>,
}

/// What watching ahead saw of one group: its record, and its owner's host record's
/// version for it, unchanged since `first_seen`.
#[derive(Clone, Debug)]
struct Observed {
    record: Record,
    owner: NodeId,
    version: Option<(u64, u64)>,
    first_seen: Instant,
}

pub struct DiskLeaseClient {
    me: NodeId,
    /// Groups to watch ahead, and what was seen.
    watched: Vec<GroupId>,
    observed: BTreeMap<GroupId, Observed>,
    /// Watch-ahead reads in flight: the group, the group record read before (for a host
    /// read), the deadline.
    watch_ios: BTreeMap<IoId, (GroupId, Option<Record>, Instant)>,
    next_watch: Instant,
    watch_rounds: u64,
    incarnation: u64,
    config: DiskLeaseConfig,
    counter: u64,
    /// Held groups and the `since` of the latest write that covered each.
    held: BTreeMap<GroupId, Instant>,
    tasks: BTreeMap<u64, Task>,
    next_task: u64,
    /// Outstanding I/O: its task ([`HOST_WRITE`] for the shared host write), the group
    /// it reads (host checks), its deadline.
    ios: BTreeMap<IoId, (u64, Option<GroupId>, Instant)>,
    next_io: u64,
    /// The host write in flight: the tasks it serves and when it was issued.
    host_flight: Option<(Vec<u64>, Instant)>,
    /// Tasks waiting for the next host write.
    host_waiting: Vec<u64>,
    /// Group-record writes (claims, releases) not finished yet, with their deadlines;
    /// kept after their task ended. See [`DiskLeaseClient::acquire_blocked`].
    writes_out: BTreeMap<IoId, Instant>,
    /// No acquire is granted before this: a group-record write of ours finished after
    /// its deadline, and a takeover wait runs from its end.
    late_write_wait: Option<Instant>,
    out: VecDeque<ClientOutput>,
}

/// The task key of the host write (shared by the tasks it serves).
const HOST_WRITE: u64 = u64::MAX;

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
            tasks: BTreeMap::new(),
            next_task: 0,
            ios: BTreeMap::new(),
            next_io: 0,
            host_flight: None,
            host_waiting: Vec::new(),
            writes_out: BTreeMap::new(),
            late_write_wait: None,
            out: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &DiskLeaseConfig {
        &self.config
    }

    /// Watch `groups` ahead (those this node may run), from `now` on; see the module doc.
    /// More than [`WATCH_GROUPS_MAX`] groups: none is watched.
    pub fn watch(&mut self, now: Instant, mut groups: Vec<GroupId>) {
        groups.sort();
        groups.dedup();
        if groups.len() > WATCH_GROUPS_MAX {
            groups.clear();
        }
        self.observed.retain(|g, _| groups.binary_search(g).is_ok());
        self.next_watch = if groups.is_empty() { Instant::MAX } else { now };
        self.watched = groups;
    }

    /// Runs the next round of watching ahead now if it is due within `within`: a shell
    /// that goes to the disk now anyway (with a heartbeat, say) saves itself a wake-up
    /// and a disk job. Safe at any time: the window is bounded by the reads themselves,
    /// whenever they are made; an early round only shortens one poll interval.
    pub fn watch_early(&mut self, now: Instant, within: Duration) {
        if self.next_watch_round() != Instant::MAX && now + within >= self.next_watch {
            self.watch_round(now);
        }
    }

    /// When the next round of watching ahead is due: never while this node holds every
    /// group it watches (there is nothing to read; a group released or lost makes the
    /// overdue round run at once).
    fn next_watch_round(&self) -> Instant {
        if self.watched.iter().all(|g| self.held.contains_key(g)) {
            Instant::MAX
        } else {
            self.next_watch
        }
    }

    /// One round of watching ahead: the record of every watched group not held here.
    fn watch_round(&mut self, now: Instant) {
        // The window opens at the first read after the owner's last renewal, so the poll
        // period (L/10) adds up to itself to a takeover; polling faster costs a standby
        // more wake-ups at idle than it gains (measured in docs/benchmarks.md).
        self.next_watch = now + self.config.watch_poll_interval;
        let held = &self.held;
        self.observed.retain(|g, _| !held.contains_key(g));
        if !self.watch_ios.is_empty() {
            return; // the previous round is not over
        }
        self.watch_rounds += 1;
        let refresh = self.watch_rounds.is_multiple_of(WATCH_GROUP_READ_EVERY);
        let groups: Vec<GroupId> =
            self.watched.iter().copied().filter(|g| !self.held.contains_key(g)).collect();
        for g in groups {
            match self.observed.get(&g) {
                // The group's record read in an earlier round was read before this host
                // read is issued: that is all the window needs (the claim reads it again).
                Some(seen) if !refresh => {
                    let (owner, record) = (seen.owner, seen.record.clone());
                    self.issue_watch(now, g, IoOp::Read(Block::Host(owner)), Some(record));
                }
                _ => self.issue_watch(now, g, IoOp::Read(Block::Group(g)), None),
            }
        }
    }

    fn issue_watch(&mut self, now: Instant, group: GroupId, op: IoOp, before: Option<Record>) {
        let io = IoId(self.next_io);
        self.next_io += 1;
        self.watch_ios.insert(io, (group, before, now + self.config.io_timeout));
        self.out.push_back(ClientOutput::Io { io, op });
    }

    fn watch_done(
        &mut self,
        now: Instant,
        ended: Instant,
        group: GroupId,
        before: Option<Record>,
        result: IoResult,
    ) {
        let record = match result {
            IoResult::Read(record) => record,
            IoResult::Written | IoResult::Failed(_) | IoResult::Unfinished(_) => {
                self.observed.remove(&group);
                return;
            }
        };
        match before {
            None => match record.owner() {
                Some(owner) if owner != self.me => {
                    self.issue_watch(now, group, IoOp::Read(Block::Host(owner)), Some(record));
                }
                _ => {
                    self.observed.remove(&group);
                }
            },
            Some(group_record) => {
                let Some(owner) = group_record.owner() else { return };
                let version = record.version_for(group);
                let same = self.observed.get(&group).is_some_and(|o| {
                    o.record == group_record && o.owner == owner && o.version == version
                });
                if !same {
                    let observed =
                        Observed { record: group_record, owner, version, first_seen: ended };
                    self.observed.insert(group, observed);
                }
            }
        }
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
                (Kind::Renew, Step::HostWrite, self.held.keys().copied().collect())
            }
            LeaseRequest::Acquire(g) => (Kind::Acquire(g), Step::ReadGroup, vec![g]),
            LeaseRequest::Release(g) => {
                self.held.remove(&g);
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
            Kind::Renew => self.want_host_write(now, key),
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
        let served = std::mem::take(&mut self.host_waiting);
        let held: Vec<GroupId> = self.held.keys().copied().collect();
        for key in &served {
            let task = self.tasks.get_mut(key).expect("waiting task");
            task.step = Step::HostWrite;
            if task.kind == Kind::Renew {
                task.check = held.clone();
            }
        }
        let mut groups = held;
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
        });
        self.host_flight = Some((served, now));
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
    pub fn io_done(&mut self, now: Instant, ended: Instant, io: IoId, result: IoResult) {
        let ended = ended.min(now);
        if !matches!(result, IoResult::Unfinished(_)) {
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
            Kind::Renew => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const MS: u64 = 1_000_000;

    /// A perfect disk shared by test clients: I/O completes after `latency` (in
    /// issue order), every client on the same exact clock.
    struct Bench {
        clients: Vec<DiskLeaseClient>,
        disk: BTreeMap<Block, Record>,
        pending: Vec<(u64, usize, IoId, IoOp)>,
        now: u64,
        latency: u64,
        replies: Vec<(u64, usize, OpId, LeaseResult)>,
        failing: Vec<bool>,
        /// Nodes that read their answers late, as the daemon reads quiet disk jobs: only
        /// when they wake, at their next step or at a tick of this period, each answer
        /// with the instant it ended.
        late: Vec<Option<u64>>,
        unread: Vec<(usize, u64, IoId, IoResult)>,
    }

    impl Bench {
        fn new(nodes: usize) -> Bench {
            let config = DiskLeaseConfig::new(&Timing::default(), Duration::from_millis(20));
            Bench {
                clients: (0..nodes)
                    .map(|n| DiskLeaseClient::new(NodeId(n as u16), 1, config))
                    .collect(),
                disk: BTreeMap::new(),
                pending: Vec::new(),
                now: 0,
                latency: 5 * MS,
                replies: Vec::new(),
                failing: vec![false; nodes],
                late: vec![None; nodes],
                unread: Vec::new(),
            }
        }

        fn drain(&mut self, n: usize) -> Option<u64> {
            loop {
                match self.clients[n].poll_output() {
                    ClientOutput::Io { io, op } => {
                        self.pending.push((self.now + self.latency, n, io, op))
                    }
                    ClientOutput::Reply { id, result } => {
                        self.replies.push((self.now, n, id, result))
                    }
                    ClientOutput::Wait(at) => {
                        let at = match self.late[n] {
                            Some(tick) => self.clients[n]
                                .next_step_at()
                                .min(Instant((self.now / tick + 1) * tick)),
                            None => at,
                        };
                        return (at != Instant::MAX).then_some(at.0);
                    }
                }
            }
        }

        /// Node 0 takes G, renews once and stops renewing at 400 ms (it died): the
        /// `since` of its last grant.
        fn owner_renews_once_then_dies(&mut self) -> Instant {
            self.request(0, 1, LeaseRequest::Acquire(G));
            self.run_until(200 * MS);
            self.request(0, 2, LeaseRequest::Renew);
            self.run_until(400 * MS);
            match self.reply(2).cloned() {
                Some(LeaseResult::Granted { since }) => since,
                other => panic!("{other:?}: {:?}", self.replies),
            }
        }

        fn request(&mut self, n: usize, id: u64, request: LeaseRequest) {
            self.clients[n].request(Instant(self.now), OpId(id), request);
            self.drain(n);
        }

        /// Runs until `until`, stepping to each I/O completion and wake-up.
        fn run_until(&mut self, until: u64) {
            loop {
                let wakes: Vec<Option<u64>> =
                    (0..self.clients.len()).map(|n| self.drain(n)).collect();
                let next_io = self.pending.iter().map(|p| p.0).min();
                let next_wake = wakes.iter().flatten().copied().min();
                let next = match (next_io, next_wake) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => match a.or(b) {
                        Some(t) => t,
                        None => break,
                    },
                };
                if next > until {
                    break;
                }
                self.now = next;
                if next_io == Some(next) {
                    let i = self.pending.iter().position(|p| p.0 == next).unwrap();
                    let (_, n, io, op) = self.pending.remove(i);
                    let result = if self.failing[n] {
                        IoResult::Failed("path lost".into())
                    } else {
                        match op {
                            IoOp::Read(b) => {
                                IoResult::Read(self.disk.get(&b).cloned().unwrap_or_default())
                            }
                            IoOp::Write(b, r) => {
                                self.disk.insert(b, r);
                                IoResult::Written
                            }
                        }
                    };
                    if self.late[n].is_some() {
                        self.unread.push((n, self.now, io, result));
                    } else {
                        let now = Instant(self.now);
                        self.clients[n].io_done(now, now, io, result);
                    }
                } else {
                    for (n, wake) in wakes.iter().enumerate() {
                        if *wake == Some(next) {
                            self.read_late(n);
                            self.clients[n].timeout(Instant(self.now));
                        }
                    }
                }
            }
            self.now = until;
        }

        /// Node `n` reads the answers it has not read yet.
        fn read_late(&mut self, n: usize) {
            let (read, unread) = self.unread.drain(..).partition(|(m, ..)| *m == n);
            self.unread = unread;
            for (_, ended, io, result) in read {
                self.clients[n].io_done(Instant(self.now), Instant(ended), io, result);
            }
        }

        fn reply(&self, id: u64) -> Option<&LeaseResult> {
            self.replies.iter().find(|r| r.2 == OpId(id)).map(|r| &r.3)
        }
    }

    const G: GroupId = GroupId(0);

    /// The next I/O a client issues (panics on anything else).
    fn next_io(client: &mut DiskLeaseClient) -> (IoId, IoOp) {
        match client.poll_output() {
            ClientOutput::Io { io, op } => (io, op),
            other => panic!("expected an I/O, got {other:?}"),
        }
    }

    /// The next reply of a client (panics on anything else).
    fn next_reply(client: &mut DiskLeaseClient) -> LeaseResult {
        match client.poll_output() {
            ClientOutput::Reply { result, .. } => result,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    /// Instant `ms` milliseconds after 0.
    fn at(ms: u64) -> Instant {
        Instant(ms * MS)
    }

    /// A client (I/O timeout 20 ms) that asked for G at 0, found it free at 1 ms and
    /// issued its claim: the claim's I/O.
    fn claim_issued() -> (DiskLeaseClient, IoId) {
        let config = DiskLeaseConfig::new(&Timing::default(), Duration::from_millis(20));
        let mut c = DiskLeaseClient::new(NodeId(0), 1, config);
        c.request(at(0), OpId(1), LeaseRequest::Acquire(G));
        let (read, _) = next_io(&mut c);
        c.io_done(at(1), at(1), read, IoResult::Read(Record::Blank));
        let (claim, op) = next_io(&mut c);
        assert!(matches!(op, IoOp::Write(Block::Group(G), _)));
        (c, claim)
    }

    #[test]
    fn a_claim_that_lands_after_its_deadline_blocks_acquires_for_a_takeover_wait() {
        let (mut c, claim) = claim_issued();
        // The disk stalls: the client gives up on the claim at its deadline...
        c.timeout(at(21));
        assert!(
            matches!(next_reply(&mut c), LeaseResult::Unavailable(why) if why.contains("timed out"))
        );
        // ...but the write is still in flight: no acquire meanwhile.
        c.request(at(100), OpId(2), LeaseRequest::Acquire(G));
        assert!(
            matches!(next_reply(&mut c), LeaseResult::Unavailable(why) if why.contains("still in flight")),
        );
        // The shell's own answer at its deadline says the same and changes nothing.
        c.io_done(at(101), at(101), claim, IoResult::Unfinished("did not finish".into()));
        assert!(c.acquire_blocked(at(101)).is_some());
        // It lands at 450 ms: the record may name us over another node's claim, whose
        // holder stops when its next renewal reads it, within a lease.
        c.io_done(at(450), at(450), claim, IoResult::Written);
        let wait = c.config().takeover_wait;
        let blocked = c.acquire_blocked(at(450) + wait - Duration::from_millis(1));
        assert!(blocked.is_some_and(|why| why.contains("finished after its deadline")));
        c.request(at(460), OpId(3), LeaseRequest::Acquire(G));
        assert!(matches!(next_reply(&mut c), LeaseResult::Unavailable(_)));
        // A takeover wait after it ended, acquires go ahead again.
        assert_eq!(c.acquire_blocked(at(450) + wait), None);
        c.request(at(450) + wait, OpId(4), LeaseRequest::Acquire(G));
        assert!(matches!(next_io(&mut c).1, IoOp::Read(Block::Group(G))));
    }

    #[test]
    fn a_write_that_ends_in_time_or_fails_blocks_nothing() {
        let (mut c, claim) = claim_issued();
        c.io_done(at(5), at(5), claim, IoResult::Failed("I/O error".into()));
        assert!(matches!(next_reply(&mut c), LeaseResult::Unavailable(_)));
        assert_eq!(c.acquire_blocked(at(5)), None);
        assert_eq!(c.acquire_blocked(at(5000)), None);
    }

    #[test]
    fn free_group_is_claimed_and_renewed() {
        let mut b = Bench::new(2);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(500 * MS);
        assert_eq!(b.reply(1), Some(&LeaseResult::Granted { since: Instant(5 * MS) }));
        assert_eq!(b.disk[&Block::Group(G)].owner(), Some(NodeId(0)));
        b.request(0, 2, LeaseRequest::Renew);
        b.run_until(1000 * MS);
        assert_eq!(b.reply(2), Some(&LeaseResult::Granted { since: Instant(500 * MS) }));
    }

    #[test]
    fn two_contenders_one_wins() {
        let mut b = Bench::new(2);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.request(1, 2, LeaseRequest::Acquire(G));
        b.run_until(500 * MS);
        let granted: Vec<_> = [1, 2]
            .iter()
            .filter(|id| matches!(b.reply(**id), Some(LeaseResult::Granted { .. })))
            .collect();
        assert_eq!(granted.len(), 1, "{:?}", b.replies);
        assert!(b.replies.iter().any(|r| matches!(r.3, LeaseResult::Denied { .. })));
    }

    #[test]
    fn live_owner_keeps_its_group() {
        let mut b = Bench::new(2);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(200 * MS);
        b.request(1, 2, LeaseRequest::Acquire(G));
        // The owner renews every 200 ms: the contender sees its record change.
        for i in 0..20u64 {
            b.request(0, 10 + i, LeaseRequest::Renew);
            b.run_until((400 + 200 * i) * MS);
        }
        assert_eq!(b.reply(2), Some(&LeaseResult::Denied { holder: Some(NodeId(0)) }));
        assert_eq!(b.disk[&Block::Group(G)].owner(), Some(NodeId(0)));
    }

    #[test]
    fn dead_owner_is_taken_over_after_the_wait() {
        let mut b = Bench::new(2);
        let since = b.owner_renews_once_then_dies();
        // Node 0 stops renewing. Node 1 asks at 400 ms.
        b.request(1, 3, LeaseRequest::Acquire(G));
        b.run_until(5_000 * MS);
        let granted_at = b.replies.iter().find(|r| r.2 == OpId(3)).unwrap().0;
        assert!(matches!(b.reply(3), Some(LeaseResult::Granted { .. })), "{:?}", b.replies);
        let wait = Timing::default().lease_takeover_wait().as_nanos() as u64;
        assert!(granted_at >= since.0 + wait, "granted at {granted_at}, lease since {since:?}");
        // The old owner's next renewal learns it lost the group.
        b.request(0, 4, LeaseRequest::Renew);
        b.run_until(6_000 * MS);
        assert_eq!(b.reply(4), Some(&LeaseResult::Lost { groups: vec![G] }));
    }

    /// Found by the simulator (active-standby seed 794 with watching ahead): the engine
    /// gave up on an acquire, the client granted it later and renewed the group forever
    /// for an engine that did not run it. The engine now releases what it gave up on,
    /// and a release ends an acquire of the group still in flight.
    #[test]
    fn a_release_ends_an_acquire_in_flight() {
        let mut b = Bench::new(2);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(200 * MS);
        // Node 0 dies; node 1 starts a (long) acquire and gives up on it at once.
        b.request(1, 2, LeaseRequest::Acquire(G));
        b.run_until(300 * MS);
        b.request(1, 3, LeaseRequest::Release(G));
        b.run_until(5_000 * MS);
        assert!(
            matches!(b.reply(2), Some(LeaseResult::Unavailable(_))),
            "the acquire was not ended: {:?}",
            b.replies
        );
        assert_eq!(b.clients[1].held().count(), 0);
    }

    /// Node 1 watches ahead (reading its answers up to `late` late, as they come once
    /// it acquires, as the daemon does), node 0 dies at 400 ms, node 1 acquires at
    /// 1.4 s: granted once node 0's lease has run out, and well before a whole wait
    /// after the request (without watching ahead it would come a whole wait later).
    fn watch_then_take_over(b: &mut Bench, late: Option<u64>) {
        b.late[1] = late;
        b.clients[1].watch(Instant(0), vec![G]);
        let since = b.owner_renews_once_then_dies();
        b.run_until(1_400 * MS);
        b.read_late(1);
        b.late[1] = None;
        b.request(1, 3, LeaseRequest::Acquire(G));
        b.run_until(5_000 * MS);
        let granted_at = b.replies.iter().find(|r| r.2 == OpId(3)).unwrap().0;
        assert!(matches!(b.reply(3), Some(LeaseResult::Granted { .. })), "{:?}", b.replies);
        let wait = Timing::default().lease_takeover_wait().as_nanos() as u64;
        assert!(granted_at >= since.0 + wait, "granted at {granted_at}, lease since {since:?}");
        assert!(granted_at < 1_400 * MS + wait / 2, "granted at {granted_at}: no gain");
    }

    #[test]
    fn watching_ahead_takes_a_dead_owner_over_as_soon_as_its_lease_has_run_out() {
        watch_then_take_over(&mut Bench::new(2), None);
    }

    /// Found in the lab (fast profile, the daemon reading quiet disk jobs at its next
    /// tick): the read that watching ahead issues on reading an answer took its deadline
    /// from the instant the answer ended, so it had often passed already; the read
    /// counted as failed, the observation was dropped, and the takeover came up to a
    /// whole wait late.
    #[test]
    fn watching_ahead_with_answers_read_late_keeps_its_window() {
        let mut b = Bench::new(2);
        // Up to 100 ms late; the I/O timeout is 20 ms.
        watch_then_take_over(&mut b, Some(100 * MS));
        // It renews reading late.
        b.late[1] = Some(100 * MS);
        b.request(1, 4, LeaseRequest::Renew);
        b.run_until(6_000 * MS);
        assert!(matches!(b.reply(4), Some(LeaseResult::Granted { .. })), "{:?}", b.replies);
    }

    /// A claim must land within an I/O timeout of the read that found the group free:
    /// an acquire whose answers are read late is not granted (which is why a shell reads
    /// them as they come).
    #[test]
    fn an_acquire_read_late_is_not_granted() {
        let mut b = Bench::new(1);
        b.late[0] = Some(100 * MS);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(1_000 * MS);
        assert!(matches!(b.reply(1), Some(LeaseResult::Unavailable(_))), "{:?}", b.replies);
        assert_eq!(b.clients[0].held().count(), 0);
    }

    #[test]
    fn early_watch_rounds_come_only_when_nearly_due_and_never_shorten_the_wait() {
        let interval = DiskLeaseConfig::new(&Timing::default(), Duration::from_millis(20))
            .watch_poll_interval
            .as_nanos() as u64;
        let mut b = Bench::new(2);
        b.clients[1].watch(Instant(0), vec![G]);
        b.run_until(10 * MS);
        let issued = |b: &mut Bench| {
            let before = b.pending.len();
            b.drain(1);
            b.pending.len() - before
        };
        // The round at 0 is over; the next is due at `interval`.
        b.clients[1].watch_early(Instant(interval - 30 * MS), Duration::from_millis(20));
        assert_eq!(issued(&mut b), 0, "a round 30 ms ahead is not nearly due within 20 ms");
        b.clients[1].watch_early(Instant(interval - 10 * MS), Duration::from_millis(20));
        assert_eq!(issued(&mut b), 1, "a round due within 20 ms goes now");

        // A dead owner is still taken over only once its lease has run out, however
        // often the standby polls early.
        let mut b = Bench::new(2);
        b.clients[1].watch(Instant(0), vec![G]);
        let since = b.owner_renews_once_then_dies();
        let mut t = b.now;
        while t < 1_400 * MS {
            t += 7 * MS;
            b.run_until(t);
            b.clients[1].watch_early(Instant(b.now), Duration::from_nanos(interval));
        }
        b.request(1, 3, LeaseRequest::Acquire(G));
        while t < 5_000 * MS {
            t += 7 * MS;
            b.run_until(t);
            b.clients[1].watch_early(Instant(b.now), Duration::from_nanos(interval));
        }
        let granted_at = b.replies.iter().find(|r| r.2 == OpId(3)).unwrap().0;
        assert!(matches!(b.reply(3), Some(LeaseResult::Granted { .. })), "{:?}", b.replies);
        let wait = Timing::default().lease_takeover_wait().as_nanos() as u64;
        assert!(granted_at >= since.0 + wait, "granted at {granted_at}, lease since {since:?}");
    }

    #[test]
    fn watching_ahead_a_live_owner_changes_nothing() {
        let mut b = Bench::new(2);
        b.clients[1].watch(Instant(0), vec![G]);
        b.request(0, 1, LeaseRequest::Acquire(G));
        for i in 0..20 {
            b.run_until((200 + 200 * i) * MS);
            b.request(0, 100 + i, LeaseRequest::Renew);
        }
        b.request(1, 2, LeaseRequest::Acquire(G));
        for i in 20..40 {
            b.run_until((200 + 200 * i) * MS);
            b.request(0, 100 + i, LeaseRequest::Renew);
        }
        assert_eq!(b.reply(2), Some(&LeaseResult::Denied { holder: Some(NodeId(0)) }));
        assert_eq!(b.disk[&Block::Group(G)].owner(), Some(NodeId(0)));
    }

    /// The owner releases and claims the group again while a contender watches its host
    /// record (which the claim does not touch): the contender must notice the new claim.
    #[test]
    fn a_new_claim_during_a_watch_is_seen() {
        let mut b = Bench::new(2);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(100 * MS);
        assert!(matches!(b.reply(1), Some(LeaseResult::Granted { .. })));
        b.request(1, 2, LeaseRequest::Acquire(G)); // watches node 0 from now on
        b.run_until(1_000 * MS);
        b.request(0, 3, LeaseRequest::Release(G));
        b.run_until(1_020 * MS);
        b.request(0, 4, LeaseRequest::Acquire(G));
        b.run_until(1_200 * MS);
        let Some(LeaseResult::Granted { since }) = b.reply(4).cloned() else {
            panic!("{:?}", b.replies)
        };
        b.run_until(3_000 * MS);
        let answer = b.replies.iter().find(|r| r.2 == OpId(2)).expect("answered");
        let lease_end = since.0 + Timing::default().lease_timeout.as_nanos() as u64;
        assert!(
            !matches!(answer.3, LeaseResult::Granted { .. }) || answer.0 >= lease_end,
            "granted at {} while node 0 holds the group until {lease_end}: {:?}",
            answer.0,
            b.replies
        );
    }

    #[test]
    fn own_record_is_reacquired_without_waiting() {
        let mut b = Bench::new(1);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(200 * MS);
        // A daemon restart: a new client with a new incarnation.
        let config = *b.clients[0].config();
        b.clients[0] = DiskLeaseClient::new(NodeId(0), 2, config);
        b.request(0, 2, LeaseRequest::Acquire(G));
        b.run_until(400 * MS);
        // Read the group record (5 ms), then the host write is issued: no takeover wait.
        assert_eq!(b.reply(2), Some(&LeaseResult::Granted { since: Instant(205 * MS) }));
        let Record::Host(h) = &b.disk[&Block::Host(NodeId(0))] else { panic!() };
        assert_eq!((h.incarnation, h.groups.as_slice()), (2, &[G][..]));
    }

    #[test]
    fn release_frees_and_path_loss_is_unavailable() {
        let mut b = Bench::new(2);
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(200 * MS);
        b.request(0, 2, LeaseRequest::Release(G));
        b.run_until(300 * MS);
        assert_eq!(b.reply(2), Some(&LeaseResult::Released));
        assert_eq!(b.disk[&Block::Group(G)].owner(), None);
        assert_eq!(b.clients[0].held().count(), 0);
        b.failing[1] = true;
        b.request(1, 3, LeaseRequest::Acquire(G));
        b.run_until(400 * MS);
        assert!(matches!(b.reply(3), Some(LeaseResult::Unavailable(_))));
        b.failing[1] = false;
        b.request(1, 4, LeaseRequest::Acquire(G));
        b.run_until(600 * MS);
        assert!(matches!(b.reply(4), Some(LeaseResult::Granted { .. })));
    }

    #[test]
    fn renewal_during_an_acquire_does_not_extend_the_new_group() {
        let mut b = Bench::new(1);
        b.request(0, 1, LeaseRequest::Acquire(GroupId(1))); // claimed at 5 ms
        b.run_until(200 * MS);
        // Claim written at 205 ms, granted after the settle (about 276 ms); the grant
        // may not extend group 1, last covered at 5 ms.
        b.request(0, 2, LeaseRequest::Acquire(G));
        b.run_until(250 * MS);
        // A renewal issued at 250 ms lists group 1 only, and ends after G's grant: it
        // may not extend G beyond its claim at 205 ms.
        b.request(0, 3, LeaseRequest::Renew);
        b.run_until(400 * MS);
        let Some(LeaseResult::Granted { since: g_since }) = b.reply(2).cloned() else { panic!() };
        let Some(LeaseResult::Granted { since: r_since }) = b.reply(3).cloned() else { panic!() };
        assert_eq!(g_since, Instant(5 * MS));
        assert_eq!(r_since, Instant(205 * MS));
        // The next renewal lists both and covers both.
        b.request(0, 4, LeaseRequest::Renew);
        b.run_until(600 * MS);
        assert_eq!(b.reply(4), Some(&LeaseResult::Granted { since: Instant(400 * MS) }));
    }

    #[test]
    fn next_step_at_leaves_out_io_deadlines_only() {
        let mut b = Bench::new(1);
        b.request(0, 1, LeaseRequest::Renew); // the host write goes out at 0
        let io_deadline = Instant(20 * MS);
        assert_eq!(b.clients[0].poll_output(), ClientOutput::Wait(io_deadline));
        assert_eq!(b.clients[0].next_step_at(), Instant::MAX, "only an I/O is awaited");
        // The write lands at 5 ms: the settle that follows is a step of its own.
        let (_, _, io, _) = b.pending.pop().expect("the host write");
        b.clients[0].io_done(Instant(5 * MS), Instant(5 * MS), io, IoResult::Written);
        let settled = Instant(5 * MS) + b.clients[0].config.settle;
        assert_eq!(b.clients[0].next_step_at(), settled);
        assert_eq!(b.clients[0].poll_output(), ClientOutput::Wait(settled));
    }
}
