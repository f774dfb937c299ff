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
//! - group record `{owner}`: who holds the group (none: free).
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
//! `Timing::lease_takeover_wait` apart on B's clock. Why that is safe, assuming every
//! I/O lands or fails within `io_timeout` (the real daemon must enforce it): a host
//! write of A that lands inside B's window is seen; one that lands after it is followed
//! by A's read of g's record more than `settle >= 3 io_timeout` later, by which time B's
//! claim (read g, write) has landed, so A is refused (`Lost`/`Denied`); one that landed
//! before the window began was issued before it, so the lease it granted ends (even on
//! a clock 1 % slow) before the takeover wait, measured on a clock 1 % fast, runs out.
//! Listing the groups in the host record makes an abandoned claim (a request whose
//! answer nobody awaited) expire instead of being renewed forever.
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
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Record {
    /// Never written.
    #[default]
    Blank,
    Host(HostRecord),
    Group(GroupRecord),
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
    /// Host write issued at `since` listing `listed`; then settle, then read `check`.
    HostWrite {
        since: Instant,
    },
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
    /// Acquire: watching `owner`'s host record.
    Watch {
        owner: NodeId,
        version: Option<Option<(u64, u64)>>,
        first_seen: Instant,
        read_at: Instant,
    },
    /// Acquire: the read before the claim; `dead` is the owner found dead (if any).
    ClaimRead {
        dead: Option<NodeId>,
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

pub struct DiskLeaseClient {
    me: NodeId,
    incarnation: u64,
    config: DiskLeaseConfig,
    counter: u64,
    /// Held groups and the `since` of the latest write that covered each.
    held: BTreeMap<GroupId, Instant>,
    tasks: BTreeMap<u64, Task>,
    next_task: u64,
    /// Outstanding I/O: its task, the group it reads (host checks), its deadline.
    ios: BTreeMap<IoId, (u64, Option<GroupId>, Instant)>,
    next_io: u64,
    out: VecDeque<ClientOutput>,
}

impl DiskLeaseClient {
    pub fn new(me: NodeId, incarnation: u64, config: DiskLeaseConfig) -> DiskLeaseClient {
        DiskLeaseClient {
            me,
            incarnation,
            config,
            counter: 0,
            held: BTreeMap::new(),
            tasks: BTreeMap::new(),
            next_task: 0,
            ios: BTreeMap::new(),
            next_io: 0,
            out: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &DiskLeaseConfig {
        &self.config
    }

    /// The groups this client believes it holds.
    pub fn held(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.held.keys().copied()
    }

    pub fn request(&mut self, now: Instant, id: OpId, request: LeaseRequest) {
        if self.tasks.len() >= TASKS_MAX {
            let result = LeaseResult::Unavailable("too many lease requests in flight".into());
            self.out.push_back(ClientOutput::Reply { id, result });
            return;
        }
        let key = self.next_task;
        self.next_task += 1;
        let (kind, step, check) = match request {
            LeaseRequest::Renew => {
                (Kind::Renew, Step::HostWrite { since: now }, self.held.keys().copied().collect())
            }
            LeaseRequest::Acquire(g) => (Kind::Acquire(g), Step::ReadGroup, vec![g]),
            LeaseRequest::Release(g) => {
                self.held.remove(&g);
                (Kind::Release(g), Step::ReleaseRead, Vec::new())
            }
        };
        self.tasks.insert(key, Task { id, kind, step, check, wake: None });
        match kind {
            Kind::Renew => self.write_host(now, key),
            Kind::Acquire(g) | Kind::Release(g) => {
                self.issue(now, key, IoOp::Read(Block::Group(g)), None)
            }
        }
    }

    fn issue(&mut self, now: Instant, key: u64, op: IoOp, reads: Option<GroupId>) {
        let io = IoId(self.next_io);
        self.next_io += 1;
        self.ios.insert(io, (key, reads, now + self.config.io_timeout));
        self.out.push_back(ClientOutput::Io { io, op });
    }

    /// Writes this node's host record listing the held groups and the task's groups.
    fn write_host(&mut self, now: Instant, key: u64) {
        self.counter += 1;
        let mut groups: Vec<GroupId> = self.held.keys().copied().collect();
        groups.extend(self.tasks[&key].check.iter().copied());
        groups.sort();
        groups.dedup();
        let record = Record::Host(HostRecord {
            incarnation: self.incarnation,
            counter: self.counter,
            groups,
        });
        self.tasks.get_mut(&key).expect("task").step = Step::HostWrite { since: now };
        self.issue(now, key, IoOp::Write(Block::Host(self.me), record), None);
    }

    fn finish(&mut self, key: u64, result: LeaseResult) {
        let task = self.tasks.remove(&key).expect("finished task exists");
        self.ios.retain(|_, (k, _, _)| *k != key);
        self.out.push_back(ClientOutput::Reply { id: task.id, result });
    }

    pub fn io_done(&mut self, now: Instant, io: IoId, result: IoResult) {
        let Some((key, reads, _)) = self.ios.remove(&io) else {
            return; // timed out earlier, or its task ended
        };
        let record = match result {
            IoResult::Failed(why) => {
                self.finish(key, LeaseResult::Unavailable(format!("shared disk: {why}")));
                return;
            }
            IoResult::Read(record) => record,
            IoResult::Written => Record::Blank,
        };
        let task = self.tasks.get_mut(&key).expect("io of a live task");
        let me = self.me;
        match task.step.clone() {
            Step::HostWrite { since } => {
                task.step = Step::HostSettle { since };
                task.wake = Some(now + self.config.settle);
            }
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
                    self.host_checked(key, since, lost, other);
                }
            }
            Step::ReadGroup => match record.owner() {
                None => self.claim(now, key),
                Some(owner) if owner == me => self.write_host(now, key),
                Some(owner) => {
                    task.step = Step::Watch { owner, version: None, first_seen: now, read_at: now };
                    self.issue(now, key, IoOp::Read(Block::Host(owner)), None);
                }
            },
            Step::Watch { owner, version, first_seen, read_at } => {
                let Kind::Acquire(group) = task.kind else { unreachable!("only acquires watch") };
                let seen = record.version_for(group);
                match version {
                    None => {
                        // The window starts when the first read completes.
                        task.step =
                            Step::Watch { owner, version: Some(seen), first_seen: now, read_at };
                        task.wake = Some(now + self.config.watch_poll_interval);
                    }
                    Some(v) if v != seen => {
                        self.finish(key, LeaseResult::Denied { holder: Some(owner) });
                    }
                    Some(_)
                        if read_at.saturating_since(first_seen) >= self.config.takeover_wait =>
                    {
                        task.step = Step::ClaimRead { dead: Some(owner) };
                        self.issue(now, key, IoOp::Read(Block::Group(group)), None);
                    }
                    Some(_) => {
                        task.wake = Some(now + self.config.watch_poll_interval);
                    }
                }
            }
            Step::ClaimRead { dead } => match record.owner() {
                owner if owner.is_none() || owner == dead => self.claim(now, key),
                Some(owner) if owner == me => self.write_host(now, key),
                holder => self.finish(key, LeaseResult::Denied { holder }),
            },
            Step::ClaimWrite { since } => {
                task.step = Step::ClaimSettle { since };
                task.wake = Some(now + self.config.settle);
            }
            Step::ClaimSettle { .. } => unreachable!("no I/O while settling"),
            Step::ClaimCheck { since } => {
                let Kind::Acquire(group) = task.kind else { unreachable!("only acquires claim") };
                match record.owner() {
                    Some(owner) if owner == me => {
                        self.held.insert(group, since);
                        let since = self.earliest_covered(since);
                        self.finish(key, LeaseResult::Granted { since });
                    }
                    holder => self.finish(key, LeaseResult::Denied { holder }),
                }
            }
            Step::ReleaseRead => {
                let Kind::Release(group) = task.kind else { unreachable!("only releases") };
                if record.owner() == Some(me) {
                    task.step = Step::ReleaseWrite;
                    let free = Record::Group(GroupRecord { owner: None });
                    self.issue(now, key, IoOp::Write(Block::Group(group), free), None);
                } else {
                    self.finish(key, LeaseResult::Released);
                }
            }
            Step::ReleaseWrite => self.finish(key, LeaseResult::Released),
        }
    }

    /// Fischer's step: write our claim right after the read that found the group free.
    fn claim(&mut self, now: Instant, key: u64) {
        let task = self.tasks.get_mut(&key).expect("task");
        let Kind::Acquire(group) = task.kind else { unreachable!("only acquires claim") };
        task.step = Step::ClaimWrite { since: now };
        let record = Record::Group(GroupRecord { owner: Some(self.me) });
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
                if lost.is_empty() {
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
        let expired: Vec<u64> = self
            .ios
            .values()
            .filter(|(_, _, deadline)| *deadline <= now)
            .map(|(k, _, _)| *k)
            .collect();
        for key in expired {
            if self.tasks.contains_key(&key) {
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
                        self.host_checked(key, since, Vec::new(), None);
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
                Step::Watch { owner, version, first_seen, .. } => {
                    task.step = Step::Watch { owner, version, first_seen, read_at: now };
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
        let wake = self.tasks.values().filter_map(|t| t.wake);
        let deadlines = self.ios.values().map(|(_, _, d)| *d);
        ClientOutput::Wait(wake.chain(deadlines).min().unwrap_or(Instant::MAX))
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
                    ClientOutput::Wait(at) => return (at != Instant::MAX).then_some(at.0),
                }
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
                    self.clients[n].io_done(Instant(self.now), io, result);
                } else {
                    for n in 0..self.clients.len() {
                        if wakes[n] == Some(next) {
                            self.clients[n].timeout(Instant(self.now));
                        }
                    }
                }
            }
            self.now = until;
        }

        fn reply(&self, id: u64) -> Option<&LeaseResult> {
            self.replies.iter().find(|r| r.2 == OpId(id)).map(|r| &r.3)
        }
    }

    const G: GroupId = GroupId(0);

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
        b.request(0, 1, LeaseRequest::Acquire(G));
        b.run_until(200 * MS);
        b.request(0, 2, LeaseRequest::Renew);
        b.run_until(400 * MS);
        let Some(LeaseResult::Granted { since }) = b.reply(2).cloned() else {
            panic!("{:?}", b.replies)
        };
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
}
