//! What the simulator drives on each node: the node core's [`Core`] trait (the engine
//! inside `nodecore::NodeCore`), implemented by the real `engine::Engine` (the only
//! implementation outside tests). The trait exists so that the simulator's own tests can
//! run a deliberately naive core whose behaviour is known exactly, independently of the
//! engine's policy.

pub use nodecore::Core;

/// A greedy core for the simulator's own tests: it asks for the lease of every group it
/// may run, starts a group's resources in order as soon as it is granted, renews, and
/// never stops anything. With an arbitrator only one node gets each group; without one
/// every node runs every group (split brain), which the checkers must report.
#[cfg(test)]
pub mod greedy {
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Arc;
    use std::time::Duration;

    use engine::catalogue;
    use engine::*;

    use super::*;

    pub struct Greedy {
        spec: Arc<ClusterSpec>,
        me: NodeId,
        incarnation: u64,
        sequence: u64,
        next_op: u64,
        next_beat: Instant,
        next_renew: Instant,
        next_retry: Instant,
        /// Per group: the next resource to start (in effective order), once granted.
        starting: BTreeMap<GroupId, usize>,
        pending_acquire: BTreeMap<OpId, GroupId>,
        /// Start operations in flight, by group.
        starts: BTreeMap<OpId, GroupId>,
        out: VecDeque<Output>,
    }

    impl Greedy {
        /// The simulator's tests arm its guard through it: its next output is this
        /// `ArmFence` (a greedy core arms none of its own).
        pub fn arm_fence(&mut self, deadline: Instant) {
            self.out.push_back(Output::ArmFence { deadline: Some(deadline), keep_earlier: false });
        }

        fn op(&mut self) -> OpId {
            self.next_op += 1;
            OpId(self.next_op)
        }

        fn acquire_missing(&mut self) {
            let groups: Vec<GroupId> = self
                .spec
                .group_ids()
                .filter(|g| self.spec.group(*g).nodes.contains(&self.me))
                .filter(|g| !self.starting.contains_key(g))
                .filter(|g| !self.pending_acquire.values().any(|p| p == g))
                .collect();
            for g in groups {
                let id = self.op();
                self.pending_acquire.insert(id, g);
                self.out.push_back(Output::Lease { id, request: LeaseRequest::Acquire(g) });
            }
        }

        fn start_next(&mut self, now: Instant, group: GroupId) {
            let spec = self.spec.clone();
            let g = spec.group(group);
            let order: Vec<ResourceId> = g
                .start_order()
                .into_iter()
                .filter(|r| !g.resource(*r).kind.is_monitor_only())
                .collect();
            let next = self.starting[&group];
            if let Some(resource) = order.get(next).copied() {
                let id = self.op();
                self.starts.insert(id, group);
                let timeout = g.resource(resource).start_timeout;
                self.out.push_back(Output::Operation {
                    id,
                    group,
                    resource,
                    op: OpKind::Start,
                    timeout,
                });
            } else {
                self.out.push_back(Output::Event(Event {
                    at: now,
                    node: self.me,
                    code: &catalogue::GROUP_RUNNING,
                    group: Some(group),
                    resource: None,
                    location: None,
                    message: format!("{} running", g.name),
                }));
            }
        }
    }

    impl Core for Greedy {
        fn start(spec: Arc<ClusterSpec>, me: NodeId, incarnation: u64, now: Instant) -> Self {
            let mut core = Greedy {
                spec,
                me,
                incarnation,
                sequence: 0,
                next_op: 0,
                next_beat: now,
                next_renew: now + Duration::from_millis(200),
                next_retry: now + Duration::from_secs(1),
                starting: BTreeMap::new(),
                pending_acquire: BTreeMap::new(),
                starts: BTreeMap::new(),
                out: VecDeque::new(),
            };
            core.acquire_missing();
            core
        }

        fn handle(&mut self, now: Instant, input: Input) {
            match input {
                Input::Lease { id, result } => {
                    if let Some(group) = self.pending_acquire.remove(&id) {
                        if let LeaseResult::Granted { .. } = result {
                            self.starting.insert(group, 0);
                            self.start_next(now, group);
                        }
                    }
                }
                Input::Operation { id, result: OpResult::Ok } => {
                    if let Some(group) = self.starts.remove(&id) {
                        *self.starting.get_mut(&group).expect("starting group") += 1;
                        self.start_next(now, group);
                    }
                }
                _ => {}
            }
            if now >= self.next_beat {
                self.next_beat = now + self.spec.timing.heartbeat_interval;
                self.sequence += 1;
                let report = Arc::new(NodeReport {
                    state: NodeState::Working,
                    storage_ok: true,
                    groups: Vec::new(),
                    links_up: Vec::new(),
                    admin: AdminState::default(),
                });
                for link in self.spec.link_ids() {
                    for to in self.spec.node_ids().filter(|n| *n != self.me) {
                        let message = Heartbeat {
                            from: self.me,
                            incarnation: self.incarnation,
                            sequence: self.sequence,
                            sent_at: now,
                            echo: None,
                            report: report.clone(),
                        };
                        self.out.push_back(Output::Heartbeat { link, to, message });
                    }
                }
            }
            if now >= self.next_renew {
                self.next_renew = now + Duration::from_millis(200);
                if !self.starting.is_empty() {
                    let id = self.op();
                    self.out.push_back(Output::Lease { id, request: LeaseRequest::Renew });
                }
            }
            if now >= self.next_retry {
                self.next_retry = now + Duration::from_secs(1);
                self.acquire_missing();
            }
        }

        fn poll_output(&mut self) -> Output {
            self.out.pop_front().unwrap_or_else(|| {
                Output::Wait(self.next_beat.min(self.next_renew).min(self.next_retry))
            })
        }

        fn status(&self, _now: Instant) -> Status {
            Status {
                reported_by: self.me,
                nodes: Vec::new(),
                links: Vec::new(),
                groups: self
                    .spec
                    .group_ids()
                    .map(|group| GroupStatus {
                        group,
                        state: GroupState::Running,
                        owner: None,
                        locked: false,
                        lock_reason: None,
                        resources: Vec::new(),
                    })
                    .collect(),
                leases: Vec::new(),
                faults: Vec::new(),
            }
        }

        /// It never stops anything, so a stop signal ends it only at the deadline.
        fn is_quiescent(&self) -> bool {
            false
        }
    }
}
