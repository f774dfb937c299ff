//! The disk jobs in flight and their deadlines: every job must end within the disk I/O
//! timeout of its submission (the delta-lease argument assumes every I/O lands or fails
//! within it). A job not ended by its deadline is answered as unfinished then
//! ([`Jobs::expire`]; its lease I/O may still land, and the lease client must learn when
//! it ends: [`Verdict::Ended`]); an answer that ended after its deadline counts as
//! failed however late it is read ([`Verdict::Late`]), so that reading answers late
//! never makes an I/O count as faster than it was — a daemon stopped (SIGSTOP) with its
//! worker learns of its I/O only when it runs again. In prompt mode every deadline is
//! met exactly ([`Jobs::next_deadline`]); otherwise the deadlines of quiet jobs are
//! checked whenever the loop wakes.
//!
//! `S` is the shell's description of a job (what to answer "failed" for each part).

use std::collections::VecDeque;
use std::time::Duration;

use engine::Instant;

/// What the bookkeeping needs to know of a job.
pub trait JobShape {
    /// It carries I/O of the lease client.
    fn has_lease_io(&self) -> bool;
    /// It writes for the lease client.
    fn writes_lease(&self) -> bool;
}

/// A job in flight.
#[derive(Clone, Debug)]
struct Pending<S> {
    id: u64,
    submitted: Instant,
    deadline: Instant,
    shape: S,
}

/// What a job's answer is worth.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict<S> {
    /// In time: its results stand.
    OnTime,
    /// It ended after its deadline: every part failed (the job's shape, to say so).
    Late(S),
    /// A job already answered as unfinished at its deadline has ended: its lease I/O's
    /// results are for the lease client (its writes may have landed only now).
    Ended,
    /// No such job (answered already).
    Unknown,
}

/// The jobs in flight, oldest first.
#[derive(Clone, Debug)]
pub struct Jobs<S> {
    timeout: Duration,
    pending: VecDeque<Pending<S>>,
    /// Jobs answered as unfinished at their deadline whose lease I/O has not ended yet.
    unfinished: Vec<u64>,
    next_id: u64,
}

impl<S: JobShape> Jobs<S> {
    /// For jobs that must end within `timeout` of their submission.
    pub fn new(timeout: Duration) -> Jobs<S> {
        Jobs { timeout, pending: VecDeque::new(), unfinished: Vec::new(), next_id: 0 }
    }

    /// The I/O timeout every job must meet.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The id and deadline the next job submitted at `now` will have.
    pub fn next(&self, now: Instant) -> (u64, Instant) {
        (self.next_id + 1, now + self.timeout)
    }

    /// A job handed to the worker at `now`: its id ([`Jobs::next`]).
    pub fn submitted(&mut self, now: Instant, shape: S) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.pending.push_back(Pending { id, submitted: now, deadline: now + self.timeout, shape });
        id
    }

    /// The worker answered job `id`, which it ended at `done_at`.
    pub fn answered(&mut self, id: u64, done_at: Instant) -> Verdict<S> {
        self.answered_by(id, done_at, |done_at, deadline| done_at > deadline)
    }

    /// [`Jobs::answered`], with `missed` saying whether a job that ended at `done_at`
    /// missed its deadline (the simulator's tests plant a wrong rule here).
    pub fn answered_by(
        &mut self,
        id: u64,
        done_at: Instant,
        missed: fn(Instant, Instant) -> bool,
    ) -> Verdict<S> {
        let Some(index) = self.pending.iter().position(|p| p.id == id) else {
            return match self.unfinished.iter().position(|u| *u == id) {
                Some(index) => {
                    self.unfinished.swap_remove(index);
                    Verdict::Ended
                }
                None => Verdict::Unknown,
            };
        };
        let pending = self.pending.remove(index).expect("found");
        if missed(done_at, pending.deadline) {
            Verdict::Late(pending.shape)
        } else {
            Verdict::OnTime
        }
    }

    /// The jobs whose deadline passed at `now`, oldest first: each is answered as
    /// unfinished now (and its worker, which may be blocked, abandoned).
    pub fn expire(&mut self, now: Instant) -> Vec<S> {
        let mut out = Vec::new();
        while self.pending.front().is_some_and(|p| p.deadline <= now) {
            let missed = self.pending.pop_front().expect("checked");
            if missed.shape.has_lease_io() {
                self.unfinished.push(missed.id);
            }
            out.push(missed.shape);
        }
        out
    }

    /// The earliest deadline the loop must meet exactly: in `prompt` mode that of the
    /// oldest job in flight; otherwise none.
    pub fn next_deadline(&self, prompt: bool) -> Instant {
        match self.pending.front() {
            Some(p) if prompt => p.deadline,
            _ => Instant::MAX,
        }
    }

    /// When the oldest quiet job in flight that writes for the lease client was
    /// submitted (none in `prompt` mode): its answer is read at the loop's next
    /// wake-up, and what the lease client does next is due a settle after it ends.
    pub fn quiet_lease_write(&self, prompt: bool) -> Option<Instant> {
        if prompt {
            return None;
        }
        self.pending.iter().find(|p| p.shape.writes_lease()).map(|p| p.submitted)
    }

    /// Jobs in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// No job in flight.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Jobs answered as unfinished whose lease I/O has not ended yet.
    pub fn unfinished(&self) -> usize {
        self.unfinished.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Shape {
        lease: bool,
        writes: bool,
    }

    impl JobShape for Shape {
        fn has_lease_io(&self) -> bool {
            self.lease
        }
        fn writes_lease(&self) -> bool {
            self.writes
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_job_answered_in_time_stands_and_one_that_ended_late_failed() {
        let mut jobs = Jobs::new(Duration::from_millis(30));
        let quiet = Shape { lease: false, writes: false };
        let a = jobs.submitted(Instant(0), quiet.clone());
        let b = jobs.submitted(Instant(MS), quiet.clone());
        assert_eq!(jobs.answered(a, Instant(30 * MS)), Verdict::OnTime);
        // Read long after, but it ended after its deadline: failed, however it is read.
        assert_eq!(jobs.answered(b, Instant(32 * MS)), Verdict::Late(quiet));
        assert_eq!(jobs.answered(b, Instant(33 * MS)), Verdict::Unknown);
        assert!(jobs.is_empty());
    }

    #[test]
    fn a_missed_deadline_answers_unfinished_and_the_lease_learns_when_it_ends() {
        let mut jobs = Jobs::new(Duration::from_millis(30));
        let renewal = Shape { lease: true, writes: true };
        let slots = Shape { lease: false, writes: false };
        let a = jobs.submitted(Instant(0), renewal.clone());
        let b = jobs.submitted(Instant(10 * MS), slots.clone());
        assert_eq!(jobs.quiet_lease_write(false), Some(Instant(0)));
        assert_eq!(jobs.quiet_lease_write(true), None);
        assert_eq!(jobs.next_deadline(true), Instant(30 * MS));
        assert_eq!(jobs.next_deadline(false), Instant::MAX);
        assert_eq!(jobs.expire(Instant(29 * MS)), Vec::<Shape>::new());
        assert_eq!(jobs.expire(Instant(40 * MS)), vec![renewal, slots]);
        assert_eq!(jobs.unfinished(), 1);
        // The renewal's job ends at last: its lease I/O goes to the client; the slots'
        // job is forgotten.
        assert_eq!(jobs.answered(a, Instant(500 * MS)), Verdict::Ended);
        assert_eq!(jobs.answered(b, Instant(500 * MS)), Verdict::Unknown);
        assert_eq!(jobs.unfinished(), 0);
    }
}
