//! The disk link's I/O: one long-lived worker thread performs *jobs* for the daemon's
//! loop, one at a time and in the order given, and sends each job's results back as a
//! message. A job holds everything the loop wants from the disk at one moment: the lease
//! client's reads and writes, this node's heartbeat slot, the peers' slots and this
//! node's mailbox (writes first, see below). Folding them into one job is what keeps a node
//! cheap at idle: one thread hand-off per job instead of one task, one blocking-pool
//! call and one timer per I/O.
//!
//! **Deadlines.** Every job must finish within the I/O timeout from the moment the node
//! core issued it (the delta-lease argument assumes every I/O lands or fails within it).
//! The core (`nodecore::NodeCore`, its bookkeeping `nodecore::Jobs`, shared with the
//! simulator) gives each job its id, its deadline and when its reads may start, watches
//! the deadlines, and judges each answer (one that ended after its deadline counts as
//! failed however late it is read). A job not done by its deadline is answered as
//! failed by the core, and the worker, which may be blocked in the kernel, is abandoned
//! ([`DiskIo::abandon`]); the next job starts a new worker. The worker itself checks the
//! deadline before every I/O and skips what is already too late, so that a job queued
//! behind a stuck one never reaches the disk after the loop gave up on it. At most
//! [`WORKERS_HUNG_MAX`] abandoned workers may still be blocked; beyond that, jobs fail
//! at once (the disk is gone).
//!
//! **Quiet jobs.** A job's answer waits for the loop's next wake-up, whatever its cause
//! (at idle the next heartbeat tick or the peer's heartbeat, at most one heartbeat
//! interval away): routine I/O (renewals, watch rounds, heartbeat slots, the mailbox)
//! then costs the loop no wake-up of its own. Every answer carries the instant its job
//! ended on the worker. While the loop is in *prompt mode* ([`DiskIo::set_prompt_mode`]:
//! an acquire or release in flight, a lease step follows on each answer) every answer
//! wakes it.
//!
//! **Writes first, reads held back.** A job starts its writes first (the lease
//! client's, in issue order, then the heartbeat slot), then its reads (the lease
//! client's, in issue order, the peers' slots, the mailbox): the lease client's I/O in
//! one job belong to different tasks, which it issued together and which may land in
//! any order. Where io_uring is allowed ([`diskarea::ring`]) each phase is handed to
//! the kernel at once and the worker waits once for the whole job (a write and a read
//! of one job may then be in flight together); elsewhere each I/O is a blocking call
//! in turn. Either way no I/O is started after the job's deadline. No read starts
//! before the instant the core gave: in a quiet job that reads a peer's host record,
//! `nodecore::timing::READ_HOLD_DIVISOR`th of the I/O timeout after the job was issued
//! (the core's rule). Nodes tick together (the engine
//! phase-locks their heartbeats), and a holder's renewal goes out with its tick: a
//! standby's watch read issued at the same instant landed before the renewal's write
//! about half the time, saw the old record, and saw the new one only a heartbeat
//! interval later, which started its takeover window that much later (lab: default
//! failovers bimodal, lease at 1.23 s or 1.33 s after the crash). Reading later is
//! always safe: what a read shows counts from when it ended.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use arbiter::disk::{Block, IoId, IoOp, IoResult};
use diskarea::{Area, Reply, Request, Ring, Token};
use engine::{Instant, NodeId};
use tokio::sync::mpsc;

use crate::clock::monotonic_ns;

/// Abandoned workers (blocked past a deadline) allowed at once.
pub const WORKERS_HUNG_MAX: usize = 8;

/// A job's results, as the worker sends them: a peer's slot is its bytes.
pub type Done = nodecore::DiskDone<Vec<u8>>;

/// A peer's disk heartbeat slot as read (`None`: never written).
pub type Slot = (NodeId, Option<Vec<u8>>);

pub use crate::platform::{Answer, Job};

