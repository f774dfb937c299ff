//! Several I/O on the area handed to the kernel at once and waited for together, through
//! io_uring (the `io-uring` crate), so that a thread doing a disk job sleeps once for
//! all of it instead of once per `pread`/`pwrite` (twice for a write: the data, then the
//! cache flush of `O_DSYNC`). Written on 2026-12-06 for the cost of a node at idle: its
//! disk thread did about seven blocking waits per 100 ms tick; with the ring, two or three
//! (the job hand-off, the read hold, one wait for the I/O).
//!
//! The ring is created with `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`:
//! completions are posted only when the thread that created it waits, and that thread
//! is woken once, when as many have arrived as it waits for. Only for [`Mode::Direct`]
//! (the buffered mode drops the page cache around every I/O, which a ring cannot order);
//! where io_uring is missing or forbidden (`kernel.io_uring_disabled`, a seccomp filter)
//! [`Ring::new`] fails and the caller does its I/O one call at a time, as before.
//!
//! Semantics are those of `pread`/`pwrite` on the same descriptor: `O_DIRECT | O_DSYNC`,
//! so a write is on the device when its completion arrives (an asynchronous direct
//! write with `O_DSYNC` goes out with FUA, or the block layer flushes after it).
//!
//! **Memory safety.** The kernel reads or fills an I/O's buffer until its completion
//! arrives. Every [`SectorIo`] started stays owned by the ring until then; if the ring
//! fails in a way that leaves it unknown whether I/O is still in flight, those buffers
//! are leaked (never freed or reused), and so are they when the ring is dropped with I/O
//! in flight. A thread blocked in [`Ring::wait_all`] on I/O that never completes (a dead
//! path) keeps them, like a thread blocked in `pread`.

use std::io;
use std::os::fd::AsRawFd;

use io_uring::{opcode, types, IoUring};

use crate::area::{Area, SectorIo};
use crate::Mode;

/// Submission queue entries (the completion queue has twice as many). A job needs one
/// per I/O; more are handed over in several submissions.
const ENTRIES: u32 = 64;

/// An I/O started on a [`Ring`], to find its result in [`Ring::wait_all`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token(usize);

impl Token {
    /// Its place in what [`Ring::wait_all`] returns.
    pub fn index(self) -> usize {
        self.0
    }
}

struct Started {
    /// `None` once leaked after a failure of the ring.
    io: Option<SectorIo>,
    result: Option<io::Result<()>>,
}

/// An io_uring for the I/O of one thread on one area (see the module docs).
pub struct Ring<'a> {
    uring: IoUring,
    area: &'a Area,
    started: Vec<Started>,
    /// Started, completion not yet seen.
    pending: usize,
    /// A failure left it unknown what the kernel still holds: the ring takes no more I/O.
    broken: Option<String>,
}

