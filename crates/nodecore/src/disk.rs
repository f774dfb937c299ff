//! What a node asks of the shared disk, and when: its disk *jobs*. A job is everything
//! one moment needs from the disk in one hand-off to the disk worker: the lease client's
//! reads and writes, this node's heartbeat slot, the peers' slots and this node's
//! mailbox. A changed report is written at once (after the write in flight); an
//! unchanged one, and the peers' slots, ride along with a job that goes anyway once
//! they are nearly due (`ride_after`, half an interval before their period), and go by
//! themselves when due (`due_after`, half an interval after it): see
//! [`crate::timing::disk_beat_every`]. The mailbox is read once per
//! [`crate::timing::MAILBOX_READ_EVERY`], with a job that goes anyway. At idle a node
//! touches the disk a few times per lease renewal, not once per record.
//!
//! Pure bookkeeping: the shell encodes the slot's frame, hands the job to its worker,
//! keeps the job's deadline and reports each part's end.

use std::sync::Arc;
use std::time::Duration;

use arbiter::disk::{IoId, IoOp};
use engine::{Heartbeat, Instant, NodeReport};

use crate::timing::{disk_beat_every, MAILBOX_READ_EVERY};

/// One job as planned: the shell turns it into I/O.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobPlan {
    /// The lease client's I/O, in issue order.
    pub lease: Vec<(IoId, IoOp)>,
    /// This node's newest heartbeat, for its slot (its echo removed: the slot is read
    /// by every peer).
    pub slot: Option<Heartbeat>,
    /// Read every peer's slot.
    pub peers: bool,
    /// Read this node's mailbox.
    pub mail: bool,
    /// A lease write with groups held is a renewal whose read after the settle counts
    /// from the write's end: the worker notes when the writes end.
    pub time_writes: bool,
}

/// The disk link's schedule of slot writes, peers' reads and mailbox reads, and the job
/// being put together.
#[derive(Clone, Debug)]
pub struct DiskSchedule {
    /// The job being put together in this settle, and when its first part was asked
    /// for (its I/O deadline counts from then).
    job: Option<(Instant, JobPlan)>,
    /// The last heartbeat sequence handed over for our slot, its report and when.
    written_seq: u64,
    written_report: Option<Arc<NodeReport>>,
    written_at: Option<Instant>,
    /// The newest heartbeat not written yet (an unchanged report waits to ride along).
    latest: Option<Heartbeat>,
    /// `latest` carries a changed report: write it as soon as no write is in flight.
    urgent: bool,
    writing: bool,
    reading: bool,
    read_at: Option<Instant>,
    mailing: bool,
    mail_at: Option<Instant>,
    ride_after: Duration,
    due_after: Duration,
}

impl DiskSchedule {
    /// For a cluster with this `timing`.
    pub fn new(timing: &engine::Timing) -> DiskSchedule {
        let every = timing.heartbeat_interval * disk_beat_every(timing);
        let half = timing.heartbeat_interval / 2;
        DiskSchedule {
            job: None,
            written_seq: 0,
            written_report: None,
            written_at: None,
            latest: None,
            urgent: false,
            writing: false,
            reading: false,
            read_at: None,
            mailing: false,
            mail_at: None,
            ride_after: every - half,
            due_after: every + half,
        }
    }

    /// When a slot write or a peers' read must go by itself.
    pub fn next_due(&self) -> Instant {
        let mut at = Instant::MAX;
        if !self.reading {
            at = at.min(self.read_at.map_or(Instant(0), |t| t + self.due_after));
        }
        if !self.writing && self.latest.is_some() {
            let after = if self.urgent { Duration::ZERO } else { self.due_after };
            at = at.min(self.written_at.map_or(Instant(0), |t| t + after));
        }
        at
    }

    /// The job of this settle (to which the caller adds), begun at `now` if there is none.
    pub fn job(&mut self, now: Instant) -> &mut JobPlan {
        &mut self.job.get_or_insert_with(|| (now, JobPlan::default())).1
    }

    /// The engine sent `message` on the disk link at `now`: one slot for every peer, so
    /// once per heartbeat; a changed report goes at once (after the write in flight).
    pub fn heartbeat(&mut self, now: Instant, message: &Heartbeat) {
        let newest = self.latest.as_ref().map_or(self.written_seq, |m| m.sequence);
        if message.sequence == newest {
            return;
        }
        let changed =
            !self.written_report.as_ref().is_some_and(|r| Arc::ptr_eq(r, &message.report));
        let mut copy = message.clone();
        copy.echo = None;
        self.latest = Some(copy);
        if changed {
            self.urgent = true;
            if !self.writing {
                self.job(now);
            }
        }
    }