struct Work {
    id: u64,
    /// `CLOCK_MONOTONIC` nanoseconds after which no I/O of the job is started.
    deadline_ns: u64,
    /// `CLOCK_MONOTONIC` nanoseconds before which no read of the job is started.
    reads_after_ns: u64,
    job: Job,
}

/// The loop's side of the disk worker.
pub struct DiskIo {
    area: Arc<Area>,
    me: NodeId,
    nodes: usize,
    /// Answers in prompt mode (they wake the loop) and quiet ones (read when it wakes).
    answers: mpsc::UnboundedSender<Answer>,
    quiet: (std_mpsc::Sender<Answer>, std_mpsc::Receiver<Answer>),
    /// Prompt mode: every answer wakes the loop (read by the worker as it answers).
    prompt_mode: Arc<AtomicBool>,
    worker: Option<std_mpsc::Sender<Work>>,
    /// Workers abandoned at a missed deadline and still blocked.
    hung: Arc<AtomicUsize>,
}

impl DiskIo {
    pub fn new(
        area: Arc<Area>,
        me: NodeId,
        nodes: usize,
        answers: mpsc::UnboundedSender<Answer>,
    ) -> DiskIo {
        DiskIo {
            area,
            me,
            nodes,
            answers,
            quiet: std_mpsc::channel(),
            prompt_mode: Arc::default(),
            worker: None,
            hung: Arc::default(),
        }
    }

    /// Hands job `id` to the worker: no I/O of it starts at or after `deadline`, no read
    /// before `reads_after` (both as the node core gave them). Returns why when no
    /// worker can take it (too many abandoned workers still blocked, or no thread could
    /// start): the caller answers the job as failed at once.
    pub fn submit(
        &mut self,
        id: u64,
        deadline: Instant,
        reads_after: Instant,
        job: Job,
    ) -> Result<(), String> {
        let mut work = Work { id, deadline_ns: deadline.0, reads_after_ns: reads_after.0, job };
        if let Some(worker) = &self.worker {
            match worker.send(work) {
                Ok(()) => return Ok(()),
                Err(std_mpsc::SendError(back)) => work = back,
            }
        }
        // No worker yet, or it ended: start one.
        if self.hung.load(Ordering::Relaxed) >= WORKERS_HUNG_MAX {
            return Err("the disk does not answer (earlier I/O still blocked)".into());
        }
        match self.spawn_worker() {
            Ok(sender) => {
                let _ = sender.send(work);
                self.worker = Some(sender);
                Ok(())
            }
            Err(e) => Err(format!("cannot start the disk I/O thread: {e}")),
        }
    }

    fn spawn_worker(&self) -> std::io::Result<std_mpsc::Sender<Work>> {
        let (tx, rx) = std_mpsc::channel::<Work>();
        let area = self.area.clone();
        let answers = self.answers.clone();
        let quiet = self.quiet.0.clone();
        let prompt_mode = self.prompt_mode.clone();
        let (me, nodes) = (self.me, self.nodes);
        let hung = self.hung.clone();
        std::thread::Builder::new().name("tandem-disk".into()).spawn(move || {
            // One ring per worker, made by the thread that uses it (diskarea::ring).
            let mut ring = match Ring::new(&area) {
                Ok(ring) => Some(ring),
                Err(e) => {
                    tracing::debug!("disk I/O one call at a time (no io_uring: {e})");
                    None
                }
            };
            while let Ok(work) = rx.recv() {
                if let Some(why) = ring.as_ref().and_then(Ring::broken) {
                    tracing::warn!("disk I/O one call at a time from now on: {why}");
                    ring = None;
                }
                let done = perform(
                    &area,
                    ring.as_mut(),
                    me,
                    nodes,
                    work.deadline_ns,
                    work.reads_after_ns,
                    work.job,
                );
                let answer = Answer { id: work.id, done, done_at: Instant(monotonic_ns()) };
                let sent = if prompt_mode.load(Ordering::SeqCst) {
                    answers.send(answer).is_ok()
                } else {
                    quiet.send(answer).is_ok()
                };
                if !sent {
                    return;
                }
            }
            // The loop dropped our sender: either it abandoned us (we were counted as
            // hung) or the daemon is ending; either way nothing is counted any more.
            let _ = hung.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        })?;
        Ok(tx)
    }