impl<'a> Ring<'a> {
    /// A ring for I/O on `area`, to be used by the calling thread only.
    pub fn new(area: &'a Area) -> io::Result<Ring<'a>> {
        if area.mode() != Mode::Direct {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the area is not opened with O_DIRECT",
            ));
        }
        let uring =
            IoUring::builder().setup_single_issuer().setup_defer_taskrun().build(ENTRIES)?;
        Ok(Ring { uring, area, started: Vec::new(), pending: 0, broken: None })
    }

    /// Why the ring takes no more I/O, if it does not.
    pub fn broken(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// Starts `io` (prepared by [`Area::prepare`] on this ring's area): it is queued and
    /// handed to the kernel by the next [`Ring::submit`] or [`Ring::wait_all`].
    pub fn start(&mut self, mut io: SectorIo) -> Token {
        let token = Token(self.started.len());
        if let Some(why) = &self.broken {
            let error = io::Error::other(why.clone());
            self.started.push(Started { io: Some(io), result: Some(Err(error)) });
            return token;
        }
        let (offset, len) = io.extent();
        let fd = types::Fd(self.area.file().as_raw_fd());
        let buf = io.buf_ptr();
        let entry = if io.is_write() {
            opcode::Write::new(fd, buf, len as u32).offset(offset).build()
        } else {
            opcode::Read::new(fd, buf, len as u32).offset(offset).build()
        }
        .user_data(token.0 as u64);
        // The buffer is on the heap and stays there while `io` is owned by `started`,
        // which is until its completion arrives or it is leaked.
        self.started.push(Started { io: Some(io), result: None });
        loop {
            // SAFETY: the entry points at a buffer of at least `len` bytes that lives
            // until the I/O completes (see above and the module docs).
            #[allow(unsafe_code)]
            let pushed = unsafe { self.uring.submission().push(&entry) };
            if pushed.is_ok() {
                self.pending += 1;
                return token;
            }
            // The submission queue is full: hand it over, then try again.
            if let Err(e) = self.submit() {
                self.started[token.0].result = Some(Err(e));
                return token;
            }
        }
    }

    /// Hands every queued I/O to the kernel without waiting for any.
    pub fn submit(&mut self) -> io::Result<()> {
        loop {
            match self.uring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if retry(&e) => {
                    // The completion queue is full (EBUSY) or a signal came: collect.
                    self.collect();
                    if e.raw_os_error() == Some(nix::libc::EBUSY) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(self.break_down(e)),
            }
        }
    }

    /// Waits until every I/O started so far has completed, or for `wait` at most;
    /// whether they all have. Their results stay for [`Ring::wait_all`].
    pub fn wait_for(&mut self, wait: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while self.pending > 0 && self.broken.is_none() {
            let Some(left) = wait.checked_sub(started.elapsed()) else { break };
            let ts = types::Timespec::from(left);
            let args = types::SubmitArgs::new().timespec(&ts);
            let want = self.pending.min(ENTRIES as usize);
            match self.uring.submitter().submit_with_args(want, &args) {
                Ok(_) => {}
                Err(e) if retry(&e) || e.raw_os_error() == Some(nix::libc::ETIME) => {}
                Err(e) => {
                    self.break_down(e);
                }
            }
            self.collect();
        }
        self.pending == 0
    }

    /// Waits until every I/O started has completed, and returns each in the order
    /// started: the I/O if it succeeded (for [`Area::finish`]), else why it failed.
    /// Blocks as long as the kernel holds an I/O (see the module docs).
    pub fn wait_all(&mut self) -> Vec<(Token, io::Result<SectorIo>)> {
        while self.pending > 0 && self.broken.is_none() {
            // Never more at once than the completion queue holds.
            match self.uring.submit_and_wait(self.pending.min(ENTRIES as usize)) {
                Ok(_) => {}
                Err(e) if retry(&e) => {}
                Err(e) => {
                    self.break_down(e);
                }
            }
            self.collect();
        }
        std::mem::take(&mut self.started)
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let result = match (s.result, s.io) {
                    (Some(Ok(())), Some(io)) => Ok(io),
                    (Some(Err(e)), _) => Err(e),
                    (_, io) => {
                        // Leaked by `break_down`, or never completed: keep the buffer.
                        std::mem::forget(io);
                        Err(io::Error::other("the I/O ring failed"))
                    }
                };
                (Token(i), result)
            })
            .collect()
    }

    /// Reads the completions that arrived.
    fn collect(&mut self) {
        for cqe in self.uring.completion() {
            let Some(started) = self.started.get_mut(cqe.user_data() as usize) else {
                continue;
            };
            if started.result.is_some() {
                continue;
            }
            let res = cqe.result();
            let wanted = started.io.as_ref().map_or(0, |io| io.extent().1);
            started.result = Some(if res < 0 {
                Err(io::Error::from_raw_os_error(-res))
            } else if res as usize != wanted {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("short I/O: {res} of {wanted} bytes"),
                ))
            } else {
                Ok(())
            });
            self.pending -= 1;
        }
    }

    /// The ring failed: what the kernel still holds is unknown, so every I/O without a
    /// completion fails and its buffer is leaked.
    fn break_down(&mut self, e: io::Error) -> io::Error {
        let why = format!("the I/O ring failed: {e}");
        for started in self.started.iter_mut().filter(|s| s.result.is_none()) {
            std::mem::forget(started.io.take());
            started.result = Some(Err(io::Error::other(why.clone())));
        }
        self.pending = 0;
        self.broken = Some(why);
        e
    }
}

