//! Driving the lease client between the engine and the disk: which requests need prompt
//! disk answers, what instant each I/O result counts from, when the client must be
//! woken and whether that wake-up may wait for a heartbeat tick.
//!
//! - **Prompt and quiet.** Acquires and releases (and renewals where
//!   [`crate::timing::quiet_renewals`] says no) are *prompt*: while one is in flight
//!   every disk answer wakes the loop and every I/O deadline is met exactly (a takeover
//!   is a chain of steps). Renewals and watch rounds are *quiet*: their answers wait
//!   for the loop's next wake-up, and their steps may wait a little for a tick
//!   ([`crate::timing::Deadlines::wake_at`]).
//! - **Completion instants.** The lease protocol counts from completions: a quiet job's
//!   results are given with the instant the job ended (its writes' own end if the
//!   worker saw it), never before what the client was last told (`floor`), never after
//!   now.
//! - **Riding along.** A heartbeat that goes now takes a watch round due within half an
//!   interval with it.

use std::collections::BTreeSet;

use arbiter::disk::{IoId, IoOp, IoResult};
use arbiter::witness::WitnessRequest;
use engine::{Instant, LeaseRequest, LeaseResult, OpId};

use crate::lease::{LeaseClient, LeaseStep};
use crate::timing::EXPECTED_WRITE;

/// What the driver asks of the shell.
#[derive(Clone, Debug, PartialEq)]
pub enum Drive {
    /// A read or write of the disk area, for this settle's disk job; `renewal_write`: a
    /// write with groups held, whose read after the settle counts from its end (the
    /// worker notes when the job's writes end).
    DiskIo { io: IoId, op: IoOp, renewal_write: bool },
    /// A message for the witness.
    ToWitness(WitnessRequest),
    /// An answer for the engine ([`engine::Input::Lease`]).
    Reply { id: OpId, result: LeaseResult },
}

/// When the lease client must be woken, as [`crate::timing::Deadlines`] takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseWake {
    /// Its next step (or, unless quiet, its I/O deadlines too).
    pub at: Instant,
    /// `at` is a step of quiet work (a renewal's read after its settle, a watch round).
    pub quiet: bool,
    /// A quiet renewal's next step while no group is held: it waits for the next wake-up.
    pub idle: Instant,
}

/// The lease client and how it is driven.
pub struct LeaseDriver {
    client: LeaseClient,
    quiet_renewals: bool,
    /// Requests in flight that need prompt answers.
    prompt_requests: BTreeSet<OpId>,
    /// As last told to the disk I/O.
    prompt_mode: bool,
    /// The latest instant given to the client: it never sees time go back.
    floor: Instant,
    wake: LeaseWake,
}

impl LeaseDriver {
    /// Drives `client` from `now`; `quiet_renewals` as [`crate::timing::quiet_renewals`]
    /// says for the cluster's timing.
    pub fn new(client: LeaseClient, quiet_renewals: bool, now: Instant) -> LeaseDriver {
        LeaseDriver {
            client,
            quiet_renewals,
            prompt_requests: BTreeSet::new(),
            prompt_mode: false,
            floor: now,
            wake: LeaseWake { at: Instant::MAX, quiet: false, idle: Instant::MAX },
        }
    }

    /// The disk client, to tell it what it inherits at start.
    pub fn disk_mut(&mut self) -> Option<&mut arbiter::disk::DiskLeaseClient> {
        self.client.disk_mut()
    }

    /// The client.
    pub fn client(&self) -> &LeaseClient {
        &self.client
    }

    /// A request of the engine at `now`.
    pub fn request(&mut self, now: Instant, id: OpId, request: LeaseRequest) {
        if self.client.disk().is_some() {
            if !matches!(request, LeaseRequest::Renew) || !self.quiet_renewals {
                self.prompt_requests.insert(id);
            }
            self.floor = self.floor.max(now);
        }
        self.client.request(now, id, request);
    }

    /// A wake-up of the loop at `now`: the client gives up on what is overdue (for a
    /// disk client the deadlines of quiet I/O are checked only here), and its wake-up is
    /// found again when it is next polled.
    pub fn tick(&mut self, now: Instant) {
        if self.client.disk().is_some() {
            self.floor = now;
        }
        // Only what is due: a witness client's requests past their reply timeout.
        self.client.timeout(now);
        self.wake.at = Instant::MAX;
        self.wake.idle = Instant::MAX;
    }

    /// A heartbeat goes at `now` (and a disk job with it): a watch round due within
    /// `within` goes too.
    pub fn heartbeat_sent(&mut self, now: Instant, within: std::time::Duration) {
        if let Some(client) = self.client.disk_mut() {
            self.floor = self.floor.max(now);
            client.watch_early(now, within);
        }
    }

    /// A disk job's lease results, read at `now`: the job ended at `ended`, its writes
    /// at `writes_done_at` if the worker saw that before.
    pub fn job_done(
        &mut self,
        now: Instant,
        ended: Instant,
        writes_done_at: Option<Instant>,
        results: Vec<(IoId, IoResult)>,
    ) {
        let Some(client) = self.client.disk_mut() else { return };
        let at = ended.max(self.floor).min(now);
        let written_at = writes_done_at.map_or(at, |w| w.max(self.floor).min(at));
        self.floor = at;
        for (io, result) in results {
            let at = if result == IoResult::Written { written_at } else { at };
            client.io_done(now, at, io, result);
        }
    }

