//! The disk worker and the witness path under simulation: what a node core's
//! [`Action::DiskJob`](nodecore::Action::DiskJob) becomes on the simulated shared disk,
//! and its [`Action::ToWitness`](nodecore::Action::ToWitness) on the simulated network.
//! A job is carried out as the daemon's worker does on its ring (`daemon::diskio`): one
//! job at a time per worker, its writes (the lease client's, then the heartbeat slot)
//! started at once, its reads (the lease client's, the peers' slots, the mailbox) from
//! the job's `reads_after`, every I/O landing after its own latency; no I/O starts at or
//! after the job's deadline (it fails as too late), a write already started lands
//! whatever happens to its daemon (the device carries it out), and the answer is given
//! when the last I/O has returned: at once if the core is in prompt mode, else at the
//! daemon's next wake-up. Every verdict on the answer (in time, late, ended after an
//! unfinished answer) is the core's (`nodecore::Jobs`), as in the daemon. It keeps the
//! S3 checker's view of each daemon's leases from the core's
//! [`Action::LeaseAnswered`](nodecore::Action::LeaseAnswered). It must not hold lease
//! or disk logic of its own.

use arbiter::disk::{Block, IoOp, IoResult, Record};
use arbiter::witness::WitnessRequest;
use engine::{Heartbeat, Instant, LeaseRequest, LeaseResult, NodeId};
use nodecore::{DiskAnswer, DiskDone, JobPlan};

use super::world::Arrival;
use super::{Ev, Sim};
use crate::core::Core;

/// One I/O of a job.
#[derive(Clone, Debug)]
pub(super) enum Part {
    /// The lease client's I/O at this index of the plan's `lease`.
    Lease(usize),
    Slot,
    Peers,
    Mail,
}

/// A job on a host's disk worker, from its submission to its answer.
pub(super) struct SimJob {
    /// The daemon (boot) that submitted it, and the core's id of it.
    pub(super) boot: u64,
    pub(super) id: u64,
    pub(super) plan: JobPlan,
    /// Real instant of its deadline: an I/O that lands at or after it is stale.
    pub(super) deadline_ns: u64,
    pub(super) done: DiskDone<Heartbeat>,
    /// Real instants: when its lease writes, and the whole job, end.
    pub(super) writes_end_ns: u64,
    pub(super) end_ns: u64,
}

impl<C: Core> Sim<C> {
    /// `node`'s daemon hands job `id` to its disk worker (see the module doc).
    pub(super) fn disk_job(
        &mut self,
        node: NodeId,
        id: u64,
        plan: JobPlan,
        deadline: Instant,
        reads_after: Instant,
    ) {
        let n = usize::from(node.0);
        let now = self.now;
        let host = &mut self.hosts[n];
        let Some(boot) = host.daemon.as_ref().map(|d| d.boot) else { return };
        if let Some(message) = &plan.slot {
            host.persisted_admin = Some(message.report.clone());
        }
        let real = |at: Instant| host.clock.real_at(at).unwrap_or(u64::MAX).max(now);
        let (deadline_ns, reads_ns) = (real(deadline), real(reads_after));
        let start = now.max(host.worker_free_ns);
        host.next_job += 1;
        let key = host.next_job;
        let mut parts: Vec<(Part, u64)> = Vec::new();
        for (i, (_, op)) in plan.lease.iter().enumerate() {
            let write = matches!(op, IoOp::Write(..));
            parts.push((Part::Lease(i), if write { start } else { start.max(reads_ns) }));
        }
        if plan.slot.is_some() {
            parts.push((Part::Slot, start));
        }
        if plan.peers {
            parts.push((Part::Peers, start.max(reads_ns)));
        }
        if plan.mail {
            parts.push((Part::Mail, start.max(reads_ns)));
        }
        let mut done = DiskDone {
            lease: plan
                .lease
                .iter()
                .map(|(io, _)| (*io, IoResult::Failed("pending".into())))
                .collect(),
            slot: None,
            peers: None,
            mail: None,
            writes_done_at: None,
        };
        let (mut end, mut writes_end) = (start, start);
        for (part, begins) in parts {
            if begins >= deadline_ns {
                // The worker starts nothing past the deadline.
                self.io_result(&mut done, &plan, &part, None, node);
                continue;
            }
            let (ok, latency) = self.disk.io(&mut self.rng, node);
            let lands = begins + latency;
            end = end.max(lands);
            if matches!(part, Part::Lease(i) if matches!(plan.lease[i].1, IoOp::Write(..))) {
                writes_end = writes_end.max(lands);
            }
            self.queue.push(lands, Ev::DiskIo { node, job: key, part, ok });
        }
        let host = &mut self.hosts[n];
        host.worker_free_ns = end;
        let job =
            SimJob { boot, id, plan, deadline_ns, done, writes_end_ns: writes_end, end_ns: end };
        host.jobs.insert(key, job);
        self.queue.push(end, Ev::DiskJobEnd { node, job: key });
    }

