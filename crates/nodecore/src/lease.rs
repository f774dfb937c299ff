//! The lease client beside every engine, one type for the three arbitrations, so that
//! the daemon and the simulator build and drive it the same way: `none` grants every
//! request at once (no arbitrator: nothing keeps two nodes apart but the heartbeats),
//! `disk` is the delta-lease client of [`arbiter::disk`] (watching ahead the groups this
//! node may run, as every node does from its start), `witness` the client of
//! [`arbiter::witness`]. The caller feeds requests and results in and carries out
//! [`LeaseStep`]s until [`LeaseStep::Wait`]; replies are [`engine::Input::Lease`] for
//! the engine.

use std::collections::VecDeque;
use std::time::Duration;

use arbiter::disk::{ClientOutput, DiskLeaseClient, DiskLeaseConfig, IoId, IoOp};
use arbiter::witness::{WitnessClient, WitnessClientOutput, WitnessRequest};
use engine::{
    ArbitrationKind, ClusterSpec, GroupId, Instant, LeaseRequest, LeaseResult, NodeId, OpId,
};

/// One node's lease client.
pub enum LeaseClient {
    /// `arbitration = "none"`: every request is granted (or released) at once; the
    /// replies wait here to be polled.
    Open(VecDeque<(OpId, LeaseResult)>),
    Disk(Box<DiskLeaseClient>),
    Witness(Box<WitnessClient>),
}

/// What the client wants done next.
#[derive(Clone, Debug, PartialEq)]
pub enum LeaseStep {
    /// A read or write of the disk area (disk arbitration); answer with
    /// [`DiskLeaseClient::io_done`].
    DiskIo { io: IoId, op: IoOp },
    /// A message for the witness (witness arbitration).
    ToWitness(WitnessRequest),
    /// The answer to a request, for the engine.
    Reply { id: OpId, result: LeaseResult },
    /// Nothing more until this instant (or the next request or result).
    Wait(Instant),
}

/// The groups of `spec` that node `me` may run.
pub fn member_groups(spec: &ClusterSpec, me: NodeId) -> Vec<GroupId> {
    spec.group_ids().filter(|g| spec.group(*g).nodes.contains(&me)).collect()
}

impl LeaseClient {
    /// The client of `spec`'s arbitration for node `me` in its daemon's `incarnation`,
    /// started at `now`: a disk client with I/O timeout `io_timeout` (see
    /// [`crate::timing::disk_io_timeout`]) that watches the node's groups from the
    /// start; a witness client that waits `witness_reply_timeout` for each reply.
    pub fn new(
        spec: &ClusterSpec,
        me: NodeId,
        incarnation: u64,
        now: Instant,
        io_timeout: Duration,
        witness_reply_timeout: Duration,
    ) -> LeaseClient {
        match spec.arbitration {
            ArbitrationKind::None => LeaseClient::Open(VecDeque::new()),
            ArbitrationKind::Disk => {
                let config = DiskLeaseConfig::new(&spec.timing, io_timeout);
                let mut client = DiskLeaseClient::new(me, incarnation, config);
                client.watch(now, member_groups(spec, me));
                LeaseClient::Disk(Box::new(client))
            }
            ArbitrationKind::Witness => LeaseClient::Witness(Box::new(WitnessClient::new(
                me,
                incarnation,
                witness_reply_timeout,
            ))),
        }
    }

    /// A request of the engine ([`engine::Output::Lease`]).
    pub fn request(&mut self, now: Instant, id: OpId, request: LeaseRequest) {
        match self {
            LeaseClient::Open(replies) => {
                let result = match request {
                    LeaseRequest::Acquire(_) | LeaseRequest::Renew | LeaseRequest::Park => {
                        LeaseResult::Granted { since: now }
                    }
                    LeaseRequest::Release(_) => LeaseResult::Released,
                };
                replies.push_back((id, result));
            }
            LeaseClient::Disk(client) => client.request(now, id, request),
            LeaseClient::Witness(client) => client.request(now, id, request),
        }
    }

