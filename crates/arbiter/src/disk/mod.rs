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
//! **Parking** (`LeaseRequest::Park`, a node stopping in maintenance with its resources
//! left running): a renewal whose host write says `parked`. A contender whose watch
//! reads a parked host record listing the group is denied, however long the record
//! stays unchanged: the owner's resources run on without a daemon, lease or guard. The
//! node's next run reads its record at start and *inherits* the parked groups
//! ([`DiskLeaseClient::inherit`]): its host writes list them until its engine acquires
//! (the probes found the group running) or releases (they found nothing) each, so no
//! contender's window can open while they may run. `tandem disk unpark NODE` rewrites
//! the record unparked for an operator who stopped the resources by hand; the takeover
//! wait then runs from that write as from any other.
//!
//! The engine keeps one lease for all its groups and extends it with every `Granted`
//! (acquire or renewal), so every `Granted` carries the earliest `since` over the groups
//! the client holds: a group is never credited with a write that did not cover it (a
//! group granted while a renewal was in flight, an old group when a new one is claimed).

mod client;
mod records;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use engine::time::scale;
use engine::{GroupId, Instant, LeaseResult, NodeId, OpId, Timing};

pub use records::{Block, GroupRecord, HostRecord, Pill, Record};

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
    /// A renewal whose host write parks the record (and every later one).
    Park,
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
    /// Groups the previous run of this node parked ([`DiskLeaseClient::inherit`]):
    /// listed in every host write until an acquire is granted or a release asked.
    inherited: std::collections::BTreeSet<GroupId>,
    /// The last renewal asked was a park: host writes are parked until a plain renewal
    /// is asked.
    parking: bool,
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
    /// The last host write issued, until its true end is known: one answered as
    /// unfinished at its deadline (or timed out here) may still land, and a newer host
    /// write that landed before it would be overwritten by it — the record would then
    /// omit a group acquired since, and a peer would take that group (simulator,
    /// mutual-backup seed 2411). No host write is issued meanwhile.
    host_write_out: Option<IoId>,
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
