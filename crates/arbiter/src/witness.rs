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
//!
//! A `Park` (a node stopping in maintenance, its resources left running) renews the
//! listed groups and keeps them for that node without a takeover wait: the server
//! denies them to every other node until that node acquires (found running) or
//! releases (found stopped) each in its next run, which learns them at start
//! ([`WitnessServer::parked_for`]; the simulator asks the server directly, the witness
//! process to come answers it as its first request).

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
    /// Renew these groups and keep them for this node while its daemon is down.
    Park(Vec<GroupId>),
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
    /// Per group: its holder, when (server clock) it last renewed or acquired it, and
    /// whether it parked it.
    holders: Vec<Option<(NodeId, Instant, bool)>>,
    /// Per node: the newest (incarnation, sequence) taken.
    newest: BTreeMap<NodeId, (u64, u64)>,
}

impl WitnessServer {
    pub fn new(groups: usize, takeover_wait: Duration) -> WitnessServer {
        WitnessServer { takeover_wait, holders: vec![None; groups], newest: BTreeMap::new() }
    }

    pub fn holder(&self, group: GroupId) -> Option<NodeId> {
        self.holders.get(group.0 as usize).copied().flatten().map(|(n, _, _)| n)
    }

    /// The groups `node` parked: what its next run learns at start.
    pub fn parked_for(&self, node: NodeId) -> Vec<GroupId> {
        let parked = |(g, h): (usize, &Option<(NodeId, Instant, bool)>)| match h {
            Some((holder, _, true)) if *holder == node => Some(GroupId(g as u32)),
            _ => None,
        };
        self.holders.iter().enumerate().filter_map(parked).collect()
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
                    Some((holder, renewed, parked))
                        if holder != from
                            && (parked || now.saturating_since(renewed) < self.takeover_wait) =>
                    {
                        WitnessAnswer::Denied(Some(holder))
                    }
                    _ => {
                        *slot = Some((from, now, false));
                        WitnessAnswer::Granted
                    }
                }
            }
            WitnessAsk::Renew(groups) | WitnessAsk::Park(groups) => {
                let park = matches!(request.ask, WitnessAsk::Park(_));
                let mut lost = Vec::new();
                for g in groups {
                    match self.holders.get_mut(g.0 as usize) {
                        Some(Some((holder, renewed, parked))) if *holder == from => {
                            *renewed = now;
                            *parked = park;
                        }
                        _ => lost.push(*g),
                    }
                }
                WitnessAnswer::Renewed { lost }
            }
            WitnessAsk::Release(g) => {
                let slot = self.holders.get_mut(g.0 as usize)?;
                if slot.is_some_and(|(holder, _, _)| holder == from) {
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
            LeaseRequest::Park => WitnessAsk::Park(self.held.keys().copied().collect()),
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
            (
                WitnessAsk::Renew(groups) | WitnessAsk::Park(groups),
                WitnessAnswer::Renewed { lost },
            ) => {
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
    fn a_parked_group_is_denied_until_its_node_takes_or_gives_it_back() {
        let mut w = WitnessServer::new(2, Duration::from_secs(2));
        let g1 = GroupId(1);
        w.handle(Instant(0), &ask(A, 1, WitnessAsk::Acquire(G))).unwrap();
        w.handle(Instant(0), &ask(A, 2, WitnessAsk::Acquire(g1))).unwrap();
        let r = w.handle(Instant(SEC), &ask(A, 3, WitnessAsk::Park(vec![G, g1]))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Renewed { lost: vec![] });
        assert_eq!(w.parked_for(A), vec![G, g1]);
        let r = w.handle(Instant(100 * SEC), &ask(B, 1, WitnessAsk::Acquire(G))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Denied(Some(A)));
        // A's next run renews nothing yet: still parked. It takes G, gives g1 back.
        let next = |sequence, ask| WitnessRequest { from: A, incarnation: 2, sequence, ask };
        w.handle(Instant(101 * SEC), &next(1, WitnessAsk::Renew(vec![]))).unwrap();
        assert_eq!(w.parked_for(A), vec![G, g1]);
        let r = w.handle(Instant(102 * SEC), &next(2, WitnessAsk::Acquire(G))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Granted);
        w.handle(Instant(102 * SEC), &next(3, WitnessAsk::Release(g1))).unwrap();
        assert_eq!(w.parked_for(A), Vec::<GroupId>::new());
        let r = w.handle(Instant(103 * SEC), &ask(B, 2, WitnessAsk::Acquire(g1))).unwrap();
        assert_eq!(r.answer, WitnessAnswer::Granted);
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
}