    /// Time passed: give up on what is overdue.
    pub fn timeout(&mut self, now: Instant) {
        match self {
            LeaseClient::Open(_) => {}
            LeaseClient::Disk(client) => client.timeout(now),
            LeaseClient::Witness(client) => client.timeout(now),
        }
    }

    /// The next step; call until [`LeaseStep::Wait`].
    pub fn poll(&mut self) -> LeaseStep {
        match self {
            LeaseClient::Open(replies) => match replies.pop_front() {
                Some((id, result)) => LeaseStep::Reply { id, result },
                None => LeaseStep::Wait(Instant::MAX),
            },
            LeaseClient::Disk(client) => match client.poll_output() {
                ClientOutput::Io { io, op } => LeaseStep::DiskIo { io, op },
                ClientOutput::Reply { id, result } => LeaseStep::Reply { id, result },
                ClientOutput::Wait(at) => LeaseStep::Wait(at),
            },
            LeaseClient::Witness(client) => match client.poll_output() {
                WitnessClientOutput::Send(request) => LeaseStep::ToWitness(request),
                WitnessClientOutput::Reply { id, result } => LeaseStep::Reply { id, result },
                WitnessClientOutput::Wait(at) => LeaseStep::Wait(at),
            },
        }
    }

    /// The disk client, for its schedule.
    pub fn disk(&self) -> Option<&DiskLeaseClient> {
        match self {
            LeaseClient::Disk(client) => Some(client),
            _ => None,
        }
    }

    /// The disk client, for its I/O results.
    pub fn disk_mut(&mut self) -> Option<&mut DiskLeaseClient> {
        match self {
            LeaseClient::Disk(client) => Some(client),
            _ => None,
        }
    }

    /// The witness client, for the witness's replies.
    pub fn witness(&mut self) -> Option<&mut WitnessClient> {
        match self {
            LeaseClient::Witness(client) => Some(client),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn without_an_arbitrator_every_request_is_answered_at_once_in_order() {
        let mut spec = engine_spec();
        spec.arbitration = ArbitrationKind::None;
        let mut client =
            LeaseClient::new(&spec, NodeId(0), 1, Instant(0), Duration::ZERO, Duration::ZERO);
        client.request(Instant(5), OpId(1), LeaseRequest::Acquire(GroupId(0)));
        client.request(Instant(6), OpId(2), LeaseRequest::Release(GroupId(0)));
        let granted = LeaseResult::Granted { since: Instant(5) };
        assert_eq!(client.poll(), LeaseStep::Reply { id: OpId(1), result: granted });
        let released = LeaseResult::Released;
        assert_eq!(client.poll(), LeaseStep::Reply { id: OpId(2), result: released });
        assert_eq!(client.poll(), LeaseStep::Wait(Instant::MAX));
    }

    #[test]
    fn a_disk_client_watches_the_nodes_groups_from_its_start() {
        let spec = engine_spec();
        let io = crate::timing::disk_io_timeout(&spec.timing);
        let mut client = LeaseClient::new(&spec, NodeId(1), 1, Instant(0), io, Duration::ZERO);
        // A watch round is due from the start, before any request.
        assert!(client.witness().is_none());
        let (_, watch) = client.disk().expect("a disk client").next_steps();
        assert!(client.disk_mut().is_some());
        assert_eq!(watch, Instant(0));
    }

    pub(crate) fn engine_spec() -> ClusterSpec {
        use engine::{GroupSpec, NodeSpec, Timing};
        ClusterSpec {
            name: "t".into(),
            timing: Timing::default(),
            nodes: vec![NodeSpec { name: "a".into() }, NodeSpec { name: "b".into() }],
            links: Vec::new(),
            arbitration: ArbitrationKind::Disk,
            groups: vec![GroupSpec {
                name: "g".into(),
                nodes: vec![NodeId(0), NodeId(1)],
                failback: engine::Failback::Manual,
                failback_delay: Duration::ZERO,
                migration_threshold: 3,
                failure_timeout: Duration::from_secs(60),
                resources: Vec::new(),
            }],
        }
    }
}