    /// The lease I/O of a job answered as unfinished at its deadline ended at `ended`
    /// (read at `now`): its writes may have landed only now.
    pub fn late_done(&mut self, now: Instant, ended: Instant, results: Vec<(IoId, IoResult)>) {
        let Some(client) = self.client.disk_mut() else { return };
        for (io, result) in results {
            client.io_done(now, ended.min(now), io, result);
        }
    }

    /// The witness answered.
    pub fn witness_reply(&mut self, now: Instant, reply: &arbiter::witness::WitnessReply) {
        if let Some(client) = self.client.witness() {
            client.reply(now, reply);
        }
    }

    /// The next thing to do; `None` once the client waits ([`LeaseDriver::wake`] then
    /// says until when).
    pub fn poll(&mut self) -> Option<Drive> {
        match self.client.poll() {
            LeaseStep::DiskIo { io, op } => {
                let held = self.client.disk().is_some_and(|c| c.held().next().is_some());
                let renewal_write = matches!(op, IoOp::Write(..)) && held;
                Some(Drive::DiskIo { io, op, renewal_write })
            }
            LeaseStep::ToWitness(request) => Some(Drive::ToWitness(request)),
            LeaseStep::Reply { id, result } => {
                self.prompt_requests.remove(&id);
                Some(Drive::Reply { id, result })
            }
            LeaseStep::Wait(at) => {
                let Some(client) = self.client.disk() else {
                    self.wake = LeaseWake { at, quiet: false, idle: Instant::MAX };
                    return None;
                };
                // With only quiet I/O in flight, its deadlines wait for the next
                // wake-up (`tick` runs the client at every one).
                let quiet = self.prompt_requests.is_empty() && !self.prompt_mode;
                let (tasks, watch) = client.next_steps();
                let (at, idle) = match quiet {
                    false => (at, Instant::MAX),
                    // Quiet with no group held: the only tasks are renewals of nothing
                    // (acquires and releases are prompt).
                    true if client.held().next().is_none() => (watch, tasks),
                    true => (tasks.min(watch), Instant::MAX),
                };
                self.wake = LeaseWake { at, quiet, idle };
                None
            }
        }
    }

    /// When the client must be woken (as of the last [`LeaseDriver::poll`]).
    pub fn wake(&self) -> LeaseWake {
        self.wake
    }

    /// Whether disk answers must wake the loop now, when that changed since the last
    /// call: the shell tells its disk I/O (and, entering prompt mode, reads the quiet
    /// answers already given).
    pub fn prompt_changed(&mut self) -> Option<bool> {
        let on = !self.prompt_requests.is_empty();
        (on != self.prompt_mode).then(|| {
            self.prompt_mode = on;
            on
        })
    }

    /// When the client is expected to step after a quiet renewal write submitted at
    /// `sent` whose answer is not read yet: a settle after the write ends.
    pub fn expected_after(&self, sent: Instant) -> Instant {
        match self.client.disk() {
            Some(client) => sent + EXPECTED_WRITE + client.config().settle,
            None => Instant::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn disk_driver() -> LeaseDriver {
        let spec = crate::lease::tests::engine_spec();
        let io = crate::timing::disk_io_timeout(&spec.timing);
        let client = LeaseClient::new(&spec, engine::NodeId(0), 1, Instant(0), io, Duration::ZERO);
        LeaseDriver::new(client, true, Instant(0))
    }

    #[test]
    fn acquires_are_prompt_and_quiet_renewals_are_not() {
        let mut driver = disk_driver();
        driver.request(Instant(1), OpId(1), LeaseRequest::Renew);
        assert_eq!(driver.prompt_changed(), None, "a quiet renewal");
        driver.request(Instant(2), OpId(2), LeaseRequest::Acquire(engine::GroupId(0)));
        assert_eq!(driver.prompt_changed(), Some(true));
        assert_eq!(driver.prompt_changed(), None);
        // The acquire starts with I/O; the wake-up while prompt is exact.
        let mut ios = 0;
        while let Some(step) = driver.poll() {
            assert!(matches!(step, Drive::DiskIo { .. }), "{step:?}");
            ios += 1;
        }
        assert!(ios > 0);
        assert!(!driver.wake().quiet);
    }

    #[test]
    fn results_never_count_from_before_what_the_client_saw_last_nor_after_now() {
        let mut driver = disk_driver();
        driver.request(Instant(50), OpId(1), LeaseRequest::Acquire(engine::GroupId(0)));
        let mut first = None;
        while let Some(step) = driver.poll() {
            if let (None, Drive::DiskIo { io, .. }) = (&first, &step) {
                first = Some(*io);
            }
        }
        // An end before the floor (50) counts from the floor: the client goes on.
        let io = first.expect("an I/O");
        driver.job_done(
            Instant(60),
            Instant(10),
            None,
            vec![(io, IoResult::Read(Default::default()))],
        );
        assert_eq!(driver.floor, Instant(50));
        assert!(driver.poll().is_some(), "the acquire's next step");
    }
}
