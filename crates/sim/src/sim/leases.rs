//! The node's lease client under simulation: an engine's lease requests go to the shared
//! `nodecore` client (the daemon's own), whose disk I/O runs against the simulated shared
//! disk (landing late past the client's I/O timeout) and whose witness messages cross the
//! simulated network to the witness server; replies go back to the engine through the
//! event queue. It keeps the S3 checker's view of each daemon's leases. It must not hold
//! lease logic of its own: every rule is the client's or the arbiter protocols'.

use engine::{Input, LeaseRequest, LeaseResult, NodeId, OpId};

use super::{Daemon, Ev, Missed, Sim};
use crate::core::Core;
use arbiter::disk::{IoId, IoOp, IoResult, Record};
use arbiter::witness::WitnessRequest;
use nodecore::LeaseStep;

impl<C: Core> Sim<C> {
    /// The disk lease client's I/O timeout ([`Options::io_timeout`](super::Options::io_timeout)).
    pub(super) fn io_timeout_ns(&self) -> u64 {
        match self.options.io_timeout {
            Some(timeout) => timeout.as_nanos() as u64,
            None => crate::faults::disk_io_timeout_ns(&self.spec),
        }
    }

    pub(super) fn lease_request(&mut self, node: NodeId, id: OpId, request: LeaseRequest) {
        let local = self.local(node);
        let daemon = self.hosts[usize::from(node.0)].daemon.as_mut().expect("live daemon");
        daemon.requests.insert(id, request);
        daemon.client.request(local, id, request);
        self.drain_client(node);
    }

    /// Carries out what a node's lease client asks for. Replies go through the queue
    /// (at the current instant) so that an engine is never fed from inside its own
    /// output loop.
    pub(super) fn drain_client(&mut self, node: NodeId) {
        let n = usize::from(node.0);
        loop {
            let Some(daemon) = self.hosts[n].daemon.as_mut() else { return };
            let boot = daemon.boot;
            let wait = match daemon.client.poll() {
                LeaseStep::DiskIo { io, op } => {
                    let (ok, latency) = self.disk.io(&mut self.rng, node);
                    let deadline_ns = self.now + self.io_timeout_ns();
                    let ev = Ev::LeaseIo { node, boot, io, op, ok, deadline_ns };
                    self.queue.push(self.now + latency, ev);
                    continue;
                }
                LeaseStep::ToWitness(request) => {
                    let deliveries = self.net.to_witness[n].send(&mut self.rng);
                    for delay in [deliveries.first, deliveries.second].into_iter().flatten() {
                        self.queue.push(self.now + delay, Ev::ToWitness(request.clone()));
                    }
                    continue;
                }
                LeaseStep::Reply { id, result } => {
                    self.queue.push(self.now, Ev::LeaseReply { node, boot, id, result });
                    continue;
                }
                LeaseStep::Wait(at) => at,
            };
            let host = &mut self.hosts[n];
            let daemon = host.daemon.as_mut().expect("checked");
            match host.clock.real_at(wait) {
                None => daemon.lease_timer.at_ns = None,
                Some(real) => {
                    let real = real.max(self.now);
                    if daemon.lease_timer.at_ns != Some(real) {
                        daemon.lease_timer.at_ns = Some(real);
                        daemon.lease_timer.generation += 1;
                        let generation = daemon.lease_timer.generation;
                        self.queue.push(real, Ev::LeaseTimer { node, boot, generation });
                    }
                }
            }
            return;
        }
    }

    /// A disk lease I/O lands; past `deadline_ns` it is stale (its writer gave up on it:
    /// a stalled disk).
    pub(super) fn lease_io(
        &mut self,
        node: NodeId,
        boot: u64,
        io: IoId,
        op: IoOp,
        ok: bool,
        deadline_ns: u64,
    ) {
        let stale = self.now >= deadline_ns;
        // The device carries out a write whether or not its daemon still lives.
        let result = match (ok, op) {
            (false, _) => {
                let why =
                    if self.disk.path_ok[usize::from(node.0)] { "I/O error" } else { "path lost" };
                IoResult::Failed(why.into())
            }
            (true, IoOp::Read(block)) => IoResult::Read(self.disk.read(block)),
            (true, IoOp::Write(block, record)) => {
                if let Record::Group(g) = &record {
                    self.trace.u64(g.owner.map_or(u64::MAX, |o| u64::from(o.0)));
                }
                self.disk.write(block, record, stale);
                IoResult::Written
            }
        };
        self.io_done(node, boot, io, result, deadline_ns);
    }

    /// Hands a completed disk lease I/O to the node's lease client (kept for the resume
    /// while its daemon is paused). As the daemon's disk worker does (`diskio`), an
    /// answer its loop reads after the I/O's deadline counts as failed: a paused daemon
    /// learns of its I/O only when it resumes, and what a read found before the pause
    /// must not pass for what the disk holds after it (active-standby seed 273: a claim
    /// read from before a pause led to a claim over the peer's, S1).
    pub(super) fn io_done(
        &mut self,
        node: NodeId,
        boot: u64,
        io: IoId,
        result: IoResult,
        deadline_ns: u64,
    ) {
        let local = self.local(node);
        let result = if self.now >= deadline_ns && !matches!(result, IoResult::Failed(_)) {
            IoResult::Failed("disk I/O did not finish within the I/O timeout".into())
        } else {
            result
        };
        match self.daemon_mut(node, boot) {
            Some(Daemon { paused: Some(paused), .. }) => {
                paused.backlog.push(Missed::IoDone { io, result, deadline_ns });
            }
            Some(Daemon { client, .. }) if client.disk().is_some() => {
                let ok = !matches!(result, IoResult::Failed(_));
                if let Some(c) = client.disk_mut() {
                    c.io_done(local, local, io, result);
                }
                self.drain_client(node);
                self.storage_result(node, ok);
            }
            _ => {}
        }
    }

    pub(super) fn lease_reply(&mut self, node: NodeId, boot: u64, id: OpId, result: LeaseResult) {
        let local = self.local(node);
        let Some(daemon) = self.daemon_mut(node, boot) else { return };
        let mut granted = None;
        match (daemon.requests.remove(&id), &result) {
            (Some(LeaseRequest::Acquire(g)), LeaseResult::Granted { since }) => {
                daemon.held.insert(g);
                granted = Some(*since);
            }
            (Some(LeaseRequest::Renew), LeaseResult::Granted { since }) => granted = Some(*since),
            (Some(LeaseRequest::Renew), LeaseResult::Lost { groups }) => {
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
        self.feed(node, Some(Input::Lease { id, result }));
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