    /// The job of this settle, if any, with what rides along at `now`: our newest
    /// heartbeat if a write is nearly due (or its report changed), the peers' slots if a
    /// read is nearly due, the mailbox once per [`MAILBOX_READ_EVERY`]. Returns when it
    /// began (its deadline counts from then) and the plan. A slot the shell cannot write
    /// (its frame too large) is given back with [`DiskSchedule::slot_not_written`].
    pub fn take_job(&mut self, now: Instant) -> Option<(Instant, JobPlan)> {
        let (issued, mut job) = self.job.take()?;
        let since = |at: Option<Instant>| at.map_or(Duration::MAX, |t| now.saturating_since(t));
        if !self.writing && (self.urgent || since(self.written_at) >= self.ride_after) {
            if let Some(message) = self.latest.take() {
                self.urgent = false;
                self.written_seq = message.sequence;
                self.written_report = Some(message.report.clone());
                self.written_at = Some(now);
                self.writing = true;
                job.slot = Some(message);
            }
        }
        if !self.reading && since(self.read_at) >= self.ride_after {
            self.reading = true;
            self.read_at = Some(now);
            job.peers = true;
        }
        if !self.mailing && since(self.mail_at) >= MAILBOX_READ_EVERY {
            self.mailing = true;
            self.mail_at = Some(now);
            job.mail = true;
        }
        Some((issued, job))
    }

    /// The slot of the job just taken was not handed to the disk (its frame does not
    /// fit): nothing is being written.
    pub fn slot_not_written(&mut self) {
        self.writing = false;
    }

    /// A job that wrote our slot ended at `now`: a changed report waiting goes next.
    pub fn slot_done(&mut self, now: Instant) {
        self.writing = false;
        if self.urgent && self.latest.is_some() {
            self.job(now);
        }
    }

    /// A job that read the peers' slots ended.
    pub fn peers_done(&mut self) {
        self.reading = false;
    }

    /// A job that read the mailbox ended.
    pub fn mail_done(&mut self) {
        self.mailing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn beat(sequence: u64, report: &Arc<NodeReport>) -> Heartbeat {
        Heartbeat {
            from: engine::NodeId(0),
            incarnation: 1,
            sequence,
            sent_at: Instant(sequence),
            report: report.clone(),
            echo: None,
        }
    }

    fn report() -> Arc<NodeReport> {
        Arc::new(NodeReport {
            state: engine::NodeState::Standby,
            storage_ok: true,
            groups: Vec::new(),
            links_up: Vec::new(),
            admin: engine::AdminState::default(),
        })
    }

    #[test]
    fn a_changed_report_goes_at_once_and_an_unchanged_one_rides_along_or_goes_when_due() {
        // Defaults: heartbeat 100 ms, peer timeout 1 s: an unchanged report every 200 ms,
        // riding along from 150 ms, by itself at 250 ms.
        let mut disk = DiskSchedule::new(&engine::Timing::default());
        let r = report();
        // The first heartbeat is a change: a job at once, with the peers and the mailbox.
        disk.heartbeat(Instant(0), &beat(1, &r));
        let (issued, job) = disk.take_job(Instant(0)).expect("a job");
        assert_eq!(issued, Instant(0));
        assert_eq!(job.slot.as_ref().map(|m| m.sequence), Some(1));
        assert!(job.peers && job.mail);
        disk.slot_done(Instant(MS));
        disk.peers_done();
        disk.mail_done();
        // The same report 100 ms later: no job of its own, due at 250 ms.
        disk.heartbeat(Instant(100 * MS), &beat(2, &r));
        assert!(disk.take_job(Instant(100 * MS)).is_none());
        assert_eq!(disk.next_due(), Instant(250 * MS));
        // A lease job at 160 ms takes the slot and the peers along (nearly due).
        let host = arbiter::disk::Block::Host(engine::NodeId(0));
        disk.job(Instant(160 * MS)).lease.push((IoId(7), IoOp::Read(host)));
        let (_, job) = disk.take_job(Instant(160 * MS)).expect("the lease's job");
        assert_eq!(job.slot.as_ref().map(|m| m.sequence), Some(2));
        assert!(job.peers && !job.mail && job.lease.len() == 1);
        // A changed report while that write is in flight waits for it, then goes.
        disk.heartbeat(Instant(170 * MS), &beat(3, &report()));
        assert!(disk.take_job(Instant(170 * MS)).is_none());
        disk.slot_done(Instant(171 * MS));
        let (_, job) = disk.take_job(Instant(171 * MS)).expect("the change goes next");
        assert_eq!(job.slot.as_ref().map(|m| m.sequence), Some(3));
        // A slot the shell could not write is not in flight: the next change goes at once.
        disk.slot_not_written();
        disk.heartbeat(Instant(180 * MS), &beat(4, &report()));
        let (_, job) = disk.take_job(Instant(180 * MS)).expect("not waiting for a write");
        assert_eq!(job.slot.as_ref().map(|m| m.sequence), Some(4));
    }
}