    /// The answers of quiet jobs that came since the last call.
    pub fn quiet_answers(&mut self) -> Vec<Answer> {
        self.quiet.1.try_iter().collect()
    }

    /// Enters or leaves prompt mode. Entering it, the caller then reads the quiet
    /// answers already given ([`DiskIo::quiet_answers`]); one given in the instant
    /// between is read at its job's deadline at the latest.
    pub fn set_prompt_mode(&self, on: bool) {
        self.prompt_mode.store(on, Ordering::SeqCst);
    }

    /// Jobs missed their deadlines (`nodecore::Action::DiskStuck`): abandons the worker
    /// that holds them, which may be blocked in the kernel; the next job starts a new
    /// one. The jobs still queued there are skipped as too late by the worker (their
    /// deadlines come no sooner than the loop's) and answered as failed by the core
    /// when their deadlines pass.
    pub fn abandon(&mut self) {
        if self.worker.take().is_some() {
            self.hung.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One part of a job, as the worker carries it out.
#[derive(Clone, Copy)]
enum Part {
    Lease(IoId, Block),
    Slot,
    Peer(NodeId),
    Mail,
}

impl Part {
    /// How a failure of this part reads.
    fn failed(self, write: bool, e: &dyn std::fmt::Display) -> String {
        match self {
            Part::Lease(_, block) if write => format!("writing {block:?}: {e}"),
            Part::Lease(_, block) => format!("reading {block:?}: {e}"),
            _ => e.to_string(),
        }
    }
}

/// Where a part's result will come from.
enum Outcome {
    Now(Result<Reply, String>),
    /// Started on the ring.
    Ring(Token, bool),
}

/// Performs one job (on the worker): its writes are started first, then, from
/// `reads_after_ns` on, its reads; no I/O is started once the deadline has passed.
/// With a ring every I/O of a phase is handed to the kernel at once (the writes may
/// land in any order, as the lease client allows, and the reads may start before the
/// writes have landed) and the worker waits once for all; without one, each is a
/// blocking call in turn.
// Long because: one disk job's phases in their order (writes, the held-back reads,
// one wait for the ring, the results), which the lease timing relies on, share the
// closure that issues each I/O and the list of outcomes.
fn perform(
    area: &Area,
    mut ring: Option<&mut Ring<'_>>,
    me: NodeId,
    nodes: usize,
    deadline_ns: u64,
    reads_after_ns: u64,
    job: Job,
) -> Done {
    let late = || monotonic_ns() >= deadline_ns;
    const LATE: &str = "not started: the job's I/O deadline had passed";
    let (writes, reads): (Vec<_>, Vec<_>) =
        job.lease.into_iter().partition(|(_, op)| matches!(op, IoOp::Write(..)));
    let mut outcomes: Vec<(Part, Outcome)> = Vec::new();
    let mut go = |part: Part, request: Request<'_>, ring: &mut Option<&mut Ring<'_>>| {
        let write = matches!(request, Request::WriteRecord(..) | Request::WriteHeartbeat { .. });
        let outcome = if late() {
            Outcome::Now(Err(LATE.into()))
        } else {
            match (area.prepare(request), ring.as_deref_mut()) {
                (Err(e), _) => Outcome::Now(Err(part.failed(write, &e))),
                (Ok(io), Some(ring)) => Outcome::Ring(ring.start(io), write),
                (Ok(mut io), None) => Outcome::Now(
                    area.perform_now(&mut io)
                        .map_err(diskarea::AreaError::from)
                        .and_then(|()| area.finish(&io))
                        .map_err(|e| part.failed(write, &e)),
                ),
            }
        };
        outcomes.push((part, outcome));
    };
    for (io, op) in &writes {
        if let IoOp::Write(block, record) = op {
            go(Part::Lease(*io, *block), Request::WriteRecord(*block, record), &mut ring);
        }
    }
    if let Some((seq, frame)) = &job.slot {
        go(Part::Slot, Request::WriteHeartbeat { node: me, seq: *seq, payload: frame }, &mut ring);
    }
    if let Some(ring) = ring.as_deref_mut() {
        // The writes go now; their completions are collected with the reads'.
        let _ = ring.submit();
    }
    let reading = !reads.is_empty() || job.peers || job.mail;
    let mut writes_done_at = None;
    let now = monotonic_ns();
    if reading && now < reads_after_ns {
        if job.time_writes && !writes.is_empty() {
            // A renewal's settle runs from its write: note when the writes are done,
            // rather than stamping them with the end of the held-back reads.
            let done = match ring.as_deref_mut() {
                Some(ring) => ring.wait_for(Duration::from_nanos(reads_after_ns - now)),
                None => true,
            };
            if done {
                writes_done_at = Some(Instant(monotonic_ns()));
            }
        }
        let now = monotonic_ns();
        if now < reads_after_ns {
            std::thread::sleep(Duration::from_nanos(reads_after_ns - now));
        }
    }
    for (io, op) in &reads {
        if let IoOp::Read(block) = op {
            go(Part::Lease(*io, *block), Request::ReadRecord(*block), &mut ring);
        }
    }
    if job.peers {
        for n in (0..nodes).map(|n| NodeId(n as u16)).filter(|n| *n != me) {
            go(Part::Peer(n), Request::ReadHeartbeat(n), &mut ring);
        }
    }
    if job.mail {
        go(Part::Mail, Request::ReadRecord(Block::Mailbox(me)), &mut ring);
    }
    let mut from_ring: Vec<Option<Result<Reply, String>>> = Vec::new();
    if let Some(ring) = ring {
        from_ring = ring
            .wait_all()
            .into_iter()
            .map(|(_, r)| {
                Some(
                    r.map_err(diskarea::AreaError::from)
                        .and_then(|io| area.finish(&io))
                        .map_err(|e| e.to_string()),
                )
            })
            .collect();
    }
    let mut done =
        Done { lease: Vec::new(), slot: None, peers: None, mail: None, writes_done_at: None };
    let mut peers: Option<Result<Vec<Slot>, String>> = job.peers.then(|| Ok(Vec::new()));
    for (part, outcome) in outcomes {
        let result = match outcome {
            Outcome::Now(result) => result,
            Outcome::Ring(token, write) => from_ring
                .get_mut(token.index())
                .and_then(Option::take)
                .unwrap_or_else(|| Err("the I/O ring lost the I/O".into()))
                .map_err(|e| match part {
                    Part::Lease(..) => part.failed(write, &e),
                    _ => e,
                }),
        };
        match (part, result) {
            (Part::Lease(io, _), Ok(Reply::Record(record))) => {
                done.lease.push((io, IoResult::Read(record)))
            }
            (Part::Lease(io, _), Ok(_)) => done.lease.push((io, IoResult::Written)),
            (Part::Lease(io, _), Err(e)) => done.lease.push((io, IoResult::Failed(e))),
            (Part::Slot, result) => done.slot = Some(result.map(|_| ())),
            (Part::Peer(n), result) => {
                if let Some(Ok(slots)) = &mut peers {
                    match result {
                        Ok(Reply::Heartbeat(slot)) => slots.push((n, slot.map(|(_, bytes)| bytes))),
                        Ok(other) => peers = Some(Err(format!("unexpected reply {other:?}"))),
                        Err(e) => peers = Some(Err(e)),
                    }
                }
            }
            (Part::Mail, result) => {
                done.mail = Some(result.and_then(|reply| match reply {
                    Reply::Record(record) => Ok(record),
                    other => Err(format!("unexpected reply {other:?}")),
                }))
            }
        }
    }
    done.peers = peers;
    done.writes_done_at = writes_done_at;
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbiter::disk::Record;

    fn area() -> (tempfile::NamedTempFile, Arc<Area>) {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(1 << 20).unwrap();
        diskarea::format_area(file.path(), "t", 2, 1, false).unwrap();
        let area = Area::open(file.path(), "t").unwrap();
        (file, Arc::new(area))
    }

    fn now() -> Instant {
        Instant(monotonic_ns())
    }

    /// Waits for the worker's next quiet answer (it wakes nobody).
    fn next_quiet_answer(io: &mut DiskIo) -> Answer {
        loop {
            if let Some(answer) = io.quiet_answers().pop() {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A deadline no test reaches.
    fn far() -> Instant {
        now() + Duration::from_secs(5)
    }

    #[test]
    fn a_job_writes_the_slot_and_reads_the_peers_and_the_mailbox() {
        let (_file, area) = area();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut io = DiskIo::new(area.clone(), NodeId(0), 2, tx);
        io.set_prompt_mode(true);
        area.write_heartbeat(NodeId(1), 3, b"peer").unwrap();
        let job =
            Job { slot: Some((1, b"mine".to_vec())), peers: true, mail: true, ..Job::default() };
        assert!(io.submit(1, far(), now(), job).is_ok());
        let answer = rx.blocking_recv().unwrap();
        assert_eq!(answer.id, 1);
        let done = answer.done;
        assert_eq!(done.slot, Some(Ok(())));
        assert_eq!(done.peers, Some(Ok(vec![(NodeId(1), Some(b"peer".to_vec()))])));
        assert!(matches!(done.mail, Some(Ok(Record::Blank))), "{:?}", done.mail);
        assert!(!done.failed_any());
        assert_eq!(area.read_heartbeat(NodeId(0)).unwrap(), Some((1, b"mine".to_vec())));
    }

    #[test]
    fn an_abandoned_worker_still_answers_how_its_lease_write_ended() {
        let (_file, area) = area();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut io = DiskIo::new(area.clone(), NodeId(0), 2, tx);
        io.set_prompt_mode(true);
        let claim =
            Record::Group(arbiter::disk::GroupRecord { owner: Some(NodeId(0)), stamp: (1, 1) });
        let group = Block::Group(engine::GroupId(0));
        let job =
            Job { lease: vec![(IoId(7), IoOp::Write(group, claim.clone()))], ..Job::default() };
        assert!(io.submit(1, far(), now(), job).is_ok());
        // The core saw the deadline pass before the answer: the worker is abandoned,
        // and its write may still land; when the job ends, the loop learns how.
        io.abandon();
        let late = rx.blocking_recv().unwrap();
        assert_eq!(late.id, 1);
        assert_eq!(late.done.lease, vec![(IoId(7), IoResult::Written)]);
        assert_eq!(area.read_record(group).unwrap(), claim, "it did land");
    }

    #[test]
    fn after_an_abandoned_worker_the_next_job_goes_to_a_new_one() {
        let (_file, area) = area();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut io = DiskIo::new(area, NodeId(0), 2, tx);
        io.set_prompt_mode(true);
        assert!(io.submit(1, far(), now(), Job { peers: true, ..Job::default() }).is_ok());
        io.abandon();
        assert_eq!(io.hung.load(Ordering::Relaxed), 1, "counted until it ends");
        assert!(io.worker.is_none());
        assert_eq!(rx.blocking_recv().unwrap().id, 1);
        // A new job goes to a new worker and is answered.
        assert!(io.submit(2, far(), now(), Job { mail: true, ..Job::default() }).is_ok());
        let answer = rx.blocking_recv().unwrap();
        assert_eq!(answer.id, 2);
        assert!(!answer.done.failed_any());
    }

    #[test]
    fn a_quiet_job_is_answered_without_waking_the_loop_until_prompt_mode() {
        let (_file, area) = area();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut io = DiskIo::new(area, NodeId(0), 2, tx);
        assert!(io.submit(1, far(), now(), Job { peers: true, ..Job::default() }).is_ok());
        let answer = next_quiet_answer(&mut io);
        assert!(rx.try_recv().is_err(), "the loop was not woken");
        assert!(!answer.done.failed_any());
        // In prompt mode a job's answer wakes the loop.
        io.set_prompt_mode(true);
        assert!(io.submit(2, far(), now(), Job { mail: true, ..Job::default() }).is_ok());
        let answer = rx.blocking_recv().unwrap();
        assert_eq!(answer.id, 2);
        assert!(!answer.done.failed_any());
    }

    #[test]
    fn a_worker_skips_what_is_already_too_late() {
        let (_file, area) = area();
        let job = Job { slot: Some((9, b"x".to_vec())), peers: true, ..Job::default() };
        let done = perform(&area, None, NodeId(0), 2, monotonic_ns(), 0, job);
        assert!(matches!(&done.slot, Some(Err(e)) if e.contains("deadline")));
        assert!(matches!(&done.peers, Some(Err(e)) if e.contains("deadline")));
        assert_eq!(area.read_heartbeat(NodeId(0)).unwrap(), None, "nothing was written");
    }

    #[test]
    fn a_job_writes_first_and_holds_its_reads_back_for_a_write_issued_elsewhere_at_once() {
        use arbiter::disk::HostRecord;
        let host = |counter| {
            Record::Host(HostRecord { incarnation: 7, counter, groups: vec![], parked: false })
        };
        let (_file, area) = area();
        area.write_record(Block::Host(NodeId(1)), &host(1)).unwrap();
        let timeout = Duration::from_millis(200);
        let held = timeout / nodecore::timing::READ_HOLD_DIVISOR;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut io = DiskIo::new(area.clone(), NodeId(0), 2, tx);
        // Our renewal and a watch read of the peer's record, issued with our tick, as
        // the peer (ticking with us) renews: its write lands 5 ms later. The core holds
        // such a job's reads back (`nodecore::NodeCore`, `READ_HOLD_DIVISOR`).
        let start = now();
        let job = Job {
            lease: vec![
                (IoId(1), IoOp::Read(Block::Host(NodeId(1)))),
                (IoId(2), IoOp::Write(Block::Host(NodeId(0)), host(5))),
            ],
            time_writes: true,
            ..Job::default()
        };
        assert!(io.submit(1, start + timeout, start + held, job).is_ok());
        let peer = {
            let area = area.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                area.write_record(Block::Host(NodeId(1)), &host(2)).unwrap();
            })
        };
        let answer = next_quiet_answer(&mut io);
        peer.join().unwrap();
        assert!(answer.done_at >= start + held, "read before the hold was over");
        let done = answer.done;
        // The write's end is known apart from the job's (a renewal's settle counts
        // from it), and it came before the held-back read.
        let written = done.writes_done_at.expect("the write's end, seen during the hold");
        assert!(written > start && written < start + held, "{written:?}");
        // The write went first; the read, held back, saw the peer's renewal.
        assert_eq!(done.lease[0], (IoId(2), IoResult::Written));
        assert_eq!(done.lease[1], (IoId(1), IoResult::Read(host(2))));
        // A job whose reads may start at once is not held back.
        io.set_prompt_mode(true);
        let start = now();
        let job =
            Job { lease: vec![(IoId(3), IoOp::Read(Block::Host(NodeId(1))))], ..Job::default() };
        assert!(io.submit(2, start + timeout, start, job).is_ok());
        let answer = rx.blocking_recv().unwrap();
        assert!(answer.done_at < start + held, "a read waited for no hold");
    }

    /// Whether this machine lets processes use io_uring (`kernel.io_uring_disabled`).
    fn io_uring_allowed() -> bool {
        std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .map_or(true, |v| v.trim() == "0")
    }

    #[test]
    fn a_job_through_the_ring_answers_as_one_call_at_a_time_does() {
        use arbiter::disk::HostRecord;
        let host = |counter| {
            Record::Host(HostRecord { incarnation: 7, counter, groups: vec![], parked: false })
        };
        let job = || Job {
            lease: vec![
                (IoId(1), IoOp::Read(Block::Host(NodeId(1)))),
                (IoId(2), IoOp::Write(Block::Host(NodeId(0)), host(5))),
                (IoId(3), IoOp::Read(Block::Group(engine::GroupId(0)))),
            ],
            slot: Some((4, b"mine".to_vec())),
            peers: true,
            mail: true,
            time_writes: true,
        };
        let mut answers = Vec::new();
        for with_ring in [false, true] {
            let (_file, area) = area();
            area.write_record(Block::Host(NodeId(1)), &host(2)).unwrap();
            area.write_heartbeat(NodeId(1), 3, b"peer").unwrap();
            let mut ring = match Ring::new(&area) {
                Ok(ring) => Some(ring),
                Err(e) if io_uring_allowed() => panic!("no ring on a file in the temp dir: {e}"),
                Err(_) => return,
            };
            let ring = if with_ring { ring.as_mut() } else { None };
            let far = monotonic_ns() + 5_000_000_000;
            let done = perform(&area, ring, NodeId(0), 2, far, 0, job());
            assert_eq!(area.read_record(Block::Host(NodeId(0))).unwrap(), host(5));
            assert_eq!(area.read_heartbeat(NodeId(0)).unwrap(), Some((4, b"mine".to_vec())));
            answers.push(format!("{done:?}"));
        }
        assert_eq!(answers[0], answers[1]);
        let expected = [
            "(IoId(2), Written)",
            "(IoId(1), Read(Host(HostRecord { incarnation: 7, counter: 2",
            "(IoId(3), Read(Blank))",
            "slot: Some(Ok(()))",
            "peers: Some(Ok([(NodeId(1), Some([112, 101, 101, 114]))]))",
            "mail: Some(Ok(Blank))",
        ];
        for part in expected {
            assert!(answers[1].contains(part), "{part} not in {}", answers[1]);
        }
    }

    #[test]
    fn a_failed_io_on_the_ring_fails_its_part_only() {
        // A layout for 2 nodes on an area formatted for 2: the mailbox of a node the
        // layout does not have fails before any I/O; a read past the end of a
        // truncated area fails in the kernel (short read), the rest succeeds.
        let (file, area) = area();
        let Ok(mut ring) = Ring::new(&area) else {
            assert!(!io_uring_allowed(), "no ring on a file in the temp dir");
            testgate::cannot_run(
                "a_failed_io_on_the_ring_fails_its_part_only",
                "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled)",
            );
            return;
        };
        let far = monotonic_ns() + 5_000_000_000;
        let job = Job { slot: Some((1, b"x".to_vec())), peers: true, ..Job::default() };
        let done = perform(&area, Some(&mut ring), NodeId(5), 2, far, 0, job);
        assert!(matches!(&done.slot, Some(Err(e)) if e.contains("node")), "{:?}", done.slot);
        // The peers' slots are past the end once the file is cut to one sector.
        file.as_file().set_len(4096).unwrap();
        let job = Job { peers: true, mail: true, ..Job::default() };
        let done = perform(&area, Some(&mut ring), NodeId(0), 2, far, 0, job);
        assert!(matches!(&done.peers, Some(Err(e)) if e.contains("short")), "{:?}", done.peers);
        assert!(matches!(&done.mail, Some(Err(e)) if e.contains("short")), "{:?}", done.mail);
        assert!(ring.broken().is_none());
    }

    #[test]
    fn too_many_hung_workers_fail_new_jobs_at_once() {
        let (_file, area) = area();
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut io = DiskIo::new(area, NodeId(0), 2, tx);
        io.hung.store(WORKERS_HUNG_MAX, Ordering::Relaxed);
        let job = Job { peers: true, ..Job::default() };
        let why = io.submit(1, far(), now(), job).expect_err("failed at once");
        assert!(why.contains("still blocked"), "{why}");
    }
}