impl Drop for Ring<'_> {
    fn drop(&mut self) {
        // I/O still in flight keeps its buffer for good (module docs).
        for started in self.started.iter_mut().filter(|s| s.result.is_none()) {
            std::mem::forget(started.io.take());
        }
    }
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EINTR) | Some(nix::libc::EAGAIN) | Some(nix::libc::EBUSY)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{format_area, Reply, Request};
    use arbiter::disk::{Block, HostRecord, Record};
    use engine::NodeId;

    fn allowed() -> bool {
        std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
            .map_or(true, |v| v.trim() == "0")
    }

    /// A ring on `area`; `None` only where this machine forbids io_uring.
    fn ring(area: &Area) -> Option<Ring<'_>> {
        match Ring::new(area) {
            Ok(ring) => Some(ring),
            Err(e) => {
                assert!(!allowed(), "no ring on a file in the temp dir: {e}");
                testgate::cannot_run(
                    "a ring test",
                    "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled)",
                );
                None
            }
        }
    }

    /// A formatted area, cut to `bytes` once open.
    fn area(bytes: u64) -> (tempfile::NamedTempFile, Area) {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(crate::AREA_BYTES_MIN).unwrap();
        format_area(file.path(), "ring", 2, 1, false).unwrap();
        let area = Area::open(file.path(), "ring").unwrap();
        file.as_file().set_len(bytes).unwrap();
        (file, area)
    }

    #[test]
    fn writes_and_reads_started_together_complete_with_one_wait() {
        let (_file, area) = area(crate::AREA_BYTES_MIN);
        let Some(mut ring) = ring(&area) else { return };
        let host =
            Record::Host(HostRecord { incarnation: 1, counter: 9, groups: vec![], parked: false });
        let w1 =
            ring.start(area.prepare(Request::WriteRecord(Block::Host(NodeId(0)), &host)).unwrap());
        let beat = Request::WriteHeartbeat { node: NodeId(1), seq: 3, payload: b"beat" };
        let w2 = ring.start(area.prepare(beat).unwrap());
        ring.submit().unwrap();
        // Wait for the writes, then read back through the ring as well.
        let written = ring.wait_all();
        assert_eq!(written.len(), 2);
        for (token, result) in written {
            assert!([w1, w2].contains(&token));
            assert_eq!(area.finish(&result.unwrap()).unwrap(), Reply::Written);
        }
        let r1 = ring.start(area.prepare(Request::ReadRecord(Block::Host(NodeId(0)))).unwrap());
        let r2 = ring.start(area.prepare(Request::ReadHeartbeat(NodeId(1))).unwrap());
        let read = ring.wait_all();
        assert_eq!(read[r1.index()].0, r1);
        let record = area.finish(read[r1.index()].1.as_ref().unwrap()).unwrap();
        assert_eq!(record, Reply::Record(host));
        let slot = area.finish(read[r2.index()].1.as_ref().unwrap()).unwrap();
        assert_eq!(slot, Reply::Heartbeat(Some((3, b"beat".to_vec()))));
        assert!(ring.broken().is_none());
        // And the plain calls agree.
        assert_eq!(area.read_heartbeat(NodeId(1)).unwrap(), Some((3, b"beat".to_vec())));
    }

    #[test]
    fn more_io_than_the_queues_hold_all_complete() {
        let (_file, area) = area(crate::AREA_BYTES_MIN);
        let Some(mut ring) = ring(&area) else { return };
        // Ten times the submission queue, five times the completion queue.
        let n = 10 * ENTRIES as usize;
        for i in 0..n {
            let node = NodeId((i % 2) as u16);
            ring.start(area.prepare(Request::ReadRecord(Block::Host(node))).unwrap());
        }
        assert!(ring.wait_for(std::time::Duration::from_secs(30)));
        let results = ring.wait_all();
        assert_eq!(results.len(), n);
        for (_, result) in results {
            assert_eq!(area.finish(&result.unwrap()).unwrap(), Reply::Record(Record::Blank));
        }
    }

    #[test]
    fn a_read_past_the_end_fails_short_and_the_others_do_not() {
        // Sectors 0..5 left: the header and node 0's slot; node 1's slot (5..9) is gone.
        let (_file, area) = area(5 * crate::SECTOR_BYTES as u64);
        let Some(mut ring) = ring(&area) else { return };
        let gone = ring.start(area.prepare(Request::ReadHeartbeat(NodeId(1))).unwrap());
        let there = ring.start(area.prepare(Request::ReadHeartbeat(NodeId(0))).unwrap());
        let mut results = ring.wait_all();
        let e = results[gone.index()].1.as_ref().unwrap_err();
        assert!(e.to_string().contains("short I/O: 0 of 16384"), "{e}");
        let io = std::mem::replace(&mut results[there.index()].1, Err(io::Error::other("taken")));
        assert_eq!(area.finish(&io.unwrap()).unwrap(), Reply::Heartbeat(None));
    }
}
