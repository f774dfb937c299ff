//! The lease client against a perfect shared disk (`Bench`): claims, renewals,
//! contenders, takeovers after the wait, releases, watching ahead, late answers and
//! writes that land after their deadline. The randomized safety checks live in the
//! simulator (`crates/sim/src/protocol_checks.rs`).

use super::*;
use engine::LeaseRequest;
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
                ClientOutput::Reply { id, result } => self.replies.push((self.now, n, id, result)),
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
            let wakes: Vec<Option<u64>> = (0..self.clients.len()).map(|n| self.drain(n)).collect();
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

/// A node stopping in maintenance parks its lease: a contender is denied however long
/// it waits; the node's next run (a new client, incarnation 2, inheriting the parked
/// group from its host record) lists it in its host writes until it acquires it, and
/// the contender is still denied; after a release it may take it.
#[test]
fn a_parked_lease_is_never_taken_and_its_next_run_inherits_it() {
    let mut b = Bench::new(2);
    b.request(0, 1, LeaseRequest::Acquire(G));
    b.run_until(200 * MS);
    b.request(0, 2, LeaseRequest::Park);
    b.run_until(400 * MS);
    assert!(matches!(b.reply(2), Some(LeaseResult::Granted { .. })), "{:?}", b.replies);
    assert!(b.disk[&Block::Host(NodeId(0))].parks(G));
    // Node 0's daemon is gone; node 1 asks again and again, far past a takeover wait.
    for i in 0..5u64 {
        b.request(1, 10 + i, LeaseRequest::Acquire(G));
        b.run_until((2_000 + 4_000 * i) * MS);
        assert_eq!(b.reply(10 + i), Some(&LeaseResult::Denied { holder: Some(NodeId(0)) }));
    }
    // The next run: its first host write (an unrelated renewal) still lists G.
    let config = *b.clients[0].config();
    b.clients[0] = DiskLeaseClient::new(NodeId(0), 2, config);
    b.clients[0].inherit(vec![G]);
    b.request(0, 20, LeaseRequest::Renew);
    b.run_until(21_000 * MS);
    let Record::Host(host) = &b.disk[&Block::Host(NodeId(0))] else { panic!() };
    assert_eq!((host.incarnation, host.groups.clone(), host.parked), (2, vec![G], false));
    // Nobody renews it now; a contender watching from here waits a whole takeover wait,
    // and the run that found G running takes it first (its acquire lists it again).
    b.request(1, 21, LeaseRequest::Acquire(G));
    b.run_until(21_500 * MS);
    b.request(0, 22, LeaseRequest::Acquire(G));
    b.run_until(22_000 * MS);
    assert!(matches!(b.reply(22), Some(LeaseResult::Granted { .. })), "{:?}", b.replies);
    b.run_until(40_000 * MS);
    assert_eq!(b.reply(21), Some(&LeaseResult::Denied { holder: Some(NodeId(0)) }));
    // Given back, it is free at once.
    b.request(0, 23, LeaseRequest::Release(G));
    b.run_until(40_100 * MS);
    b.request(1, 24, LeaseRequest::Acquire(G));
    b.run_until(41_000 * MS);
    assert!(matches!(b.reply(24), Some(LeaseResult::Granted { .. })), "{:?}", b.replies);
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