    /// Records one part's result in `done`: `ok` is `None` for an I/O never started.
    fn io_result(
        &mut self,
        done: &mut DiskDone<Heartbeat>,
        plan: &JobPlan,
        part: &Part,
        ok: Option<bool>,
        node: NodeId,
    ) {
        let why = match ok {
            None => Some("too late: not started before the job's deadline"),
            Some(false) if self.disk.path_ok[usize::from(node.0)] => Some("I/O error"),
            Some(false) => Some("path lost"),
            Some(true) => None,
        };
        match part {
            Part::Lease(i) => {
                done.lease[*i].1 = match (why, &plan.lease[*i].1) {
                    (Some(why), _) => IoResult::Failed(why.into()),
                    (None, IoOp::Read(block)) => IoResult::Read(self.disk.read(*block)),
                    (None, IoOp::Write(..)) => IoResult::Written,
                }
            }
            Part::Slot => done.slot = Some(why.map_or(Ok(()), |w| Err(w.into()))),
            Part::Peers => {
                done.peers = Some(match why {
                    Some(why) => Err(why.into()),
                    None => Ok(self
                        .spec
                        .node_ids()
                        .filter(|from| *from != node)
                        .map(|from| (from, self.disk.read_slot(from, node).cloned()))
                        .collect()),
                })
            }
            Part::Mail => {
                done.mail = Some(match why {
                    Some(why) => Err(why.into()),
                    None => Ok(self.disk.read(Block::Mailbox(node))),
                })
            }
        }
    }

    /// One I/O of a job lands: a write takes effect (whether or not its daemon still
    /// lives), a read sees the disk as it is now.
    pub(super) fn disk_io_lands(&mut self, node: NodeId, key: u64, part: Part, ok: bool) {
        let n = usize::from(node.0);
        let Some(mut job) = self.hosts[n].jobs.remove(&key) else { return };
        if ok {
            let stale = self.now >= job.deadline_ns;
            match &part {
                Part::Lease(i) => {
                    if let IoOp::Write(block, record) = &job.plan.lease[*i].1 {
                        if let Record::Group(g) = record {
                            self.trace.u64(g.owner.map_or(u64::MAX, |o| u64::from(o.0)));
                        }
                        self.disk.write(*block, record.clone(), stale);
                    }
                }
                Part::Slot => {
                    if let Some(message) = &job.plan.slot {
                        self.disk.write_slot(node, message.clone());
                    }
                }
                Part::Peers | Part::Mail => {}
            }
        }
        let plan = std::mem::take(&mut job.plan);
        self.io_result(&mut job.done, &plan, &part, Some(ok), node);
        job.plan = plan;
        self.hosts[n].jobs.insert(key, job);
    }

    /// A job's last I/O returned: its answer goes to its daemon (at once in prompt
    /// mode, else at its next wake-up), if that daemon still lives.
    pub(super) fn disk_job_ends(&mut self, node: NodeId, key: u64) {
        let n = usize::from(node.0);
        let host = &mut self.hosts[n];
        let Some(job) = host.jobs.remove(&key) else { return };
        let mut done = job.done;
        if job.plan.time_writes && job.writes_end_ns < job.end_ns {
            done.writes_done_at = Some(host.clock.local(job.writes_end_ns));
        }
        let answer = DiskAnswer { id: job.id, done, done_at: host.clock.local(job.end_ns) };
        let Some(daemon) = host.daemon.as_mut().filter(|d| d.boot == job.boot) else { return };
        if daemon.prompt || daemon.paused.is_some() {
            self.wake_node(node, Arrival::Disk(answer));
        } else {
            daemon.quiet.push(answer);
        }
    }

    /// The S3 checker's view of `node`'s leases after its core answered a lease request.
    pub(super) fn lease_answered(
        &mut self,
        node: NodeId,
        request: Option<LeaseRequest>,
        result: &LeaseResult,
    ) {
        let local = self.local(node);
        let Some(daemon) = self.hosts[usize::from(node.0)].daemon.as_mut() else { return };
        let mut granted = None;
        match (request, result) {
            (Some(LeaseRequest::Acquire(g)), LeaseResult::Granted { since }) => {
                daemon.held.insert(g);
                granted = Some(*since);
            }
            (Some(LeaseRequest::Renew | LeaseRequest::Park), LeaseResult::Granted { since }) => {
                granted = Some(*since)
            }
            (Some(LeaseRequest::Renew | LeaseRequest::Park), LeaseResult::Lost { groups }) => {
                for g in groups {
                    daemon.held.remove(g);
                }
            }
            (Some(LeaseRequest::Release(g)), LeaseResult::Released) => {
                daemon.held.remove(&g);
            }
            _ => {}
        }
        if let Some(since) = granted {
            // As the engine does: a `since` in the future is clamped to now.
            let since = since.min(local);
            daemon.lease_since = Some(daemon.lease_since.map_or(since, |s| s.max(since)));
        }
    }

    /// A message of `node`'s lease client for the witness crosses the network.
    pub(super) fn send_to_witness(&mut self, node: NodeId, request: WitnessRequest) {
        let deliveries = self.net.to_witness[usize::from(node.0)].send(&mut self.rng);
        for delay in [deliveries.first, deliveries.second].into_iter().flatten() {
            self.queue.push(self.now + delay, Ev::ToWitness(request.clone()));
        }
    }

    pub(super) fn witness_request(&mut self, request: WitnessRequest) {
        let now = self.now;
        let Some((server, clock)) = self.witness.as_mut() else { return };
        let Some(reply) = server.handle(clock.local(now), &request) else { return };
        let node = reply.to;
        if usize::from(node.0) >= self.hosts.len() {
            return;
        }
        let deliveries = self.net.from_witness[usize::from(node.0)].send(&mut self.rng);
        for delay in [deliveries.first, deliveries.second].into_iter().flatten() {
            self.queue.push(now + delay, Ev::FromWitness { node, reply: reply.clone() });
        }
    }
}
