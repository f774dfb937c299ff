//! The witness arbitrator's protocol: a server on a third host that grants group leases
//! by its own clock, and the lease client each node runs to talk to it. Both are pure
//! state machines over messages and time (no sockets, no clock), so the real `tandem
//! witness` and daemon can reuse them; the simulator carries the messages over its
//! simulated network.
//!
//! The server grants a group held by another node only once that node has not renewed
//! it for `Timing::lease_takeover_wait` on the server's clock. A node's lease runs from
//! the local instant its request was sent, so it ends before the server could have
//! seen the renewal it came from plus the takeover wait, whatever the two clocks' drift
//! (within 1 %). Requests carry (incarnation, sequence); the server drops any not newer
//! than the last it took from that node, so a delayed or duplicated `Release` cannot
//! free a group taken again since. A renewal lists the groups the client holds; groups
//! the server gave away come back as lost. Every `Granted` carries the earliest `since`
//! over the held groups, because the engine extends one lease for all its groups.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use engine::{GroupId, Instant, LeaseRequest, LeaseResult, NodeId, OpId};

/// Requests a client keeps waiting for an answer; more are answered `Unavailable`.
pub const PENDING_MAX: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessRequest {
    pub from: NodeId,
    pub incarnation: u64,
    pub sequence: u64,
    pub ask: WitnessAsk,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessAsk {
    Acquire(GroupId),
    /// Renew these groups (the ones the client holds).
    Renew(Vec<GroupId>),
    Release(GroupId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessReply {
    pub to: NodeId,
    pub incarnation: u64,
    pub sequence: u64,
    pub answer: WitnessAnswer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessAnswer {
    Granted,
    Denied(Option<NodeId>),
    /// Renewed every listed group except `lost`.
    Renewed {
        lost: Vec<GroupId>,
    },
    Released,
}

pub struct WitnessServer {
    takeover_wait: Duration,
    /// Per group: its holder and when (server clock) it last renewed or acquired it.
    holders: Vec<Option<(NodeId, Instant)>>,
    /// Per node: the newest (incarnation, sequence) taken.
    newest: BTreeMap<NodeId, (u64, u64)>,
}

impl WitnessServer {
    pub fn new(groups: usize, takeover_wait: Duration) -> WitnessServer {
        WitnessServer { takeover_wait, holders: vec![None; groups], newest: BTreeMap::new() }
    }

    pub fn holder(&self, group: GroupId) -> Option<NodeId> {
        self.holders.get(group.0 as usize).copied().flatten().map(|(n, _)| n)
    }

    /// Handles one request at server time `now`; `None`: dropped (stale or malformed).
    pub fn handle(&mut self, now: Instant, request: &WitnessRequest) -> Option<WitnessReply> {
        let stamp = (request.incarnation, request.sequence);
        if self.newest.get(&request.from).is_some_and(|seen| *seen >= stamp) {
            return None;
        }
        let from = request.from;
        let answer = match &request.ask {
            WitnessAsk::Acquire(g) => {
                let slot = self.holders.get_mut(g.0 as usize)?;
                match *slot {
                    Some((holder, renewed))
                        if holder != from && now.saturating_since(renewed) < self.takeover_wait =>
                    {
                        WitnessAnswer::Denied(Some(holder))
                    }
                    _ => {
                        *slot = Some((from, now));
                        WitnessAnswer::Granted
                    }
                }
            }
            WitnessAsk::Renew(groups) => {
                let mut lost = Vec::new();
                for g in groups {
                    match self.holders.get_mut(g.0 as usize) {
                        Some(Some((holder, renewed))) if *holder == from => *renewed = now,
                        _ => lost.push(*g),
                    }
                }
                WitnessAnswer::Renewed { lost }
            }
            WitnessAsk::Release(g) => {
                let slot = self.holders.get_mut(g.0 as usize)?;
                if slot.is_some_and(|(holder, _)| holder == from) {
                    *slot = None;
                }
                WitnessAnswer::Released
            }
        };
        self.newest.insert(from, stamp);
        Some(WitnessReply {
            to: from,
            incarnation: request.incarnation,
            sequence: request.sequence,
            answer,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessClientOutput {
    Send(WitnessRequest),
    Reply { id: OpId, result: LeaseResult },
    Wait(Instant),
}

struct Pending {
    id: OpId,
    issued: Instant,
    ask: WitnessAsk,
    deadline: Instant,
}

pub struct WitnessClient {
    me: NodeId,
    incarnation: u64,
    sequence: u64,
    reply_timeout: Duration,
    /// Held groups and the `since` of the latest renewal that covered each.
    held: BTreeMap<GroupId, Instant>,
    pending: BTreeMap<u64, Pending>,
    out: VecDeque<WitnessClientOutput>,
}

impl WitnessClient {
    pub fn new(me: NodeId, incarnation: u64, reply_timeout: Duration) -> WitnessClient {
        WitnessClient {
            me,
            incarnation,
            sequence: 0,
            reply_timeout,
            held: BTreeMap::new(),
            pending: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    pub fn held(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.held.keys().copied()
    }

    pub fn request(&mut self, now: Instant, id: OpId, request: LeaseRequest) {
        if self.pending.len() >= PENDING_MAX {
            let result = LeaseResult::Unavailable("too many witness requests in flight".into());
            self.out.push_back(WitnessClientOutput::Reply { id, result });
            return;
        }
        let ask = match request {
            LeaseRequest::Acquire(g) => WitnessAsk::Acquire(g),
            LeaseRequest::Renew => WitnessAsk::Renew(self.held.keys().copied().collect()),
            LeaseRequest::Release(g) => {
                self.held.remove(&g);
                WitnessAsk::Release(g)
            }
        };
        self.sequence += 1;
        let message = WitnessRequest {
            from: self.me,
            incarnation: self.incarnation,
            sequence: self.sequence,
            ask: ask.clone(),
        };
        let deadline = now + self.reply_timeout;
        self.pending.insert(self.sequence, Pending { id, issued: now, ask, deadline });
        self.out.push_back(WitnessClientOutput::Send(message));
    }

    pub fn reply(&mut self, _now: Instant, reply: &WitnessReply) {
        if reply.to != self.me || reply.incarnation != self.incarnation {
            return;
        }
        let Some(pending) = self.pending.remove(&reply.sequence) else {
            return; // late (already answered Unavailable) or duplicated
        };
        let since = pending.issued;
        let result = match (&pending.ask, &reply.answer) {
            (WitnessAsk::Acquire(g), WitnessAnswer::Granted) => {
                self.held.insert(*g, since);
                LeaseResult::Granted { since: self.earliest_covered(since) }
            }
            (WitnessAsk::Acquire(_), WitnessAnswer::Denied(holder)) => {
                LeaseResult::Denied { holder: *holder }
            }
            (WitnessAsk::Renew(groups), WitnessAnswer::Renewed { lost }) => {
                for g in groups {
                    if !lost.contains(g) {
                        if let Some(covered) = self.held.get_mut(g) {
                            *covered = (*covered).max(since);
                        }
                    }
                }
                for g in lost {
                    self.held.remove(g);
                }
                if lost.is_empty() {
                    LeaseResult::Granted { since: self.earliest_covered(since) }
                } else {
                    LeaseResult::Lost { groups: lost.clone() }
                }
            }
            (WitnessAsk::Release(_), WitnessAnswer::Released) => LeaseResult::Released,
            (ask, answer) => {
                LeaseResult::Unavailable(format!("witness answered {answer:?} to {ask:?}"))
            }
        };
        self.out.push_back(WitnessClientOutput::Reply { id: pending.id, result });
    }

    /// The `since` to report: no later than the latest renewal of each held group (the
    /// engine extends one lease for all its groups with every grant).
    fn earliest_covered(&self, since: Instant) -> Instant {
        self.held.values().copied().min().map_or(since, |c| c.min(since))
    }

    pub fn timeout(&mut self, now: Instant) {
        let expired: Vec<u64> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(s, _)| *s).collect();
        for sequence in expired {
            let pending = self.pending.remove(&sequence).expect("expired request");
            let result = LeaseResult::Unavailable("the witness did not answer".into());
            self.out.push_back(WitnessClientOutput::Reply { id: pending.id, result });
        }
    }

    pub fn poll_output(&mut self) -> WitnessClientOutput {
        if let Some(out) = self.out.pop_front() {
            return out;
        }
        let next = self.pending.values().map(|p| p.deadline).min().unwrap_or(Instant::MAX);
        WitnessClientOutput::Wait(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GroupId = GroupId(0);
    const A: NodeId = NodeId(0);
    const B: NodeId = NodeId(1);
    const SEC: u64 = 1_000_000_000;

    fn ask(from: NodeId, sequence: u64, ask: WitnessAsk) -> WitnessRequest {
        WitnessRequest { from, incarnation: 1, sequence, ask }
    }

    #[test]
    fn takeover_only_after_the_wait() {
        let mut w = WitnessServer::new(1, Duration::from_secs(2));
        let r = w.handle(Instant(0), &ask(A, 1, WitnessAsk::Acquire(G))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Granted);
        let r = w.handle(Instant(SEC), &ask(B, 1, WitnessAsk::Acquire(G))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Denied(Some(A)));
        let r = w.handle(Instant(SEC), &ask(A, 2, WitnessAsk::Renew(vec![G]))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Renewed { lost: vec![] });
        let r = w.handle(Instant(2 * SEC), &ask(B, 2, WitnessAsk::Acquire(G))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Denied(Some(A)));
        let r = w.handle(Instant(3 * SEC), &ask(B, 3, WitnessAsk::Acquire(G))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Granted);
        assert_eq!(w.holder(G), Some(B));
        let r = w.handle(Instant(3 * SEC), &ask(A, 3, WitnessAsk::Renew(vec![G]))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Renewed { lost: vec![G] });
    }

    #[test]
    fn stale_requests_are_dropped() {
        let mut w = WitnessServer::new(1, Duration::from_secs(2));
        w.handle(Instant(0), &ask(A, 5, WitnessAsk::Acquire(G))).unwrap();
        // A delayed release from before the acquire must not free the group.
        assert!(w.handle(Instant(1), &ask(A, 4, WitnessAsk::Release(G))).is_none());
        assert!(w.handle(Instant(1), &ask(A, 5, WitnessAsk::Release(G))).is_none());
        assert_eq!(w.holder(G), Some(A));
        // A new incarnation starts its sequence again.
        let restarted =
            WitnessRequest { from: A, incarnation: 2, sequence: 1, ask: WitnessAsk::Release(G) };
        assert!(w.handle(Instant(2), &restarted).is_some());
        assert_eq!(w.holder(G), None);
    }

    #[test]
    fn client_round_trip_and_timeout() {
        let mut w = WitnessServer::new(1, Duration::from_secs(2));
        let mut c = WitnessClient::new(A, 1, Duration::from_millis(100));
        c.request(Instant(10), OpId(1), LeaseRequest::Acquire(G));
        let WitnessClientOutput::Send(m) = c.poll_output() else { panic!() };
        let reply = w.handle(Instant(15), &m).unwrap();
        c.reply(Instant(20), &reply);
        assert_eq!(
            c.poll_output(),
            WitnessClientOutput::Reply {
                id: OpId(1),
                result: LeaseResult::Granted { since: Instant(10) }
            }
        );
        c.request(Instant(30), OpId(2), LeaseRequest::Renew);
        let WitnessClientOutput::Send(m) = c.poll_output() else { panic!() };
        assert_eq!(m.ask, WitnessAsk::Renew(vec![G]));
        assert_eq!(
            c.poll_output(),
            WitnessClientOutput::Wait(Instant(30) + Duration::from_millis(100))
        );
        c.timeout(Instant(30) + Duration::from_millis(100));
        assert!(matches!(
            c.poll_output(),
            WitnessClientOutput::Reply { id: OpId(2), result: LeaseResult::Unavailable(_) }
        ));
        // The late answer is ignored.
        let late = w.handle(Instant(140), &m).unwrap();
        c.reply(Instant(150), &late);
        assert_eq!(c.poll_output(), WitnessClientOutput::Wait(Instant::MAX));
    }

    /// A randomized check of the protocol alone: clients on drifting clocks acting like
    /// the engine (one lease for all groups, renewed every renew interval, dropped at
    /// expiry), a witness on its own drifting clock, messages lost, delayed, duplicated
    /// and reordered, clients crashing and restarting with a new incarnation. At no real
    /// instant may two clients hold a valid lease on one group.
    #[test]
    fn randomized_leases_never_overlap() {
        use crate::clock::Clock;
        use crate::queue::EventQueue;
        use engine::Timing;
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;

        const NODES: usize = 3;
        const GROUPS: u32 = 2;
        const MS: u64 = 1_000_000;
        let timing = Timing::default();
        let lt = timing.lease_timeout;

        enum Ev {
            ToWitness(WitnessRequest),
            ToNode(WitnessReply),
            Wake { node: usize, life: u64 },
            Tick { node: usize, life: u64 },
            Crash { node: usize },
        }
        struct Node {
            clock: Clock,
            client: WitnessClient,
            life: u64,
            up: bool,
            held: BTreeMap<GroupId, ()>,
            valid_until: Option<Instant>,
            pending: BTreeMap<OpId, LeaseRequest>,
            next_op: u64,
        }

        let mut granted = 0;
        for seed in 0..24u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let witness_clock = Clock::new(rng.gen_range(0..SEC), rng.gen_range(-5_000..=5_000));
            let mut server = WitnessServer::new(GROUPS as usize, timing.lease_takeover_wait());
            let mut queue = EventQueue::default();
            let reply_timeout = Duration::from_millis(150);
            let mut nodes: Vec<Node> = (0..NODES)
                .map(|n| Node {
                    clock: Clock::new(rng.gen_range(0..10 * SEC), rng.gen_range(-5_000..=5_000)),
                    client: WitnessClient::new(NodeId(n as u16), 1, reply_timeout),
                    life: 1,
                    up: true,
                    held: BTreeMap::new(),
                    valid_until: None,
                    pending: BTreeMap::new(),
                    next_op: 0,
                })
                .collect();
            for n in 0..NODES {
                queue.push(rng.gen_range(0..100 * MS), Ev::Tick { node: n, life: 1 });
                queue.push(rng.gen_range(1..60) * SEC, Ev::Crash { node: n });
            }
            let loss_ppm = rng.gen_range(0..300_000u32);
            let end = 180 * SEC;
            // Up to two deliveries (loss, duplication), each with a random delay.
            let deliveries = |rng: &mut ChaCha8Rng| -> Vec<u64> {
                let copies = if rng.gen_range(0..1_000_000) < loss_ppm {
                    0
                } else if rng.gen_bool(0.05) {
                    2
                } else {
                    1
                };
                (0..copies).map(|_| rng.gen_range(MS / 10..300 * MS)).collect()
            };
            while let Some((now, ev)) = queue.pop() {
                if now > end {
                    break;
                }
                let drain = |n: usize,
                             nodes: &mut Vec<Node>,
                             queue: &mut EventQueue<Ev>,
                             rng: &mut ChaCha8Rng| loop {
                    let node = &mut nodes[n];
                    let local = node.clock.local(now);
                    match node.client.poll_output() {
                        WitnessClientOutput::Send(request) => {
                            for delay in deliveries(rng) {
                                queue.push(now + delay, Ev::ToWitness(request.clone()));
                            }
                        }
                        WitnessClientOutput::Reply { id, result } => {
                            let request = node.pending.remove(&id).expect("a reply to a request");
                            let since = match (&request, &result) {
                                (LeaseRequest::Acquire(g), LeaseResult::Granted { since }) => {
                                    node.held.insert(*g, ());
                                    Some(*since)
                                }
                                (LeaseRequest::Renew, LeaseResult::Granted { since }) => {
                                    Some(*since)
                                }
                                (LeaseRequest::Renew, LeaseResult::Lost { groups }) => {
                                    for g in groups {
                                        node.held.remove(g);
                                    }
                                    None
                                }
                                _ => None,
                            };
                            if let Some(since) = since {
                                assert!(since <= local, "a grant from the future");
                                let until = since + lt;
                                node.valid_until =
                                    Some(node.valid_until.map_or(until, |u| u.max(until)));
                            }
                        }
                        WitnessClientOutput::Wait(at) => {
                            if let Some(real) = node.clock.real_at(at) {
                                queue.push(real.max(now), Ev::Wake { node: n, life: node.life });
                            }
                            return;
                        }
                    }
                };
                match ev {
                    Ev::ToWitness(request) => {
                        if let Some(reply) = server.handle(witness_clock.local(now), &request) {
                            for delay in deliveries(&mut rng) {
                                queue.push(now + delay, Ev::ToNode(reply.clone()));
                            }
                        }
                    }
                    Ev::ToNode(reply) => {
                        let n = usize::from(reply.to.0);
                        let node = &mut nodes[n];
                        if node.up {
                            node.client.reply(node.clock.local(now), &reply);
                            drain(n, &mut nodes, &mut queue, &mut rng);
                        }
                    }
                    Ev::Wake { node: n, life } => {
                        let node = &mut nodes[n];
                        if node.up && node.life == life {
                            node.client.timeout(node.clock.local(now));
                            drain(n, &mut nodes, &mut queue, &mut rng);
                        }
                    }
                    Ev::Tick { node: n, life } => {
                        let node = &mut nodes[n];
                        if !node.up || node.life != life {
                            continue;
                        }
                        let local = node.clock.local(now);
                        if node.valid_until.is_some_and(|u| u <= local) {
                            node.held.clear();
                            node.valid_until = None;
                        }
                        let mut requests = Vec::new();
                        if !node.held.is_empty()
                            && !node.pending.values().any(|r| *r == LeaseRequest::Renew)
                        {
                            requests.push(LeaseRequest::Renew);
                        }
                        for g in 0..GROUPS {
                            let g = GroupId(g);
                            if !node.held.contains_key(&g)
                                && !node.pending.values().any(|r| *r == LeaseRequest::Acquire(g))
                                && rng.gen_bool(0.3)
                            {
                                requests.push(LeaseRequest::Acquire(g));
                            }
                        }
                        if !node.held.is_empty() && rng.gen_bool(0.02) {
                            let g = *node.held.keys().next().expect("non-empty");
                            node.held.remove(&g);
                            requests.push(LeaseRequest::Release(g));
                        }
                        for request in requests {
                            let node = &mut nodes[n];
                            node.next_op += 1;
                            let id = OpId(node.next_op);
                            node.pending.insert(id, request);
                            node.client.request(local, id, request);
                        }
                        drain(n, &mut nodes, &mut queue, &mut rng);
                        let node = &nodes[n];
                        let next =
                            node.clock.real_at(local + timing.lease_renew_interval()).unwrap();
                        queue.push(next, Ev::Tick { node: n, life });
                    }
                    Ev::Crash { node: n } => {
                        let node = &mut nodes[n];
                        if node.up {
                            node.up = false;
                            node.held.clear();
                            node.valid_until = None;
                            node.pending.clear();
                            queue.push(now + rng.gen_range(1..10) * SEC, Ev::Crash { node: n });
                        } else {
                            node.up = true;
                            node.life += 1;
                            node.client =
                                WitnessClient::new(NodeId(n as u16), node.life, reply_timeout);
                            queue.push(now, Ev::Tick { node: n, life: node.life });
                            queue.push(now + rng.gen_range(5..60) * SEC, Ev::Crash { node: n });
                        }
                    }
                }
                for g in 0..GROUPS {
                    let g = GroupId(g);
                    let holders: Vec<usize> = (0..NODES)
                        .filter(|n| {
                            let node = &nodes[*n];
                            node.up
                                && node.held.contains_key(&g)
                                && node.valid_until.is_some_and(|u| u > node.clock.local(now))
                        })
                        .collect();
                    assert!(
                        holders.len() <= 1,
                        "seed {seed}: {g:?} held by {holders:?} at {now} ns"
                    );
                    granted += holders.len();
                }
            }
        }
        assert!(granted > 1_000, "the test must exercise grants ({granted})");
    }
}
